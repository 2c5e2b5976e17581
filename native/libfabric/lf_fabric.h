// The libfabric backend of the native fabric (issue #6, docs/rdma.md). Built only when pkg-config finds
// libfabric (binding.gyp defines SQUALL_WITH_LIBFABRIC).
//
// What this first version does: connected endpoints (FI_EP_MSG) of the configured provider (tcp, sockets,
// verbs), connection management through an event queue (fi_listen / fi_connect / fi_accept, FI_CONNREQ,
// FI_CONNECTED, FI_SHUTDOWN), and the same frames as the TCP backend (frame.h) carried as two-sided
// messages (fi_send / fi_recv) from registered buffers. One-sided RMA (fi_writedata into a registered
// arena) is NOT used yet: every write is a message the receiver's poller applies, so the receiver rules of
// the TCP backend hold unchanged:
// - grants: the receiver checks each frame's range against the sender's grants before touching the arena;
//   in message mode the arena is never registered for remote access, so no remote write can bypass that check;
// - control ranges: applied with 8-byte atomic stores in ascending order (copy.h), sent from an atomic
//   snapshot;
// - order: one reliable connected endpoint per peer pair, FI_ORDER_SAS requested and checked; receive
//   completions are applied in the order the CQ reports them, and a frame whose completion cannot be
//   queued (full ring) holds every later frame of that peer back;
// - a write longer than kChunkBytes goes out as several frames; only the last carries the immediate, and
//   the ones before it carry kContinued in the immediate field, so the receiver's WRITE_IMM completion
//   names the whole range written (what the RDMC worker reads a block's size from).
//
// RMA mode (opt-in, provider named "P+rma"; docs/rdma.md "RMA mode"): the arena is registered for remote
// writes, keys are exchanged after the HELLO, writes of 4 KiB or more go as fi_write into the peer's arena
// followed by a header-only PLACED note (FI_ORDER_SAW keeps it behind the bytes); the receiver checks the
// grant, rings the doorbell and produces the completion when the note arrives. Grants are then checked
// after the bytes landed, and such writes are not 8-byte-atomic snapshots (see the doc).
//
// Threads: as in the TCP backend. JS threads post sends (under the peer's mutex; the domain is
// FI_THREAD_SAFE); the poller thread reads the event queue and the completion queue, applies frames,
// produces completions, rings doorbells and keeps the timers.

#pragma once
#include <memory>

#include "fabric.h"

namespace squall {

std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options, Stats& stats, const ArrivalSlot& arrival);

}  // namespace squall
