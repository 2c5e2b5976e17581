// The libfabric backend of the native fabric (backend.h; issue #6, docs/rdma.md). Built only when pkg-config
// finds libfabric (binding.gyp defines SQUALL_WITH_LIBFABRIC); libfabric itself is opened at first use
// (lf_loader.h).
//
// Same semantics as the tcp backend, under the same receiver rules (rules.h, receiver.h), in one of three
// modes, chosen when the fabric starts from the provider's name and what the provider offers (Mode):
// - rma: connected endpoints (FI_EP_MSG). Each DATA grant is registered for remote writes on its own and
//   its key sent to the peer before the HELLO. Every write into a keyed region goes one-sided into the
//   peer's arena, whatever its size: as fi_writedata whose 64 bits of remote CQ data describe the write
//   (plain writes, and writes-with-immediate of whole 4 KiB pages), or as fi_write followed by a header-only
//   PLACED_IMM note (lf_wire.h). Writes into CONTROL grants stay messages. The provider must order writes and
//   sends on an endpoint (FI_ORDER_WAW/SAW/WAS/SAS), so the receiver's completion or note comes after the bytes.
// - msg: connected endpoints, every write a message (the tcp backend's frames, fi_send / fi_recv from
//   registered slots), applied by the receiver's poller: grants are checked before a byte is written.
// - rdm: reliable-datagram endpoints (FI_EP_RDM; providers without connected ones, e.g. shm), every write a
//   message. One endpoint per lane per fabric; each peer's endpoint name is learnt over a TCP side channel on
//   the listening port, whose end tells of the peer's end as FI_SHUTDOWN does for connected endpoints.
//
// Lanes (frame.h, Lane): every peer is two LfConns, a control lane and a data lane, each with its own
// endpoint (connected modes: its own FI_EP_MSG endpoint, CQ, slots and send queue; RDM: the fabric's control
// or data RDM endpoint, with its own CQ, address vector and receive pool, and its own side channel), its own
// mutex at the sender (LfPeer::mu[lane]), and the same receiver rules. The poller reads the control lanes'
// completion queues first and again after each busy data queue. A peer is CONNECTED once both lanes' HELLOs
// are exchanged; a lane whose HELLOs are done waits for its sibling, what it receives held in its backlog
// (Phase::WAIT_SIBLING). Either lane failing fails the peer, both lanes, once.
//
// In every mode: control ranges are sent from an 8-byte-atomic snapshot and applied with 8-byte atomic
// stores when they travel as messages; one peer's frames are applied in the order sent (FI_ORDER_SAS); a
// write-with-immediate whose completion ring is full holds that peer's later frames back.
//
// Threads: as in the tcp backend. JS threads post sends (under the lane's mutex; the domain is
// FI_THREAD_SAFE); the poller thread reads the event and completion queues and the side channels, applies
// frames, produces completions, rings the doorbells and keeps the timers.
//
// The class's methods live by idea:
//   lf_fabric.cc     the API side: listen, connect, writes, disconnect, commands to the poller
//   lf_domain.cc     set-up: the provider's mode, the domain, endpoints, CQs, registered slots; stop()
//   lf_send.cc       the send side: frames, batches, one-sided writes, the send queue, handshake frames
//   lf_poller.cc     the poller: its loop, commands, timers, the event queue, the connections' CQs
//   lf_rdm.cc        RDM mode: the lanes' CQs and receive pools, and the side channel of endpoint names
//   lf_receive.cc    receive and apply: messages and remote writes under the receiver rules, held completions
//   lf_handshake.cc  a lane's handshake (HELLO, AUTH, GRANT_KEYs before them), a peer's lanes up, failure
// Connection states, fail reasons and completions are the tcp backend's; comments say only where libfabric
// makes things different.

#pragma once
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend.h"
#include "libfabric/lf_conn.h"
#include "libfabric/lf_wire.h"
#include "rules.h"

namespace squall::lf {

using map::FailReason;
using rules::reason;

constexpr uint64_t kMs = 1000000;

class LfFabric final : public Backend {
 public:
  LfFabric(ArenaView arena, const FabricOptions& options) : Backend(arena, options), prov_(options.provider) {}
  ~LfFabric() override { close(); }

  int start() override;
  int listen(const char* host, int port) override;
  int connect(uint32_t peer, const char* host, int port) override;
  int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) override;
  int writeAll(uint64_t offset, uint64_t length, uint8_t lane) override;
  int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) override;
  int disconnect(uint32_t peer) override;
  // The poller ends the lane's endpoint (or its RDM side channel).
  int breakLane(uint32_t peer, uint8_t lane) override;
  const char* mode() const override { return mode_ == Mode::RMA ? "rma" : mode_ == Mode::RDM ? "rdm" : "msg"; }

 protected:
  void stop() override;
  PeerCore* peerCore(uint32_t id, bool create) override { return peers_.get(id, create); }
  uint32_t peerCount() const override { return peers_.size(); }
  PeerCore* peerAt(uint32_t i) override { return peers_.at(i); }
  void sendSide(PeerCore* p, ConnectionInfo* c) override;

 private:
  struct Command {
    enum Kind : uint8_t { CONNECT, DISCONNECT, FAIL, BREAK } kind;
    uint16_t peer;
    fi_info* dest;  // connected endpoints: where to connect
    sockaddr_storage addr;  // RDM: the side channel's address
    socklen_t addr_len;
    uint32_t arg = 0;  // FAIL: the FailReason; BREAK: the lane
  };

  // lf_fabric.cc
  void post(const Command& c);
  void kick();
  int watch(int fd, uint32_t events, int op = EPOLL_CTL_ADD);

  // lf_domain.cc
  fi_info* hintsFor(Mode m) const;
  int offers(const fi_info* hints, Mode m) const;
  int ensureDomain(fi_info* info);
  int ensureRdm();
  int openRdm(fi_info* info, uint8_t lane);
  int openCq(fid_cq** cq, int* fd);
  bool initSlots(LfConn* c);
  void resetSlots(LfConn* c);
  bool openEp(LfConn* c, fi_info* info);
  void closeEp(LfConn* c);
  void releaseConn(LfConn* c);
  uint64_t nextKey() { return next_key_++ & key_mask_; }

  // lf_send.cc
  int sendable(const LfPeer* p, uint8_t lane) const;
  const RemoteRegion* regionOf(const LfPeer* p, uint64_t offset, uint64_t length) const;
  int sendWrite(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int sendWriteLocked(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int sendFrame(LfConn* c, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm, bool payload = true);
  int sendOneSided(LfPeer* p, uint8_t lane, const RemoteRegion& region, uint64_t offset, uint64_t length,
                   bool with_imm, uint32_t imm);
  int postRma(LfConn* c, PendingFrame& op);
  int failFromWriter(LfPeer* p, map::FailReason why);
  int sendCopy(LfConn* c, const uint8_t* bytes, uint32_t total);
  // Bytes posted on c: the fabric's count and its peer's (none yet for an acceptor's lane before the HELLO).
  void countOut(LfConn* c, uint64_t bytes) {
    Stats::add(stats_.bytes_out, bytes);
    if (c->peer) Stats::add(c->peer->bytes_out, bytes);
  }
  int sendGrantKeys(LfConn* c, LfPeer* p);
  int sendHello(LfConn* c);
  auth::Transcript transcript(const LfConn* c) const;
  int sendAuth(LfConn* c, auth::Direction who);
  int flushPending(LfConn* c);

  // lf_poller.cc (poller thread, as everything below)
  void run();
  void flushConns();
  void sweep();
  int pollTimeoutMs(uint64_t now) const;
  void runCommands();
  LfConn* newInitiator(LfPeer* p, uint8_t lane, const Command& cmd, fi_info* dest, uint64_t now);
  void startConnect(LfConn* c, uint64_t now);
  void retryLater(LfConn* c, uint64_t now);
  void onTimers(uint64_t now);
  int pollEq();
  int pollCq();
  int pollControl();
  int pollConnCq(LfConn* c, int max_batches = INT32_MAX);
  void onSent(LfConn* c, Slot* s);
  void onRmaDone(LfConn* c, Slot* s);

  // lf_rdm.cc
  int pollRdmCq(uint8_t lane, int max_batches = INT32_MAX);
  void repostPool(Slot* s);
  bool connectSide(LfConn* c);
  void onSideAccept();
  void attachSide(LfConn* c, int fd, uint32_t events);
  bool sendName(LfConn* c);
  bool takeName(LfConn* c);  // false: failed
  void onSide(LfConn* c, uint32_t events);
  void closeSide(LfConn* c);

  // lf_receive.cc
  void onRecv(LfConn* c, Slot* s, uint32_t len);
  void onRemoteWrite(LfConn* c, Slot* s, uint64_t data);
  bool applyRemoteWrite(LfConn* c, uint64_t data);  // false: failed, or holding
  void repost(LfConn* c, Slot* s);
  void drainBacklog(LfConn* c);
  bool applyMessage(LfConn* c, const uint8_t* at, uint32_t len);  // false: failed, or holding
  bool applyFrame(LfConn* c, const uint8_t* at, uint32_t len);    // false: failed, or holding
  bool applyRange(LfConn* c, uint8_t type, const frame::Header& h, const uint8_t* payload);
  bool onGrantKey(LfConn* c, const uint8_t* at, uint32_t len);
  void adoptRegions(LfConn* c, LfPeer* p);

  // lf_handshake.cc
  void onConnReq(fi_info* info);
  void onConnected(LfConn* c);
  void onHello(LfConn* c, const frame::Hello& h);
  bool keyedHelloAccepted(LfConn* c, LfPeer* p, const frame::Hello& h);
  void onAuth(LfConn* c, const uint8_t* mac);
  void acceptLane(LfConn* c, LfPeer* p, uint8_t lane);
  void laneUp(LfConn* c);
  void fail(LfConn* c, uint32_t why);

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

  std::string prov_;   // the provider's name, without a "+rma" / "+msg" suffix
  Mode mode_ = Mode::MSG;  // set once, in start()
  bool rma() const { return mode_ == Mode::RMA; }
  bool rdm() const { return mode_ == Mode::RDM; }
  bool data_ = false;  // RMA mode with 8 bytes of remote CQ data (ensureDomain): fi_writedata, see describe*()

  PeerTable<LfPeer> peers_;

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

  std::thread poller_;
  std::atomic<bool> stop_{false};
};

}  // namespace squall::lf
