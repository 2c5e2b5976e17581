// The kernels module: the predicate worker's hot predicates over the SST (DESIGN.md §1, §3, §4), compiled
// to build/wasm/kernels.wasm and loaded by ts/kernels/kernels.ts.
//
// It imports the member's arena as its memory ("env.memory", shared) and is instantiated once per worker
// over the same bytes, so it must hold no state of its own: no data segments (an active segment would be
// copied into the arena again by every instantiation), no globals that change, no heap (stub runtime, and
// nothing here allocates). test/kernels.test.ts checks the built binary for data segments.
//
// JS → wasm calls pass numbers only (u32 offsets and counts, f64 values) and get f64 or u32 back; never
// i64, which would make JavaScript allocate a BigInt on every call. Exported u32 results reach JavaScript
// as signed 32-bit integers: read them with `>>> 0` where they may exceed 2^31.

import { MEMORY_MAP_HASH } from './generated/memory-map';

export { minI64, maxI64, countAtLeastI64, orU8, orU8Array, receivePrefix } from './reduce';
export { heartbeatScan, heardWithin } from './heartbeat';
export { shardReceipt, shardNullTarget, shardMinI64, shardMinVersion } from './shard';
export * from './membership';
export * from './schedules';

/** The memory map this module was built against; the loader refuses a module from another build. */
export function memoryMapHash(): u32 {
  return MEMORY_MAP_HASH;
}
