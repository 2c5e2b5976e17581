// The main thread's wake-up without a worker in between: a poller that rang a channel's doorbell also
// tells the ArrivalHook, once per batch, so protocol code on the main thread (the ordered multicast's
// step) runs one thread hop after the bytes land instead of two. api.cc implements the hook with a
// Node-API thread-safe function; the fabric owns it and drops it only after its poller has stopped.

#pragma once
#include <atomic>
#include <cstdint>

namespace squall {

class ArrivalHook {
 public:
  virtual ~ArrivalHook() = default;
  // Called on the poller thread after the doorbell of `channel` rang. Must not block.
  virtual void rang(uint32_t channel) = 0;
};

using ArrivalSlot = std::atomic<ArrivalHook*>;

inline void notifyArrival(const ArrivalSlot& slot, uint32_t channel) {
  if (ArrivalHook* hook = slot.load(std::memory_order_acquire)) hook->rang(channel);
}

}  // namespace squall
