// The lanes of the native fabric (native/frame.h, Lane), on real fabrics of any backend: test/fabric.test.ts
// runs them on the tcp backend, test/fabric-libfabric.test.ts once per provider. A peer is two connections;
// a control write never waits behind the data lane, each lane applies the grant rules, and a peer whose
// lane breaks fails as a whole, once.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../ts/errors.js';
import { Lane, WriteStatus } from '../../ts/fabric/fabric.js';
import * as map from '../../ts/generated/memory-map.js';
import {
  D, MiB, Member, connectPair, controlGrant, dataGrant, sleep, until, type MemberOptions,
} from './fabric-members.js';

const { CompletionKind: K, FailReason: R } = map;

const BULK = 16 * MiB;
const BULK_WRITES = 8; // 128 MiB queued on the data lane
const COUNTER = D + BULK; // a control grant right after the bulk range
const COUNTER_IMM = 1000;

export function defineLaneTests(label: string, options: MemberOptions): void {
  const member = (id: number) => new Member(id, { arenaBytes: BULK + 8 * MiB, ...options });

  test(
    `[${label}] lanes: a control write overtakes ${BULK_WRITES * BULK / MiB} MiB queued on the data ` +
    `lane to the same peer`, async () => {
    const a = member(1), b = member(2);
    try {
      // The counter goes with an immediate on the same completion ring as the bulk writes: where its completion
      // sits among theirs is the order the receiver's poller applied them in, whenever this thread looks.
      await connectPair(a, b, [dataGrant(D, BULK, 1), controlGrant(COUNTER, 64, 1)]);
      a.arena.u8.fill(0x5a, D, D + BULK);
      for (let i = 1; i <= BULK_WRITES; i++) assert.is(a.fabric.writeImm(2, D, BULK, i), WriteStatus.Ok);
      Atomics.store(a.arena.i64, COUNTER >> 3, 77n);
      assert.is(a.fabric.writeImm(2, COUNTER, 8, COUNTER_IMM, Lane.Control), WriteStatus.Ok);
      const imms = () => b.seen[1].filter((e) => e.kind === K.WRITE_IMM).map((e) => e.imm);
      await until([a, b], () => imms().length === BULK_WRITES + 1, 'every bulk write and the counter', 60_000);
      const blocksBeforeCounter = imms().indexOf(COUNTER_IMM);
      assert.ok(blocksBeforeCounter >= 0 && blocksBeforeCounter < BULK_WRITES,
        `the counter landed while the data lane still ` +
          `carried bulk writes (${blocksBeforeCounter} of ${BULK_WRITES} had landed)`);
      assert.is(Atomics.load(b.arena.i64, COUNTER >> 3), 77n);
      assert.equal(
        imms().filter((imm) => imm !== COUNTER_IMM),
        Array.from({ length: BULK_WRITES }, (_, i) => i + 1), 'the data lane in order');
      assert.is(b.arena.u8[D + BULK - 1], 0x5a);
    } finally {
      a.close();
      b.close();
    }
  });

  test(`[${label}] lanes: each lane applies its writes in order; a bad lane argument is a ConfigError`, async () => {
    const a = member(1), b = member(2);
    try {
      await connectPair(a, b, [dataGrant(D, 4096), controlGrant(COUNTER, 64)]);
      for (let v = 1n; v <= 2000n; v++) {
        Atomics.store(a.arena.i64, COUNTER >> 3, v);
        assert.is(a.fabric.write(2, COUNTER, 8, Lane.Control), WriteStatus.Ok);
        Atomics.store(a.arena.i64, D >> 3, v);
        assert.is(a.fabric.write(2, D, 8, Lane.Data), WriteStatus.Ok);
      }
      let last = 0n, lastData = 0n, backwards = 0;
      await until([a, b], () => {
        const v = Atomics.load(b.arena.i64, COUNTER >> 3), w = Atomics.load(b.arena.i64, D >> 3);
        if (v < last || w < lastData) backwards++;
        last = v;
        lastData = w;
        return v === 2000n && w === 2000n;
      }, 'both counters at 2000');
      assert.is(backwards, 0, 'neither lane went backwards');
      const ranges = new Float64Array([COUNTER, 8]);
      assert.is(a.fabric.writeBatch(2, ranges, 1, Lane.Control), WriteStatus.Ok);
      assert.throws(() => a.fabric.write(2, D, 8, 2 as Lane), (e: unknown) => e instanceof ConfigError);
      assert.throws(() => a.fabric.writeAll(D, 8, -1 as Lane), (e: unknown) => e instanceof ConfigError);
      assert.throws(() => a.fabric.writeBatch(2, ranges, 1, 0.5 as Lane), (e: unknown) => e instanceof ConfigError);
    } finally {
      a.close();
      b.close();
    }
  });

  for (const lane of [Lane.Control, Lane.Data]) {
    const name = lane === Lane.Control ? 'control' : 'data';
    test(
      `[${label}] lanes: a write outside the grant on the ${name} lane fails the peer once ` +
      `(OUT_OF_GRANT), arena untouched`, async () => {
      const a = member(1), b = member(2);
      try {
        await connectPair(a, b, [dataGrant(D, 4096), controlGrant(COUNTER, 64)]);
        const outside = COUNTER + 4096; // granted to nobody
        a.arena.u8.fill(0xee, outside, outside + 64);
        const before = b.arena.u8.slice(D, COUNTER + 8192);
        a.fabric.write(2, outside, 64, lane);
        await until([a, b], () => b.has(K.PEER_FAILED, 1) && a.has(K.PEER_FAILED, 2), 'both sides fail the connection');
        assert.is(map.FailReasonName[b.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm], 'OUT_OF_GRANT');
        assert.ok(b.arena.u8.slice(D, COUNTER + 8192).every((x, i) => x === before[i]), 'the arena is untouched');
        await sleep(30);
        b.drain();
        a.drain();
        assert.is(b.seen[0].filter((e) => e.kind === K.PEER_FAILED).length, 1, 'one PEER_FAILED');
        assert.is(a.seen[0].filter((e) => e.kind === K.PEER_FAILED).length, 1, 'one PEER_FAILED at the sender');
        for (const l of [Lane.Data, Lane.Control]) assert.is(a.fabric.write(2, COUNTER, 8, l), WriteStatus.Failed);
      } finally {
        a.close();
        b.close();
      }
    });
  }

  for (const lane of [Lane.Control, Lane.Data]) {
    const name = lane === Lane.Control ? 'control' : 'data';
    test(
      `[${label}] lanes: a broken ${name} lane fails the peer at both ends, once; neither lane takes writes after`,
      async () => {
      const a = member(1), b = member(2);
      try {
        await connectPair(a, b, [dataGrant(D, 4096), controlGrant(COUNTER, 64)]);
        a.fabric.breakLane(2, lane);
        await until(
          [a, b], () => b.has(K.PEER_FAILED, 1) && a.has(K.PEER_FAILED, 2), 'both sides fail the peer', 10_000);
        assert.is(map.FailReasonName[b.seen[0].find((e) => e.kind === K.PEER_FAILED)!.imm], 'CLOSED');
        await sleep(50);
        a.drain();
        b.drain();
        assert.is(a.seen[0].filter((e) => e.kind === K.PEER_FAILED).length, 1, 'one PEER_FAILED here');
        assert.is(b.seen[0].filter((e) => e.kind === K.PEER_FAILED).length, 1, 'one PEER_FAILED there');
        for (const l of [Lane.Data, Lane.Control]) {
          assert.is(a.fabric.write(2, COUNTER, 8, l), WriteStatus.Failed);
          assert.is(b.fabric.write(1, COUNTER, 8, l), WriteStatus.Failed);
        }
      } finally {
        a.close();
        b.close();
      }
    });
  }
}
