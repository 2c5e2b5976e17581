// Counters for benchmarks and diagnostics (Backend::stats(); NativeFabric.stats() in TS). Relaxed atomics: they
// order nothing.

#pragma once
#include <atomic>
#include <cstdint>

namespace squall {

struct Stats {
  std::atomic<uint64_t> frames_in{0};   // frames applied (poller)
  std::atomic<uint64_t> frames_out{0};  // frames queued or sent (any thread that writes)
  std::atomic<uint64_t> frames_coalesced{0};  // writes merged into the newest queued frame (send_queue.h)
  std::atomic<uint64_t> bytes_in{0};    // bytes received, headers included (poller)
  std::atomic<uint64_t> bytes_out{0};   // bytes handed to the kernel, headers included
  std::atomic<uint64_t> send_calls{0};  // sendmsg() calls
  std::atomic<uint64_t> recv_calls{0};  // recv() calls (poller)
  std::atomic<uint64_t> wakeups{0};     // FUTEX_WAKE syscalls made for sleeping workers
  std::atomic<uint64_t> rma_writes{0};  // one-sided writes posted (libfabric RMA mode: fi_write, fi_writedata)

  // For counters only the poller writes: no locked instruction on the hot path.
  static void bump(std::atomic<uint64_t>& c, uint64_t by = 1) {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  static void add(std::atomic<uint64_t>& c, uint64_t by = 1) { c.fetch_add(by, std::memory_order_relaxed); }
};

}  // namespace squall
