#include "registry.h"

#include <mutex>
#include <unordered_map>

namespace squall::registry {

namespace {

struct Owner {
  napi_env env;
  napi_ref arena_ref;
  uint32_t handle;
  std::shared_ptr<Backend> fabric;
};

struct Entry {
  std::shared_ptr<Backend> fabric;
  Owner* owner;
};

std::mutex g_mu;
std::unordered_map<uint32_t, Entry> g_fabrics;
uint32_t g_next_handle = 1;

void releaseOwner(Owner* owner) {
  // The poller stops before the arena may go. This runs in env cleanup hooks too, where a C++ exception
  // (std::system_error from a mutex or a join) would unwind into Node's C frames and abort the process:
  // it is swallowed instead.
  try {
    owner->fabric->close();
  } catch (...) {
    // Swallowed on purpose (see above): an exception here would unwind into Node's C frames.
  }
  napi_delete_reference(owner->env, owner->arena_ref);
  delete owner;
}

// The owning env is going away: whatever it did not close is closed now.
void onEnvCleanup(void* arg) {
  auto* owner = static_cast<Owner*>(arg);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_fabrics.erase(owner->handle);
  }
  releaseOwner(owner);
}

}  // namespace

uint32_t add(napi_env env, napi_value arena_view, std::shared_ptr<Backend> fabric) {
  auto* owner = new Owner{env, nullptr, 0, fabric};
  napi_create_reference(env, arena_view, 1, &owner->arena_ref);
  std::lock_guard<std::mutex> lock(g_mu);
  owner->handle = g_next_handle++;
  g_fabrics.emplace(owner->handle, Entry{fabric, owner});
  napi_add_env_cleanup_hook(env, onEnvCleanup, owner);
  return owner->handle;
}

std::shared_ptr<Backend> find(uint32_t handle) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_fabrics.find(handle);
  return it == g_fabrics.end() ? nullptr : it->second.fabric;
}

void close(napi_env env, uint32_t handle) {
  Entry entry{nullptr, nullptr};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_fabrics.find(handle);
    if (it == g_fabrics.end()) return;
    entry = it->second;
    if (entry.owner->env == env) g_fabrics.erase(it);
  }
  entry.fabric->close();
  if (entry.owner->env == env) {
    napi_remove_env_cleanup_hook(env, onEnvCleanup, entry.owner);
    releaseOwner(entry.owner);
  }
  // Closed from another env: the entry stays (find() returns a closed fabric, whose calls fail) until the
  // owner closes it too or goes away, because only the owner may drop its reference to the arena.
}

}  // namespace squall::registry
