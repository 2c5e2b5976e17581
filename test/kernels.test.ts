// The WebAssembly kernels (assembly/) against their plain-TypeScript reference (ts/kernels/reference.ts),
// on random tables in a real arena, plus the properties the loader and the workers rely on: no data
// segments, a stale build is refused, and two workers over one arena see each other's writes.
//
// Random cases come from one seed, printed with any failure; rerun it with SQUALL_TEST_SEED=<seed>.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prng, seededTest } from './support/random.js';
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../ts/arena.js';
import { ArenaError, BuildError } from '../ts/errors.js';
import * as map from '../ts/generated/memory-map.js';
import {
  compileKernels, instantiateKernels, kernelsWasmPath, loadKernels, type Kernels,
} from '../ts/kernels/kernels.js';
import { referenceKernels } from '../ts/kernels/reference.js';

// ---------------------------------------------------------------------------------------------- worker side

interface WorkerCall { op: keyof Kernels; args: number[] }

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'kernels-worker') {
  const kernels = loadKernels((workerData as { memory: WebAssembly.Memory }).memory);
  parentPort!.on('message', ({ op, args }: WorkerCall) => {
    parentPort!.postMessage((kernels[op] as (...a: number[]) => number)(...args));
  });
} else {
  defineTests();
  test.run();
}

// ---------------------------------------------------------------------------------------------- main side

function defineTests(): void {
  const seed = Number(process.env['SQUALL_TEST_SEED'] ?? (Date.now() % 2 ** 31));
  const arena = Arena.create({ memberId: 1, bytes: 8 << 20 });
  const wasm = loadKernels(arena.memory);
  const ref = referenceKernels(arena.memory);
  const { u8, i64, f64 } = arena;

  const LIVE = map.LIVE_ROWS_OFFSET;
  const VOTERS = map.VOTER_ROWS_OFFSET;
  const TABLE = map.DYNAMIC_BASE; // up to 1024 rows × 256 bytes
  const FLAGS_TABLE = map.DYNAMIC_BASE + (1 << 20); // up to 1024 rows × ~1100 bytes
  const REF_OUT = map.DYNAMIC_BASE + (3 << 20); // the reference's copy of outputs and heartbeat state
  const REF_SEEN = REF_OUT + 8192;
  const REF_CHANGED = REF_SEEN + 8192;
  const REF_STALE = REF_CHANGED + 8192;

  const seeded = (name: string, body: (rand: () => number) => void) => seededTest(test, seed, name, body);

  const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

  /** Row counts from 1 to 1024, small ones (the common case) most often. */
  function rowCount(rand: () => number): number {
    return pick(rand, [1, 2, 3, int(rand, 1, 16), int(rand, 1, 64), int(rand, 1, 1024), 1024]);
  }

  /** A random i64: the initial −1, small and negative numbers, values near ±2^53, anything at all. */
  function randomI64(rand: () => number): bigint {
    switch (int(rand, 0, 5)) {
      case 0: return -1n;
      case 1: return BigInt(int(rand, -1000, 1000));
      case 2: return BigInt(int(rand, 0, 2 ** 30)) * 1024n;
      case 3: return (rand() < 0.5 ? -1n : 1n) * (2n ** 53n - BigInt(int(rand, 0, 4)));
      case 4: return BigInt.asIntN(64, (BigInt(int(rand, 0, 2 ** 32 - 1)) << 32n) | BigInt(int(rand, 0, 2 ** 32 - 1)));
      default: return pick(rand, [-(2n ** 63n), 2n ** 63n - 1n, 0n]);
    }
  }

  /** Fills the live mask for `n` rows: all, none, or a random share; any non-zero byte means live. */
  function randomLive(rand: () => number, n: number): void {
    const share = pick(rand, [0, 0.05, 0.5, 0.95, 1, 1]);
    const anyByte = rand() < 0.3;
    for (let r = 0; r < n; r++) u8[LIVE + r] = rand() < share ? (anyByte ? int(rand, 1, 255) : 1) : 0;
  }

  interface I64Table { n: number; stride: number; col: number }

  function randomI64Table(rand: () => number): I64Table {
    const n = rowCount(rand);
    const stride = 8 * int(rand, 1, 32);
    const col = 8 * int(rand, 0, stride / 8 - 1);
    const shared = rand() < 0.2 ? randomI64(rand) : undefined; // many equal values
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < stride; c += 8) i64[(TABLE + r * stride + c) / 8] = randomI64(rand);
      if (shared !== undefined && rand() < 0.7) i64[(TABLE + r * stride + col) / 8] = shared;
    }
    randomLive(rand, n);
    return { n, stride, col };
  }

  // -------------------------------------------------------------------------------------- reductions

  seeded('minI64 and maxI64: wasm equals the reference on 400 random tables (1..1024 rows)', (rand) => {
    for (let iter = 0; iter < 400; iter++) {
      const { n, stride, col } = randomI64Table(rand);
      const where = `case ${iter}: n=${n} stride=${stride} col=${col}`;
      assert.is(wasm.minI64(TABLE, stride, n, col, LIVE), ref.minI64(TABLE, stride, n, col, LIVE), `min, ${where}`);
      assert.is(wasm.maxI64(TABLE, stride, n, col, LIVE), ref.maxI64(TABLE, stride, n, col, LIVE), `max, ${where}`);
    }
  });

  seeded('countAtLeastI64: wasm equals the reference for thresholds at, between and beyond the values', (rand) => {
    for (let iter = 0; iter < 400; iter++) {
      const { n, stride, col } = randomI64Table(rand);
      const sample = Number(i64[(TABLE + int(rand, 0, n - 1) * stride + col) / 8]!);
      const thresholds = [sample, sample + 0.5, sample - 0.5, sample + 1, -1, 0, rand() * 2e3 - 1e3,
        NaN, Infinity, -Infinity, 2 ** 63, -(2 ** 63), 2 ** 64, -(2 ** 64), 2 ** 53, -(2 ** 53)];
      for (const t of thresholds) {
        assert.is(
          wasm.countAtLeastI64(TABLE, stride, n, col, LIVE, t), ref.countAtLeastI64(TABLE, stride, n, col, LIVE, t),
          `case ${iter}: n=${n} stride=${stride} col=${col} threshold=${t}`);
      }
    }
  });

  test('countAtLeastI64 compares exactly: fractional thresholds round up, NaN matches nothing', () => {
    const values = [-1n, 0n, 5n, 2n ** 53n + 1n];
    values.forEach((v, r) => { i64[(TABLE + r * 8) / 8] = v; u8[LIVE + r] = 1; });
    for (const k of [wasm, ref]) {
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, 0), 3);
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, -0.5), 3);
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, 4.01), 2);
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, 2 ** 53), 1); // 2^53+1 ≥ 2^53, though both are 2^53 as f64
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, NaN), 0);
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, -Infinity), 4);
      assert.is(k.countAtLeastI64(TABLE, 8, 4, 0, LIVE, Infinity), 0);
    }
  });

  seeded('orU8: wasm equals the reference on 400 random tables, for 0/1 flags and any bytes', (rand) => {
    for (let iter = 0; iter < 400; iter++) {
      const n = rowCount(rand);
      const stride = int(rand, 1, 64);
      const col = int(rand, 0, stride - 1);
      const density = pick(rand, [0, 0.01, 0.3]);
      const anyByte = rand() < 0.3;
      for (let r = 0; r < n; r++) {
        u8[TABLE + r * stride + col] = rand() < density ? (anyByte ? int(rand, 1, 255) : 1) : 0;
      }
      randomLive(rand, n);
      assert.is(
        wasm.orU8(TABLE, stride, n, col, LIVE), ref.orU8(TABLE, stride, n, col, LIVE),
        `case ${iter}: n=${n} stride=${stride} col=${col}`);
    }
  });

  seeded('orU8Array: wasm equals the reference, output bytes and count, for 1..1024 flags per row', (rand) => {
    const wasmOut = map.KERNEL_SCRATCH_OFFSET;
    for (let iter = 0; iter < 300; iter++) {
      const n = rowCount(rand);
      const count = pick(rand, [1, 7, 8, 9, 16, n, int(rand, 1, 1024)]);
      const stride = count + int(rand, 0, 13); // odd strides: the eight-at-a-time loads are unaligned
      const col = int(rand, 0, stride - count);
      const density = pick(rand, [0, 0.001, 0.02, 0.5]);
      for (let b = 0; b < n * stride; b++) {
        u8[FLAGS_TABLE + b] = rand() < density ? (rand() < 0.3 ? int(rand, 1, 255) : 1) : 0;
      }
      randomLive(rand, n);
      u8.fill(0xee, wasmOut, wasmOut + count + 8); // stale bytes must be overwritten, and nothing past count
      const where = `case ${iter}: n=${n} count=${count} stride=${stride} col=${col}`;
      assert.is(wasm.orU8Array(FLAGS_TABLE, stride, n, col, count, LIVE, wasmOut),
        ref.orU8Array(FLAGS_TABLE, stride, n, col, count, LIVE, REF_OUT), where);
      assert.equal(u8.subarray(wasmOut, wasmOut + count), u8.subarray(REF_OUT, REF_OUT + count), where);
      assert.is(u8[wasmOut + count], 0xee, `${where}: wrote past count`);
    }
  });

  test('no live rows: min +Infinity, max −Infinity, counts and ORs 0', () => {
    for (let r = 0; r < 8; r++) { i64[(TABLE + r * 8) / 8] = BigInt(r); u8[TABLE + r] = 1; u8[LIVE + r] = 0; }
    for (const k of [wasm, ref]) {
      assert.is(k.minI64(TABLE, 8, 8, 0, LIVE), Infinity);
      assert.is(k.maxI64(TABLE, 8, 8, 0, LIVE), -Infinity);
      assert.is(k.countAtLeastI64(TABLE, 8, 8, 0, LIVE, -Infinity), 0);
      assert.is(k.orU8(TABLE, 1, 8, 0, LIVE), 0);
      assert.is(k.orU8Array(TABLE, 8, 8, 0, 8, LIVE, map.KERNEL_SCRATCH_OFFSET), 0);
      assert.equal(
        [...u8.subarray(map.KERNEL_SCRATCH_OFFSET, map.KERNEL_SCRATCH_OFFSET + 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
      // zero rows is the same as no live rows
      assert.is(k.minI64(TABLE, 8, 0, 0, LIVE), Infinity);
      assert.is(k.orU8Array(TABLE, 8, 0, 0, 8, LIVE, map.KERNEL_SCRATCH_OFFSET), 0);
    }
  });

  test('one live row: its own value, −1 included', () => {
    i64[TABLE / 8] = -1n;
    u8[LIVE] = 1;
    for (const k of [wasm, ref]) {
      assert.is(k.minI64(TABLE, 8, 1, 0, LIVE), -1);
      assert.is(k.maxI64(TABLE, 8, 1, 0, LIVE), -1);
      assert.is(k.countAtLeastI64(TABLE, 8, 1, 0, LIVE, -1), 1);
    }
  });

  // ---------------------------------------------------------------------------------- receive prefix

  function writeNumReceived(values: readonly bigint[]): void {
    values.forEach((v, r) => { i64[TABLE / 8 + r] = v; });
  }

  test('receivePrefix follows DESIGN.md §4 on hand-checked rows', () => {
    const cases: [bigint[], number][] = [
      [[-1n], -1], // senders = 1: nothing yet
      [[7n], 7], // senders = 1: seq = index
      [[-1n, -1n, -1n], -1],
      [[0n, -1n, -1n], 0], // first message of sender 0 is seq 0
      [[0n, 0n, -1n], 1],
      [[5n, 4n, 4n], 15], // seq 15 = sender 0's index 5 arrived; 16 = sender 1's index 5 not yet
      [[4n, 4n, 4n], 14],
      [[4n, 9n, 3n], 13], // sender 2 lags at index 3 (seq 11); seqs 12 and 13 (index 4 of senders 0, 1) arrived
    ];
    for (const [values, expected] of cases) {
      writeNumReceived(values);
      for (const k of [wasm, ref]) assert.is(k.receivePrefix(TABLE, values.length), expected, `num_received ${values}`);
    }
    assert.is(wasm.receivePrefix(TABLE, 0), -1);
  });

  seeded('receivePrefix: wasm equals the reference for 1..1024 senders', (rand) => {
    for (let iter = 0; iter < 500; iter++) {
      const senders = rowCount(rand);
      const base = pick(rand, [-1, 0, int(rand, 0, 1000), int(rand, 0, 2 ** 40)]);
      const values = Array.from({ length: senders }, () =>
        rand() < 0.1 ? -1n : rand() < 0.05 ? randomI64(rand) : BigInt(base + int(rand, 0, pick(rand, [0, 1, 3, 100]))));
      writeNumReceived(values);
      assert.is(
        wasm.receivePrefix(TABLE, senders), ref.receivePrefix(TABLE, senders), `case ${iter}: senders=${senders}`);
    }
  });

  // ---------------------------------------------------------------------------------------- heartbeats

  interface HeartbeatState { seen: number; changed: number; stale: number }
  const wasmState: HeartbeatState = {
    seen: map.HEARTBEAT_SEEN_OFFSET, changed: map.HEARTBEAT_CHANGED_MS_OFFSET, stale: map.STALE_ROWS_OFFSET,
  };
  const refState: HeartbeatState = { seen: REF_SEEN, changed: REF_CHANGED, stale: REF_STALE };

  function resetHeartbeats(state: HeartbeatState, n: number, startMs: number): void {
    i64.fill(0n, state.seen / 8, state.seen / 8 + n);
    f64.fill(startMs, state.changed / 8, state.changed / 8 + n);
    u8.fill(0, state.stale, state.stale + n);
  }

  const HB_STRIDE = 24;
  const HB_COL = 8;
  function setHeartbeat(r: number, value: bigint): void {
    Atomics.store(i64, (TABLE + r * HB_STRIDE + HB_COL) / 8, value);
  }
  function scan(k: Kernels, state: HeartbeatState, n: number, self: number, nowMs: number, timeoutMs = 100): number {
    return k.heartbeatScan(
      TABLE, HB_STRIDE, n, HB_COL, LIVE, state.seen, state.changed, state.stale, self, nowMs, timeoutMs);
  }
  const staleRows = (state: HeartbeatState, n: number): number[] => [...u8.subarray(state.stale, state.stale + n)];

  test('heartbeatScan: a stalled heartbeat turns stale after the timeout, and fresh when it moves again', () => {
    const n = 3;
    for (const [k, state] of [[wasm, wasmState], [ref, refState]] as const) {
      resetHeartbeats(state, n, 0);
      for (let r = 0; r < n; r++) { u8[LIVE + r] = 1; setHeartbeat(r, 0n); }
      assert.is(scan(k, state, n, 0, 50), 0, 'within the timeout');
      assert.is(scan(k, state, n, 0, 100), 0, 'exactly the timeout is not past it');
      assert.is(scan(k, state, n, 0, 150), 2, 'rows 1 and 2 stalled; never row 0, ourselves');
      assert.equal(staleRows(state, n), [0, 1, 1]);
      setHeartbeat(1, 1n);
      assert.is(scan(k, state, n, 0, 160), 1, 'row 1 moved');
      assert.equal(staleRows(state, n), [0, 0, 1]);
      assert.is(f64[state.changed / 8 + 1], 160);
      assert.is(scan(k, state, n, 0, 260), 1, 'row 1 has been still for 100 ms: not yet');
      assert.is(scan(k, state, n, 0, 261), 2, 'row 1 has been still for 101 ms');
      u8[LIVE + 2] = 0;
      assert.is(scan(k, state, n, 0, 270), 1, 'a dead row is not counted');
      assert.is(u8[state.stale + 2], 1, 'and not touched');
      setHeartbeat(2, 2n ** 63n - 1n); // u64 values beyond 2^53 compare exactly
      setHeartbeat(1, -1n);
      setHeartbeat(0, 3n); // row 0 was ourselves until now
      u8[LIVE + 2] = 1;
      assert.is(scan(k, state, n, 7, 280), 0, 'selfRow ≥ nRows scans every row; both moved');
      assert.is(i64[state.seen / 8 + 2], 2n ** 63n - 1n);
    }
  });

  seeded('heartbeatScan: wasm equals the reference over 40 scans as heartbeats advance and stall', (rand) => {
    for (let iter = 0; iter < 60; iter++) {
      const n = rowCount(rand);
      const self = rand() < 0.9 ? int(rand, 0, n - 1) : n + int(rand, 0, 5);
      const timeoutMs = pick(rand, [0, 10, 100]);
      const advanceChance = Array.from({ length: n }, () => pick(rand, [0, 0.1, 0.5, 1]));
      let nowMs = rand() * 1e6;
      resetHeartbeats(wasmState, n, nowMs);
      resetHeartbeats(refState, n, nowMs);
      const heartbeats = Array.from({ length: n }, () => randomI64(rand));
      heartbeats.forEach((hb, r) => setHeartbeat(r, hb));
      randomLive(rand, n);
      for (let step = 0; step < 40; step++) {
        nowMs += pick(rand, [0, 1, 10, 50, 101]);
        for (let r = 0; r < n; r++) {
          if (rand() < advanceChance[r]!) setHeartbeat(r, (heartbeats[r] += 1n));
          if (rand() < 0.01) u8[LIVE + r] = u8[LIVE + r] ? 0 : 1; // members come and go
        }
        const where = `case ${iter} step ${step}: n=${n} self=${self} timeout=${timeoutMs}`;
        assert.is(
          scan(wasm, wasmState, n, self, nowMs, timeoutMs), scan(ref, refState, n, self, nowMs, timeoutMs), where);
        assert.equal(staleRows(wasmState, n), staleRows(refState, n), `stale, ${where}`);
        assert.equal(
          [...i64.subarray(wasmState.seen / 8, wasmState.seen / 8 + n)],
          [...i64.subarray(refState.seen / 8, refState.seen / 8 + n)], `seen, ${where}`);
        assert.equal(
          [...f64.subarray(wasmState.changed / 8, wasmState.changed / 8 + n)],
          [...f64.subarray(refState.changed / 8, refState.changed / 8 + n)], `changedMs, ${where}`);
        const windowMs = pick(rand, [0, 10, 50, 1000]);
        for (let r = 0; r < n; r++) u8[VOTERS + r] = rand() < 0.8 ? 1 : 0;
        assert.is(wasm.heardWithin(n, LIVE, VOTERS, wasmState.changed, self, nowMs, windowMs),
          ref.heardWithin(n, LIVE, VOTERS, refState.changed, self, nowMs, windowMs), `heardWithin, ${where}`);
      }
    }
  });

  test('heardWithin: counts the live voters whose heartbeat changed within the window, never itself', () => {
    const n = 4;
    for (const [k, state] of [[wasm, wasmState], [ref, refState]] as const) {
      resetHeartbeats(state, n, 0);
      for (let r = 0; r < n; r++) { u8[LIVE + r] = 1; u8[VOTERS + r] = 1; setHeartbeat(r, 0n); }
      const heard = (self: number, nowMs: number) => k.heardWithin(n, LIVE, VOTERS, state.changed, self, nowMs, 50);
      assert.is(heard(0, 50), 3, 'everyone at the edge of the window');
      assert.is(heard(0, 51), 0, 'nobody heard for 51 ms');
      setHeartbeat(2, 1n);
      setHeartbeat(0, 1n);
      scan(k, state, n, 1, 40);
      assert.is(heard(1, 80), 2, 'rows 0 and 2 moved at 40');
      assert.is(heard(0, 80), 1, 'row 0 is ourselves: only row 2');
      u8[VOTERS + 2] = 0;
      assert.is(heard(0, 80), 0, 'a row that does not vote is not counted');
      u8[VOTERS + 2] = 1;
      u8[LIVE + 2] = 0;
      assert.is(heard(0, 80), 0, 'a dead row is not counted');
      assert.is(heard(9, 80), 1, 'selfRow ≥ nRows counts every live voter');
    }
  });

  // ------------------------------------------------------------------------------------ the build itself

  /** Section ids of a wasm binary, in order. */
  function sectionIds(bytes: Uint8Array): number[] {
    const ids: number[] = [];
    let at = 8; // magic and version
    while (at < bytes.length) {
      const id = bytes[at++]!;
      let size = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[at++]!;
        size += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
      }
      ids.push(id);
      at += size;
    }
    assert.is(at, bytes.length, 'sections end at the end of the file');
    return ids;
  }

  test('the built modules have no data segments, no start function, and import only the arena', () => {
    const DATA = 11, DATA_COUNT = 12, START = 8;
    for (const debug of [false, true]) {
      const path = kernelsWasmPath(debug);
      const ids = sectionIds(readFileSync(path));
      assert.ok(!ids.includes(DATA) && !ids.includes(DATA_COUNT), `${path} has a data section`);
      assert.ok(!ids.includes(START), `${path} has a start function`);
      assert.equal(
        WebAssembly.Module.imports(compileKernels(path)), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    }
  });

  seeded('the debug build computes the same results', (rand) => {
    const debug = instantiateKernels(compileKernels(kernelsWasmPath(true)), arena.memory);
    for (let iter = 0; iter < 50; iter++) {
      const { n, stride, col } = randomI64Table(rand);
      assert.is(debug.minI64(TABLE, stride, n, col, LIVE), ref.minI64(TABLE, stride, n, col, LIVE));
      assert.is(debug.receivePrefix(TABLE, n), wasm.receivePrefix(TABLE, n));
    }
  });

  test('the module is compiled once per thread', () => {
    assert.is(compileKernels(), compileKernels());
  });

  /** A minimal module importing a shared env.memory and exporting memoryMapHash() = `hash`. */
  function fakeKernels(hash: number): WebAssembly.Module {
    const uleb = (n: number): number[] => {
      const out: number[] = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out;
    };
    const sleb = (n: number): number[] => {
      const out: number[] = [];
      for (;;) {
        const b = n & 0x7f; n >>= 7;
        if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; } out.push(b | 0x80);
      }
    };
    const name = (s: string): number[] => [s.length, ...Buffer.from(s)];
    const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
    const body = [0, 0x41, ...sleb(hash | 0), 0x0b];
    return new WebAssembly.Module(new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      ...section(1, [1, 0x60, 0, 1, 0x7f]), // type: () -> i32
      ...section(2, [1, ...name('env'), ...name('memory'), 2, 3, ...uleb(1), ...uleb(65536)]), // shared memory import
      ...section(3, [1, 0]),
      ...section(7, [1, ...name('memoryMapHash'), 0, 0]),
      ...section(10, [1, body.length, ...body]),
    ]));
  }

  test('a module built for another memory map is refused with BuildError', () => {
    assert.throws(() => instantiateKernels(fakeKernels(map.MEMORY_MAP_HASH ^ 1), arena.memory),
      (e: unknown) => e instanceof BuildError && /npm run build:wasm/.test(e.message));
    // the right hash but kernels missing: a stale build too
    assert.throws(() => instantiateKernels(fakeKernels(map.MEMORY_MAP_HASH), arena.memory),
      (e: unknown) => e instanceof BuildError && /lack/.test(e.message));
  });

  test('a missing build asks for npm install; a memory that is not shared asks for the arena', () => {
    assert.throws(() => compileKernels('/nonexistent/build/wasm/kernels.wasm'),
      (e: unknown) => e instanceof BuildError && /npm install/.test(e.message));
    assert.throws(() => loadKernels(new WebAssembly.Memory({ initial: 8, maximum: 8 })),
      (e: unknown) => e instanceof ArenaError);
  });

  // ---------------------------------------------------------------------------------------- two workers

  test('two workers over one arena see each other\'s writes', async () => {
    const workers = [0, 1].map(() =>
      new Worker(new URL(import.meta.url), { workerData: { role: 'kernels-worker', memory: arena.memory } }));
    const call = (w: Worker, op: keyof Kernels, ...args: number[]) => new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.postMessage({ op, args } satisfies WorkerCall);
    });
    try {
      const [a, b] = workers as [Worker, Worker];
      const n = 4;
      const hb = [HB_STRIDE, n, HB_COL, LIVE, wasmState.seen, wasmState.changed, wasmState.stale, 0] as const;
      resetHeartbeats(wasmState, n, 0);
      for (let r = 0; r < n; r++) { u8[LIVE + r] = 1; setHeartbeat(r, 0n); }

      // A marks rows 1..3 stale; B reads A's stale bytes as a one-byte-per-row table.
      assert.is(await call(a, 'heartbeatScan', TABLE, ...hb, 1000, 100), 3);
      assert.is(await call(b, 'orU8', map.STALE_ROWS_OFFSET, 1, n, 0, LIVE), 1);

      // Row 2's heartbeat moves; B records it (seen, changedMs, stale) and A sees B's record.
      setHeartbeat(2, 5n);
      assert.is(await call(b, 'heartbeatScan', TABLE, ...hb, 1010, 100), 2);
      assert.is(await call(a, 'maxI64', map.HEARTBEAT_SEEN_OFFSET, 8, n, 0, LIVE), 5);
      assert.is(await call(a, 'heartbeatScan', TABLE, ...hb, 1100, 100), 2, 'A uses the changedMs B wrote');
      assert.is(await call(a, 'heartbeatScan', TABLE, ...hb, 1111, 100), 3);
      assert.equal(staleRows(wasmState, n), [0, 1, 1, 1]);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
}
