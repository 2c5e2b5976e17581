// The kernels of assembly/ in plain TypeScript, with the same interface (ts/kernels/kernels.ts). They are
// the test oracle for the WebAssembly build and the "plain-JS loop" that bench/scan.ts measures it against.
//
// Form chosen for i64 cells: BigInt64Array with Atomics.load. It is the only way JavaScript can read a
// 64-bit counter in one access: the fabric may store a remote row's counter while we scan it, and reading
// it as two Int32Array halves could pair the high half of one value with the low half of the next (a
// counter crossing 2^32 would read 2^32 too high or too low for one scan). It is also exact over the whole
// i64 range, which is what an oracle needs. The price is a BigInt per cell read, which V8 may allocate —
// that cost is part of what the benchmark shows. Flags and doubles use Uint8Array and Float64Array.
//
// Like the wasm build, every function reads through views made once, over a memory that never grows (the
// arena's initial size is its maximum).

import { MEMORY_MAP_HASH } from '../generated/memory-map.js';
import { slotHeaderAllowed } from '../multicast/slots.js';
import type { Kernels, ShardKernels } from './kernels.js';

const TWO_POW_63 = 2 ** 63;
const I64_MIN = -(2n ** 63n);

function assertI64Column(address: number, rowStride: number): void {
  if (address % 8 !== 0 || rowStride % 8 !== 0) {
    throw new RangeError(`i64 cells must be 8-byte aligned (address ${address}, row stride ${rowStride})`);
  }
}

/** The reference kernels over `memory` (the arena's; it must not grow). */
export function referenceKernels(memory: WebAssembly.Memory): Kernels {
  const buffer = memory.buffer;
  const u8 = new Uint8Array(buffer);
  const i64 = new BigInt64Array(buffer);
  const f64 = new Float64Array(buffer);

  return {
    memoryMapHash(): number {
      return MEMORY_MAP_HASH;
    },

    minI64(tableBase, rowStride, nRows, col, liveBase) {
      assertI64Column(tableBase + col, rowStride);
      const step = rowStride >>> 3;
      let lowest = 0n;
      let anyLive = false;
      for (let r = 0, i = (tableBase + col) >>> 3; r < nRows; r++, i += step) {
        if (u8[liveBase + r] === 0) continue;
        const v = Atomics.load(i64, i);
        if (!anyLive || v < lowest) lowest = v;
        anyLive = true;
      }
      return anyLive ? Number(lowest) : Infinity;
    },

    maxI64(tableBase, rowStride, nRows, col, liveBase) {
      assertI64Column(tableBase + col, rowStride);
      const step = rowStride >>> 3;
      let highest = 0n;
      let anyLive = false;
      for (let r = 0, i = (tableBase + col) >>> 3; r < nRows; r++, i += step) {
        if (u8[liveBase + r] === 0) continue;
        const v = Atomics.load(i64, i);
        if (!anyLive || v > highest) highest = v;
        anyLive = true;
      }
      return anyLive ? Number(highest) : -Infinity;
    },

    countAtLeastI64(tableBase, rowStride, nRows, col, liveBase, threshold) {
      assertI64Column(tableBase + col, rowStride);
      if (Number.isNaN(threshold) || threshold >= TWO_POW_63) return 0;
      const least = threshold <= -TWO_POW_63 ? I64_MIN : BigInt(Math.ceil(threshold));
      const step = rowStride >>> 3;
      let count = 0;
      for (let r = 0, i = (tableBase + col) >>> 3; r < nRows; r++, i += step) {
        if (u8[liveBase + r] !== 0 && Atomics.load(i64, i) >= least) count++;
      }
      return count;
    },

    orU8(tableBase, rowStride, nRows, col, liveBase) {
      let flags = 0;
      for (let r = 0, at = tableBase + col; r < nRows; r++, at += rowStride) {
        if (u8[liveBase + r] !== 0) flags |= u8[at]!;
      }
      return flags;
    },

    orU8Array(tableBase, rowStride, nRows, col, count, liveBase, outBase) {
      u8.fill(0, outBase, outBase + count);
      for (let r = 0, row = tableBase + col; r < nRows; r++, row += rowStride) {
        if (u8[liveBase + r] === 0) continue;
        for (let j = 0; j < count; j++) u8[outBase + j] |= u8[row + j]!;
      }
      let setCount = 0;
      for (let j = 0; j < count; j++) if (u8[outBase + j] !== 0) setCount++;
      return setCount;
    },

    receivePrefix(numReceivedBase, senders) {
      if (senders === 0) return -1;
      assertI64Column(numReceivedBase, 0);
      const base = numReceivedBase >>> 3;
      let lowest = Atomics.load(i64, base);
      let firstLowest = 0;
      for (let r = 1; r < senders; r++) {
        const v = Atomics.load(i64, base + r);
        if (v < lowest) {
          lowest = v;
          firstLowest = r;
        }
      }
      // asIntN: the wasm build computes in i64 and wraps the same way for absurd inputs.
      return Number(BigInt.asIntN(64, (lowest + 1n) * BigInt(senders) + BigInt(firstLowest) - 1n));
    },

    heartbeatScan(
      tableBase, rowStride, nRows, hbCol, liveBase, seenBase, changedMsBase, staleBase, selfRow, nowMs, timeoutMs
    ) {
      assertI64Column(tableBase + hbCol, rowStride);
      assertI64Column(seenBase, 0);
      assertI64Column(changedMsBase, 0);
      const step = rowStride >>> 3;
      const seen = seenBase >>> 3;
      const changed = changedMsBase >>> 3;
      let staleCount = 0;
      for (let r = 0, i = (tableBase + hbCol) >>> 3; r < nRows; r++, i += step) {
        if (u8[liveBase + r] === 0) continue;
        if (r === selfRow) {
          u8[staleBase + r] = 0;
          continue;
        }
        const heartbeat = Atomics.load(i64, i);
        if (heartbeat !== i64[seen + r]) {
          i64[seen + r] = heartbeat;
          f64[changed + r] = nowMs;
          u8[staleBase + r] = 0;
        } else if (nowMs - f64[changed + r]! > timeoutMs) {
          u8[staleBase + r] = 1;
        }
        if (u8[staleBase + r] !== 0) staleCount++;
      }
      return staleCount;
    },

    heardWithin(nRows, liveBase, voterBase, changedMsBase, selfRow, nowMs, windowMs) {
      assertI64Column(changedMsBase, 0);
      const changed = changedMsBase >>> 3;
      let heard = 0;
      for (let r = 0; r < nRows; r++) {
        const counts = r !== selfRow && u8[liveBase + r] !== 0 && u8[voterBase + r] !== 0;
        if (counts && nowMs - f64[changed + r]! <= windowMs) heard++;
      }
      return heard;
    },
  };
}

/** The shard kernels (assembly/shard.ts) in plain TypeScript, over `memory` (the arena's). */
export function referenceShardKernels(memory: WebAssembly.Memory): ShardKernels {
  const buffer = memory.buffer;
  const u32 = new Uint32Array(buffer);
  const i64 = new BigInt64Array(buffer);
  const cell = (tableBase: number, rowStride: number, row: number, col: number): number => {
    const at = tableBase + row * rowStride + col;
    assertI64Column(at, 0);
    return at >>> 3;
  };
  return {
    shardReceipt: referenceShardReceipt(buffer),

    shardNullTarget(numReceivedBase, senders, selfRank) {
      assertI64Column(numReceivedBase, 0);
      let target = 0n;
      for (let r = 0; r < senders; r++) {
        if (r === selfRank) continue;
        const v = Atomics.load(i64, (numReceivedBase >>> 3) + r);
        if (v < 0n) continue;
        const needed = selfRank < r ? BigInt.asIntN(64, v + 1n) : v;
        if (needed > target) target = needed;
      }
      return Number(target);
    },

    shardMinI64(tableBase, rowStride, col, rowsBase, count, own) {
      let lowest = own;
      for (let i = 0; i < count; i++) {
        const v = Number(Atomics.load(i64, cell(tableBase, rowStride, u32[(rowsBase >>> 2) + i]!, col)));
        if (v < lowest) lowest = v;
      }
      return lowest;
    },

    shardMinVersion(tableBase, rowStride, col, rowsBase, count, ownAt, outAt) {
      assertI64Column(ownAt, 0);
      assertI64Column(outAt, 0);
      let lowest = Atomics.load(i64, ownAt >>> 3);
      for (let i = 0; i < count; i++) {
        const v = Atomics.load(i64, cell(tableBase, rowStride, u32[(rowsBase >>> 2) + i]!, col));
        if (v < lowest) lowest = v;
      }
      if (Atomics.load(i64, outAt >>> 3) === lowest) return 0;
      Atomics.store(i64, outAt >>> 3, lowest);
      return 1;
    },
  };
}

/**
 * A slot's header (ts/multicast/slots.ts: u32 index + 1 lo, hi, length, kind) as the receipt kernel checks it:
 * the index in BigInt (exact over the whole i64 range), the kind's length rule slots.ts's own.
 */
function slotHolds(u32: Uint32Array, at: number, index: bigint, maxPayload: number, maxLargeBytes: number): boolean {
  const w = at >>> 2;
  if (((BigInt(u32[w + 1]!) << 32n) | BigInt(u32[w]!)) !== BigInt.asUintN(64, index + 1n)) return false;
  return slotHeaderAllowed(u32[w + 3]!, u32[w + 2]!, maxPayload, maxLargeBytes);
}

/** The receipt kernel (assembly/shard.ts, shardReceipt) over `buffer`, in BigInt: exact over the whole i64 range. */
function referenceShardReceipt(buffer: ArrayBufferLike): ShardKernels['shardReceipt'] {
  const u8 = new Uint8Array(buffer);
  const u32 = new Uint32Array(buffer);
  const i64 = new BigInt64Array(buffer);
  return (tableBase, rowStride, indexCol, rowsBase, senders, selfRank, ownIndex, numReceivedBase, slotsListBase,
    slotBytes, W, raw, delivered, maxPayload, maxLargeBytes, badBase) => {
    assertI64Column(numReceivedBase, 0);
    let changed = 0, flagged = 0;
    for (let r = 0; r < senders; r++) {
      const at = (numReceivedBase >>> 3) + r;
      const before = Atomics.load(i64, at);
      let now: bigint;
      if (r === selfRank) {
        now = BigInt.asIntN(64, BigInt(ownIndex) - 1n);
      } else {
        if (u8[badBase + r] !== 0) continue;
        const cellAt = tableBase + u32[(rowsBase >>> 2) + r]! * rowStride + indexCol;
        assertI64Column(cellAt, 0);
        const received = BigInt.asIntN(64, Atomics.load(i64, cellAt >>> 3) - 1n);
        if (received === before) continue;
        const limit = BigInt.asIntN(64, (raw !== 0 ? before : BigInt(Math.floor((delivered - r) / senders))) +
          BigInt(W));
        now = before;
        if (received >= before && received <= limit) {
          const slotsAt = u32[(slotsListBase >>> 2) + r]!;
          while (now < received) {
            const index = now + 1n;
            if (!slotHolds(u32, slotsAt + Number(index % BigInt(W)) * slotBytes, index, maxPayload, maxLargeBytes)) {
              break;
            }
            now = index;
          }
        }
        if (now !== received) { // a rule broken: the sender keeps what passed, and is counted no further
          u8[badBase + r] = 1;
          flagged++;
        }
      }
      if (now !== before) {
        Atomics.store(i64, at, now);
        changed++;
      }
    }
    return changed + flagged * 65536;
  };
}
