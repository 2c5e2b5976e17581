// The shard kernels (assembly/shard.ts) against their plain-TypeScript twins (ts/kernels/reference.ts,
// referenceShardKernels) on random tables in a real arena, and against the ordering rules as pure functions
// (ts/multicast/ordering.ts) where the numbers are small. Random cases come from one seed, printed with any
// failure; rerun it with SQUALL_TEST_SEED=<seed>.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededTest, suiteSeed } from './support/random.js';
import { Arena } from '../ts/arena.js';
import * as map from '../ts/generated/memory-map.js';
import { loadKernels } from '../ts/kernels/kernels.js';
import { referenceShardKernels } from '../ts/kernels/reference.js';
import { ConfigError } from '../ts/errors.js';
import { ShardRows } from '../ts/multicast/control.js';
import { nullTarget, receivePrefix } from '../ts/multicast/ordering.js';
import { slotHeaderAllowed, slotIndex, slotKind, slotLength } from '../ts/multicast/slots.js';

/** The slot rule receipt applies, stated with slots.ts's readers: the index expected, and the kind's length. */
const slotHolds = (a: Arena, at: number, index: number, maxPayload: number, maxLarge: number): boolean =>
  slotIndex(a, at) === index && slotHeaderAllowed(slotKind(a, at), slotLength(a, at), maxPayload, maxLarge);

const seed = suiteSeed();
const arena = Arena.create({ memberId: 1, bytes: 8 << 20 });
const wasm = loadKernels(arena.memory);
const ref = referenceShardKernels(arena.memory);
const { i64, u32 } = arena;

const TABLE = map.DYNAMIC_BASE; // up to 1024 rows × 256 bytes
const ROWS = map.SHARD_ROWS_OFFSET;
const OUT_WASM = map.DYNAMIC_BASE + (2 << 20);
const OUT_REF = OUT_WASM + 16384;

const seeded = (name: string, body: (rand: () => number) => void) => seededTest(test, seed, name, body);
const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** Counters as the protocol holds them (−1 first, small, large), and now and then anything at all. */
function counter(rand: () => number): bigint {
  switch (int(rand, 0, 4)) {
    case 0: return -1n;
    case 1: return BigInt(int(rand, -1, 40));
    case 2: return BigInt(int(rand, 0, 2 ** 30)) * 1024n;
    case 3: return 2n ** 53n - BigInt(int(rand, 0, 4));
    default: return pick(rand, [-(2n ** 63n), 2n ** 63n - 1n, 0n]);
  }
}

interface Table { n: number; stride: number; col: number; rows: number[] }

/** A table of n rows with random counters, and a random list of `count` of its rows (repeats allowed). */
function randomTable(rand: () => number, small: boolean): Table {
  const n = pick(rand, [1, 2, 3, int(rand, 1, 16), int(rand, 1, 1024)]);
  const stride = 8 * int(rand, 1, 32);
  const col = 8 * int(rand, 0, stride / 8 - 1);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < stride; c += 8) {
      i64[(TABLE + r * stride + c) / 8] = small ? BigInt(int(rand, -1, 40)) : counter(rand);
    }
  }
  const count = pick(rand, [0, 1, 2, 3, int(rand, 1, 64), int(rand, 1, 1024)]);
  const rows = Array.from({ length: count }, () => int(rand, 0, n - 1));
  rows.forEach((row, i) => { u32[ROWS / 4 + i] = row; });
  return { n, stride, col, rows };
}

/** A receipt case: a shard of S senders, each with W slots, an `index` and our numReceived of it. */
interface ReceiptCase {
  S: number; W: number; slotBytes: number; maxPayload: number; maxLarge: number; raw: boolean; delivered: number;
  stride: number; col: number; selfRank: number; ownIndex: number; before: bigint[]; flagged: boolean[];
}

const SLOTS = map.DYNAMIC_BASE + (3 << 20);
const SLOTS_LIST = ROWS + 4 * 1024;
const BAD = 8192; // the flags, past numReceived at OUT_WASM and OUT_REF

/** Writes slot `index` of sender r (a header the rules allow unless `bad` says how to break it). */
function writeReceiptSlot(c: ReceiptCase, rand: () => number, r: number, index: number, bad: number): void {
  const w = (SLOTS + (r * c.W + index % c.W) * c.slotBytes) / 4;
  const kind = c.maxLarge > 0 ? int(rand, 0, 2) : int(rand, 0, 1);
  const bytes = [int(rand, 0, c.maxPayload), 0, int(rand, c.maxPayload + 1, c.maxLarge)][kind]!;
  const stored = BigInt(index + 1);
  u32[w] = Number(stored & 0xffffffffn);
  u32[w + 1] = Number(stored >> 32n);
  u32[w + 2] = bytes;
  u32[w + 3] = kind;
  switch (bad) {
    case 0: break;
    case 1: u32[w] = (u32[w]! + pick(rand, [1, 0xffffffff, c.W])) >>> 0; break; // another index
    case 2: u32[w + 1] = pick(rand, [1, 0x40000000, 0xffffffff]); break; // the index's high half
    case 3: u32[w + 3] = pick(rand, [3, 4, 0xffffffff]); break; // no such kind
    case 4: u32[w + 3] = 0; u32[w + 2] = c.maxPayload + int(rand, 1, 3); break; // DATA too long
    case 5: u32[w + 3] = 1; u32[w + 2] = int(rand, 1, 0xffffffff); break; // NULL with bytes
    case 6: u32[w + 3] = 2; u32[w + 2] = pick(rand, [0, c.maxPayload, c.maxLarge + 1, 0xffffffff]); break; // LARGE
    default: u32[w + 2] = 0xffffffff; break;
  }
}

/** The most sender r may have used (index − 1) in case `c`: the window's limit. */
function receiptLimit(c: ReceiptCase, r: number): bigint {
  return BigInt.asIntN(64, (c.raw ? c.before[r]! : BigInt(Math.floor((c.delivered - r) / c.S))) + BigInt(c.W));
}

/** A random shard, written into the arena: honest senders, and bad indexes and corrupted slot headers. */
function receiptCase(rand: () => number): ReceiptCase {
  const S = pick(rand, [1, 2, 3, int(rand, 1, 16), int(rand, 1, 64)]), W = int(rand, 1, 8);
  const maxPayload = int(rand, 0, 64), stride = 8 * int(rand, 1, 8);
  const c: ReceiptCase = {
    S, W, slotBytes: 8 * Math.ceil((16 + maxPayload) / 8), maxPayload, maxLarge: rand() < 0.3 ? 0 : maxPayload +
      int(rand, 1, 5000), raw: rand() < 0.3, delivered: 0, stride, col: 8 * int(rand, 0, stride / 8 - 1),
    selfRank: rand() < 0.3 ? 0xffffffff : int(rand, 0, S - 1), ownIndex: int(rand, 0, 100),
    before: [], flagged: [],
  };
  c.delivered = rand() < 0.7 ? 60 * S : int(rand, -1, 200);
  for (let r = 0; r < S; r++) {
    const before = int(rand, -1, 40);
    c.before.push(BigInt(before));
    c.flagged.push(rand() < 0.1);
    const target = before + int(rand, 0, W + 2);
    arena.u8.fill(0, SLOTS + r * W * c.slotBytes, SLOTS + (r + 1) * W * c.slotBytes); // no slot of an earlier case
    for (let index = Math.max(0, target - W + 1 - int(rand, 0, 2)); index <= target; index++) {
      writeReceiptSlot(c, rand, r, index, rand() < 0.06 ? int(rand, 1, 7) : 0);
    }
    const limit = Number(receiptLimit(c, r));
    const index = rand() < 0.8 ? BigInt(target + 1) : pick(rand, [BigInt(before + 1), BigInt(int(rand, -1, before)),
      BigInt(limit + 2), BigInt(limit + 1), 2n ** 62n + BigInt(int(rand, -2, 2)), 2n ** 63n - 1n, -(2n ** 63n)]);
    i64[(TABLE + r * stride + c.col) / 8] = index;
    u32[ROWS / 4 + r] = r;
    u32[SLOTS_LIST / 4 + r] = SLOTS + r * W * c.slotBytes;
  }
  return c;
}

/**
 * What receipt must leave for sender r, by the rules as control.ts states them and slots.ts's slotHolds (the
 * receiver's own check of a header): [numReceived, flagged].
 */
function receiptExpected(c: ReceiptCase, r: number): [bigint, boolean] {
  const before = c.before[r]!;
  if (r === c.selfRank) return [BigInt(c.ownIndex - 1), c.flagged[r]!]; // ours: never checked, flag untouched
  if (c.flagged[r]) return [before, true];
  const received = BigInt.asIntN(64, i64[(TABLE + r * c.stride + c.col) / 8]! - 1n);
  if (received === before) return [before, false];
  if (received < before || received > receiptLimit(c, r)) return [before, true];
  for (let index = Number(before) + 1; index <= Number(received); index++) {
    const at = SLOTS + (r * c.W + index % c.W) * c.slotBytes;
    if (!slotHolds(arena, at, index, c.maxPayload, c.maxLarge)) return [BigInt(index - 1), true];
  }
  return [received, false];
}

seeded('shardReceipt: wasm equals the twin and the checks, on 2000 random shards with bad indexes and slots',
  (rand) => {
  const seen = { flagged: 0, walked: 0 };
  for (let iter = 0; iter < 2000; iter++) {
    const c = receiptCase(rand);
    for (let r = 0; r < c.S; r++) {
      for (const out of [OUT_WASM, OUT_REF]) {
        i64[out / 8 + r] = c.before[r]!;
        arena.u8[out + BAD + r] = c.flagged[r] ? 1 : 0;
      }
    }
    const call = (k: typeof wasm | typeof ref, out: number) => k.shardReceipt(TABLE, c.stride, c.col, ROWS, c.S,
      c.selfRank, c.ownIndex, out, SLOTS_LIST, c.slotBytes, c.W, c.raw ? 1 : 0, c.delivered, c.maxPayload,
      c.maxLarge, out + BAD);
    const where = `case ${iter}: S=${c.S} W=${c.W} raw=${c.raw} delivered=${c.delivered} selfRank=${c.selfRank}`;
    const a = call(wasm, OUT_WASM), b = call(ref, OUT_REF);
    assert.is(a, b, `${where}: the result`);
    let changed = 0, flagged = 0;
    for (let r = 0; r < c.S; r++) {
      const [received, bad] = receiptExpected(c, r);
      assert.is(i64[OUT_WASM / 8 + r], received, `${where}: numReceived[${r}] (wasm)`);
      assert.is(i64[OUT_REF / 8 + r], received, `${where}: numReceived[${r}] (twin)`);
      assert.is(arena.u8[OUT_WASM + BAD + r], bad ? 1 : 0, `${where}: flag ${r} (wasm)`);
      assert.is(arena.u8[OUT_REF + BAD + r], bad ? 1 : 0, `${where}: flag ${r} (twin)`);
      if (received !== c.before[r]) changed++;
      if (bad && !c.flagged[r]) flagged++;
      if (received > c.before[r]! && r !== c.selfRank) seen.walked++;
    }
    seen.flagged += flagged;
    assert.is(a, changed + (flagged << 16), `${where}: entries changed + (newly flagged << 16)`);
  }
  assert.ok(seen.flagged > 500 && seen.walked > 2000, `cases of each kind: ${JSON.stringify(seen)}`);
});

seeded('shardNullTarget: wasm equals the twin, and ordering.ts nullTarget on small counters', (rand) => {
  for (let iter = 0; iter < 1000; iter++) {
    const S = pick(rand, [1, 2, 3, int(rand, 1, 16), int(rand, 1, 1024)]);
    const small = rand() < 0.7;
    const values: number[] = [];
    for (let r = 0; r < S; r++) {
      const v = small ? BigInt(int(rand, -1, 50)) : counter(rand);
      i64[OUT_WASM / 8 + r] = v;
      values.push(Number(v));
    }
    const selfRank = int(rand, 0, S - 1);
    const where = `case ${iter}: S=${S} selfRank=${selfRank}`;
    const a = wasm.shardNullTarget(OUT_WASM, S, selfRank);
    assert.is(a, ref.shardNullTarget(OUT_WASM, S, selfRank), where);
    if (small) assert.is(a, nullTarget(selfRank, values), `${where}: the ordering rule`);
  }
});

seeded('shardMinI64: wasm equals the twin over row lists of 0..1024 rows, with and without own', (rand) => {
  for (let iter = 0; iter < 400; iter++) {
    const { stride, col, rows } = randomTable(rand, rand() < 0.5);
    const own = pick(rand, [Infinity, -1, int(rand, -1, 40), 2 ** 53]);
    const where = `case ${iter}: rows=${rows.length} stride=${stride} col=${col} own=${own}`;
    const a = wasm.shardMinI64(TABLE, stride, col, ROWS, rows.length, own);
    assert.is(a, ref.shardMinI64(TABLE, stride, col, ROWS, rows.length, own), where);
    const values = rows.map((row) => Number(i64[(TABLE + row * stride + col) / 8]!));
    assert.is(a, Math.min(own, ...values), `${where}: the minimum`);
  }
});

/** A version as a persistent subgroup writes it ((vid << 32) | seq), −1n, or an extreme i64. */
function version(rand: () => number): bigint {
  switch (int(rand, 0, 3)) {
    case 0: return -1n;
    case 1: return (BigInt(int(rand, 0, 2 ** 21 + 8)) << 32n) | BigInt(int(rand, 0, 2 ** 31));
    case 2: return (BigInt(int(rand, 2 ** 21, 2 ** 31 - 1)) << 32n) + BigInt(int(rand, 0, 3)); // past 2^53
    default: return pick(rand, [-(2n ** 63n), 2n ** 63n - 1n, 0n]);
  }
}

seeded('shardMinVersion: wasm equals the twin and the exact i64 minimum, past 2^53 too; says when it changed',
  (rand) => {
  for (let iter = 0; iter < 400; iter++) {
    const { stride, col, rows } = randomTable(rand, true);
    for (const row of new Set(rows)) i64[(TABLE + row * stride + col) / 8] = version(rand);
    const own = version(rand), before = rand() < 0.3 ? version(rand) : -1n;
    const ownAt = OUT_WASM + 8192;
    i64[ownAt / 8] = own;
    i64[OUT_WASM / 8] = before;
    i64[OUT_REF / 8] = before;
    const where = `case ${iter}: rows=${rows.length} own=${own} before=${before}`;
    const changed = wasm.shardMinVersion(TABLE, stride, col, ROWS, rows.length, ownAt, OUT_WASM);
    assert.is(changed, ref.shardMinVersion(TABLE, stride, col, ROWS, rows.length, ownAt, OUT_REF), where);
    const exact = rows.reduce((m, row) => {
      const v = i64[(TABLE + row * stride + col) / 8]!;
      return v < m ? v : m;
    }, own);
    assert.is(i64[OUT_WASM / 8], exact, `${where}: the minimum, exact`);
    assert.is(i64[OUT_REF / 8], exact, `${where}: the twin's minimum`);
    assert.is(changed, exact === before ? 0 : 1, `${where}: changed`);
  }
});

seeded('receivePrefix over numReceived = index − 1 gives ordering.ts receivePrefix on small counters', (rand) => {
  for (let iter = 0; iter < 400; iter++) {
    const { stride, col, rows } = randomTable(rand, true);
    const S = rows.length;
    if (S === 0) continue;
    const numReceived = rows.map((row) => Number(i64[(TABLE + row * stride + col) / 8]!) - 1);
    numReceived.forEach((v, r) => { i64[OUT_WASM / 8 + r] = BigInt(v); });
    assert.is(wasm.receivePrefix(OUT_WASM, S), receivePrefix(numReceived), `case ${iter}: S=${S}`);
  }
});

test('ShardRows hands out SHARD_ROWS in order and refuses, with a ConfigError, what does not fit', () => {
  const rows = new ShardRows();
  assert.is(rows.take(3, 2), map.SHARD_ROWS_OFFSET); // 5 rows, 3 slot bases, 3 flags (4 bytes)
  assert.is(rows.take(1, 1), map.SHARD_ROWS_OFFSET + 36);
  // The rest, exactly: per 4 senders 4 rows, 4 slot bases and a word of flags; per peer a row.
  const senders = 4 * Math.floor((map.SHARD_ROWS_BYTES - 52) / 36);
  const peers = (map.SHARD_ROWS_BYTES - 52 - 9 * senders) / 4;
  assert.ok(Number.isInteger(peers));
  assert.is(rows.take(senders, peers), map.SHARD_ROWS_OFFSET + 52);
  assert.throws(() => rows.take(1, 0),
    (e: unknown) => e instanceof ConfigError && /fewer or smaller shards/.test(String(e)));
});

test.run();
