// A peer and each of its lanes as the libfabric backend keeps them (lf_fabric.h): LfPeer extends PeerCore
// (peers.h) with the lanes' send mutexes and the regions the peer keyed for one-sided writes; LfConn is one
// lane's endpoint (connected modes: its own FI_EP_MSG endpoint and CQ; RDM: the fabric's lane endpoint, an
// address in its AV and a side channel), its registered slots, its send queue, and what it received but
// has not applied yet.

#pragma once
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fair_mutex.h"
#include "frame.h"
#include "grants.h"
#include "libfabric/lf_loader.h"
#include "libfabric/lf_wire.h"
#include "peers.h"
#include "receiver.h"

namespace squall::lf {

constexpr uint32_t kRecvSlots = 32;
constexpr uint32_t kSendSlots = 32;
constexpr uint32_t kRmaOps = 64;  // fi_write operations in flight per connection (+32 sends < tx size 256)
constexpr size_t kCqSize = 4096;  // per connection: its sends, receives, one-sided writes and the peer's
constexpr uint32_t kPoolSlots = 128;  // RDM mode: receive slots shared by every peer (data lane)
constexpr uint32_t kControlPoolSlots = 32;  // RDM mode: the control lane's

// Closes a libfabric object if open, and forgets it.
template <typename T>
void closeFid(T*& object) {
  if (object) fi_close(&object->fid);
  object = nullptr;
}

// SQUALL_LF_DEBUG=1 prints libfabric calls that failed (stderr).
inline bool debugOn() {
  static const bool on = std::getenv("SQUALL_LF_DEBUG") != nullptr;
  return on;
}
inline int check(int r, const char* what) {
  if (r != 0 && debugOn()) std::fprintf(stderr, "squall libfabric: %s: %s (%d)\n", what, lf::api().strerror(-r), r);
  return r;
}

struct LfConn;

// One registered buffer of a connection, posted to fi_recv or fi_send. The provider's per-operation context
// comes first, so a completion's op_context is the slot.
struct Slot {
  fi_context2 ctx;
  LfConn* conn = nullptr;
  uint8_t* buf = nullptr;
  uint32_t gen = 0;  // the connection's endpoint generation when posted (connect retries open new endpoints)
  bool send = false;
  bool rma = false;  // an fi_write / fi_writedata (RMA mode): no buffer, returns to free_rma when done
  bool pooled = false;  // RDM mode: a receive slot of the fabric's pool (conn null: the sender names the peer)
  uint8_t lane = frame::DATA;  // RDM mode, pooled: whose endpoint's pool
};

// What arrived on a connection and waits to be applied behind a held completion: a frame in a receive slot,
// or a one-sided write described by its remote CQ data (slot: the receive it consumed, if the provider
// needs one for remote CQ data, FI_RX_CQ_DATA; else none). A frame in a slot of the RDM pool is copied out
// and the slot reposted at once: the pool serves every peer, and one held peer must not drain it.
struct Arrival {
  Slot* slot;
  uint32_t len;
  bool remote_write;
  uint64_t data;
  std::vector<uint8_t> copy;  // the frame, when it came in a pool slot
};

// How writes travel (chosen in start() from the provider's name and what it offers; docs/rdma.md):
// RMA: connected endpoints, every write into a DATA grant the peer keyed one-sided into its arena, the rest
//      messages;
// MSG: connected endpoints, every write a message;
// RDM: reliable-datagram endpoints (providers without connected ones, e.g. shm), every write a message.
enum class Mode : uint8_t { RMA, MSG, RDM };

struct LfPeer : PeerCore {
  explicit LfPeer(uint16_t i) : PeerCore(i) {}
  FairMutex mu[frame::kLanes];          // per lane: everything that posts on that lane's endpoint
  LfConn* tx[frame::kLanes] = {};       // under mu[lane]: where that lane's writes go, from its handshake on
  LfConn* conn[frame::kLanes] = {};     // poller only
  // RMA mode: the regions of the peer's arena it granted this side, with their keys (GRANT_KEY). Written
  // under both lanes' mu, read under either.
  std::vector<RemoteRegion> regions;
  std::atomic<uint64_t> bytes_out{0};  // bytes posted to the peer, both lanes (Stats::add; connections())
  const RemoteRegion* regionFor(uint64_t offset, uint64_t length) const {
    for (const RemoteRegion& r : regions) {
      const bool inside = offset >= r.offset && offset - r.offset <= r.length;
      if (inside && length <= r.length - (offset - r.offset)) return &r;
    }
    return nullptr;
  }
};

// What waits in a connection's send queue, in order: a frame (header + payload snapshot), or in RMA mode a
// one-sided write (bytes empty), read from the arena when it is posted (postRma).
struct PendingFrame {
  std::vector<uint8_t> bytes;
  bool coalescible = false;
  bool rma = false;
  RemoteRegion region{};
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t done = 0;  // bytes of it posted so far
  bool with_imm = false;
  uint32_t imm = 0;
};

// Phase (peers.h) here: with an auth key both sides pass through AUTH (the acceptor waits for the initiator's
// proof; the initiator for the acceptor's closing AUTH, after its GRANT_KEYs). In WAIT_SIBLING what arrives is
// held in the backlog until both lanes are up (acceptor: until deadline_ns).
struct LfConn {
  LfConn(Role r, Phase p) : role(r), phase(p) {}
  const Role role;
  Phase phase;
  LfPeer* peer = nullptr;
  uint8_t lane = frame::DATA;  // initiator: from the start; acceptor: from the peer's HELLO (RDM: its name record)
  FairMutex& mu() const { return peer->mu[lane]; }
  fid_ep* ep = nullptr;
  fid_cq* cq = nullptr;  // the endpoint's own completion queue: a remote write's completion names no context
  int cq_fd = -1;
  uint32_t gen = 0;
  uint64_t deadline_ns = 0;
  uint64_t connect_deadline_ns = 0;
  fi_info* dest = nullptr;  // initiator: where to connect (owned)

  // RDM mode. The endpoint is the fabric's (shared); sends go to `addr` in its address vector. A TCP
  // connection to the peer's listening address (the side channel) carries the two endpoint names, one
  // record each way, and then nothing: its end (EOF, error) is the peer's end, as FI_SHUTDOWN is for
  // connected endpoints.
  fi_addr_t addr = 0;  // a connected endpoint ignores it
  bool in_av = false;  // addr is the peer's, and by_addr_ maps it to this connection
  int sock = -1;
  sockaddr_storage sock_dest{};  // initiator: the peer's listening address
  socklen_t sock_dest_len = 0;
  bool name_sent = false;
  std::string name_in;  // the peer's name record as read so far

  std::unique_ptr<uint8_t[]> mem;  // kRecvSlots then kSendSlots buffers of kSlotBytes
  fid_mr* mr = nullptr;            // when the domain wants local buffers registered (FI_MR_LOCAL)
  void* desc = nullptr;
  Slot recv[kRecvSlots];
  Slot send[kSendSlots];
  Slot rma[kRmaOps];

  // Under mu() (the acceptor's before the HELLO: poller only).
  std::vector<Slot*> free_send;
  std::vector<Slot*> free_rma;
  std::deque<PendingFrame> pending;  // frames waiting for a free send slot, oldest first
  std::atomic<bool> has_pending{false};  // !pending.empty(), for the poller's timeout without the lock
  uint64_t pending_bytes = 0;  // the bytes of pending's frames, one-sided writes counted whole (connections())
  // The only ways pending changes, so has_pending and pending_bytes follow it.
  void enqueue(PendingFrame&& f) {
    pending_bytes += f.rma ? f.length : f.bytes.size();
    pending.push_back(std::move(f));
    has_pending.store(true, std::memory_order_relaxed);
  }
  void dequeue() {
    const PendingFrame& f = pending.front();
    pending_bytes -= f.rma ? f.length : f.bytes.size();
    pending.pop_front();
    if (pending.empty()) has_pending.store(false, std::memory_order_relaxed);
  }
  void clearPending() {
    pending.clear();
    pending_bytes = 0;
    has_pending.store(false, std::memory_order_relaxed);
  }

  // Poller only.
  std::deque<Arrival> backlog;  // received, not applied: a completion is held ahead of them
  HeldCompletion held;          // a completion waiting for room in its ring (receiver.h)
  GrantCopy grants;             // the poller's copy of peer->grants
  size_t keyed = 0;                // RMA mode: grants.list[0, keyed) are registered and their keys sent
  std::vector<fid_mr*> grant_mrs;  // RMA mode: those registrations, closed with the endpoint
  std::vector<RemoteRegion> early_regions;  // RMA mode: GRANT_KEYs that came before the peer's HELLO
  // With an auth key: the nonce this side sent, and the other side's HELLO (its nonce, its member id).
  uint8_t nonce[frame::kNonceBytes] = {};
  frame::Hello hello{};
  // The chunks of a split write-with-immediate applied so far ([run_offset, run_end)); run_end == 0: none.
  uint64_t run_offset = 0;
  uint64_t run_end = 0;
};

}  // namespace squall::lf
