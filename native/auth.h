// The proof each fabric connection gives when the fabric has an auth key (FabricOptions::key): a mutual
// challenge-response over HMAC-SHA256 (sha256.h) with a fresh nonce from each side, one exchange per lane.
//
//   initiator                                              acceptor
//      HELLO  member i, tag, lane, flags=AUTH, nonce Ni  →
//                                                       ←  HELLO  member a, tag, lane, flags=AUTH, nonce Na,
//                                                                 MAC_a = HMAC(key, kAcceptorLabel ‖ T)
//      AUTH   MAC_i = HMAC(key, kInitiatorLabel ‖ T)     →
//
//   T (the transcript) = Ni (16 B) ‖ Na (16 B) ‖ i (u32 LE) ‖ a (u32 LE) ‖ lane (u8) ‖ layout tag (u32 LE)
//
// The libfabric backend adds a fourth message, the acceptor's closing AUTH (MAC_a again), after its
// GRANT_KEYs: keys open the arena to one-sided writes, so each side sends them only after the other's proof,
// and the initiator opens the lane only once it has them (libfabric/lf_handshake.cc, onAuth).
//
// Each side checks the other's MAC in constant time before it takes anything else from the connection.
// The labels differ, so one direction's MAC is never valid for the other (no reflection); every field is
// fixed-length, so no two transcripts share bytes. A recorded exchange replayed on a new connection fails:
// the other side's nonce is new. The acceptor binds the connection to member i only after MAC_i checks, so
// a connection that fails the proof is a CONNECTION_REJECTED(AUTH_FAILED) and never disturbs member i.

#pragma once
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "frame.h"
#include "sha256.h"

namespace squall::auth {

constexpr uint32_t kMinKeyBytes = 16;
constexpr uint32_t kMaxKeyBytes = 64;

// The labels end with their NUL: neither is a prefix of the other or of a transcript.
constexpr char kAcceptorLabel[] = "squall fabric v3: acceptor proof";
constexpr char kInitiatorLabel[] = "squall fabric v3: initiator proof";

enum class Direction : uint8_t { ACCEPTOR, INITIATOR };

struct Key {
  uint8_t bytes[kMaxKeyBytes] = {};
  uint32_t length = 0;  // 0: no key, connections are not authenticated
  bool present() const { return length > 0; }
};

// The fields of one lane's exchange the MACs cover.
struct Transcript {
  uint8_t initiator_nonce[frame::kNonceBytes];
  uint8_t acceptor_nonce[frame::kNonceBytes];
  uint32_t initiator;
  uint32_t acceptor;
  uint8_t lane;
  uint32_t layout_tag;
};

// The transcript of a lane as one side sees it: `self` with its own nonce, the other side's HELLO (its
// member id, nonce and layout tag), and the lane.
inline Transcript transcriptOf(bool initiator, uint32_t self, const uint8_t own_nonce[frame::kNonceBytes],
                               const frame::Hello& theirs, uint8_t lane) {
  Transcript t{};
  std::memcpy(t.initiator_nonce, initiator ? own_nonce : theirs.nonce, frame::kNonceBytes);
  std::memcpy(t.acceptor_nonce, initiator ? theirs.nonce : own_nonce, frame::kNonceBytes);
  t.initiator = initiator ? self : theirs.member;
  t.acceptor = initiator ? theirs.member : self;
  t.lane = lane;
  t.layout_tag = theirs.layout_tag;
  return t;
}

// Fills `out` with fresh random bytes from the kernel; false if it has none to give.
inline bool freshNonce(uint8_t out[frame::kNonceBytes]) {
  size_t got = 0;
  while (got < frame::kNonceBytes) {
    ssize_t n = getrandom(out + got, frame::kNonceBytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += size_t(n);
  }
  return true;
}

inline void mac(const Key& key, Direction who, const Transcript& t, uint8_t out[frame::kMacBytes]) {
  uint8_t fields[4 + 4 + 1 + 4];
  std::memcpy(fields, &t.initiator, 4);
  std::memcpy(fields + 4, &t.acceptor, 4);
  fields[8] = t.lane;
  std::memcpy(fields + 9, &t.layout_tag, 4);
  const char* label = who == Direction::ACCEPTOR ? kAcceptorLabel : kInitiatorLabel;
  const size_t label_bytes = who == Direction::ACCEPTOR ? sizeof kAcceptorLabel : sizeof kInitiatorLabel;
  const sha256::Part parts[] = {
      {reinterpret_cast<const uint8_t*>(label), label_bytes},
      {t.initiator_nonce, frame::kNonceBytes},
      {t.acceptor_nonce, frame::kNonceBytes},
      {fields, sizeof fields},
  };
  sha256::hmac(key.bytes, key.length, parts, sizeof parts / sizeof parts[0], out);
}

// True when `got` is the MAC `who` must send for transcript t; constant time in the MAC's bytes.
inline bool verify(const Key& key, Direction who, const Transcript& t, const uint8_t got[frame::kMacBytes]) {
  uint8_t want[frame::kMacBytes];
  mac(key, who, t, want);
  return sha256::equalConstantTime(want, got, frame::kMacBytes);
}

}  // namespace squall::auth
