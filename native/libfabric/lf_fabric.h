// The libfabric backend of the native fabric (issue #6, docs/rdma.md). Built only when pkg-config finds
// libfabric (binding.gyp defines SQUALL_WITH_LIBFABRIC); libfabric itself is opened at first use (lf_loader).
//
// Same semantics as the TCP backend, in one of three modes, chosen when the fabric starts from the
// provider's name and what the provider offers (lf_fabric.cc, Mode):
// - rma: connected endpoints (FI_EP_MSG). Each DATA grant is registered for remote writes on its own and
//   its key sent to the peer before the HELLO. Every write into a keyed region goes one-sided into the
//   peer's arena, whatever its size: as fi_writedata whose 64 bits of remote CQ data describe the write
//   (plain writes, and writes-with-immediate of whole 4 KiB pages), or as fi_write followed by a header-only
//   PLACED_IMM note. Writes into CONTROL grants stay messages. The provider must order writes and sends on
//   an endpoint (FI_ORDER_WAW/SAW/WAS/SAS), so the receiver's completion or note comes after the bytes.
// - msg: connected endpoints, every write a message (the TCP backend's frames, fi_send / fi_recv from
//   registered slots), applied by the receiver's poller: grants are checked before a byte is written.
// - rdm: reliable-datagram endpoints (FI_EP_RDM; providers without connected ones, e.g. shm), every write a
//   message. One endpoint per fabric; each peer's endpoint name is learnt over a TCP side channel on the
//   listening port, whose end tells of the peer's end as FI_SHUTDOWN does for connected endpoints.
//
// In every mode, each peer is two lanes (frame.h, Lane), each its own endpoint (rma/msg: a second connected
// endpoint to the same listener; rdm: a second RDM endpoint with its own CQ, address vector, receive pool and
// side channel), with its own send queue and mutex; the poller reads the control lanes' queues first.
//
// In every mode: control ranges are sent from an 8-byte-atomic snapshot and applied with 8-byte atomic
// stores when they travel as messages; one peer's frames are applied in the order sent (FI_ORDER_SAS); a
// write-with-immediate whose completion ring is full holds that peer's later frames back; completion queues
// are read by the poller thread, which rings the doorbells.
//
// Threads: as in the TCP backend. JS threads post sends (under the peer's mutex; the domain is
// FI_THREAD_SAFE); the poller thread reads the event and completion queues and the side channels, applies
// frames, produces completions, rings doorbells and keeps the timers.

#pragma once
#include <memory>

#include "fabric.h"

namespace squall {

std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options, Stats& stats, const ArrivalSlot& arrival);

}  // namespace squall
