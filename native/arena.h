// The arena as the fabric sees it: a base pointer and a size, fixed for the arena's life (the
// WebAssembly.Memory is created with initial = maximum, so it never moves). The owning JS env keeps the
// memory alive while the fabric runs (see registry.cc).

#pragma once
#include <cstdint>

#include "generated/memory_map.h"
#include "generated/status.h"

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

// Why an arena is refused at create(): ArenaCheck (generated/status.h); the TS wrapper turns each into an
// ArenaError or BuildError.
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
