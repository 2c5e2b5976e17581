// What every backend does the same way (backend.h), and the choice of backend.

#include "backend.h"

#include <utility>

#include "copy.h"

namespace squall {

Backend::Backend(ArenaView arena, const FabricOptions& options)
    : arena_(arena), opt_(options), layout_tag_(options.layout_tag), rx_(arena, stats_, arrival_) {}

std::shared_ptr<Backend> makeBackend(ArenaView arena, const FabricOptions& options) {
  if (options.backend == BackendKind::LIBFABRIC) return makeLibfabricBackend(arena, options);
  return makeTcpBackend(arena, options);
}

#ifndef SQUALL_WITH_LIBFABRIC
std::unique_ptr<Backend> makeLibfabricBackend(ArenaView, const FabricOptions&) { return nullptr; }
#endif

int Backend::grant(uint32_t peer, const Grant& g) {
  if (closed()) return FAILED;
  if (checkPeerId(peer) != OK || g.ring >= map::COMPLETION_RINGS ||
      (g.kind == GrantKind::CONTROL && !aligned8(g.offset, g.length))) {
    return BAD_ARGUMENT;
  }
  if (g.offset < map::DYNAMIC_BASE || !arena_.contains(g.offset, g.length)) return BAD_RANGE;
  PeerCore* p = peerCore(peer, true);
  if (!p) return TOO_MANY;
  p->grants.add(g);
  return OK;
}

bool Backend::rangesFit(const double* ranges, uint32_t count) const {
  for (uint32_t i = 0; i < count; i++) {
    if (!arena_.contains(uint64_t(ranges[2 * i]), uint64_t(ranges[2 * i + 1]))) return false;
  }
  return true;
}

int64_t Backend::wait(uint32_t channel, uint32_t seen_epoch, int64_t timeout_ms, uint32_t spin_us) {
  if (closed()) return FAILED;
  return Doorbell(arena_.base, channel).wait(seen_epoch, timeout_ms, spin_us);
}

void Backend::wake(uint32_t channel) {
  if (Doorbell(arena_.base, channel).ring()) Stats::add(stats_.wakeups);
}

void Backend::arrive(uint32_t channel) {
  std::lock_guard<std::mutex> lock(close_mu_);  // close() drops the hook under it: never called once dropped
  if (!closed()) notifyArrival(arrival_, channel);
}

int Backend::setArrival(std::unique_ptr<ArrivalHook> hook) {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed()) return FAILED;
  if (arrival_owned_) return ALREADY;
  arrival_owned_ = std::move(hook);
  arrival_.store(arrival_owned_.get(), std::memory_order_release);
  return OK;
}

uint32_t Backend::connections(ConnectionInfo* out, uint32_t max) {
  const uint32_t n = peerCount() < max ? peerCount() : max;
  for (uint32_t i = 0; i < n; i++) {
    PeerCore* p = peerAt(i);
    ConnectionInfo& c = out[i];
    c = ConnectionInfo{};
    c.peer = p->id;
    {
      std::lock_guard<std::mutex> lock(p->state_mu);  // state and fail_reason together
      c.state = p->state.load();
      c.fail_reason = c.state == PeerState::FAILED ? p->fail_reason : 0;
    }
    c.bytes_in = p->bytes_in.load(std::memory_order_relaxed);
    sendSide(p, &c);
  }
  return n;
}

void Backend::close() {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed_.exchange(true)) return;
  stop();
  arrival_.store(nullptr, std::memory_order_release);
  arrival_owned_.reset();
  for (uint32_t c = 0; c < map::COMPLETION_RINGS; c++) wake(c);  // sleepers in wait() find the fabric closed
}

}  // namespace squall
