// What the addon's exports (api.cc, api_stats.cc) share: reading arguments without throwing, making values
// quietly, and the guard every export runs in. api.cc's opening comment says why nothing here may throw into
// JS through node-addon-api.

#pragma once
#include <napi.h>

#include <cmath>
#include <exception>
#include <memory>
#include <string>

#include "backend.h"
#include "frame.h"
#include "registry.h"

namespace squall::api {

constexpr double kMaxSafeInteger = 9007199254740991.0;

// Reads argument i as a non-negative integer no larger than `max`; false if it is anything else.
inline bool uintArg(const Napi::CallbackInfo& info, size_t i, double max, uint64_t* out) {
  if (i >= info.Length()) return false;
  napi_valuetype type;
  double d;
  if (napi_typeof(info.Env(), info[i], &type) != napi_ok || type != napi_number) return false;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) return false;
  if (!(d >= 0 && d <= max) || std::floor(d) != d) return false;
  *out = uint64_t(d);
  return true;
}

inline bool u32Arg(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  uint64_t v;
  if (!uintArg(info, i, 4294967295.0, &v)) return false;
  *out = uint32_t(v);
  return true;
}

// The type of argument i (napi_undefined when absent or when it cannot be read).
inline napi_valuetype argType(const Napi::CallbackInfo& info, size_t i) {
  napi_valuetype type = napi_undefined;
  if (i >= info.Length() || napi_typeof(info.Env(), info[i], &type) != napi_ok) return napi_undefined;
  return type;
}

inline bool stringArg(const Napi::CallbackInfo& info, size_t i, char* out, size_t size) {
  if (argType(info, i) != napi_string) return false;
  size_t len;
  return napi_get_value_string_utf8(info.Env(), info[i], out, size, &len) == napi_ok && len < size - 1;
}

// A value for JS, or an empty Napi::Value (undefined to the caller) when it cannot be made.
inline Napi::Value number(napi_env env, double d) {
  napi_value v;
  return napi_create_double(env, d, &v) == napi_ok ? Napi::Value(env, v) : Napi::Value();
}

inline Napi::Value status(const Napi::CallbackInfo& info, double s) { return number(info.Env(), s); }

// Sets out[name] = value, quietly: false when the env refused (it is going away).
inline bool put(napi_env env, napi_value out, const char* name, napi_value value) {
  return value != nullptr && napi_set_named_property(env, out, name, value) == napi_ok;
}

inline napi_value newObject(napi_env env) {
  napi_value out;
  return napi_create_object(env, &out) == napi_ok ? out : nullptr;
}

inline napi_value newString(napi_env env, const char* text) {
  napi_value out;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out) == napi_ok ? out : nullptr;
}

// Reads the optional lane argument i (frame::Lane: 0 data, the default; 1 control); false if it is
// present and anything else.
inline bool laneArg(const Napi::CallbackInfo& info, size_t i, uint8_t* lane) {
  *lane = frame::DATA;
  if (argType(info, i) == napi_undefined) return true;
  uint32_t v;
  if (!u32Arg(info, i, &v) || v >= frame::kLanes) return false;
  *lane = uint8_t(v);
  return true;
}

// Reads argument i as a Uint8Array; false if it is anything else. *data stays valid while the array lives.
inline bool bytesArg(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* length) {
  bool is_typed = false;
  if (i >= info.Length() || napi_is_typedarray(info.Env(), info[i], &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t byte_offset;
  void* at = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[i], &type, length, &at, &buffer, &byte_offset) != napi_ok ||
      type != napi_uint8_array) {
    return false;
  }
  *data = static_cast<uint8_t*>(at);
  return *length == 0 || at != nullptr;
}

// Looks up the fabric named by argument 0.
inline std::shared_ptr<Backend> fabricArg(const Napi::CallbackInfo& info) {
  uint32_t handle;
  if (!u32Arg(info, 0, &handle)) return nullptr;
  return registry::find(handle);
}

// Nothing below may let a C++ exception reach Node-API: each export runs inside this guard, and an
// exception (out of memory) becomes a JS error — if the env can take one. With an exception already
// pending, or an env that cannot run JS (napi_throw_error then fails, and is not fatal as node-addon-api's
// throw is), the call returns undefined.
template <typename F>
inline Napi::Value guarded(const Napi::CallbackInfo& info, F body) {
  try {
    return body();
  } catch (const std::exception& e) {
    napi_env env = info.Env();
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
      napi_throw_error(env, "ERR_SQUALL_NATIVE", (std::string("squall native fabric: ") + e.what()).c_str());
    }
    return Napi::Value();
  }
}

}  // namespace squall::api
