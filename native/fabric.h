// The TCP fabric (DESIGN.md §2): one per member, attached to its arena, with one poller thread.
//
// Threads:
// - JS threads (the main thread and workers) call the public methods. Writes go out from the calling
//   thread (peer.cc); everything else that needs the poller (connect, disconnect) is posted as a command
//   and the poller is woken through an eventfd.
// - The poller thread (poller.cc) owns the sockets' receiving halves, the listener, connection setup,
//   timers, the producer side of the completion rings, and the doorbell. It never calls into JS.
//
// Lanes: every peer is reached over two connections (frame.h: Lane), the data lane and the control lane;
// each write names its lane. The poller keeps the control lanes' sockets in an epoll set of their own and
// serves it before every data socket (and again after each one), so a control write is applied, and its
// doorbell rung, without waiting for the data lanes' megabytes.
//
// Status codes returned to JS are listed in Status (generated/status.h, made by scripts/memory-map.mjs); the TS
// wrapper (ts/fabric/native.ts) turns them into coded errors or WriteStatus values.

#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "arena.h"
#include "arrival.h"
#include "auth.h"
#include "connection.h"
#include "doorbell.h"
#include "generated/status.h"
#include "peer.h"
#include "rings.h"
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

// Another backend behind the same public methods (native/libfabric/). When a Fabric has one, every public
// method goes to it and the TCP machinery below stays unused; the TCP code itself is unchanged.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual int start() = 0;
  virtual int listen(const char* host, int port) = 0;
  virtual int grant(uint32_t peer, const Grant& g) = 0;
  virtual int connect(uint32_t peer, const char* host, int port) = 0;
  virtual int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) = 0;
  virtual int writeAll(uint64_t offset, uint64_t length, uint8_t lane) = 0;
  virtual int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) = 0;  // ranges and lane checked
  virtual int disconnect(uint32_t peer) = 0;
  virtual int breakLane(uint32_t peer, uint8_t lane) = 0;  // for tests, see Fabric::breakLane
  virtual void close() = 0;
  virtual void setLayoutTag(uint32_t tag) = 0;
  virtual int lastErrno() const = 0;
  virtual const char* mode() const = 0;  // how writes travel: "rma", "msg" or "rdm" (lf_fabric.cc, Mode)
};

// The libfabric backend (native/libfabric/lf_fabric.cc), or nullptr when the addon was built without it.
std::unique_ptr<Backend> makeLibfabricBackend(ArenaView arena, const FabricOptions& options, Stats& stats, const ArrivalSlot& arrival);
constexpr bool kHaveLibfabric =
#ifdef SQUALL_WITH_LIBFABRIC
    true;
#else
    false;
#endif

class Fabric {
 public:
  Fabric(ArenaView arena, FabricOptions options);
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  int start();  // creates the epoll set and starts the poller
  int listen(const char* host, int port);
  int grant(uint32_t peer, const Grant& g);
  int connect(uint32_t peer, const char* host, int port);
  // `lane` is frame::DATA or frame::CONTROL (checked by api.cc); writes on one lane are applied in order.
  int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane);
  int writeAll(uint64_t offset, uint64_t length, uint8_t lane);
  // Writes `count` ranges (offset, length pairs) to one peer in order on one lane, as one send where the
  // socket takes it: a protocol step's slots and counters leave in one sendmsg instead of one each.
  int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane);
  int disconnect(uint32_t peer);
  // For tests: breaks one lane of a connected peer as a network fault would (its socket is shut down in
  // both directions), without telling anyone. Both ends must then fail the peer as a whole.
  int breakLane(uint32_t peer, uint8_t lane);
  int64_t wait(uint32_t channel, uint32_t seen_epoch, int64_t timeout_ms);
  void wake(uint32_t channel);
  // Installs the hook told of every doorbell ring (arrival.h); once per fabric. OK, ALREADY or FAILED (closed).
  int setArrival(std::unique_ptr<ArrivalHook> hook);
  void close();  // idempotent; joins the poller
  // The tag HELLOs carry and must match from now on (connections already open are not affected).
  void setLayoutTag(uint32_t tag) {
    layout_tag_.store(tag, std::memory_order_relaxed);
    if (alt_) alt_->setLayoutTag(tag);
  }

  bool closed() const { return closed_.load(std::memory_order_acquire); }
  int lastErrno() const { return alt_ ? alt_->lastErrno() : last_errno_; }
  const char* mode() const { return alt_ ? alt_->mode() : "sockets"; }
  Stats& stats() { return stats_; }

 private:
  // poller.cc and handshake.cc (poller thread only)
  struct Command {
    enum Kind : uint8_t { CONNECT, DISCONNECT } kind;
    uint16_t peer;
    sockaddr_storage addr;
    socklen_t addr_len;
  };
  void post(const Command& c);
  void run();
  void runCommands();
  void onListener();
  void onEvent(Source* source, uint32_t events);
  bool serveControl();  // the control lanes' ready sockets, now; true if any
  void ringDirty();
  void onConn(Conn* c, uint32_t events);
  void receive(Conn* c);
  void onHello(Conn* c);
  void acceptHello(Conn* c);
  void acceptHelloWithKey(Conn* c);
  void onAuth(Conn* c);                  // acceptor, with a key: the initiator's MAC
  void answeredHello(Conn* c);           // initiator: the acceptor's answer
  // Acceptor: binds c to its member's lane (the member's HELLO, and with a key its MAC, checked); sends
  // `reply` (may be null) on it. Fails c with DUPLICATE_PEER if the lane is taken.
  void claimLane(Conn* c, const uint8_t* reply, uint32_t reply_bytes);
  void laneUp(Conn* c);                  // c's HELLOs are exchanged: park it, or open both lanes
  void openLanes(Peer* p, Conn* current);
  Conn* newInitiator(Peer* p, uint8_t lane, const Command& cmd, uint64_t now);
  void startConnect(Conn* c, uint64_t now);
  void finishConnect(Conn* c, uint64_t now);
  void retryLater(Conn* c, uint64_t now);
  void onTimers(uint64_t now);
  void pause(Conn* c);
  void resumePaused();
  void fail(Conn* c, uint32_t reason);
  void closeConn(Conn* c);
  void failPeerWithoutConn(Peer* p, uint32_t reason);
  void event(map::CompletionKind kind, uint16_t peer, uint32_t reason);
  void watch(Conn* c, uint32_t events, int op);
  int pollTimeoutMs(uint64_t now) const;
  void sweep();
  void shutdownAll();

  Peer* peerFor(uint32_t id, bool create);
  int sendWrite(Peer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int epollFor(uint8_t lane) const { return lane == frame::CONTROL ? control_epoll_fd_ : epoll_fd_; }

  const ArenaView arena_;
  const FabricOptions opt_;
  std::atomic<uint32_t> layout_tag_;
  Doorbell doorbell(uint32_t channel) const { return Doorbell(arena_.base, channel); }
  CompletionRings rings_;  // poller only
  Stats stats_;

  // Peers by id (lock-free lookup for writers) and in creation order (for writeAll).
  std::mutex peers_mu_;
  std::unique_ptr<std::atomic<Peer*>[]> by_id_;
  std::unique_ptr<Peer*[]> in_order_;
  std::atomic<uint32_t> peer_count_{0};
  std::vector<std::unique_ptr<Peer>> owned_;

  int epoll_fd_ = -1;
  int control_epoll_fd_ = -1;  // the control lanes' sockets; itself in epoll_fd_
  int wake_fd_ = -1;
  Source control_source_{Source::CONTROL_SET};
  std::atomic<int> listen_fd_{-1};
  Source wake_source_{Source::WAKE};
  Source listen_source_{Source::LISTENER};
  std::mutex listen_mu_;

  std::mutex commands_mu_;
  std::vector<Command> commands_;

  std::vector<std::unique_ptr<Conn>> conns_;  // poller only
  bool any_dead_ = false;
  uint32_t paused_count_ = 0;
  uint64_t next_deadline_ns_ = UINT64_MAX;
  uint32_t dirty_ = 0;  // bit per channel whose doorbell the poller rings at the end of this pass

  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
  int last_errno_ = 0;
  std::unique_ptr<Backend> alt_;  // set by start() for a non-TCP backend
  // The poller has stopped: no one can be inside the hook any more.
  void dropArrival() {
    arrival_.store(nullptr, std::memory_order_release);
    arrival_owned_.reset();
  }
  ArrivalSlot arrival_{nullptr};  // read by the poller(s); set once by setArrival, cleared by close
  std::unique_ptr<ArrivalHook> arrival_owned_;
};

}  // namespace squall
