// The addon's diagnostic exports: the fabric's counters, stats(h), and its peers one by one, connections(h, out).
// Read when someone looks (a scrape, `squall inspect`), never on a write's path. The rules of api.cc hold: no
// throw into JS, failures as Status numbers or undefined.
//
// connections(h, out) fills a Float64Array with kConnectionFields numbers per peer (ts/fabric/connections.ts
// reads the same layout):
//
//   [0] peer id  [1] state (peers.h PeerState: 0 EXPECTED, 1 CONNECTING, 2 HANDSHAKING, 3 CONNECTED, 4 FAILED)
//   [2] fail reason (map::FailReason once FAILED, else 0)  [3] frames queued to send  [4] bytes queued to send
//   [5] bytes received  [6] bytes sent

#include <vector>

#include "api.h"
#include "api_args.h"
#include "backend.h"
#include "generated/memory_map.h"

namespace squall::api {

namespace {
constexpr uint32_t kConnectionFields = 7;
}  // namespace

// stats(h) → { framesIn, framesOut, bytesIn, bytesOut, sendCalls, recvCalls, wakeups, framesCoalesced, rmaWrites },
// or null if closed.
Napi::Value GetStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    auto f = fabricArg(info);
    if (!f) {
      napi_value null_value;
      return napi_get_null(env, &null_value) == napi_ok ? Napi::Value(env, null_value) : Napi::Value();
    }
    const Stats& s = f->stats();
    napi_value out = newObject(env);
    bool ok = out != nullptr;
    auto field = [&](const char* name, const std::atomic<uint64_t>& v) {
      napi_value n;
      ok = ok && napi_create_double(env, double(v.load(std::memory_order_relaxed)), &n) == napi_ok &&
           put(env, out, name, n);
    };
    field("framesIn", s.frames_in);
    field("framesOut", s.frames_out);
    field("bytesIn", s.bytes_in);
    field("bytesOut", s.bytes_out);
    field("sendCalls", s.send_calls);
    field("recvCalls", s.recv_calls);
    field("wakeups", s.wakeups);
    field("framesCoalesced", s.frames_coalesced);
    field("rmaWrites", s.rma_writes);
    return ok ? Napi::Value(env, out) : Napi::Value();
  });
}

// connections(h, out: Float64Array) → how many peers were written (the layout above; as many as fit), FAILED
// once the fabric is closed, BAD_ARGUMENT for anything but a Float64Array.
Napi::Value Connections(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto f = fabricArg(info);
    if (!f || f->closed()) return status(info, FAILED);
    bool is_typed = false;
    napi_typedarray_type type;
    size_t elements = 0;
    void* data = nullptr;
    if (info.Length() < 2 || napi_is_typedarray(info.Env(), info[1], &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(info.Env(), info[1], &type, &elements, &data, nullptr, nullptr) != napi_ok ||
        type != napi_float64_array || (elements > 0 && data == nullptr)) {
      return status(info, BAD_ARGUMENT);
    }
    const size_t fit = elements / kConnectionFields;
    std::vector<ConnectionInfo> peers(fit < map::MAX_MEMBERS ? fit : map::MAX_MEMBERS);
    const uint32_t n = f->connections(peers.data(), uint32_t(peers.size()));
    double* out = static_cast<double*>(data);
    for (uint32_t i = 0; i < n; i++, out += kConnectionFields) {
      const ConnectionInfo& c = peers[i];
      out[0] = c.peer;
      out[1] = double(uint8_t(c.state));
      out[2] = c.fail_reason;
      out[3] = double(c.queued_frames);
      out[4] = double(c.queued_bytes);
      out[5] = double(c.bytes_in);
      out[6] = double(c.bytes_out);
    }
    return status(info, n);
  });
}

}  // namespace squall::api
