// The libfabric backend: see lf_fabric.h for what it does and how it keeps the TCP backend's receiver
// rules. Connection states, fail reasons and completions are those of the TCP backend (handshake.cc,
// poller.cc); the comments here say only where libfabric makes things different.
//
// Lanes (native/frame.h, Lane): every peer is two LfConns, a control lane and a data lane, each with its own
// endpoint (connected modes: its own FI_EP_MSG endpoint, CQ, slots and send queue; RDM: the fabric's
// control or data RDM endpoint, with its own CQ, address vector and receive pool, and its own side
// channel), its own mutex at the sender (LfPeer::mu[lane]), and the same receiver rules (applyFrame,
// applyRange). The poller reads the control lanes' completion queues first and again after each busy data
// queue. A peer is CONNECTED once both lanes' HELLOs are exchanged; a lane whose HELLOs are done waits for
// its sibling, what it receives held in its backlog (LfPhase::WAIT_SIBLING). Either lane failing fails
// the peer, both lanes, once.

#include "libfabric/lf_fabric.h"
#include "libfabric/lf_loader.h"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <dirent.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <cstdio>
#include <cstdlib>

#include "auth.h"
#include "copy.h"
#include "frame.h"
#include "sockets.h"

namespace squall {

namespace {

using map::CompletionKind;
using map::FailReason;

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kConnectRetryNs = 25 * kMs;
constexpr uint32_t kChunkBytes = 64 * 1024;  // largest frame payload on this backend (a receive slot holds one frame)
constexpr uint32_t kSlotBytes = frame::kHeaderBytes + kChunkBytes;
constexpr uint32_t kRecvSlots = 32;
constexpr uint32_t kSendSlots = 32;
constexpr uint32_t kPeerIds = 0x10000;
constexpr size_t kCqSize = 4096;  // per connection: its sends, receives, one-sided writes and the peer's
constexpr int64_t kIdlePollMinUs = 5;
constexpr int64_t kIdlePollMaxUs = 500;
constexpr uint32_t kPoolSlots = 128;  // RDM mode: receive slots shared by every peer (data lane)
constexpr uint32_t kControlPoolSlots = 32;  // RDM mode: the control lane's
constexpr int kDataBatches = 4;  // completion batches (of 64) a data lane's queue gives per poll before the control lanes' turn
constexpr uint32_t kNameMagic = 0x4d4e5153;  // "SQNM": an endpoint-name record on the RDM side channel
constexpr uint32_t kNameMaxBytes = 256;
constexpr size_t kNameHeadBytes = 12;  // magic, lane, length (u32 each)
constexpr size_t kCmDataBytes = 256;  // connection data an event may carry (squall sends none)
constexpr uint32_t reason(FailReason r) { return uint32_t(r); }
// The immediate field of a WRITE frame is 0 on the tcp backend's wire. Here kContinued marks a chunk of a
// split write-with-immediate that the next frame of the connection continues, so the receiver's WRITE_IMM
// completion can name the whole range written (offset and length), as the tcp backend's does when the
// write fits one frame. Without it the completion would name only the last 64 KiB chunk.
constexpr uint32_t kContinued = 1;

// RMA mode (docs/rdma.md "Modes"). Each DATA grant to a peer is registered on its own for remote writes, and
// its range, key and remote address go to that peer in a GRANT_KEY frame, before the HELLO (so both sides
// know every region before the first write) and later for grants made later. Every write into such a
// region then goes straight from the arena into the peer's arena -- the provider refuses any byte outside
// the region -- and every write into it goes that way, whatever its size: a range that travelled one way
// and then the other could have an older message applied over a newer one-sided write. CONTROL grants are
// never keyed: their writes stay messages, applied with 8-byte atomic stores after the grant check.
// - fi_writedata whose 64 bits of remote CQ data describe the write (describe*() below): every plain write
//   (chunks of at most kRmaChunkBytes), and writes-with-immediate of whole 4 KiB pages up to kDataMaxBytes.
//   The receiver learns of it from the remote-write completion in the connection's own CQ.
// - any other write-with-immediate: fi_write (chunks of at most kRmaChunkBytes), then on the same endpoint
//   a header-only PLACED_IMM frame naming the range and the immediate (PLACED without one: providers
//   without remote CQ data).
// Either way the provider orders what follows on the endpoint after the write (FI_ORDER_WAW / SAW / WAS,
// required in the hints), so when the receiver's poller sees the completion or the note, the bytes are
// there; it checks the grant, rings the doorbell and produces the WRITE_IMM completion as for a WRITE frame.
// A one-sided write that cannot be posted at once waits in the connection's send queue, in order.
constexpr uint8_t kFrameGrantKey = 0x41;   // payload: u64 offset, length, remote address of arena offset 0, key
constexpr uint8_t kFramePlaced = 0x42;     // header only: [offset, offset+length) was written by RMA
constexpr uint8_t kFramePlacedImm = 0x43;  // the same, then a WRITE_IMM completion with the immediate
constexpr uint32_t kGrantKeyBytes = 32;
constexpr uint64_t kRmaChunkBytes = 16ull << 20;
constexpr uint32_t kRmaOps = 64;  // fi_write operations in flight per connection (+32 sends < tx size 256)
constexpr uint64_t kRmaOrder = FI_ORDER_SAS | FI_ORDER_WAW | FI_ORDER_SAW | FI_ORDER_WAS;

// The remote CQ data of an fi_writedata. With an immediate: [imm:32][1:1][first page:20][pages - 1:11] (wasm32
// arenas end at 4 GiB, so a page number fits 20 bits; 11 bits of length allow kDataMaxBytes). Without:
// [offset:32][0:1][length:31]. The receiver needs nothing but this word and the connection.
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kDataMaxBytes = 2048 * kPageBytes;
constexpr uint64_t kDataPages = 1ull << 20;
constexpr uint64_t kDataHasImm = 1ull << 31;

struct Placed {
  uint64_t offset;
  uint64_t length;
  bool with_imm;
  uint32_t imm;
};
// Whether a write-with-immediate of [offset, offset+length) can travel as one fi_writedata.
bool describableImm(uint64_t offset, uint64_t length) {
  return length > 0 && length <= kDataMaxBytes && offset % kPageBytes == 0 && length % kPageBytes == 0 &&
         (offset + length) / kPageBytes <= kDataPages;
}
uint64_t describeImm(uint64_t offset, uint64_t length, uint32_t imm) {
  return uint64_t(imm) << 32 | kDataHasImm | (offset / kPageBytes) << 11 | (length / kPageBytes - 1);
}
// A plain write: any range in the arena (under 4 GiB), a chunk of at most kRmaChunkBytes.
uint64_t describePlain(uint64_t offset, uint64_t length) { return offset << 32 | length; }
Placed placedFrom(uint64_t data) {
  if (!(data & kDataHasImm)) return Placed{data >> 32, data & (kDataHasImm - 1), false, 0};
  return Placed{((data >> 11) & (kDataPages - 1)) * kPageBytes, ((data & 0x7ff) + 1) * kPageBytes, true, uint32_t(data >> 32)};
}

// Closes a libfabric object if open, and forgets it.
template <typename T>
void closeFid(T*& object) {
  if (object) fi_close(&object->fid);
  object = nullptr;
}

// SQUALL_LF_DEBUG=1 prints libfabric calls that failed (stderr).
bool debugOn() {
  static const bool on = std::getenv("SQUALL_LF_DEBUG") != nullptr;
  return on;
}
int check(int r, const char* what) {
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

// RMA mode: a range of the peer's arena this side may write one-sided (one of the peer's grants to it).
struct RemoteRegion {
  uint64_t offset;
  uint64_t length;
  uint64_t base;  // remote address of the peer's arena offset 0 in this region's terms
  uint64_t key;
};

// AUTH (with an auth key only, auth.h): the HELLOs are exchanged and this side waits for the other's AUTH
// (the acceptor: the initiator's proof; the initiator: the acceptor's closing AUTH, after its GRANT_KEYs).
// WAIT_SIBLING: this lane's HELLOs are exchanged, the other lane's are not; what arrives is held in the
// backlog until both are up (acceptor: until deadline_ns).
enum class LfPhase : uint8_t { RETRY_WAIT, CONNECTING, HELLO, AUTH, WAIT_SIBLING, OPEN, DEAD };

struct LfPeer {
  explicit LfPeer(uint16_t i) : id(i) {}
  const uint16_t id;
  GrantTable grants;
  std::mutex state_mu;  // state changes (connect, handshake, disconnect, fail); taken before a lane's mu
  std::atomic<PeerState> state{PeerState::EXPECTED};  // written under state_mu
  uint32_t fail_reason = 0;                            // under state_mu
  bool accepted = false;                               // under state_mu: the peer dialled us
  FairMutex mu[frame::kLanes];          // per lane: everything that posts on that lane's endpoint
  LfConn* tx[frame::kLanes] = {};       // under mu[lane]: where that lane's writes go, from its handshake on
  LfConn* conn[frame::kLanes] = {};     // poller only
  bool failure_reported = false;        // poller only
  // RMA mode: the regions of the peer's arena it granted this side, with their keys (GRANT_KEY). Written
  // under both lanes' mu, read under either.
  std::vector<RemoteRegion> regions;
  const RemoteRegion* regionFor(uint64_t offset, uint64_t length) const {
    for (const RemoteRegion& r : regions) {
      if (offset >= r.offset && offset - r.offset <= r.length && length <= r.length - (offset - r.offset)) return &r;
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

struct LfConn {
  LfConn(Role r, LfPhase p) : role(r), phase(p) {}
  const Role role;
  LfPhase phase;
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

  // Poller only.
  std::deque<Arrival> backlog;  // received, not applied: a completion is held ahead of them
  bool holding = false;
  uint8_t held_ring = 0;
  Completion held{};
  std::vector<Grant> grants;
  uint64_t grants_seen = 0;
  size_t keyed = 0;                // RMA mode: grants[0, keyed) are registered and their keys sent
  std::vector<fid_mr*> grant_mrs;  // RMA mode: those registrations, closed with the endpoint
  std::vector<RemoteRegion> early_regions;  // RMA mode: GRANT_KEYs that came before the peer's HELLO
  // With an auth key: the nonce this side sent, and the other side's HELLO (its nonce, its member id).
  uint8_t nonce[frame::kNonceBytes] = {};
  frame::Hello hello{};
  // The chunks of a split write-with-immediate applied so far ([run_offset, run_end)); run_end == 0: none.
  uint64_t run_offset = 0;
  uint64_t run_end = 0;
};

std::string portString(int port) { return std::to_string(port); }

class LfFabric final : public Backend {
 public:
  LfFabric(ArenaView arena, const FabricOptions& options, Stats& stats, const ArrivalSlot& arrival)
      : arena_(arena),
        opt_(options),
        layout_tag_(options.layout_tag),
        stats_(stats),
        arrival_(arrival),
        rings_(arena.base),
        prov_(options.provider),
        by_id_(new std::atomic<LfPeer*>[kPeerIds]),
        in_order_(new LfPeer*[map::MAX_MEMBERS]) {
    for (uint32_t i = 0; i < kPeerIds; i++) by_id_[i].store(nullptr, std::memory_order_relaxed);
  }
  ~LfFabric() override { close(); }

  int start() override;
  int listen(const char* host, int port) override;
  int grant(uint32_t peer, const Grant& g) override;
  int connect(uint32_t peer, const char* host, int port) override;
  int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) override;
  int writeAll(uint64_t offset, uint64_t length, uint8_t lane) override;
  int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) override;
  int disconnect(uint32_t peer) override;
  int breakLane(uint32_t peer, uint8_t lane) override;
  void close() override;
  void setLayoutTag(uint32_t tag) override { layout_tag_.store(tag, std::memory_order_relaxed); }
  int lastErrno() const override { return last_errno_; }
  const char* mode() const override { return mode_ == Mode::RMA ? "rma" : mode_ == Mode::RDM ? "rdm" : "msg"; }

 private:
  struct Command {
    enum Kind : uint8_t { CONNECT, DISCONNECT, FAIL, BREAK } kind;
    uint16_t peer;
    fi_info* dest;  // connected endpoints: where to connect
    sockaddr_storage addr;  // RDM: the side channel's address
    socklen_t addr_len;
    uint32_t arg = 0;  // FAIL: the FailReason; BREAK: the lane
  };

  fi_info* hintsFor(Mode m) const;
  int offers(const fi_info* hints, Mode m) const;
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  LfPeer* peerFor(uint32_t id, bool create);
  int ensureDomain(fi_info* info);
  int ensureRdm();
  int openRdm(fi_info* info, uint8_t lane);
  void post(const Command& c);
  void kick();
  int sendable(const LfPeer* p, uint8_t lane) const;
  const RemoteRegion* regionOf(const LfPeer* p, uint64_t offset, uint64_t length) const;
  int sendOneSided(LfPeer* p, uint8_t lane, const RemoteRegion& region, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int postRma(LfConn* c, PendingFrame& op);
  int failFromWriter(LfPeer* p, FailReason why);
  int sendWrite(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int sendWriteLocked(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int sendFrame(LfConn* c, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm, bool payload = true);
  int sendCopy(LfConn* c, const uint8_t* bytes, uint32_t total);
  int sendHello(LfConn* c);
  int sendGrantKeys(LfConn* c, LfPeer* p);
  int flushPending(LfConn* c);

  // poller thread
  void run();
  void runCommands();
  int pollCq();
  int pollControl();
  int pollConnCq(LfConn* c, int max_batches = INT32_MAX);
  int pollEq();
  int pollRdmCq(uint8_t lane, int max_batches = INT32_MAX);
  void repostPool(Slot* s);
  void onSideAccept();
  void onSide(LfConn* c, uint32_t events);
  bool sendName(LfConn* c);
  bool takeName(LfConn* c);  // false: failed
  void closeSide(LfConn* c);
  void attachSide(LfConn* c, int fd, uint32_t events);
  bool connectSide(LfConn* c);
  int watch(int fd, uint32_t events, int op = EPOLL_CTL_ADD);
  bool initSlots(LfConn* c);
  void resetSlots(LfConn* c);
  void onConnReq(fi_info* info);
  void onConnected(LfConn* c);
  void onRecv(LfConn* c, Slot* s, uint32_t len);
  void onSent(LfConn* c, Slot* s);
  void onRmaDone(LfConn* c, Slot* s);
  void onRemoteWrite(LfConn* c, Slot* s, uint64_t data);
  bool applyRemoteWrite(LfConn* c, uint64_t data);  // false: failed, or holding
  bool onGrantKey(LfConn* c, const uint8_t* at, uint32_t len);
  void adoptRegions(LfConn* c, LfPeer* p);
  uint64_t nextKey() { return next_key_++ & key_mask_; }
  bool applyMessage(LfConn* c, const uint8_t* at, uint32_t len);  // false: failed, or holding
  bool applyFrame(LfConn* c, const uint8_t* at, uint32_t len);    // false: failed, or holding
  bool applyRange(LfConn* c, uint8_t type, const frame::Header& h, const uint8_t* payload);
  void onHello(LfConn* c, const frame::Hello& h);
  void onAuth(LfConn* c, const uint8_t* mac);
  void acceptLane(LfConn* c, LfPeer* p, uint8_t lane);
  bool keyedHelloAccepted(LfConn* c, LfPeer* p, const frame::Hello& h);
  auth::Transcript transcript(const LfConn* c) const;
  int sendAuth(LfConn* c, auth::Direction who);
  void laneUp(LfConn* c);
  LfConn* newInitiator(LfPeer* p, uint8_t lane, const Command& cmd, fi_info* dest, uint64_t now);
  void drainBacklog(LfConn* c);
  void repost(LfConn* c, Slot* s);
  int openCq(fid_cq** cq, int* fd);
  bool openEp(LfConn* c, fi_info* info);
  void closeEp(LfConn* c);
  void releaseConn(LfConn* c);
  void startConnect(LfConn* c, uint64_t now);
  void retryLater(LfConn* c, uint64_t now);
  void onTimers(uint64_t now);
  void fail(LfConn* c, uint32_t why);
  void failPeerWithoutConn(LfPeer* p, uint32_t why);
  void event(CompletionKind kind, uint16_t peer, uint32_t why);
  int pollTimeoutMs(uint64_t now) const;
  // Whether every queue the poller reads has a wait descriptor in its epoll set.
  bool waitable() const {
    if (rdm()) return rdm_[frame::DATA].cq_fd >= 0 && rdm_[frame::CONTROL].cq_fd >= 0;
    if (eq_fd_ < 0) return false;
    for (const auto& c : conns_) if (c->cq && c->cq_fd < 0) return false;
    return true;
  }
  LfConn* connOf(fid_t fid) const {
    auto it = eps_.find(fid);
    return it == eps_.end() ? nullptr : it->second;
  }
  Doorbell doorbell(uint32_t channel) const { return Doorbell(arena_.base, channel); }

  const ArenaView arena_;
  const FabricOptions opt_;
  std::atomic<uint32_t> layout_tag_;
  Stats& stats_;
  const ArrivalSlot& arrival_;  // the owning Fabric's hook
  CompletionRings rings_;
  std::string prov_;   // the provider's name, without a "+rma" / "+msg" suffix
  Mode mode_ = Mode::MSG;  // set once, in start()
  bool rma() const { return mode_ == Mode::RMA; }
  bool rdm() const { return mode_ == Mode::RDM; }
  bool data_ = false;  // RMA mode with 8 bytes of remote CQ data (ensureDomain): fi_writedata, see describe*()

  std::mutex peers_mu_;
  std::unique_ptr<std::atomic<LfPeer*>[]> by_id_;
  std::unique_ptr<LfPeer*[]> in_order_;
  std::atomic<uint32_t> peer_count_{0};
  std::vector<std::unique_ptr<LfPeer>> owned_;

  // libfabric objects. The fabric, domain, queues are opened once, from the first address the fabric
  // listens on or connects to (ensureDomain, under domain_mu_); ready_ publishes them to the poller.
  fi_info* hints_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_eq* eq_ = nullptr;
  fid_pep* pep_ = nullptr;
  bool mr_local_ = false;
  // RDM mode (ensureDomain): one endpoint for every peer, its address vector and completion queue (read
  // with the sender's address), receive slots any peer's frame may land in, and the side channel's
  // listening socket.
  // One per lane (Lane): the control lane's endpoint has its own queues, so nothing of it waits behind the
  // data lane's frames, in the provider or in the poller.
  struct RdmLane {
    fid_ep* ep = nullptr;
    fid_av* av = nullptr;
    fid_cq* cq = nullptr;
    int cq_fd = -1;
    std::string name;
    std::unique_ptr<uint8_t[]> pool_mem;
    fid_mr* pool_mr = nullptr;
    void* pool_desc = nullptr;
    std::unique_ptr<Slot[]> pool;
    std::unordered_map<fi_addr_t, LfConn*> by_addr;  // poller only
  } rdm_[frame::kLanes];
  fi_info* rdm_control_info_ = nullptr;  // ensureRdm → ensureDomain: where the control lane's endpoint is opened
  std::atomic<int> side_listen_{-1};  // set under listen_mu_, read by the poller
  std::unordered_map<int, LfConn*> socks_;          // poller only: side-channel sockets
  std::vector<Slot*> unposted_;                     // poller only: pool slots the provider would not take yet
  fid_mr* arena_mr_ = nullptr;  // RMA mode: the arena from DYNAMIC_BASE on, FI_WRITE | FI_REMOTE_WRITE
  void* arena_desc_ = nullptr;
  bool mr_virt_addr_ = false;  // remote addresses are virtual addresses (FI_MR_VIRT_ADDR), else MR offsets
  bool mr_prov_key_ = false;   // the provider picks keys (FI_MR_PROV_KEY)
  // Keys squall chooses (no FI_MR_PROV_KEY): from a random start, so a peer cannot guess another's; the
  // arena's first, then one per grant. Under domain_mu_ until ready_, then poller only.
  uint64_t next_key_ = 0;
  uint64_t key_mask_ = ~0ull;
  int eq_fd_ = -1;
  std::mutex domain_mu_;
  std::mutex rdm_info_mu_;  // ensureRdm: rdm_control_info_ is one caller's
  std::atomic<bool> ready_{false};
  std::mutex listen_mu_;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool fds_added_ = false;  // poller only
  std::vector<fid*> wait_fids_;  // poller only: the event queue and the connections' CQs, for fi_trywait
  int64_t idle_poll_us_ = 0;     // poller only: the next wait when polling a queue without a wait descriptor

  std::mutex commands_mu_;
  std::vector<Command> commands_;

  std::vector<std::unique_ptr<LfConn>> conns_;  // poller only
  std::vector<std::unique_ptr<LfConn>> dead_;   // RDM: closed; their buffers live until close() (late completions)
  std::unordered_map<fid_t, LfConn*> eps_;      // poller only: open endpoints
  bool any_dead_ = false;
  uint64_t next_deadline_ns_ = UINT64_MAX;
  uint32_t dirty_ = 0;

  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
  int last_errno_ = 0;
};

// ------------------------------------------------------------------------------------------ API side

// The hints for one mode (see Mode).
fi_info* LfFabric::hintsFor(Mode m) const {
  fi_info* h = lf::api().dupinfo(nullptr);  // fi_allocinfo()
  if (!h) return nullptr;
  h->caps = m == Mode::RMA ? FI_MSG | FI_RMA | FI_WRITE | FI_REMOTE_WRITE : m == Mode::RDM ? FI_MSG | FI_SOURCE : FI_MSG;
  // FI_RX_CQ_DATA: a provider may make a write with remote CQ data consume a posted receive (verbs does);
  // pollConnCq then reposts it.
  h->mode = FI_CONTEXT | FI_CONTEXT2 | FI_RX_CQ_DATA;
  h->ep_attr->type = m == Mode::RDM ? FI_EP_RDM : FI_EP_MSG;
  h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_ALLOCATED | FI_MR_VIRT_ADDR | FI_MR_PROV_KEY;
  h->domain_attr->threading = FI_THREAD_SAFE;
  h->tx_attr->msg_order = m == Mode::RMA ? kRmaOrder : FI_ORDER_SAS;
  h->rx_attr->msg_order = m == Mode::RMA ? kRmaOrder : FI_ORDER_SAS;
  h->fabric_attr->prov_name = strdup(prov_.c_str());
  return h;
}

// 0 when the provider offers mode m with what the backend needs (message sizes, ordering), else an fi errno.
int LfFabric::offers(const fi_info* hints, Mode m) const {
  fi_info* info = nullptr;
  int r = lf::api().getinfo(FI_VERSION(1, 9), nullptr, nullptr, 0, const_cast<fi_info*>(hints), &info);
  if (r != 0 || !info) return r < 0 ? -r : FI_ENODATA;
  bool ok = info->ep_attr->max_msg_size >= kSlotBytes;
  if (m == Mode::RMA) {
    ok = ok && info->ep_attr->max_msg_size >= kRmaChunkBytes && (info->tx_attr->msg_order & kRmaOrder) == kRmaOrder &&
         (info->rx_attr->msg_order & kRmaOrder) == kRmaOrder;
  }
  lf::api().freeinfo(info);
  return ok ? 0 : FI_ENODATA;
}

int LfFabric::start() {
  if (!lf::load()) return NO_LIBRARY;
  // "P+rma": RMA or nothing; "P+msg": messages; "P": the first mode the provider offers, RMA first.
  std::vector<Mode> modes = {Mode::RMA, Mode::MSG, Mode::RDM};
  for (const auto& [suffix, only] : {std::pair<std::string, std::vector<Mode>>{"+rma", {Mode::RMA}}, {"+msg", {Mode::MSG, Mode::RDM}}}) {
    if (prov_.size() > suffix.size() && prov_.compare(prov_.size() - suffix.size(), suffix.size(), suffix) == 0) {
      prov_.resize(prov_.size() - suffix.size());
      modes = only;
    }
  }
  for (Mode m : modes) {
    fi_info* h = hintsFor(m);
    if (!h) return SYSTEM;
    const int err = offers(h, m);
    if (err == 0) {
      hints_ = h;
      mode_ = m;
      break;
    }
    lf::api().freeinfo(h);
    last_errno_ = err == FI_ENODATA ? 0 : err;
  }
  if (!hints_) return NO_PROVIDER;
  last_errno_ = 0;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  if (watch(wake_fd_, EPOLLIN) != 0) {
    last_errno_ = errno;
    return SYSTEM;
  }
  try {
    poller_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    last_errno_ = e.code().value();
    return SYSTEM;
  }
  return OK;
}

int LfFabric::ensureDomain(fi_info* info) {
  std::lock_guard<std::mutex> lock(domain_mu_);
  if (ready_.load(std::memory_order_acquire)) return OK;
  int r = lf::api().fabric(info->fabric_attr, &fabric_, nullptr);
  if (r == 0) r = fi_domain(fabric_, info, &domain_, nullptr);
  if (r == 0) {
    fi_eq_attr eq_attr{};
    eq_attr.size = 1024;
    eq_attr.wait_obj = FI_WAIT_FD;
    if (fi_eq_open(fabric_, &eq_attr, &eq_, nullptr) != 0) {
      eq_attr.wait_obj = FI_WAIT_NONE;
      r = fi_eq_open(fabric_, &eq_attr, &eq_, nullptr);
    } else if (fi_control(&eq_->fid, FI_GETWAIT, &eq_fd_) != 0) {
      eq_fd_ = -1;
    }
  }
  if (r != 0) {
    last_errno_ = -r;
    return SYSTEM;
  }
  mr_local_ = (info->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
  data_ = rma() && info->domain_attr->cq_data_size >= 8;
  if (rdm() && ((r = openRdm(info, frame::DATA)) != 0 || (r = openRdm(rdm_control_info_ ? rdm_control_info_ : info, frame::CONTROL)) != 0)) {
    last_errno_ = -r;
    return SYSTEM;
  }
  if (rma()) {
    // The arena as the source of one-sided writes (local access; the grants are registered for remote
    // access one by one, sendGrantKeys).
    mr_virt_addr_ = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    mr_prov_key_ = (info->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
    const size_t key_bytes = info->domain_attr->mr_key_size;
    key_mask_ = key_bytes >= 8 || key_bytes == 0 ? ~0ull : (1ull << (8 * key_bytes)) - 1;
    std::random_device random;
    next_key_ = (uint64_t(random()) << 32 | random()) & key_mask_;
    r = check(fi_mr_reg(domain_, arena_.base + map::DYNAMIC_BASE, arena_.bytes - map::DYNAMIC_BASE, FI_WRITE, 0, nextKey(), 0,
                        &arena_mr_, nullptr), "fi_mr_reg(arena)");
    if (r != 0) {
      arena_mr_ = nullptr;
      last_errno_ = -r;
      return SYSTEM;
    }
    arena_desc_ = fi_mr_desc(arena_mr_);
  }
  ready_.store(true, std::memory_order_release);
  kick();  // the poller adds the queues' wait descriptors to its epoll set
  return OK;
}

// RDM mode, from ensureDomain: one lane's endpoint, its address vector and CQ, and its receive pool.
int LfFabric::openRdm(fi_info* info, uint8_t lane) {
  RdmLane& l = rdm_[lane];
  fi_av_attr av_attr{};
  av_attr.type = FI_AV_MAP;
  int r = check(fi_av_open(domain_, &av_attr, &l.av, nullptr), "fi_av_open");
  if (r == 0) r = check(openCq(&l.cq, &l.cq_fd), "fi_cq_open");
  if (r == 0) r = check(fi_endpoint(domain_, info, &l.ep, nullptr), "fi_endpoint");
  if (r == 0) r = check(fi_ep_bind(l.ep, &l.av->fid, 0), "fi_ep_bind(av)");
  if (r == 0) r = check(fi_ep_bind(l.ep, &l.cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
  if (r == 0) r = check(fi_enable(l.ep), "fi_enable");
  char name[kNameMaxBytes];
  size_t len = sizeof name;
  if (r == 0) r = check(fi_getname(&l.ep->fid, name, &len), "fi_getname");
  if (r != 0) return r;
  l.name.assign(name, len);
  const uint32_t slots = lane == frame::CONTROL ? kControlPoolSlots : kPoolSlots;
  const size_t bytes = size_t(slots) * kSlotBytes;
  l.pool_mem.reset(new uint8_t[bytes]);
  if (mr_local_) {
    if ((r = check(fi_mr_reg(domain_, l.pool_mem.get(), bytes, FI_RECV, 0, 0, 0, &l.pool_mr, nullptr), "fi_mr_reg(pool)")) != 0) return r;
    l.pool_desc = fi_mr_desc(l.pool_mr);
  }
  l.pool.reset(new Slot[slots]);
  for (uint32_t i = 0; i < slots; i++) {
    l.pool[i].buf = l.pool_mem.get() + size_t(i) * kSlotBytes;
    l.pool[i].pooled = true;
    l.pool[i].lane = lane;
    if ((r = check(int(fi_recv(l.ep, l.pool[i].buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &l.pool[i].ctx)), "fi_recv(pool)")) != 0) return r;
  }
  return 0;
}

// shm keeps each endpoint's queues in a file in /dev/shm named after the endpoint's source address, and
// removes it when the endpoint closes; a member killed with SIGKILL leaves its file behind. squall names
// the address squall-<pid>-<n>, so each new shm fabric can remove the files of processes that are gone.
std::string shmName() {
  static std::atomic<uint32_t> next{0};
  return "squall-" + std::to_string(getpid()) + "-" + std::to_string(next.fetch_add(1));
}

void removeStaleShmFiles() {
  DIR* dir = opendir("/dev/shm");
  if (!dir) return;
  while (const dirent* e = readdir(dir)) {
    if (std::strncmp(e->d_name, "squall-", 7) != 0) continue;
    const long pid = std::strtol(e->d_name + 7, nullptr, 10);
    if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) unlinkat(dirfd(dir), e->d_name, 0);
  }
  closedir(dir);
}

int LfFabric::ensureRdm() {
  if (ready_.load(std::memory_order_acquire)) return OK;
  const bool shm = prov_ == "shm";
  if (shm) removeStaleShmFiles();
  // One endpoint per lane; on shm each needs a name (its queue file) of its own.
  fi_info* info[frame::kLanes] = {};
  for (fi_info*& one : info) {
    const std::string name = shm ? shmName() : std::string();
    if (lf::api().getinfo(FI_VERSION(1, 9), shm ? name.c_str() : nullptr, nullptr, shm ? FI_SOURCE : 0, hints_, &one) != 0 || !one) {
      for (fi_info* i : info) if (i) lf::api().freeinfo(i);
      return SYSTEM;
    }
  }
  std::lock_guard<std::mutex> lock(rdm_info_mu_);
  rdm_control_info_ = info[frame::CONTROL];
  const int s = ensureDomain(info[frame::DATA]);
  rdm_control_info_ = nullptr;
  for (fi_info* i : info) lf::api().freeinfo(i);
  return s;
}

// A completion queue with a wait descriptor if the provider offers one (fd -1: the poller polls).
int LfFabric::openCq(fid_cq** cq, int* fd) {
  fi_cq_attr attr{};
  attr.size = kCqSize;
  attr.format = FI_CQ_FORMAT_DATA;
  attr.wait_obj = FI_WAIT_FD;
  *fd = -1;
  if (fi_cq_open(domain_, &attr, cq, nullptr) == 0) {
    if (fi_control(&(*cq)->fid, FI_GETWAIT, fd) != 0) *fd = -1;
    return 0;
  }
  attr.wait_obj = FI_WAIT_NONE;
  return fi_cq_open(domain_, &attr, cq, nullptr);
}

LfPeer* LfFabric::peerFor(uint32_t id, bool create) {
  if (id >= kPeerIds - 1) return nullptr;
  LfPeer* p = by_id_[id].load(std::memory_order_acquire);
  if (p || !create) return p;
  std::lock_guard<std::mutex> lock(peers_mu_);
  p = by_id_[id].load(std::memory_order_relaxed);
  if (p) return p;
  uint32_t n = peer_count_.load(std::memory_order_relaxed);
  if (n >= map::MAX_MEMBERS) return nullptr;
  owned_.push_back(std::make_unique<LfPeer>(uint16_t(id)));
  p = owned_.back().get();
  in_order_[n] = p;
  peer_count_.store(n + 1, std::memory_order_release);
  by_id_[id].store(p, std::memory_order_release);
  return p;
}

int LfFabric::listen(const char* host, int port) {
  if (closed()) return FAILED;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (pep_ || side_listen_.load() >= 0) return ALREADY;
  if (rdm()) {  // the port is the side channel's: peers connect there to learn this fabric's endpoint name
    if (int s = ensureRdm()) return s;
    const int fd = listenTcp(&addr, len, false);
    if (fd < 0) {
      last_errno_ = errno;
      return SYSTEM;
    }
    side_listen_.store(fd);
    watch(fd, EPOLLIN);
    return portOf(addr);
  }
  fi_info* info = nullptr;
  std::string service = portString(port);
  int r = lf::api().getinfo(FI_VERSION(1, 9), host, service.c_str(), FI_SOURCE, hints_, &info);
  if (r != 0) {
    last_errno_ = -r;
    return SYSTEM;
  }
  if (int s = ensureDomain(info)) {
    lf::api().freeinfo(info);
    return s;
  }
  fid_pep* pep = nullptr;
  r = fi_passive_ep(fabric_, info, &pep, nullptr);
  lf::api().freeinfo(info);
  if (r == 0) r = fi_pep_bind(pep, &eq_->fid, 0);
  if (r == 0) r = fi_listen(pep);
  size_t alen = sizeof addr;
  if (r == 0) r = fi_getname(&pep->fid, &addr, &alen);
  if (r != 0) {
    last_errno_ = -r;
    if (pep) fi_close(&pep->fid);
    return SYSTEM;
  }
  pep_ = pep;
  return portOf(addr);
}

int LfFabric::grant(uint32_t peer, const Grant& g) {
  if (closed()) return FAILED;
  if (peer >= kPeerIds - 1 || peer == opt_.member_id || g.ring >= map::COMPLETION_RINGS ||
      (g.kind == GrantKind::CONTROL && !aligned8(g.offset, g.length))) {
    return BAD_ARGUMENT;
  }
  if (g.offset < map::DYNAMIC_BASE || !arena_.contains(g.offset, g.length)) return BAD_RANGE;
  LfPeer* p = peerFor(peer, true);
  if (!p) return TOO_MANY;
  p->grants.add(g);
  return OK;
}

int LfFabric::connect(uint32_t peer, const char* host, int port) {
  if (closed()) return FAILED;
  if (peer >= kPeerIds - 1 || peer == opt_.member_id) return BAD_ARGUMENT;
  sockaddr_storage addr;
  socklen_t len;
  if (!parseAddress(host, port, &addr, &len)) return BAD_ADDRESS;
  LfPeer* p = peerFor(peer, true);
  if (!p) return TOO_MANY;
  fi_info* dest = nullptr;
  if (rdm()) {
    if (int s = ensureRdm()) return s == SYSTEM ? FAILED : s;
  } else {
    std::string service = portString(port);
    if (lf::api().getinfo(FI_VERSION(1, 9), host, service.c_str(), 0, hints_, &dest) != 0) return BAD_ADDRESS;
    if (int s = ensureDomain(dest)) {
      lf::api().freeinfo(dest);
      return s == SYSTEM ? FAILED : s;
    }
  }
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    PeerState s = p->state.load();
    if (s != PeerState::EXPECTED) {
      if (dest) lf::api().freeinfo(dest);
      return s == PeerState::FAILED ? FAILED : ALREADY;
    }
    p->state.store(PeerState::CONNECTING);
  }
  post(Command{Command::CONNECT, uint16_t(peer), dest, addr, len});
  return OK;
}

int LfFabric::write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  LfPeer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  return sendWrite(p, lane, offset, length, with_imm, imm);
}

int LfFabric::writeAll(uint64_t offset, uint64_t length, uint8_t lane) {
  if (!arena_.contains(offset, length)) return BAD_RANGE;
  uint32_t n = peer_count_.load(std::memory_order_acquire);
  int queued = 0;
  for (uint32_t i = 0; i < n; i++) {
    LfPeer* p = in_order_[i];
    if (p->state.load(std::memory_order_relaxed) == PeerState::CONNECTED && sendWrite(p, lane, offset, length, false, 0) == OK) queued++;
  }
  return queued;
}

// Under the lane's mutex: OK when writes to p on that lane can go now, else the status to return.
int LfFabric::sendable(const LfPeer* p, uint8_t lane) const {
  const PeerState s = p->state.load(std::memory_order_acquire);
  if (s != PeerState::CONNECTED || !p->tx[lane]) return s == PeerState::FAILED ? FAILED : NOT_CONNECTED;
  return OK;
}

// Under a lane's mutex: the region p keyed for us that holds this write (RMA mode), or null. A write with a region
// goes one-sided, whatever its size; one without goes as a message, which p checks before a byte lands (and
// refuses if it is outside p's grants).
const RemoteRegion* LfFabric::regionOf(const LfPeer* p, uint64_t offset, uint64_t length) const {
  return rma() && length > 0 && length <= UINT32_MAX ? p->regionFor(offset, length) : nullptr;
}

int LfFabric::sendWrite(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
  std::lock_guard<FairMutex> lock(p->mu[lane]);
  if (int s = sendable(p, lane)) return s;
  return sendWriteLocked(p, lane, offset, length, with_imm, imm);
}

// Runs of writes that travel as messages share one message: their frames back to back in one send slot
// (applyMessage takes them apart). A write that goes one-sided, or does not fit what the slot has left, is
// sent (or queued) on its own after the run before it, so the batch keeps its order.
int LfFabric::writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) {
  LfPeer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  std::lock_guard<FairMutex> lock(p->mu[lane]);
  if (int s = sendable(p, lane)) return s;
  thread_local std::vector<uint8_t> run;
  run.clear();
  uint32_t frames = 0;
  auto flush = [&]() {
    if (run.empty()) return 0;
    Stats::add(stats_.frames_out, frames);
    const int r = sendCopy(p->tx[lane], run.data(), uint32_t(run.size()));
    run.clear();
    frames = 0;
    return r;
  };
  const uint64_t max = std::min<uint64_t>(opt_.max_frame_bytes, kChunkBytes);
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t offset = uint64_t(ranges[2 * i]), length = uint64_t(ranges[2 * i + 1]);
    const uint64_t bytes = frame::kHeaderBytes + length;
    if (length > max || regionOf(p, offset, length)) {
      if (flush() != 0 || sendWriteLocked(p, lane, offset, length, false, 0) != OK) return FAILED;
      continue;
    }
    if (run.size() + bytes > kSlotBytes && flush() != 0) return FAILED;
    const size_t at = run.size();
    run.resize(at + bytes);
    frame::encode(&run[at], frame::WRITE, offset, uint32_t(length), 0);
    snapshot(&run[at + frame::kHeaderBytes], arena_.base + offset, length);
    frames++;
  }
  return flush() == 0 ? OK : FAILED;
}

// Under the lane's mutex, p connected.
int LfFabric::sendWriteLocked(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
  if (const RemoteRegion* region = regionOf(p, offset, length)) return sendOneSided(p, lane, *region, offset, length, with_imm, imm);
  const uint64_t max = std::min<uint64_t>(opt_.max_frame_bytes, kChunkBytes);
  uint64_t done = 0;
  do {
    uint64_t chunk = length - done < max ? length - done : max;
    bool last = done + chunk == length;
    uint8_t type = last && with_imm ? frame::WRITE_IMM : frame::WRITE;
    if (sendFrame(p->tx[lane], type, offset + done, uint32_t(chunk), last ? imm : with_imm ? kContinued : 0) != 0) return FAILED;
    done += chunk;
  } while (done < length);
  return OK;
}

// Caller holds the peer's mutex (or owns the connection alone). The payload is snapshotted (8-byte atomic
// loads) into a registered send slot, or into the pending queue when every slot is in flight.
// A frame without payload (payload false: PLACED notes) says `length` but carries none.
int LfFabric::sendFrame(LfConn* c, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm, bool payload) {
  const uint8_t* src = arena_.base + offset;
  const uint32_t total = frame::kHeaderBytes + (payload ? length : 0);
  Stats::add(stats_.frames_out);
  if (!c->pending.empty() || c->free_send.empty()) {
    const bool coalescible = type == frame::WRITE && imm == 0;  // a chunk marked kContinued keeps its mark
    if (coalescible && !c->pending.empty()) {
      PendingFrame& newest = c->pending.back();
      if (newest.coalescible) {
        const frame::Header h = frame::decode(newest.bytes.data());
        if (h.offset == offset && h.length == length) {
          snapshot(newest.bytes.data() + frame::kHeaderBytes, src, length);
          Stats::add(stats_.frames_coalesced);
          return 0;
        }
      }
    }
    bool was_empty = c->pending.empty();
    c->pending.push_back(PendingFrame{std::vector<uint8_t>(total), coalescible});
    uint8_t* out = c->pending.back().bytes.data();
    frame::encode(out, type, offset, length, imm);
    if (payload) snapshot(out + frame::kHeaderBytes, src, length);
    c->has_pending.store(true, std::memory_order_relaxed);
    if (was_empty) kick();  // the poller sends it when a slot frees
    return 0;
  }
  Slot* s = c->free_send.back();
  c->free_send.pop_back();
  frame::encode(s->buf, type, offset, length, imm);
  if (payload) snapshot(s->buf + frame::kHeaderBytes, src, length);
  s->gen = c->gen;
  ssize_t r = fi_send(c->ep, s->buf, total, c->desc, c->addr, &s->ctx);
  Stats::add(stats_.send_calls);
  if (r == -FI_EAGAIN) {
    c->pending.push_back(PendingFrame{std::vector<uint8_t>(s->buf, s->buf + total), false});
    c->has_pending.store(true, std::memory_order_relaxed);
    c->free_send.push_back(s);
    kick();
    return 0;
  }
  if (r != 0) {
    c->free_send.push_back(s);
    return int(r);
  }
  Stats::add(stats_.bytes_out, total);
  return 0;
}

// Under the lane's mutex, p connected: a write into a region p keyed. Posted now when nothing waits before
// it in the lane's send queue, else (or when the provider or the write contexts run short) queued there
// behind what waits, and posted in turn by flushPending: never ahead of an earlier write on its lane.
int LfFabric::sendOneSided(LfPeer* p, uint8_t lane, const RemoteRegion& region, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
  LfConn* c = p->tx[lane];
  PendingFrame op;
  op.rma = true;
  op.region = region;
  op.offset = offset;
  op.length = length;
  op.with_imm = with_imm;
  op.imm = imm;
  if (c->pending.empty()) {
    const int r = postRma(c, op);
    if (r == 0) return OK;
    if (r != -FI_EAGAIN) return failFromWriter(p, FailReason::IO_ERROR);
  }
  c->pending.push_back(std::move(op));
  c->has_pending.store(true, std::memory_order_relaxed);
  kick();
  return OK;
}

// Under the peer's mutex: posts what is left of a one-sided write. Plain writes, and writes-with-immediate
// of whole pages up to kDataMaxBytes, as fi_writedata whose remote CQ data describes each chunk (the last
// carries the immediate); other writes-with-immediate as fi_write chunks, then the PLACED_IMM note the
// provider delivers after them (FI_ORDER_SAW). 0 when all of it is posted; -FI_EAGAIN when the write
// contexts, a send slot for the note or the provider ran short (op.done says how far it got); else an fi
// error. The bytes are read by the provider after this returns, not snapshotted: a range rewritten
// meanwhile lands with newer bytes (what a later write would bring anyway).
int LfFabric::postRma(LfConn* c, PendingFrame& op) {
  const bool self_described = data_ && (!op.with_imm || describableImm(op.offset, op.length));
  while (op.done < op.length) {
    if (c->free_rma.empty()) return -FI_EAGAIN;
    const uint64_t chunk = std::min(op.length - op.done, kRmaChunkBytes);
    const uint64_t at = op.offset + op.done;
    Slot* s = c->free_rma.back();
    s->gen = c->gen;
    void* from = arena_.base + at;
    const uint64_t to = op.region.base + at;
    const uint64_t data = op.with_imm ? describeImm(at, chunk, op.imm) : describePlain(at, chunk);
    const ssize_t r = self_described ? fi_writedata(c->ep, from, chunk, arena_desc_, data, 0, to, op.region.key, &s->ctx)
                                     : fi_write(c->ep, from, chunk, arena_desc_, 0, to, op.region.key, &s->ctx);
    if (r == -FI_EAGAIN) return int(r);
    if (check(int(r), "fi_write / fi_writedata") != 0) return int(r);
    c->free_rma.pop_back();
    Stats::add(stats_.send_calls);
    Stats::add(stats_.rma_writes);
    Stats::add(stats_.bytes_out, chunk);
    op.done += chunk;
  }
  if (self_described) return 0;
  // The note, right behind the chunks (this write stays first in the queue until it is posted).
  if (c->free_send.empty()) return -FI_EAGAIN;
  Slot* s = c->free_send.back();
  frame::encode(s->buf, op.with_imm ? kFramePlacedImm : kFramePlaced, op.offset, uint32_t(op.length), op.with_imm ? op.imm : 0);
  s->gen = c->gen;
  const ssize_t r = fi_send(c->ep, s->buf, frame::kHeaderBytes, c->desc, c->addr, &s->ctx);
  if (r != 0) return int(r);
  c->free_send.pop_back();
  Stats::add(stats_.frames_out);
  Stats::add(stats_.send_calls);
  Stats::add(stats_.bytes_out, frame::kHeaderBytes);
  return 0;
}

// Under a lane's mutex, from a writer: a post failed after parts of a write may have gone. The peer fails
// (the poller closes both lanes and reports it; state_mu is not taken here, it comes before a lane's mu):
// the caller is told FAILED.
int LfFabric::failFromWriter(LfPeer* p, FailReason why) {
  post(Command{Command::FAIL, p->id, nullptr, {}, 0, uint32_t(why)});
  return FAILED;
}

// Caller holds the peer's mutex (or owns the connection alone). Sends a small prepared frame from a free
// slot, or queues it behind the frames already waiting; the poller sends it later (flushPending). Nothing
// here waits for the provider: an RDM provider refuses (FI_EAGAIN) for as long as a dead peer does not
// receive, and the poller must go on to notice that peer's end.
int LfFabric::sendCopy(LfConn* c, const uint8_t* bytes, uint32_t total) {
  if (c->pending.empty() && !c->free_send.empty()) {
    Slot* s = c->free_send.back();
    std::memcpy(s->buf, bytes, total);
    s->gen = c->gen;
    const ssize_t r = fi_send(c->ep, s->buf, total, c->desc, c->addr, &s->ctx);
    Stats::add(stats_.send_calls);
    if (r == 0) {
      c->free_send.pop_back();
      Stats::add(stats_.bytes_out, total);
      return 0;
    }
    if (r != -FI_EAGAIN) return int(r);
  }
  c->pending.push_back(PendingFrame{std::vector<uint8_t>(bytes, bytes + total), false});
  c->has_pending.store(true, std::memory_order_relaxed);
  kick();
  return 0;
}

// RMA mode, under the data lane's mutex, before its HELLO and then for grants made later: each DATA grant to p not keyed
// yet is registered for remote writes on its own, and its range, key and remote address sent in a
// GRANT_KEY frame. The peer then writes one-sided into that range and nowhere else: the provider checks
// every write against the key and the registration's bounds. CONTROL grants get no key (their writes stay
// messages, applied with 8-byte atomic stores).
int LfFabric::sendGrantKeys(LfConn* c, LfPeer* p) {
  p->grants.refresh(c->grants, c->grants_seen);
  for (; c->keyed < c->grants.size(); c->keyed++) {
    const Grant& g = c->grants[c->keyed];
    if (g.kind != GrantKind::DATA) continue;
    const uint64_t wanted = nextKey();
    fid_mr* mr = nullptr;
    int r = check(fi_mr_reg(domain_, arena_.base + g.offset, g.length, FI_REMOTE_WRITE, 0, wanted, 0, &mr, nullptr), "fi_mr_reg(grant)");
    if (r != 0) return r;
    c->grant_mrs.push_back(mr);
    // With FI_MR_VIRT_ADDR the target address is a virtual address, else an offset into the registration:
    // either way the peer adds an arena offset to `base` (mod 2^64).
    const uint64_t fields[4] = {g.offset, g.length, mr_virt_addr_ ? uint64_t(reinterpret_cast<uintptr_t>(arena_.base)) : 0 - g.offset,
                                mr_prov_key_ ? fi_mr_key(mr) : wanted};
    uint8_t buf[frame::kHeaderBytes + kGrantKeyBytes];
    frame::encode(buf, kFrameGrantKey, 0, kGrantKeyBytes, 0);
    std::memcpy(buf + frame::kHeaderBytes, fields, sizeof fields);
    if ((r = sendCopy(c, buf, sizeof buf)) != 0) return r;
  }
  return 0;
}

int LfFabric::sendHello(LfConn* c) {
  uint8_t buf[frame::kHeaderBytes + frame::kHelloAuthBytes];
  if (opt_.key.present()) {  // an initiator's: its nonce, no MAC (an acceptor's keyed answer is keyedHelloAccepted's)
    frame::encodeHelloAuth(buf, opt_.member_id, layout_tag_.load(std::memory_order_relaxed), c->lane, c->nonce, nullptr);
    return sendCopy(c, buf, frame::kHeaderBytes + frame::kHelloAuthBytes);
  }
  frame::encodeHello(buf, opt_.member_id, layout_tag_.load(std::memory_order_relaxed), c->lane);
  return sendCopy(c, buf, frame::kHeaderBytes + frame::kHelloBytes);
}

// With an auth key: the lane's transcript (auth.h) from this side's nonce and the other side's HELLO.
auth::Transcript LfFabric::transcript(const LfConn* c) const {
  return auth::transcriptOf(c->role == Role::INITIATOR, opt_.member_id, c->nonce, c->hello, c->lane);
}

// An AUTH frame carrying `who`'s MAC over c's transcript: the initiator's proof, or the acceptor's closing
// AUTH (its proof again), which follows its GRANT_KEYs so the initiator knows every region when it opens.
int LfFabric::sendAuth(LfConn* c, auth::Direction who) {
  uint8_t buf[frame::kHeaderBytes + frame::kAuthBytes];
  frame::encode(buf, frame::AUTH, 0, frame::kAuthBytes, 0);
  auth::mac(opt_.key, who, transcript(c), buf + frame::kHeaderBytes);
  return sendCopy(c, buf, sizeof buf);
}

// Caller holds the lane's mutex. Posts what waits in the send queue, oldest first, as far as send slots,
// write contexts and the provider allow.
int LfFabric::flushPending(LfConn* c) {
  while (!c->pending.empty() && c->ep) {
    PendingFrame& f = c->pending.front();
    if (f.rma) {
      const int r = postRma(c, f);
      if (r == -FI_EAGAIN) return 0;
      if (r != 0) return r;
    } else {
      if (c->free_send.empty()) return 0;
      Slot* s = c->free_send.back();
      std::memcpy(s->buf, f.bytes.data(), f.bytes.size());
      s->gen = c->gen;
      const ssize_t r = fi_send(c->ep, s->buf, f.bytes.size(), c->desc, c->addr, &s->ctx);
      Stats::add(stats_.send_calls);
      if (r == -FI_EAGAIN) return 0;
      if (r != 0) return int(r);
      Stats::add(stats_.bytes_out, f.bytes.size());
      c->free_send.pop_back();
    }
    c->pending.pop_front();
    if (c->pending.empty()) c->has_pending.store(false, std::memory_order_relaxed);
  }
  return 0;
}

int LfFabric::disconnect(uint32_t peer) {
  if (closed()) return FAILED;
  LfPeer* p = peerFor(peer, false);
  if (!p) return NOT_CONNECTED;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED) return OK;
    p->state.store(PeerState::FAILED);
    p->fail_reason = reason(FailReason::LOCAL_CLOSE);
  }
  post(Command{Command::DISCONNECT, uint16_t(peer), nullptr, {}, 0});
  return OK;
}

// For tests: the poller ends one lane of the peer as a network fault would (its endpoint shut down, or its
// RDM side channel closed), telling neither side's peer state; both ends must then fail the peer.
int LfFabric::breakLane(uint32_t peer, uint8_t lane) {
  if (closed()) return FAILED;
  LfPeer* p = peerFor(peer, false);
  if (!p || p->state.load() != PeerState::CONNECTED) return NOT_CONNECTED;
  post(Command{Command::BREAK, uint16_t(peer), nullptr, {}, 0, lane});
  return OK;
}

// Adds fd to the poller's epoll set (or changes its events); its events are looked up by fd.
int LfFabric::watch(int fd, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  return epoll_ctl(epoll_fd_, op, fd, &ev);
}

void LfFabric::kick() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof one);
  (void)r;
}

void LfFabric::post(const Command& c) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back(c);
  }
  kick();
}

void LfFabric::close() {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed_.exchange(true)) return;
  stop_.store(true);
  if (poller_.joinable()) {
    kick();
    poller_.join();
  }
  uint32_t n = peer_count_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; i++) {
    LfPeer* p = in_order_[i];
    std::lock_guard<std::mutex> slock(p->state_mu);
    if (p->state.load() != PeerState::FAILED) {
      p->state.store(PeerState::FAILED);
      p->fail_reason = reason(FailReason::LOCAL_CLOSE);
    }
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      std::lock_guard<FairMutex> plock(p->mu[lane]);
      p->tx[lane] = nullptr;
    }
  }
  for (auto& c : conns_) closeEp(c.get());
  closeFid(pep_);
  if (side_listen_.load() >= 0) ::close(side_listen_.exchange(-1));
  for (RdmLane& l : rdm_) {
    closeFid(l.ep);
    closeFid(l.av);
    closeFid(l.cq);
    closeFid(l.pool_mr);
  }
  for (auto* list : {&conns_, &dead_}) for (auto& c : *list) releaseConn(c.get());
  {
    std::lock_guard<std::mutex> clock(commands_mu_);
    for (Command& c : commands_) if (c.dest) lf::api().freeinfo(c.dest);
    commands_.clear();
  }
  closeFid(arena_mr_);
  closeFid(eq_);
  closeFid(domain_);
  closeFid(fabric_);
  conns_.clear();
  dead_.clear();
  if (hints_) lf::api().freeinfo(hints_);
  hints_ = nullptr;
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  wake_fd_ = epoll_fd_ = -1;
}

// ------------------------------------------------------------------------------------------- poller

void LfFabric::run() {
  epoll_event events[8];
  bool busy = false;
  while (!stop_.load(std::memory_order_acquire)) {
    const bool ready = ready_.load(std::memory_order_acquire);
    if (ready && !fds_added_) {
      fds_added_ = true;
      for (int fd : {eq_fd_, rdm() ? rdm_[frame::DATA].cq_fd : -1, rdm() ? rdm_[frame::CONTROL].cq_fd : -1}) if (fd >= 0) watch(fd, EPOLLIN);
    }
    int timeout = busy ? 0 : pollTimeoutMs(monotonicNs());
    if (timeout != 0 && ready && waitable()) {
      wait_fids_.clear();
      if (rdm()) for (const RdmLane& l : rdm_) wait_fids_.push_back(&l.cq->fid);
      else wait_fids_.push_back(&eq_->fid);
      for (const auto& c : conns_) if (c->cq) wait_fids_.push_back(&c->cq->fid);
      if (fi_trywait(fabric_, wait_fids_.data(), int(wait_fids_.size())) != FI_SUCCESS) timeout = 0;
    }
    int n;
    if (timeout > 0 && ready && !waitable()) {
      // A queue without a wait descriptor (shm's) is polled: right after work at short intervals that grow
      // to kIdlePollMaxUs, so what arrives soon after traffic is seen within microseconds while an idle
      // fabric wakes a few thousand times a second.
      idle_poll_us_ = std::min(std::max(idle_poll_us_ * 2, kIdlePollMinUs), kIdlePollMaxUs);
      const int64_t us = std::min<int64_t>(int64_t(timeout) * 1000, idle_poll_us_);
      const timespec wait{0, long(us * 1000)};
      n = epoll_pwait2(epoll_fd_, events, 8, &wait, nullptr);
    } else {
      n = epoll_wait(epoll_fd_, events, 8, timeout);
    }
    int work = 0;
    try {
      for (int i = 0; i < n; i++) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
          uint64_t count;
          ssize_t r = read(wake_fd_, &count, sizeof count);
          (void)r;
        } else if (fd == side_listen_.load(std::memory_order_relaxed)) {
          onSideAccept();
        } else if (auto it = socks_.find(fd); it != socks_.end()) {
          onSide(it->second, events[i].events);
        }
      }
      runCommands();
      if (!unposted_.empty()) {
        std::vector<Slot*> retry;
        retry.swap(unposted_);
        for (Slot* slot : retry) repostPool(slot);
      }
      if (ready) {
        work += pollCq();
        work += pollEq();
      }
      uint64_t now = monotonicNs();
      if (now >= next_deadline_ns_) onTimers(now);
      for (size_t i = 0; i < conns_.size(); i++) {
        LfConn* c = conns_[i].get();
        if (c->phase == LfPhase::DEAD) continue;
        if ((c->holding || !c->backlog.empty()) && c->phase != LfPhase::WAIT_SIBLING) drainBacklog(c);
        if (c->peer && c->phase != LfPhase::DEAD) {
          int err = 0;
          if (rma() && c->phase == LfPhase::OPEN && c->lane == frame::DATA) {  // grants made since the last keys were sent
            c->peer->grants.refresh(c->grants, c->grants_seen);
            if (c->keyed < c->grants.size()) {
              std::lock_guard<FairMutex> lock(c->mu());
              err = sendGrantKeys(c, c->peer);
            }
          }
          if (err == 0 && c->has_pending.load(std::memory_order_relaxed)) {
            std::lock_guard<FairMutex> lock(c->mu());
            err = flushPending(c);
          }
          if (err) fail(c, reason(FailReason::IO_ERROR));
        } else if (!c->peer && c->has_pending.load(std::memory_order_relaxed) && flushPending(c) != 0) {
          fail(c, reason(FailReason::IO_ERROR));  // an acceptor's keyed answer that waited for a send slot (poller only)
        }
      }
    } catch (const std::exception&) {
      // out of memory: keep the member running; the next pass retries
    }
    if (rings_.backlogged()) {
      rings_.flushBacklog();
      dirty_ |= 1u;
    }
    for (uint32_t c = 0; dirty_ != 0; c++) {
      if (dirty_ & (1u << c)) {
        dirty_ &= ~(1u << c);
        if (doorbell(c).ring()) Stats::add(stats_.wakeups);
        notifyArrival(arrival_, c);
      }
    }
    if (any_dead_) {
      for (auto& c : conns_) {
        if (c->phase != LfPhase::DEAD) continue;
        // A connected endpoint and its CQ are closed with the connection, so nothing can complete into its
        // buffers any more: they go now. In RDM mode its sends may still complete on the shared CQ, so it
        // stays until close().
        if (rdm()) {
          dead_.push_back(std::move(c));
        } else {
          releaseConn(c.get());
          c.reset();
        }
      }
      conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());
      any_dead_ = false;
    }
    busy = work > 0;
    if (busy) idle_poll_us_ = 0;
  }
}

int LfFabric::pollTimeoutMs(uint64_t now) const {
  // Without wait descriptors (a provider that offers none) the poller polls every millisecond; with them
  // it still looks every 20 ms at most, a safety net for a missed wake-up.
  int timeout = waitable() ? 20 : 1;
  if (!ready_.load(std::memory_order_acquire)) timeout = -1;
  if (next_deadline_ns_ != UINT64_MAX) {
    uint64_t left = next_deadline_ns_ > now ? next_deadline_ns_ - now : 0;
    int t = int(std::min<uint64_t>((left + kMs - 1) / kMs, 60000));
    timeout = timeout < 0 ? t : std::min(timeout, t);
  }
  bool waiting = rings_.backlogged() || !unposted_.empty();
  for (const auto& c : conns_) waiting = waiting || c->holding || c->has_pending.load(std::memory_order_relaxed);
  if (waiting) timeout = timeout < 0 ? 1 : std::min(timeout, 1);
  return timeout;
}

void LfFabric::runCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    if (commands_.empty()) return;
    commands.swap(commands_);
  }
  uint64_t now = monotonicNs();
  for (const Command& cmd : commands) {
    LfPeer* p = by_id_[cmd.peer].load(std::memory_order_acquire);
    if (cmd.kind == Command::CONNECT) {
      if (!p || p->state.load() != PeerState::CONNECTING) {
        if (cmd.dest) lf::api().freeinfo(cmd.dest);
        continue;
      }
      // Two connections, control first; each needs its own copy of where to connect.
      fi_info* second = cmd.dest ? lf::api().dupinfo(cmd.dest) : nullptr;
      LfConn* control = newInitiator(p, frame::CONTROL, cmd, cmd.dest, now);
      if (control->phase != LfPhase::DEAD && (!cmd.dest || second)) newInitiator(p, frame::DATA, cmd, second, now);
      else if (second) lf::api().freeinfo(second);
      if (cmd.dest && !second && control->phase != LfPhase::DEAD) fail(control, reason(FailReason::IO_ERROR));
      continue;
    }
    if (!p) continue;
    LfConn* c = p->conn[frame::CONTROL] ? p->conn[frame::CONTROL] : p->conn[frame::DATA];
    if (cmd.kind == Command::BREAK) {
      LfConn* lane = p->conn[cmd.arg & 1];
      if (!lane || lane->phase == LfPhase::DEAD) continue;
      if (rdm()) {
        if (lane->sock >= 0) ::shutdown(lane->sock, SHUT_RDWR);  // both ends read the side channel's end
      } else if (lane->ep) {
        fi_shutdown(lane->ep, 0);  // the peer gets FI_SHUTDOWN; here, the lane is dead: fail it as the fault would
        fail(lane, reason(FailReason::CLOSED));
      }
    } else if (c) {
      fail(c, cmd.kind == Command::FAIL ? cmd.arg : reason(FailReason::LOCAL_CLOSE));
    } else {
      failPeerWithoutConn(p, cmd.kind == Command::FAIL ? cmd.arg : reason(FailReason::LOCAL_CLOSE));
    }
  }
}

LfConn* LfFabric::newInitiator(LfPeer* p, uint8_t lane, const Command& cmd, fi_info* dest, uint64_t now) {
  conns_.push_back(std::make_unique<LfConn>(Role::INITIATOR, LfPhase::RETRY_WAIT));
  LfConn* c = conns_.back().get();
  c->peer = p;
  c->lane = lane;
  p->conn[lane] = c;
  c->dest = dest;
  c->sock_dest = cmd.addr;
  c->sock_dest_len = cmd.addr_len;
  c->connect_deadline_ns = now + uint64_t(opt_.connect_timeout_ms) * kMs;
  startConnect(c, now);
  return c;
}

// The connection's registered buffers, once: receive slots (connected endpoints; RDM receives into the
// fabric's pool) and send slots.
bool LfFabric::initSlots(LfConn* c) {
  if (c->mem) return true;
  const uint32_t recvs = rdm() ? 0 : kRecvSlots;
  const size_t bytes = size_t(recvs + kSendSlots) * kSlotBytes;
  c->mem.reset(new uint8_t[bytes]);
  if (mr_local_) {
    if (fi_mr_reg(domain_, c->mem.get(), bytes, FI_SEND | FI_RECV, 0, 0, 0, &c->mr, nullptr) != 0) {
      c->mr = nullptr;
      c->mem.reset();
      return false;
    }
    c->desc = fi_mr_desc(c->mr);
  }
  for (uint32_t i = 0; i < recvs; i++) c->recv[i] = Slot{{}, c, c->mem.get() + size_t(i) * kSlotBytes, 0, false};
  for (uint32_t i = 0; i < kSendSlots; i++) c->send[i] = Slot{{}, c, c->mem.get() + size_t(recvs + i) * kSlotBytes, 0, true};
  for (uint32_t i = 0; i < kRmaOps; i++) c->rma[i] = Slot{{}, c, nullptr, 0, true, true};
  return true;
}

// A new attempt (connect retries): completions of the old one are recognised by their generation.
void LfFabric::resetSlots(LfConn* c) {
  c->gen++;
  c->free_send.clear();
  for (uint32_t i = 0; i < kSendSlots; i++) c->free_send.push_back(&c->send[i]);
  c->free_rma.clear();
  if (rma()) for (uint32_t i = 0; i < kRmaOps; i++) c->free_rma.push_back(&c->rma[i]);
}

bool LfFabric::openEp(LfConn* c, fi_info* info) {
  if (!initSlots(c)) return false;
  resetSlots(c);
  fid_ep* ep = nullptr;
  int r = check(fi_endpoint(domain_, info, &ep, c), "fi_endpoint");
  if (r == 0) r = check(fi_ep_bind(ep, &eq_->fid, 0), "fi_ep_bind(eq)");
  if (r == 0) r = check(openCq(&c->cq, &c->cq_fd), "fi_cq_open");
  if (r == 0) r = check(fi_ep_bind(ep, &c->cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
  if (r == 0) r = check(fi_enable(ep), "fi_enable");
  if (r != 0) {
    if (ep) fi_close(&ep->fid);
    if (c->cq) fi_close(&c->cq->fid);
    c->cq = nullptr;
    return false;
  }
  c->ep = ep;
  eps_[&ep->fid] = c;
  if (c->cq_fd >= 0) watch(c->cq_fd, EPOLLIN);
  for (uint32_t i = 0; i < kRecvSlots; i++) {
    Slot* s = &c->recv[i];
    s->gen = c->gen;
    if (check(int(fi_recv(ep, s->buf, kSlotBytes, c->desc, 0, &s->ctx)), "fi_recv") != 0) {
      closeEp(c);
      return false;
    }
  }
  return true;
}

void LfFabric::closeEp(LfConn* c) {
  if (rdm()) return closeSide(c);
  if (!c->ep) return;
  eps_.erase(&c->ep->fid);
  fi_shutdown(c->ep, 0);
  fi_close(&c->ep->fid);
  c->ep = nullptr;
  for (fid_mr* mr : c->grant_mrs) fi_close(&mr->fid);
  c->grant_mrs.clear();
  c->keyed = 0;
  if (c->cq_fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->cq_fd, nullptr);
  fi_close(&c->cq->fid);  // with the endpoint: no completion of its operations can come later
  c->cq = nullptr;
  c->cq_fd = -1;
}

// Frees what a connection holds besides its endpoint (closeEp): its slots' registration and where it connects.
void LfFabric::releaseConn(LfConn* c) {
  closeFid(c->mr);
  if (c->dest) lf::api().freeinfo(c->dest);
  c->dest = nullptr;
}

void LfFabric::startConnect(LfConn* c, uint64_t now) {
  const bool started = rdm() ? connectSide(c) : openEp(c, c->dest) && check(fi_connect(c->ep, c->dest->dest_addr, nullptr, 0), "fi_connect") == 0;
  if (!started) return retryLater(c, now);
  c->phase = LfPhase::CONNECTING;
  c->deadline_ns = c->connect_deadline_ns;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

// RDM mode: the side channel to the peer's listening address first (the TCP connect completes, and the
// peer's endpoint name comes back, in onSide).
bool LfFabric::connectSide(LfConn* c) {
  if (!initSlots(c)) return false;
  const int fd = openTcpSocket(c->sock_dest);
  if (fd < 0) return false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&c->sock_dest), c->sock_dest_len) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return false;
  }
  attachSide(c, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
  return true;
}

void LfFabric::retryLater(LfConn* c, uint64_t now) {
  closeEp(c);
  if (now + kConnectRetryNs >= c->connect_deadline_ns) return fail(c, reason(FailReason::CONNECT_TIMEOUT));
  c->phase = LfPhase::RETRY_WAIT;
  c->deadline_ns = now + kConnectRetryNs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
}

void LfFabric::onTimers(uint64_t now) {
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    switch (c->phase) {
      case LfPhase::RETRY_WAIT:
        if (c->deadline_ns <= now) startConnect(c, now);
        break;
      case LfPhase::CONNECTING:
        if (c->deadline_ns <= now) fail(c, reason(FailReason::CONNECT_TIMEOUT));
        break;
      case LfPhase::HELLO:
      case LfPhase::AUTH:
      case LfPhase::WAIT_SIBLING:  // an acceptor's lane whose sibling never came (an initiator's has no deadline)
        if (c->deadline_ns <= now) fail(c, reason(FailReason::HANDSHAKE_TIMEOUT));
        break;
      default:
        break;
    }
    if (c->phase == LfPhase::RETRY_WAIT || c->phase == LfPhase::CONNECTING || c->phase == LfPhase::HELLO || c->phase == LfPhase::AUTH ||
        c->phase == LfPhase::WAIT_SIBLING) {
      next = std::min(next, c->deadline_ns);
    }
  }
  next_deadline_ns_ = next;
}

int LfFabric::pollEq() {
  int work = 0;
  for (;;) {
    uint32_t ev = 0;
    // Room for connection data after the entry (fi_eq(3): an event may carry some; squall sends none, but
    // a provider may refuse a buffer that cannot hold what it has).
    alignas(fi_eq_cm_entry) uint8_t raw[sizeof(fi_eq_cm_entry) + kCmDataBytes] = {};
    ssize_t r = fi_eq_read(eq_, &ev, raw, sizeof raw, 0);
    fi_eq_cm_entry entry;
    std::memcpy(&entry, raw, sizeof entry);
    if (r == -FI_EAVAIL) {
      fi_eq_err_entry err{};
      if (fi_eq_readerr(eq_, &err, 0) < 0) return work;
      work++;
      check(-err.err, "event queue error");
      LfConn* c = connOf(err.fid);
      if (!c || c->phase == LfPhase::DEAD) continue;
      if (c->role == Role::INITIATOR && c->phase == LfPhase::CONNECTING) {
        retryLater(c, monotonicNs());  // refused (not listening yet) or unreachable: retry until the deadline
      } else {
        pollConnCq(c);  // what arrived before the error is applied first
        if (c->phase != LfPhase::DEAD) fail(c, reason(FailReason::IO_ERROR));
      }
      continue;
    }
    if (r < 0) return work;  // -FI_EAGAIN
    work++;
    if (ev == FI_CONNREQ) {
      onConnReq(entry.info);
      continue;
    }
    // Only an FI_CONNREQ hands over an fi_info for the application to free (fi_eq(3)); for the other
    // events the field is not defined, so it is never read (let alone freed) here.
    LfConn* c = connOf(entry.fid);
    if (!c || c->phase == LfPhase::DEAD) continue;
    if (ev == FI_CONNECTED) {
      onConnected(c);
    } else if (ev == FI_SHUTDOWN) {
      pollConnCq(c);  // frames the peer sent before it went away are still applied, in order
      if (c->phase != LfPhase::DEAD) fail(c, reason(FailReason::CLOSED));
    }
  }
}

// ------------------------------------------------------------------------------- RDM mode (poller)

// A lane's CQ: sends complete to their connection's slots; a frame received into a pool slot belongs to
// the connection of that lane its sender's address maps to (FI_SOURCE). A sender not (or no longer) known
// has nothing to say: its frame is dropped. Frames of one sender arrive in the order sent (FI_ORDER_SAS)
// and are applied in CQ order, as on a connected endpoint. At most max_batches of 64 entries per call.
int LfFabric::pollRdmCq(uint8_t lane, int max_batches) {
  RdmLane& l = rdm_[lane];
  int work = 0;
  fi_cq_data_entry entries[64];
  fi_addr_t from[64];
  for (int batch = 0; batch < max_batches; batch++) {
    ssize_t n = fi_cq_readfrom(l.cq, entries, 64, from);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(l.cq, &err, 0) < 0) return work;
      work++;
      check(-err.err, "completion error");
      Slot* s = reinterpret_cast<Slot*>(err.op_context);
      if (!s) continue;
      if (s->pooled) {  // a receive that failed names no sender to fail
        repostPool(s);
        continue;
      }
      LfConn* c = s->conn;
      if (c->phase == LfPhase::DEAD || s->gen != c->gen || err.err == FI_ECANCELED) continue;
      fail(c, reason(FailReason::IO_ERROR));
      continue;
    }
    if (n <= 0) return work;
    work += int(n);
    Stats::bump(stats_.recv_calls);
    for (ssize_t i = 0; i < n; i++) {
      Slot* s = reinterpret_cast<Slot*>(entries[i].op_context);
      if (!s) continue;
      if (s->pooled) {
        auto it = l.by_addr.find(from[i]);
        LfConn* c = it == l.by_addr.end() ? nullptr : it->second;
        if (!c || c->phase == LfPhase::DEAD) repostPool(s);
        else onRecv(c, s, uint32_t(entries[i].len));
        continue;
      }
      LfConn* c = s->conn;
      if (c->phase == LfPhase::DEAD || s->gen != c->gen) continue;
      if (s->send) onSent(c, s);
    }
  }
  return work;
}

void LfFabric::repostPool(Slot* s) {
  RdmLane& l = rdm_[s->lane];
  ssize_t r = fi_recv(l.ep, s->buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &s->ctx);
  for (int tries = 0; r == -FI_EAGAIN && tries < 1000; tries++) {
    fi_cq_read(l.cq, nullptr, 0);  // progress
    r = fi_recv(l.ep, s->buf, kSlotBytes, l.pool_desc, FI_ADDR_UNSPEC, &s->ctx);
  }
  if (check(int(r), "fi_recv(pool)") != 0) unposted_.push_back(s);  // tried again on the poller's next pass
}

// A peer connected to the side channel: it sends its endpoint name first, with its lane (onSide).
void LfFabric::onSideAccept() {
  for (;;) {
    const int fd = accept4(side_listen_.load(std::memory_order_relaxed), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    conns_.push_back(std::make_unique<LfConn>(Role::ACCEPTOR, LfPhase::HELLO));
    LfConn* c = conns_.back().get();
    c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
    next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
    if (!initSlots(c)) {
      ::close(fd);
      c->phase = LfPhase::DEAD;
      any_dead_ = true;
      continue;
    }
    attachSide(c, fd, EPOLLIN | EPOLLRDHUP);
  }
}

// RDM mode: c's new attempt, with fd as its side channel (its endpoint is its lane's, once the lane is known).
void LfFabric::attachSide(LfConn* c, int fd, uint32_t events) {
  resetSlots(c);
  c->sock = fd;
  c->ep = rdm_[c->lane].ep;
  socks_[fd] = c;
  watch(fd, events);
}

// The name of this fabric's endpoint for c's lane: [magic u32][lane u32][length u32][name]. Small enough for
// any fresh socket's buffer.
bool LfFabric::sendName(LfConn* c) {
  const std::string& name = rdm_[c->lane].name;
  std::string record(kNameHeadBytes, '\0');
  const uint32_t head[3] = {kNameMagic, c->lane, uint32_t(name.size())};
  std::memcpy(&record[0], head, kNameHeadBytes);
  record += name;
  return ::send(c->sock, record.data(), record.size(), MSG_NOSIGNAL) == ssize_t(record.size());
}

// Once the peer's whole name record is in: its address goes into its lane's AV, and frames from it now reach
// c. The lane must be one (an acceptor takes it from here; an initiator's answer must name the lane it asked).
bool LfFabric::takeName(LfConn* c) {
  if (c->name_in.size() < kNameHeadBytes) return true;
  uint32_t head[3];
  std::memcpy(head, c->name_in.data(), kNameHeadBytes);
  if (head[0] != kNameMagic || head[1] >= frame::kLanes || head[2] == 0 || head[2] > kNameMaxBytes) return false;
  if (c->role == Role::INITIATOR ? head[1] != c->lane : c->in_av) return false;
  if (c->name_in.size() < kNameHeadBytes + head[2]) return true;  // more to come
  c->lane = uint8_t(head[1]);
  c->ep = rdm_[c->lane].ep;
  RdmLane& l = rdm_[c->lane];
  fi_addr_t addr = FI_ADDR_NOTAVAIL;
  if (fi_av_insert(l.av, c->name_in.data() + kNameHeadBytes, 1, &addr, 0, nullptr) != 1 || l.by_addr.count(addr)) return false;
  c->addr = addr;
  c->in_av = true;
  l.by_addr[addr] = c;
  return true;
}

// The side channel of c is readable or writable: finish the initiator's TCP connect and send its name,
// read the peer's name record, and after that watch for its end.
void LfFabric::onSide(LfConn* c, uint32_t events) {
  if (c->phase == LfPhase::DEAD) return;
  const uint64_t now = monotonicNs();
  if (c->role == Role::INITIATOR && !c->name_sent) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 || !sendName(c)) return retryLater(c, now);  // refused: not listening yet
    c->name_sent = true;
    watch(c->sock, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
  }
  char buf[512];
  bool ended = false;
  for (;;) {
    const ssize_t n = ::read(c->sock, buf, sizeof buf);
    if (n > 0) {
      if (!c->in_av) c->name_in.append(buf, size_t(n));
      continue;
    }
    ended = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    break;
  }
  if (!c->in_av && c->name_in.size() >= kNameHeadBytes) {
    if (!takeName(c)) return fail(c, reason(FailReason::BAD_MAGIC));
    if (c->in_av) {
      if (c->role == Role::ACCEPTOR) {
        if (!sendName(c)) return fail(c, reason(FailReason::CLOSED));
      } else {
        onConnected(c);  // HELLO phase: the frame HELLOs follow on the fabric
      }
    }
  }
  if (!ended || c->phase == LfPhase::DEAD) return;
  if (c->role == Role::INITIATOR && c->phase == LfPhase::CONNECTING) return retryLater(c, now);
  pollRdmCq(c->lane);  // frames the peer sent before it ended are still applied, in order
  if (c->phase != LfPhase::DEAD) fail(c, reason(FailReason::CLOSED));
}

// Ends c's side channel (the peer reads its end) and forgets its address.
void LfFabric::closeSide(LfConn* c) {
  if (c->sock >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->sock, nullptr);
    socks_.erase(c->sock);
    ::close(c->sock);
    c->sock = -1;
  }
  // The address stays in the AV (removing it under sends in flight is not worth the risk); only the
  // mapping goes, so a late frame from it is dropped.
  if (c->in_av) rdm_[c->lane].by_addr.erase(c->addr);
  c->in_av = false;
  c->name_sent = false;
  c->name_in.clear();
  c->ep = nullptr;
}

void LfFabric::onConnReq(fi_info* info) {
  if (!info) return;
  conns_.push_back(std::make_unique<LfConn>(Role::ACCEPTOR, LfPhase::HELLO));
  LfConn* c = conns_.back().get();
  c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  if (!openEp(c, info) || check(fi_accept(c->ep, nullptr, 0), "fi_accept") != 0) {
    if (!c->ep) fi_reject(pep_, info->handle, nullptr, 0);
    closeEp(c);
    c->phase = LfPhase::DEAD;
    any_dead_ = true;
  }
  lf::api().freeinfo(info);
}

void LfFabric::onConnected(LfConn* c) {
  if (c->role == Role::ACCEPTOR || c->phase != LfPhase::CONNECTING) return;  // the acceptor waits for a HELLO
  LfPeer* p = c->peer;
  uint64_t now = monotonicNs();
  c->phase = LfPhase::HELLO;
  c->deadline_ns = now + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  int sent;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    const PeerState s = p->state.load();
    if (s != PeerState::CONNECTING && s != PeerState::HANDSHAKING) {  // the sibling lane may have got here first
      sent = 1;
    } else {
      p->state.store(PeerState::HANDSHAKING);
      std::lock_guard<FairMutex> lane_lock(c->mu());
      p->tx[c->lane] = c;
      // Keys before the data lane's HELLO: the peer knows every region once connected. With an auth key
      // they wait until the acceptor has proved it (onHello): a key opens the arena to one-sided writes.
      sent = rma() && c->lane == frame::DATA && !opt_.key.present() ? sendGrantKeys(c, p) : 0;
      if (sent == 0 && opt_.key.present() && !auth::freshNonce(c->nonce)) sent = -EIO;
      if (sent == 0) sent = sendHello(c);
    }
  }
  if (sent == 1) return fail(c, reason(FailReason::LOCAL_CLOSE));
  if (sent != 0) return fail(c, reason(FailReason::CLOSED));
}

// Control lanes first, and again after every data queue that had work; a data queue gives way after
// kDataBatches batches of completions (the poller comes back at once while there is work).
int LfFabric::pollCq() {
  int work = pollControl();
  if (rdm()) {
    const int data = pollRdmCq(frame::DATA, kDataBatches);
    return work + data + (data > 0 ? pollControl() : 0);
  }
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    if (c->lane == frame::CONTROL && c->phase != LfPhase::HELLO && c->phase != LfPhase::AUTH) continue;  // polled by pollControl
    const int data = pollConnCq(c, kDataBatches);
    work += data + (data > 0 ? pollControl() : 0);
  }
  return work;
}

int LfFabric::pollControl() {
  if (rdm()) return pollRdmCq(frame::CONTROL);
  int work = 0;
  for (size_t i = 0; i < conns_.size(); i++) {
    LfConn* c = conns_[i].get();
    if (c->lane == frame::CONTROL && c->phase != LfPhase::HELLO && c->phase != LfPhase::AUTH) work += pollConnCq(c);
  }
  return work;
}

// Every completion in c's queue is c's own: its sends, receives and one-sided writes, and the peer's
// writes with remote CQ data (whose entries carry no context of ours unless they consumed a receive).
int LfFabric::pollConnCq(LfConn* c, int max_batches) {
  int work = 0;
  fi_cq_data_entry entries[64];
  for (int batch = 0; batch < max_batches && c->cq; batch++) {  // closed when the connection fails, perhaps by one of these completions
    ssize_t n = fi_cq_read(c->cq, entries, 64);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(c->cq, &err, 0) < 0) return work;
      work++;
      check(-err.err, "completion error");
      const Slot* s = reinterpret_cast<const Slot*>(err.op_context);
      if (c->phase == LfPhase::DEAD || (s && s->gen != c->gen) || err.err == FI_ECANCELED) continue;
      fail(c, reason(err.err == FI_ETRUNC || err.err == FI_EMSGSIZE ? FailReason::OVERSIZE : FailReason::IO_ERROR));
      continue;
    }
    if (n <= 0) return work;
    work += int(n);
    Stats::bump(stats_.recv_calls);
    for (ssize_t i = 0; i < n && c->phase != LfPhase::DEAD; i++) {
      Slot* s = reinterpret_cast<Slot*>(entries[i].op_context);
      if (s && s->gen != c->gen) continue;
      if (entries[i].flags & FI_REMOTE_CQ_DATA) onRemoteWrite(c, s, entries[i].data);
      else if (!s) continue;
      else if (s->rma) onRmaDone(c, s);
      else if (s->send) onSent(c, s);
      else onRecv(c, s, uint32_t(entries[i].len));
    }
  }
  return work;
}

void LfFabric::onSent(LfConn* c, Slot* s) {
  LfPeer* p = c->peer;
  if (!p) {  // an acceptor's slot before it knew its peer (cannot happen: it sends only after the HELLO)
    c->free_send.push_back(s);
    return;
  }
  int err;
  {
    std::lock_guard<FairMutex> lock(c->mu());
    c->free_send.push_back(s);
    err = flushPending(c);
  }
  if (err) fail(c, reason(FailReason::IO_ERROR));
}

void LfFabric::onRmaDone(LfConn* c, Slot* s) {
  if (!c->peer) return;
  int err;
  {
    std::lock_guard<FairMutex> lock(c->mu());
    c->free_rma.push_back(s);
    err = flushPending(c);
  }
  if (err) fail(c, reason(FailReason::IO_ERROR));
}

// A GRANT_KEY frame (OPEN phase): from now on writes into that region of the peer's arena may go one-sided.
bool LfFabric::onGrantKey(LfConn* c, const uint8_t* at, uint32_t len) {
  frame::Header h = frame::decode(at);
  if (h.length != kGrantKeyBytes || len != frame::kHeaderBytes + kGrantKeyBytes) return fail(c, reason(FailReason::BAD_TYPE)), false;
  RemoteRegion r;
  std::memcpy(&r, at + frame::kHeaderBytes, sizeof r);
  if (r.length == 0) return fail(c, reason(FailReason::BAD_TYPE)), false;
  if (c->phase == LfPhase::HELLO || c->phase == LfPhase::AUTH) {  // before the handshake's end: adopted with it (adoptRegions)
    // With an auth key keys come only after the other side's proof: the initiator's after the acceptor's
    // HELLO (the acceptor is in AUTH), the acceptor's after the initiator's AUTH (the initiator is in AUTH).
    if (opt_.key.present() && c->phase != LfPhase::AUTH) return fail(c, reason(FailReason::BAD_TYPE)), false;
    if (c->early_regions.size() >= kPeerIds) return fail(c, reason(FailReason::BAD_TYPE)), false;
    c->early_regions.push_back(r);
    return true;
  }
  LfPeer* p = c->peer;
  std::lock_guard<FairMutex> data_lock(p->mu[frame::DATA]);
  std::lock_guard<FairMutex> control_lock(p->mu[frame::CONTROL]);
  p->regions.push_back(r);
  return true;
}

// At the peer's HELLO on a lane: the regions its GRANT_KEYs before that HELLO named. Takes both lanes' mutexes
// (writers of either lane read the regions); the caller holds state_mu only.
void LfFabric::adoptRegions(LfConn* c, LfPeer* p) {
  if (c->early_regions.empty()) return;
  std::lock_guard<FairMutex> data_lock(p->mu[frame::DATA]);
  std::lock_guard<FairMutex> control_lock(p->mu[frame::CONTROL]);
  p->regions.insert(p->regions.end(), c->early_regions.begin(), c->early_regions.end());
  c->early_regions.clear();
}

void LfFabric::onRecv(LfConn* c, Slot* s, uint32_t len) {
  Stats::bump(stats_.bytes_in, len);
  if (c->holding || !c->backlog.empty() || c->phase == LfPhase::WAIT_SIBLING) {
    if (s->pooled) {
      c->backlog.push_back(Arrival{nullptr, len, false, 0, std::vector<uint8_t>(s->buf, s->buf + len)});
      repostPool(s);
    } else {
      c->backlog.push_back(Arrival{s, len, false, 0, {}});
    }
    return;
  }
  applyMessage(c, s->buf, len);
  repost(c, s);
}

// The peer's fi_writedata landed (s: the receive it consumed, FI_RX_CQ_DATA providers only).
void LfFabric::onRemoteWrite(LfConn* c, Slot* s, uint64_t data) {
  if (c->holding || !c->backlog.empty() || c->phase == LfPhase::WAIT_SIBLING) {
    c->backlog.push_back(Arrival{s, 0, true, data, {}});
    return;
  }
  applyRemoteWrite(c, data);
  if (s) repost(c, s);
}

bool LfFabric::applyRemoteWrite(LfConn* c, uint64_t data) {
  if (c->phase != LfPhase::OPEN) return fail(c, reason(FailReason::BAD_TYPE)), false;  // before the handshake
  const Placed w = placedFrom(data);
  Stats::bump(stats_.bytes_in, w.length);
  frame::Header h{};
  h.offset = w.offset;
  h.length = uint32_t(w.length);
  h.imm = w.imm;
  return applyRange(c, w.with_imm ? kFramePlacedImm : kFramePlaced, h, nullptr);
}

void LfFabric::repost(LfConn* c, Slot* s) {
  if (s->pooled) return repostPool(s);
  if (c->phase == LfPhase::DEAD) return;
  s->gen = c->gen;
  if (fi_recv(c->ep, s->buf, kSlotBytes, c->desc, 0, &s->ctx) != 0) fail(c, reason(FailReason::IO_ERROR));
}

void LfFabric::drainBacklog(LfConn* c) {
  if (c->holding) {
    if (!rings_.tryPush(c->held_ring, c->held)) return;
    c->holding = false;
    dirty_ |= 1u << c->held_ring;
  }
  while (!c->backlog.empty() && !c->holding && c->phase != LfPhase::DEAD) {
    const Arrival a = std::move(c->backlog.front());
    c->backlog.pop_front();
    if (a.remote_write) applyRemoteWrite(c, a.data);
    else applyMessage(c, a.slot ? a.slot->buf : a.copy.data(), a.len);
    if (a.slot) repost(c, a.slot);
  }
}

// A message is one frame, or (writeBatch) several WRITE frames back to back. Those never hold: only a
// completion can, so the frames before the last are applied here one by one.
bool LfFabric::applyMessage(LfConn* c, const uint8_t* at, uint32_t len) {
  while (len > frame::kHeaderBytes && at[3] == frame::WRITE) {
    const uint64_t one = frame::kHeaderBytes + uint64_t(frame::decode(at).length);
    if (one >= len) break;
    if (!applyFrame(c, at, uint32_t(one))) return false;
    at += one;
    len -= uint32_t(one);
  }
  return applyFrame(c, at, len);
}

// The receiver rules of connection.cc, for a frame that arrived whole.
bool LfFabric::applyFrame(LfConn* c, const uint8_t* at, uint32_t len) {
  if (len < 4) {
    fail(c, reason(FailReason::TRUNCATED));
    return false;
  }
  uint16_t magic;
  std::memcpy(&magic, at, 2);
  if (magic != frame::kMagic) return fail(c, reason(FailReason::BAD_MAGIC)), false;
  if (at[2] != frame::kVersion) return fail(c, reason(FailReason::BAD_VERSION)), false;
  const uint8_t type = at[3];
  const bool hello_time = c->phase == LfPhase::HELLO;
  const bool auth_time = c->phase == LfPhase::AUTH;
  // GRANT_KEYs come before the HELLO (with a key: after the other side's proof; and later, for grants made
  // later); AUTH only while it is awaited; writes only after the handshake.
  const bool key = rma() && type == kFrameGrantKey;
  const bool write = type == frame::WRITE || type == frame::WRITE_IMM || (rma() && (type == kFramePlaced || type == kFramePlacedImm));
  const bool allowed = type == frame::HELLO ? hello_time : type == frame::AUTH ? auth_time : key || (write && !hello_time && !auth_time);
  if (!allowed) return fail(c, reason(FailReason::BAD_TYPE)), false;
  if (len < frame::kHeaderBytes) return fail(c, reason(FailReason::TRUNCATED)), false;
  frame::Header h = frame::decode(at);
  if (type == frame::HELLO) {
    const bool sized = h.length == frame::kHelloBytes || h.length == frame::kHelloAuthBytes;
    if (!sized || h.offset != 0 || h.imm != 0 || len != frame::kHeaderBytes + h.length) return fail(c, reason(FailReason::BAD_TYPE)), false;
    const frame::Hello hello = frame::decodeHello(at + frame::kHeaderBytes, h.length);
    if (hello.bytes() != h.length) return fail(c, reason(FailReason::BAD_TYPE)), false;  // its flags say another length
    onHello(c, hello);
    return c->phase != LfPhase::DEAD;
  }
  if (type == frame::AUTH) {
    if (h.length != frame::kAuthBytes || h.offset != 0 || h.imm != 0 || len != frame::kHeaderBytes + frame::kAuthBytes) {
      return fail(c, reason(FailReason::BAD_TYPE)), false;
    }
    onAuth(c, at + frame::kHeaderBytes);
    return c->phase != LfPhase::DEAD;
  }
  if (type == kFrameGrantKey) return onGrantKey(c, at, len);
  const bool placed = type == kFramePlaced || type == kFramePlacedImm;
  if (!placed && h.length > opt_.max_frame_bytes) return fail(c, reason(FailReason::OVERSIZE)), false;
  if (len != frame::kHeaderBytes + (placed ? 0 : uint64_t(h.length))) return fail(c, reason(FailReason::TRUNCATED)), false;
  return applyRange(c, type, h, placed ? nullptr : at + frame::kHeaderBytes);
}

// A write the connection's peer made: a WRITE / WRITE_IMM frame (payload: its bytes), or a one-sided write
// already placed (payload null: a PLACED note, or an fi_writedata's completion). For the latter the grant
// is checked after the fact: a peer writing outside its grants is failed (OUT_OF_GRANT), but unlike the
// message path it could not be stopped before the bytes landed.
bool LfFabric::applyRange(LfConn* c, uint8_t type, const frame::Header& h, const uint8_t* payload) {
  c->peer->grants.refresh(c->grants, c->grants_seen);
  const Grant* g = GrantTable::find(c->grants, h.offset, h.length);
  if (!g || !arena_.contains(h.offset, h.length)) return fail(c, reason(FailReason::OUT_OF_GRANT)), false;
  if (g->kind == GrantKind::CONTROL && !aligned8(h.offset, h.length)) return fail(c, reason(FailReason::MISALIGNED)), false;
  uint8_t* dst = arena_.base + h.offset;
  if (!payload) {
    // placed already
  } else if (g->kind == GrantKind::CONTROL) storeControl(dst, payload, h.length);
  else if (h.length) std::memcpy(dst, payload, h.length);
  Stats::bump(stats_.frames_in);
  // A split write's chunks are adjacent on the connection (the sender holds the peer's mutex for all of
  // them), so a run is contiguous; anything else ends it.
  const bool continues_run = c->run_end != 0 && h.offset == c->run_end;
  if (type != frame::WRITE_IMM && type != kFramePlacedImm) {
    if (type == frame::WRITE && h.imm == kContinued) {
      if (!continues_run) c->run_offset = h.offset;
      c->run_end = h.offset + h.length;
    } else {
      c->run_end = 0;
    }
    if (!g->quiet) dirty_ |= 1u << g->ring;
    return true;
  }
  const uint64_t whole_offset = continues_run ? c->run_offset : h.offset;
  c->run_end = 0;
  dirty_ |= 1u << g->ring;
  Completion comp{uint16_t(CompletionKind::WRITE_IMM), c->peer->id, h.imm, whole_offset, h.offset + h.length - whole_offset, monotonicNs()};
  if (rings_.tryPush(g->ring, comp)) return true;
  c->holding = true;  // later frames of this peer wait behind it (backlog), their buffers not reposted
  c->held_ring = g->ring;
  c->held = comp;
  return false;
}

void LfFabric::onHello(LfConn* c, const frame::Hello& h) {
  if (!h.valid()) return fail(c, reason(FailReason::BAD_LANE));
  // A key on one side only is refused by both (auth.h).
  if (h.authenticated() != opt_.key.present()) return fail(c, reason(FailReason::AUTH_FAILED));
  if (c->role == Role::ACCEPTOR) {
    LfPeer* p = h.member < 0xffff ? by_id_[h.member].load(std::memory_order_acquire) : nullptr;
    if (!p || p->grants.empty()) return fail(c, reason(FailReason::UNKNOWN_PEER));
    if (h.layout_tag != layout_tag_.load(std::memory_order_relaxed)) return fail(c, reason(FailReason::LAYOUT_MISMATCH));
    if (rdm() && h.lane != c->lane) return fail(c, reason(FailReason::BAD_LANE));  // its name record named the lane
    if (opt_.key.present()) {
      if (keyedHelloAccepted(c, p, h)) c->phase = LfPhase::AUTH;
      return;
    }
    return acceptLane(c, p, h.lane);
  }
  LfPeer* p = c->peer;
  if (h.member != p->id) return fail(c, reason(FailReason::UNKNOWN_PEER));
  if (h.lane != c->lane) return fail(c, reason(FailReason::BAD_LANE));
  if (h.layout_tag != layout_tag_.load(std::memory_order_relaxed)) return fail(c, reason(FailReason::LAYOUT_MISMATCH));
  if (opt_.key.present()) {
    // The acceptor's proof first; then our keys (rma, data lane) and our proof; the lane opens at the
    // acceptor's closing AUTH, which follows its own keys (onAuth).
    c->hello = h;
    if (!auth::verify(opt_.key, auth::Direction::ACCEPTOR, transcript(c), h.mac)) return fail(c, reason(FailReason::AUTH_FAILED));
    int err;
    {
      std::lock_guard<std::mutex> lock(p->state_mu);
      if (p->state.load() != PeerState::HANDSHAKING) return;  // disconnected locally; its command follows
      std::lock_guard<FairMutex> lane_lock(c->mu());
      err = rma() && c->lane == frame::DATA ? sendGrantKeys(c, p) : 0;
      if (err == 0) err = sendAuth(c, auth::Direction::INITIATOR);
    }
    if (err != 0) return fail(c, reason(FailReason::CLOSED));
    c->phase = LfPhase::AUTH;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() != PeerState::HANDSHAKING) return;  // disconnected locally; its command follows
    adoptRegions(c, p);
  }
  laneUp(c);
}

// Acceptor with an auth key: a HELLO from an expected member. It is answered with our nonce and proof,
// and c stays nobody's (c->peer null: a failure is CONNECTION_REJECTED, the member is not disturbed) until
// the initiator's AUTH proves the key too. False if c failed.
bool LfFabric::keyedHelloAccepted(LfConn* c, LfPeer* p, const frame::Hello& h) {
  for (uint8_t b : h.mac) {
    if (b != 0) return fail(c, reason(FailReason::AUTH_FAILED)), false;  // an initiator sends no MAC in its HELLO
  }
  {
    std::lock_guard<std::mutex> lock(p->state_mu);  // refused early if the lane cannot be had (onAuth checks again)
    const PeerState s = p->state.load();
    if (!(s == PeerState::EXPECTED || (s == PeerState::HANDSHAKING && p->accepted && !p->conn[h.lane]))) {
      return fail(c, reason(FailReason::DUPLICATE_PEER)), false;
    }
  }
  c->lane = h.lane;
  c->hello = h;
  if (!auth::freshNonce(c->nonce)) return fail(c, reason(FailReason::IO_ERROR)), false;
  uint8_t mac[frame::kMacBytes];
  auth::mac(opt_.key, auth::Direction::ACCEPTOR, transcript(c), mac);
  uint8_t buf[frame::kHeaderBytes + frame::kHelloAuthBytes];
  frame::encodeHelloAuth(buf, opt_.member_id, h.layout_tag, h.lane, c->nonce, mac);
  // Poller only, as every send of an acceptor's connection before it knows its peer.
  if (sendCopy(c, buf, sizeof buf) != 0) return fail(c, reason(FailReason::CLOSED)), false;
  return true;
}

// With an auth key: the other side's AUTH. The acceptor checks the initiator's proof, binds c to the member,
// sends its keys (rma, data lane) and its closing AUTH; the initiator checks that closing AUTH. Then the
// lane is up.
void LfFabric::onAuth(LfConn* c, const uint8_t* mac) {
  const auth::Direction from = c->role == Role::ACCEPTOR ? auth::Direction::INITIATOR : auth::Direction::ACCEPTOR;
  if (!auth::verify(opt_.key, from, transcript(c), mac)) return fail(c, reason(FailReason::AUTH_FAILED));
  if (c->role == Role::INITIATOR) {
    LfPeer* p = c->peer;
    {
      std::lock_guard<std::mutex> lock(p->state_mu);
      if (p->state.load() != PeerState::HANDSHAKING) return;  // disconnected locally; its command follows
      adoptRegions(c, p);
    }
    return laneUp(c);
  }
  acceptLane(c, by_id_[c->hello.member].load(std::memory_order_acquire), c->lane);
}

// The acceptor binds c to member p as its `lane` (once the HELLO checked, and with a key once the
// initiator's proof did), unless p already has that lane or was dialled by us (DUPLICATE_PEER); then it
// sends its keys (rma, data lane: before the answer, as the initiator's came before its own) and its
// answer — the HELLO, or with a key the closing AUTH — and the lane is up.
void LfFabric::acceptLane(LfConn* c, LfPeer* p, uint8_t lane) {
  int err;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    const PeerState s = p->state.load();
    const bool first = s == PeerState::EXPECTED;
    const bool second = s == PeerState::HANDSHAKING && p->accepted && !p->conn[lane];
    if (!first && !second) {
      err = 1;
    } else {
      if (first) {
        p->accepted = true;
        p->state.store(PeerState::HANDSHAKING);
      }
      c->peer = p;
      c->lane = lane;
      p->conn[lane] = c;
      adoptRegions(c, p);
      std::lock_guard<FairMutex> lane_lock(c->mu());
      p->tx[lane] = c;
      err = rma() && lane == frame::DATA ? sendGrantKeys(c, p) : 0;
      if (err == 0) err = opt_.key.present() ? sendAuth(c, auth::Direction::ACCEPTOR) : sendHello(c);
    }
  }
  if (err == 1) return fail(c, reason(FailReason::DUPLICATE_PEER));
  if (err != 0) return fail(c, reason(FailReason::CLOSED));
  laneUp(c);
}

// c's HELLOs are exchanged. Until its sibling's are too, what c receives waits in its backlog; then the peer
// is connected and both lanes' backlogs are applied (the poller drains them after PEER_CONNECTED).
void LfFabric::laneUp(LfConn* c) {
  LfPeer* p = c->peer;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED) return;  // disconnected locally; its command follows
    LfConn* sibling = p->conn[c->lane == frame::DATA ? frame::CONTROL : frame::DATA];
    if (!sibling || sibling->phase != LfPhase::WAIT_SIBLING) {
      c->phase = LfPhase::WAIT_SIBLING;
      // An initiator's sibling has deadlines of its own (connect, handshake); an acceptor's may never come.
      if (c->role == Role::INITIATOR) c->deadline_ns = UINT64_MAX;
      return;
    }
    c->phase = sibling->phase = LfPhase::OPEN;
    p->state.store(PeerState::CONNECTED, std::memory_order_release);
  }
  event(CompletionKind::PEER_CONNECTED, p->id, 0);
}

// Closes a connection for good and reports it: PEER_FAILED once the peer is known, CONNECTION_REJECTED
// before. A known peer fails as a whole: both lanes close, whichever broke.
void LfFabric::fail(LfConn* c, uint32_t why) {
  if (c->phase == LfPhase::DEAD) return;
  LfPeer* p = c->peer;
  LfConn* closed[frame::kLanes + 1] = {c};
  if (p) {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED && p->fail_reason) {
      why = p->fail_reason;
    } else {
      p->state.store(PeerState::FAILED);
      p->fail_reason = why;
    }
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      std::lock_guard<FairMutex> lane_lock(p->mu[lane]);
      p->tx[lane] = nullptr;
      LfConn* lc = p->conn[lane];
      p->conn[lane] = nullptr;
      if (!lc) continue;
      closed[lane + 1] = lc;
      lc->pending.clear();
      lc->has_pending.store(false, std::memory_order_relaxed);
      closeEp(lc);  // under the lane's mu: no writer can be posting to it
    }
  }
  for (LfConn* lc : closed) {
    if (!lc || lc->phase == LfPhase::DEAD) continue;
    if (lc == c && !p) closeEp(lc);
    if (lc == c && p && lc->ep) closeEp(lc);  // c was not (yet) one of p's lanes
    lc->holding = false;
    lc->backlog.clear();
    lc->phase = LfPhase::DEAD;
  }
  any_dead_ = true;
  if (!p) {
    event(CompletionKind::CONNECTION_REJECTED, kUnknownPeer, why);
  } else if (!p->failure_reported) {
    p->failure_reported = true;
    event(CompletionKind::PEER_FAILED, p->id, why);
  }
}

void LfFabric::failPeerWithoutConn(LfPeer* p, uint32_t why) {
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (p->state.load() == PeerState::FAILED && p->fail_reason) why = p->fail_reason;
    p->state.store(PeerState::FAILED);
    p->fail_reason = why;
  }
  if (p->failure_reported) return;
  p->failure_reported = true;
  event(CompletionKind::PEER_FAILED, p->id, why);
}

void LfFabric::event(CompletionKind kind, uint16_t peer, uint32_t why) {
  rings_.pushEvent(Completion{uint16_t(kind), peer, why, 0, 0, monotonicNs()});
  dirty_ |= 1u;
}

}  // namespace

std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options, Stats& stats, const ArrivalSlot& arrival) {
  return std::make_unique<LfFabric>(arena, options, stats, arrival);
}

}  // namespace squall
