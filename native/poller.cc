// The poller thread: one epoll loop per fabric. It dispatches socket events (connection setup is in
// handshake.cc, frame parsing in connection.cc), flushes queued sends, keeps the timers (connect retries,
// handshake deadlines, paused connections), produces completions, closes failed connections and rings the
// doorbells once per loop iteration — and, for the control lanes, as soon as their writes are applied.
//
// Control lanes first: their sockets sit in an epoll set of their own (control_epoll_fd_, itself in the
// main set), which the loop drains before every data socket's event and again after each, so a heartbeat
// or counter that arrives while a data lane is being read waits for at most one data pump (kReadBudgetBytes).

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>

#include "fabric.h"
#include "frame.h"
#include "sockets.h"

namespace squall {

using map::CompletionKind;
using map::FailReason;

namespace {
constexpr uint64_t kMs = 1000000;
constexpr int kPausedRetryMs = 1;               // a full ring is re-checked this often
constexpr int kMaxEvents = 128;
constexpr uint32_t reason(FailReason r) { return uint32_t(r); }
}  // namespace

void Fabric::run() {
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_acquire)) {
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, pollTimeoutMs(monotonicNs()));
    // The control lanes first, and again after every data socket: a data pump may take a millisecond.
    if (serveControl()) ringDirty();
    for (int i = 0; i < n; i++) {
      auto* source = static_cast<Source*>(events[i].data.ptr);
      if (source->kind == Source::CONTROL_SET) continue;  // served above
      onEvent(source, events[i].events);
      if (source->kind == Source::CONN && static_cast<Conn*>(source)->lane == frame::DATA && serveControl()) ringDirty();
    }
    uint64_t now = monotonicNs();
    if (now >= next_deadline_ns_) onTimers(now);
    if (rings_.backlogged()) {
      rings_.flushBacklog();
      dirty_ |= 1u;  // held events are connection news, for ring 0
    }
    if (paused_count_ > 0) resumePaused();
    ringDirty();
    if (any_dead_) sweep();
  }
}

// Every ready socket of the control set (control lanes from their handshake on), without waiting.
bool Fabric::serveControl() {
  epoll_event events[kMaxEvents];
  int n = epoll_wait(control_epoll_fd_, events, kMaxEvents, 0);
  for (int i = 0; i < n; i++) onEvent(static_cast<Source*>(events[i].data.ptr), events[i].events);
  return n > 0;
}

void Fabric::onEvent(Source* source, uint32_t events) {
  try {
    if (source->kind == Source::WAKE) {
      uint64_t count;
      ssize_t r = read(wake_fd_, &count, sizeof count);
      (void)r;
      runCommands();
    } else if (source->kind == Source::LISTENER) {
      onListener();
    } else if (source->kind == Source::CONN) {
      auto* c = static_cast<Conn*>(source);
      if (c->phase != Phase::DEAD) onConn(c, events);
    }
  } catch (const std::exception&) {
    // Out of memory while handling one socket: drop that connection, keep the member running.
    if (source->kind == Source::CONN) fail(static_cast<Conn*>(source), reason(FailReason::IO_ERROR));
  }
}

// Rings the doorbell of every channel whose ranges or ring changed, and tells the arrival hook.
void Fabric::ringDirty() {
  for (uint32_t c = 0; dirty_ != 0; c++) {
    if (dirty_ & (1u << c)) {
      dirty_ &= ~(1u << c);
      if (doorbell(c).ring()) Stats::add(stats_.wakeups);
      notifyArrival(arrival_, c);
    }
  }
}

int Fabric::pollTimeoutMs(uint64_t now) const {
  int timeout = -1;
  if (next_deadline_ns_ != UINT64_MAX) {
    uint64_t left = next_deadline_ns_ > now ? next_deadline_ns_ - now : 0;
    timeout = int(std::min<uint64_t>((left + kMs - 1) / kMs, 60000));
  }
  if (paused_count_ > 0 || rings_.backlogged()) timeout = timeout < 0 ? kPausedRetryMs : std::min(timeout, kPausedRetryMs);
  return timeout;
}

void Fabric::runCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands.swap(commands_);
  }
  uint64_t now = monotonicNs();
  for (const Command& cmd : commands) {
    Peer* p = by_id_[cmd.peer].load(std::memory_order_acquire);
    if (!p) continue;
    if (cmd.kind == Command::CONNECT) {
      if (p->state.load() != PeerState::CONNECTING) continue;  // disconnected meanwhile
      // Control first: its socket is dialled a moment before the data lane's.
      Conn* control = newInitiator(p, frame::CONTROL, cmd, now);
      if (control->phase != Phase::DEAD) newInitiator(p, frame::DATA, cmd, now);
    } else if (Conn* c = p->conns[frame::CONTROL] ? p->conns[frame::CONTROL] : p->conns[frame::DATA]) {
      fail(c, reason(FailReason::LOCAL_CLOSE));
    } else {
      failPeerWithoutConn(p, reason(FailReason::LOCAL_CLOSE));
    }
  }
}

Conn* Fabric::newInitiator(Peer* p, uint8_t lane, const Command& cmd, uint64_t now) {
  conns_.push_back(std::make_unique<Conn>(Role::INITIATOR, Phase::RETRY_WAIT));
  Conn* c = conns_.back().get();
  c->peer = p;
  c->lane = lane;
  p->conns[lane] = c;
  c->addr = cmd.addr;
  c->addr_len = cmd.addr_len;
  c->connect_deadline_ns = now + uint64_t(opt_.connect_timeout_ms) * kMs;
  startConnect(c, now);
  return c;
}

// (Re)registers c's socket in its epoll set (c->epfd).
void Fabric::watch(Conn* c, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  epoll_ctl(c->epfd, op, c->fd, &ev);
}

void Fabric::onConn(Conn* c, uint32_t events) {
  if (c->phase == Phase::CONNECTING) {
    finishConnect(c, monotonicNs());
    return;
  }
  Peer* p = c->peer;
  if (p && p->state.load() == PeerState::FAILED) {  // disconnect() got here before its command
    fail(c, reason(FailReason::LOCAL_CLOSE));
    return;
  }
  // A lane waiting for its sibling is not read; its peer going away fails the peer now.
  const bool parked = c->phase == Phase::WAIT_SIBLING;
  if (parked && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    fail(c, reason(FailReason::CLOSED));
    return;
  }
  // Read first: bytes a peer sent before it went away are still applied, in order.
  if (!parked && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    receive(c);
    if (c->phase == Phase::DEAD || c->paused) return;
  }
  if (p && (events & EPOLLOUT)) {
    int err;
    {
      LaneTx& tx = p->lanes[c->lane];
      std::lock_guard<FairMutex> lock(tx.mu);
      err = tx.flush(arena_, stats_);
    }
    if (err < 0) fail(c, reason(err == -ECONNRESET || err == -EPIPE ? FailReason::CLOSED : FailReason::IO_ERROR));
  }
}

void Fabric::receive(Conn* c) {
  const ReceiveEnv env{arena_, opt_.max_frame_bytes, &rings_, &stats_, &dirty_};
  for (;;) {
    switch (c->pump(env)) {
      case Pump::DRAINED: return;
      case Pump::PAUSED: pause(c); return;
      case Pump::FAILED: fail(c, c->fail_reason); return;
      case Pump::HELLO:
        onHello(c);
        if (c->phase == Phase::AUTH) break;   // an acceptor with a key: the AUTH may be staged behind
        if (c->phase != Phase::OPEN) return;  // failed, or parked until its sibling lane is up
        break;
      case Pump::AUTH:
        onAuth(c);
        if (c->phase != Phase::OPEN) return;
        break;
    }
  }
}

void Fabric::onTimers(uint64_t now) {
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < conns_.size(); i++) {
    Conn* c = conns_[i].get();
    switch (c->phase) {
      case Phase::RETRY_WAIT:
        if (c->deadline_ns <= now) startConnect(c, now);
        break;
      case Phase::CONNECTING:
        if (c->deadline_ns <= now) fail(c, reason(FailReason::CONNECT_TIMEOUT));
        break;
      case Phase::HELLO:
      case Phase::AUTH:
      case Phase::WAIT_SIBLING:  // an acceptor's lane whose sibling never came (an initiator's has no deadline)
        if (c->deadline_ns <= now) fail(c, reason(FailReason::HANDSHAKE_TIMEOUT));
        break;
      default:
        break;
    }
    if (c->phase == Phase::RETRY_WAIT || c->phase == Phase::CONNECTING || c->phase == Phase::HELLO || c->phase == Phase::AUTH ||
        c->phase == Phase::WAIT_SIBLING) {
      next = std::min(next, c->deadline_ns);
    }
  }
  next_deadline_ns_ = next;
}

// A completion ring is full: stop reading this connection (so the kernel's buffers, then TCP flow
// control, hold the peer back) until the consumer frees space. The descriptor leaves the epoll set so a
// pending hang-up cannot spin the loop; resumePaused() retries every kPausedRetryMs.
void Fabric::pause(Conn* c) {
  if (c->paused) return;
  c->paused = true;
  paused_count_++;
  LaneTx& tx = c->peer->lanes[c->lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  tx.watched = false;
  epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
}

void Fabric::resumePaused() {
  for (size_t i = 0; i < conns_.size() && paused_count_ > 0; i++) {
    Conn* c = conns_[i].get();
    if (!c->paused || c->phase == Phase::DEAD) continue;
    Peer* p = c->peer;
    c->paused = false;
    paused_count_--;
    int err;
    {
      LaneTx& tx = p->lanes[c->lane];
      std::lock_guard<FairMutex> lock(tx.mu);
      tx.watched = true;
      watch(c, tx.read_events | (tx.want_out ? uint32_t(EPOLLOUT) : 0u), EPOLL_CTL_ADD);
      err = tx.flush(arena_, stats_);  // nothing watched EPOLLOUT while paused
    }
    if (err < 0) {
      fail(c, reason(err == -ECONNRESET || err == -EPIPE ? FailReason::CLOSED : FailReason::IO_ERROR));
      continue;
    }
    receive(c);  // pauses it again if the ring is still full
  }
}

// Closes one socket for good (the caller holds its lane's mutex if it is a peer's lane).
void Fabric::closeConn(Conn* c) {
  if (c->fd >= 0) {
    if (c->epfd >= 0) epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
  }
  c->fd = -1;
  c->epfd = -1;
  if (c->paused) paused_count_--;
  c->paused = false;
  c->phase = Phase::DEAD;
  any_dead_ = true;
}

// Closes a connection for good and reports it: PEER_FAILED once the peer is known (an initiator, or an
// acceptor after its HELLO), CONNECTION_REJECTED before that. A known peer fails as a whole: both lanes
// close, whichever broke. A peer that was disconnected locally keeps LOCAL_CLOSE as its reason.
void Fabric::fail(Conn* c, uint32_t why) {
  if (c->phase == Phase::DEAD) return;
  Peer* p = c->peer;
  if (!p) {
    closeConn(c);
    event(CompletionKind::CONNECTION_REJECTED, kUnknownPeer, why);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED && p->fail_reason) {
      why = p->fail_reason;
    } else {
      p->state.store(PeerState::FAILED);
      p->fail_reason = why;
    }
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      LaneTx& tx = p->lanes[lane];
      std::lock_guard<FairMutex> lane_lock(tx.mu);
      tx.queue.clear();
      tx.fd = -1;
      tx.watched = false;
      tx.epoll_tag = nullptr;
      tx.read_events = 0;
      if (Conn* lc = p->conns[lane]) closeConn(lc);  // under the lane's mu: no writer can be using its socket
      p->conns[lane] = nullptr;
    }
  }
  if (c->phase != Phase::DEAD) closeConn(c);
  if (!p->failure_reported) {
    p->failure_reported = true;
    event(CompletionKind::PEER_FAILED, p->id, why);
  }
}

void Fabric::failPeerWithoutConn(Peer* p, uint32_t why) {
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED && p->fail_reason) why = p->fail_reason;
    p->state.store(PeerState::FAILED);
    p->fail_reason = why;
  }
  if (p->failure_reported) return;
  p->failure_reported = true;
  event(CompletionKind::PEER_FAILED, p->id, why);
}

void Fabric::event(CompletionKind kind, uint16_t peer, uint32_t why) {
  rings_.pushEvent(Completion{uint16_t(kind), peer, why, 0, 0, monotonicNs()});
  dirty_ |= 1u;  // connection news go to ring 0
}

void Fabric::sweep() {
  conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](const std::unique_ptr<Conn>& c) { return c->phase == Phase::DEAD; }),
               conns_.end());
  any_dead_ = false;
}

// After the poller stopped (close()): every socket closes, every peer fails, so a writer on another
// thread gets FAILED instead of touching a closed descriptor.
void Fabric::shutdownAll() {
  uint32_t n = peer_count_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; i++) {
    Peer* p = in_order_[i];
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() != PeerState::FAILED) {
      p->state.store(PeerState::FAILED);
      p->fail_reason = reason(FailReason::LOCAL_CLOSE);
    }
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      std::lock_guard<FairMutex> lane_lock(p->lanes[lane].mu);
      p->lanes[lane].queue.clear();
      p->lanes[lane].fd = -1;
      p->conns[lane] = nullptr;
    }
  }
  for (auto& c : conns_) {
    if (c->fd >= 0) ::close(c->fd);
    c->fd = -1;
  }
  conns_.clear();
}

}  // namespace squall
