// One member we exchange writes with, as the tcp backend keeps it: PeerCore (peers.h: its grants, its state,
// how it fails), and the sending halves of its two connections, the lanes (frame.h: Lane).
//
// Locks. `state_mu` (PeerCore) serialises the peer's state changes. Each lane's `mu` serialises everything
// that sends on that lane's socket (JS threads calling write(), the poller flushing), so frames never
// interleave, and the poller closes the socket only under it, so no thread ever sends on a closed or reused
// descriptor. A writer takes only its lane's mu: a heartbeat on the control lane never waits for a thread that
// is queueing megabytes on the data lane. Order: state_mu, then a lane's mu.

#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>

#include "arena.h"
#include "fair_mutex.h"
#include "frame.h"
#include "grants.h"
#include "peers.h"
#include "tcp/send_queue.h"
#include "stats.h"

namespace squall {

struct Conn;

// The sending half of one lane.
struct LaneTx {
  FairMutex mu;
  int fd = -1;            // the lane's socket from its handshake on
  SendQueue queue;        // unsent bytes, oldest first
  bool want_out = false;  // EPOLLOUT is wanted (the queue is not empty)
  bool watched = false;   // fd is in its epoll set (false while the poller paused reading it)
  uint32_t read_events = 0;   // the epoll events the poller reads the socket with (none while it waits for its sibling)
  int epoll_fd = -1;          // the epoll set the socket is in (the poller's control set for the control lane)
  void* epoll_tag = nullptr;  // epoll data of the connection (set by the poller under mu)
  std::atomic<uint64_t> bytes_out{0};  // bytes this lane handed to the kernel (written under mu; Peer sums lanes)

  // Sends or queues one frame. Caller holds mu and has checked fd >= 0. Returns 0 or -errno.
  int sendFrame(const ArenaView& arena, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm, Stats& stats);

  // Sends the raw bytes (a HELLO) behind whatever is queued. Caller holds mu.
  int sendBytes(const ArenaView& arena, const uint8_t* bytes, uint32_t length, Stats& stats);
  // Queues a WRITE frame behind whatever is queued, without sending: a batch ends with flush().
  void queueFrame(const ArenaView& arena, uint64_t offset, uint32_t length, Stats& stats);

  // Flushes the queue (poller on EPOLLOUT, or a writer). Caller holds mu. Returns 0 or -errno.
  int flush(const ArenaView& arena, Stats& stats);

  // Re-arms the epoll registration to match want_out and read_events. Caller holds mu.
  void updateInterest();
};

struct Peer : PeerCore {
  explicit Peer(uint16_t id_) : PeerCore(id_) {}

  LaneTx lanes[frame::kLanes];
  Conn* conns[frame::kLanes] = {};  // poller thread only: each lane's connection, once known
};

}  // namespace squall
