// The predicate engine's semantics, over the WebAssembly kernels and over the plain-TS reference.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import { ConfigError } from '../ts/errors.js';
import * as map from '../ts/generated/memory-map.js';
import { loadKernels, type Kernels } from '../ts/kernels/kernels.js';
import { referenceKernels } from '../ts/kernels/reference.js';
import { SstLayout } from '../ts/sst/layout.js';
import { SstMember } from '../ts/sst/member.js';
import { PredicateEngine, compilePredicate, type PredicateSpec, type TableView } from '../ts/sst/predicates.js';

const columns = {
  counter: { type: 'i64' as const }, flag: { type: 'u8' as const }, rx: { type: 'i64' as const, count: 3 },
};

function setup(kernelsOf: (m: WebAssembly.Memory) => Kernels) {
  const arena = Arena.create({ memberId: 0, bytes: 4 << 20 });
  const layout = new SstLayout(columns, [0, 1, 2]);
  const kernels = kernelsOf(arena.memory);
  const view: TableView = {
    base: layout.base, rowStride: layout.rowStride, rows: layout.rows, liveBase: map.LIVE_ROWS_OFFSET,
  };
  arena.u8.fill(1, map.LIVE_ROWS_OFFSET, map.LIVE_ROWS_OFFSET + 3);
  const set = (row: number, column: string, value: number, index = 0) => {
    const c = layout.column(column);
    const at = layout.offsetOf(row, c, index);
    if (c.type === 'i64') arena.i64[at >> 3] = BigInt(value); else arena.u8[at] = value;
  };
  const engine = new PredicateEngine();
  let nextId = 1;
  const add = (spec: PredicateSpec) => {
    const id = nextId++; engine.add(compilePredicate(id, spec, layout, 0)); return id;
  };
  const fired: Array<[number, number]> = [];
  let accept = true;
  const evaluate = () => engine.evaluate(kernels, view, (id, v) => { if (accept) fired.push([id, v]); return accept; });
  return { arena, layout, set, add, fired, evaluate, engine, refuse: (r: boolean) => { accept = !r; } };
}

for (const [name, kernelsOf] of [['wasm', loadKernels], ['reference', referenceKernels]] as const) {
  test(`predicates (${name}): one-time fires once, transition on each rise, recurrent while true`, () => {
    const t = setup(kernelsOf);
    const once = t.add({ reduce: 'min', column: 'counter', test: '>=', value: 5, kind: 'one-time' });
    const rise = t.add({ reduce: 'min', column: 'counter', test: '>=', value: 5, kind: 'transition' });
    const level = t.add({ reduce: 'min', column: 'counter', test: '>=', value: 5, kind: 'recurrent' });
    t.evaluate();
    assert.equal(t.fired, [], 'nothing holds at 0');
    for (let r = 0; r < 3; r++) t.set(r, 'counter', 5 + r);
    t.evaluate(); t.evaluate();
    assert.equal(t.fired, [[once, 5], [rise, 5], [level, 5], [level, 5]]);
    t.fired.length = 0;
    t.set(0, 'counter', 1); t.evaluate();   // falls
    t.set(0, 'counter', 9); t.evaluate();   // rises again: min is now 6
    assert.equal(t.fired, [[rise, 6], [level, 6]]);
    assert.is(t.engine.size, 2, 'the one-time predicate was removed');
  });

  test(`predicates (${name}): 'changed' fires on every new value; thresholds move`, () => {
    const t = setup(kernelsOf);
    const max = t.add({ reduce: 'max', column: 'counter', test: 'changed', kind: 'recurrent' });
    t.evaluate(); t.evaluate();
    t.set(2, 'counter', 7); t.evaluate(); t.evaluate();
    assert.equal(t.fired, [[max, 0], [max, 7]]);
    t.fired.length = 0;
    const count = t.add({
      reduce: 'countAtLeast', column: 'counter', atLeast: 7, test: '==', value: 2, kind: 'transition',
    });
    t.evaluate();
    assert.equal(t.fired, []);
    t.engine.setValue(count, 1);
    t.evaluate();
    assert.equal(t.fired, [[count, 1]]);
  });

  test(`predicates (${name}): OR of flags, receive prefix, dead rows left out`, () => {
    const t = setup(kernelsOf);
    const flag = t.add({ reduce: 'or', column: 'flag', test: '==', value: 1, kind: 'one-time' });
    // num_received of row 0 (3 senders): [4, 3, 3] → m = 3, a = 1 → seq = 4·3 + 1 − 1 = 12
    t.set(0, 'rx', 4, 0); t.set(0, 'rx', 3, 1); t.set(0, 'rx', 3, 2);
    const prefix = t.add({ reduce: 'receivePrefix', column: 'rx', test: '>=', value: 12, kind: 'one-time' });
    t.set(1, 'flag', 1);
    t.arena.u8[map.LIVE_ROWS_OFFSET + 1] = 0; // row 1 is suspected: its flag does not count
    t.evaluate();
    assert.equal(t.fired, [[prefix, 12]]);
    t.arena.u8[map.LIVE_ROWS_OFFSET + 1] = 1;
    t.evaluate();
    assert.equal(t.fired, [[prefix, 12], [flag, 1]]);
  });

  test(`predicates (${name}): an event the ring refuses leaves its predicate armed`, () => {
    const t = setup(kernelsOf);
    const once = t.add({ reduce: 'min', column: 'counter', test: '>=', value: 0, kind: 'one-time' });
    t.refuse(true); t.evaluate(); t.evaluate();
    assert.is(t.engine.size, 1);
    t.refuse(false); t.evaluate(); t.evaluate();
    assert.equal(t.fired, [[once, 0]]);
  });
}

test('predicates: bad specs get ConfigErrors naming the problem', () => {
  const layout = new SstLayout(columns, [0, 1]);
  const bad: Array<[Partial<PredicateSpec>, RegExp]> = [
    [{ reduce: 'avg' as 'min' }, /reduce 'avg'/],
    [{ test: '=~' as '>=' }, /test '=~'/],
    [{ kind: 'sometimes' as 'one-time' }, /kind 'sometimes'/],
    [{ column: 'flag' }, /needs an i64 column/],
    [{ reduce: 'or', column: 'counter' }, /needs an u8 column/],
    [{ value: undefined }, /numeric value/],
    [{ index: 5 }, /outside column/],
    [{ reduce: 'countAtLeast' }, /atLeast/],
    [{ reduce: 'receivePrefix', column: 'rx', member: 9 }, /member 9/],
  ];
  for (const [patch, re] of bad) {
    const spec = {
      reduce: 'min', column: 'counter', test: '>=', value: 1, kind: 'one-time', ...patch
    } as PredicateSpec;
    try { compilePredicate(1, spec, layout, 0); assert.unreachable(JSON.stringify(patch)); } catch (e) {
      assert.instance(e, ConfigError, JSON.stringify(patch));
      assert.match((e as Error).message, re);
    }
  }
});

test('predicates: the worker\'s spin (predicateSpinUs) is an integer of µs from 0 to 1000', () => {
  for (const bad of [-1, 1.5, 1001, Number.NaN]) {
    try {
      SstMember.listen({ id: 0, listen: '127.0.0.1:0', columns, predicateSpinUs: bad });
      assert.unreachable(String(bad));
    } catch (e) {
      assert.instance(e, ConfigError, String(bad));
      assert.match((e as Error).message, /predicateSpinUs must be an integer from 0 to 1000/);
    }
  }
});

test.run();
