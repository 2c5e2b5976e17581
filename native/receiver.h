// What a backend's poller does with what a peer sent once the rules (rules.h) let it in, and how it tells the
// arena's readers, written once for both backends: the bytes are applied (control ranges with 8-byte atomic
// stores in ascending order, data by copy; copy.h), counted, and their channel marked, so its doorbell rings
// at the end of the poller's pass; a write-with-immediate's completion is queued in its ring — or, when the
// ring is full, held by the lane, which then takes nothing more until it fits (nothing is ever dropped);
// and ring 0 hears of peers that connect, fail (once per peer) or are refused before they are known.
//
// One per fabric, inside its Backend; poller thread only.

#pragma once
#include <cstdint>
#include <cstring>

#include "arena.h"
#include "arrival.h"
#include "copy.h"
#include "doorbell.h"
#include "frame.h"
#include "generated/memory_map.h"
#include "grants.h"
#include "peers.h"
#include "rings.h"
#include "stats.h"

namespace squall {

// A write-with-immediate's completion that found its ring full, held by its lane until the ring has room.
struct HeldCompletion {
  bool holding = false;
  uint8_t ring = 0;
  Completion entry{};
};

class Receiver {
 public:
  Receiver(ArenaView arena, Stats& stats, const ArrivalSlot& arrival)
      : arena_(arena), stats_(stats), arrival_(arrival), rings_(arena.base) {}

  // Applies a checked write's bytes into grant g.
  void store(const Grant& g, uint64_t offset, const uint8_t* payload, uint64_t length) const {
    uint8_t* dst = arena_.base + offset;
    if (g.kind == GrantKind::CONTROL) storeControl(dst, payload, length);
    else if (length) std::memcpy(dst, payload, length);
  }

  // A write from `peer` into grant g has landed, applied here or placed by the provider: it is counted, and
  // its channel marked (unless the grant is quiet and the write carries no immediate). A write-with-immediate
  // queues a completion naming [offset, offset+length); false when its ring is full: the completion is held
  // in `held`, and the lane takes nothing more until retry() lets it go.
  bool landed(const Grant& g, uint16_t peer, bool with_imm, uint32_t imm, uint64_t offset, uint64_t length,
              HeldCompletion& held) {
    Stats::bump(stats_.frames_in);
    if (!with_imm) {
      if (!g.quiet) mark(g.ring);
      return true;
    }
    mark(g.ring);  // a completion is queued: its consumer must wake whatever the range
    const Completion c{uint16_t(map::CompletionKind::WRITE_IMM), peer, imm, offset, length, monotonicNs()};
    if (rings_.tryPush(g.ring, c)) return true;
    held = HeldCompletion{true, g.ring, c};
    return false;
  }

  // Queues a held completion if its ring has room now; true when nothing is held any more.
  bool retry(HeldCompletion& held) {
    if (!held.holding) return true;
    if (!rings_.tryPush(held.ring, held.entry)) return false;
    held.holding = false;
    mark(held.ring);
    return true;
  }

  // Ring 0's news. A caller refused before it identified itself is CONNECTION_REJECTED; a known peer that
  // fails is PEER_FAILED, once (its later failures are the same failure).
  void connected(const PeerCore& p) { event(map::CompletionKind::PEER_CONNECTED, p.id, 0); }
  void rejected(uint32_t why) { event(map::CompletionKind::CONNECTION_REJECTED, kUnknownPeer, why); }
  void failed(PeerCore& p, uint32_t why);
  // A peer with no connection to close (disconnected before it had one) fails: its state, then PEER_FAILED.
  void failPeer(PeerCore& p, uint32_t why);

  // The end of a poller's pass. Events held while ring 0 was full go in as room allows; then every marked
  // channel's doorbell rings, and the arrival hook (arrival.h) hears of it.
  bool backlogged() const { return rings_.backlogged(); }
  void flushBacklog();
  // Rings every marked channel's doorbell; true if any was marked.
  bool ringDoorbells();
  void mark(uint8_t ring) { dirty_ |= 1u << ring; }

 private:
  void event(map::CompletionKind kind, uint16_t peer, uint32_t why);

  const ArenaView arena_;
  Stats& stats_;
  const ArrivalSlot& arrival_;
  CompletionRings rings_;
  uint32_t dirty_ = 0;  // bit per channel whose doorbell rings at the end of this pass
};

}  // namespace squall
