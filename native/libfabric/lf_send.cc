// The libfabric backend's send side (lf_fabric.h): frames from registered send slots, batches, one-sided writes
// (RMA mode, lf_wire.h), the send queue behind them, and the handshake's frames.

#include "libfabric/lf_fabric.h"

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <algorithm>
#include <cstring>

#include "copy.h"

namespace squall::lf {

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

// Under the lane's mutex, p connected.
int LfFabric::sendWriteLocked(LfPeer* p, uint8_t lane, uint64_t offset, uint64_t length, bool with_imm, uint32_t imm) {
  if (const RemoteRegion* region = regionOf(p, offset, length)) {
    return sendOneSided(p, lane, *region, offset, length, with_imm, imm);
  }
  const uint64_t max = std::min<uint64_t>(opt_.max_frame_bytes, kChunkBytes);
  uint64_t done = 0;
  do {
    uint64_t chunk = length - done < max ? length - done : max;
    bool last = done + chunk == length;
    uint8_t type = last && with_imm ? frame::WRITE_IMM : frame::WRITE;
    const uint32_t frame_imm = last ? imm : with_imm ? kContinued : 0;
    if (sendFrame(p->tx[lane], type, offset + done, uint32_t(chunk), frame_imm) != 0) return FAILED;
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
    c->enqueue(PendingFrame{std::vector<uint8_t>(total), coalescible});
    uint8_t* out = c->pending.back().bytes.data();
    frame::encode(out, type, offset, length, imm);
    if (payload) snapshot(out + frame::kHeaderBytes, src, length);
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
    c->enqueue(PendingFrame{std::vector<uint8_t>(s->buf, s->buf + total), false});
    c->free_send.push_back(s);
    kick();
    return 0;
  }
  if (r != 0) {
    c->free_send.push_back(s);
    return int(r);
  }
  countOut(c, total);
  return 0;
}

// Under the lane's mutex, p connected: a write into a region p keyed. Posted now when nothing waits before
// it in the lane's send queue, else (or when the provider or the write contexts run short) queued there
// behind what waits, and posted in turn by flushPending: never ahead of an earlier write on its lane.
int LfFabric::sendOneSided(LfPeer* p, uint8_t lane, const RemoteRegion& region, uint64_t offset, uint64_t length,
                           bool with_imm, uint32_t imm) {
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
  c->enqueue(std::move(op));
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
    const uint64_t key = op.region.key;
    const ssize_t r = self_described ? fi_writedata(c->ep, from, chunk, arena_desc_, data, 0, to, key, &s->ctx)
                                     : fi_write(c->ep, from, chunk, arena_desc_, 0, to, key, &s->ctx);
    if (r == -FI_EAGAIN) return int(r);
    if (check(int(r), "fi_write / fi_writedata") != 0) return int(r);
    c->free_rma.pop_back();
    Stats::add(stats_.send_calls);
    Stats::add(stats_.rma_writes);
    countOut(c, chunk);
    op.done += chunk;
  }
  if (self_described) return 0;
  // The note, right behind the chunks (this write stays first in the queue until it is posted).
  if (c->free_send.empty()) return -FI_EAGAIN;
  Slot* s = c->free_send.back();
  const uint8_t note = op.with_imm ? kFramePlacedImm : kFramePlaced;
  frame::encode(s->buf, note, op.offset, uint32_t(op.length), op.with_imm ? op.imm : 0);
  s->gen = c->gen;
  const ssize_t r = fi_send(c->ep, s->buf, frame::kHeaderBytes, c->desc, c->addr, &s->ctx);
  if (r != 0) return int(r);
  c->free_send.pop_back();
  Stats::add(stats_.frames_out);
  Stats::add(stats_.send_calls);
  countOut(c, frame::kHeaderBytes);
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
      countOut(c, total);
      return 0;
    }
    if (r != -FI_EAGAIN) return int(r);
  }
  c->enqueue(PendingFrame{std::vector<uint8_t>(bytes, bytes + total), false});
  kick();
  return 0;
}

// RMA mode, under the data lane's mutex, before its HELLO and then for grants made later: each DATA grant to p
// not keyed yet is registered for remote writes on its own, and its range, key and remote address sent in a
// GRANT_KEY frame. The peer then writes one-sided into that range and nowhere else: the provider checks
// every write against the key and the registration's bounds. CONTROL grants get no key (their writes stay
// messages, applied with 8-byte atomic stores).
int LfFabric::sendGrantKeys(LfConn* c, LfPeer* p) {
  c->grants.refresh(p->grants);
  for (; c->keyed < c->grants.list.size(); c->keyed++) {
    const Grant& g = c->grants.list[c->keyed];
    if (g.kind != GrantKind::DATA) continue;
    const uint64_t wanted = nextKey();
    fid_mr* mr = nullptr;
    int r = check(fi_mr_reg(domain_, arena_.base + g.offset, g.length, FI_REMOTE_WRITE, 0, wanted, 0, &mr, nullptr),
                  "fi_mr_reg(grant)");
    if (r != 0) return r;
    c->grant_mrs.push_back(mr);
    // With FI_MR_VIRT_ADDR the target address is a virtual address, else an offset into the registration:
    // either way the peer adds an arena offset to `base` (mod 2^64).
    const uint64_t base = mr_virt_addr_ ? uint64_t(reinterpret_cast<uintptr_t>(arena_.base)) : 0 - g.offset;
    const RemoteRegion region{g.offset, g.length, base, mr_prov_key_ ? fi_mr_key(mr) : wanted};
    uint8_t buf[frame::kHeaderBytes + kGrantKeyBytes];
    frame::encode(buf, kFrameGrantKey, 0, kGrantKeyBytes, 0);
    std::memcpy(buf + frame::kHeaderBytes, &region, sizeof region);
    if ((r = sendCopy(c, buf, sizeof buf)) != 0) return r;
  }
  return 0;
}

int LfFabric::sendHello(LfConn* c) {
  // With a key, an initiator's (an acceptor's keyed answer is keyedHelloAccepted's).
  uint8_t buf[frame::kHeaderBytes + frame::kHelloAuthBytes];
  const uint32_t tag = layout_tag_.load(std::memory_order_relaxed);
  return sendCopy(c, buf, rules::encodeHello(opt_.key.present(), opt_.member_id, tag, c->lane, c->nonce, buf));
}

// With an auth key: the lane's transcript (auth.h) from this side's nonce and the other side's HELLO.
auth::Transcript LfFabric::transcript(const LfConn* c) const {
  return auth::transcriptOf(c->role == Role::INITIATOR, opt_.member_id, c->nonce, c->hello, c->lane);
}

// An AUTH frame carrying `who`'s MAC over c's transcript: the initiator's proof, or the acceptor's closing
// AUTH (its proof again), which follows its GRANT_KEYs so the initiator knows every region when it opens.
int LfFabric::sendAuth(LfConn* c, auth::Direction who) {
  uint8_t buf[frame::kHeaderBytes + frame::kAuthBytes];
  rules::encodeAuth(opt_.key, who, transcript(c), buf);
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
      countOut(c, f.bytes.size());
      c->free_send.pop_back();
    }
    c->dequeue();
  }
  return 0;
}

// What waits in p's lanes' send queues (tx[lane], under the lane's mutex; none once p failed) and what went out.
void LfFabric::sendSide(PeerCore* core, ConnectionInfo* info) {
  LfPeer* p = static_cast<LfPeer*>(core);
  for (uint32_t lane = 0; lane < frame::kLanes; lane++) {
    std::lock_guard<FairMutex> lock(p->mu[lane]);
    if (const LfConn* c = p->tx[lane]) {
      info->queued_frames += c->pending.size();
      info->queued_bytes += c->pending_bytes;
    }
  }
  info->bytes_out = p->bytes_out.load(std::memory_order_relaxed);
}

}  // namespace squall::lf
