// Setting the libfabric backend up (lf_fabric.h): the mode the provider offers, the domain and its queues, each
// lane's endpoint and registered slots; and stop(), which takes it all down.

#include "libfabric/lf_fabric.h"

#include <dirent.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <system_error>
#include <utility>

namespace squall::lf {

namespace {
constexpr uint64_t kRmaOrder = FI_ORDER_SAS | FI_ORDER_WAW | FI_ORDER_SAW | FI_ORDER_WAS;
}  // namespace

// The hints for one mode (see Mode).
fi_info* LfFabric::hintsFor(Mode m) const {
  fi_info* h = lf::api().dupinfo(nullptr);  // fi_allocinfo()
  if (!h) return nullptr;
  h->caps = m == Mode::RMA   ? FI_MSG | FI_RMA | FI_WRITE | FI_REMOTE_WRITE
            : m == Mode::RDM ? FI_MSG | FI_SOURCE
                             : FI_MSG;
  // FI_RX_CQ_DATA: a provider may make a write with remote CQ data consume a posted receive (verbs does);
  // pollConnCq then reposts it.
  h->mode = FI_CONTEXT | FI_CONTEXT2 | FI_RX_CQ_DATA;
  h->ep_attr->type = m == Mode::RDM ? FI_EP_RDM : FI_EP_MSG;
  h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_ALLOCATED | FI_MR_VIRT_ADDR | FI_MR_PROV_KEY;
  h->domain_attr->threading = FI_THREAD_SAFE;
  h->tx_attr->msg_order = m == Mode::RMA ? kRmaOrder : FI_ORDER_SAS;
  h->rx_attr->msg_order = m == Mode::RMA ? kRmaOrder : FI_ORDER_SAS;
  h->fabric_attr->prov_name = strdup(prov_.c_str());
  return h;
}

// 0 when the provider offers mode m with what the backend needs (message sizes, ordering), else an fi errno.
int LfFabric::offers(const fi_info* hints, Mode m) const {
  fi_info* info = nullptr;
  int r = lf::api().getinfo(FI_VERSION(1, 9), nullptr, nullptr, 0, const_cast<fi_info*>(hints), &info);
  if (r != 0 || !info) return r < 0 ? -r : FI_ENODATA;
  bool ok = info->ep_attr->max_msg_size >= kSlotBytes;
  if (m == Mode::RMA) {
    ok = ok && info->ep_attr->max_msg_size >= kRmaChunkBytes && (info->tx_attr->msg_order & kRmaOrder) == kRmaOrder &&
         (info->rx_attr->msg_order & kRmaOrder) == kRmaOrder;
  }
  lf::api().freeinfo(info);
  return ok ? 0 : FI_ENODATA;
}

int LfFabric::start() {
  if (!lf::load()) return NO_LIBRARY;
  // "P+rma": RMA or nothing; "P+msg": messages; "P": the first mode the provider offers, RMA first.
  std::vector<Mode> modes = {Mode::RMA, Mode::MSG, Mode::RDM};
  using Suffix = std::pair<std::string, std::vector<Mode>>;
  for (const auto& [suffix, only] : {Suffix{"+rma", {Mode::RMA}}, Suffix{"+msg", {Mode::MSG, Mode::RDM}}}) {
    if (prov_.size() > suffix.size() && prov_.compare(prov_.size() - suffix.size(), suffix.size(), suffix) == 0) {
      prov_.resize(prov_.size() - suffix.size());
      modes = only;
    }
  }
  for (Mode m : modes) {
    fi_info* h = hintsFor(m);
    if (!h) return SYSTEM;
    const int err = offers(h, m);
    if (err == 0) {
      hints_ = h;
      mode_ = m;
      break;
    }
    lf::api().freeinfo(h);
    last_errno_ = err == FI_ENODATA ? 0 : err;
  }
  if (!hints_) return NO_PROVIDER;
  last_errno_ = 0;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  if (watch(wake_fd_, EPOLLIN) != 0) {
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

int LfFabric::ensureDomain(fi_info* info) {
  std::lock_guard<std::mutex> lock(domain_mu_);
  if (ready_.load(std::memory_order_acquire)) return OK;
  int r = lf::api().fabric(info->fabric_attr, &fabric_, nullptr);
  if (r == 0) r = fi_domain(fabric_, info, &domain_, nullptr);
  if (r == 0) {
    fi_eq_attr eq_attr{};
    eq_attr.size = 1024;
    eq_attr.wait_obj = FI_WAIT_FD;
    if (fi_eq_open(fabric_, &eq_attr, &eq_, nullptr) != 0) {
      eq_attr.wait_obj = FI_WAIT_NONE;
      r = fi_eq_open(fabric_, &eq_attr, &eq_, nullptr);
    } else if (fi_control(&eq_->fid, FI_GETWAIT, &eq_fd_) != 0) {
      eq_fd_ = -1;
    }
  }
  if (r != 0) {
    last_errno_ = -r;
    return SYSTEM;
  }
  mr_local_ = (info->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
  data_ = rma() && info->domain_attr->cq_data_size >= 8;
  fi_info* control_info = rdm_control_info_ ? rdm_control_info_ : info;
  if (rdm() && ((r = openRdm(info, frame::DATA)) != 0 || (r = openRdm(control_info, frame::CONTROL)) != 0)) {
    last_errno_ = -r;
    return SYSTEM;
  }
  if (rma()) {
    // The arena as the source of one-sided writes (local access; the grants are registered for remote
    // access one by one, sendGrantKeys).
    mr_virt_addr_ = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    mr_prov_key_ = (info->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
    const size_t key_bytes = info->domain_attr->mr_key_size;
    key_mask_ = key_bytes >= 8 || key_bytes == 0 ? ~0ull : (1ull << (8 * key_bytes)) - 1;
    std::random_device random;
    next_key_ = (uint64_t(random()) << 32 | random()) & key_mask_;
    r = check(fi_mr_reg(domain_, arena_.base + map::DYNAMIC_BASE, arena_.bytes - map::DYNAMIC_BASE, FI_WRITE, 0,
                        nextKey(), 0, &arena_mr_, nullptr),
              "fi_mr_reg(arena)");
    if (r != 0) {
      arena_mr_ = nullptr;
      last_errno_ = -r;
      return SYSTEM;
    }
    arena_desc_ = fi_mr_desc(arena_mr_);
  }
  ready_.store(true, std::memory_order_release);
  kick();  // the poller adds the queues' wait descriptors to its epoll set
  return OK;
}

// RDM mode, from ensureDomain: one lane's endpoint, its address vector and CQ, and its receive pool.
int LfFabric::openRdm(fi_info* info, uint8_t lane) {
  RdmLane& l = rdm_[lane];
  fi_av_attr av_attr{};
  av_attr.type = FI_AV_MAP;
  int r = check(fi_av_open(domain_, &av_attr, &l.av, nullptr), "fi_av_open");
  if (r == 0) r = check(openCq(&l.cq, &l.cq_fd), "fi_cq_open");
  if (r == 0) r = check(fi_endpoint(domain_, info, &l.ep, nullptr), "fi_endpoint");
  if (r == 0) r = check(fi_ep_bind(l.ep, &l.av->fid, 0), "fi_ep_bind(av)");
  if (r == 0) r = check(fi_ep_bind(l.ep, &l.cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
  if (r == 0) r = check(fi_enable(l.ep), "fi_enable");
  char name[kNameMaxBytes];
  size_t len = sizeof name;
  if (r == 0) r = check(fi_getname(&l.ep->fid, name, &len), "fi_getname");
  if (r != 0) return r;
  l.name.assign(name, len);
  const uint32_t slots = lane == frame::CONTROL ? kControlPoolSlots : kPoolSlots;
  const size_t bytes = size_t(slots) * kSlotBytes;
  l.pool_mem.reset(new uint8_t[bytes]);
  if (mr_local_) {
    r = check(fi_mr_reg(domain_, l.pool_mem.get(), bytes, FI_RECV, 0, 0, 0, &l.pool_mr, nullptr), "fi_mr_reg(pool)");
    if (r != 0) return r;
    l.pool_desc = fi_mr_desc(l.pool_mr);
  }
  l.pool.reset(new Slot[slots]);
  for (uint32_t i = 0; i < slots; i++) {
    l.pool[i].buf = l.pool_mem.get() + size_t(i) * kSlotBytes;
    l.pool[i].pooled = true;
    l.pool[i].lane = lane;
    Slot& slot = l.pool[i];
    r = check(int(fi_recv(l.ep, slot.buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &slot.ctx)), "fi_recv(pool)");
    if (r != 0) return r;
  }
  return 0;
}

// shm keeps each endpoint's queues in a file in /dev/shm named after the endpoint's source address, and
// removes it when the endpoint closes; a member killed with SIGKILL leaves its file behind. squall names
// the address squall-<pid>-<n>, so each new shm fabric can remove the files of processes that are gone.
namespace {

std::string shmName() {
  static std::atomic<uint32_t> next{0};
  return "squall-" + std::to_string(getpid()) + "-" + std::to_string(next.fetch_add(1));
}

void removeStaleShmFiles() {
  DIR* dir = opendir("/dev/shm");
  if (!dir) return;
  while (const dirent* e = readdir(dir)) {
    if (std::strncmp(e->d_name, "squall-", 7) != 0) continue;
    const long pid = std::strtol(e->d_name + 7, nullptr, 10);
    if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) unlinkat(dirfd(dir), e->d_name, 0);
  }
  closedir(dir);
}

}  // namespace

int LfFabric::ensureRdm() {
  if (ready_.load(std::memory_order_acquire)) return OK;
  const bool shm = prov_ == "shm";
  if (shm) removeStaleShmFiles();
  // One endpoint per lane; on shm each needs a name (its queue file) of its own.
  fi_info* info[frame::kLanes] = {};
  for (fi_info*& one : info) {
    const std::string name = shm ? shmName() : std::string();
    const char* node = shm ? name.c_str() : nullptr;
    if (lf::api().getinfo(FI_VERSION(1, 9), node, nullptr, shm ? FI_SOURCE : 0, hints_, &one) != 0 || !one) {
      for (fi_info* i : info) if (i) lf::api().freeinfo(i);
      return SYSTEM;
    }
  }
  std::lock_guard<std::mutex> lock(rdm_info_mu_);
  rdm_control_info_ = info[frame::CONTROL];
  const int s = ensureDomain(info[frame::DATA]);
  rdm_control_info_ = nullptr;
  for (fi_info* i : info) lf::api().freeinfo(i);
  return s;
}

// A completion queue with a wait descriptor if the provider offers one (fd -1: the poller polls).
int LfFabric::openCq(fid_cq** cq, int* fd) {
  fi_cq_attr attr{};
  attr.size = kCqSize;
  attr.format = FI_CQ_FORMAT_DATA;
  attr.wait_obj = FI_WAIT_FD;
  *fd = -1;
  if (fi_cq_open(domain_, &attr, cq, nullptr) == 0) {
    if (fi_control(&(*cq)->fid, FI_GETWAIT, fd) != 0) *fd = -1;
    return 0;
  }
  attr.wait_obj = FI_WAIT_NONE;
  return fi_cq_open(domain_, &attr, cq, nullptr);
}

// The connection's registered buffers, once: receive slots (connected endpoints; RDM receives into the
// fabric's pool) and send slots.
bool LfFabric::initSlots(LfConn* c) {
  if (c->mem) return true;
  const uint32_t recvs = rdm() ? 0 : kRecvSlots;
  const size_t bytes = size_t(recvs + kSendSlots) * kSlotBytes;
  c->mem.reset(new uint8_t[bytes]);
  if (mr_local_) {
    if (fi_mr_reg(domain_, c->mem.get(), bytes, FI_SEND | FI_RECV, 0, 0, 0, &c->mr, nullptr) != 0) {
      c->mr = nullptr;
      c->mem.reset();
      return false;
    }
    c->desc = fi_mr_desc(c->mr);
  }
  uint8_t* mem = c->mem.get();
  for (uint32_t i = 0; i < recvs; i++) c->recv[i] = Slot{{}, c, mem + size_t(i) * kSlotBytes, 0, false};
  for (uint32_t i = 0; i < kSendSlots; i++) c->send[i] = Slot{{}, c, mem + size_t(recvs + i) * kSlotBytes, 0, true};
  for (uint32_t i = 0; i < kRmaOps; i++) c->rma[i] = Slot{{}, c, nullptr, 0, true, true};
  return true;
}

// A new attempt (connect retries): completions of the old one are recognised by their generation.
void LfFabric::resetSlots(LfConn* c) {
  c->gen++;
  c->free_send.clear();
  for (uint32_t i = 0; i < kSendSlots; i++) c->free_send.push_back(&c->send[i]);
  c->free_rma.clear();
  if (rma()) for (uint32_t i = 0; i < kRmaOps; i++) c->free_rma.push_back(&c->rma[i]);
}

bool LfFabric::openEp(LfConn* c, fi_info* info) {
  if (!initSlots(c)) return false;
  resetSlots(c);
  fid_ep* ep = nullptr;
  int r = check(fi_endpoint(domain_, info, &ep, c), "fi_endpoint");
  if (r == 0) r = check(fi_ep_bind(ep, &eq_->fid, 0), "fi_ep_bind(eq)");
  if (r == 0) r = check(openCq(&c->cq, &c->cq_fd), "fi_cq_open");
  if (r == 0) r = check(fi_ep_bind(ep, &c->cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
  if (r == 0) r = check(fi_enable(ep), "fi_enable");
  if (r != 0) {
    if (ep) fi_close(&ep->fid);
    if (c->cq) fi_close(&c->cq->fid);
    c->cq = nullptr;
    return false;
  }
  c->ep = ep;
  eps_[&ep->fid] = c;
  if (c->cq_fd >= 0) watch(c->cq_fd, EPOLLIN);
  for (uint32_t i = 0; i < kRecvSlots; i++) {
    Slot* s = &c->recv[i];
    s->gen = c->gen;
    if (check(int(fi_recv(ep, s->buf, kSlotBytes, c->desc, 0, &s->ctx)), "fi_recv") != 0) {
      closeEp(c);
      return false;
    }
  }
  return true;
}

void LfFabric::closeEp(LfConn* c) {
  if (rdm()) return closeSide(c);
  if (!c->ep) return;
  eps_.erase(&c->ep->fid);
  fi_shutdown(c->ep, 0);
  fi_close(&c->ep->fid);
  c->ep = nullptr;
  for (fid_mr* mr : c->grant_mrs) fi_close(&mr->fid);
  c->grant_mrs.clear();
  c->keyed = 0;
  if (c->cq_fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->cq_fd, nullptr);
  fi_close(&c->cq->fid);  // with the endpoint: no completion of its operations can come later
  c->cq = nullptr;
  c->cq_fd = -1;
}

// Frees what a connection holds besides its endpoint (closeEp): its slots' registration and where it connects.
void LfFabric::releaseConn(LfConn* c) {
  closeFid(c->mr);
  if (c->dest) lf::api().freeinfo(c->dest);
  c->dest = nullptr;
}

void LfFabric::stop() {
  stop_.store(true);
  if (poller_.joinable()) {
    kick();
    poller_.join();
  }
  const uint32_t n = peers_.size();
  for (uint32_t i = 0; i < n; i++) {
    LfPeer* p = peers_.at(i);
    std::lock_guard<std::mutex> slock(p->state_mu);
    p->closeLocallyLocked();
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      std::lock_guard<FairMutex> plock(p->mu[lane]);
      p->tx[lane] = nullptr;
    }
  }
  for (auto& c : conns_) closeEp(c.get());
  closeFid(pep_);
  if (side_listen_.load() >= 0) ::close(side_listen_.exchange(-1));
  for (RdmLane& l : rdm_) {
    closeFid(l.ep);
    closeFid(l.av);
    closeFid(l.cq);
    closeFid(l.pool_mr);
  }
  for (auto* list : {&conns_, &dead_}) for (auto& c : *list) releaseConn(c.get());
  {
    std::lock_guard<std::mutex> clock(commands_mu_);
    for (Command& c : commands_) if (c.dest) lf::api().freeinfo(c.dest);
    commands_.clear();
  }
  closeFid(arena_mr_);
  closeFid(eq_);
  closeFid(domain_);
  closeFid(fabric_);
  conns_.clear();
  dead_.clear();
  if (hints_) lf::api().freeinfo(hints_);
  hints_ = nullptr;
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  wake_fd_ = epoll_fd_ = -1;
}

}  // namespace squall::lf
