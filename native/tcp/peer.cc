#include "peer.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "copy.h"
#include "frame.h"

namespace squall {

namespace {

// Small payloads are copied (with atomic loads) before they are sent, so the bytes that leave are one
// consistent snapshot even if the send is cut short and the rest queued. One buffer per calling thread.
thread_local uint8_t t_snapshot[kSnapshotMaxBytes];

}  // namespace

int LaneTx::sendFrame(const ArenaView& arena, uint8_t type, uint64_t offset, uint32_t length, uint32_t imm,
                      Stats& stats) {
  uint8_t header[frame::kHeaderBytes];
  frame::encode(header, type, offset, length, imm);
  const uint8_t* src = arena.base + offset;
  const bool small = length <= kSnapshotMaxBytes;

  if (!queue.empty()) {  // behind earlier bytes: queue (or refresh the same newest frame), then flush
    const bool coalescible = small && type == frame::WRITE;
    if (coalescible && queue.refreshNewest(src, offset, length)) {
      Stats::add(stats.frames_coalesced);
      return flush(arena, stats);
    }
    Stats::add(stats.frames_out);
    queue.appendFrame(header, frame::kHeaderBytes, src, offset, length, small, coalescible);
    return flush(arena, stats);
  }

  // The fast path: one sendmsg() from the calling thread, nothing queued if the kernel takes it all.
  const uint8_t* payload = src;
  if (small) {
    snapshot(t_snapshot, src, length);
    payload = t_snapshot;
  }
  iovec iov[2] = {{header, frame::kHeaderBytes}, {const_cast<uint8_t*>(payload), length}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = length ? 2 : 1;
  Stats::add(stats.frames_out);
  ssize_t sent;
  do {
    sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  Stats::add(stats.send_calls);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    sent = 0;
  }
  Stats::add(stats.bytes_out, uint64_t(sent));
  Stats::bump(bytes_out, uint64_t(sent));
  const uint64_t total = frame::kHeaderBytes + uint64_t(length);
  if (uint64_t(sent) == total) return 0;

  uint64_t payload_sent = 0;
  if (uint64_t(sent) < frame::kHeaderBytes) {
    queue.appendBytes(header + sent, frame::kHeaderBytes - uint64_t(sent));
  } else {
    payload_sent = uint64_t(sent) - frame::kHeaderBytes;
  }
  if (small) queue.appendBytes(payload + payload_sent, length - payload_sent);
  else queue.appendArena(offset + payload_sent, length - payload_sent);
  queue.endFrame();
  want_out = true;
  updateInterest();
  return 0;
}

void LaneTx::queueFrame(const ArenaView& arena, uint64_t offset, uint32_t length, Stats& stats) {
  uint8_t header[frame::kHeaderBytes];
  frame::encode(header, frame::WRITE, offset, length, 0);
  Stats::add(stats.frames_out);
  const bool small = length <= kSnapshotMaxBytes;
  queue.appendFrame(header, frame::kHeaderBytes, arena.base + offset, offset, length, small, false);
}

int LaneTx::sendBytes(const ArenaView& arena, const uint8_t* bytes, uint32_t length, Stats& stats) {
  queue.appendBytes(bytes, length);
  queue.endFrame();
  return flush(arena, stats);
}

int LaneTx::flush(const ArenaView& arena, Stats& stats) {
  uint64_t calls = 0;
  ssize_t sent = queue.flush(fd, arena.base, calls);
  Stats::add(stats.send_calls, calls);
  if (sent > 0) Stats::add(stats.bytes_out, uint64_t(sent));
  if (sent > 0) Stats::bump(bytes_out, uint64_t(sent));
  bool want = !queue.empty();
  if (want != want_out) {
    want_out = want;
    updateInterest();
  }
  return sent < 0 ? int(sent) : 0;
}

void LaneTx::updateInterest() {
  if (!watched || fd < 0) return;  // a paused connection is re-registered by the poller when it resumes
  epoll_event ev{};
  ev.events = read_events | (want_out ? uint32_t(EPOLLOUT) : 0u);
  ev.data.ptr = epoll_tag;
  epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
}

}  // namespace squall
