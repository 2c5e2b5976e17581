// A backend of the native fabric (DESIGN.md §2): what the addon's exports (api.cc) call, whatever carries the
// bytes. Two backends implement it, as peers that know nothing of each other:
// - tcp (native/tcp/): epoll and non-blocking sockets, always built;
// - libfabric (native/libfabric/): one-sided RMA or messages over a libfabric provider, built when
//   libfabric's headers are found (binding.gyp).
// api.cc creates one with makeBackend() and the registry (registry.h) holds it by its handle.
//
// Threads, on every backend: JS threads (the main thread and workers) call the public methods, and writes
// go out from the calling thread; one poller thread per fabric owns the receiving side, applies what arrives
// under the receiver rules both backends share (rules.h, receiver.h), produces completions and rings the
// doorbells. It never calls into JS (the arrival hook hands over to a Node-API thread-safe function).
//
// What is the same on every backend is this class's: the options, the grant checks, the doorbells workers
// sleep on (wait, wake), the arrival hook, the counters, the receiver, and closing (stop the poller, then
// drop the hook and wake every sleeper). Status codes returned to JS are Status (generated/status.h, made by
// scripts/memory-map.mjs); the TS wrapper (ts/fabric/native.ts) turns them into coded errors or WriteStatus.

#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "arena.h"
#include "arrival.h"
#include "auth.h"
#include "doorbell.h"
#include "generated/status.h"
#include "grants.h"
#include "peers.h"
#include "receiver.h"
#include "stats.h"

namespace squall {

enum class BackendKind : uint8_t { TCP = 0, LIBFABRIC = 1 };

struct FabricOptions {
  uint32_t member_id;
  uint32_t layout_tag;
  uint32_t max_frame_bytes;
  uint32_t connect_timeout_ms;
  uint32_t handshake_timeout_ms;
  BackendKind backend = BackendKind::TCP;
  char provider[32] = {};  // libfabric provider name (tcp, sockets, verbs, ...)
  auth::Key key;           // with a key, every connection proves it (auth.h); without, none does
};

// One peer as connections() reports it. queued_*: what waits in this side's send queues to the peer, both lanes
// (tcp: bytes the kernel did not take yet; libfabric: frames and writes waiting for a send slot or a write
// context) — the depth that grows when the peer stops reading.
struct ConnectionInfo {
  uint32_t peer = 0;
  PeerState state = PeerState::EXPECTED;
  uint32_t fail_reason = 0;  // map::FailReason once FAILED, else 0
  uint64_t queued_frames = 0;
  uint64_t queued_bytes = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;  // a backend's own destructor calls close()
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // ---- What each backend does its own way.

  // Starts the poller thread: OK, or SYSTEM (errno in lastErrno()), NO_PROVIDER, NO_LIBRARY.
  virtual int start() = 0;
  // The bound port, or a Status (SYSTEM: errno in lastErrno()).
  virtual int listen(const char* host, int port) = 0;
  // Dials `peer` on both lanes; PEER_CONNECTED or PEER_FAILED(CONNECT_TIMEOUT, …) follows in ring 0.
  virtual int connect(uint32_t peer, const char* host, int port) = 0;
  // A one-sided write: [offset, offset+length) of this arena lands at the same offset in the peer's, on
  // `lane` (frame::DATA or frame::CONTROL, checked by api.cc); writes on one lane are applied in the order
  // made. With an immediate, the receiver's WRITE_IMM completion carrying `imm` follows the bytes.
  virtual int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) = 0;
  // The same plain write to every connected peer; returns how many peers it was queued for.
  virtual int writeAll(uint64_t offset, uint64_t length, uint8_t lane) = 0;
  // `count` ranges (offset, length pairs) to one peer, in order on one lane, sent together where the
  // transport allows: a protocol step's slots and counters leave in one send instead of one each.
  virtual int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) = 0;
  // Ends the peer; PEER_FAILED(LOCAL_CLOSE) follows in ring 0.
  virtual int disconnect(uint32_t peer) = 0;
  // For tests: one lane of a connected peer breaks as a network fault would, nobody told; both ends must
  // then fail the peer as a whole.
  virtual int breakLane(uint32_t peer, uint8_t lane) = 0;
  // How writes travel: "sockets" (tcp), "rma", "msg" or "rdm" (libfabric; docs/rdma.md).
  virtual const char* mode() const = 0;

  // ---- The same on every backend.

  // Lets `peer` write into [g.offset, g.offset+g.length) here: the receiver checks every write against its
  // grants (rules.h, checkWrite).
  int grant(uint32_t peer, const Grant& g);
  // Blocks a worker while the channel's doorbell epoch is `seen_epoch`, at most timeout_ms: the epoch then,
  // or FAILED once the fabric is closed.
  int64_t wait(uint32_t channel, uint32_t seen_epoch, int64_t timeout_ms, uint32_t spin_us = 0);
  void wake(uint32_t channel);
  // Calls the arrival hook for `channel` as a poller that rang it would: a worker that changed what the main
  // thread's step reads (the worker engine's stable frontier) wakes it with no doorbell in between.
  void arrive(uint32_t channel);
  // Installs the hook told of every doorbell ring (arrival.h); once per fabric. OK, ALREADY or FAILED (closed).
  int setArrival(std::unique_ptr<ArrivalHook> hook);
  // Idempotent. Stops the poller and ends every connection (stop()), then drops the arrival hook (no poller
  // can be inside it any more) and wakes every sleeper in wait(), which finds the fabric closed.
  void close();
  // The tag HELLOs carry and must match from now on (connections already open are not affected).
  void setLayoutTag(uint32_t tag) { layout_tag_.store(tag, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  int lastErrno() const { return last_errno_; }
  Stats& stats() { return stats_; }
  // Every peer this fabric knows (granted, connecting, connected or failed), in the order they became known: at
  // most `max` into `out`; returns how many. Any JS thread; takes each peer's state_mu, then its lanes' send
  // locks one at a time, briefly (a scrape's cost, never the poller's).
  uint32_t connections(ConnectionInfo* out, uint32_t max);

 protected:
  Backend(ArenaView arena, const FabricOptions& options);

  // close(), once, on the closing thread: stops the poller thread (joins it), then ends every connection so
  // that a writer on another thread gets FAILED, and releases what the backend holds.
  virtual void stop() = 0;
  // The backend's peer with that id, made if new and `create` (PeerTable::get).
  virtual PeerCore* peerCore(uint32_t id, bool create) = 0;
  // The backend's peers in creation order (PeerTable::size, at), for connections().
  virtual uint32_t peerCount() const = 0;
  virtual PeerCore* peerAt(uint32_t i) = 0;
  // The sending side of c's peer p: queued_frames, queued_bytes and bytes_out, both lanes; takes each lane's
  // send lock in turn.
  virtual void sendSide(PeerCore* p, ConnectionInfo* c) = 0;

  // BAD_ARGUMENT for a peer id no call may name: this member's own, or one that is not a u16 below 0xffff.
  int checkPeerId(uint32_t peer) const {
    return peer >= kPeerIds - 1 || peer == opt_.member_id ? BAD_ARGUMENT : OK;
  }
  // Whether writeBatch's ranges all lie inside the arena.
  bool rangesFit(const double* ranges, uint32_t count) const;

  const ArenaView arena_;
  const FabricOptions opt_;
  std::atomic<uint32_t> layout_tag_;
  Stats stats_;
  ArrivalSlot arrival_{nullptr};  // read by the poller; set once by setArrival, cleared by close
  Receiver rx_;                   // poller thread only
  int last_errno_ = 0;            // after SYSTEM (an errno) or NO_PROVIDER (libfabric's fi errno)

 private:
  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
  std::unique_ptr<ArrivalHook> arrival_owned_;
};

// The backend options.backend names, not started; nullptr when the addon was built without it (NOT_BUILT).
std::shared_ptr<Backend> makeBackend(ArenaView arena, const FabricOptions& options);

// Each backend's maker (tcp/tcp_backend.cc, libfabric/lf_fabric.cc); the libfabric one is nullptr when the
// addon was built without libfabric.
std::unique_ptr<Backend> makeTcpBackend(ArenaView arena, const FabricOptions& options);
std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options);
constexpr bool kHaveLibfabric =
#ifdef SQUALL_WITH_LIBFABRIC
    true;
#else
    false;
#endif

}  // namespace squall
