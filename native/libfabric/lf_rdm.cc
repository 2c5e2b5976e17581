// RDM mode (lf_fabric.h): each lane's completion queue and receive pool, shared by every peer, and the side
// channel over which two fabrics learn each other's endpoint names (lf_wire.h) and each other's end.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "sockets.h"

namespace squall::lf {

// RDM mode: the side channel to the peer's listening address first (the TCP connect completes, and the
// peer's endpoint name comes back, in onSide).
bool LfFabric::connectSide(LfConn* c) {
  if (!initSlots(c)) return false;
  const int fd = openTcpSocket(c->sock_dest);
  if (fd < 0) return false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&c->sock_dest), c->sock_dest_len) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return false;
  }
  attachSide(c, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
  return true;
}

// A lane's CQ: sends complete to their connection's slots; a frame received into a pool slot belongs to
// the connection of that lane its sender's address maps to (FI_SOURCE). A sender not (or no longer) known
// has nothing to say: its frame is dropped. Frames of one sender arrive in the order sent (FI_ORDER_SAS)
// and are applied in CQ order, as on a connected endpoint. At most max_batches of 64 entries per call.
int LfFabric::pollRdmCq(uint8_t lane, int max_batches) {
  RdmLane& l = rdm_[lane];
  int work = 0;
  fi_cq_data_entry entries[64];
  fi_addr_t from[64];
  for (int batch = 0; batch < max_batches; batch++) {
    ssize_t n = fi_cq_readfrom(l.cq, entries, 64, from);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(l.cq, &err, 0) < 0) return work;
      work++;
      check(-err.err, "completion error");
      Slot* s = reinterpret_cast<Slot*>(err.op_context);
      if (!s) continue;
      if (s->pooled) {  // a receive that failed names no sender to fail
        repostPool(s);
        continue;
      }
      LfConn* c = s->conn;
      if (c->phase == Phase::DEAD || s->gen != c->gen || err.err == FI_ECANCELED) continue;
      fail(c, reason(FailReason::IO_ERROR));
      continue;
    }
    if (n <= 0) return work;
    work += int(n);
    Stats::bump(stats_.recv_calls);
    for (ssize_t i = 0; i < n; i++) {
      Slot* s = reinterpret_cast<Slot*>(entries[i].op_context);
      if (!s) continue;
      if (s->pooled) {
        auto it = l.by_addr.find(from[i]);
        LfConn* c = it == l.by_addr.end() ? nullptr : it->second;
        if (!c || c->phase == Phase::DEAD) repostPool(s);
        else onRecv(c, s, uint32_t(entries[i].len));
        continue;
      }
      LfConn* c = s->conn;
      if (c->phase == Phase::DEAD || s->gen != c->gen) continue;
      if (s->send) onSent(c, s);
    }
  }
  return work;
}

void LfFabric::repostPool(Slot* s) {
  RdmLane& l = rdm_[s->lane];
  ssize_t r = fi_recv(l.ep, s->buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &s->ctx);
  for (int tries = 0; r == -FI_EAGAIN && tries < 1000; tries++) {
    fi_cq_read(l.cq, nullptr, 0);  // progress
    r = fi_recv(l.ep, s->buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &s->ctx);
  }
  if (check(int(r), "fi_recv(pool)") != 0) unposted_.push_back(s);  // tried again on the poller's next pass
}

// A peer connected to the side channel: it sends its endpoint name first, with its lane (onSide).
void LfFabric::onSideAccept() {
  for (;;) {
    const int listener = side_listen_.load(std::memory_order_relaxed);
    const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    conns_.push_back(std::make_unique<LfConn>(Role::ACCEPTOR, Phase::HELLO));
    LfConn* c = conns_.back().get();
    c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
    next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
    if (!initSlots(c)) {
      ::close(fd);
      c->phase = Phase::DEAD;
      any_dead_ = true;
      continue;
    }
    attachSide(c, fd, EPOLLIN | EPOLLRDHUP);
  }
}

// RDM mode: c's new attempt, with fd as its side channel (its endpoint is its lane's, once the lane is known).
void LfFabric::attachSide(LfConn* c, int fd, uint32_t events) {
  resetSlots(c);
  c->sock = fd;
  c->ep = rdm_[c->lane].ep;
  socks_[fd] = c;
  watch(fd, events);
}

// The name of this fabric's endpoint for c's lane: [magic u32][lane u32][length u32][name]. Small enough for
// any fresh socket's buffer.
bool LfFabric::sendName(LfConn* c) {
  const std::string& name = rdm_[c->lane].name;
  std::string record(kNameHeadBytes, '\0');
  const uint32_t head[3] = {kNameMagic, c->lane, uint32_t(name.size())};
  std::memcpy(&record[0], head, kNameHeadBytes);
  record += name;
  return ::send(c->sock, record.data(), record.size(), MSG_NOSIGNAL) == ssize_t(record.size());
}

// Once the peer's whole name record is in: its address goes into its lane's AV, and frames from it now reach
// c. The lane must be one (an acceptor takes it from here; an initiator's answer must name the lane it asked).
bool LfFabric::takeName(LfConn* c) {
  if (c->name_in.size() < kNameHeadBytes) return true;
  uint32_t head[3];
  std::memcpy(head, c->name_in.data(), kNameHeadBytes);
  if (head[0] != kNameMagic || head[1] >= frame::kLanes || head[2] == 0 || head[2] > kNameMaxBytes) return false;
  if (c->role == Role::INITIATOR ? head[1] != c->lane : c->in_av) return false;
  if (c->name_in.size() < kNameHeadBytes + head[2]) return true;  // more to come
  c->lane = uint8_t(head[1]);
  c->ep = rdm_[c->lane].ep;
  RdmLane& l = rdm_[c->lane];
  fi_addr_t addr = FI_ADDR_NOTAVAIL;
  if (fi_av_insert(l.av, c->name_in.data() + kNameHeadBytes, 1, &addr, 0, nullptr) != 1) return false;
  if (l.by_addr.count(addr)) return false;
  c->addr = addr;
  c->in_av = true;
  l.by_addr[addr] = c;
  return true;
}

// The side channel of c is readable or writable: finish the initiator's TCP connect and send its name,
// read the peer's name record, and after that watch for its end.
void LfFabric::onSide(LfConn* c, uint32_t events) {
  if (c->phase == Phase::DEAD) return;
  const uint64_t now = monotonicNs();
  if (c->role == Role::INITIATOR && !c->name_sent) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 || !sendName(c)) {
      return retryLater(c, now);  // refused: not listening yet
    }
    c->name_sent = true;
    watch(c->sock, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
  }
  char buf[512];
  bool ended = false;
  for (;;) {
    const ssize_t n = ::read(c->sock, buf, sizeof buf);
    if (n > 0) {
      if (!c->in_av) c->name_in.append(buf, size_t(n));
      continue;
    }
    ended = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    break;
  }
  if (!c->in_av && c->name_in.size() >= kNameHeadBytes) {
    if (!takeName(c)) return fail(c, reason(FailReason::BAD_MAGIC));
    if (c->in_av) {
      if (c->role == Role::ACCEPTOR) {
        if (!sendName(c)) return fail(c, reason(FailReason::CLOSED));
      } else {
        onConnected(c);  // HELLO phase: the frame HELLOs follow on the fabric
      }
    }
  }
  if (!ended || c->phase == Phase::DEAD) return;
  if (c->role == Role::INITIATOR && c->phase == Phase::CONNECTING) return retryLater(c, now);
  pollRdmCq(c->lane);  // frames the peer sent before it ended are still applied, in order
  if (c->phase != Phase::DEAD) fail(c, reason(FailReason::CLOSED));
}

// Ends c's side channel (the peer reads its end) and forgets its address.
void LfFabric::closeSide(LfConn* c) {
  if (c->sock >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->sock, nullptr);
    socks_.erase(c->sock);
    ::close(c->sock);
    c->sock = -1;
  }
  // The address stays in the AV (removing it under sends in flight is not worth the risk); only the
  // mapping goes, so a late frame from it is dropped.
  if (c->in_av) rdm_[c->lane].by_addr.erase(c->addr);
  c->in_av = false;
  c->name_sent = false;
  c->name_in.clear();
  c->ep = nullptr;
}

}  // namespace squall::lf
