// How a socket becomes a connection: accepting, connecting (retrying refused attempts until the connect
// timeout), and the HELLO exchange (frame.h). Runs on the poller thread.
//
// The acceptor takes a HELLO only from a member it expects (it has grants), that is not connected or
// failed already, with our layout tag; then it answers with its own HELLO. The initiator takes the answer
// only from the member it meant to reach, with our tag. Each side then reports PEER_CONNECTED in ring 0.
// Anything else closes the socket: CONNECTION_REJECTED before the acceptor knows who is calling,
// PEER_FAILED once the peer is known.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fabric.h"
#include "frame.h"
#include "sockets.h"

namespace squall {

using map::CompletionKind;
using map::FailReason;

namespace {
constexpr uint64_t kMs = 1000000;
constexpr uint64_t kConnectRetryNs = 25 * kMs;  // a refused connect is retried this often
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
constexpr uint32_t reason(FailReason r) { return uint32_t(r); }
}  // namespace

void Fabric::onListener() {
  for (;;) {
    int fd = accept4(listen_fd_.load(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors: the backlog waits for the next event
    tuneSocket(fd);
    conns_.push_back(std::make_unique<Conn>(Role::ACCEPTOR, Phase::HELLO));
    Conn* c = conns_.back().get();
    c->fd = fd;
    c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
    next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
    watch(c, kReadEvents, EPOLL_CTL_ADD);
  }
}

void Fabric::onHello(Conn* c) {
  const frame::Hello& h = c->hello;
  if (c->role == Role::ACCEPTOR) {
    Peer* p = h.member < 0xffff ? by_id_[h.member].load(std::memory_order_acquire) : nullptr;
    if (!p || p->grants.empty()) return fail(c, reason(FailReason::UNKNOWN_PEER));
    if (h.layout_tag != layout_tag_.load(std::memory_order_relaxed)) return fail(c, reason(FailReason::LAYOUT_MISMATCH));
    uint8_t reply[frame::kHeaderBytes + frame::kHelloBytes];
    frame::encodeHello(reply, opt_.member_id, layout_tag_.load(std::memory_order_relaxed));
    int err;
    {
      std::lock_guard<FairMutex> lock(p->mu);
      if (p->state.load() != PeerState::EXPECTED) {
        // Checked under the lock: connect() may have claimed this peer a moment ago.
        err = 1;
      } else {
        p->fd = c->fd;
        p->epoll_tag = c;
        p->watched = true;
        p->state.store(PeerState::CONNECTED);
        err = p->sendBytes(arena_, reply, sizeof reply, stats_);
      }
    }
    if (err == 1) return fail(c, reason(FailReason::DUPLICATE_PEER));
    c->peer = p;
    p->conn = c;
    c->phase = Phase::OPEN;
    if (err < 0) return fail(c, reason(FailReason::CLOSED));
    event(CompletionKind::PEER_CONNECTED, p->id, 0);
    return;
  }
  Peer* p = c->peer;
  if (h.member != p->id) return fail(c, reason(FailReason::UNKNOWN_PEER));
  if (h.layout_tag != layout_tag_.load(std::memory_order_relaxed)) return fail(c, reason(FailReason::LAYOUT_MISMATCH));
  {
    std::lock_guard<FairMutex> lock(p->mu);
    if (p->state.load() != PeerState::HANDSHAKING) return;  // disconnected locally; its command follows
    p->state.store(PeerState::CONNECTED);
  }
  c->phase = Phase::OPEN;
  event(CompletionKind::PEER_CONNECTED, p->id, 0);
}

void Fabric::startConnect(Conn* c, uint64_t now) {
  int fd = openTcpSocket(c->addr);
  if (fd >= 0) {
    tuneSocket(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&c->addr), c->addr_len) == 0 || errno == EINPROGRESS) {
      c->fd = fd;
      c->phase = Phase::CONNECTING;
      c->deadline_ns = c->connect_deadline_ns;
      next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
      watch(c, EPOLLOUT, EPOLL_CTL_ADD);
      return;
    }
    ::close(fd);
  }
  retryLater(c, now);
}

void Fabric::retryLater(Conn* c, uint64_t now) {
  if (now + kConnectRetryNs >= c->connect_deadline_ns) return fail(c, reason(FailReason::CONNECT_TIMEOUT));
  c->phase = Phase::RETRY_WAIT;
  c->deadline_ns = now + kConnectRetryNs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

void Fabric::finishConnect(Conn* c, uint64_t now) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) {
    // getpeername fails if the connect did not in fact complete. And on loopback, a connect to a port
    // nobody listens on can meet itself (TCP simultaneous open, when the ephemeral port picked equals the
    // target): that is no peer either.
    sockaddr_storage peer, self;
    socklen_t peer_len = sizeof peer, self_len = sizeof self;
    if (getpeername(c->fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      err = errno;
    } else if (getsockname(c->fd, reinterpret_cast<sockaddr*>(&self), &self_len) == 0 && self_len == peer_len &&
               std::memcmp(&self, &peer, peer_len) == 0) {
      err = ECONNREFUSED;
    }
  }
  if (err != 0) {  // refused (the peer is not listening yet) or unreachable: retry until the deadline
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    c->fd = -1;
    return retryLater(c, now);
  }
  Peer* p = c->peer;
  c->phase = Phase::HELLO;
  c->deadline_ns = now + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  watch(c, kReadEvents, EPOLL_CTL_MOD);
  uint8_t hello[frame::kHeaderBytes + frame::kHelloBytes];
  frame::encodeHello(hello, opt_.member_id, layout_tag_.load(std::memory_order_relaxed));
  int sent;
  {
    std::lock_guard<FairMutex> lock(p->mu);
    if (p->state.load() != PeerState::CONNECTING) {
      sent = 1;
    } else {
      p->state.store(PeerState::HANDSHAKING);
      p->fd = c->fd;
      p->epoll_tag = c;
      p->watched = true;
      sent = p->sendBytes(arena_, hello, sizeof hello, stats_);
    }
  }
  if (sent == 1) return fail(c, reason(FailReason::LOCAL_CLOSE));
  if (sent < 0) return fail(c, reason(FailReason::CLOSED));
}

}  // namespace squall
