// Replicated objects (ts/objects/) over the in-process loopback channel: the real codec, the real replica
// and caller code, a seeded scheduler interleaving deliveries and point-to-point messages.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReplicatedObject } from '../ts/objects/replicated-object.js';
import { LoopbackShard } from '../ts/objects/loopback-channel.js';
import {
  decodeEnvelope, decodeValue, encodeCall, encodeValue, Kind, type ReplyEnvelope,
} from '../ts/objects/codec.js';
import type { OrderedChannel } from '../ts/objects/channel.js';
import { formatVersion, parseVersion, versionParts } from '../ts/objects/version.js';
import { versionOf } from '../ts/multicast/ordering.js';
import {
  ConfigError, MessageTooLargeError, NotAQueryError, PeerFailedError, RemoteMethodError, TimeoutError,
  UnknownMethodError, CodecError,
} from '../ts/errors.js';

/** DESIGN.md §8's example. */
class TicketBook {
  static readonly queries = ['holder', 'echo'] as const;
  #booked = new Map<string, string>();
  book(ticket: string, customer: string): boolean {
    if (this.#booked.has(ticket)) return false;
    this.#booked.set(ticket, customer);
    return true;
  }
  holder(ticket: string): string | null { return this.#booked.get(ticket) ?? null; }
  cancel(ticket: string, customer: string): void {
    if (this.#booked.get(ticket) !== customer) throw new RangeError(`${ticket} is not booked by ${customer}`);
    this.#booked.delete(ticket);
  }
  echo(value: unknown): unknown { return value; }
  many(n: number): string { return 'z'.repeat(n); }
  get count(): number { return this.#booked.size; }
  snapshot(): Uint8Array { return encodeValue([...this.#booked]); }
  static restore(bytes: Uint8Array): TicketBook {
    const book = new TicketBook();
    for (const [t, c] of decodeValue(bytes) as Array<[string, string]>) book.#booked.set(t, c);
    return book;
  }
}

function cluster(n: number, seed = 1, options: { maxMessageBytes?: number; timeoutMs?: number } = {}) {
  const members = Array.from({ length: n }, (_, i) => i);
  const shard = new LoopbackShard({ members, seed });
  const objects = members.map((m) =>
    ReplicatedObject.attach(new TicketBook(), shard.channel(m), { type: TicketBook, ...options }));
  return { shard, objects };
}

test('ordered: one call gathers a reply from every member, in rank order, with one version', async () => {
  const { objects } = cluster(3);
  const replies = await objects[1]!.ordered.book('t-17', 'alice');
  assert.equal(replies.map((r) => r.member), [0, 1, 2]);
  assert.equal(replies.map((r) => r.value), [true, true, true]);
  assert.ok(replies.every((r) => r.version === replies[0]!.version));
  for (const o of objects) assert.is(o.state.holder('t-17'), 'alice');
  // The handle is typed from the class: parameter types and the reply's value type.
  const typed: Promise<Array<{ member: number; value: boolean }>> =
    objects[0]!.ordered.holder('t-17').then(() => replies);
  // @ts-expect-error book takes (ticket: string, customer: string)
  const wrong = () => objects[0]!.ordered.book(1, 2);
  // @ts-expect-error a query of holder resolves with string | null
  const wrongType: Promise<number> = objects[0]!.query(0).holder('t-17');
  void wrong; void wrongType;
  await typed;
});

test('ticket race: two members book t-17 at the same moment (n=3, 40 seeds): one winner, one holder everywhere',
  async () => {
  const winners = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) {
    const { shard, objects } = cluster(3, seed);
    const [a, b] = await Promise.all([
      objects[0]!.ordered.book('t-17', 'alice'), objects[1]!.ordered.book('t-17', 'bob'),
    ]);
    const aWon = a.every((r) => r.value === true), bWon = b.every((r) => r.value === true);
    assert.ok(a.every((r) => r.value === a[0]!.value), `seed ${seed}: replicas disagree for alice`);
    assert.ok(b.every((r) => r.value === b[0]!.value), `seed ${seed}: replicas disagree for bob`);
    assert.ok(aWon !== bWon, `seed ${seed}: exactly one caller must win`);
    const holders = objects.map((o) => o.state.holder('t-17'));
    assert.equal(holders, Array(3).fill(aWon ? 'alice' : 'bob'), `seed ${seed}`);
    assert.is(shard.orderedSenders[0], aWon ? 0 : 1, `seed ${seed}: the first ordered command wins`);
    winners.add(holders[0]!);
  }
  assert.equal([...winners].sort(), ['alice', 'bob'], 'the seeds must interleave both ways');
});

test('ordered: many concurrent commands from every member leave every replica in the same state', async () => {
  const { objects } = cluster(4, 7);
  const calls = [];
  for (let i = 0; i < 30; i++) calls.push(objects[i % 4]!.ordered.book(`t-${i % 10}`, `c-${i}`));
  await Promise.all(calls);
  for (let t = 0; t < 10; t++) {
    const holders = objects.map((o) => o.state.holder(`t-${t}`));
    assert.ok(holders.every((h) => h === holders[0] && h !== null), `t-${t}: ${holders}`);
  }
  assert.ok(objects.every((o) => o.appliedVersion === objects[0]!.appliedVersion));
});

test('a method that throws at every replica rejects at the caller with the original name and message', async () => {
  const { objects } = cluster(3);
  await objects[0]!.ordered.book('t-1', 'alice');
  try {
    await objects[2]!.ordered.cancel('t-1', 'bob');
    assert.unreachable('cancel should reject');
  } catch (error) {
    assert.instance(error, RemoteMethodError);
    const e = error as RemoteMethodError;
    assert.is(e.code, 'ERR_SQUALL_REMOTE');
    assert.is(e.remoteName, 'RangeError');
    assert.is(e.message, 't-1 is not booked by bob');
    assert.is(e.method, 'cancel');
  }
  for (const o of objects) assert.is(o.state.holder('t-1'), 'alice');
});

test('unknown method, constructor, __proto__, toString and a getter are refused at every replica with the coded error',
  async () => {
  const { shard, objects } = cluster(3);
  for (const name of ['nope', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'count']) {
    try {
      await objects[0]!.call(name, []);
      assert.unreachable(`${name} should be refused`);
    } catch (error) {
      assert.instance(error, UnknownMethodError, name);
      const e = error as UnknownMethodError;
      assert.is(e.code, 'ERR_SQUALL_UNKNOWN_METHOD');
      assert.ok(e.message.includes(JSON.stringify(name)), e.message);
      assert.ok(e.message.includes('TicketBook'), e.message);
      assert.equal(e.callable, ['book', 'cancel', 'echo', 'holder', 'many', 'snapshot']);
    }
  }
  // Through the typed proxy too; `then` is never a method, so a proxy is not mistaken for a promise.
  const proxy = objects[1]!.ordered;
  assert.is(await proxy, proxy);
  await shard.settled();
  for (const o of objects) assert.is(o.state.count, 0);
});

test('a command for an unknown method is rejected by every replica: each sends an error reply', async () => {
  const { shard, objects } = cluster(3);
  const errors: string[] = [];
  const spy = shard.channel(0);
  // A raw command from member 0 with a call id nobody waits for: replicas still answer it, with errors.
  spy.onDirect((from, bytes) => {
    const reply = decodeEnvelope(bytes) as ReplyEnvelope;
    errors.push(`${from}:${(reply.value as { code: string }).code}`);
  });
  await spy.send(encodeCall(Kind.Command, 999, '__proto__', [], 1 << 20));
  await shard.settled();
  await new Promise((r) => setImmediate(r));
  assert.equal(
    errors.filter((e) => e.startsWith('1:') || e.startsWith('2:')).sort(),
    ['1:ERR_SQUALL_UNKNOWN_METHOD', '2:ERR_SQUALL_UNKNOWN_METHOD']);
  assert.is(objects[1]!.state.count, 0);
});

test('oversize arguments are refused before sending, with the sizes in the message', async () => {
  const { shard, objects } = cluster(3, 1, { maxMessageBytes: 1024 });
  try {
    await objects[0]!.ordered.book('t-1', 'x'.repeat(2000));
    assert.unreachable('should be refused');
  } catch (error) {
    assert.instance(error, MessageTooLargeError);
    const e = error as MessageTooLargeError;
    assert.is(e.code, 'ERR_SQUALL_MESSAGE_TOO_LARGE');
    assert.is(e.maxBytes, 1024);
    assert.ok(e.sizeBytes > 2000);
    assert.match(e.message, /maxMessageBytes = 1024/);
  }
  await shard.settled();
  assert.equal(shard.orderedSenders, [], 'nothing was sent');
  assert.is(objects[0]!.inFlight, 0);
});

test('an oversize result reaches the caller as an error from every replica', async () => {
  const { objects } = cluster(2, 3, { maxMessageBytes: 512 });
  assert.is((await objects[0]!.ordered.many(100))[1]!.value, 'z'.repeat(100));
  try {
    await objects[1]!.ordered.many(1000);
    assert.unreachable('the result is over the limit');
  } catch (error) {
    assert.instance(error, RemoteMethodError);
    assert.is((error as RemoteMethodError).remoteCode, 'ERR_SQUALL_MESSAGE_TOO_LARGE');
    assert.is((error as RemoteMethodError).remoteName, 'MessageTooLargeError');
    assert.match((error as Error).message, /the result encodes to \d+ bytes, more than maxMessageBytes = 512/);
  }
  assert.is(await objects[0]!.query(1).holder('t-1'), null, 'the object still answers');
});

test('query: one member answers from its local copy; a query for an unknown method is refused', async () => {
  const { objects } = cluster(3);
  await objects[0]!.ordered.book('t-17', 'alice');
  assert.is(await objects[0]!.query(2).holder('t-17'), 'alice');
  assert.is(await objects[1]!.query(1).holder('t-18'), null);
  try {
    await objects[0]!.callMember(1, 'constructor', []);
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UnknownMethodError);
  }
  // A query does not change state at the others: it runs at the one member asked.
  assert.equal(objects.map((o) => o.appliedVersion === objects[0]!.appliedVersion), [true, true, true]);
});

test('member failure mid-call: the pending ordered call resolves with the survivors\' replies (n=3)', async () => {
  const { shard, objects } = cluster(3, 5);
  const call = objects[0]!.ordered.book('t-1', 'alice');
  shard.fail(2); // before anything was delivered: member 2 never replies
  const replies = await call;
  assert.equal(replies.map((r) => r.member), [0, 1]);
  assert.ok(replies.every((r) => r.value === true));
  // New calls expect only the live members.
  const next = await objects[1]!.ordered.book('t-2', 'bob');
  assert.equal(next.map((r) => r.member), [0, 1]);
});

test('member failure: a query to it rejects with PeerFailedError; a hung member without notice times out', async () => {
  const { shard, objects } = cluster(3, 2, { timeoutMs: 50 });
  shard.hold(2);
  const query = objects[0]!.query(2).holder('t-1');
  const ordered = objects[0]!.ordered.book('t-1', 'alice');
  await shard.settled();
  objects[0]!.memberFailed(2); // the owner's hook, as the view change would call it
  try { await query; assert.unreachable(); } catch (error) { assert.instance(error, PeerFailedError); }
  assert.equal((await ordered).map((r) => r.member), [0, 1]);

  const hung = objects[1]!.ordered.book('t-3', 'carol'); // member 2 still hangs, and nobody says so
  try {
    await hung;
    assert.unreachable('should time out');
  } catch (error) {
    assert.instance(error, TimeoutError);
    assert.match((error as Error).message, /member\(s\) 2/);
  }
});

test('snapshot and restore: a restored copy answers like the original and keeps taking commands', async () => {
  const { objects } = cluster(2);
  await objects[0]!.ordered.book('t-1', 'alice');
  await objects[1]!.ordered.book('t-2', 'bob');
  const bytes = objects[0]!.snapshot();
  const fresh = new LoopbackShard({ members: [5] });
  const copy = ReplicatedObject.attach(new TicketBook(), fresh.channel(5), { type: TicketBook });
  copy.restore(bytes, objects[0]!.appliedVersion);
  assert.is(copy.state.holder('t-1'), 'alice');
  assert.is(copy.state.holder('t-2'), 'bob');
  assert.is(copy.appliedVersion, objects[0]!.appliedVersion);
  assert.equal((await copy.ordered.book('t-1', 'carol')).map((r) => r.value), [false]);
  assert.equal((await copy.ordered.book('t-3', 'carol')).map((r) => r.value), [true]);
});

test('codec: strings, numbers, bigint, Uint8Array, Map, Set, nested objects, undefined/null and errors round-trip ' +
  'through a call', async () => {
  const { objects } = cluster(2, 9);
  const err = new TypeError('bad input');
  const value = {
    s: 'héllo ✓', n: 1.5, i: -7, max: Number.MAX_SAFE_INTEGER, nan: NaN, inf: -Infinity,
    big: 5n, huge: 2n ** 70n, neg: -(2n ** 65n),
    u8: new Uint8Array([1, 2, 3, 255]),
    map: new Map<unknown, unknown>([[1, 'a'], ['k', { x: [1, 2] }]]),
    set: new Set([1, 'b']),
    nested: { a: [1, { b: null, c: undefined }], d: new Date(5) },
    nil: null, undef: undefined, err,
  };
  const replies = await objects[0]!.ordered.echo(value);
  for (const r of replies) {
    const v = r.value as typeof value;
    assert.is(v.s, value.s); assert.is(v.n, 1.5); assert.is(v.i, -7); assert.is(v.max, Number.MAX_SAFE_INTEGER);
    assert.ok(Number.isNaN(v.nan)); assert.is(v.inf, -Infinity);
    assert.is(v.big, 5n); assert.is(v.huge, 2n ** 70n); assert.is(v.neg, -(2n ** 65n));
    assert.instance(v.u8, Uint8Array); assert.equal([...v.u8], [1, 2, 3, 255]);
    assert.instance(v.map, Map); assert.equal([...v.map.keys()], [1, 'k']); assert.equal(v.map.get('k'), { x: [1, 2] });
    assert.instance(v.set, Set); assert.equal([...v.set], [1, 'b']);
    assert.not.instance(v.nested, Map);
    assert.is(v.nested.a[0], 1); assert.equal(v.nested.a[1], { b: null, c: undefined });
      assert.ok('c' in (v.nested.a[1] as object));
    assert.is(v.nested.d.getTime(), 5);
    assert.is(v.nil, null); assert.is(v.undef, undefined); assert.ok('undef' in v);
    assert.instance(v.err, TypeError); assert.is(v.err.message, 'bad input');
  }
  // The replicas' copies of a Uint8Array argument own their memory (delivered bytes are overwritten after delivery).
  assert.equal([...(replies[1]!.value as typeof value).u8], [1, 2, 3, 255]);
  // What cannot be encoded is refused before sending.
  try { await objects[0]!.ordered.echo(Symbol('x')); assert.unreachable(); } catch (error) {
    assert.instance(error, CodecError);
  }
  // Replies are copies: the caller never holds the replica's own objects.
  const local = await objects[0]!.query(0).echo(value.map);
  assert.ok(local !== value.map);
});

/** `channel` with its sends counted: multicast (send) and point-to-point (sendTo). */
function counted(channel: OrderedChannel): { channel: OrderedChannel; sent: { multicast: number; direct: number } } {
  const sent = { multicast: 0, direct: 0 };
  const wrapper = Object.assign(Object.create(channel) as OrderedChannel, {
    send: (bytes: Uint8Array) => { sent.multicast++; return channel.send(bytes); },
    sendTo: (member: number, bytes: Uint8Array) => { sent.direct++; return channel.sendTo(member, bytes); },
  });
  return { channel: wrapper, sent };
}

test('an application channel that throws or returns no promise: the call settles, nothing is left waiting',
  async () => {
  const shard = new LoopbackShard({ members: [0, 1], seed: 8 });
  const boom = new Error('the channel is down');
  let mode: 'throw' | 'throw nothing' | 'reject nothing' | 'undefined' | 'pass' = 'throw';
  const inner = shard.channel(0);
  const channel = Object.assign(Object.create(inner) as OrderedChannel, {
    send: (bytes: Uint8Array) => {
      if (mode === 'throw') throw boom;
      if (mode === 'throw nothing') throw undefined;
      if (mode === 'reject nothing') return Promise.reject();
      const sent = inner.send(bytes);
      return (mode === 'undefined' ? undefined : sent) as unknown as Promise<void>;
    },
    sendTo: (member: number, bytes: Uint8Array) => {
      if (mode === 'throw nothing') throw undefined;
      if (mode === 'reject nothing') return Promise.reject();
      return inner.sendTo(member, bytes);
    },
  });
  const caller = ReplicatedObject.attach(new TicketBook(), channel, { type: TicketBook });
  ReplicatedObject.attach(new TicketBook(), shard.channel(1), { type: TicketBook });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const call = caller.ordered.book('t-1', 'ann'); // returns a promise: the throw is its rejection
    try { await call; assert.unreachable('the channel threw'); } catch (error) { assert.is(error, boom); }
    assert.is(caller.inFlight, 0, 'the failed call does not count against maxCallsInFlight');
    for (const nothing of ['throw nothing', 'reject nothing'] as const) {
      mode = nothing; // a channel may throw or reject with anything: the call still rejects, with an Error
      for (const attempt of [() => caller.ordered.book('t-1', 'ann'), () => caller.query(1).holder('t-1')]) {
        try { await attempt(); assert.unreachable(nothing); } catch (error) {
          assert.instance(error, Error, nothing);
          assert.match((error as Error).message, /the channel's send failed with undefined/);
        }
        assert.is(caller.inFlight, 0, nothing);
      }
    }
    mode = 'undefined';
    assert.equal((await caller.ordered.book('t-2', 'bo')).map((r) => r.value), [true, true]);
    mode = 'pass';
    assert.equal((await caller.ordered.book('t-2', 'cy')).map((r) => r.value), [false, false]);
    await new Promise((r) => setImmediate(r));
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('a replica whose channel throws a non-Error when replying reports an Error, and the caller is not left hanging',
  async () => {
  const shard = new LoopbackShard({ members: [0, 1], seed: 9 });
  const inner = shard.channel(1);
  const throwing = Object.assign(Object.create(inner) as OrderedChannel, {
    sendTo: () => { throw 42; }, // not an Error
  });
  Object.defineProperty(throwing, 'reply', { value: undefined }); // replies go by sendTo
  const reported: unknown[] = [];
  const caller = ReplicatedObject.attach(new TicketBook(), shard.channel(0), { type: TicketBook, timeoutMs: 300 });
  ReplicatedObject.attach(new TicketBook(), throwing, { type: TicketBook, onError: (e) => reported.push(e) });
  try { await caller.ordered.book('t-1', 'ann'); assert.unreachable('member 1 never replied'); } catch (error) {
    assert.instance(error, TimeoutError);
  }
  assert.ok(reported.length >= 1 && reported.every((e) => e instanceof Error), String(reported));
  assert.match((reported[0] as Error).message, /the channel's send failed with 42/);
});

test('query of a method that is not a declared query (book) is refused with NotAQueryError before anything is sent',
  async () => {
  const shard = new LoopbackShard({ members: [0, 1, 2], seed: 4 });
  const { channel, sent } = counted(shard.channel(0));
  const caller = ReplicatedObject.attach(new TicketBook(), channel, { type: TicketBook });
  const others = [1, 2].map((m) => ReplicatedObject.attach(new TicketBook(), shard.channel(m), { type: TicketBook }));
  assert.equal(caller.queries, ['echo', 'holder']);
  for (const attempt of [
    // @ts-expect-error book changes state: it is not in TicketBook.queries, so query() does not offer it
    () => caller.query(1).book('t-1', 'mallory'),
    () => caller.callMember(1, 'cancel', ['t-1', 'mallory']),
  ]) {
    try {
      await attempt();
      assert.unreachable('a mutating method must not run through query()');
    } catch (error) {
      assert.instance(error, NotAQueryError);
      const e = error as NotAQueryError;
      assert.is(e.code, 'ERR_SQUALL_NOT_A_QUERY');
      assert.is(e.className, 'TicketBook');
      assert.equal(e.queries, ['echo', 'holder']);
      assert.match(e.message, /ordered\.(book|cancel)\(…\)/);
      assert.match(e.message, /static queries = \['echo', 'holder', '(book|cancel)'\] as const/);
    }
  }
  await shard.settled();
  assert.equal(sent, { multicast: 0, direct: 0 }, 'nothing was sent');
  assert.is(caller.inFlight, 0);
  for (const o of [caller, ...others]) assert.is(o.state.holder('t-1'), null, 'no copy changed');
  // A declared query still goes, and ordered may run any method, queries included.
  assert.is(await caller.query(1).holder('t-1'), null);
  assert.is(sent.direct, 1);
  assert.equal((await caller.ordered.holder('t-1')).map((r) => r.value), [null, null, null]);
});

test('a replica refuses a query for a method that is not a declared query, whatever the caller ran (n=3)', async () => {
  const { shard, objects } = cluster(3, 6);
  const answers: Array<{ from: number; ok: number; code: string; queries: string[] }> = [];
  const spy = shard.channel(0); // member 0's handlers are replaced: it plays a peer running other code
  spy.onDirect((from, bytes) => {
    const reply = decodeEnvelope(bytes) as ReplyEnvelope;
    const error = reply.value as { code: string; queries: string[] };
    answers.push({ from, ok: reply.ok ? 1 : 0, code: error.code, queries: error.queries });
  });
  await spy.sendTo(1, encodeCall(Kind.Query, 77, 'book', ['t-9', 'mallory'], 1 << 20));
  await spy.sendTo(2, encodeCall(Kind.Query, 78, 'cancel', ['t-9', 'mallory'], 1 << 20));
  await shard.settled();
  assert.equal(answers.sort((a, b) => a.from - b.from), [
    { from: 1, ok: 0, code: 'ERR_SQUALL_NOT_A_QUERY', queries: ['echo', 'holder'] },
    { from: 2, ok: 0, code: 'ERR_SQUALL_NOT_A_QUERY', queries: ['echo', 'holder'] },
  ]);
  for (const o of objects.slice(1)) assert.is(o.state.holder('t-9'), null, 'the refused query changed nothing');
});

test('a caller meets the replica\'s refusal as NotAQueryError (a peer whose class declares fewer queries)',
  async () => {
  class Narrow { static readonly queries = [] as const; holder(_ticket: string): string | null { return null; } }
  const shard = new LoopbackShard({ members: [0, 1], seed: 2 });
  const wide = ReplicatedObject.attach(new TicketBook(), shard.channel(0), { type: TicketBook });
  ReplicatedObject.attach(new Narrow(), shard.channel(1), { type: Narrow });
  try {
    await wide.query(1).holder('t-1');
    assert.unreachable('member 1 declares no queries');
  } catch (error) {
    assert.instance(error, NotAQueryError);
    assert.is((error as NotAQueryError).className, 'Narrow');
    assert.equal((error as NotAQueryError).queries, []);
  }
});

test('a class without static queries offers no query; a queries list naming no method is a ConfigError', async () => {
  class Counter {
    n = 0;
    increment(by: number): number { this.n += by; return this.n; }
    value(): number { return this.n; }
  }
  const shard = new LoopbackShard({ members: [0, 1] });
  const counter = ReplicatedObject.attach(new Counter(), shard.channel(0), { type: Counter });
  ReplicatedObject.attach(new Counter(), shard.channel(1), { type: Counter });
  // @ts-expect-error Counter declares no queries: query() offers nothing
  try { await counter.query(1).increment(100); assert.unreachable(); } catch (error) {
    assert.instance(error, NotAQueryError);
  }
  assert.match(
    (await counter.callMember(1, 'value', []).catch((e: Error) => e) as Error).message,
    /static queries = \['value'\] as const/);
  assert.equal((await counter.ordered.increment(2)).map((r) => r.value), [2, 2]);

  class Typo { static readonly queries = ['valu'] as const; value(): number { return 0; } }
  try {
    ReplicatedObject.attach(new Typo(), new LoopbackShard({ members: [0] }).channel(0), { type: Typo });
    assert.unreachable('a query that names no method');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match(
      (error as Error).message, /Typo\.queries names "valu", which is not a method of Typo; its methods: value/);
  }
});

test('Reply.version: vid << 32 | seq, the same at every member, growing; formatVersion gives "vid.seq" and ' +
  'parseVersion reads it back', async () => {
  const { objects } = cluster(3, 8);
  const first = await objects[0]!.ordered.book('t-1', 'alice');
  const second = await objects[2]!.ordered.book('t-2', 'bob');
  assert.ok(second[0]!.version > first[0]!.version, 'a later command has a larger version');
  const text = formatVersion(first[0]!.version);
  assert.match(text, /^1\.\d+$/, 'the loopback shard is view 1');
  assert.is(JSON.stringify({ version: text }), `{"version":"${text}"}`);
  assert.is(parseVersion(text), first[0]!.version);
  assert.equal(versionParts(versionOf(7, 12)), { vid: 7, seq: 12 });
  assert.is(formatVersion(versionOf(7, 12)), '7.12');
  assert.is(formatVersion(versionOf(3, 2 ** 32 - 1)), '3.4294967295');
  assert.ok(versionOf(4, 0) > versionOf(3, 2 ** 32 - 1), 'a later view wins whatever the seq');
  assert.is(formatVersion(-1n), '-1');
  assert.is(parseVersion('-1'), -1n);
  for (const bad of ['3', '3.', 'a.b', '1.4294967296']) {
    try { parseVersion(bad); assert.unreachable(bad); } catch (error) { assert.instance(error, ConfigError, bad); }
  }
});

test('closing rejects calls in flight and refuses new ones', async () => {
  const { shard, objects } = cluster(2);
  shard.hold(1);
  const call = objects[0]!.ordered.book('t-1', 'alice');
  await shard.settled();
  objects[0]!.close();
  try { await call; assert.unreachable(); } catch (error) {
    assert.is((error as { code?: string }).code, 'ERR_SQUALL_CLOSED');
  }
  try { await objects[0]!.ordered.book('t-2', 'bob'); assert.unreachable(); } catch (error) {
    assert.is((error as { code?: string }).code, 'ERR_SQUALL_CLOSED');
  }
});

test.run();
