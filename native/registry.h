// Fabrics by handle, for the whole process. The addon is loaded once per thread (main thread, workers),
// and a worker reaches a fabric made on the main thread through its handle number (sent by postMessage),
// so the table is process-global, under a mutex. Holding the shared_ptr keeps a fabric alive for the call
// even if another thread closes it meanwhile.
//
// The arena's memory belongs to the JS env that created the fabric. That env holds a strong reference to
// the arena view until the fabric is closed from it, or until the env is torn down (worker exit, process
// exit), when a cleanup hook closes the fabric first — so the poller never writes into freed memory.

#pragma once
#include <node_api.h>

#include <cstdint>
#include <memory>

#include "backend.h"

namespace squall::registry {

// Registers a started fabric owned by `env`; `arena_view` is kept alive until it closes. Returns its handle.
uint32_t add(napi_env env, napi_value arena_view, std::shared_ptr<Backend> fabric);

std::shared_ptr<Backend> find(uint32_t handle);

// Closes and forgets the fabric (idempotent). Safe from any env.
void close(napi_env env, uint32_t handle);

}  // namespace squall::registry
