// What the libfabric backend's poller does with what arrives on a lane (lf_fabric.h): messages and remote writes
// go through the receiver rules both backends share (rules.h, receiver.h), in order, behind a held completion.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_endpoint.h>

#include <cstring>
#include <utility>

namespace squall::lf {

void LfFabric::onRecv(LfConn* c, Slot* s, uint32_t len) {
  Stats::bump(stats_.bytes_in, len);
  if (c->peer) Stats::bump(c->peer->bytes_in, len);
  if (c->held.holding || !c->backlog.empty() || c->phase == Phase::WAIT_SIBLING) {
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
  if (c->held.holding || !c->backlog.empty() || c->phase == Phase::WAIT_SIBLING) {
    c->backlog.push_back(Arrival{s, 0, true, data, {}});
    return;
  }
  applyRemoteWrite(c, data);
  if (s) repost(c, s);
}

bool LfFabric::applyRemoteWrite(LfConn* c, uint64_t data) {
  if (c->phase != Phase::OPEN) return fail(c, reason(FailReason::BAD_TYPE)), false;  // before the handshake
  const Placed w = placedFrom(data);
  Stats::bump(stats_.bytes_in, w.length);
  Stats::bump(c->peer->bytes_in, w.length);  // OPEN: the peer is known
  frame::Header h{};
  h.offset = w.offset;
  h.length = uint32_t(w.length);
  h.imm = w.imm;
  return applyRange(c, w.with_imm ? kFramePlacedImm : kFramePlaced, h, nullptr);
}

void LfFabric::repost(LfConn* c, Slot* s) {
  if (s->pooled) return repostPool(s);
  if (c->phase == Phase::DEAD) return;
  s->gen = c->gen;
  if (fi_recv(c->ep, s->buf, kSlotBytes, c->desc, 0, &s->ctx) != 0) fail(c, reason(FailReason::IO_ERROR));
}

void LfFabric::drainBacklog(LfConn* c) {
  if (!rx_.retry(c->held)) return;
  while (!c->backlog.empty() && !c->held.holding && c->phase != Phase::DEAD) {
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

// A frame that arrived whole, under the receiver rules both backends share (rules.h), and this backend's own
// frames: GRANT_KEYs come before the HELLO (with a key: after the other side's proof; and later, for grants
// made later), and PLACED notes are writes.
bool LfFabric::applyFrame(LfConn* c, const uint8_t* at, uint32_t len) {
  if (len < 4) return fail(c, reason(FailReason::TRUNCATED)), false;
  if (uint32_t bad = rules::checkStart(at, len)) return fail(c, bad), false;
  const uint8_t type = at[3];
  const bool key = rma() && type == kFrameGrantKey;
  const bool placed = rma() && (type == kFramePlaced || type == kFramePlacedImm);
  if (!key && !rules::typeAllowed(c->phase, type, placed)) return fail(c, reason(FailReason::BAD_TYPE)), false;
  if (len < frame::kHeaderBytes) return fail(c, reason(FailReason::TRUNCATED)), false;
  const frame::Header h = frame::decode(at);
  if (type == frame::HELLO || type == frame::AUTH) {
    uint32_t bad = rules::checkHandshakeHeader(h);
    if (!bad && len != frame::kHeaderBytes + h.length) bad = reason(FailReason::BAD_TYPE);
    frame::Hello hello;
    if (!bad && type == frame::HELLO) bad = rules::decodeHello(h, at + frame::kHeaderBytes, &hello);
    if (bad) return fail(c, bad), false;
    if (type == frame::HELLO) onHello(c, hello);
    else onAuth(c, at + frame::kHeaderBytes);
    return c->phase != Phase::DEAD;
  }
  if (key) return onGrantKey(c, at, len);
  if (!placed) {
    if (uint32_t bad = rules::checkLength(h.length, opt_.max_frame_bytes)) return fail(c, bad), false;
  }
  if (len != frame::kHeaderBytes + (placed ? 0 : uint64_t(h.length))) {
    return fail(c, reason(FailReason::TRUNCATED)), false;
  }
  return applyRange(c, type, h, placed ? nullptr : at + frame::kHeaderBytes);
}

// A write the connection's peer made: a WRITE / WRITE_IMM frame (payload: its bytes), or a one-sided write
// already placed (payload null: a PLACED note, or an fi_writedata's completion). For the latter the grant
// is checked after the fact: a peer writing outside its grants is failed (OUT_OF_GRANT), but unlike the
// message path it could not be stopped before the bytes landed.
bool LfFabric::applyRange(LfConn* c, uint8_t type, const frame::Header& h, const uint8_t* payload) {
  const Grant* g;
  if (uint32_t bad = rules::checkWrite(c->grants, *c->peer, arena_, h.offset, h.length, &g)) return fail(c, bad), false;
  if (payload) rx_.store(*g, h.offset, payload, h.length);
  // A split write's chunks are adjacent on the connection (the sender holds the lane's mutex for all of
  // them), so a run is contiguous; anything else ends it.
  const bool continues_run = c->run_end != 0 && h.offset == c->run_end;
  if (type != frame::WRITE_IMM && type != kFramePlacedImm) {
    if (type == frame::WRITE && h.imm == kContinued) {
      if (!continues_run) c->run_offset = h.offset;
      c->run_end = h.offset + h.length;
    } else {
      c->run_end = 0;
    }
    return rx_.landed(*g, c->peer->id, false, 0, h.offset, h.length, c->held);
  }
  const uint64_t whole_offset = continues_run ? c->run_offset : h.offset;
  c->run_end = 0;
  // Held: later frames of this peer wait behind it (backlog), their buffers not reposted.
  return rx_.landed(*g, c->peer->id, true, h.imm, whole_offset, h.offset + h.length - whole_offset, c->held);
}

// A GRANT_KEY frame (OPEN phase): from now on writes into that region of the peer's arena may go one-sided.
bool LfFabric::onGrantKey(LfConn* c, const uint8_t* at, uint32_t len) {
  frame::Header h = frame::decode(at);
  if (h.length != kGrantKeyBytes || len != frame::kHeaderBytes + kGrantKeyBytes) {
    return fail(c, reason(FailReason::BAD_TYPE)), false;
  }
  RemoteRegion r;
  std::memcpy(&r, at + frame::kHeaderBytes, sizeof r);
  if (r.length == 0) return fail(c, reason(FailReason::BAD_TYPE)), false;
  if (c->phase == Phase::HELLO || c->phase == Phase::AUTH) {  // before the handshake's end: adopted with it
    // With an auth key keys come only after the other side's proof: the initiator's after the acceptor's
    // HELLO (the acceptor is in AUTH), the acceptor's after the initiator's AUTH (the initiator is in AUTH).
    if (opt_.key.present() && c->phase != Phase::AUTH) return fail(c, reason(FailReason::BAD_TYPE)), false;
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

}  // namespace squall::lf
