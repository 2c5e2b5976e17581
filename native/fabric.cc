// The API side of the fabric: what JS threads call. The poller's side is in poller.cc.

#include "fabric.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "copy.h"
#include "frame.h"
#include "sockets.h"

namespace squall {

namespace {
constexpr uint32_t kPeerIds = 0x10000;  // member ids are u16; 0xffff means "unknown"
}  // namespace

Fabric::Fabric(ArenaView arena, FabricOptions options)
    : arena_(arena),
      opt_(options),
      layout_tag_(options.layout_tag),
      rings_(arena.base),
      by_id_(new std::atomic<Peer*>[kPeerIds]),
      in_order_(new Peer*[map::MAX_MEMBERS]) {
  for (uint32_t i = 0; i < kPeerIds; i++) by_id_[i].store(nullptr, std::memory_order_relaxed);
}

Fabric::~Fabric() { close(); }

#ifndef SQUALL_WITH_LIBFABRIC
std::unique_ptr<Backend> makeLibfabricBackend(ArenaView, const FabricOptions&, Stats&, const ArrivalSlot&) { return nullptr; }
#endif

int Fabric::start() {
  if (opt_.backend == BackendKind::LIBFABRIC) {
    alt_ = makeLibfabricBackend(arena_, opt_, stats_, arrival_);
    if (!alt_) return NOT_BUILT;
    return alt_->start();
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  control_epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || control_epoll_fd_ < 0 || wake_fd_ < 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_source_;
  epoll_event control{};
  control.events = EPOLLIN;  // readable when a control socket is ready
  control.data.ptr = &control_source_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, control_epoll_fd_, &control) != 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  try {
    poller_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    last_errno_ = e.code().value();
    return SYSTEM;
  }
  return OK;
}

Peer* Fabric::peerFor(uint32_t id, bool create) {
  if (id >= kPeerIds - 1) return nullptr;
  Peer* p = by_id_[id].load(std::memory_order_acquire);
  if (p || !create) return p;
  std::lock_guard<std::mutex> lock(peers_mu_);
  p = by_id_[id].load(std::memory_order_relaxed);
  if (p) return p;
  uint32_t n = peer_count_.load(std::memory_order_relaxed);
  if (n >= map::MAX_MEMBERS) return nullptr;
  owned_.push_back(std::make_unique<Peer>(uint16_t(id)));
  p = owned_.back().get();
  in_order_[n] = p;
  peer_count_.store(n + 1, std::memory_order_release);
  by_id_[id].store(p, std::memory_order_release);
  return p;
}

int Fabric::listen(const char* host, int port) {
  if (alt_) return alt_->listen(host, port);
  if (closed()) return FAILED;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (listen_fd_.load() >= 0) return ALREADY;
  int fd = listenTcp(&addr, len, true);  // accepted sockets inherit the buffer sizes (and the window scale they imply)
  if (fd < 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  listen_fd_.store(fd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listen_source_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  return portOf(addr);
}

int Fabric::grant(uint32_t peer, const Grant& g) {
  if (alt_) return alt_->grant(peer, g);
  if (closed()) return FAILED;
  if (peer >= kPeerIds - 1 || peer == opt_.member_id || g.ring >= map::COMPLETION_RINGS ||
      (g.kind == GrantKind::CONTROL && !aligned8(g.offset, g.length))) {
    return BAD_ARGUMENT;
  }
  if (g.offset < map::DYNAMIC_BASE || !arena_.contains(g.offset, g.length)) return BAD_RANGE;
  Peer* p = peerFor(peer, true);
  if (!p) return TOO_MANY;
  p->grants.add(g);
  return OK;
}

int Fabric::connect(uint32_t peer, const char* host, int port) {
  if (alt_) return alt_->connect(peer, host, port);
  if (closed()) return FAILED;
  if (peer >= kPeerIds - 1 || peer == opt_.member_id) return BAD_ARGUMENT;
  Command c{Command::CONNECT, uint16_t(peer), {}, 0};
  if (!parseAddress(host, port, &c.addr, &c.addr_len)) return BAD_ADDRESS;
  Peer* p = peerFor(peer, true);
  if (!p) return TOO_MANY;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    PeerState s = p->state.load();
    if (s == PeerState::FAILED) return FAILED;
    if (s != PeerState::EXPECTED) return ALREADY;
    p->state.store(PeerState::CONNECTING);
  }
  post(c);
  return OK;
}

int Fabric::write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) {
  if (alt_) return alt_->write(peer, offset, length, with_imm, imm, lane);
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  Peer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  return sendWrite(p, lane, offset, length, with_imm, imm);
}

int Fabric::writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) {
  for (uint32_t i = 0; i < count; i++) {
    if (!arena_.contains(uint64_t(ranges[2 * i]), uint64_t(ranges[2 * i + 1]))) return BAD_RANGE;
  }
  if (alt_) return alt_->writeBatch(peer, ranges, count, lane);
  Peer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  LaneTx& tx = p->lanes[lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  PeerState s = p->state.load(std::memory_order_acquire);
  if (s != PeerState::CONNECTED || tx.fd < 0) return s == PeerState::FAILED ? FAILED : NOT_CONNECTED;
  const uint64_t max = opt_.max_frame_bytes;
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t offset = uint64_t(ranges[2 * i]), length = uint64_t(ranges[2 * i + 1]);
    for (uint64_t done = 0; done < length; done += max) {
      tx.queueFrame(arena_, offset + done, uint32_t(length - done < max ? length - done : max), stats_);
    }
  }
  return tx.flush(arena_, stats_) < 0 ? FAILED : OK;
}

int Fabric::writeAll(uint64_t offset, uint64_t length, uint8_t lane) {
  if (alt_) return alt_->writeAll(offset, length, lane);
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  uint32_t n = peer_count_.load(std::memory_order_acquire);
  int queued = 0;
  for (uint32_t i = 0; i < n; i++) {
    Peer* p = in_order_[i];
    if (p->state.load(std::memory_order_relaxed) == PeerState::CONNECTED && sendWrite(p, lane, offset, length, false, 0) == OK) {
      queued++;
    }
  }
  return queued;
}

// Writes longer than max_frame_bytes go out as several frames; only the last carries the immediate, so
// the receiver's completion means the whole range has landed. Only the lane's mutex is taken.
int Fabric::sendWrite(Peer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
  LaneTx& tx = p->lanes[lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  PeerState s = p->state.load(std::memory_order_acquire);
  if (s != PeerState::CONNECTED || tx.fd < 0) return s == PeerState::FAILED ? FAILED : NOT_CONNECTED;
  const uint64_t max = opt_.max_frame_bytes;
  uint64_t done = 0;
  do {
    uint64_t chunk = length - done < max ? length - done : max;
    bool last = done + chunk == length;
    uint8_t type = last && with_imm ? frame::WRITE_IMM : frame::WRITE;
    if (tx.sendFrame(arena_, type, offset + done, uint32_t(chunk), last ? imm : 0, stats_) < 0) return FAILED;
    done += chunk;
  } while (done < length);
  return OK;
}

int Fabric::disconnect(uint32_t peer) {
  if (alt_) return alt_->disconnect(peer);
  if (closed()) return FAILED;
  Peer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED) return OK;
    p->state.store(PeerState::FAILED);
    p->fail_reason = uint32_t(map::FailReason::LOCAL_CLOSE);
  }
  post(Command{Command::DISCONNECT, uint16_t(peer), {}, 0});
  return OK;
}

int Fabric::breakLane(uint32_t peer, uint8_t lane) {
  if (alt_) return alt_->breakLane(peer, lane);
  if (closed()) return FAILED;
  Peer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  LaneTx& tx = p->lanes[lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  if (tx.fd < 0) return NOT_CONNECTED;
  ::shutdown(tx.fd, SHUT_RDWR);  // the poller sees the end like a peer's; the socket is closed by fail()
  return OK;
}

int64_t Fabric::wait(uint32_t channel, uint32_t seen_epoch, int64_t timeout_ms) {
  if (closed()) return FAILED;
  return doorbell(channel).wait(seen_epoch, timeout_ms);
}

void Fabric::wake(uint32_t channel) {
  if (doorbell(channel).ring()) Stats::add(stats_.wakeups);
}

void Fabric::post(const Command& c) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back(c);
  }
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: the poller will wake anyway
}

int Fabric::setArrival(std::unique_ptr<ArrivalHook> hook) {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed()) return FAILED;
  if (arrival_owned_) return ALREADY;
  arrival_owned_ = std::move(hook);
  arrival_.store(arrival_owned_.get(), std::memory_order_release);
  return OK;
}

void Fabric::close() {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed_.exchange(true)) return;
  if (alt_) {
    alt_->close();
    dropArrival();
    for (uint32_t c = 0; c < map::COMPLETION_RINGS; c++) wake(c);
    return;
  }
  stop_.store(true);
  if (poller_.joinable()) {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd_, &one, sizeof one);
    (void)r;
    poller_.join();
  }
  dropArrival();
  shutdownAll();
  if (listen_fd_.load() >= 0) ::close(listen_fd_.exchange(-1));
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (control_epoll_fd_ >= 0) ::close(control_epoll_fd_);
  wake_fd_ = epoll_fd_ = control_epoll_fd_ = -1;
  for (uint32_t c = 0; c < map::COMPLETION_RINGS; c++) wake(c);  // sleepers in wait() return and find the fabric closed
}

}  // namespace squall
