// Loads the WebAssembly kernels (assembly/, built into dist/wasm/) over a member's arena. The predicate
// worker calls them in its loop; each thread that needs them calls loadKernels once with the arena's memory.
//
// The module is compiled once per thread and cached; every instance imports the same shared memory and
// holds no state of its own (no data segments, no heap), so any number of workers may instantiate it over
// one arena. The returned object is the instance's exports itself: a call goes straight into wasm with no
// wrapper in between.
//
// Numbers only cross the boundary. Offsets and counts are u32 arena byte offsets; i64 counters come back
// as f64, exact while |v| < 2^53. A u32 result arrives as a signed 32-bit integer (wasm i32 → JS), which
// is the same number for every count a table can produce (≤ MAX_MEMBERS).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ArenaError, BuildError } from '../errors.js';
import { MEMORY_MAP_HASH } from '../generated/memory-map.js';
import { MEMBERSHIP_KERNEL_NAMES, type MembershipKernels } from './membership.js';

/**
 * The kernels' calling convention. A table is `nRows` rows of `rowStride` bytes from `tableBase`; a column
 * is a byte offset `col` inside a row; a row takes part only while the u8 at `liveBase + row` is non-zero
 * (LIVE_ROWS). i64 cells are read atomically and must be 8-byte aligned (`tableBase + col` and
 * `rowStride` multiples of 8). ts/kernels/reference.ts implements the same interface in plain TypeScript.
 */
export interface Kernels {
  /** MEMORY_MAP_HASH of the memory map the module was built against (as a signed i32 from wasm). */
  memoryMapHash(): number;
  /** Smallest i64 in column `col` over live rows, as a number; +Infinity when no row is live. */
  minI64(tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number): number;
  /** Largest i64 in column `col` over live rows, as a number; −Infinity when no row is live. */
  maxI64(tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number): number;
  /**
   * How many live rows hold an i64 ≥ `threshold` in column `col`, compared exactly: a fractional threshold
   * rounds up, NaN matches no row, −Infinity every row.
   */
  countAtLeastI64(
    tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number, threshold: number
  ): number;
  /** OR of the u8 column `col` over live rows; 0 when none is live. */
  orU8(tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number): number;
  /**
   * For an array column of `count` u8 flags per row (e.g. `suspected[n]`): writes out[j] = OR over live
   * rows of row[col + j] to the `count` bytes at `outBase`, and returns how many out[j] are non-zero.
   */
  orU8Array(
    tableBase: number, rowStride: number, nRows: number, col: number, count: number, liveBase: number, outBase: number
  ): number;
  /**
   * DESIGN.md §4: given the address of one row's `num_received` (i64 × `senders`), returns
   * seq_num = (m+1)·S + a − 1 with m the smallest entry and a the first sender holding it; −1 when
   * senders = 0. Exact while the result is below 2^53.
   */
  receivePrefix(numReceivedBase: number, senders: number): number;
  /**
   * Heartbeat staleness (DESIGN.md §6). For each live row r ≠ selfRow: if its u64 heartbeat at `hbCol`
   * differs from seen[r] (u64 at `seenBase`), sets seen[r], changedMs[r] = nowMs (f64 at
   * `changedMsBase`) and stale[r] = 0 (u8 at `staleBase`); else if nowMs − changedMs[r] > timeoutMs sets
   * stale[r] = 1. stale[selfRow] is cleared. Returns how many live rows are stale. The caller sets every
   * changedMs[r] to the start time before the first scan.
   */
  heartbeatScan(
    tableBase: number, rowStride: number, nRows: number, hbCol: number, liveBase: number,
    seenBase: number, changedMsBase: number, staleBase: number, selfRow: number, nowMs: number, timeoutMs: number,
  ): number;
  /**
   * How many rows r ≠ selfRow, live (u8 at `liveBase`) and voters (u8 at `voterBase`), have nowMs −
   * changedMs[r] ≤ windowMs (f64 at `changedMsBase`, as heartbeatScan keeps them): the voters this member
   * heard from lately (the predicate worker's quorum gate).
   */
  heardWithin(nRows: number, liveBase: number, voterBase: number, changedMsBase: number, selfRow: number,
    nowMs: number, windowMs: number): number;
}

/**
 * The RDMC schedules, shipped in the same module (DESIGN.md §5; assembly/schedules.ts, typed and validated
 * in ts/rdmc/schedule.ts). Kept apart from Kernels because ts/kernels/reference.ts has no schedules: the
 * schedules' oracle is the simulation in test/rdmc-schedules.test.ts. `algorithm` 0 sequential, 1 chain,
 * 2 binomial tree, 3 binomial pipeline; `n` members (2..4096), rank 0 the sender; `k` blocks (1..2^19).
 */
export interface ScheduleKernels {
  /** Total steps to deliver k blocks, or 0 for arguments out of range. */
  scheduleSteps(algorithm: number, n: number, k: number): number;
  /** What `rank` sends at `step`: `(block << 12) | toRank`, or −1 for nothing. */
  scheduleSend(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** What `rank` receives at `step`: `(block << 12) | fromRank`, or −1 for nothing. */
  scheduleRecv(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** The first step ≥ `step` at which `rank` sends, or −1 when it sends nothing more. */
  scheduleNextSend(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** The first step ≥ `step` at which `rank` receives, or −1 when it receives nothing more. */
  scheduleNextRecv(algorithm: number, n: number, rank: number, k: number, step: number): number;
}

/**
 * The control predicates of a multicast shard (DESIGN.md §4; assembly/shard.ts, called by
 * ts/multicast/control.ts). A shard's rows are a list: `rowsBase` holds `count` u32 row numbers of the
 * table (SHARD_ROWS in the memory map). i64 cells are read and written atomically, 8-byte aligned.
 * ts/kernels/reference.ts's referenceShardKernels is the twin.
 */
export interface ShardKernels {
  /**
   * Receipt: stores numReceived[r] = index_r − 1 (i64 × `senders` at `numReceivedBase`) for every sender rank
   * r whose index and slots pass the checks (ts/multicast/control.ts), index_r read at column `indexCol` of
   * the row at rowsBase + 4r; rank `selfRank` takes `ownIndex` − 1, unchecked. A sender is checked while its
   * flag (u8 at badBase + r) is 0: index_r − 1 may not go below numReceived[r] nor pass ⌊(`delivered` − r)/S⌋
   * + W (`raw` ≠ 0: numReceived[r] + W), and every slot it newly names — at slotsList[r] (u32 at
   * slotsListBase + 4r) + (index mod W)·`slotBytes` — must hold that index with a header slots.ts allows
   * (`maxPayload`, `maxLargeBytes`). One that breaks a rule keeps what passed and is flagged. Returns the
   * entries changed plus (senders newly flagged << 16).
   */
  shardReceipt(
    tableBase: number, rowStride: number, indexCol: number, rowsBase: number, senders: number, selfRank: number,
    ownIndex: number, numReceivedBase: number, slotsListBase: number, slotBytes: number, W: number, raw: number,
    delivered: number, maxPayload: number, maxLargeBytes: number, badBase: number,
  ): number;
  /** The null target of rank `selfRank` over numReceived (i64 × `senders`): see ordering.ts's nullTarget. */
  shardNullTarget(numReceivedBase: number, senders: number, selfRank: number): number;
  /**
   * The smallest of `own` and the i64 at column `col` of the `count` rows listed at `rowsBase` (each
   * compared as a number): stability (seqNum) and the window's minimum (deliveredNum, or raw numReceived).
   */
  shardMinI64(tableBase: number, rowStride: number, col: number, rowsBase: number, count: number, own: number): number;
  /**
   * The persistence frontier, exact in i64: the smallest of the i64 at `ownAt` and at column `col` of the
   * `count` rows listed at `rowsBase`, stored at `outAt`; returns 1 when that changed what `outAt` held.
   */
  shardMinVersion(
    tableBase: number, rowStride: number, col: number, rowsBase: number, count: number, ownAt: number, outAt: number,
  ): number;
}

/** Everything the module exports (the view-change kernels: ./membership.ts). */
export type KernelExports = Kernels & ScheduleKernels & MembershipKernels & ShardKernels;

/** The exports a module must have; a build without one of them is stale. */
export const KERNEL_NAMES = [
  'memoryMapHash', 'minI64', 'maxI64', 'countAtLeastI64', 'orU8', 'orU8Array', 'receivePrefix', 'heartbeatScan',
  'heardWithin',
  'scheduleSteps', 'scheduleSend', 'scheduleRecv', 'scheduleNextSend', 'scheduleNextRecv', ...MEMBERSHIP_KERNEL_NAMES,
  'shardReceipt', 'shardNullTarget', 'shardMinI64', 'shardMinVersion',
] as const satisfies readonly (keyof KernelExports)[];

/**
 * Path of the built module: dist/wasm/kernels.wasm under the package root, or kernels.debug.wasm (with
 * bounds assertions and a source map) when SQUALL_WASM_DEBUG=1. This file runs as
 * dist/ts/kernels/kernels.js, three levels below the root.
 */
export function kernelsWasmPath(debug = process.env['SQUALL_WASM_DEBUG'] === '1'): string {
  const file = debug ? 'kernels.debug.wasm' : 'kernels.wasm';
  return fileURLToPath(new URL(`../../wasm/${file}`, import.meta.url));
}

/** Compiled modules of this thread, by path. A WebAssembly.Module is per thread unless posted across. */
const compiled = new Map<string, WebAssembly.Module>();

/** Compiles (once per thread) the kernels module at `path`. */
export function compileKernels(path: string = kernelsWasmPath()): WebAssembly.Module {
  let module = compiled.get(path);
  if (module !== undefined) return module;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (cause) {
    throw new BuildError(
      `the WebAssembly kernels are not built (${path} is missing): run npm install, or npm run build:wasm`, { cause });
  }
  try {
    module = new WebAssembly.Module(bytes);
  } catch (cause) {
    throw new BuildError(`${path} is not a valid WebAssembly module: rebuild: npm run build:wasm`, { cause });
  }
  compiled.set(path, module);
  return module;
}

/**
 * Instantiates a compiled kernels module over `memory` (synchronously) and checks that it was built
 * against this memory map and exports every kernel.
 */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(module, { env: { memory } });
  } catch (cause) {
    if (cause instanceof WebAssembly.LinkError) {
      throw new ArenaError(
        'the kernels need the arena\'s shared memory: pass Arena.memory (a shared WebAssembly.Memory)', { cause });
    }
    throw cause;
  }
  const exports = instance.exports as Record<string, unknown>;
  const hashOf = exports['memoryMapHash'];
  const hash = typeof hashOf === 'function' ? (hashOf as () => number)() >>> 0 : undefined;
  if (hash !== MEMORY_MAP_HASH) {
    const seen = hash === undefined ? 'none' : `0x${hash.toString(16)}`;
    throw new BuildError(`the WebAssembly kernels were built for another memory map ` +
      `(hash ${seen}, expected 0x${MEMORY_MAP_HASH.toString(16)}): rebuild: npm run build:wasm`);
  }
  for (const name of KERNEL_NAMES) {
    if (typeof exports[name] !== 'function') {
      throw new BuildError(`the WebAssembly kernels lack ${name}: rebuild: npm run build:wasm`);
    }
  }
  return instance.exports as unknown as KernelExports;
}

/** The kernels over `memory` (the arena's), from dist/wasm; see kernelsWasmPath for the debug build. */
export function loadKernels(memory: WebAssembly.Memory): KernelExports {
  return instantiateKernels(compileKernels(), memory);
}
