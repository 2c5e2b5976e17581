// A FIFO mutex for a peer's send path.
//
// std::mutex is not fair: a thread that unlocks and immediately locks again (the main thread pushing a
// counter in a tight loop) wins the lock over a waiter that was just woken, because the waiter needs
// microseconds to be scheduled and the loop needs nanoseconds to come back. Measured on 2 cores with five
// members pushing 100,000 times each: the predicate worker's heartbeat writeAll() waited 10–60 ms for the
// peer locks, so heartbeats arrived late and healthy members were suspected. Here each locker takes a
// ticket and the lock passes in ticket order, so a waiting heartbeat goes out at the next unlock.
// Uncontended, lock() and unlock() each take the inner mutex once (no system call).

#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace squall {

class FairMutex {
 public:
  void lock() {
    std::unique_lock<std::mutex> inner(mu_);
    const uint64_t ticket = next_++;
    if (ticket != serving_) {
      ++waiting_;
      turn_.wait(inner, [&] { return serving_ == ticket; });
      --waiting_;
    }
  }

  void unlock() {
    bool wake;
    {
      std::lock_guard<std::mutex> inner(mu_);
      ++serving_;
      wake = waiting_ > 0;
    }
    if (wake) turn_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable turn_;
  uint64_t next_ = 0;     // next ticket to hand out
  uint64_t serving_ = 0;  // ticket that holds the lock
  uint32_t waiting_ = 0;  // threads blocked in lock()
};

}  // namespace squall
