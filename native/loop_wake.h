// The arrival hook's wake-up of the main thread (api.cc, onArrival), without the thread-safe function's queue
// and mutex. Node's napi_call_threadsafe_function calls uv_async_send while it holds the function's mutex;
// the main thread, woken by that very write on the poller's vCPU, preempts the poller, finds the mutex taken,
// sleeps on it, and the poller must run again to let it go: two extra context switches and a futex round
// trip, seen on about a third of the main thread's wake-ups in a group (docs/benchmarks.md, "Where a hop's
// time goes"). uv_async_send alone takes no lock (an atomic flag, then one eventfd write) and coalesces
// calls as the hook's pending flag did: one callback however many rings came first.
//
// Only on the main thread's loop (uv_default_loop). The handle is closed from the thread-safe function's
// finalizer (which api.cc keeps for the lifetime rules it already has: it runs on this thread once the hook
// released it, or at env teardown after the fabric closed), and a worker's loop refuses to close while a
// handle of ours may still be closing — there the thread-safe function carries the call as before.

#pragma once
#include <node_api.h>
#include <uv.h>

namespace squall {

struct LoopWake {
  uv_async_t handle;
  napi_env env = nullptr;
  napi_ref fn = nullptr;
  napi_async_context context = nullptr;
};

namespace loop_wake {

// Calls the function as a callback from the event loop (microtasks and nextTicks run after it, as after any
// I/O callback); an exception it throws is reported as uncaught, as the thread-safe function's would be.
inline void onAsync(uv_async_t* handle) {
  auto* w = static_cast<LoopWake*>(handle->data);
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value fn = nullptr, global, ignored;
  if (napi_get_reference_value(w->env, w->fn, &fn) == napi_ok && fn != nullptr &&
      napi_get_global(w->env, &global) == napi_ok &&
      napi_make_callback(w->env, w->context, global, fn, 0, nullptr, &ignored) == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(w->env, &error) == napi_ok) napi_fatal_exception(w->env, error);
  }
  napi_close_handle_scope(w->env, scope);
}

// A wake-up for `fn` on this thread's loop, or nullptr when this is not the main thread's loop or the env
// refused (the caller then uses the thread-safe function). It does not keep the loop alive.
inline LoopWake* open(napi_env env, napi_value fn) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop != uv_default_loop()) return nullptr;
  auto* w = new (std::nothrow) LoopWake();
  if (w == nullptr) return nullptr;
  w->env = env;
  napi_value name;
  if (napi_create_reference(env, fn, 1, &w->fn) != napi_ok ||
      napi_create_string_utf8(env, "squall arrival", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, nullptr, name, &w->context) != napi_ok || uv_async_init(loop, &w->handle, onAsync) != 0) {
    if (w->context != nullptr) napi_async_destroy(env, w->context);
    if (w->fn != nullptr) napi_delete_reference(env, w->fn);
    delete w;
    return nullptr;
  }
  w->handle.data = w;
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->handle));
  return w;
}

// Any thread: the function runs soon on the loop's thread.
inline void send(LoopWake* w) { uv_async_send(&w->handle); }

// On the loop's thread, once nothing calls send() any more: a pending call is dropped.
inline void close(LoopWake* w) {
  napi_async_destroy(w->env, w->context);
  napi_delete_reference(w->env, w->fn);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), [](uv_handle_t* h) { delete static_cast<LoopWake*>(h->data); });
}

}  // namespace loop_wake
}  // namespace squall
