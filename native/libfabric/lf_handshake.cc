// A lane's handshake on the libfabric backend (lf_fabric.h): accepting and connecting endpoints, the HELLOs
// and AUTHs under the rules both backends share (rules.h), GRANT_KEYs before them, a peer's lanes up, and a
// failure closing both lanes.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_cm.h>

#include <algorithm>
#include <cerrno>

namespace squall::lf {

void LfFabric::onConnReq(fi_info* info) {
  if (!info) return;
  conns_.push_back(std::make_unique<LfConn>(Role::ACCEPTOR, Phase::HELLO));
  LfConn* c = conns_.back().get();
  c->deadline_ns = monotonicNs() + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  if (!openEp(c, info) || check(fi_accept(c->ep, nullptr, 0), "fi_accept") != 0) {
    if (!c->ep) fi_reject(pep_, info->handle, nullptr, 0);
    closeEp(c);
    c->phase = Phase::DEAD;
    any_dead_ = true;
  }
  lf::api().freeinfo(info);
}

void LfFabric::onConnected(LfConn* c) {
  if (c->role == Role::ACCEPTOR || c->phase != Phase::CONNECTING) return;  // the acceptor waits for a HELLO
  LfPeer* p = c->peer;
  uint64_t now = monotonicNs();
  c->phase = Phase::HELLO;
  c->deadline_ns = now + uint64_t(opt_.handshake_timeout_ms) * kMs;
  next_deadline_ns_ = std::min(next_deadline_ns_, c->deadline_ns);
  int sent;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->beginHandshakeLocked()) {
      sent = 1;
    } else {
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

void LfFabric::onHello(LfConn* c, const frame::Hello& h) {
  if (uint32_t bad = rules::checkHello(h, opt_.key.present())) return fail(c, bad);
  const uint32_t tag = layout_tag_.load(std::memory_order_relaxed);
  if (c->role == Role::ACCEPTOR) {
    LfPeer* p = peers_.get(h.member);
    if (uint32_t bad = rules::checkCaller(p, h, tag)) return fail(c, bad);
    if (rdm() && h.lane != c->lane) return fail(c, reason(FailReason::BAD_LANE));  // its name record named the lane
    if (opt_.key.present()) {
      if (keyedHelloAccepted(c, p, h)) c->phase = Phase::AUTH;
      return;
    }
    return acceptLane(c, p, h.lane);
  }
  LfPeer* p = c->peer;
  if (uint32_t bad = rules::checkAnswer(*p, c->lane, h, tag)) return fail(c, bad);
  if (opt_.key.present()) {
    // The acceptor's proof first; then our keys (rma, data lane) and our proof; the lane opens at the
    // acceptor's closing AUTH, which follows its own keys (onAuth).
    c->hello = h;
    if (!auth::verify(opt_.key, auth::Direction::ACCEPTOR, transcript(c), h.mac)) {
      return fail(c, reason(FailReason::AUTH_FAILED));
    }
    int err;
    {
      std::lock_guard<std::mutex> lock(p->state_mu);
      if (p->state.load() != PeerState::HANDSHAKING) return;  // disconnected locally; its command follows
      std::lock_guard<FairMutex> lane_lock(c->mu());
      err = rma() && c->lane == frame::DATA ? sendGrantKeys(c, p) : 0;
      if (err == 0) err = sendAuth(c, auth::Direction::INITIATOR);
    }
    if (err != 0) return fail(c, reason(FailReason::CLOSED));
    c->phase = Phase::AUTH;
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
  if (uint32_t bad = rules::checkUnproven(h)) return fail(c, bad), false;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);  // refused early if the lane cannot be had (onAuth checks again)
    if (!p->laneFree(p->conn[h.lane] != nullptr)) return fail(c, reason(FailReason::DUPLICATE_PEER)), false;
  }
  c->lane = h.lane;
  c->hello = h;
  uint8_t buf[frame::kHeaderBytes + frame::kHelloAuthBytes];
  if (uint32_t bad = rules::answerWithProof(opt_.key, opt_.member_id, h, c->nonce, buf)) return fail(c, bad), false;
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
  acceptLane(c, peers_.get(c->hello.member), c->lane);
}

// The acceptor binds c to member p as its `lane` (once the HELLO checked, and with a key once the
// initiator's proof did), unless p already has that lane or was dialled by us (DUPLICATE_PEER); then it
// sends its keys (rma, data lane: before the answer, as the initiator's came before its own) and its
// answer — the HELLO, or with a key the closing AUTH — and the lane is up.
void LfFabric::acceptLane(LfConn* c, LfPeer* p, uint8_t lane) {
  int err;
  {
    std::lock_guard<std::mutex> lock(p->state_mu);
    if (!p->laneFree(p->conn[lane] != nullptr)) {
      err = 1;
    } else {
      if (p->state.load() == PeerState::EXPECTED) {
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
    if (!sibling || sibling->phase != Phase::WAIT_SIBLING) {
      c->phase = Phase::WAIT_SIBLING;
      // An initiator's sibling has deadlines of its own (connect, handshake); an acceptor's may never come.
      if (c->role == Role::INITIATOR) c->deadline_ns = UINT64_MAX;
      return;
    }
    c->phase = sibling->phase = Phase::OPEN;
    p->state.store(PeerState::CONNECTED, std::memory_order_release);
  }
  rx_.connected(*p);
}

// Closes a connection for good and reports it (receiver.h): PEER_FAILED once the peer is known,
// CONNECTION_REJECTED before. A known peer fails as a whole: both lanes close, whichever broke.
void LfFabric::fail(LfConn* c, uint32_t why) {
  if (c->phase == Phase::DEAD) return;
  LfPeer* p = c->peer;
  LfConn* closed[frame::kLanes + 1] = {c};
  if (p) {
    std::lock_guard<std::mutex> lock(p->state_mu);
    why = p->failLocked(why);
    for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
      std::lock_guard<FairMutex> lane_lock(p->mu[lane]);
      p->tx[lane] = nullptr;
      LfConn* lc = p->conn[lane];
      p->conn[lane] = nullptr;
      if (!lc) continue;
      closed[lane + 1] = lc;
      lc->clearPending();
      closeEp(lc);  // under the lane's mu: no writer can be posting to it
    }
  }
  for (LfConn* lc : closed) {
    if (!lc || lc->phase == Phase::DEAD) continue;
    if (lc == c && !p) closeEp(lc);
    if (lc == c && p && lc->ep) closeEp(lc);  // c was not (yet) one of p's lanes
    lc->held.holding = false;
    lc->backlog.clear();
    lc->phase = Phase::DEAD;
  }
  any_dead_ = true;
  if (!p) rx_.rejected(why);
  else rx_.failed(*p, why);
}

}  // namespace squall::lf
