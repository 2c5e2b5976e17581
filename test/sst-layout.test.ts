import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SstLayout, HEARTBEAT_COLUMN } from '../ts/sst/layout.js';
import { validateSstConfig } from '../ts/sst/config.js';
import { GrantKind } from '../ts/fabric/fabric.js';
import { ConfigError } from '../ts/errors.js';
import * as map from '../ts/generated/memory-map.js';

const columns = {
  vid: { type: 'i32' as const },
  counter: { type: 'i64' as const },
  suspected: { type: 'u8' as const, count: 5 },
  slots: { type: 'bytes' as const, bytes: 100 },
  numReceived: { type: 'i64' as const, count: 3 },
};

test('layout: control columns first, 8-aligned, bytes after, 64-byte rows', () => {
  const l = new SstLayout(columns, [4, 2, 9]);
  assert.is(l.column(HEARTBEAT_COLUMN).offset, 0);
  for (const c of l.columns.values()) assert.is(c.offset % 8, 0, `${c.name} aligned`);
  const slots = l.column('slots');
  assert.is(slots.kind, GrantKind.Data);
  assert.ok(slots.offset >= l.controlBytes);
  for (const c of l.columns.values()) {
    if (c.kind === GrantKind.Control) assert.ok(c.offset + c.bytes <= l.controlBytes, c.name);
  }
  assert.is(l.rowStride % map.CACHE_LINE_BYTES, 0);
  assert.ok(l.rowStride >= slots.offset + slots.bytes);
  assert.is(l.base, map.DYNAMIC_BASE);
  assert.is(l.rowOf(9), 2);
  assert.is(l.offsetOf(2, l.column('numReceived'), 1), l.base + 2 * l.rowStride + l.column('numReceived').offset + 8);
});

test('layout: is a pure function of (columns, members) — same offsets and tag everywhere', () => {
  const a = new SstLayout(columns, [0, 1, 2]);
  const b = new SstLayout({ ...columns }, [0, 1, 2]);
  assert.equal([...a.columns.values()], [...b.columns.values()]);
  assert.is(a.tag, b.tag);
  assert.is.not(a.tag, new SstLayout(columns, [0, 2, 1]).tag, 'member order changes the tag');
  assert.is.not(a.tag, new SstLayout({ ...columns, extra: { type: 'i64' } }, [0, 1, 2]).tag, 'columns change the tag');
});

test('layout: grants cover exactly the owner row: the heartbeat (quiet), the other counters, the bytes', () => {
  const l = new SstLayout(columns, [0, 1, 2]);
  const g = l.grantsFor(1);
  assert.equal(g, [
    { offset: l.rowOffset(1), length: 8, kind: GrantKind.Control, ring: 0, quiet: true },
    { offset: l.rowOffset(1) + 8, length: l.controlBytes - 8, kind: GrantKind.Control, ring: 0 },
    { offset: l.rowOffset(1) + l.controlBytes, length: l.rowStride - l.controlBytes, kind: GrantKind.Data, ring: 0 },
  ]);
  const noBytes = new SstLayout({ c: { type: 'i64' } }, [0, 1]);
  assert.is(noBytes.grantsFor(0).length, 2, 'padding is never granted');
  assert.is(new SstLayout({}, [0, 1]).grantsFor(0).length, 1, 'a table of heartbeats alone');
});

test('layout: pushes send data before control, control widened to 8 bytes', () => {
  const l = new SstLayout(columns, [0, 1, 2]);
  const r = l.pushRanges(0, [l.column('suspected'), l.column('slots')]);
  assert.is(r.length, 2);
  assert.is(r[0]![0], l.rowOffset(0) + l.column('slots').offset, 'data first');
  assert.is(r[1]![0] % 8, 0);
  assert.is(r[1]![1] % 8, 0);
  const whole = l.pushRanges(1, []);
  assert.equal(
    whole, [[l.rowOffset(1) + l.controlBytes, l.rowStride - l.controlBytes], [l.rowOffset(1) + 8, l.controlBytes - 8]]);
  assert.throws(() => l.pushRanges(0, [l.column(HEARTBEAT_COLUMN)]), /predicate worker/);
  // every push range falls inside one grant, as the receiver demands
  const grants = l.grantsFor(2);
  for (const names of [[], ['vid'], ['numReceived', 'counter'], ['slots'], ['vid', 'slots', 'suspected']]) {
    for (const [off, len] of l.pushRanges(2, names.map((n) => l.column(n)))) {
      assert.ok(
        grants.some((g) => off >= g.offset && off + len <= g.offset + g.length),
        `${names} → [${off}, +${len}) in one grant`);
    }
  }
});

test('layout: bad input gets clear ConfigErrors', () => {
  const bad: Array<[() => unknown, RegExp]> = [
    [() => new SstLayout({ heartbeat: { type: 'i64' } }, [0]), /reserved/],
    [() => new SstLayout({ 'a-b': { type: 'i64' } }, [0]), /identifier/],
    [() => new SstLayout({ x: { type: 'f32' as 'i64' } }, [0]), /unknown type/],
    [() => new SstLayout({ x: { type: 'i64', count: 0 } }, [0]), /count/],
    [() => new SstLayout({ x: { type: 'bytes', bytes: -1 } }, [0]), /bytes/],
    [() => new SstLayout({}, [0, 0]), /twice/],
    [() => new SstLayout({}, []), /between 1/],
    [() => new SstLayout({}, [0]).column('nope'), /unknown SST column 'nope'/],
  ];
  for (const [fn, re] of bad) {
    try { fn(); assert.unreachable('should throw'); } catch (e) {
      assert.instance(e, ConfigError);
      assert.is((e as ConfigError).code, 'ERR_SQUALL_CONFIG');
      assert.match((e as Error).message, re);
    }
  }
});

test('config: validates members, addresses and fields', () => {
  const ok = validateSstConfig({ members: [{ id: 0, address: '127.0.0.1:7000' }], heartbeatIntervalMs: 5 });
  assert.equal(ok.columns, {});
  const bad: Array<[unknown, RegExp]> = [
    [[], /JSON object/],
    [{ members: [] }, /non-empty/],
    [{ members: [{ id: 'a', address: 'x:1' }] }, /members\[0\]/],
    [{ members: [{ id: 0, address: 'nohost' }] }, /not host:port/],
    [{ members: [{ id: 0, address: 'h:1' }], colums: {} }, /unknown field 'colums'/],
    [{ members: [{ id: 0, address: 'h:1' }], suspicionTimeoutMs: -1 }, /positive/],
  ];
  for (const [value, re] of bad) {
    try { validateSstConfig(value); assert.unreachable(); } catch (e) {
      assert.instance(e, ConfigError); assert.match((e as Error).message, re);
    }
  }
});

test.run();
