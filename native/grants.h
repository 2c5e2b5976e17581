// The ranges of our arena one peer may write (DESIGN.md §2): its row in our copy of each table (control)
// and the bulk buffers of the groups it belongs to (data). A write must fall entirely inside one range.
//
// JS threads add ranges; the poller checks every incoming frame against them. The poller keeps its own
// copy (GrantCopy) and refreshes it only when `version` moved, so the per-frame check takes no lock.

#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace squall {

enum class GrantKind : uint8_t { DATA = 0, CONTROL = 1 };

struct Grant {
  uint64_t offset;
  uint64_t length;
  GrantKind kind;
  uint8_t ring;  // completion ring for write-with-immediate landing here
  // Writes here are applied but do not ring the doorbell: their reader runs on its own timer (the
  // heartbeat column, scanned every heartbeat interval), so waking it for each one would be wasted.
  bool quiet;
};

class GrantTable {
 public:
  void add(const Grant& g) {
    std::lock_guard<std::mutex> lock(mu_);
    grants_.push_back(g);
    version_.fetch_add(1, std::memory_order_release);
  }

  bool empty() const { return version_.load(std::memory_order_acquire) == 0; }

  // Brings the poller's copy up to date (cheap when nothing changed).
  void refresh(std::vector<Grant>& copy, uint64_t& seen) const {
    uint64_t v = version_.load(std::memory_order_acquire);
    if (v == seen) return;
    std::lock_guard<std::mutex> lock(mu_);
    copy = grants_;
    seen = version_.load(std::memory_order_relaxed);
  }

  // The range that holds all of [offset, offset+length), or nullptr.
  static const Grant* find(const std::vector<Grant>& grants, uint64_t offset, uint64_t length) {
    for (const Grant& g : grants) {
      if (offset >= g.offset && offset - g.offset <= g.length && length <= g.length - (offset - g.offset)) return &g;
    }
    return nullptr;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Grant> grants_;
  std::atomic<uint64_t> version_{0};
};

// The poller's copy of one peer's grants (one per lane's connection), brought up to date before each use.
struct GrantCopy {
  std::vector<Grant> list;
  uint64_t seen = 0;  // the table's version `list` was copied at

  void refresh(const GrantTable& table) { table.refresh(list, seen); }
  // The grant that holds all of [offset, offset+length), or nullptr.
  const Grant* find(const GrantTable& table, uint64_t offset, uint64_t length) {
    refresh(table);
    return GrantTable::find(list, offset, length);
  }
};

}  // namespace squall
