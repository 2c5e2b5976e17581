// The TCP frame of the native fabric (DESIGN.md §2): a fixed 24-byte header, then `length` payload bytes.
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
// HELLO payload (kHelloBytes), sent first by the initiator and answered by the acceptor:
//
//   byte 0             4              8                             16
//        +-------------+--------------+-----------------------------+
//        |  member id  |  layout tag  |       reserved (zero)       |
//        |     u32     |     u32      |             u64             |
//        +-------------+--------------+-----------------------------+
//
// All fields little-endian. A HELLO carries offset 0, length kHelloBytes and immediate 0.

#pragma once
#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the frame is little-endian and so is the arena");

namespace squall::frame {

constexpr uint16_t kMagic = 0x5153;
constexpr uint8_t kVersion = 1;
constexpr uint32_t kHeaderBytes = 24;
constexpr uint32_t kHelloBytes = 16;

enum Type : uint8_t { HELLO = 1, WRITE = 2, WRITE_IMM = 3 };

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
  uint64_t reserved;
};
static_assert(sizeof(Hello) == kHelloBytes, "the HELLO struct must match the byte map");

// A complete HELLO frame, header and payload.
inline void encodeHello(uint8_t* out, uint32_t member, uint32_t layout_tag) {
  encode(out, HELLO, 0, kHelloBytes, 0);
  Hello hello{member, layout_tag, 0};
  std::memcpy(out + kHeaderBytes, &hello, kHelloBytes);
}

inline Hello decodeHello(const uint8_t* payload) {
  Hello hello;
  std::memcpy(&hello, payload, kHelloBytes);
  return hello;
}

}  // namespace squall::frame
