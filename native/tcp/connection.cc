#include "tcp/connection.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "generated/memory_map.h"
#include "rules.h"
#include "tcp/peer.h"

namespace squall {

using map::FailReason;
using rules::reason;

// Checks the header at `at`, of which `available` bytes are staged, under the receiver rules (rules.h).
// Returns 0 when the bytes so far are fine (with *grant set once the whole header is in and the frame is a
// write), else a FailReason. Each field is checked as soon as its bytes are in, so garbage is refused
// without waiting for 24 bytes.
uint32_t Conn::checkHeader(const uint8_t* at, uint64_t available, const ReceiveEnv& env, const Grant** grant) {
  *grant = nullptr;
  if (uint32_t bad = rules::checkStart(at, available)) return bad;
  if (available >= 4 && !rules::typeAllowed(phase, at[3])) return reason(FailReason::BAD_TYPE);
  if (available < frame::kHeaderBytes) return 0;
  frame::Header h = frame::decode(at);
  if (h.type == frame::HELLO || h.type == frame::AUTH) return rules::checkHandshakeHeader(h);
  if (uint32_t bad = rules::checkLength(h.length, env.max_frame_bytes)) return bad;
  return rules::checkWrite(grants_, *peer, env.arena, h.offset, h.length, grant);
}

// Finishes an applied frame (receiver.h, landed). Returns false when its completion is held (the ring is full).
bool Conn::complete(const ReceiveEnv& env, const frame::Header& h, const Grant& g) {
  return env.rx->landed(g, peer->id, h.type == frame::WRITE_IMM, h.imm, h.offset, h.length, held_);
}

Conn::Parse Conn::parseStaged(const ReceiveEnv& env) {
  while (rpos_ < wpos_) {
    const uint8_t* at = buf_.get() + rpos_;
    const uint64_t available = wpos_ - rpos_;
    const Grant* g;
    if (uint32_t bad = checkHeader(at, available, env, &g)) {
      fail_reason = bad;
      return Parse::FAILED;
    }
    if (available < frame::kHeaderBytes) break;
    frame::Header h = frame::decode(at);
    const uint64_t total = frame::kHeaderBytes + uint64_t(h.length);

    if (h.type == frame::HELLO) {
      if (available < total) break;
      rpos_ += total;
      if (uint32_t bad = rules::decodeHello(h, at + frame::kHeaderBytes, &hello)) {
        fail_reason = bad;
        return Parse::FAILED;
      }
      return Parse::HELLO;
    }
    if (h.type == frame::AUTH) {
      if (available < total) break;
      std::memcpy(auth_mac, at + frame::kHeaderBytes, frame::kAuthBytes);
      rpos_ += total;
      return Parse::AUTH;
    }

    if (available >= total) {
      env.rx->store(*g, h.offset, at + frame::kHeaderBytes, h.length);
      rpos_ += total;
      header_first_ = false;
      if (!complete(env, h, *g)) return Parse::PAUSED;
      continue;
    }

    if (g->kind == GrantKind::DATA && h.length > kDirectMinBytes) {
      // Read the rest straight into the range; the staged part of the payload goes first.
      uint64_t have = available - frame::kHeaderBytes;
      std::memcpy(env.arena.base + h.offset, at + frame::kHeaderBytes, have);
      direct_header_ = h;
      direct_grant_ = *g;
      direct_dst_ = env.arena.base + h.offset + have;
      direct_left_ = h.length - have;
      rpos_ = wpos_ = 0;  // nothing to announce until the frame is whole (complete() rings its channel)
      return Parse::DIRECT;
    }

    if (total > cap_) {  // a control frame larger than the buffer: grow it to hold the whole frame
      std::unique_ptr<uint8_t[]> bigger(new uint8_t[total]);
      std::memcpy(bigger.get(), at, available);
      buf_ = std::move(bigger);
      cap_ = total;
      rpos_ = 0;
      wpos_ = available;
    }
    break;
  }
  return Parse::NEED_BYTES;
}

Pump Conn::endOfStream(int err) {
  if (err == 0 || err == ECONNRESET || err == EPIPE) {
    bool mid_frame = direct_left_ > 0 || wpos_ > rpos_;
    return failed(reason(mid_frame ? FailReason::TRUNCATED : FailReason::CLOSED));
  }
  return failed(reason(FailReason::IO_ERROR));
}

Pump Conn::pump(const ReceiveEnv& env) {
  if (!env.rx->retry(held_)) return Pump::PAUSED;
  if (!buf_) {
    buf_.reset(new uint8_t[kStagingBytes]);
    cap_ = kStagingBytes;
  }
  uint64_t budget = kReadBudgetBytes;
  // A read that returned less than it asked for emptied the socket: the next one would fail with EAGAIN, a
  // system call for nothing (on this VM a few µs each, once per pass). The socket is level-triggered, so
  // bytes that arrive later make epoll report it again; what was read is parsed before the pump returns.
  bool emptied = false;
  for (;;) {
    if (direct_left_ > 0) {
      if (emptied) return Pump::DRAINED;
      ssize_t n = recv(fd, direct_dst_, direct_left_, MSG_DONTWAIT);
      Stats::bump(env.stats->recv_calls);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Pump::DRAINED;
      if (n <= 0) return endOfStream(n == 0 ? 0 : errno);
      Stats::bump(env.stats->bytes_in, uint64_t(n));
      if (peer) Stats::bump(peer->bytes_in, uint64_t(n));
      emptied = uint64_t(n) < direct_left_;
      direct_dst_ += n;
      direct_left_ -= uint64_t(n);
      if (direct_left_ == 0) {
        header_first_ = true;
        if (!complete(env, direct_header_, direct_grant_)) return Pump::PAUSED;
      }
      if (budget <= uint64_t(n)) return Pump::DRAINED;
      budget -= uint64_t(n);
      continue;
    }

    switch (parseStaged(env)) {
      case Parse::HELLO: return Pump::HELLO;
      case Parse::AUTH: return Pump::AUTH;
      case Parse::PAUSED: return Pump::PAUSED;
      case Parse::FAILED: return Pump::FAILED;
      case Parse::DIRECT: continue;
      case Parse::NEED_BYTES: break;
    }

    if (rpos_ == wpos_) {
      rpos_ = wpos_ = 0;
    } else if (cap_ - wpos_ < kDirectMinBytes || rpos_ > cap_ / 2) {
      std::memmove(buf_.get(), buf_.get() + rpos_, wpos_ - rpos_);
      wpos_ -= rpos_;
      rpos_ = 0;
    }
    if (budget == 0 || emptied) return Pump::DRAINED;
    uint64_t want = cap_ - wpos_;
    if (header_first_) {
      uint64_t staged = wpos_ - rpos_;
      if (staged >= frame::kHeaderBytes) header_first_ = false;  // parsed above: a small frame
      else want = frame::kHeaderBytes - staged;
    }
    ssize_t n = recv(fd, buf_.get() + wpos_, want, MSG_DONTWAIT);
    Stats::bump(env.stats->recv_calls);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Pump::DRAINED;
    if (n <= 0) return endOfStream(n == 0 ? 0 : errno);
    Stats::bump(env.stats->bytes_in, uint64_t(n));
    if (peer) Stats::bump(peer->bytes_in, uint64_t(n));
    emptied = uint64_t(n) < want;
    wpos_ += uint64_t(n);
    budget = budget > uint64_t(n) ? budget - uint64_t(n) : 0;
  }
}

}  // namespace squall
