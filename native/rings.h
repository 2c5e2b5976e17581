// Producer side of the completion rings (memory_map.h: COMPLETION_RINGS_*, COMPLETION_*). Only the poller
// thread produces, one worker consumes each ring (ts/fabric/completions.ts):
//
//   HEAD  u32 at +0    entries produced, wrapping; written only here, with release, after the entry
//   TAIL  u32 at +64   entries consumed, wrapping; written only by the consumer (we read it with acquire)
//   entries at +128    COMPLETION_RING_ENTRIES × COMPLETION_BYTES, entry i at (i mod ENTRIES)
//
// Nothing is ever dropped. A write-with-immediate whose ring is full is held by its connection, which
// stops reading until the consumer frees space (receiver.h). Connection events (connected, failed,
// rejected) go to ring 0 and wait in a native backlog when it is full; while a ring has a backlog it counts
// as full, so events and immediates keep the order in which the poller produced them.

#pragma once
#include <time.h>

#include <cstdint>
#include <cstring>
#include <deque>

#include "generated/memory_map.h"

namespace squall {

struct Completion {
  uint16_t kind;
  uint16_t peer;
  uint32_t imm;
  uint64_t offset;
  uint64_t length;
  uint64_t time_ns;
};
static_assert(sizeof(Completion) == map::COMPLETION_BYTES, "matches the COMPLETION_* entry fields");

constexpr uint16_t kUnknownPeer = 0xffff;

inline uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

class CompletionRings {
 public:
  explicit CompletionRings(uint8_t* arena) {
    for (uint32_t r = 0; r < map::COMPLETION_RINGS; r++) {
      uint8_t* ring = arena + map::COMPLETION_RINGS_OFFSET + r * map::COMPLETION_RINGS_STRIDE;
      head_[r] = reinterpret_cast<uint32_t*>(ring + map::COMPLETION_RINGS_HEAD);
      tail_[r] = reinterpret_cast<uint32_t*>(ring + map::COMPLETION_RINGS_TAIL);
      entries_[r] = ring + map::COMPLETION_RINGS_ENTRIES;
    }
  }

  // Queues `c` in `ring` if there is room and no backlog ahead of it; false means try again later.
  bool tryPush(uint32_t ring, const Completion& c) {
    if (!backlog_[ring].empty()) return false;
    return put(ring, c);
  }

  // Queues a connection event in ring 0, or holds it natively while the ring is full.
  void pushEvent(const Completion& c) {
    if (!tryPush(0, c)) backlog_[0].push_back(c);
  }

  // Moves held events into their rings as space allows; true when nothing is held any more.
  bool flushBacklog() {
    bool empty = true;
    for (uint32_t r = 0; r < map::COMPLETION_RINGS; r++) {
      while (!backlog_[r].empty() && put(r, backlog_[r].front())) backlog_[r].pop_front();
      empty = empty && backlog_[r].empty();
    }
    return empty;
  }

  bool backlogged() const {
    for (const auto& b : backlog_) if (!b.empty()) return true;
    return false;
  }

 private:
  bool put(uint32_t ring, const Completion& c) {
    uint32_t head = *head_[ring];  // only this thread writes HEAD
    uint32_t tail = __atomic_load_n(tail_[ring], __ATOMIC_ACQUIRE);
    if (head - tail >= map::COMPLETION_RING_ENTRIES) return false;
    uint8_t* slot = entries_[ring] + (head & (map::COMPLETION_RING_ENTRIES - 1)) * map::COMPLETION_BYTES;
    std::memcpy(slot, &c, sizeof c);
    __atomic_store_n(head_[ring], head + 1, __ATOMIC_RELEASE);
    return true;
  }

  uint32_t* head_[map::COMPLETION_RINGS];
  uint32_t* tail_[map::COMPLETION_RINGS];
  uint8_t* entries_[map::COMPLETION_RINGS];
  std::deque<Completion> backlog_[map::COMPLETION_RINGS];
};

}  // namespace squall
