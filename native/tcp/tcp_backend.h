// The tcp backend (backend.h): one per member, attached to its arena, with one poller thread, over kernel
// sockets (epoll, non-blocking, TCP_NODELAY).
//
// Threads:
// - JS threads (the main thread and workers) call the public methods. Writes go out from the calling
//   thread (peer.cc); everything else that needs the poller (connect, disconnect) is posted as a command
//   and the poller is woken through an eventfd.
// - The poller thread (poller.cc) owns the sockets' receiving halves, the listener, connection setup
//   (handshake.cc), timers, and the receiver (receiver.h: completions, doorbells). It never calls into JS.
//
// Lanes: every peer is reached over two connections (frame.h: Lane), the data lane and the control lane;
// each write names its lane. The poller keeps the control lanes' sockets in an epoll set of their own and
// serves it before every data socket (and again after each one), so a control write is applied, and its
// doorbell rung, without waiting for the data lanes' megabytes.

#pragma once
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backend.h"
#include "tcp/connection.h"
#include "tcp/peer.h"

namespace squall {

class TcpBackend final : public Backend {
 public:
  TcpBackend(ArenaView arena, const FabricOptions& options) : Backend(arena, options) {}
  ~TcpBackend() override { close(); }

  int start() override;  // creates the epoll sets and starts the poller
  int listen(const char* host, int port) override;
  int connect(uint32_t peer, const char* host, int port) override;
  int write(uint32_t peer, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm, uint8_t lane) override;
  int writeAll(uint64_t offset, uint64_t length, uint8_t lane) override;
  // Queues every range's frames and flushes once: one sendmsg where the socket takes them all.
  int writeBatch(uint32_t peer, const double* ranges, uint32_t count, uint8_t lane) override;
  int disconnect(uint32_t peer) override;
  // The lane's socket is shut down in both directions.
  int breakLane(uint32_t peer, uint8_t lane) override;
  const char* mode() const override { return "sockets"; }

 protected:
  void stop() override;
  PeerCore* peerCore(uint32_t id, bool create) override { return peers_.get(id, create); }
  uint32_t peerCount() const override { return peers_.size(); }
  PeerCore* peerAt(uint32_t i) override { return peers_.at(i); }
  void sendSide(PeerCore* p, ConnectionInfo* c) override;

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
  void watch(Conn* c, uint32_t events, int op);
  int pollTimeoutMs(uint64_t now) const;
  int waitEvents(epoll_event* events, uint64_t spin_until_ns);
  void sweep();
  void shutdownAll();

  int sendWrite(Peer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm);
  int epollFor(uint8_t lane) const { return lane == frame::CONTROL ? control_epoll_fd_ : epoll_fd_; }

  PeerTable<Peer> peers_;

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

  std::thread poller_;
  std::atomic<bool> stop_{false};
};

}  // namespace squall
