// The libfabric backend's poller thread (lf_fabric.h): its loop, the commands JS threads post, the timers, the
// event queue and the connected endpoints' completion queues.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>

namespace squall::lf {

namespace {
constexpr uint64_t kConnectRetryNs = 25 * kMs;
constexpr int64_t kIdlePollMinUs = 5;
constexpr int64_t kIdlePollMaxUs = 500;
// Completion batches (of 64) a data lane's queue gives per poll before the control lanes' turn.
constexpr int kDataBatches = 4;
constexpr size_t kCmDataBytes = 256;  // connection data an event may carry (squall sends none)
}  // namespace

void LfFabric::run() {
  epoll_event events[8];
  bool busy = false;
  while (!stop_.load(std::memory_order_acquire)) {
    const bool ready = ready_.load(std::memory_order_acquire);
    if (ready && !fds_added_) {
      fds_added_ = true;
      const int rdm_fds[2] = {rdm() ? rdm_[frame::DATA].cq_fd : -1, rdm() ? rdm_[frame::CONTROL].cq_fd : -1};
      for (int fd : {eq_fd_, rdm_fds[0], rdm_fds[1]}) if (fd >= 0) watch(fd, EPOLLIN);
    }
    int timeout = busy ? 0 : pollTimeoutMs(monotonicNs());
    if (timeout != 0 && ready && waitable()) {
      wait_fids_.clear();
      if (rdm()) for (const RdmLane& l : rdm_) wait_fids_.push_back(&l.cq->fid);
      else wait_fids_.push_back(&eq_->fid);
      for (const auto& c : conns_) if (c->cq) wait_fids_.push_back(&c->cq->fid);
      if (fi_trywait(fabric_, wait_fids_.data(), int(wait_fids_.size())) != FI_SUCCESS) timeout = 0;
    }
    int n;
    if (timeout > 0 && ready && !waitable()) {
      // A queue without a wait descriptor (shm's) is polled: right after work at short intervals that grow
      // to kIdlePollMaxUs, so what arrives soon after traffic is seen within microseconds while an idle
      // fabric wakes a few thousand times a second.
      idle_poll_us_ = std::min(std::max(idle_poll_us_ * 2, kIdlePollMinUs), kIdlePollMaxUs);
      const int64_t us = std::min<int64_t>(int64_t(timeout) * 1000, idle_poll_us_);
      const timespec wait{0, long(us * 1000)};
      n = epoll_pwait2(epoll_fd_, events, 8, &wait, nullptr);
    } else {
      n = epoll_wait(epoll_fd_, events, 8, timeout);
    }
    int work = 0;
    try {
      for (int i = 0; i < n; i++) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
          uint64_t count;
          ssize_t r = read(wake_fd_, &count, sizeof count);
          (void)r;
        } else if (fd == side_listen_.load(std::memory_order_relaxed)) {
          onSideAccept();
        } else if (auto it = socks_.find(fd); it != socks_.end()) {
          onSide(it->second, events[i].events);
        }
      }
      runCommands();
      if (!unposted_.empty()) {
        std::vector<Slot*> retry;
        retry.swap(unposted_);
        for (Slot* slot : retry) repostPool(slot);
      }
      if (ready) {
        work += pollCq();
        work += pollEq();
      }
      uint64_t now = monotonicNs();
      if (now >= next_deadline_ns_) onTimers(now);
      flushConns();
    } catch (const std::exception&) {
      // out of memory: keep the member running; the next pass retries
    }
    rx_.flushBacklog();
    rx_.ringDoorbells();
    if (any_dead_) sweep();
    busy = work > 0;
    if (busy) idle_poll_us_ = 0;
  }
}

// Each connection's turn at the end of a pass: what waited behind a held completion is applied, and what
// waits to be sent goes — keys for grants made since the last were sent (RMA mode) first.
void LfFabric::flushConns() {
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    if (c->phase == Phase::DEAD) continue;
    if ((c->held.holding || !c->backlog.empty()) && c->phase != Phase::WAIT_SIBLING) drainBacklog(c);
    if (c->peer && c->phase != Phase::DEAD) {
      int err = 0;
      if (rma() && c->phase == Phase::OPEN && c->lane == frame::DATA) {
        c->grants.refresh(c->peer->grants);
        if (c->keyed < c->grants.list.size()) {
          std::lock_guard<FairMutex> lock(c->mu());
          err = sendGrantKeys(c, c->peer);
        }
      }
      if (err == 0 && c->has_pending.load(std::memory_order_relaxed)) {
        std::lock_guard<FairMutex> lock(c->mu());
        err = flushPending(c);
      }
      if (err) fail(c, reason(FailReason::IO_ERROR));
    } else if (!c->peer && c->has_pending.load(std::memory_order_relaxed) && flushPending(c) != 0) {
      // An acceptor's keyed answer that waited for a send slot (poller only).
      fail(c, reason(FailReason::IO_ERROR));
    }
  }
}

// Forgets the connections that died in this pass.
void LfFabric::sweep() {
  for (auto& c : conns_) {
    if (c->phase != Phase::DEAD) continue;
    // A connected endpoint and its CQ are closed with the connection, so nothing can complete into its
    // buffers any more: they go now. In RDM mode its sends may still complete on the shared CQ, so it
    // stays until close().
    if (rdm()) {
      dead_.push_back(std::move(c));
    } else {
      releaseConn(c.get());
      c.reset();
    }
  }
  conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());
  any_dead_ = false;
}

int LfFabric::pollTimeoutMs(uint64_t now) const {
  // Without wait descriptors (a provider that offers none) the poller polls every millisecond; with them
  // it still looks every 20 ms at most, a safety net for a missed wake-up.
  int timeout = waitable() ? 20 : 1;
  if (!ready_.load(std::memory_order_acquire)) timeout = -1;
  if (next_deadline_ns_ != UINT64_MAX) {
    uint64_t left = next_deadline_ns_ > now ? next_deadline_ns_ - now : 0;
    int t = int(std::min<uint64_t>((left + kMs - 1) / kMs, 60000));
    timeout = timeout < 0 ? t : std::min(timeout, t);
  }
  bool waiting = rx_.backlogged() || !unposted_.empty();
  for (const auto& c : conns_) waiting = waiting || c->held.holding || c->has_pending.load(std::memory_order_relaxed);
  if (waiting) timeout = timeout < 0 ? 1 : std::min(timeout, 1);
  return timeout;
}

void LfFabric::runCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    if (commands_.empty()) return;
    commands.swap(commands_);
  }
  uint64_t now = monotonicNs();
  for (const Command& cmd : commands) {
    LfPeer* p = peers_.get(cmd.peer);
    if (cmd.kind == Command::CONNECT) {
      if (!p || p->state.load() != PeerState::CONNECTING) {
        if (cmd.dest) lf::api().freeinfo(cmd.dest);
        continue;
      }
      // Two connections, control first; each needs its own copy of where to connect.
      fi_info* second = cmd.dest ? lf::api().dupinfo(cmd.dest) : nullptr;
      LfConn* control = newInitiator(p, frame::CONTROL, cmd, cmd.dest, now);
      if (control->phase != Phase::DEAD && (!cmd.dest || second)) newInitiator(p, frame::DATA, cmd, second, now);
      else if (second) lf::api().freeinfo(second);
      if (cmd.dest && !second && control->phase != Phase::DEAD) fail(control, reason(FailReason::IO_ERROR));
      continue;
    }
    if (!p) continue;
    LfConn* c = p->conn[frame::CONTROL] ? p->conn[frame::CONTROL] : p->conn[frame::DATA];
    if (cmd.kind == Command::BREAK) {
      LfConn* lane = p->conn[cmd.arg & 1];
      if (!lane || lane->phase == Phase::DEAD) continue;
      if (rdm()) {
        if (lane->sock >= 0) ::shutdown(lane->sock, SHUT_RDWR);  // both ends read the side channel's end
      } else if (lane->ep) {
        fi_shutdown(lane->ep, 0);  // the peer gets FI_SHUTDOWN; here, the lane is dead: fail it as the fault would
        fail(lane, reason(FailReason::CLOSED));
      }
    } else if (c) {
      fail(c, cmd.kind == Command::FAIL ? cmd.arg : reason(FailReason::LOCAL_CLOSE));
    } else {
      rx_.failPeer(*p, cmd.kind == Command::FAIL ? cmd.arg : reason(FailReason::LOCAL_CLOSE));
    }
  }
}

LfConn* LfFabric::newInitiator(LfPeer* p, uint8_t lane, const Command& cmd, fi_info* dest, uint64_t now) {
  conns_.push_back(std::make_unique<LfConn>(Role::INITIATOR, Phase::RETRY_WAIT));
  LfConn* c = conns_.back().get();
  c->peer = p;
  c->lane = lane;
  p->conn[lane] = c;
  c->dest = dest;
  c->sock_dest = cmd.addr;
  c->sock_dest_len = cmd.addr_len;
  c->connect_deadline_ns = now + uint64_t(opt_.connect_timeout_ms) * kMs;
  startConnect(c, now);
  return c;
}

void LfFabric::startConnect(LfConn* c, uint64_t now) {
  const bool started = rdm() ? connectSide(c)
                              : openEp(c, c->dest) &&
                                    check(fi_connect(c->ep, c->dest->dest_addr, nullptr, 0), "fi_connect") == 0;
  if (!started) return retryLater(c, now);
  c->phase = Phase::CONNECTING;
  c->deadline_ns = c->connect_deadline_ns;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

void LfFabric::retryLater(LfConn* c, uint64_t now) {
  closeEp(c);
  if (now + kConnectRetryNs >= c->connect_deadline_ns) return fail(c, reason(FailReason::CONNECT_TIMEOUT));
  c->phase = Phase::RETRY_WAIT;
  c->deadline_ns = now + kConnectRetryNs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

void LfFabric::onTimers(uint64_t now) {
  next_deadline_ns_ = runDeadlines(
      conns_, now, [&](LfConn* c) { startConnect(c, now); }, [&](LfConn* c, uint32_t why) { fail(c, why); });
}

int LfFabric::pollEq() {
  int work = 0;
  for (;;) {
    uint32_t ev = 0;
    // Room for connection data after the entry (fi_eq(3): an event may carry some; squall sends none, but
    // a provider may refuse a buffer that cannot hold what it has).
    alignas(fi_eq_cm_entry) uint8_t raw[sizeof(fi_eq_cm_entry) + kCmDataBytes] = {};
    ssize_t r = fi_eq_read(eq_, &ev, raw, sizeof raw, 0);
    fi_eq_cm_entry entry;
    std::memcpy(&entry, raw, sizeof entry);
    if (r == -FI_EAVAIL) {
      fi_eq_err_entry err{};
      if (fi_eq_readerr(eq_, &err, 0) < 0) return work;
      work++;
      check(-err.err, "event queue error");
      LfConn* c = connOf(err.fid);
      if (!c || c->phase == Phase::DEAD) continue;
      if (c->role == Role::INITIATOR && c->phase == Phase::CONNECTING) {
        retryLater(c, monotonicNs());  // refused (not listening yet) or unreachable: retry until the deadline
      } else {
        pollConnCq(c);  // what arrived before the error is applied first
        if (c->phase != Phase::DEAD) fail(c, reason(FailReason::IO_ERROR));
      }
      continue;
    }
    if (r < 0) return work;  // -FI_EAGAIN
    work++;
    if (ev == FI_CONNREQ) {
      onConnReq(entry.info);
      continue;
    }
    // Only an FI_CONNREQ hands over an fi_info for the application to free (fi_eq(3)); for the other
    // events the field is not defined, so it is never read (let alone freed) here.
    LfConn* c = connOf(entry.fid);
    if (!c || c->phase == Phase::DEAD) continue;
    if (ev == FI_CONNECTED) {
      onConnected(c);
    } else if (ev == FI_SHUTDOWN) {
      pollConnCq(c);  // frames the peer sent before it went away are still applied, in order
      if (c->phase != Phase::DEAD) fail(c, reason(FailReason::CLOSED));
    }
  }
}

// Control lanes first, and again after every data queue that had work; a data queue gives way after
// kDataBatches batches of completions (the poller comes back at once while there is work).
int LfFabric::pollCq() {
  int work = pollControl();
  if (rdm()) {
    const int data = pollRdmCq(frame::DATA, kDataBatches);
    return work + data + (data > 0 ? pollControl() : 0);
  }
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    // A control lane whose handshake is over is pollControl's.
    if (c->lane == frame::CONTROL && c->phase != Phase::HELLO && c->phase != Phase::AUTH) continue;
    const int data = pollConnCq(c, kDataBatches);
    work += data + (data > 0 ? pollControl() : 0);
  }
  return work;
}

int LfFabric::pollControl() {
  if (rdm()) return pollRdmCq(frame::CONTROL);
  int work = 0;
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    if (c->lane == frame::CONTROL && c->phase != Phase::HELLO && c->phase != Phase::AUTH) work += pollConnCq(c);
  }
  return work;
}

// Every completion in c's queue is c's own: its sends, receives and one-sided writes, and the peer's
// writes with remote CQ data (whose entries carry no context of ours unless they consumed a receive).
int LfFabric::pollConnCq(LfConn* c, int max_batches) {
  int work = 0;
  fi_cq_data_entry entries[64];
  // c->cq is closed when the connection fails, perhaps by one of these completions.
  for (int batch = 0; batch < max_batches && c->cq; batch++) {
    ssize_t n = fi_cq_read(c->cq, entries, 64);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(c->cq, &err, 0) < 0) return work;
      work++;
      check(-err.err, "completion error");
      const Slot* s = reinterpret_cast<const Slot*>(err.op_context);
      if (c->phase == Phase::DEAD || (s && s->gen != c->gen) || err.err == FI_ECANCELED) continue;
      fail(c, reason(err.err == FI_ETRUNC || err.err == FI_EMSGSIZE ? FailReason::OVERSIZE : FailReason::IO_ERROR));
      continue;
    }
    if (n <= 0) return work;
    work += int(n);
    Stats::bump(stats_.recv_calls);
    for (ssize_t i = 0; i < n && c->phase != Phase::DEAD; i++) {
      Slot* s = reinterpret_cast<Slot*>(entries[i].op_context);
      if (s && s->gen != c->gen) continue;
      if (entries[i].flags & FI_REMOTE_CQ_DATA) onRemoteWrite(c, s, entries[i].data);
      else if (!s) continue;
      else if (s->rma) onRmaDone(c, s);
      else if (s->send) onSent(c, s);
      else onRecv(c, s, uint32_t(entries[i].len));
    }
  }
  return work;
}

void LfFabric::onSent(LfConn* c, Slot* s) {
  LfPeer* p = c->peer;
  if (!p) {  // an acceptor's slot before it knew its peer (cannot happen: it sends only after the HELLO)
    c->free_send.push_back(s);
    return;
  }
  int err;
  {
    std::lock_guard<FairMutex> lock(c->mu());
    c->free_send.push_back(s);
    err = flushPending(c);
  }
  if (err) fail(c, reason(FailReason::IO_ERROR));
}

void LfFabric::onRmaDone(LfConn* c, Slot* s) {
  if (!c->peer) return;
  int err;
  {
    std::lock_guard<FairMutex> lock(c->mu());
    c->free_rma.push_back(s);
    err = flushPending(c);
  }
  if (err) fail(c, reason(FailReason::IO_ERROR));
}

}  // namespace squall::lf
