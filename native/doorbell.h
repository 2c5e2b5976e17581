// The doorbells (memory_map.h: DOORBELLS_*): how a worker sleeps until the fabric changed the arena.
// There is one per channel — a channel is a completion ring, and a grant names its channel (Grant.ring) —
// so the rdmc worker is not woken by SST writes nor the predicate worker by RDMC blocks.
//
// V8 parks Atomics.wait callers on its own condition variables, not on the futex word, so a native thread
// cannot wake them. A worker that must sleep calls wait() instead, which blocks on a real futex on EPOCH.
// The poller calls ring() once per batch of applied writes; wake() lets JS ring it for local changes.
//
// A waiter may first spin (wait's spin_us): it polls EPOCH for a bounded time before it sleeps, without
// counting itself in WAITERS, so a ring that comes inside the window costs neither side a syscall and the
// waiter no wake-up — on a busy machine a futex wake-up costs tens of µs, more than a whole TCP hop. The
// spinner yields its core every kSpinReadsPerYield reads (sched_yield), so whatever else is runnable there
// runs, and goes to sleep at once when a yield comes back late (another thread took the core: the machine
// is oversubscribed, and spinning on would only delay that thread). The CPU it costs is at most spin_us per
// wait, and nothing when it is not asked to spin.
//
// WAITERS lets ring() skip the FUTEX_WAKE syscall when nobody sleeps. The waiter increments WAITERS and
// then reads EPOCH; the ringer increments EPOCH and then reads WAITERS; both sequentially consistent, so
// at least one of them sees the other and no wake-up is lost (the futex itself re-checks EPOCH).

#pragma once
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "generated/memory_map.h"
#include "rings.h"

namespace squall {

class Doorbell {
 public:
  Doorbell(uint8_t* arena, uint32_t channel)
      : epoch_(word(arena, channel, map::DOORBELLS_EPOCH)), waiters_(word(arena, channel, map::DOORBELLS_WAITERS)) {}

  // Bumps EPOCH; wakes sleepers if there are any. Returns true if it made the wake syscall.
  bool ring() const {
    if (!bump()) return false;
    wakeSleepers();
    return true;
  }

  // ring() in two halves, so the poller can do something between them (receiver.cc): bump() bumps EPOCH and
  // says whether anyone sleeps on it; wakeSleepers() wakes them.
  bool bump() const {
    __atomic_fetch_add(epoch_, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(waiters_, __ATOMIC_SEQ_CST) != 0;
  }
  void wakeSleepers() const { syscall(SYS_futex, epoch_, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0); }

  // Blocks while EPOCH == seen, at most timeout_ms; returns the epoch it last read. With spin_us > 0 it
  // first spins for at most spin_us (and never past the timeout), then sleeps on the futex.
  uint32_t wait(uint32_t seen, int64_t timeout_ms, uint32_t spin_us = 0) const {
    const uint64_t start = monotonicNs();
    const uint64_t deadline = start + uint64_t(timeout_ms) * 1000000ull;
    if (spin_us > 0) {
      const uint64_t spin_end = std::min<uint64_t>(deadline, start + uint64_t(spin_us) * 1000ull);
      const uint32_t e = spin(seen, spin_end);
      if (e != seen) return e;
    }
    __atomic_fetch_add(waiters_, 1, __ATOMIC_SEQ_CST);
    uint32_t now_epoch;
    while ((now_epoch = __atomic_load_n(epoch_, __ATOMIC_SEQ_CST)) == seen) {
      uint64_t now = monotonicNs();
      if (now >= deadline) break;
      uint64_t left = deadline - now;
      timespec ts{time_t(left / 1000000000ull), long(left % 1000000000ull)};
      long r = syscall(SYS_futex, epoch_, FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
      if (r != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) break;  // EFAULT etc.: do not spin
    }
    __atomic_fetch_sub(waiters_, 1, __ATOMIC_SEQ_CST);
    return now_epoch;
  }

  uint32_t epoch() const { return __atomic_load_n(epoch_, __ATOMIC_ACQUIRE); }

  // The longest spin a waiter may ask for (api.cc refuses more).
  static constexpr uint32_t kMaxSpinUs = 1000;

 private:
  static constexpr int kSpinReadsPerYield = 64;
  // A sched_yield that comes back this much later gave the core away: stop spinning and sleep.
  static constexpr uint64_t kContendedYieldNs = 20 * 1000;

  // Polls EPOCH until it differs from seen or the clock reaches end_ns; returns the epoch it last read.
  uint32_t spin(uint32_t seen, uint64_t end_ns) const {
    for (;;) {
      for (int i = 0; i < kSpinReadsPerYield; i++) {
        const uint32_t e = __atomic_load_n(epoch_, __ATOMIC_SEQ_CST);
        if (e != seen) return e;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      const uint64_t before = monotonicNs();
      sched_yield();
      const uint64_t after = monotonicNs();
      // The yield ran someone else: the core is wanted, so spinning on costs them more than it saves us.
      if (after >= end_ns || after - before >= kContendedYieldNs) return __atomic_load_n(epoch_, __ATOMIC_SEQ_CST);
    }
  }

  static uint32_t* word(uint8_t* arena, uint32_t channel, uint32_t field) {
    return reinterpret_cast<uint32_t*>(arena + map::DOORBELLS_OFFSET + channel * map::DOORBELLS_STRIDE + field);
  }

  uint32_t* epoch_;
  uint32_t* waiters_;
};

}  // namespace squall
