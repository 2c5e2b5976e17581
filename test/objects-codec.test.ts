// The replicated-object wire form (ts/objects/codec.ts): the compact header, the earlier MessagePack-array
// form a persistent log may still hold, and what a peer's malformed bytes do — a CodecError, never another
// error, never a read past the message.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeEnvelope, decodeValue, encodeCall, encodeReply, encodeValue, Kind, MAX_COMPACT_METHOD, toWireError,
  type CallEnvelope, type ReplyEnvelope,
} from '../ts/objects/codec.js';
import { CodecError } from '../ts/errors.js';
import { prng } from '../ts/sim/shard-sim.js';
import { PersistentLog } from '../ts/persist/log.js';
import { rebuild } from '../ts/group/persistence.js';
import { ID, removeTempDirs, tempLogDir } from './support/persist.js';

const MAX = 1 << 20;

/** Decodes, or returns the error it threw. */
function attempt(bytes: Uint8Array): CallEnvelope | ReplyEnvelope | Error {
  try {
    return decodeEnvelope(bytes);
  } catch (error) {
    return error as Error;
  }
}

test('commands and queries round-trip in the compact form, call ids up to 2^53 - 1', () => {
  for (const callId of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
    for (const kind of [Kind.Command, Kind.Query] as const) {
      const bytes = encodeCall(kind, callId, 'book', ['t-1', { who: 'ann' }, 7n], MAX);
      assert.is(bytes[0], 0xc1, 'the compact form starts with the byte MessagePack never uses');
      assert.equal(decodeEnvelope(bytes), { kind, callId, method: 'book', args: ['t-1', { who: 'ann' }, 7n] });
    }
  }
  // Names in any script, and many of them (the decoder's name cache must never answer with another name).
  const names = Array.from({ length: 300 }, (_, i) => `m${i}·${'é'.repeat(i % 5)}`);
  for (let round = 0; round < 2; round++) {
    for (const name of names) {
      const decoded = decodeEnvelope(encodeCall(Kind.Command, 1, name, [], MAX)) as CallEnvelope;
      assert.is(decoded.method, name);
    }
  }
});

test('a method name that is no string is a CodecError, before anything is sent', () => {
  for (const bad of [Symbol('m'), 7, undefined]) {
    assert.throws(() => encodeCall(Kind.Command, 1, bad as unknown as string, [], MAX),
      (e: unknown) => e instanceof CodecError && /method name is a string/.test((e as Error).message));
  }
});

test('replies round-trip: ok and error, every version from -1 up to vid 2^31 - 1', () => {
  const versions = [-1n, 0n, 1n, (5n << 32n) | 9n, (2n ** 21n) << 32n, ((2n ** 31n - 1n) << 32n) | 0xffffffffn];
  for (const version of versions) {
    assert.equal(decodeEnvelope(encodeReply(42, true, { n: 1 }, version, MAX)),
      { kind: Kind.Reply, callId: 42, ok: true, value: { n: 1 }, version });
    const error = toWireError(new RangeError('no'));
    assert.equal(decodeEnvelope(encodeReply(43, false, error, version, MAX)),
      { kind: Kind.Reply, callId: 43, ok: false, value: error, version });
  }
  const nothing = decodeEnvelope(encodeReply(1, true, undefined, 3n, MAX)) as ReplyEnvelope;
  assert.is(nothing.value, undefined);
});

test('small values read without msgpackr decode exactly as msgpackr does (every first byte, 6,000 random)', () => {
  const header = encodeReply(1, true, null, 0n, MAX).subarray(0, 20);
  const reply = (value: number[]) => Uint8Array.from([...header, ...value]);
  const compare = (value: number[]) => {
    let expected: { value: unknown } | 'throws';
    try { expected = { value: decodeValue(Uint8Array.from(value)) }; } catch { expected = 'throws'; }
    const got = attempt(reply(value));
    const what = `[${value.map((b) => b.toString(16)).join(' ')}]`;
    if (expected === 'throws') assert.instance(got, CodecError, what);
    else assert.equal(comparable((got as ReplyEnvelope).value), comparable(expected.value), what);
  };
  // An invalid Date (a timestamp extension of odd bytes) equals no other, itself included: compare its time.
  const comparable = (v: unknown): unknown =>
    v instanceof Date ? `date ${v.getTime()}` : Array.isArray(v) ? v.map(comparable) : v;
  const next = prng(99);
  const byte = () => Math.floor(next() * 256);
  const scalar = (): number[] => {
    const kinds = [[byte() & 0x7f], [0xe0 | (byte() & 0x1f)], [0xc0], [0xc2], [0xc3], [0xcc, byte()],
      [0xcd, byte(), byte()], [0xce, byte(), byte(), byte(), byte()], [0xd0, byte()], [0xd1, byte(), byte()],
      [0xd2, byte(), byte(), byte(), byte()], [0xd4, 0, 0], [0xd4, byte(), byte()],
      [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]];
    return kinds[Math.floor(next() * kinds.length)]!;
  };
  for (let b = 0; b < 256; b++) {
    compare([b]);
    compare([b, byte(), byte(), byte(), byte()]);
  }
  for (let i = 0; i < 6000; i++) {
    let value: number[];
    if (i % 3 === 0) value = scalar();
    else {
      const n = Math.floor(next() * 16);
      value = [0x90 | n];
      for (let k = 0; k < n; k++) value.push(...scalar());
    }
    if (i % 5 === 0) value = value.slice(0, Math.floor(next() * value.length) + 1); // cut short
    if (i % 7 === 0) value.push(byte()); // one byte too many
    compare(value);
  }
  // And through a call: the arguments most methods take.
  assert.equal((decodeEnvelope(encodeCall(Kind.Command, 1, 'f', [], MAX)) as CallEnvelope).args, []);
  const args = [0, 127, -32, -33, 255, 65535, 2 ** 32 - 1, -(2 ** 31), null, true, false, undefined, 1.5];
  assert.equal((decodeEnvelope(encodeCall(Kind.Command, 1, 'f', args, MAX)) as CallEnvelope).args, args);
});

test('the earlier form (one MessagePack array) still decodes: a persistent log written before holds it', () => {
  assert.equal(decodeEnvelope(encodeValue([Kind.Command, 7, 'inc', [1]])),
    { kind: Kind.Command, callId: 7, method: 'inc', args: [1] });
  assert.equal(decodeEnvelope(encodeValue([Kind.Reply, 8, 1, 'v', 12n])),
    { kind: Kind.Reply, callId: 8, ok: true, value: 'v', version: 12n });
  // A method name longer than the compact header allows is written in that form, and decodes the same.
  const long = 'x'.repeat(MAX_COMPACT_METHOD + 1);
  const bytes = encodeCall(Kind.Query, 9, long, [1, 2], MAX);
  assert.is.not(bytes[0], 0xc1);
  assert.equal(decodeEnvelope(bytes), { kind: Kind.Query, callId: 9, method: long, args: [1, 2] });
  const longest = 'y'.repeat(MAX_COMPACT_METHOD);
  const compact = encodeCall(Kind.Command, 10, longest, [], MAX);
  assert.is(compact[0], 0xc1);
  assert.is((decodeEnvelope(compact) as CallEnvelope).method, longest);
});

test('a persistent log holding commands of both forms is replayed whole, from real files', async () => {
  class Counter {
    n = 0;
    inc(k: number): number { return (this.n += k); }
  }
  const dir = await tempLogDir();
  const log = await PersistentLog.open(dir, ID);
  const payloads = [
    encodeValue([Kind.Command, 1, 'inc', [2]]), // written before the compact form
    encodeCall(Kind.Command, 2, 'inc', [5], MAX),
    encodeValue([Kind.Command, 3, 'inc', [100]]),
  ];
  payloads.forEach((payload, i) => log.append({ version: BigInt(i + 1), hlc: BigInt(1000 + i), sender: 0, payload }));
  await log.flush();
  await log.close();
  const again = await PersistentLog.open(dir, ID);
  try {
    const { state, version } = await rebuild(again, Counter);
    assert.is((state as Counter).n, 107);
    assert.is(version, 3n);
  } finally {
    await again.close();
    await removeTempDirs();
  }
});

test('a message is read inside its own bytes: garbage around it in the same buffer changes nothing', () => {
  const message = encodeCall(Kind.Command, 5, 'inc', [1, 'two'], MAX);
  const buffer = new Uint8Array(message.length + 64).fill(0xdd);
  buffer.set(message, 32);
  const view = buffer.subarray(32, 32 + message.length);
  assert.equal(decodeEnvelope(view), { kind: Kind.Command, callId: 5, method: 'inc', args: [1, 'two'] });
  // The same bytes one short: the arguments end past the view, and the bytes after it are not read as theirs.
  const error = attempt(buffer.subarray(32, 32 + message.length - 1));
  assert.instance(error, CodecError);
  // One byte too many: a value must end exactly at the message's end.
  assert.instance(attempt(buffer.subarray(32, 32 + message.length + 1)), CodecError);
});

test('a message cannot build its value from bytes outside it (msgpackr\'s bundled strings jump backwards)', () => {
  // Someone else's bytes first in the buffer, then a command whose arguments use the bundled-strings
  // extension (0x62) with a negative offset, aimed at them, and a string token there that ends exactly at the
  // message's end. Read through a view of the whole buffer this decoded as ['SECRET'].
  const arena = new Uint8Array(256);
  arena.set([0xa6, ...new TextEncoder().encode('SECRET')], 0);
  const at = 32;
  const head = [0xc1, Kind.Command, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x6d]; // callId 5, method 'm'
  const body = [0xd6, 0x62, 0, 0, 0, 0, 0x91, 0xc1, 0xfa];
  const end = at + head.length + body.length;
  arena[7] = 0xd9;
  arena[8] = end - 9;
  const jump = (4 - (at + head.length + 6)) >>> 0; // lands on arena[0]
  body.splice(2, 4, jump >>> 24, (jump >>> 16) & 0xff, (jump >>> 8) & 0xff, jump & 0xff);
  arena.set([...head, ...body], at);
  const result = attempt(arena.subarray(at, end));
  assert.instance(result, CodecError, `decoded as ${JSON.stringify((result as CallEnvelope).args)}`);
});

test('an earlier-form call id below 0 is refused (a reply to it could not be encoded)', () => {
  assert.instance(attempt(encodeValue([Kind.Command, -1, 'inc', [1]])), CodecError);
});

test('malformed compact headers are CodecErrors that say what is wrong', () => {
  const call = encodeCall(Kind.Command, 1, 'inc', [1], MAX);
  const reply = encodeReply(1, true, 1, 2n, MAX);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['header only', call.subarray(0, 5), /short or damaged header/],
    ['reserved byte set', Uint8Array.from(call, (b, i) => (i === 3 ? 1 : b)), /short or damaged header/],
    ['call id past 2^53', Uint8Array.from(call, (b, i) => (i === 11 ? 0x20 : b)), /call id/],
    ['unknown kind', Uint8Array.from(call, (b, i) => (i === 1 ? 9 : b)), /unknown kind 9/],
    ['method cut short', call.subarray(0, 14), /cut short/],
    ['method not UTF-8', Uint8Array.from(call, (b, i) => (i === 12 ? 0xff : b)), /not UTF-8/],
    ['reply status 2', Uint8Array.from(reply, (b, i) => (i === 2 ? 2 : b)), /status/],
    ['reply without a value', reply.subarray(0, 20), /cut short/],
    ['error reply that is no error', encodeReply(1, true, 'plain', 2n, MAX).map((b, i) => (i === 2 ? 0 : b)),
      /without name and message/],
    ['arguments not an array', (() => {
      const b = encodeCall(Kind.Command, 1, 'inc', [1], MAX);
      const out = new Uint8Array(b.length - 1); out.set(b.subarray(0, 15)); out[15] = 0x01; // args: 1
      return out;
    })(), /not an array/],
  ];
  for (const [what, bytes, message] of cases) {
    const error = attempt(bytes);
    assert.instance(error, CodecError, what);
    assert.match((error as Error).message, message, what);
  }
});

test('hostile bytes: every cut, and random flips, give an envelope or a CodecError (2,000 cases)', () => {
  const next = prng(15);
  const samples = [
    encodeCall(Kind.Command, 77, 'book', ['t-9', 'mallory', { n: [1, 2, 3] }], MAX),
    encodeCall(Kind.Query, 78, 'holder', ['t-9'], MAX),
    encodeReply(79, true, new Map([[1, 'a']]), 5n << 32n, MAX),
    encodeReply(80, false, toWireError(new TypeError('bad')), -1n, MAX),
  ];
  for (const sample of samples) {
    for (let cut = 0; cut < sample.length; cut++) {
      const result = attempt(sample.subarray(0, cut));
      assert.ok(result instanceof CodecError, `cut at ${cut}: ${String(result)}`);
    }
  }
  for (let i = 0; i < 2000; i++) {
    const bytes = samples[i % samples.length]!.slice();
    const flips = 1 + Math.floor(next() * 3);
    for (let f = 0; f < flips; f++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
    const result = attempt(bytes);
    if (result instanceof Error) assert.instance(result, CodecError, `case ${i}: ${result.message}`);
    else assert.ok([Kind.Command, Kind.Query, Kind.Reply].includes(result.kind), `case ${i}`);
  }
});

test.run();
