// What a connection still has to send once the socket stopped taking bytes (the sending half of a peer).
//
// Writes go out straight from the calling thread while this queue is empty (peer.cc); only the part the
// kernel did not take is queued, and the poller flushes it on EPOLLOUT. The queue is a list of segments in
// send order: either bytes copied into `inline_` (headers, snapshots of payloads up to kSnapshotMaxBytes) or
// a reference to an arena range (large payloads: zero copy, RDMA semantics — the caller must not change the
// range until it has been sent). Consecutive inline segments merge, so a burst of small writes costs no
// allocation once the buffers have grown.
//
// Coalescing. A plain write (no immediate, snapshot-sized) of exactly the range of the newest queued frame,
// when none of that frame has been sent yet, refreshes that frame's payload with the current bytes instead
// of queuing a second frame. No frame overtakes another, so the receiver's order rules still hold; it just
// never sees the intermediate value — the SST's semantics, where a push carries the row's current state.
// Without this, a member pushing a counter in a tight loop would queue every push behind a slow socket and
// its heartbeat frames would wait behind all of them.

#pragma once
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <vector>

namespace squall {

constexpr uint64_t kSnapshotMaxBytes = 64 * 1024;

class SendQueue {
 public:
  bool empty() const { return segments_.empty(); }
  uint64_t queuedBytes() const { return queued_; }
  // Frames with bytes still queued, the one cut short included (connections(): the queue's depth).
  uint64_t queuedFrames() const { return frame_ends_.size(); }
  // What was appended since the last endFrame() is one frame (appendFrame ends its own).
  void endFrame() { frame_ends_.push_back(sent_ + queued_); }

  void appendBytes(const uint8_t* src, uint64_t length);     // plain copy
  void appendSnapshot(const uint8_t* src, uint64_t length);  // copy with 8-byte atomic loads (copy.h)
  void appendArena(uint64_t offset, uint64_t length);        // by reference

  // Queues a whole frame: its header, then its payload (snapshot when small, else by reference). A
  // coalescible frame (plain write, small) may later be refreshed by refreshNewest().
  void appendFrame(const uint8_t* header, uint64_t header_bytes, const uint8_t* src, uint64_t arena_offset,
                   uint64_t length, bool small, bool coalescible);

  // If the newest queued frame is coalescible, unsent, and covers exactly [arena_offset, +length), copies
  // the current bytes at `src` over its payload and returns true.
  bool refreshNewest(const uint8_t* src, uint64_t arena_offset, uint64_t length);

  // Sends as much as the socket takes without blocking. Returns bytes sent (0 if the socket is full) or
  // -errno on a socket error. `calls` counts sendmsg() calls.
  ssize_t flush(int fd, const uint8_t* arena, uint64_t& calls);

  void clear();

 private:
  struct Segment {
    bool in_arena;
    uint64_t at;      // offset in inline_ or in the arena
    uint64_t length;  // bytes left to send
  };
  uint8_t* grow(uint64_t length);
  void consume(uint64_t sent);

  std::vector<uint8_t> inline_;
  uint64_t inline_sent_ = 0;  // prefix of inline_ already sent
  std::deque<Segment> segments_;
  uint64_t queued_ = 0;
  uint64_t sent_ = 0;                // bytes consumed since the queue last emptied
  std::deque<uint64_t> frame_ends_;  // where each queued frame ends, in sent_ + queued_ terms; oldest first

  struct Newest {
    bool valid = false;
    uint64_t payload_at = 0;    // in inline_
    uint64_t arena_offset = 0;
    uint64_t length = 0;
  } newest_;
};

}  // namespace squall
