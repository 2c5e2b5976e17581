// One socket as the poller sees it — one lane of a peer (frame.h: Lane) — where it stands (connecting,
// shaking hands, waiting for its sibling lane, open) and its receiving half, which parses frames out of a
// staging buffer and applies them to the arena. Both lanes of a peer apply the same rules; each lane is
// ordered on its own.
//
// Receiving rules (DESIGN.md §2), all enforced in Conn::pump():
// - frames are applied in the order they arrive, each only once it is complete in the staging buffer,
//   many per recv() (one recv() of 256 KiB may carry thousands of small frames);
// - every header is checked under the receiver rules both backends share (rules.h) as soon as its bytes are
//   in, before any of its payload is applied: magic, version, type (HELLO only before the handshake ends,
//   AUTH only while an acceptor waits for it, WRITE/WRITE_IMM only after), the handshake frames' exact
//   lengths, length against maxFrameBytes, the range against the peer's grants, 8-byte alignment for control
//   ranges. A bad header fails the connection with the arena untouched;
// - control ranges are applied with 8-byte atomic stores in ascending order, data ranges by copy (receiver.h);
// - a data frame larger than kDirectMinBytes that is not yet fully staged is read straight into its range
//   (no second copy). If the connection breaks in the middle of it, that range may hold part of the write,
//   as with RDMA; nothing else is touched;
// - a write-with-immediate queues its completion after the bytes are applied. If the ring is full the
//   completion is held here and the connection is paused (the poller stops reading it) until it fits.

#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "arena.h"
#include "frame.h"
#include "grants.h"
#include "peers.h"
#include "receiver.h"
#include "rings.h"
#include "stats.h"

namespace squall {

struct Peer;

// What an epoll event points at.
struct Source {
  enum Kind : uint8_t { WAKE, LISTENER, CONN, CONTROL_SET };
  explicit Source(Kind k) : kind(k) {}
  const Kind kind;
};

// What the receiver needs from its fabric.
struct ReceiveEnv {
  ArenaView arena;
  uint32_t max_frame_bytes;
  Receiver* rx;  // applies, completes and tells (receiver.h)
  Stats* stats;
};

enum class Pump : uint8_t {
  DRAINED,  // the socket has nothing more for now (or this turn's read budget is spent)
  HELLO,    // a HELLO was parsed into `hello`; the fabric decides, then calls pump() again
  AUTH,     // an AUTH was parsed into `auth_mac`; the same
  PAUSED,   // a completion ring is full; a completion is held
  FAILED,   // the connection must close; `fail_reason` is a map::FailReason
};

constexpr uint64_t kStagingBytes = 256 * 1024;
constexpr uint64_t kDirectMinBytes = 64 * 1024;
// Per pump() call, so one socket cannot starve the others; and a control lane's write arriving meanwhile
// waits for at most this much of a data lane (the poller serves the control lanes between data pumps).
constexpr uint64_t kReadBudgetBytes = 1024 * 1024;

struct Conn : Source {
  Conn(Role r, Phase p) : Source(CONN), role(r), phase(p) {}

  int fd = -1;
  int epfd = -1;  // the poller's epoll set the socket is in (its control set for a control lane), or -1
  const Role role;
  Phase phase;
  uint8_t lane = frame::DATA;  // initiator: from the start; acceptor: from the peer's HELLO
  Peer* peer = nullptr;  // known from the start for an initiator, after its HELLO for an acceptor
  uint64_t deadline_ns = 0;          // RETRY_WAIT: next attempt; CONNECTING: give up; HELLO: give up
  uint64_t connect_deadline_ns = 0;  // initiator: CONNECT_TIMEOUT after this
  sockaddr_storage addr{};           // initiator: where to connect
  socklen_t addr_len = 0;
  bool paused = false;
  uint32_t fail_reason = 0;
  frame::Hello hello{};                        // the other side's HELLO (absent fields zero)
  uint8_t nonce[frame::kNonceBytes] = {};      // with a key: the nonce this side sent on this connection
  uint8_t auth_mac[frame::kMacBytes] = {};     // acceptor with a key: the initiator's AUTH

  Pump pump(const ReceiveEnv& env);
  // Bytes read from the socket and not parsed yet (behind a HELLO, while the lane waited for its sibling).
  bool hasStaged() const { return wpos_ > rpos_; }

 private:
  enum class Parse : uint8_t { NEED_BYTES, DIRECT, HELLO, AUTH, PAUSED, FAILED };
  Parse parseStaged(const ReceiveEnv& env);
  uint32_t checkHeader(const uint8_t* at, uint64_t available, const ReceiveEnv& env, const Grant** grant);
  bool complete(const ReceiveEnv& env, const frame::Header& h, const Grant& g);
  Pump failed(uint32_t reason) { fail_reason = reason; return Pump::FAILED; }
  Pump endOfStream(int err);

  std::unique_ptr<uint8_t[]> buf_;
  uint64_t cap_ = 0, rpos_ = 0, wpos_ = 0;

  // A large data frame being read straight into the arena.
  uint8_t* direct_dst_ = nullptr;
  uint64_t direct_left_ = 0;
  frame::Header direct_header_{};
  Grant direct_grant_{};

  // After a direct frame the next one is often large too: read only its header first, so its payload
  // goes straight into the arena instead of through the staging buffer.
  bool header_first_ = false;

  HeldCompletion held_;  // a completion waiting for room in its ring
  GrantCopy grants_;     // the poller's copy of peer->grants
};

}  // namespace squall
