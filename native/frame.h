// The TCP frame of the native fabric (DESIGN.md §2): a fixed 24-byte header, then `length` payload bytes.
// Each peer is reached over two connections, its lanes (Lane below): the control lane and the data lane.
// Both carry these frames; each starts with its own HELLO, which names the lane.
//
//   byte 0       2      3      4             8                             16            20            24
//        +-------+------+------+-------------+-----------------------------+-------------+-------------+--------
//        | magic | ver  | type |   view id   |        arena offset         |   length    |  immediate  | payload
//        |  u16  |  u8  |  u8  |     u32     |             u64             |     u32     |     u32     | length B
//        +-------+------+------+-------------+-----------------------------+-------------+-------------+--------
//
//   magic      0x5153 ("SQ" in memory: 0x53 0x51); anything else closes the connection (BAD_MAGIC)
//   ver        kFrameVersion; anything else closes the connection (BAD_VERSION)
//   type       HELLO (handshake), WRITE (one-sided write), WRITE_IMM (write, then a completion at the receiver)
//   view id    the sender's view; carried for later view changes, 0 for now, not checked
//   offset     where the payload lands in the receiver's arena (= where it came from in the sender's)
//   length     payload bytes; at most the receiver's maxFrameBytes (OVERSIZE)
//   immediate  WRITE_IMM only: the u32 the receiver's completion carries; 0 otherwise
//
// HELLO payload, sent first on each lane by the initiator and answered on it by the acceptor. Without an
// auth key (kHelloBytes):
//
//   byte 0             4              8      9       10             16
//        +-------------+--------------+------+-------+--------------+
//        |  member id  |  layout tag  | lane | flags | reserved (0) |
//        |     u32     |     u32      |  u8  |  u8   |   6 bytes    |
//        +-------------+--------------+------+-------+--------------+
//
// With an auth key (flags = kHelloAuth, kHelloAuthBytes), the same 16 bytes, then:
//
//   byte 16                               32                                                      64
//        +--------------------------------+-------------------------------------------------------+
//        |  nonce (16 random bytes, fresh |  MAC: zero in the initiator's HELLO; in the acceptor's  |
//        |  per connection and direction) |  answer HMAC-SHA256 over the transcript (auth.h)        |
//        +--------------------------------+-------------------------------------------------------+
//
//   lane       0 data, 1 control (Lane); anything else, an unknown flag or a reserved byte that is not zero
//              closes the connection (BAD_LANE). An answer must name the lane it was asked on.
//   flags      kHelloAuth: this side has an auth key and proves it. Both sides must agree (AUTH_FAILED).
//
// AUTH payload (kAuthBytes), with a key only, the initiator's third message on each lane: its MAC over the
// same transcript under the other direction's label (auth.h). The acceptor reads nothing else until then.
//
// All fields little-endian. A HELLO or AUTH carries offset 0 and immediate 0.
// Version 3 added the flags, the nonce, the MACs and AUTH. Version 2 added the lane (version 1 had one
// connection per peer and 8 reserved bytes after the tag).

#pragma once
#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the frame is little-endian and so is the arena");

namespace squall::frame {

constexpr uint16_t kMagic = 0x5153;
constexpr uint8_t kVersion = 3;
constexpr uint32_t kHeaderBytes = 24;
constexpr uint32_t kHelloBytes = 16;
constexpr uint32_t kHelloAuthBytes = 64;
constexpr uint32_t kNonceBytes = 16;
constexpr uint32_t kMacBytes = 32;
constexpr uint32_t kAuthBytes = kMacBytes;
constexpr uint8_t kHelloAuth = 1;  // Hello::flags

enum Type : uint8_t { HELLO = 1, WRITE = 2, WRITE_IMM = 3, AUTH = 4 };

// A peer's two connections. Writes on one lane are applied in the order sent; the two lanes are not ordered
// with each other. The control lane carries small, latency-critical writes (heartbeats, SST counters) and
// never waits behind the data lane's bulk bytes: its own socket, send queue and mutex at the sender, served
// first by the receiver's poller.
enum Lane : uint8_t { DATA = 0, CONTROL = 1 };
constexpr uint32_t kLanes = 2;

struct Header {
  uint16_t magic;
  uint8_t version;
  uint8_t type;
  uint32_t view;
  uint64_t offset;
  uint32_t length;
  uint32_t imm;
};
static_assert(sizeof(Header) == kHeaderBytes, "the header struct must match the byte map");

inline void encode(uint8_t* out, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm) {
  Header h{kMagic, kVersion, type, 0, offset, length, imm};
  std::memcpy(out, &h, kHeaderBytes);
}

inline Header decode(const uint8_t* in) {
  Header h;
  std::memcpy(&h, in, kHeaderBytes);
  return h;
}

struct Hello {
  uint32_t member;
  uint32_t layout_tag;
  uint8_t lane;
  uint8_t flags;
  uint8_t reserved[6];
  uint8_t nonce[kNonceBytes];  // kHelloAuth only (zero otherwise)
  uint8_t mac[kMacBytes];      // kHelloAuth only (zero otherwise)
  // The lane byte names a lane, no unknown flag is set, and the reserved bytes are zero.
  bool valid() const {
    if (lane >= kLanes || (flags & ~kHelloAuth) != 0) return false;
    for (uint8_t b : reserved) if (b != 0) return false;
    return true;
  }
  bool authenticated() const { return (flags & kHelloAuth) != 0; }
  // The payload length a HELLO with these flags has.
  uint32_t bytes() const { return authenticated() ? kHelloAuthBytes : kHelloBytes; }
};
static_assert(sizeof(Hello) == kHelloAuthBytes, "the HELLO struct must match the byte map");

// A complete HELLO frame without a key, header and payload (kHeaderBytes + kHelloBytes).
inline void encodeHello(uint8_t* out, uint32_t member, uint32_t layout_tag, uint8_t lane) {
  encode(out, HELLO, 0, kHelloBytes, 0);
  Hello hello{member, layout_tag, lane, 0, {}, {}, {}};
  std::memcpy(out + kHeaderBytes, &hello, kHelloBytes);
}

// A complete HELLO frame with a key (kHeaderBytes + kHelloAuthBytes); `mac` null for the initiator's.
inline void encodeHelloAuth(uint8_t* out, uint32_t member, uint32_t layout_tag, uint8_t lane, const uint8_t* nonce,
                            const uint8_t* mac) {
  encode(out, HELLO, 0, kHelloAuthBytes, 0);
  Hello hello{member, layout_tag, lane, kHelloAuth, {}, {}, {}};
  std::memcpy(hello.nonce, nonce, kNonceBytes);
  if (mac) std::memcpy(hello.mac, mac, kMacBytes);
  std::memcpy(out + kHeaderBytes, &hello, kHelloAuthBytes);
}

// The HELLO payload of `length` bytes (kHelloBytes or kHelloAuthBytes); absent fields read as zero.
inline Hello decodeHello(const uint8_t* payload, uint32_t length = kHelloBytes) {
  Hello hello{};
  std::memcpy(&hello, payload, length < kHelloAuthBytes ? length : kHelloAuthBytes);
  return hello;
}

}  // namespace squall::frame
