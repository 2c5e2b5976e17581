// The native TCP fabric end to end: real addon, real sockets on 127.0.0.1, several fabrics (each with its own
// arena) in one process, workers blocked in the native wait. Nothing is mocked.
//
// The workers it starts are in test/support/fabric-workers.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomFillSync } from 'node:crypto';
import { Arena } from '../ts/arena.js';
import { ArenaError, BuildError, ConfigError } from '../ts/errors.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { GrantKind, WriteStatus } from '../ts/fabric/fabric.js';
import { MAX_WAIT_SPIN_US, NativeFabric, attachFabric, doorbellEpoch, waitForChange } from '../ts/fabric/native.js';
import * as map from '../ts/generated/memory-map.js';
import { D, MiB, Member, connectPair, controlGrant, dataGrant, sleep, until } from './support/fabric-members.js';
import { freePort } from '../ts/harness/cluster.js';
import { defineLaneTests } from './support/lane-tests.js';
import { startWorker } from './support/fabric-workers.js';

const { CompletionKind: K, FailReason: R } = map;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** For assert.throws: the error is an instance of `kind`. */
const is = (kind: new (...args: never[]) => Error) => (err: unknown) => err instanceof kind;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ------------------------------------------------------------------------------------------------ tests

function defineTests(): void {
  test('two fabrics: both sides see PEER_CONNECTED, and a write lands at the same offset', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      assert.equal(a.fabric.write(2, D, 16), WriteStatus.Ok, 'nothing written yet, the bytes are zero');
      const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 13 + 1) & 0xff);
      a.arena.u8.set(bytes, D + 200);
      assert.equal(a.fabric.write(2, D + 200, 100), WriteStatus.Ok);
      await until([a, b], () => b.arena.u8[D + 299] === bytes[99], 'the write to land');
      assert.equal([...b.arena.u8.subarray(D + 200, D + 300)], [...bytes]);
      assert.equal(b.arena.u8[D + 199], 0, 'the byte before the range is untouched');
      assert.equal(b.arena.u8[D + 300], 0, 'the byte after the range is untouched');
      assert.ok(a.fabric.stats().framesOut >= 2);
      assert.ok(b.fabric.stats().framesIn >= 2);
    } finally {
      a.close();
      b.close();
    }
  });

  test('a write into a quiet range is applied without ringing the doorbell; other writes ring it', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [{ ...controlGrant(D, 8), quiet: true }, controlGrant(D + 8, 8)]);
      await sleep(20);
      const before = doorbellEpoch(b.arena);
      for (let v = 1n; v <= 50n; v++) { a.arena.i64[D >> 3] = v; a.fabric.write(2, D, 8); }
      await until([a, b], () => b.arena.i64[D >> 3] === 50n, 'the quiet writes to land');
      await sleep(20);
      assert.is(doorbellEpoch(b.arena), before, 'quiet writes left the doorbell alone');
      a.arena.i64[(D + 8) >> 3] = 7n;
      a.fabric.write(2, D + 8, 8);
      await until([a, b], () => doorbellEpoch(b.arena) !== before, 'a normal write to ring the doorbell');
      assert.is(b.arena.i64[(D + 8) >> 3], 7n);
      assert.throws(() => a.fabric.grant(2, { ...controlGrant(D + 64, 8), quiet: 1 as unknown as boolean }),
        is(ConfigError));
    } finally {
      a.close();
      b.close();
    }
  });

  test('each channel has its own doorbell: writes ring the channel their grant names, and only that one', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096, 0), dataGrant(D + 4096, 4096, 1)]);
      await sleep(20);
      const before = [doorbellEpoch(b.arena, 0), doorbellEpoch(b.arena, 1)];
      a.fabric.writeImm(2, D + 4096, 64, 5);
      await until([a, b], () => b.seen[1].length === 1, 'the channel-1 completion');
      await sleep(20);
      assert.is.not(doorbellEpoch(b.arena, 1), before[1], 'channel 1 rang');
      assert.is(doorbellEpoch(b.arena, 0), before[0], 'channel 0 did not');
      const mid = doorbellEpoch(b.arena, 1);
      a.fabric.write(2, D, 64);
      await until([a, b], () => doorbellEpoch(b.arena, 0) !== before[0], 'channel 0 to ring');
      await sleep(20);
      assert.is(doorbellEpoch(b.arena, 1), mid, 'a channel-0 write leaves channel 1 alone');
      assert.throws(() => b.fabric.wake(2), is(ConfigError));
    } finally {
      a.close();
      b.close();
    }
  });

  test('writeImm raises a WRITE_IMM completion (imm, offset, length) in the ring its grant names', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [controlGrant(D, 4096, 0), dataGrant(D + 65536, 65536, 1)]);
      a.arena.u8.fill(9, D + 65536 + 8, D + 65536 + 8 + 1000);
      assert.equal(a.fabric.writeImm(2, D + 65536 + 8, 1000, 0xdeadbeef), WriteStatus.Ok);
      assert.equal(a.fabric.writeImm(2, D + 64, 16, 7), WriteStatus.Ok);
      await until([b], () => b.seen[1].length >= 1 && b.has(K.WRITE_IMM, 1, 7, 0), 'both completions');
      assert.equal(b.seen[1], [{ kind: K.WRITE_IMM, peer: 1, imm: 0xdeadbeef, offset: D + 65536 + 8, length: 1000 }]);
      assert.equal(b.arena.u8[D + 65536 + 8 + 999], 9, 'the bytes were applied before the completion was queued');
      const ring0Imm = b.seen[0].filter((e) => e.kind === K.WRITE_IMM);
      assert.equal(ring0Imm, [{ kind: K.WRITE_IMM, peer: 1, imm: 7, offset: D + 64, length: 16 }]);
      assert.equal(a.seen[1].length, 0, 'the sender gets no completion');
    } finally {
      a.close();
      b.close();
    }
  });

  test('writes to unknown peers, outside the arena, or with bad arguments are refused', async () => {
    const a = new Member(1);
    try {
      assert.equal(a.fabric.write(5, D, 8), WriteStatus.NotConnected);
      a.fabric.grant(5, dataGrant(D, 64));
      assert.equal(a.fabric.write(5, D, 8), WriteStatus.NotConnected, 'granted but not connected');
      assert.equal(a.fabric.write(5, a.arena.byteLength - 4, 8), WriteStatus.BadRange);
      assert.throws(() => a.fabric.write(5, -1, 8), is(ArenaError));
      assert.throws(() => a.fabric.write(5, 1.5, 8), is(ArenaError));
      assert.throws(() => a.fabric.writeImm(5, D, 8, -1), is(ConfigError));
      assert.throws(() => a.fabric.grant(1, dataGrant(D, 64)), is(ConfigError), 'a member never grants itself');
      assert.throws(() => a.fabric.grant(5, dataGrant(0, 64)), is(ArenaError), 'grants stay in the dynamic part');
      assert.throws(() => a.fabric.grant(5, controlGrant(D + 4, 64)), is(ArenaError), 'control grants are aligned');
      assert.throws(() => a.fabric.grant(5, dataGrant(D, 64, 2)), is(ConfigError), 'there are two rings');
      assert.throws(() => a.fabric.connect(6, 'no-such-host.invalid', 1), is(ConfigError));
      assert.throws(() => waitForChange(a.fabric.handle, 0, 10), is(ConfigError), 'the main thread never blocks');
    } finally {
      a.close();
    }
    assert.equal(a.fabric.write(5, D, 8), WriteStatus.Failed, 'writes after close fail');
    assert.throws(() => a.fabric.listen('127.0.0.1', 0), /closed/);
  });

  test('create refuses an arena with a bad header', () => {
    const arena = Arena.create({ memberId: 1, bytes: 1 * MiB });
    arena.u32[(map.HEADER_OFFSET + map.HEADER_MAGIC) >> 2] = 0;
    assert.throws(() => NativeFabric.create(arena, { memberId: 1, layoutTag: 0 }), is(ArenaError));
    arena.u32[(map.HEADER_OFFSET + map.HEADER_MAGIC) >> 2] = map.ARENA_MAGIC;
    arena.u32[(map.HEADER_OFFSET + map.HEADER_HASH) >> 2] = map.MEMORY_MAP_HASH ^ 1;
    assert.throws(() => NativeFabric.create(arena, { memberId: 1, layoutTag: 0 }), is(BuildError));
    arena.u32[(map.HEADER_OFFSET + map.HEADER_HASH) >> 2] = map.MEMORY_MAP_HASH;
    arena.u32[(map.HEADER_OFFSET + map.HEADER_ARENA_BYTES) >> 2] = 12345;
    assert.throws(() => NativeFabric.create(arena, { memberId: 1, layoutTag: 0 }), is(ArenaError));
    assert.throws(() =>
      NativeFabric.create(Arena.create({ memberId: 1, bytes: MiB }), { memberId: 70000, layoutTag: 0 }),
      is(ConfigError));
    assert.throws(() =>
      NativeFabric.create(Arena.create({ memberId: 1, bytes: MiB }), { memberId: 1, layoutTag: 0, maxFrameBytes: 0 }),
      is(ConfigError));
  });

  test('three fabrics in a mesh: writeAll reaches every connected peer', async () => {
    const m = [new Member(1), new Member(2), new Member(3)];
    try {
      const g = [dataGrant(D, 4096)];
      await connectPair(m[0]!, m[1]!, g);
      await connectPair(m[0]!, m[2]!, g);
      await connectPair(m[1]!, m[2]!, g);
      m[0]!.arena.u8.fill(0xab, D, D + 64);
      assert.equal(m[0]!.fabric.writeAll(D, 64), 2);
      m[2]!.arena.u8.fill(0xcd, D + 64, D + 128);
      assert.equal(m[2]!.fabric.writeAll(D + 64, 64), 2);
      await until(
        m, () => m[1]!.arena.u8[D + 63] === 0xab && m[2]!.arena.u8[D + 63] === 0xab &&
          m[0]!.arena.u8[D + 127] === 0xcd && m[1]!.arena.u8[D + 127] === 0xcd, 'both broadcasts');
      assert.equal(m[0]!.arena.u8[D + 63], 0xab);
    } finally {
      for (const x of m) x.close();
    }
  });

  test('10,000 ordered writes of a counter arrive in order, the ring filling and draining on the way', async () => {
    const a = new Member(1);
    const b = new Member(2);
    const N = 10_000;
    try {
      await connectPair(a, b, [controlGrant(D, 64, 0)]);
      b.seen[0].length = 0;
      const observer = startWorker({
        role: 'observe-counter', memory: b.arena.memory, handle: b.fabric.handle, offset: D, target: N,
        timeoutMs: 20_000,
      });
      await withTimeout(observer.ready, 5000, 'observer ready');
      for (let i = 1; i <= N; i++) {
        Atomics.store(a.arena.i64, D >> 3, BigInt(i));
        assert.equal(a.fabric.writeImm(2, D, 8, i), WriteStatus.Ok);
      }
      // 10,000 completions do not fit a 4096-entry ring: the receiver must hold back, not drop.
      await until([b], () => b.seen[0].length >= N, `${N} completions`, 20_000);
      const imms = b.seen[0].map((e) => e.imm);
      const firstWrong = imms.findIndex((imm, i) => imm !== i + 1);
      assert.is(firstWrong, -1, `completion ${firstWrong} carries imm ${imms[firstWrong]}`);
      assert.ok(b.seen[0].every((e) => e.kind === K.WRITE_IMM && e.offset === D && e.length === 8));
      assert.is(Atomics.load(b.arena.i64, D >> 3), BigInt(N));
      const seen = await withTimeout(observer.done, 20_000, 'observer');
      assert.is(seen.backwards, 0, 'the counter never went backwards');
      assert.is(seen.last, N);
      assert.ok(seen.observations! >= 1);
    } finally {
      a.close();
      b.close();
    }
  });

  test('a 64 MiB write is split into frames and arrives intact, with one completion', async () => {
    const size = 64 * MiB;
    const a = new Member(1, { arenaBytes: size + 2 * MiB });
    const b = new Member(2, { arenaBytes: size + 2 * MiB });
    try {
      await connectPair(a, b, [dataGrant(D, size, 1)]);
      const src = a.arena.u8.subarray(D, D + size);
      randomFillSync(src);
      const framesBefore = a.fabric.stats().framesOut;
      assert.equal(a.fabric.writeImm(2, D, size, 99), WriteStatus.Ok);
      assert.is(a.fabric.stats().framesOut - framesBefore, 4, '64 MiB in frames of 16 MiB');
      await until([b], () => b.seen[1].length > 0, 'the completion', 30_000);
      // The completion names the frame that carried the immediate: the last 16 MiB of the write.
      assert.equal(b.seen[1], [{ kind: K.WRITE_IMM, peer: 1, imm: 99, offset: D + size - 16 * MiB, length: 16 * MiB }]);
      assert.is(sha256(b.arena.u8.subarray(D, D + size)), sha256(src));
      await sleep(20);
      b.drain();
      assert.is(b.seen[1].length, 1, 'only the last frame carries the immediate');
    } finally {
      a.close();
      b.close();
    }
  });

  test('control writes are applied with 8-byte stores: a reader at the receiver never sees a torn counter',
    async () => {
    const a = new Member(1);
    const b = new Member(2);
    const range = 4096;
    const flags = new SharedArrayBuffer(4);
    const stop = new Int32Array(flags);
    try {
      await connectPair(a, b, [controlGrant(D, range)]);
      const checker = startWorker({
        role: 'check-torn', memory: b.arena.memory, handle: b.fabric.handle, flags, offset: D, length: range,
      });
      await withTimeout(checker.ready, 5000, 'checker ready');
      const endAt = Date.now() + 1000;
      let pushes = 0;
      let v = 0x1234_5678;
      while (Date.now() < endAt) {
        // Every byte of every counter changes from one push to the next.
        v = (v + 0x0101_0101) >>> 0;
        const value = BigInt(v) * 0x1_0000_0001n;
        for (let i = 0; i < range / 8; i++) Atomics.store(a.arena.i64, (D >> 3) + i, value);
        assert.equal(a.fabric.write(2, D, range), WriteStatus.Ok);
        pushes++;
        await new Promise((r) => setImmediate(r));
      }
      await sleep(20);
      Atomics.store(stop, 0, 1);
      const result = await withTimeout(checker.done, 5000, 'checker done');
      assert.ok(pushes > 100, `only ${pushes} pushes`);
      assert.ok(result.changes! > 10, `the checker saw only ${result.changes} pushed values`);
      assert.is(result.torn, 0, `${result.torn} torn counters in ${result.changes} changes seen`);
    } finally {
      Atomics.store(stop, 0, 1);
      a.close();
      b.close();
    }
  });

  test('pushes copy counters with 8-byte loads: a worker updating them meanwhile never makes a torn copy', async () => {
    const a = new Member(1);
    const b = new Member(2);
    const range = 4096;
    const flags = new SharedArrayBuffer(4);
    const stop = new Int32Array(flags);
    try {
      await connectPair(a, b, [controlGrant(D, range)]);
      const updater = startWorker({
        role: 'update-counters', memory: a.arena.memory, handle: a.fabric.handle, flags, offset: D, length: range,
      });
      await withTimeout(updater.ready, 5000, 'updater ready');
      const endAt = Date.now() + 1000;
      let pushes = 0;
      let torn = 0;
      let nonZero = 0;
      while (Date.now() < endAt) {
        for (let i = 0; i < 20; i++, pushes++) assert.equal(a.fabric.write(2, D, range), WriteStatus.Ok);
        await sleep(1);
        // A value torn by the sender's copy would sit in b's copy until the next push: look for it.
        for (let i = 0; i < range / 8; i++) {
          const value = BigInt.asUintN(64, Atomics.load(b.arena.i64, (D >> 3) + i));
          if (value >> 32n !== (value & 0xffff_ffffn)) torn++;
          if (value !== 0n) nonZero++;
        }
      }
      Atomics.store(stop, 0, 1);
      await withTimeout(updater.done, 5000, 'updater done');
      assert.ok(pushes > 100, `only ${pushes} pushes`);
      assert.ok(nonZero > 0, 'the pushes landed');
      assert.is(torn, 0, `${torn} torn counters in the receiver's copy`);
    } finally {
      Atomics.store(stop, 0, 1);
      a.close();
      b.close();
    }
  });

  test('waitForChange in a worker wakes on a remote write, and times out when nothing happens', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      const waiter = startWorker({
        role: 'wait-once', memory: b.arena.memory, handle: b.fabric.handle, offset: D + 10, timeoutMs: 10_000,
      });
      await withTimeout(waiter.ready, 5000, 'waiter ready');
      await sleep(100);
      a.arena.u8[D + 10] = 77;
      assert.equal(a.fabric.write(2, D + 10, 1), WriteStatus.Ok);
      const woke = await withTimeout(waiter.done, 5000, 'waiter woken');
      assert.is.not(woke.epoch, woke.seen, 'the epoch moved');
      assert.ok(woke.elapsedMs! >= 50, `slept only ${woke.elapsedMs} ms`);
      assert.ok(woke.elapsedMs! < 5000, 'woken by the write, not the timeout');
      assert.is(woke.byte, 77, 'the bytes are visible once the epoch moves');
      // The poller counts its wake call after making it, so the woken worker can report first (seen in a CI run
      // under ASan): wait for the count rather than read it once.
      await until([a, b], () => b.fabric.stats().wakeups >= 1, 'the poller to count its wake call');

      const idle = startWorker({
        role: 'wait-once', memory: b.arena.memory, handle: b.fabric.handle, offset: D + 10, timeoutMs: 150,
      });
      const timedOut = await withTimeout(idle.done, 5000, 'waiter timed out');
      assert.is(timedOut.epoch, timedOut.seen, 'nothing changed');
      assert.ok(timedOut.elapsedMs! >= 140, `returned after ${timedOut.elapsedMs} ms`);
    } finally {
      a.close();
      b.close();
    }
  });

  test('waitForChange with a spin wakes on a write, in its window or after it, and still times out', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      // The longest spin: a write right after 'ready' is usually caught while spinning, later ones from the
      // futex; whichever it is, the waiter wakes on the write and sees its bytes.
      for (const delayMs of [0, 100]) {
        const waiter = startWorker({
          role: 'wait-once', memory: b.arena.memory, handle: b.fabric.handle, offset: D + 20, timeoutMs: 10_000,
          spinUs: 1000,
        });
        await withTimeout(waiter.ready, 5000, 'waiter ready');
        if (delayMs) await sleep(delayMs);
        a.arena.u8[D + 20] = 50 + delayMs;
        assert.equal(a.fabric.write(2, D + 20, 1), WriteStatus.Ok);
        const woke = await withTimeout(waiter.done, 5000, 'spinning waiter woken');
        assert.is.not(woke.epoch, woke.seen, 'the epoch moved');
        assert.ok(woke.elapsedMs! < 5000, 'woken by the write, not the timeout');
        assert.is(woke.byte, 50 + delayMs, 'the bytes are visible once the epoch moves');
      }
      const idle = startWorker({
        role: 'wait-once', memory: b.arena.memory, handle: b.fabric.handle, offset: D + 20, timeoutMs: 150,
        spinUs: 1000,
      });
      const timedOut = await withTimeout(idle.done, 5000, 'spinning waiter timed out');
      assert.is(timedOut.epoch, timedOut.seen, 'nothing changed');
      assert.ok(timedOut.elapsedMs! >= 140, `returned after ${timedOut.elapsedMs} ms`);
      const tooLong = startWorker({
        role: 'wait-once', memory: b.arena.memory, handle: b.fabric.handle, offset: D + 20, timeoutMs: 150,
        spinUs: MAX_WAIT_SPIN_US + 1,
      });
      const refused = await tooLong.done.then(() => null, (e: Error) => e);
      assert.ok(refused && /spinUs must be an integer from 0 to 1000/.test(refused.message), String(refused));
    } finally {
      a.close();
      b.close();
    }
  });

  test('a worker writes through attachFabric, and its write lands', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      const writer = startWorker({
        role: 'write-attached', memory: a.arena.memory, handle: a.fabric.handle, offset: D + 100, length: 300, peer: 2,
      });
      const r = await withTimeout(writer.done, 5000, 'worker write');
      assert.is(r.status, WriteStatus.Ok);
      await until([b], () => b.arena.u8[D + 100 + 299] === ((299 * 7 + 3) & 0xff), 'the worker write to land');
      assert.equal([...b.arena.u8.subarray(D + 100, D + 400)], [...a.arena.u8.subarray(D + 100, D + 400)]);
    } finally {
      a.close();
      b.close();
    }
  });

  test('closing a fabric yields PEER_FAILED(CLOSED) at the other, whose writes then fail', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      a.close();
      await until([b], () => b.has(K.PEER_FAILED, 1), 'PEER_FAILED at b');
      assert.equal(
        b.seen[0].find((e) => e.kind === K.PEER_FAILED),
        { kind: K.PEER_FAILED, peer: 1, imm: R.CLOSED, offset: 0, length: 0 });
      assert.is(b.fabric.write(1, D, 8), WriteStatus.Failed);
      assert.throws(() => b.fabric.connect(1, '127.0.0.1', 1), /stays failed/);
    } finally {
      a.close();
      b.close();
    }
  });

  test('disconnect() reports LOCAL_CLOSE here and CLOSED at the peer', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096)]);
      a.fabric.disconnect(2);
      assert.is(a.fabric.write(2, D, 8), WriteStatus.Failed);
      await until([a, b], () => a.has(K.PEER_FAILED, 2) && b.has(K.PEER_FAILED, 1), 'both sides failed');
      assert.is(a.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm, R.LOCAL_CLOSE);
      assert.is(b.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm, R.CLOSED);
    } finally {
      a.close();
      b.close();
    }
  });

  test('connecting to a port nobody listens on yields PEER_FAILED(CONNECT_TIMEOUT)', async () => {
    const a = new Member(1, { connectTimeoutMs: 300 });
    try {
      const port = await freePort();
      const t0 = Date.now();
      a.fabric.connect(9, '127.0.0.1', port);
      await until([a], () => a.has(K.PEER_FAILED, 9), 'CONNECT_TIMEOUT', 5000);
      const elapsed = Date.now() - t0;
      assert.is(a.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm, R.CONNECT_TIMEOUT);
      assert.ok(elapsed >= 250, `gave up after ${elapsed} ms, before the timeout`);
      assert.is(a.fabric.write(9, D, 8), WriteStatus.Failed, 'a failed peer stays failed');
    } finally {
      a.close();
    }
  });

  test('a refused connect is retried until the peer starts listening', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      const port = await freePort();
      a.fabric.grant(2, dataGrant(D, 64));
      b.fabric.grant(1, dataGrant(D, 64));
      a.fabric.connect(2, '127.0.0.1', port);
      await sleep(150);
      a.drain();
      assert.is(a.seen[0].length, 0, 'still trying, nothing reported');
      b.port = b.fabric.listen('127.0.0.1', port);
      await until([a, b], () => a.has(K.PEER_CONNECTED, 2) && b.has(K.PEER_CONNECTED, 1), 'connected after retries');
    } finally {
      a.close();
      b.close();
    }
  });

  test('an initiator that reaches another member than it meant gives up with UNKNOWN_PEER', async () => {
    const a = new Member(1);
    const b = new Member(2);
    try {
      b.listen();
      b.fabric.grant(1, dataGrant(D, 64));
      a.fabric.grant(3, dataGrant(D, 64));
      a.fabric.connect(3, '127.0.0.1', b.port); // b's address, but a thinks it is member 3's
      await until([a, b], () => a.has(K.PEER_FAILED, 3) && b.has(K.PEER_FAILED, 1), 'both sides to give up');
      assert.is(a.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm, R.UNKNOWN_PEER);
      assert.not.ok(a.has(K.PEER_CONNECTED, 3));
    } finally {
      a.close();
      b.close();
    }
  });

  test('while ring 0 is full, connection events wait natively and nothing is lost', async () => {
    const a = new Member(1);
    const b = new Member(2);
    const c = new Member(3);
    const N = map.COMPLETION_RING_ENTRIES + 10;
    try {
      await connectPair(a, b, [controlGrant(D, 64, 0)]);
      b.seen[0].length = 0;
      for (let i = 1; i <= N; i++) assert.equal(a.fabric.writeImm(2, D, 8, i), WriteStatus.Ok);
      await sleep(50); // b's ring fills up; nobody drains it
      c.fabric.grant(2, controlGrant(D, 64, 0));
      b.fabric.grant(3, controlGrant(D, 64, 0));
      c.fabric.connect(2, '127.0.0.1', b.port);
      await until([c], () => c.has(K.PEER_CONNECTED, 2), 'c connected (its own ring has room)');
      await until([b], () => b.seen[0].length >= N + 1, 'every completion at b', 10_000);
      const imms = b.seen[0].filter((e) => e.kind === K.WRITE_IMM).map((e) => e.imm);
      assert.is(imms.length, N);
      assert.ok(imms.every((imm, i) => imm === i + 1), 'the immediates in order');
      const connected = b.seen[0].findIndex((e) => e.kind === K.PEER_CONNECTED && e.peer === 3);
      assert.ok(connected >= map.COMPLETION_RING_ENTRIES, `PEER_CONNECTED(3) at ${connected}: it waited for room`);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });

  test('a handshake with a different layoutTag is refused', async () => {
    const a = new Member(1, { layoutTag: 1 });
    const b = new Member(2, { layoutTag: 2 });
    try {
      b.listen();
      a.fabric.grant(2, dataGrant(D, 64));
      b.fabric.grant(1, dataGrant(D, 64));
      a.fabric.connect(2, '127.0.0.1', b.port);
      await until(
        [a, b], () => a.has(K.PEER_FAILED, 2) && b.has(K.CONNECTION_REJECTED, 0xffff), 'the refusal on both sides');
      assert.is(b.seen[0].find((e) => e.kind === K.CONNECTION_REJECTED)!.imm, R.LAYOUT_MISMATCH);
      assert.not.ok(a.has(K.PEER_CONNECTED, 2));
      assert.not.ok(b.has(K.PEER_CONNECTED, 1));
      assert.is(a.fabric.write(2, D, 8), WriteStatus.Failed);
    } finally {
      a.close();
      b.close();
    }
  });

  test('writeBatch: ranges arrive in order as one send; onArrival runs on this thread once per batch', async () => {
    const a = new Member(1), b = new Member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096), controlGrant(D + 4096, 64)]);
      let calls = 0;
      let sawData = -1;
      b.fabric.onArrival([0], () => { calls++; sawData = b.arena.u8[D + 1000]!; });
      assert.throws(() => b.fabric.onArrival([0], () => {}),
        (e: Error) => e instanceof ConfigError &&
        /already has an arrival handler/.test(e.message));
      const sendsBefore = a.fabric.stats().sendCalls;
      a.arena.u8.fill(7, D, D + 2048);
      Atomics.store(a.arena.i64, (D + 4096) >> 3, 42n);
      const ranges = new Float64Array([D, 1024, D + 1024, 1024, D + 4096, 8]);
      assert.is(a.fabric.writeBatch(2, ranges, 3), WriteStatus.Ok);
      assert.is(a.fabric.stats().sendCalls - sendsBefore, 1, 'three frames, one sendmsg');
      // The counter (last range) lands after the data: when it is visible, so are the bytes before it.
      await until(
        [a, b], () => calls > 0 && Atomics.load(b.arena.i64, (D + 4096) >> 3) === 42n,
        'the batch and the arrival call');
      assert.is(sawData, 7, 'the arrival call sees the data');
      assert.ok(b.arena.u8.subarray(D, D + 2048).every((x) => x === 7), 'every byte of both data ranges');
      assert.ok(calls <= 3, `one call per batch of applied writes, not per byte (${calls})`);
      // Bad input is refused before anything is sent.
      assert.throws(() => a.fabric.writeBatch(2, ranges, 4), (e: Error) => e instanceof ConfigError);
      assert.throws(() => a.fabric.writeBatch(2, new Float64Array([D, -1]), 1), (e: Error) => e instanceof ArenaError);
      assert.is(a.fabric.writeBatch(9, ranges, 1), WriteStatus.NotConnected);
    } finally {
      a.close();
      b.close();
    }
  });
}

defineTests();
defineLaneTests('tcp', {});
test.run();
