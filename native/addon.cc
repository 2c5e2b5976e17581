// squall_fabric.node: registers the exports, nothing else (the work is in api.cc and below).
// Node-API addons are context-aware, so this loads in the main thread and in every worker.

#include <napi.h>

#include "api.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace squall::api;
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("create", Napi::Function::New(env, Create, "create"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("grant", Napi::Function::New(env, GrantRange, "grant"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("writeImm", Napi::Function::New(env, WriteImm, "writeImm"));
  exports.Set("writeAll", Napi::Function::New(env, WriteAll, "writeAll"));
  exports.Set("wait", Napi::Function::New(env, Wait, "wait"));
  exports.Set("wake", Napi::Function::New(env, Wake, "wake"));
  exports.Set("writeBatch", Napi::Function::New(env, WriteBatch, "writeBatch"));
  exports.Set("onArrival", Napi::Function::New(env, OnArrival, "onArrival"));
  exports.Set("disconnect", Napi::Function::New(env, Disconnect, "disconnect"));
  exports.Set("breakLane", Napi::Function::New(env, BreakLane, "breakLane"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("stats", Napi::Function::New(env, GetStats, "stats"));
  exports.Set("mode", Napi::Function::New(env, Mode, "mode"));
  exports.Set("setLayoutTag", Napi::Function::New(env, SetLayoutTag, "setLayoutTag"));
  return exports;
}

}  // namespace

NODE_API_MODULE(squall_fabric, Init)
