// What the libfabric backend puts on the wire besides the tcp backend's frames (frame.h), which it carries
// as messages in every mode: the RMA mode's frames and remote CQ data, the chunk that marks a split write,
// and the RDM side channel's endpoint-name record. lf_fabric.h says how the modes use them.
//
// Frames. A receive slot holds one frame of at most kChunkBytes of payload; a longer write goes as several.
//
// The immediate field of a WRITE frame is 0 on the tcp backend's wire. Here kContinued marks a chunk of a
// split write-with-immediate that the next frame of the connection continues, so the receiver's WRITE_IMM
// completion can name the whole range written (offset and length), as the tcp backend's does when the
// write fits one frame. Without it the completion would name only the last 64 KiB chunk.
//
// RMA mode (docs/rdma.md "Modes"). Each DATA grant to a peer is registered on its own for remote writes, and
// its range, key and remote address go to that peer in a GRANT_KEY frame, before the HELLO (so both sides
// know every region before the first write) and later for grants made later. Every write into such a
// region then goes straight from the arena into the peer's arena -- the provider refuses any byte outside
// the region -- and every write into it goes that way, whatever its size: a range that travelled one way
// and then the other could have an older message applied over a newer one-sided write. CONTROL grants are
// never keyed: their writes stay messages, applied with 8-byte atomic stores after the grant check.
// - fi_writedata whose 64 bits of remote CQ data describe the write (describe*() below): every plain write
//   (chunks of at most kRmaChunkBytes), and writes-with-immediate of whole 4 KiB pages up to kDataMaxBytes.
//   The receiver learns of it from the remote-write completion in the connection's own CQ.
// - any other write-with-immediate: fi_write (chunks of at most kRmaChunkBytes), then on the same endpoint
//   a header-only PLACED_IMM frame naming the range and the immediate (PLACED without one: providers
//   without remote CQ data).
// Either way the provider orders what follows on the endpoint after the write (FI_ORDER_WAW / SAW / WAS,
// required in the hints), so when the receiver's poller sees the completion or the note, the bytes are
// there; it checks the grant, rings the doorbell and produces the WRITE_IMM completion as for a WRITE frame.
// A one-sided write that cannot be posted at once waits in the connection's send queue, in order.
//
// GRANT_KEY payload (kGrantKeyBytes, RemoteRegion), all u64 little-endian:
//
//   byte 0          8          16                                24
//        +----------+----------+---------------------------------+----------+
//        |  offset  |  length  | remote address of arena offset 0 |   key    |
//        +----------+----------+---------------------------------+----------+
//
// RDM side channel: each side sends one endpoint-name record, then nothing:
//
//   byte 0       4        8          12
//        +-------+--------+----------+-----------------------------+
//        | magic |  lane  |  length  | name (length bytes, ≤ 256)  |
//        |  u32  |  u32   |   u32    |                             |
//        +-------+--------+----------+-----------------------------+

#pragma once
#include <cstdint>

#include "frame.h"

namespace squall::lf {

constexpr uint32_t kChunkBytes = 64 * 1024;  // largest frame payload on this backend (a receive slot holds one frame)
constexpr uint32_t kSlotBytes = frame::kHeaderBytes + kChunkBytes;
constexpr uint32_t kContinued = 1;  // a WRITE frame's immediate: the next frame continues this write

constexpr uint8_t kFrameGrantKey = 0x41;   // payload: RemoteRegion
constexpr uint8_t kFramePlaced = 0x42;     // header only: [offset, offset+length) was written by RMA
constexpr uint8_t kFramePlacedImm = 0x43;  // the same, then a WRITE_IMM completion with the immediate
constexpr uint64_t kRmaChunkBytes = 16ull << 20;

// RMA mode: a range of the peer's arena this side may write one-sided (one of the peer's grants to it); the
// payload of its GRANT_KEY frame.
struct RemoteRegion {
  uint64_t offset;
  uint64_t length;
  uint64_t base;  // remote address of the peer's arena offset 0 in this region's terms
  uint64_t key;
};
constexpr uint32_t kGrantKeyBytes = 32;
static_assert(sizeof(RemoteRegion) == kGrantKeyBytes, "the GRANT_KEY payload is a RemoteRegion");

// The remote CQ data of an fi_writedata. With an immediate: [imm:32][1:1][first page:20][pages - 1:11] (wasm32
// arenas end at 4 GiB, so a page number fits 20 bits; 11 bits of length allow kDataMaxBytes). Without:
// [offset:32][0:1][length:31]. The receiver needs nothing but this word and the connection.
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kDataMaxBytes = 2048 * kPageBytes;
constexpr uint64_t kDataPages = 1ull << 20;
constexpr uint64_t kDataHasImm = 1ull << 31;

struct Placed {
  uint64_t offset;
  uint64_t length;
  bool with_imm;
  uint32_t imm;
};
// Whether a write-with-immediate of [offset, offset+length) can travel as one fi_writedata.
inline bool describableImm(uint64_t offset, uint64_t length) {
  return length > 0 && length <= kDataMaxBytes && offset % kPageBytes == 0 && length % kPageBytes == 0 &&
         (offset + length) / kPageBytes <= kDataPages;
}
inline uint64_t describeImm(uint64_t offset, uint64_t length, uint32_t imm) {
  return uint64_t(imm) << 32 | kDataHasImm | (offset / kPageBytes) << 11 | (length / kPageBytes - 1);
}
// A plain write: any range in the arena (under 4 GiB), a chunk of at most kRmaChunkBytes.
inline uint64_t describePlain(uint64_t offset, uint64_t length) { return offset << 32 | length; }
inline Placed placedFrom(uint64_t data) {
  if (!(data & kDataHasImm)) return Placed{data >> 32, data & (kDataHasImm - 1), false, 0};
  const uint64_t first_page = (data >> 11) & (kDataPages - 1);
  return Placed{first_page * kPageBytes, ((data & 0x7ff) + 1) * kPageBytes, true, uint32_t(data >> 32)};
}

constexpr uint32_t kNameMagic = 0x4d4e5153;  // "SQNM": an endpoint-name record on the RDM side channel
constexpr uint32_t kNameMaxBytes = 256;
constexpr size_t kNameHeadBytes = 12;  // magic, lane, length (u32 each)

}  // namespace squall::lf
