// How sockets become a peer's two lanes (frame.h: Lane): accepting, connecting (retrying refused attempts
// until the connect timeout), and the HELLO exchange, once per lane. Runs on the poller thread.
//
// The initiator dials twice, control lane first, and sends a HELLO naming the lane on each. The acceptor
// takes a HELLO only from a member it expects (it has grants), with our layout tag, for a lane that member
// has not brought yet and only while the member is not connected, failed or dialled by us; then it answers
// on that socket with its own HELLO for the same lane. The initiator takes the answer only from the member
// it meant to reach, for the lane it asked, with our tag. With an auth key (auth.h) both HELLOs carry a
// nonce, the answer carries the acceptor's MAC, and the initiator's third frame (AUTH) carries its own; the
// acceptor binds the socket to the member only once that MAC checks. A lane whose HELLOs are exchanged waits, unread,
// for its sibling (Phase::WAIT_SIBLING); when both are up each side reports PEER_CONNECTED in ring 0 and
// starts reading both. Anything else closes the socket: CONNECTION_REJECTED before the acceptor knows who
// is calling, PEER_FAILED (both lanes) once the peer is known. An acceptor's lane whose sibling does not
// come within the handshake timeout fails the peer (HANDSHAKE_TIMEOUT).

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "auth.h"
#include "frame.h"
#include "rules.h"
#include "sockets.h"
#include "tcp/tcp_backend.h"

namespace squall {

using map::FailReason;
using rules::reason;

namespace {
constexpr uint64_t kMs = 1000000;
constexpr uint64_t kConnectRetryNs = 25 * kMs;  // a refused connect is retried this often
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
constexpr uint32_t kParkedEvents = EPOLLRDHUP;  // a lane waiting for its sibling: only its end is watched

// The lane's sending half takes connection c's socket, watched for `events`. Caller holds tx.mu.
void attachLane(LaneTx& tx, Conn* c, uint32_t events) {
  tx.fd = c->fd;
  tx.epoll_fd = c->epfd;
  tx.epoll_tag = c;
  tx.watched = true;
  tx.read_events = events;
}
}  // namespace

void TcpBackend::onListener() {
  for (;;) {
    int fd = accept4(listen_fd_.load(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors: the backlog waits for the next event
    tuneSocket(fd);
    conns_.push_back(std::make_unique<Conn>(Role::ACCEPTOR, Phase::HELLO));
    Conn* c = conns_.back().get();
    c->fd = fd;
    c->epfd = epoll_fd_;  // the lane is not known yet (its HELLO says)
    c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
    next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
    watch(c, kReadEvents, EPOLL_CTL_ADD);
  }
}

void TcpBackend::onHello(Conn* c) {
  if (uint32_t bad = rules::checkHello(c->hello, opt_.key.present())) return fail(c, bad);
  if (c->role == Role::ACCEPTOR) return acceptHello(c);
  answeredHello(c);
}

void TcpBackend::acceptHello(Conn* c) {
  const frame::Hello& h = c->hello;
  if (uint32_t bad = rules::checkCaller(peers_.get(h.member), h, layout_tag_.load(std::memory_order_relaxed))) {
    return fail(c, bad);
  }
  c->lane = h.lane;
  if (opt_.key.present()) return acceptHelloWithKey(c);
  uint8_t reply[frame::kHeaderBytes + frame::kHelloBytes];
  frame::encodeHello(reply, opt_.member_id, layout_tag_.load(std::memory_order_relaxed), h.lane);
  claimLane(c, reply, sizeof reply);
}

// With a key the acceptor answers with its nonce and proof, and binds the connection to nobody until the
// initiator's AUTH proves the key too (onAuth): a stranger's connection fails alone, CONNECTION_REJECTED.
void TcpBackend::acceptHelloWithKey(Conn* c) {
  const frame::Hello& h = c->hello;
  Peer* p = peers_.get(h.member);
  if (uint32_t bad = rules::checkUnproven(h)) return fail(c, bad);
  {
    // Refused early if the lane cannot be had (claimLane checks again, under the same lock).
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->laneFree(p->conns[h.lane] != nullptr)) return fail(c, reason(FailReason::DUPLICATE_PEER));
  }
  uint8_t reply[frame::kHeaderBytes + frame::kHelloAuthBytes];
  if (uint32_t bad = rules::answerWithProof(opt_.key, opt_.member_id, h, c->nonce, reply)) return fail(c, bad);
  // The socket is new and its send buffer empty: the answer goes out whole or the connection is broken.
  const ssize_t sent = ::send(c->fd, reply, sizeof reply, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent != ssize_t(sizeof reply)) return fail(c, reason(FailReason::CLOSED));
  c->phase = Phase::AUTH;
}

void TcpBackend::onAuth(Conn* c) {
  const frame::Hello& h = c->hello;
  const auth::Transcript t = auth::transcriptOf(false, opt_.member_id, c->nonce, h, h.lane);
  if (!auth::verify(opt_.key, auth::Direction::INITIATOR, t, c->auth_mac)) {
    return fail(c, reason(FailReason::AUTH_FAILED));
  }
  claimLane(c, nullptr, 0);
}

void TcpBackend::claimLane(Conn* c, const uint8_t* reply, uint32_t reply_bytes) {
  Peer* p = peers_.get(c->hello.member);
  const uint8_t lane = c->lane;
  int err = 0;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    // Checked under the lock: connect() may have claimed this peer a moment ago.
    if (!p->laneFree(p->conns[lane] != nullptr)) {
      err = 1;
    } else {
      if (p->state.load() == PeerState::EXPECTED) {
        p->accepted = true;
        p->state.store(PeerState::HANDSHAKING);
      }
      c->peer = p;
      p->conns[lane] = c;
      if (lane == frame::CONTROL) {  // into the control set, parked until laneUp() decides
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
        c->epfd = control_epoll_fd_;
        watch(c, kParkedEvents, EPOLL_CTL_ADD);
      }
      LaneTx& tx = p->lanes[lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      attachLane(tx, c, kParkedEvents);
      if (reply) err = tx.sendBytes(arena_, reply, reply_bytes, stats_);
    }
  }
  if (err == 1) return fail(c, reason(FailReason::DUPLICATE_PEER));
  if (err < 0) return fail(c, reason(FailReason::CLOSED));
  laneUp(c);
}

// The acceptor's answer to our HELLO: the member we meant to reach, on the lane we asked, with our tag;
// with a key, its proof checks, and ours goes back (AUTH) before the lane counts as up.
void TcpBackend::answeredHello(Conn* c) {
  const frame::Hello& h = c->hello;
  Peer* p = c->peer;
  if (uint32_t bad = rules::checkAnswer(*p, c->lane, h, layout_tag_.load(std::memory_order_relaxed))) {
    return fail(c, bad);
  }
  if (opt_.key.present()) {
    // The HELLO's member, lane and tag were checked above: they are p's, c's and ours.
    const auth::Transcript t = auth::transcriptOf(true, opt_.member_id, c->nonce, h, c->lane);
    if (!auth::verify(opt_.key, auth::Direction::ACCEPTOR, t, h.mac)) return fail(c, reason(FailReason::AUTH_FAILED));
    uint8_t proof[frame::kHeaderBytes + frame::kAuthBytes];
    rules::encodeAuth(opt_.key, auth::Direction::INITIATOR, t, proof);
    int err;
    {
      std::lock_guard<std::mutex> lock(p->state_mu);
      if (p->state.load() == PeerState::FAILED) return;  // disconnected locally; its command follows
      LaneTx& tx = p->lanes[c->lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      err = tx.sendBytes(arena_, proof, sizeof proof, stats_);
    }
    if (err < 0) return fail(c, reason(FailReason::CLOSED));
  }
  laneUp(c);
}

// c's HELLOs are exchanged. Until its sibling's are too, c is parked: not read, watched only for its end.
void TcpBackend::laneUp(Conn* c) {
  Peer* p = c->peer;
  bool both;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED) return;  // disconnected locally; its command follows
    const Conn* sibling = p->conns[c->lane == frame::DATA ? frame::CONTROL : frame::DATA];
    both = sibling && sibling->phase == Phase::WAIT_SIBLING;
    c->phase = Phase::WAIT_SIBLING;
    if (!both) {
      LaneTx& tx = p->lanes[c->lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      tx.read_events = kParkedEvents;
      tx.updateInterest();
    }
  }
  if (!both) {
    // An initiator's sibling has deadlines of its own (connect, handshake); an acceptor's may never come.
    if (c->role == Role::INITIATOR) c->deadline_ns = UINT64_MAX;
    return;
  }
  openLanes(p, c);
}

// Both lanes of p are up: the peer is connected; both sockets are read from now on. `current` is the lane
// whose HELLO just came: receive() goes on reading it.
void TcpBackend::openLanes(Peer* p, Conn* current) {
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      p->conns[lane]->phase = Phase::OPEN;
      LaneTx& tx = p->lanes[lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      tx.read_events = kReadEvents;
      tx.updateInterest();
    }
    p->state.store(PeerState::CONNECTED, std::memory_order_release);
  }
  rx_.connected(*p);
  // Bytes staged behind the parked lane's HELLO were read with it: apply them now. The epoll set reports
  // whatever is still in the kernel.
  for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
    if (Conn* c = p->conns[lane]; c && c != current && c->phase == Phase::OPEN && c->hasStaged()) receive(c);
  }
}

void TcpBackend::startConnect(Conn* c, uint64_t now) {
  int fd = openTcpSocket(c->addr);
  if (fd >= 0) {
    tuneSocket(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&c->addr), c->addr_len) == 0 || errno == EINPROGRESS) {
      c->fd = fd;
      c->epfd = epollFor(c->lane);
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

void TcpBackend::retryLater(Conn* c, uint64_t now) {
  if (now + kConnectRetryNs >= c->connect_deadline_ns) return fail(c, reason(FailReason::CONNECT_TIMEOUT));
  c->phase = Phase::RETRY_WAIT;
  c->deadline_ns = now + kConnectRetryNs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

void TcpBackend::finishConnect(Conn* c, uint64_t now) {
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
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    c->fd = -1;
    c->epfd = -1;
    return retryLater(c, now);
  }
  Peer* p = c->peer;
  c->phase = Phase::HELLO;
  c->deadline_ns = now + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  watch(c, kReadEvents, EPOLL_CTL_MOD);
  const bool keyed = opt_.key.present();
  if (keyed && !auth::freshNonce(c->nonce)) return fail(c, reason(FailReason::IO_ERROR));
  uint8_t hello[frame::kHeaderBytes + frame::kHelloAuthBytes];
  const uint32_t tag = layout_tag_.load(std::memory_order_relaxed);
  const uint32_t hello_bytes = rules::encodeHello(keyed, opt_.member_id, tag, c->lane, c->nonce, hello);
  int sent;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->beginHandshakeLocked()) {
      sent = 1;
    } else {
      LaneTx& tx = p->lanes[c->lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      attachLane(tx, c, kReadEvents);
      sent = tx.sendBytes(arena_, hello, hello_bytes, stats_);
    }
  }
  if (sent == 1) return fail(c, reason(FailReason::LOCAL_CLOSE));
  if (sent < 0) return fail(c, reason(FailReason::CLOSED));
}

}  // namespace squall
