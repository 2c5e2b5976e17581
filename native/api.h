// The addon's exports (see ts/fabric/native.ts for their contract). Numbers in, numbers out: the TS
// wrapper validates arguments and turns status codes into errors. Bad arguments come back as
// BAD_ARGUMENT, never as a thrown TypeError; the only throw is a C++ exception (out of memory) turned
// into a JS error, and only when the env can take one (api.cc says why: a worker being terminated).

#pragma once
#include <napi.h>

namespace squall::api {

Napi::Value Version(const Napi::CallbackInfo& info);
Napi::Value Create(const Napi::CallbackInfo& info);
Napi::Value Listen(const Napi::CallbackInfo& info);
Napi::Value GrantRange(const Napi::CallbackInfo& info);
Napi::Value Connect(const Napi::CallbackInfo& info);
Napi::Value Write(const Napi::CallbackInfo& info);
Napi::Value WriteImm(const Napi::CallbackInfo& info);
Napi::Value WriteAll(const Napi::CallbackInfo& info);
Napi::Value Wait(const Napi::CallbackInfo& info);
Napi::Value Wake(const Napi::CallbackInfo& info);
Napi::Value Arrive(const Napi::CallbackInfo& info);
Napi::Value OnArrival(const Napi::CallbackInfo& info);
Napi::Value WriteBatch(const Napi::CallbackInfo& info);
Napi::Value Disconnect(const Napi::CallbackInfo& info);
Napi::Value BreakLane(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value GetStats(const Napi::CallbackInfo& info);
Napi::Value Connections(const Napi::CallbackInfo& info);
Napi::Value Mode(const Napi::CallbackInfo& info);
Napi::Value SetLayoutTag(const Napi::CallbackInfo& info);
Napi::Value Digest(const Napi::CallbackInfo& info);

}  // namespace squall::api
