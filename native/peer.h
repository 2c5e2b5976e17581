// One member we exchange writes with: what it may write here (grants), where its connection stands, and
// the sending half of that connection. Peers are created by the first grant() or connect() and live until
// the fabric is closed; a failed peer stays failed (no reconnects: the membership layer decides what next).
//
// `mu` serialises everything that sends on the socket (JS threads calling write(), the poller flushing),
// so frames never interleave, and the poller closes the socket only under it, so no thread ever sends on a
// closed or reused descriptor.

#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>

#include "arena.h"
#include "fair_mutex.h"
#include "grants.h"
#include "send_queue.h"
#include "stats.h"

namespace squall {

enum class PeerState : uint8_t {
  EXPECTED,     // granted or known, no connection yet
  CONNECTING,   // we are connecting (retrying refused attempts)
  HANDSHAKING,  // socket open, HELLOs not yet exchanged
  CONNECTED,    // writes flow
  FAILED,       // for good; fail_reason says why
};

struct Conn;

struct Peer {
  explicit Peer(uint16_t id_) : id(id_) {}

  const uint16_t id;
  GrantTable grants;

  FairMutex mu;
  std::atomic<PeerState> state{PeerState::EXPECTED};  // written under mu; read without it for quick checks
  uint32_t fail_reason = 0;
  int fd = -1;            // the connection's socket from HANDSHAKING on
  SendQueue queue;        // unsent bytes, oldest first
  bool want_out = false;  // EPOLLOUT is wanted (the queue is not empty)
  bool watched = false;   // fd is in the epoll set (false while the poller paused reading it)
  int epoll_fd = -1;
  void* epoll_tag = nullptr;  // epoll data of the connection (set by the poller under mu)

  Conn* conn = nullptr;   // poller thread only
  bool failure_reported = false;  // poller thread only: PEER_FAILED is queued once per peer

  // Sends or queues one frame. Caller holds mu and has checked fd >= 0. Returns 0 or -errno.
  int sendFrame(const ArenaView& arena, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm, Stats& stats);

  // Sends the raw bytes (a HELLO) behind whatever is queued. Caller holds mu.
  int sendBytes(const ArenaView& arena, const uint8_t* bytes, uint32_t length, Stats& stats);
  // Queues a WRITE frame behind whatever is queued, without sending: a batch ends with flush().
  void queueFrame(const ArenaView& arena, uint64_t offset, uint32_t length, Stats& stats);

  // Flushes the queue (poller on EPOLLOUT, or a writer). Caller holds mu. Returns 0 or -errno.
  int flush(const ArenaView& arena, Stats& stats);

  // Re-arms the epoll registration to match want_out. Caller holds mu.
  void updateInterest();
};

}  // namespace squall
