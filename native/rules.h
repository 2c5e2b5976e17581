// The rules a receiver applies to what a peer sends (DESIGN.md §2, "Rules the receiver enforces, whatever the
// backend"), written once for both backends: which frame a lane may take when, what a handshake frame must
// look like, whom a HELLO may come from and what it must say, and where a write may land. The tcp backend
// runs them as a frame's bytes come in (tcp/connection.cc, tcp/handshake.cc), the libfabric backend on whole
// messages (libfabric/lf_receive.cc, lf_handshake.cc).
//
// Each check returns 0, or the map::FailReason the connection must fail with: the caller fails it, before any
// byte of the frame touches the arena. How a failure is then told (PEER_FAILED once per peer, or
// CONNECTION_REJECTED for a caller not yet known) is receiver.h's.

#pragma once
#include <cstdint>
#include <cstring>

#include "arena.h"
#include "auth.h"
#include "copy.h"
#include "frame.h"
#include "generated/memory_map.h"
#include "grants.h"
#include "peers.h"

namespace squall::rules {

constexpr uint32_t reason(map::FailReason r) { return uint32_t(r); }

// ------------------------------------------------------------------------------------------------ frames

// A frame's first bytes, each checked as soon as it is in, so garbage is refused without waiting for a whole
// header: the magic, then the version.
inline uint32_t checkStart(const uint8_t* at, uint64_t available) {
  if (available >= 2) {
    uint16_t magic;
    std::memcpy(&magic, at, 2);
    if (magic != frame::kMagic) return reason(map::FailReason::BAD_MAGIC);
  }
  if (available >= 3 && at[2] != frame::kVersion) return reason(map::FailReason::BAD_VERSION);
  return 0;
}

// Each phase takes one kind of frame: a HELLO while shaking hands, an AUTH while the other side's proof is
// awaited, writes once the lane is up. `backend_write`: the frame is a write of the backend's own kind
// (libfabric's PLACED notes), allowed when writes are.
inline bool typeAllowed(Phase phase, uint8_t type, bool backend_write = false) {
  if (phase == Phase::HELLO) return type == frame::HELLO;
  if (phase == Phase::AUTH) return type == frame::AUTH;
  return type == frame::WRITE || type == frame::WRITE_IMM || backend_write;
}

// A HELLO or AUTH header: one of the lengths it may have, offset and immediate 0.
inline uint32_t checkHandshakeHeader(const frame::Header& h) {
  if (h.type == frame::HELLO) {
    const bool sized = h.length == frame::kHelloBytes || h.length == frame::kHelloAuthBytes;
    return sized && h.offset == 0 && h.imm == 0 ? 0 : reason(map::FailReason::BAD_TYPE);
  }
  return h.length == frame::kAuthBytes && h.offset == 0 && h.imm == 0 ? 0 : reason(map::FailReason::BAD_TYPE);
}

// A HELLO's payload, whole: the flags say how long a HELLO is, and one that disagrees is malformed.
inline uint32_t decodeHello(const frame::Header& h, const uint8_t* payload, frame::Hello* out) {
  *out = frame::decodeHello(payload, h.length);
  return out->bytes() == h.length ? 0 : reason(map::FailReason::BAD_TYPE);
}

// A write's payload: at most the receiver's maxFrameBytes.
inline uint32_t checkLength(uint64_t length, uint32_t max_frame_bytes) {
  return length > max_frame_bytes ? reason(map::FailReason::OVERSIZE) : 0;
}

// A write of [offset, offset+length) from p: wholly inside one of the ranges p was granted here (and inside
// the arena), and 8-byte aligned in offset and length when that range is a control range (its counters are
// stored with 8-byte atomic stores, copy.h). 0 with *grant set, or the reason.
inline uint32_t checkWrite(GrantCopy& grants, const PeerCore& p, const ArenaView& arena, uint64_t offset,
                           uint64_t length, const Grant** grant) {
  const Grant* g = grants.find(p.grants, offset, length);
  if (!g || !arena.contains(offset, length)) return reason(map::FailReason::OUT_OF_GRANT);
  if (g->kind == GrantKind::CONTROL && !aligned8(offset, length)) return reason(map::FailReason::MISALIGNED);
  *grant = g;
  return 0;
}

// ------------------------------------------------------------------------------------------------ HELLOs

// Any HELLO: it names a lane, sets no unknown flag, and proves a key exactly when this side has one (a key
// on one side only is refused by both: neither runs unauthenticated against the other's will).
inline uint32_t checkHello(const frame::Hello& h, bool keyed) {
  if (!h.valid()) return reason(map::FailReason::BAD_LANE);
  if (h.authenticated() != keyed) return reason(map::FailReason::AUTH_FAILED);
  return 0;
}

// Acceptor: a HELLO from a member this side expects (p: the peer the HELLO names, if any; expected means it
// was granted ranges here), with this side's layout tag.
inline uint32_t checkCaller(const PeerCore* p, const frame::Hello& h, uint32_t layout_tag) {
  if (!p || p->grants.empty()) return reason(map::FailReason::UNKNOWN_PEER);
  if (h.layout_tag != layout_tag) return reason(map::FailReason::LAYOUT_MISMATCH);
  return 0;
}

// Acceptor with a key: the initiator's HELLO carries its nonce and no MAC (its proof comes in its AUTH).
inline uint32_t checkUnproven(const frame::Hello& h) {
  for (uint8_t b : h.mac) {
    if (b != 0) return reason(map::FailReason::AUTH_FAILED);
  }
  return 0;
}

// Initiator: the answer comes from the member it dialled (p), for the lane it asked on, with its layout tag.
inline uint32_t checkAnswer(const PeerCore& p, uint8_t lane, const frame::Hello& h, uint32_t layout_tag) {
  if (h.member != p.id) return reason(map::FailReason::UNKNOWN_PEER);
  if (h.lane != lane) return reason(map::FailReason::BAD_LANE);
  if (h.layout_tag != layout_tag) return reason(map::FailReason::LAYOUT_MISMATCH);
  return 0;
}

// A HELLO on `lane` from `self`: with a key, an initiator's opening HELLO (its fresh `nonce`, no MAC: the
// acceptor proves itself first); without, either side's. Returns its length in bytes, header included.
inline uint32_t encodeHello(bool keyed, uint32_t self, uint32_t layout_tag, uint8_t lane,
                            const uint8_t nonce[frame::kNonceBytes],
                            uint8_t out[frame::kHeaderBytes + frame::kHelloAuthBytes]) {
  if (!keyed) {
    frame::encodeHello(out, self, layout_tag, lane);
    return frame::kHeaderBytes + frame::kHelloBytes;
  }
  frame::encodeHelloAuth(out, self, layout_tag, lane, nonce, nullptr);
  return frame::kHeaderBytes + frame::kHelloAuthBytes;
}

// Acceptor with a key: its answer to the initiator's HELLO h — a HELLO with this side's fresh nonce (kept in
// `nonce` for the lane's transcript) and its proof — in `out`. IO_ERROR when the kernel gives no random bytes.
inline uint32_t answerWithProof(const auth::Key& key, uint32_t self, const frame::Hello& h,
                                uint8_t nonce[frame::kNonceBytes],
                                uint8_t out[frame::kHeaderBytes + frame::kHelloAuthBytes]) {
  if (!auth::freshNonce(nonce)) return reason(map::FailReason::IO_ERROR);
  uint8_t mac[frame::kMacBytes];
  auth::mac(key, auth::Direction::ACCEPTOR, auth::transcriptOf(false, self, nonce, h, h.lane), mac);
  frame::encodeHelloAuth(out, self, h.layout_tag, h.lane, nonce, mac);
  return 0;
}

// An AUTH frame carrying `who`'s proof over the lane's transcript t.
inline void encodeAuth(const auth::Key& key, auth::Direction who, const auth::Transcript& t,
                       uint8_t out[frame::kHeaderBytes + frame::kAuthBytes]) {
  frame::encode(out, frame::AUTH, 0, frame::kAuthBytes, 0);
  auth::mac(key, who, t, out + frame::kHeaderBytes);
}

}  // namespace squall::rules
