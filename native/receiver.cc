#include "receiver.h"

#include <mutex>

namespace squall {

void Receiver::failed(PeerCore& p, uint32_t why) {
  if (p.failure_reported) return;
  p.failure_reported = true;
  event(map::CompletionKind::PEER_FAILED, p.id, why);
}

void Receiver::failPeer(PeerCore& p, uint32_t why) {
  {
    std::lock_guard<std::mutex> lock(p.state_mu);
    why = p.failLocked(why);
  }
  failed(p, why);
}

void Receiver::flushBacklog() {
  if (!rings_.backlogged()) return;
  rings_.flushBacklog();
  mark(0);  // held events are connection news, for ring 0
}

bool Receiver::ringDoorbells() {
  const bool any = dirty_ != 0;
  for (uint32_t c = 0; dirty_ != 0; c++) {
    if (dirty_ & (1u << c)) {
      dirty_ &= ~(1u << c);
      // The epoch first (a spinning worker sees it at once), then the arrival hook, then the futex wake of
      // sleeping workers: a wake-up of a thread on the other vCPU is a system call of tens of µs in a VM,
      // and the main thread's wake-up need not wait behind it.
      const Doorbell bell(arena_.base, c);
      const bool sleepers = bell.bump();
      notifyArrival(arrival_, c);
      if (sleepers) {
        bell.wakeSleepers();
        Stats::add(stats_.wakeups);
      }
    }
  }
  return any;
}

void Receiver::event(map::CompletionKind kind, uint16_t peer, uint32_t why) {
  rings_.pushEvent(Completion{uint16_t(kind), peer, why, 0, 0, monotonicNs()});
  mark(0);  // connection news go to ring 0
}

}  // namespace squall
