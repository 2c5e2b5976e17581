// What every backend knows of a peer and of each of its lanes, and the table of peers by id. A backend's peer
// (tcp/peer.h Peer, libfabric/lf_conn.h LfPeer) extends PeerCore with how it sends; the state changes every
// backend makes the same way are PeerCore's methods, so the backends cannot drift apart on them.
//
// Peers are created by the first grant() or connect() and live until the fabric is closed; a failed peer
// stays failed (no reconnects: the membership layer decides what next). A peer is CONNECTED once both lanes
// (frame.h: Lane) finished their handshake, and fails as a whole when either lane breaks or misbehaves (one
// PEER_FAILED, receiver.h).
//
// Locks. `state_mu` serialises the peer's state changes (connect, handshake, disconnect, fail); a backend's
// lane mutexes come after it, never before.

#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "generated/memory_map.h"
#include "generated/status.h"
#include "grants.h"

namespace squall {

// Member ids are u16 on the wire; 0xffff means "not known yet" (rings.h: kUnknownPeer).
constexpr uint32_t kPeerIds = 0x10000;

enum class Role : uint8_t { INITIATOR, ACCEPTOR };

// Where one lane's connection stands, on every backend.
enum class Phase : uint8_t {
  RETRY_WAIT,  // initiator: the last attempt was refused; next one at its deadline
  CONNECTING,  // initiator: the connect is in flight
  HELLO,       // open, waiting for the other side's HELLO (until the handshake deadline)
  AUTH,        // with an auth key: HELLOs exchanged, waiting for the other side's AUTH (auth.h); an acceptor's
               // connection is bound to no member yet
  WAIT_SIBLING,  // this lane's HELLOs are exchanged, the peer's other lane's are not: what the peer sends waits
                 // (tcp: unread in the kernel; libfabric: in the lane's backlog) until both lanes are up, so the
                 // peer's first write is applied after PEER_CONNECTED; acceptor: until the handshake deadline
  OPEN,        // handshake done on both lanes, frames flow
  DEAD,        // closed; freed at the end of the poller's pass
};

enum class PeerState : uint8_t {
  EXPECTED,     // granted or known, no connection yet
  CONNECTING,   // we are connecting (retrying refused attempts)
  HANDSHAKING,  // a lane's connection is open, the HELLOs of both lanes not yet exchanged
  CONNECTED,    // both lanes are up: writes flow
  FAILED,       // for good; fail_reason says why
};

struct PeerCore {
  explicit PeerCore(uint16_t id_) : id(id_) {}

  const uint16_t id;
  GrantTable grants;  // what the peer may write here

  std::mutex state_mu;
  std::atomic<PeerState> state{PeerState::EXPECTED};  // written under state_mu; read without it for quick checks
  uint32_t fail_reason = 0;                            // under state_mu
  bool accepted = false;  // under state_mu: the peer dialled us (its lanes arrive as HELLOs), not we it
  bool failure_reported = false;  // poller thread only: PEER_FAILED is queued once per peer
  // Bytes received from this peer, headers included (Stats::bytes_in split by peer; connections()). The poller
  // only (Stats::bump); relaxed. What went out is counted by each backend's sending side (Backend::sendSide).
  std::atomic<uint64_t> bytes_in{0};

  // connect(): EXPECTED becomes CONNECTING. FAILED if the peer failed, ALREADY if it is connecting or
  // connected (or dialled us). Takes state_mu.
  int beginConnect() {
    std::lock_guard<std::mutex> lock(state_mu);
    const PeerState s = state.load();
    if (s == PeerState::FAILED) return FAILED;
    if (s != PeerState::EXPECTED) return ALREADY;
    state.store(PeerState::CONNECTING);
    return OK;
  }

  // Under state_mu: an initiator's lane is connected and sends its HELLO; the peer is HANDSHAKING. False when
  // the peer is neither connecting nor shaking hands any more (disconnected locally: its command follows).
  bool beginHandshakeLocked() {
    const PeerState s = state.load();
    if (s != PeerState::CONNECTING && s != PeerState::HANDSHAKING) return false;  // the sibling lane may be first
    state.store(PeerState::HANDSHAKING);
    return true;
  }

  // Under state_mu: the peer fails for `why`, unless it failed already with a reason, which it keeps (a peer
  // disconnected locally stays LOCAL_CLOSE whatever breaks next). Returns the reason it failed with.
  uint32_t failLocked(uint32_t why) {
    if (state.load() == PeerState::FAILED && fail_reason) why = fail_reason;
    state.store(PeerState::FAILED);
    fail_reason = why;
    return why;
  }

  // Under state_mu: disconnect() or close() ends the peer (LOCAL_CLOSE); false if it had failed already.
  bool closeLocallyLocked() {
    if (state.load() == PeerState::FAILED) return false;
    state.store(PeerState::FAILED);
    fail_reason = uint32_t(map::FailReason::LOCAL_CLOSE);
    return true;
  }

  // Under state_mu: whether an acceptor may bind one of the peer's lanes. Only while the peer is neither
  // connected, failed nor dialled by us — its first lane, or its second while the first is shaking hands —
  // and only a lane it has not brought yet (`lane_taken`).
  bool laneFree(bool lane_taken) const {
    const PeerState s = state.load();
    return s == PeerState::EXPECTED || (s == PeerState::HANDSHAKING && accepted && !lane_taken);
  }
};

// The deadlines of lanes' connections (C: a backend's connection, with `phase` and `deadline_ns`), the same on
// every backend: a refused initiator retries at its deadline (retry(c)); one still connecting at its deadline
// fails with CONNECT_TIMEOUT, and one whose handshake did not end in time with HANDSHAKE_TIMEOUT (an acceptor's
// lane whose sibling never came: an initiator's WAIT_SIBLING has no deadline). fail(c, reason). Returns the
// next deadline of all.
template <typename C, typename Retry, typename Fail>
uint64_t runDeadlines(const std::vector<std::unique_ptr<C>>& conns, uint64_t now, Retry retry, Fail fail) {
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < conns.size(); i++) {
    C* c = conns[i].get();
    const bool due = c->deadline_ns <= now;
    switch (c->phase) {
      case Phase::RETRY_WAIT:
        if (due) retry(c);
        break;
      case Phase::CONNECTING:
        if (due) fail(c, uint32_t(map::FailReason::CONNECT_TIMEOUT));
        break;
      case Phase::HELLO:
      case Phase::AUTH:
      case Phase::WAIT_SIBLING:
        if (due) fail(c, uint32_t(map::FailReason::HANDSHAKE_TIMEOUT));
        break;
      default:
        break;
    }
    const Phase p = c->phase;
    const bool timed = p == Phase::RETRY_WAIT || p == Phase::CONNECTING || p == Phase::HELLO || p == Phase::AUTH ||
                       p == Phase::WAIT_SIBLING;
    if (timed) next = next < c->deadline_ns ? next : c->deadline_ns;
  }
  return next;
}

// A backend's peers by id (lock-free lookup for writers and the poller) and in creation order (writeAll,
// close). P is the backend's peer, a PeerCore.
template <typename P>
class PeerTable {
 public:
  PeerTable() : by_id_(new std::atomic<P*>[kPeerIds]), in_order_(new P*[map::MAX_MEMBERS]) {
    for (uint32_t i = 0; i < kPeerIds; i++) by_id_[i].store(nullptr, std::memory_order_relaxed);
  }

  // The peer with that id; with `create`, made if new. nullptr for an id no peer can have (0xffff and up),
  // and when a new one would make more than MAX_MEMBERS.
  P* get(uint32_t id, bool create = false) {
    if (id >= kPeerIds - 1) return nullptr;
    P* p = by_id_[id].load(std::memory_order_acquire);
    if (p || !create) return p;
    std::lock_guard<std::mutex> lock(mu_);
    p = by_id_[id].load(std::memory_order_relaxed);
    if (p) return p;
    const uint32_t n = count_.load(std::memory_order_relaxed);
    if (n >= map::MAX_MEMBERS) return nullptr;
    owned_.push_back(std::make_unique<P>(uint16_t(id)));
    p = owned_.back().get();
    in_order_[n] = p;
    count_.store(n + 1, std::memory_order_release);
    by_id_[id].store(p, std::memory_order_release);
    return p;
  }

  uint32_t size() const { return count_.load(std::memory_order_acquire); }
  P* at(uint32_t i) const { return in_order_[i]; }  // i < size()

 private:
  std::mutex mu_;
  std::unique_ptr<std::atomic<P*>[]> by_id_;
  std::unique_ptr<P*[]> in_order_;
  std::atomic<uint32_t> count_{0};
  std::vector<std::unique_ptr<P>> owned_;
};

}  // namespace squall
