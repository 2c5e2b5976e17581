// How bytes move between the arena and the wire while other threads read and write the same words.
//
// Control ranges (the SST) hold u64 counters that workers read with Atomics.load while the fabric writes
// them, and that a worker may update while the fabric reads them for a push. Both directions therefore go
// through aligned 8-byte atomic accesses: a reader never sees a torn counter. Stores go in ascending address
// order with release semantics, so data written earlier in the frame (or in an earlier frame) is visible
// once a later counter is.

#pragma once
#include <cstdint>
#include <cstring>

namespace squall {

inline bool aligned8(uint64_t offset, uint64_t length) { return ((offset | length) & 7) == 0; }

// Receiver side: applies a control write. `dst` and `length` are 8-byte aligned (checked before).
inline void storeControl(uint8_t* dst, const uint8_t* src, uint64_t length) {
  uint64_t* out = reinterpret_cast<uint64_t*>(dst);
  for (uint64_t i = 0; i < length / 8; i++) {
    uint64_t v;
    std::memcpy(&v, src + i * 8, 8);  // the staging buffer may be unaligned
    __atomic_store_n(out + i, v, __ATOMIC_RELEASE);
  }
}

// Sender side: copies what a write will carry, with 8-byte atomic loads when the range is aligned, so a
// counter that another thread updates meanwhile is copied whole.
inline void snapshot(uint8_t* dst, const uint8_t* src, uint64_t length) {
  if (aligned8(reinterpret_cast<uintptr_t>(src), length)) {
    const uint64_t* in = reinterpret_cast<const uint64_t*>(src);
    for (uint64_t i = 0; i < length / 8; i++) {
      uint64_t v = __atomic_load_n(in + i, __ATOMIC_ACQUIRE);
      std::memcpy(dst + i * 8, &v, 8);
    }
  } else {
    std::memcpy(dst, src, length);
  }
}

}  // namespace squall
