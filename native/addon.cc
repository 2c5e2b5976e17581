// squall_fabric.node: registers the exports, nothing else (the work is in api.cc and below).
// Node-API addons are context-aware, so this loads in the main thread and in every worker.
//
// Raw Node-API here, not Napi::Function::New / Object::Set: a worker can be terminated while it loads the
// addon (a spare worker closed as its member closes), and then every napi call that needs JS fails;
// node-addon-api would turn that failure into a fatal napi_throw and abort the process. A failed
// registration instead leaves an incomplete exports object in a thread that is going away anyway.

#include <node_api.h>
#include <napi.h>

#include "api.h"

namespace {

using Export = Napi::Value (*)(const Napi::CallbackInfo&);

// The Node-API callback of an export: the Napi::CallbackInfo wrapper only reads the arguments
// (napi_get_cb_info, which never needs JS to run).
template <Export F>
napi_value call(napi_env env, napi_callback_info info) {
  Napi::CallbackInfo args(env, info);
  return F(args);
}

template <Export F>
void add(napi_env env, napi_value exports, const char* name) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, call<F>, nullptr, &fn) == napi_ok) {
    napi_set_named_property(env, exports, name, fn);
  }
}

}  // namespace

NAPI_MODULE_INIT() {
  using namespace squall::api;
  add<Version>(env, exports, "version");
  add<Create>(env, exports, "create");
  add<Listen>(env, exports, "listen");
  add<GrantRange>(env, exports, "grant");
  add<Connect>(env, exports, "connect");
  add<Write>(env, exports, "write");
  add<WriteImm>(env, exports, "writeImm");
  add<WriteAll>(env, exports, "writeAll");
  add<Wait>(env, exports, "wait");
  add<Wake>(env, exports, "wake");
  add<Arrive>(env, exports, "arrive");
  add<WriteBatch>(env, exports, "writeBatch");
  add<OnArrival>(env, exports, "onArrival");
  add<Disconnect>(env, exports, "disconnect");
  add<BreakLane>(env, exports, "breakLane");
  add<Close>(env, exports, "close");
  add<GetStats>(env, exports, "stats");
  add<Connections>(env, exports, "connections");
  add<Mode>(env, exports, "mode");
  add<SetLayoutTag>(env, exports, "setLayoutTag");
  add<Digest>(env, exports, "digest");
  return exports;
}
