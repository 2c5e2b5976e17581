// The arena as the fabric sees it: a base pointer and a size, fixed for the arena's life (the
// WebAssembly.Memory is created with initial = maximum, so it never moves). The owning JS env keeps the
// memory alive while the fabric runs (see registry.cc).

#pragma once
#include <cstdint>

#include "generated/memory_map.h"

namespace squall {

struct ArenaView {
  uint8_t* base = nullptr;
  uint64_t bytes = 0;

  // [offset, offset+length) lies inside the arena; written so that it cannot overflow.
  bool contains(uint64_t offset, uint64_t length) const {
    return offset <= bytes && length <= bytes - offset;
  }

  uint32_t* word(uint32_t offset) const { return reinterpret_cast<uint32_t*>(base + offset); }
};

// Why an arena was refused at create(); the TS wrapper turns each into an ArenaError or BuildError.
enum class ArenaCheck : int {
  OK = 0,
  TOO_SMALL = -12,   // smaller than the fixed regions
  BAD_MAGIC = -13,   // no live arena header
  BAD_HASH = -14,    // made by a build with another memory map
  BAD_SIZE = -15,    // the header's size is not the size of the view we were handed
};

inline ArenaCheck checkArena(const ArenaView& arena) {
  namespace m = map;
  if (arena.bytes < m::DYNAMIC_BASE) return ArenaCheck::TOO_SMALL;
  const uint8_t* h = arena.base + m::HEADER_OFFSET;
  uint32_t magic = __atomic_load_n(reinterpret_cast<const uint32_t*>(h + m::HEADER_MAGIC), __ATOMIC_ACQUIRE);
  if (magic != m::ARENA_MAGIC) return ArenaCheck::BAD_MAGIC;
  uint32_t version = *reinterpret_cast<const uint32_t*>(h + m::HEADER_VERSION);
  uint32_t hash = *reinterpret_cast<const uint32_t*>(h + m::HEADER_HASH);
  if (hash != m::MEMORY_MAP_HASH || version != m::ARENA_VERSION) return ArenaCheck::BAD_HASH;
  uint64_t size = *reinterpret_cast<const uint64_t*>(h + m::HEADER_ARENA_BYTES);
  if (size != arena.bytes) return ArenaCheck::BAD_SIZE;
  return ArenaCheck::OK;
}

}  // namespace squall
