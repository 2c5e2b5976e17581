// The view-change kernels (assembly/membership.ts) against their plain-TypeScript twins
// (ts/kernels/membership-reference.ts), on random tables laid out as a view's membership columns are
// (SstLayout over membershipColumns), with random flags, proposal numbers, numReceived and live masks; then
// the meaning of each on small tables written by hand, and the protocol stepping the same scenario over either.
//
// Random cases come from one seed, printed with any failure; rerun it with SQUALL_TEST_SEED=<seed>.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import * as map from '../ts/generated/memory-map.js';
import { loadKernels } from '../ts/kernels/kernels.js';
import { RemovalFlag, type MembershipKernels } from '../ts/kernels/membership.js';
import { membershipReferenceKernels } from '../ts/kernels/membership-reference.js';
import { membershipColumns } from '../ts/membership/columns.js';
import type { Change } from '../ts/membership/protocol.js';
import { SstLayout, type Column } from '../ts/sst/layout.js';
import { MemoryGroup } from './support/memory-group.js';
import { seededTest, suiteSeed } from './support/random.js';

const seed = suiteSeed();
const arena = Arena.create({ memberId: 1, bytes: 16 << 20 });
const wasm: MembershipKernels = loadKernels(arena.memory);
const ref = membershipReferenceKernels(arena.memory);
const { u8, i32, i64, f64 } = arena;

const TABLE = map.DYNAMIC_BASE; // up to 1024 rows of a few KiB
const LIVE = map.DYNAMIC_BASE + (12 << 20);
const WASM_OUT = LIVE + 4096; // removal flags (≤ 1024 bytes) or trims (≤ 8 KiB)
const REF_OUT = WASM_OUT + 16384;

const seeded = (name: string, body: (rand: () => number) => void) => seededTest(test, seed, name, body);
const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** A view's table: the membership columns, and a subgroup's numReceived of S senders. */
interface Table { n: number; layout: SstLayout; c: Record<string, Column>; senders: number }

/** Row counts from 1 to 1024, small ones (the common case) most often; a full table of 1024 in 1 of 40. */
function rowCount(rand: () => number): number {
  if (rand() < 1 / 40) return 1024;
  return pick(rand, [1, 2, 3, 5, int(rand, 1, 16), int(rand, 1, 64), int(rand, 1, 300)]);
}

/** A proposal-like i32: small numbers that collide often, sometimes the extremes. */
function randomI32(rand: () => number): number {
  switch (int(rand, 0, 9)) {
    case 0: return pick(rand, [-(2 ** 31), 2 ** 31 - 1, -1]);
    case 1: return int(rand, -(2 ** 31), 2 ** 31 - 1);
    default: return int(rand, 0, 6);
  }
}

function randomI64(rand: () => number): bigint {
  switch (int(rand, 0, 4)) {
    case 0: return -1n;
    case 1: return BigInt(int(rand, -5, 1000));
    case 2: return (rand() < 0.5 ? -1n : 1n) * (2n ** 53n - BigInt(int(rand, 0, 4)));
    case 3: return pick(rand, [-(2n ** 63n), 2n ** 63n - 1n]);
    default: return BigInt(int(rand, 0, 40));
  }
}

/** Fills a random table: flags of a random density (0/1, or any byte), i32 counters, numReceived; a live mask. */
function randomTable(rand: () => number): Table {
  const n = rowCount(rand);
  const senders = int(rand, 1, 12);
  const layout = new SstLayout({ ...membershipColumns(n), nr: { type: 'i64', count: senders } },
    Array.from({ length: n }, (_, i) => i), TABLE);
  const c = Object.fromEntries([...layout.columns.values()].map((col) => [col.name, col]));
  const density = pick(rand, [0, 0.002, 0.05, 0.5]);
  const anyByte = rand() < 0.3;
  const flag = () => (rand() < density ? (anyByte ? int(rand, 1, 255) : 1) : 0);
  for (let r = 0; r < n; r++) {
    const at = (col: Column, k = 0) => layout.offsetOf(r, col, k);
    for (const name of ['wedged', 'leaving', 'receiving']) u8[at(c[name]!)] = flag();
    u8.fill(0, at(c['suspected']!), at(c['suspected']!, n));
    u8.fill(0, at(c['changes']!), at(c['changes']!, n));
    for (let j = 0; density > 0 && j < n; j++) {
      u8[at(c['suspected']!, j)] = flag();
      u8[at(c['changes']!, j)] = flag();
    }
    for (const name of ['proposal', 'trimFor', 'committed', 'proposer', 'installed']) {
      i32[at(c[name]!) >> 2] = randomI32(rand);
    }
    for (let k = 0; k < senders; k++) i64[at(c['nr']!, k) >> 3] = randomI64(rand);
  }
  const share = pick(rand, [0, 0.1, 0.5, 0.9, 1, 1]);
  for (let r = 0; r < n; r++) u8[LIVE + r] = rand() < share ? (rand() < 0.3 ? int(rand, 1, 255) : 1) : 0;
  return { n, layout, c, senders };
}

/** An i32 worth comparing with column `col`: one a row holds, one beside it, or anything. */
function probeI32(rand: () => number, t: Table, col: Column): number {
  const held = i32[t.layout.offsetOf(int(rand, 0, t.n - 1), col) >> 2]!;
  return pick(rand, [held, held, held + 1, held - 1, randomI32(rand)]) | 0;
}

// ------------------------------------------------------------------------------ wasm = reference, random

seeded('removalFlags: wasm equals the reference, flags and count, on 300 random tables (1..1024 rows)', (rand) => {
  for (let iter = 0; iter < 300; iter++) {
    const { n, layout, c } = randomTable(rand);
    u8.fill(0xee, WASM_OUT, WASM_OUT + n + 8); // stale bytes are overwritten, and nothing past n is written
    const args = [layout.base, layout.rowStride, n, LIVE, c['suspected']!.offset, c['leaving']!.offset,
      c['changes']!.offset, c['proposal']!.offset] as const;
    const where = `case ${iter}: n=${n} stride=${layout.rowStride}`;
    assert.is(wasm.removalFlags(...args, WASM_OUT), ref.removalFlags(...args, REF_OUT), where);
    assert.equal(u8.subarray(WASM_OUT, WASM_OUT + n), u8.subarray(REF_OUT, REF_OUT + n), where);
    assert.is(u8[WASM_OUT + n], 0xee, `${where}: wrote past n`);
  }
});

seeded('highestI32, countEqualI32, countFlagged, firstAtLeastI32: wasm equals the reference (400 tables)', (rand) => {
  for (let iter = 0; iter < 400; iter++) {
    const t = randomTable(rand);
    const { n, layout, c } = t;
    const base = layout.base, stride = layout.rowStride;
    for (const name of ['proposal', 'trimFor', 'committed', 'installed']) {
      const col = c[name]!, v = probeI32(rand, t, col);
      const where = `case ${iter}: n=${n} ${name} value=${v}`;
      assert.is(wasm.highestI32(base, stride, n, col.offset, LIVE), ref.highestI32(base, stride, n, col.offset, LIVE),
        where);
      assert.is(wasm.countEqualI32(base, stride, n, col.offset, LIVE, v),
        ref.countEqualI32(base, stride, n, col.offset, LIVE, v), where);
      assert.is(wasm.firstAtLeastI32(base, stride, n, col.offset, LIVE, v),
        ref.firstAtLeastI32(base, stride, n, col.offset, LIVE, v), where);
    }
    const flagCols = [c['wedged']!.offset, c['leaving']!.offset, c['receiving']!.offset,
      c['suspected']!.offset + int(rand, 0, n - 1)];
    for (const col of flagCols) {
      assert.is(wasm.countFlagged(base, stride, n, col, LIVE), ref.countFlagged(base, stride, n, col, LIVE),
        `case ${iter}: n=${n} flag column at ${col}`);
    }
  }
});

seeded('acknowledgements and outnumbered: wasm equals the reference (400 tables, proposals held and not)', (rand) => {
  for (let iter = 0; iter < 400; iter++) {
    const t = randomTable(rand);
    const { n, layout, c } = t;
    const base = layout.base, stride = layout.rowStride;
    const proposal = probeI32(rand, t, c['proposal']!), proposer = probeI32(rand, t, c['proposer']!);
    const where = `case ${iter}: n=${n} proposal=${proposal} proposer=${proposer}`;
    assert.is(wasm.acknowledgements(base, stride, n, LIVE, c['proposal']!.offset, c['wedged']!.offset, proposal),
      ref.acknowledgements(base, stride, n, LIVE, c['proposal']!.offset, c['wedged']!.offset, proposal), where);
    assert.is(
      wasm.outnumbered(base, stride, n, LIVE, c['proposal']!.offset, c['proposer']!.offset, proposal, proposer),
      ref.outnumbered(base, stride, n, LIVE, c['proposal']!.offset, c['proposer']!.offset, proposal, proposer), where);
  }
});

seeded('raggedTrimMin: wasm equals the reference, per sender rank, on 300 random tables', (rand) => {
  for (let iter = 0; iter < 300; iter++) {
    const { n, layout, c, senders } = randomTable(rand);
    const ranks = int(rand, 0, senders);
    const col = c['nr']!.offset;
    const where = `case ${iter}: n=${n} senders=${ranks}`;
    f64.fill(NaN, WASM_OUT >> 3, (WASM_OUT >> 3) + ranks);
    assert.is(wasm.raggedTrimMin(layout.base, layout.rowStride, n, col, ranks, LIVE, WASM_OUT),
      ref.raggedTrimMin(layout.base, layout.rowStride, n, col, ranks, LIVE, REF_OUT), where);
    assert.equal([...f64.subarray(WASM_OUT >> 3, (WASM_OUT >> 3) + ranks)],
      [...f64.subarray(REF_OUT >> 3, (REF_OUT >> 3) + ranks)], where);
  }
});

// ------------------------------------------------------------------------------ what each one means

/** Three rows of a hand-written membership table, every row live. */
function smallTable(): Table {
  const n = 3;
  const layout = new SstLayout({ ...membershipColumns(n), nr: { type: 'i64', count: 2 } }, [10, 11, 12], TABLE);
  u8.fill(0, TABLE, TABLE + layout.tableBytes);
  u8.fill(1, LIVE, LIVE + n);
  const c = Object.fromEntries([...layout.columns.values()].map((col) => [col.name, col]));
  return { n, layout, c, senders: 2 };
}

test('removalFlags: suspicions OR-ed across rows, each row\'s leaving flag, removals by rows holding proposals', () => {
  const { layout, c } = smallTable();
  u8[layout.offsetOf(1, c['suspected']!, 2)] = 1; // row 1 suspects member 12
  u8[layout.offsetOf(0, c['leaving']!)] = 1; // member 10 leaves
  u8[layout.offsetOf(2, c['changes']!, 1)] = 1; // row 2 proposes removing 11…
  u8[layout.offsetOf(0, c['changes']!, 0)] = 1; // …row 0 holds no proposal: its changes do not count
  i32[layout.offsetOf(2, c['proposal']!) >> 2] = 3;
  const args = [layout.base, layout.rowStride, 3, LIVE, c['suspected']!.offset, c['leaving']!.offset,
    c['changes']!.offset, c['proposal']!.offset] as const;
  for (const k of [wasm, ref]) {
    assert.is(k.removalFlags(...args, WASM_OUT), 3);
    assert.equal([...u8.subarray(WASM_OUT, WASM_OUT + 3)],
      [RemovalFlag.LEAVING, RemovalFlag.PROPOSED, RemovalFlag.SUSPECTED]);
    u8[LIVE + 1] = 0; // a row that is not counted suspects nobody, and row 1's own flags are still OR-ed from others
    assert.is(k.removalFlags(...args, WASM_OUT), 2);
    assert.equal([...u8.subarray(WASM_OUT, WASM_OUT + 3)], [RemovalFlag.LEAVING, RemovalFlag.PROPOSED, 0]);
    u8[LIVE + 1] = 1;
  }
});

test('acknowledgements, firstAtLeastI32, outnumbered, raggedTrimMin on a table of three rows', () => {
  const { layout, c } = smallTable();
  const base = layout.base, stride = layout.rowStride;
  const setI32 = (r: number, name: string, v: number) => { i32[layout.offsetOf(r, c[name]!) >> 2] = v; };
  [4, 4, 3].forEach((p, r) => setI32(r, 'proposal', p));
  [11, 11, 12].forEach((p, r) => setI32(r, 'proposer', p));
  u8[layout.offsetOf(0, c['wedged']!)] = 1; // row 1 holds proposal 4 but is not wedged
  const nr = [[5n, 7n], [3n, 9n], [-1n, 8n]];
  nr.forEach((row, r) => row.forEach((v, k) => { i64[layout.offsetOf(r, c['nr']!, k) >> 3] = v; }));
  for (const k of [wasm, ref]) {
    assert.is(k.acknowledgements(base, stride, 3, LIVE, c['proposal']!.offset, c['wedged']!.offset, 4), 2 | (1 << 16));
    assert.is(k.firstAtLeastI32(base, stride, 3, c['proposal']!.offset, LIVE, 4), 0);
    assert.is(k.firstAtLeastI32(base, stride, 3, c['proposal']!.offset, LIVE, 5), -1);
    assert.is(k.outnumbered(base, stride, 3, LIVE, c['proposal']!.offset, c['proposer']!.offset, 4, 11), 0);
    assert.is(k.outnumbered(base, stride, 3, LIVE, c['proposal']!.offset, c['proposer']!.offset, 4, 12), 1);
    assert.is(k.outnumbered(base, stride, 3, LIVE, c['proposal']!.offset, c['proposer']!.offset, 3, 12), 1);
    assert.is(k.raggedTrimMin(base, stride, 3, c['nr']!.offset, 2, LIVE, WASM_OUT), 3);
    assert.equal([...f64.subarray(WASM_OUT >> 3, (WASM_OUT >> 3) + 2)], [-1, 7]);
    u8.fill(0, LIVE, LIVE + 3);
    assert.is(k.raggedTrimMin(base, stride, 3, c['nr']!.offset, 2, LIVE, WASM_OUT), 0);
    assert.equal([...f64.subarray(WASM_OUT >> 3, (WASM_OUT >> 3) + 2)], [Infinity, Infinity]);
    assert.is(k.highestI32(base, stride, 3, c['proposal']!.offset, LIVE), -Infinity);
    u8.fill(1, LIVE, LIVE + 3);
  }
});

// ------------------------------------------------------------------------------ the protocol over either

/** A change that removes a member crashed under load, stepped over `kernels`: what each survivor applied. */
function crashScenario(kernels: 'wasm' | 'reference'): { changes: Change[]; delivered: string[][] } {
  const group = new MemoryGroup([0, 1, 2], { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 4 },
    kernels);
  try {
    const applied = new Map<number, Change>();
    const stepAll = () => {
      for (const m of group.members) {
        if (m.down || applied.has(m.id)) continue;
        m.channel.step();
        const result = m.protocol.step();
        if (result?.type === 'commit') applied.set(m.id, result.change);
        m.protocol.invariants();
      }
    };
    for (const m of group.members) {
      for (let k = 0; k < 5; k++) m.channel.send(Uint8Array.of(m.id * 16 + k)).catch(() => { /* torn down */ });
    }
    for (let i = 0; i < 3; i++) stepAll();
    group.member(2).down = true;
    group.member(0).protocol.suspect(2);
    for (let i = 0; i < 12; i++) stepAll();
    const survivors = [group.member(0), group.member(1)];
    for (const m of survivors) m.channel.finishView(applied.get(m.id)!.trims, true);
    return { changes: survivors.map((m) => applied.get(m.id)!), delivered: survivors.map((m) => m.delivered) };
  } finally {
    group.release();
  }
}

test('the view-change protocol takes the same steps over the WebAssembly kernels and over their twins', () => {
  const overWasm = crashScenario('wasm');
  const overTwins = crashScenario('reference');
  assert.equal(overWasm.changes[0]!.removed, [2]);
  assert.equal(overWasm.changes[0]!.next, { vid: 1, members: [0, 1] });
  assert.equal(overWasm.changes[0], overWasm.changes[1], 'both survivors applied one change');
  assert.equal(overTwins, overWasm);
});

test.run();
