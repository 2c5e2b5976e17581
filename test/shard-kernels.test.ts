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
  assert.is(rows.take(3, 2), map.SHARD_ROWS_OFFSET);
  assert.is(rows.take(1, 1), map.SHARD_ROWS_OFFSET + 20);
  const left = (map.SHARD_ROWS_BYTES - 28) / 4;
  assert.is(rows.take(left, 0), map.SHARD_ROWS_OFFSET + 28);
  assert.throws(() => rows.take(1, 0),
    (e: unknown) => e instanceof ConfigError && /fewer or smaller shards/.test(String(e)));
});

test.run();
