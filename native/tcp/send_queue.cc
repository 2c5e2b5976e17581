#include "send_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "copy.h"

namespace squall {

namespace {
constexpr int kMaxIov = 64;
// Compact the inline buffer once this much of its front has been sent and it still holds more.
constexpr uint64_t kCompactBytes = 1 << 20;
// A frame header is never longer than this (frame.h); refreshNewest() uses it to know the whole frame,
// header included, is still unsent.
constexpr uint64_t kMaxHeaderBytes = 24;
}  // namespace

uint8_t* SendQueue::grow(uint64_t length) {
  if (!segments_.empty() && !segments_.back().in_arena) {
    segments_.back().length += length;
  } else {
    segments_.push_back(Segment{false, inline_.size(), length});
  }
  queued_ += length;
  size_t at = inline_.size();
  inline_.resize(at + length);
  return inline_.data() + at;
}

void SendQueue::appendBytes(const uint8_t* src, uint64_t length) {
  newest_.valid = false;
  if (length) std::memcpy(grow(length), src, length);
}

void SendQueue::appendSnapshot(const uint8_t* src, uint64_t length) {
  newest_.valid = false;
  if (length) snapshot(grow(length), src, length);
}

void SendQueue::appendArena(uint64_t offset, uint64_t length) {
  newest_.valid = false;
  if (!length) return;
  segments_.push_back(Segment{true, offset, length});
  queued_ += length;
}

void SendQueue::appendFrame(const uint8_t* header, uint64_t header_bytes, const uint8_t* src, uint64_t arena_offset,
                            uint64_t length, bool small, bool coalescible) {
  appendBytes(header, header_bytes);
  if (small) {
    const uint64_t payload_at = inline_.size();
    appendSnapshot(src, length);
    if (coalescible) newest_ = Newest{true, payload_at, arena_offset, length};
  } else {
    appendArena(arena_offset, length);
  }
  endFrame();
}

bool SendQueue::refreshNewest(const uint8_t* src, uint64_t arena_offset, uint64_t length) {
  // The frame's header starts before payload_at; nothing of the frame may have been sent yet.
  if (!newest_.valid || newest_.arena_offset != arena_offset || newest_.length != length) return false;
  if (inline_sent_ + kMaxHeaderBytes > newest_.payload_at) return false;
  snapshot(inline_.data() + newest_.payload_at, src, length);
  return true;
}

ssize_t SendQueue::flush(int fd, const uint8_t* arena, uint64_t& calls) {
  ssize_t total = 0;
  while (!segments_.empty()) {
    iovec iov[kMaxIov];
    int n = 0;
    uint64_t want = 0;
    for (auto it = segments_.begin(); it != segments_.end() && n < kMaxIov; ++it, ++n) {
      const uint8_t* base = it->in_arena ? arena : inline_.data();
      iov[n].iov_base = const_cast<uint8_t*>(base + it->at);
      iov[n].iov_len = it->length;
      want += it->length;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    calls++;
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -errno;
    }
    consume(uint64_t(sent));
    total += sent;
    if (uint64_t(sent) < want) break;  // the socket is full
  }
  return total;
}

void SendQueue::consume(uint64_t sent) {
  queued_ -= sent;
  sent_ += sent;
  while (!frame_ends_.empty() && frame_ends_.front() <= sent_) frame_ends_.pop_front();
  while (sent) {
    Segment& s = segments_.front();
    uint64_t take = sent < s.length ? sent : s.length;
    s.at += take;
    s.length -= take;
    if (!s.in_arena) inline_sent_ += take;
    sent -= take;
    if (s.length == 0) segments_.pop_front();
  }
  if (segments_.empty()) {
    clear();
  } else if (inline_sent_ >= kCompactBytes && inline_sent_ * 2 >= inline_.size()) {
    // Drop the sent prefix so a queue that never empties does not grow without bound.
    inline_.erase(inline_.begin(), inline_.begin() + inline_sent_);
    for (Segment& s : segments_) if (!s.in_arena) s.at -= inline_sent_;
    if (newest_.valid) newest_.payload_at -= inline_sent_;
    inline_sent_ = 0;
  }
}

void SendQueue::clear() {
  inline_.clear();  // keeps its capacity
  inline_sent_ = 0;
  segments_.clear();
  queued_ = 0;
  sent_ = 0;
  frame_ends_.clear();
  newest_.valid = false;
}

}  // namespace squall
