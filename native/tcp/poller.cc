// The tcp backend's poller thread: one epoll loop per fabric. It dispatches socket events (connection setup
// is in handshake.cc, frame parsing in connection.cc), flushes queued sends, keeps the timers (connect
// retries, handshake deadlines, paused connections), closes failed connections and, through the receiver
// (receiver.h), produces completions and rings the doorbells once per loop iteration — and, for the control
// lanes, as soon as their writes are applied.
//
// Control lanes first: their sockets sit in an epoll set of their own (control_epoll_fd_, itself in the
// main set), which the loop drains before every data socket's event and again after each, so a heartbeat
// or counter that arrives while a data lane is being read waits for at most one data pump (kReadBudgetBytes).
// Their doorbells ring as soon as they are served, before the data pumps: the main thread then works on the
// counters while this thread reads the data. A push's counters and slots often land in the same pass, and
// an isolated message then costs the receiver one step too many (counters first, slots next); ringing once
// after the pump instead cut that step but lost that overlap, and a quarter of the 1 KiB flood's throughput
// (docs/benchmarks.md, "Where a hop's time goes").
//
// After a pass that rang a doorbell the loop polls for kSpinAfterRingNs instead of sleeping in epoll_wait,
// yielding its core between polls (sched_yield) and giving up as soon as a yield let another thread run, so
// that in a busy exchange the next frame is read without an epoll wake-up. Quiet writes (heartbeats) ring
// nothing: an idle member's poller never spins.

#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>

#include "frame.h"
#include "rules.h"
#include "sockets.h"
#include "tcp/tcp_backend.h"

namespace squall {

using map::FailReason;
using rules::reason;

namespace {
constexpr uint64_t kMs = 1000000;
constexpr int kPausedRetryMs = 1;               // a full ring is re-checked this often
constexpr int kMaxEvents = 128;
constexpr uint64_t kSpinAfterRingNs = 50 * 1000;  // see the top of this file
constexpr uint64_t kContendedYieldNs = 20 * 1000;  // a yield this late gave the core away
}  // namespace

void TcpBackend::run() {
  epoll_event events[kMaxEvents];
  uint64_t spin_until_ns = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    int n = waitEvents(events, spin_until_ns);
    bool rang = false;
    // The control lanes first, and again after every data socket: a data pump may take a millisecond.
    if (serveControl()) rang |= rx_.ringDoorbells();
    for (int i = 0; i < n; i++) {
      auto* source = static_cast<Source*>(events[i].data.ptr);
      if (source->kind == Source::CONTROL_SET) continue;  // served above
      onEvent(source, events[i].events);
      const bool data = source->kind == Source::CONN && static_cast<Conn*>(source)->lane == frame::DATA;
      if (data && serveControl()) rang |= rx_.ringDoorbells();
    }
    uint64_t now = monotonicNs();
    if (now >= next_deadline_ns_) onTimers(now);
    rx_.flushBacklog();
    if (paused_count_ > 0) resumePaused();
    rang |= rx_.ringDoorbells();
    if (any_dead_) sweep();
    if (rang) spin_until_ns = monotonicNs() + kSpinAfterRingNs;
  }
}

// The next socket events: polled without sleeping until spin_until_ns, then waited for. A yield that comes
// back late gave the core to another thread (the machine is oversubscribed): then it sleeps at once, as the
// doorbell's spin does (doorbell.h).
int TcpBackend::waitEvents(epoll_event* events, uint64_t spin_until_ns) {
  uint64_t now = monotonicNs();
  while (now < spin_until_ns && !stop_.load(std::memory_order_acquire)) {
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    if (n != 0) return n;
    const uint64_t before = monotonicNs();
    sched_yield();
    now = monotonicNs();
    if (now - before >= kContendedYieldNs) break;
  }
  return epoll_wait(epoll_fd_, events, kMaxEvents, pollTimeoutMs(monotonicNs()));
}

// Every ready socket of the control set (control lanes from their handshake on), without waiting.
bool TcpBackend::serveControl() {
  epoll_event events[kMaxEvents];
  int n = epoll_wait(control_epoll_fd_, events, kMaxEvents, 0);
  for (int i = 0; i < n; i++) onEvent(static_cast<Source*>(events[i].data.ptr), events[i].events);
  return n > 0;
}

void TcpBackend::onEvent(Source* source, uint32_t events) {
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

int TcpBackend::pollTimeoutMs(uint64_t now) const {
  int timeout = -1;
  if (next_deadline_ns_ != UINT64_MAX) {
    uint64_t left = next_deadline_ns_ > now ? next_deadline_ns_ - now : 0;
    timeout = int(std::min<uint64_t>((left + kMs - 1) / kMs, 60000));
  }
  if (paused_count_ > 0 || rx_.backlogged()) timeout = timeout < 0 ? kPausedRetryMs : std::min(timeout, kPausedRetryMs);
  return timeout;
}

void TcpBackend::runCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands.swap(commands_);
  }
  uint64_t now = monotonicNs();
  for (const Command& cmd : commands) {
    Peer* p = peers_.get(cmd.peer);
    if (!p) continue;
    if (cmd.kind == Command::CONNECT) {
      if (p->state.load() != PeerState::CONNECTING) continue;  // disconnected meanwhile
      // Control first: its socket is dialled a moment before the data lane's.
      Conn* control = newInitiator(p, frame::CONTROL, cmd, now);
      if (control->phase != Phase::DEAD) newInitiator(p, frame::DATA, cmd, now);
    } else if (Conn* c = p->conns[frame::CONTROL] ? p->conns[frame::CONTROL] : p->conns[frame::DATA]) {
      fail(c, reason(FailReason::LOCAL_CLOSE));
    } else {
      rx_.failPeer(*p, reason(FailReason::LOCAL_CLOSE));
    }
  }
}

Conn* TcpBackend::newInitiator(Peer* p, uint8_t lane, const Command& cmd, uint64_t now) {
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
void TcpBackend::watch(Conn* c, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  epoll_ctl(c->epfd, op, c->fd, &ev);
}

void TcpBackend::onConn(Conn* c, uint32_t events) {
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

void TcpBackend::receive(Conn* c) {
  const ReceiveEnv env{arena_, opt_.max_frame_bytes, &rx_, &stats_};
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

void TcpBackend::onTimers(uint64_t now) {
  next_deadline_ns_ = runDeadlines(
      conns_, now, [&](Conn* c) { startConnect(c, now); }, [&](Conn* c, uint32_t why) { fail(c, why); });
}

// A completion ring is full: stop reading this connection (so the kernel's buffers, then TCP flow
// control, hold the peer back) until the consumer frees space. The descriptor leaves the epoll set so a
// pending hang-up cannot spin the loop; resumePaused() retries every kPausedRetryMs.
void TcpBackend::pause(Conn* c) {
  if (c->paused) return;
  c->paused = true;
  paused_count_++;
  LaneTx& tx = c->peer->lanes[c->lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  tx.watched = false;
  epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
}

void TcpBackend::resumePaused() {
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
void TcpBackend::closeConn(Conn* c) {
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

// Closes a connection for good and reports it (receiver.h): PEER_FAILED once the peer is known (an
// initiator, or an acceptor after its HELLO), CONNECTION_REJECTED before that. A known peer fails as a
// whole: both lanes close, whichever broke. A peer that was disconnected locally keeps LOCAL_CLOSE as its reason.
void TcpBackend::fail(Conn* c, uint32_t why) {
  if (c->phase == Phase::DEAD) return;
  Peer* p = c->peer;
  if (!p) {
    closeConn(c);
    rx_.rejected(why);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    why = p->failLocked(why);
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
  rx_.failed(*p, why);
}

void TcpBackend::sweep() {
  const auto dead = [](const std::unique_ptr<Conn>& c) { return c->phase == Phase::DEAD; };
  conns_.erase(std::remove_if(conns_.begin(), conns_.end(), dead), conns_.end());
  any_dead_ = false;
}

// After the poller stopped (close()): every socket closes, every peer fails, so a writer on another
// thread gets FAILED instead of touching a closed descriptor.
void TcpBackend::shutdownAll() {
  const uint32_t n = peers_.size();
  for (uint32_t i = 0; i < n; i++) {
    Peer* p = peers_.at(i);
    std::lock_guard<std::mutex> lock(p->state_mu);
    p->closeLocallyLocked();
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
