// The libfabric backend's API side (lf_fabric.h): what JS threads call, and the commands they post to the
// poller.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "copy.h"
#include "sockets.h"

namespace squall {

std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options) {
  return std::make_unique<lf::LfFabric>(arena, options);
}

}  // namespace squall

namespace squall::lf {

int LfFabric::listen(const char* host, int port) {
  if (closed()) return FAILED;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (pep_ || side_listen_.load() >= 0) return ALREADY;
  if (rdm()) {  // the port is the side channel's: peers connect there to learn this fabric's endpoint name
    if (int s = ensureRdm()) return s;
    const int fd = listenTcp(&addr, len, false);
    if (fd < 0) {
      last_errno_ = errno;
      return SYSTEM;
    }
    side_listen_.store(fd);
    watch(fd, EPOLLIN);
    return portOf(addr);
  }
  fi_info* info = nullptr;
  const std::string service = std::to_string(port);
  int r = lf::api().getinfo(FI_VERSION(1, 9), host, service.c_str(), FI_SOURCE, hints_, &info);
  if (r != 0) {
    last_errno_ = -r;
    return SYSTEM;
  }
  if (int s = ensureDomain(info)) {
    lf::api().freeinfo(info);
    return s;
  }
  fid_pep* pep = nullptr;
  r = fi_passive_ep(fabric_, info, &pep, nullptr);
  lf::api().freeinfo(info);
  if (r == 0) r = fi_pep_bind(pep, &eq_->fid, 0);
  if (r == 0) r = fi_listen(pep);
  size_t alen = sizeof addr;
  if (r == 0) r = fi_getname(&pep->fid, &addr, &alen);
  if (r != 0) {
    last_errno_ = -r;
    if (pep) fi_close(&pep->fid);
    return SYSTEM;
  }
  pep_ = pep;
  return portOf(addr);
}

int LfFabric::connect(uint32_t peer, const char* host, int port) {
  if (closed()) return FAILED;
  if (int s = checkPeerId(peer)) return s;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  LfPeer* p = peers_.get(peer, true);
  if (!p) return TOO_MANY;
  fi_info* dest = nullptr;
  if (rdm()) {
    if (int s = ensureRdm()) return s == SYSTEM ? FAILED : s;
  } else {
    const std::string service = std::to_string(port);
    if (lf::api().getinfo(FI_VERSION(1, 9), host, service.c_str(), 0, hints_, &dest) != 0) return BAD_ADDRESS;
    if (int s = ensureDomain(dest)) {
      lf::api().freeinfo(dest);
      return s == SYSTEM ? FAILED : s;
    }
  }
  if (int s = p->beginConnect()) {
    if (dest) lf::api().freeinfo(dest);
    return s;
  }
  post(Command{Command::CONNECT, uint16_t(peer), dest, addr, len});
  return OK;
}

int LfFabric::write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  LfPeer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  return sendWrite(p, lane, offset, length, with_imm, imm);
}

int LfFabric::writeAll(uint64_t offset, uint64_t length, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  const uint32_t n = peers_.size();
  int queued = 0;
  for (uint32_t i = 0; i < n; i++) {
    LfPeer* p = peers_.at(i);
    if (p->state.load(std::memory_order_relaxed) == PeerState::CONNECTED &&
        sendWrite(p, lane, offset, length, false, 0) == OK) {
      queued++;
    }
  }
  return queued;
}

// Runs of writes that travel as messages share one message: their frames back to back in one send slot
// (applyMessage takes them apart). A write that goes one-sided, or does not fit what the slot has left, is
// sent (or queued) on its own after the run before it, so the batch keeps its order.
int LfFabric::writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) {
  if (!rangesFit(ranges, count)) return BAD_RANGE;
  LfPeer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  std::lock_guard<FairMutex> lock(p->mu[lane]);
  if (int s = sendable(p, lane)) return s;
  thread_local std::vector<uint8_t> run;
  run.clear();
  uint32_t frames = 0;
  auto flush = [&]() {
    if (run.empty()) return 0;
    Stats::add(stats_.frames_out, frames);
    const int r = sendCopy(p->tx[lane], run.data(), uint32_t(run.size()));
    run.clear();
    frames = 0;
    return r;
  };
  const uint64_t max = std::min<uint64_t>(opt_.max_frame_bytes, kChunkBytes);
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t offset = uint64_t(ranges[2 * i]), length = uint64_t(ranges[2 * i + 1]);
    const uint64_t bytes = frame::kHeaderBytes + length;
    if (length > max || regionOf(p, offset, length)) {
      if (flush() != 0 || sendWriteLocked(p, lane, offset, length, false, 0) != OK) return FAILED;
      continue;
    }
    if (run.size() + bytes > kSlotBytes && flush() != 0) return FAILED;
    const size_t at = run.size();
    run.resize(at + bytes);
    frame::encode(&run[at], frame::WRITE, offset, uint32_t(length), 0);
    snapshot(&run[at + frame::kHeaderBytes], arena_.base + offset, length);
    frames++;
  }
  return flush() == 0 ? OK : FAILED;
}

int LfFabric::disconnect(uint32_t peer) {
  if (closed()) return FAILED;
  LfPeer* p = peers_.get(peer);
  if (!p) return NOT_CONNECTED;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->closeLocallyLocked()) return OK;
  }
  post(Command{Command::DISCONNECT, uint16_t(peer), nullptr, {}, 0});
  return OK;
}

// For tests: the poller ends one lane of the peer as a network fault would (its endpoint shut down, or its
// RDM side channel closed), telling neither side's peer state; both ends must then fail the peer.
int LfFabric::breakLane(uint32_t peer, uint8_t lane) {
  if (closed()) return FAILED;
  LfPeer* p = peers_.get(peer);
  if (!p || p->state.load() != PeerState::CONNECTED) return NOT_CONNECTED;
  post(Command{Command::BREAK, uint16_t(peer), nullptr, {}, 0, lane});
  return OK;
}

// Adds fd to the poller's epoll set (or changes its events); its events are looked up by fd.
int LfFabric::watch(int fd, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  return epoll_ctl(epoll_fd_, op, fd, &ev);
}

void LfFabric::kick() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof one);
  (void)r;
}

void LfFabric::post(const Command& c) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back(c);
  }
  kick();
}

}  // namespace squall::lf
