// The addon's exports. None of them may throw into JS through node-addon-api: Napi::Error::
// ThrowAsJavaScriptException and every node-addon-api helper that fails (Object::Set, TypedArray,
// ThreadSafeFunction::New, …) call napi_throw, and when the env cannot run JS — a worker being terminated
// while it calls close/attach/write/wait, or an exception already pending — napi_throw fails and, with
// NAPI_DISABLE_CPP_EXCEPTIONS, node-addon-api turns that into "FATAL ERROR: Error::
// ThrowAsJavaScriptException napi_throw": the whole process aborts. So this file talks raw Node-API
// wherever a call can fail: bad input and every failure come back as Status numbers, a value that
// cannot be built comes back as undefined (a terminating env has nobody left to read it), and the one
// error left (a C++ exception such as bad_alloc) is thrown only when the env can take it.

#include "api.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <new>

#include "api_args.h"
#include "arena.h"
#include "auth.h"
#include "backend.h"
#include "doorbell.h"
#include "frame.h"
#include "loop_wake.h"
#include "registry.h"

namespace squall::api {

Napi::Value Version(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    napi_value out = newObject(env), backends, hash;
    if (out == nullptr || napi_create_array_with_length(env, kHaveLibfabric ? 2 : 1, &backends) != napi_ok ||
        napi_create_double(env, map::MEMORY_MAP_HASH, &hash) != napi_ok) {
      return Napi::Value();
    }
    bool ok = put(env, out, "memoryMapHash", hash) &&
              napi_set_element(env, backends, 0, newString(env, "tcp")) == napi_ok &&
              (!kHaveLibfabric || napi_set_element(env, backends, 1, newString(env, "libfabric")) == napi_ok) &&
              put(env, out, "backends", backends);
    return ok ? Napi::Value(env, out) : Napi::Value();
  });
}

// create(arenaView, memberId, layoutTag, maxFrameBytes, connectTimeoutMs, handshakeTimeoutMs[, backend, provider,
// authKey]) → handle > 0, or a negative Status / ArenaCheck. backend: 0 tcp (default), 1 libfabric (provider: its
// name); NO_PROVIDER comes back as -(ERRNO_STATUS_BASE + fi errno) when libfabric gave a reason. authKey: a
// Uint8Array of auth::kMinKeyBytes…kMaxKeyBytes, or undefined/null for none (the key is copied; auth.h).
Napi::Value Create(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    FabricOptions opt;
    if (info.Length() < 6 || !u32Arg(info, 1, &opt.member_id) || !u32Arg(info, 2, &opt.layout_tag) ||
        !u32Arg(info, 3, &opt.max_frame_bytes) || !u32Arg(info, 4, &opt.connect_timeout_ms) ||
        !u32Arg(info, 5, &opt.handshake_timeout_ms) || opt.max_frame_bytes == 0) {
      return status(info, BAD_ARGUMENT);
    }
    if (info.Length() >= 7) {
      uint32_t backend;
      if (!u32Arg(info, 6, &backend) || backend > 1) return status(info, BAD_ARGUMENT);
      opt.backend = BackendKind(backend);
      if (opt.backend == BackendKind::LIBFABRIC && !stringArg(info, 7, opt.provider, sizeof opt.provider)) {
        return status(info, BAD_ARGUMENT);
      }
    }
    if (napi_valuetype t = argType(info, 8); t != napi_undefined && t != napi_null) {
      uint8_t* key;
      size_t key_length;
      if (!bytesArg(info, 8, &key, &key_length) || key_length < auth::kMinKeyBytes || key_length > auth::kMaxKeyBytes) {
        return status(info, BAD_ARGUMENT);
      }
      std::memcpy(opt.key.bytes, key, key_length);
      opt.key.length = uint32_t(key_length);
    }
    bool is_typed = false;
    napi_is_typedarray(env, info[0], &is_typed);
    if (!is_typed) return status(info, BAD_ARGUMENT);
    // napi_get_typedarray_info works for views over a SharedArrayBuffer (napi_get_arraybuffer_info
    // rejects SABs on Node 20), so the view must cover the whole memory from byte 0.
    napi_typedarray_type type;
    size_t length, byte_offset;
    void* data = nullptr;
    napi_value buffer;
    if (napi_get_typedarray_info(env, info[0], &type, &length, &data, &buffer, &byte_offset) != napi_ok ||
        type != napi_uint8_array || byte_offset != 0 || data == nullptr) {
      return status(info, BAD_ARGUMENT);
    }
    ArenaView arena{static_cast<uint8_t*>(data), uint64_t(length)};
    ArenaCheck check = checkArena(arena);
    if (check != ArenaCheck::OK) return status(info, int(check));
    std::shared_ptr<Backend> fabric = makeBackend(arena, opt);
    if (!fabric) return status(info, NOT_BUILT);
    if (int s = fabric->start()) {
      return status(info, s == NO_PROVIDER && fabric->lastErrno() ? -(ERRNO_STATUS_BASE + fabric->lastErrno()) : s);
    }
    return status(info, registry::add(env, info[0], fabric));
  });
}

// listen(h, host, port) → bound port, a negative Status, or -(ERRNO_STATUS_BASE + errno) when socket, bind or
// listen failed.
Napi::Value Listen(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    char host[256];
    uint32_t port;
    if (!stringArg(info, 1, host, sizeof host) || !u32Arg(info, 2, &port) || port > 65535) {
      return status(info, BAD_ARGUMENT);
    }
    int r = f->listen(host, int(port));
    return status(info, r == SYSTEM ? -(ERRNO_STATUS_BASE + f->lastErrno()) : r);
  });
}

// grant(h, peer, offset, length, kind, ring, quiet) → Status.
Napi::Value GrantRange(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    uint32_t peer, kind, ring, quiet;
    uint64_t offset, length;
    if (!u32Arg(info, 1, &peer) || !uintArg(info, 2, kMaxSafeInteger, &offset) ||
        !uintArg(info, 3, kMaxSafeInteger, &length) || !u32Arg(info, 4, &kind) || !u32Arg(info, 5, &ring) ||
        !u32Arg(info, 6, &quiet) || kind > 1 || ring > 255 || quiet > 1) {
      return status(info, BAD_ARGUMENT);
    }
    return status(info, f->grant(peer, Grant{offset, length, GrantKind(kind), uint8_t(ring), quiet == 1}));
  });
}

// connect(h, peer, host, port) → Status; the outcome arrives in completion ring 0.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    char host[256];
    uint32_t peer, port;
    if (!u32Arg(info, 1, &peer) || !stringArg(info, 2, host, sizeof host) || !u32Arg(info, 3, &port) || port > 65535) {
      return status(info, BAD_ARGUMENT);
    }
    return status(info, f->connect(peer, host, int(port)));
  });
}

static Napi::Value writeCommon(const Napi::CallbackInfo& info, bool with_imm) {
  auto f = fabricArg(info);
  if (!f) return status(info, FAILED);
  uint32_t peer, imm = 0;
  uint64_t offset, length;
  uint8_t lane;
  if (!u32Arg(info, 1, &peer) || !uintArg(info, 2, kMaxSafeInteger, &offset) ||
      !uintArg(info, 3, kMaxSafeInteger, &length) || (with_imm && !u32Arg(info, 4, &imm)) ||
      !laneArg(info, with_imm ? 5 : 4, &lane)) {
    return status(info, BAD_ARGUMENT);
  }
  return status(info, f->write(peer, offset, length, with_imm, imm, lane));
}

// write(h, peer, offset, length[, lane]) → Status. lane: 0 data (default), 1 control (frame.h).
Napi::Value Write(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() { return writeCommon(info, false); });
}

// writeBatch(h, peer, ranges: Float64Array of offset/length pairs, count[, lane]) → Status.
Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    uint32_t peer, count;
    uint8_t lane;
    if (!u32Arg(info, 1, &peer) || info.Length() < 4 || !u32Arg(info, 3, &count) || !laneArg(info, 4, &lane)) {
      return status(info, BAD_ARGUMENT);
    }
    bool is_typed = false;
    napi_typedarray_type type;
    size_t elements = 0;
    void* data = nullptr;
    if (napi_is_typedarray(info.Env(), info[2], &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(info.Env(), info[2], &type, &elements, &data, nullptr, nullptr) != napi_ok ||
        type != napi_float64_array || uint64_t(count) * 2 > elements || (count > 0 && data == nullptr)) {
      return status(info, BAD_ARGUMENT);
    }
    const double* pairs = static_cast<const double*>(data);
    for (uint32_t i = 0; i < 2 * count; i++) {
      if (!(pairs[i] >= 0 && pairs[i] <= kMaxSafeInteger) || std::floor(pairs[i]) != pairs[i]) {
        return status(info, BAD_ARGUMENT);
      }
    }
    return status(info, f->writeBatch(peer, pairs, count, lane));
  });
}

// writeImm(h, peer, offset, length, imm[, lane]) → Status.
Napi::Value WriteImm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() { return writeCommon(info, true); });
}

// writeAll(h, offset, length[, lane]) → peers the write was queued for, or a negative Status.
Napi::Value WriteAll(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    uint64_t offset, length;
    uint8_t lane;
    if (!uintArg(info, 1, kMaxSafeInteger, &offset) || !uintArg(info, 2, kMaxSafeInteger, &length) ||
        !laneArg(info, 3, &lane)) {
      return status(info, BAD_ARGUMENT);
    }
    if (f->closed()) return status(info, FAILED);
    return status(info, f->writeAll(offset, length, lane));
  });
}

// wait(h, seenEpoch, timeoutMs, channel, spinUs?) → the channel's epoch now (u32), or a negative Status.
// Blocks; spins first for up to spinUs (doorbell.h), at most Doorbell::kMaxSpinUs.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    uint32_t seen, timeout_ms, channel, spin_us = 0;
    if (!u32Arg(info, 1, &seen) || !u32Arg(info, 2, &timeout_ms) || !u32Arg(info, 3, &channel) ||
        channel >= map::COMPLETION_RINGS) {
      return status(info, BAD_ARGUMENT);
    }
    if (argType(info, 4) != napi_undefined && (!u32Arg(info, 4, &spin_us) || spin_us > Doorbell::kMaxSpinUs)) {
      return status(info, BAD_ARGUMENT);
    }
    return status(info, double(f->wait(channel, seen, timeout_ms, spin_us)));
  });
}

// wake(h, channel) → Status.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    uint32_t channel;
    if (!u32Arg(info, 1, &channel) || channel >= map::COMPLETION_RINGS) return status(info, BAD_ARGUMENT);
    f->wake(channel);
    return status(info, OK);
  });
}

// arrive(h, channel) → Status. Callable from any thread (a worker): the hook only sends the loop's async wake-up.
Napi::Value Arrive(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    uint32_t channel;
    if (!u32Arg(info, 1, &channel) || channel >= map::COMPLETION_RINGS) return status(info, BAD_ARGUMENT);
    f->arrive(channel);
    return status(info, OK);
  });
}

namespace {

// What the arrival function's finalizer needs: Node finalizes the function at env teardown, possibly
// before the fabric's own cleanup hook runs.
struct ArrivalOwner {
  std::shared_ptr<std::atomic<bool>> finalized;  // Node finalized the function: no Release after that
  std::weak_ptr<Backend> fabric;
  LoopWake* wake = nullptr;  // the main thread's own wake-up (loop_wake.h), closed here; else the function's calls
};

// Runs on the JS thread, once per call queued by rang(); `data` is a heap copy of the call's pending
// flag. With env == nullptr the function is being torn down: only the flag's copy is freed.
void callArrival(napi_env env, napi_value fn, void* /*context*/, void* data) {
  auto* pending = static_cast<std::shared_ptr<std::atomic<bool>>*>(data);
  if (pending != nullptr) {
    (*pending)->store(false, std::memory_order_release);  // before the call: rings during it call again
    delete pending;
  }
  if (env == nullptr || fn == nullptr) return;
  // Plain napi_call_function: during env teardown JS cannot run and the call just fails (Function::Call
  // would turn that into a fatal error); an exception the function throws stays pending and Node reports
  // it as uncaught, as for any callback.
  napi_value global;
  if (napi_get_global(env, &global) == napi_ok) napi_call_function(env, global, fn, 0, nullptr, nullptr);
}

// The function is being finalized (its env is going away, or it was released): stop the poller first,
// so nothing calls into a finalized function. Never throws: a finalizer has no one to throw to.
void finalizeArrival(napi_env /*env*/, void* data, void* /*hint*/) {
  auto* owner = static_cast<ArrivalOwner*>(data);
  owner->finalized->store(true, std::memory_order_release);
  try {
    if (auto fabric = owner->fabric.lock()) fabric->close();
  } catch (...) {
    // A finalizer has no one to report to, and an exception must not unwind into Node: closing failed, so
    // the process is going away anyway.
  }
  // The hook is gone (released) or its poller stopped (closed above): nothing sends any more.
  if (owner->wake != nullptr) loop_wake::close(owner->wake);
  delete owner;
}

// Calls a JS function on the thread that installed it after doorbells of the channels in `mask` rang.
// Calls coalesce: while one is pending, further rings add nothing — the function reads whatever landed.
// On the main thread the call goes by the loop's own wake-up (loop_wake.h), which coalesces the same way.
class JsArrival final : public ArrivalHook {
 public:
  JsArrival(napi_threadsafe_function tsfn, uint32_t mask, std::shared_ptr<std::atomic<bool>> finalized,
            LoopWake* wake)
      : tsfn_(tsfn), mask_(mask), finalized_(std::move(finalized)), wake_(wake) {}
  ~JsArrival() override {
    if (!finalized_->load(std::memory_order_acquire)) napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  }

  void rang(uint32_t channel) override {
    if (!((mask_ >> channel) & 1u)) return;
    if (wake_ != nullptr) {
      loop_wake::send(wake_);
      return;
    }
    if (pending_->exchange(true, std::memory_order_acq_rel)) return;
    // The call may run after this hook is gone: it holds the flag, not the hook.
    auto* pending = new (std::nothrow) std::shared_ptr<std::atomic<bool>>(pending_);
    if (pending == nullptr || napi_call_threadsafe_function(tsfn_, pending, napi_tsfn_nonblocking) != napi_ok) {
      delete pending;
      pending_->store(false, std::memory_order_release);
    }
  }

 private:
  napi_threadsafe_function tsfn_;
  const uint32_t mask_;
  std::shared_ptr<std::atomic<bool>> finalized_;
  LoopWake* const wake_;  // owned by the function's finalizer, which runs only after this hook is gone
  std::shared_ptr<std::atomic<bool>> pending_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace

// onArrival(h, channelMask, fn) → Status: fn runs on this thread (as a task, once per batch of rings)
// after the poller rang the doorbell of a channel in the mask. ALREADY if the fabric has one; FAILED if
// the env cannot make the thread-safe function (it is going away).
Napi::Value OnArrival(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    uint32_t mask;
    if (!u32Arg(info, 1, &mask) || mask == 0 || mask >= (1u << map::COMPLETION_RINGS) ||
        argType(info, 2) != napi_function) {
      return status(info, BAD_ARGUMENT);
    }
    napi_env env = info.Env();
    auto finalized = std::make_shared<std::atomic<bool>>(false);
    auto* owner = new ArrivalOwner{finalized, f};
    napi_value name = newString(env, "squall arrival");
    napi_threadsafe_function tsfn = nullptr;
    if (name == nullptr ||
        napi_create_threadsafe_function(env, info[2], nullptr, name, 0, 1, owner, finalizeArrival, nullptr,
                                        callArrival, &tsfn) != napi_ok) {
      delete owner;
      return status(info, FAILED);
    }
    napi_unref_threadsafe_function(env, tsfn);  // a fabric waiting for bytes does not keep the process alive
    owner->wake = loop_wake::open(env, info[2]);
    return status(info, f->setArrival(std::make_unique<JsArrival>(tsfn, mask, std::move(finalized), owner->wake)));
  });
}

// disconnect(h, peer) → Status; PEER_FAILED(LOCAL_CLOSE) follows in ring 0.
Napi::Value Disconnect(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    uint32_t peer;
    if (!u32Arg(info, 1, &peer)) return status(info, BAD_ARGUMENT);
    return status(info, f->disconnect(peer));
  });
}

// breakLane(h, peer, lane) → Status. For tests only: one lane of the peer breaks as a network fault would.
Napi::Value BreakLane(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f) return status(info, FAILED);
    uint32_t peer;
    uint8_t lane;
    if (!u32Arg(info, 1, &peer) || info.Length() < 3 || !laneArg(info, 2, &lane)) return status(info, BAD_ARGUMENT);
    return status(info, f->breakLane(peer, lane));
  });
}

// close(h) → Status. Idempotent.
Napi::Value Close(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    uint32_t handle;
    if (!u32Arg(info, 0, &handle)) return status(info, BAD_ARGUMENT);
    registry::close(info.Env(), handle);
    return status(info, OK);
  });
}

// mode(h) → how writes travel: "sockets" (tcp backend), "rma", "msg" or "rdm" (libfabric; docs/rdma.md); null if
// closed.
Napi::Value Mode(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    napi_value out = nullptr;
    if (!f) napi_get_null(info.Env(), &out);
    else out = newString(info.Env(), f->mode());
    return out ? Napi::Value(info.Env(), out) : Napi::Value();
  });
}

// setLayoutTag(h, tag) → Status. For members that learn their layout after creating the fabric.
Napi::Value SetLayoutTag(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    uint32_t tag;
    if (!u32Arg(info, 1, &tag)) return status(info, BAD_ARGUMENT);
    f->setLayoutTag(tag);
    return status(info, OK);
  });
}

// digest(key, data, out) → Status: out (32 bytes) = HMAC-SHA256(key, data), or SHA-256(data) when key is
// null. For tests, which check the handshake's primitives (sha256.h) against node:crypto.
Napi::Value Digest(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    uint8_t *key = nullptr, *data, *out;
    size_t key_length = 0, length, out_length;
    const bool keyed = argType(info, 0) != napi_null;
    if ((keyed && !bytesArg(info, 0, &key, &key_length)) || !bytesArg(info, 1, &data, &length) ||
        !bytesArg(info, 2, &out, &out_length) || out_length != sha256::kDigestBytes) {
      return status(info, BAD_ARGUMENT);
    }
    if (keyed) {
      const sha256::Part part{data, length};
      sha256::hmac(key, key_length, &part, 1, out);
    } else {
      sha256::digest(data, length, out);
    }
    return status(info, OK);
  });
}

}  // namespace squall::api
