// The tcp backend's API side: what JS threads call. The poller's side is in poller.cc and handshake.cc.

#include "tcp/tcp_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "copy.h"
#include "frame.h"
#include "sockets.h"

namespace squall {

std::unique_ptr<Backend> makeTcpBackend(ArenaView arena, const FabricOptions& options) {
  return std::make_unique<TcpBackend>(arena, options);
}

int TcpBackend::start() {
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
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, control_epoll_fd_, &control) != 0) {
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

int TcpBackend::listen(const char* host, int port) {
  if (closed()) return FAILED;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (listen_fd_.load() >= 0) return ALREADY;
  // Accepted sockets inherit the buffer sizes (and the window scale they imply).
  int fd = listenTcp(&addr, len, true);
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

int TcpBackend::connect(uint32_t peer, const char* host, int port) {
  if (closed()) return FAILED;
  if (int s = checkPeerId(peer)) return s;
  Command c{Command::CONNECT, uint16_t(peer), {}, 0};
  if (!parseAddress(host, port, &c.addr, &c.addr_len)) return BAD_ADDRESS;
  Peer* p = peers_.get(peer, true);
  if (!p) return TOO_MANY;
  if (int s = p->beginConnect()) return s;
  post(c);
  return OK;
}

int TcpBackend::write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  Peer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  return sendWrite(p, lane, offset, length, with_imm, imm);
}

int TcpBackend::writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) {
  if (!rangesFit(ranges, count)) return BAD_RANGE;
  Peer* p = peers_.get(peer);
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

int TcpBackend::writeAll(uint64_t offset, uint64_t length, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  const uint32_t n = peers_.size();
  int queued = 0;
  for (uint32_t i = 0; i < n; i++) {
    Peer* p = peers_.at(i);
    if (p->state.load(std::memory_order_relaxed) == PeerState::CONNECTED &&
        sendWrite(p, lane, offset, length, false, 0) == OK) {
      queued++;
    }
  }
  return queued;
}

// Writes longer than max_frame_bytes go out as several frames; only the last carries the immediate, so
// the receiver's completion means the whole range has landed. Only the lane's mutex is taken.
int TcpBackend::sendWrite(Peer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
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

int TcpBackend::disconnect(uint32_t peer) {
  if (closed()) return FAILED;
  Peer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->closeLocallyLocked()) return OK;
  }
  post(Command{Command::DISCONNECT, uint16_t(peer), {}, 0});
  return OK;
}

int TcpBackend::breakLane(uint32_t peer, uint8_t lane) {
  if (closed()) return FAILED;
  Peer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  LaneTx& tx = p->lanes[lane];
  std::lock_guard<FairMutex> lock(tx.mu);
  if (tx.fd < 0) return NOT_CONNECTED;
  ::shutdown(tx.fd, SHUT_RDWR);  // the poller sees the end like a peer's; the socket is closed by fail()
  return OK;
}

void TcpBackend::post(const Command& c) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back(c);
  }
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: the poller will wake anyway
}

void TcpBackend::stop() {
  stop_.store(true);
  if (poller_.joinable()) {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd_, &one, sizeof one);
    (void)r;
    poller_.join();
  }
  shutdownAll();
  if (listen_fd_.load() >= 0) ::close(listen_fd_.exchange(-1));
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (control_epoll_fd_ >= 0) ::close(control_epoll_fd_);
  wake_fd_ = epoll_fd_ = control_epoll_fd_ = -1;
}

void TcpBackend::sendSide(PeerCore* core, ConnectionInfo* c) {
  Peer* p = static_cast<Peer*>(core);
  for (LaneTx& tx : p->lanes) {
    std::lock_guard<FairMutex> lock(tx.mu);
    c->queued_frames += tx.queue.queuedFrames();
    c->queued_bytes += tx.queue.queuedBytes();
    c->bytes_out += tx.bytes_out.load(std::memory_order_relaxed);
  }
}

}  // namespace squall
