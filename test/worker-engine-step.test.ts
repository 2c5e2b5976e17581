// The worker engine's two halves in one process (test/support/memory-group.ts, engine 'worker'): each
// member's channel sends and delivers as its main thread does, and the predicate worker's ShardEngine
// (workers/shard-engine.ts) runs receipt, seqNum, stability and the acknowledgements when the suite calls its
// round(). The suite chooses who runs when, so it can put the main thread's step where the real threads may
// put it: before the worker has computed what the others' counters already say.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };

function sendFrom(m: MemoryMember, count: number, first = 0): void {
  for (let k = 0; k < count; k++) {
    m.channel.send(Uint8Array.of(m.id * 64 + first + k)).catch(() => { /* the group is torn down mid-test */ });
  }
}

test('worker engine: the main thread delivers once the others\' seqNum land, not waiting for the worker\'s frontier',
  () => {
  const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', 'worker');
  try {
    const [m0, m1, m2] = group.members as [MemoryMember, MemoryMember, MemoryMember];
    for (const m of group.members) m.channel.step(); // the start barrier passed: each shard is open to its worker
    sendFrom(m0, 1);
    m0.channel.step();    // the slot and its index go to 1 and 2
    m0.worker!.round();   // receipt of its own message, seqNum 0 pushed; the others' seqNum not in yet
    assert.is(m0.arrivals, 0, 'the worker found nothing stable');
    m1.worker!.round();   // 1 and 2 receive it and push seqNum 0 to everyone
    m2.worker!.round();
    const wakes = m0.wakes;
    m0.channel.step();    // woken by those arrivals (the poller rings the main thread and the worker at once)
    assert.equal(m0.delivered, ['0:0'], 'delivered from the seqNums in its table');
    assert.ok(m0.wakes > wakes, 'and rang its worker, which pushes the new deliveredNum');
    assert.is(m0.arrivals, 0, 'before its worker computed the frontier or woke it');
    for (const m of [m0, m1, m2]) m.worker!.round();
    for (const m of [m0, m1, m2]) m.channel.step();
    assert.equal(m0.delivered, ['0:0'], 'and only once');
    assert.equal(m1.delivered, ['0:0']);
    assert.equal(m2.delivered, ['0:0']);
  } finally {
    group.release();
  }
});

test('worker engine: a worker pushes nothing before its main thread first stepped the shard (the start barrier ' +
  'passed) — a push to a peer not yet connected is lost, and a later index would name the slot it carried', () => {
  const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', 'worker');
  try {
    const [m0, m1, m2] = group.members as [MemoryMember, MemoryMember, MemoryMember];
    m2.connecting = true; // member 0's connection to member 2 is not up yet: the view has not passed its barrier
    sendFrom(m0, 1);      // committed to its slot at once (the send's fast path)
    for (const m of group.members) m.worker!.round();
    m2.connecting = false;
    sendFrom(m0, 1, 1);
    for (let i = 0; i < 10; i++) for (const m of group.members) { m.channel.step(); m.worker!.round(); }
    for (const m of [m0, m1, m2]) assert.equal(m.delivered, ['0:0', '0:1'], `member ${m.id}'s sequence`);
  } finally {
    group.release();
  }
});

test('worker engine: the worker computes the persistence frontier, exact past 2^53, and wakes the main thread ' +
  'when it moves', () => {
  const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', 'worker');
  try {
    for (const m of group.members) m.channel.step(); // open to the workers
    const version = (1n << 53n) + 3n; // vid 2^21, message 3: not a float
    group.members.forEach((m, i) => m.channel.storePersisted(version + BigInt(i)));
    for (const m of group.members) m.channel.step(); // persistedNum pushed
    assert.is(group.members[0]!.channel.persistedFrontier(), -1n, 'the main thread leaves it to the worker');
    const arrivals = group.members.map((m) => m.arrivals);
    for (const m of group.members) m.worker!.round();
    group.members.forEach((m, i) => {
      assert.ok(m.arrivals > arrivals[i]!, `member ${m.id}: its worker woke the main thread`);
      assert.is(m.channel.persistedFrontier(), version, `member ${m.id}: the least persistedNum, exact`);
    });
  } finally {
    group.release();
  }
});

test('worker engine: steps and worker rounds in a random order, the window wrapping — the same sequence everywhere',
  () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', 'worker');
    try {
      let state = seed;
      const random = (n: number) => { // a small LCG: the order is the seed's, run after run
        state = (state * 1103515245 + 12345) >>> 0;
        return (state >>> 16) % n;
      };
      const [m0, m1, m2] = group.members as [MemoryMember, MemoryMember, MemoryMember];
      sendFrom(m0, 20);
      sendFrom(m1, 10);   // member 2 sends nothing: its worker's nulls keep the round robin moving
      const done = () => group.members.every((m) => m.delivered.length >= 30);
      for (let i = 0; i < 4000 && !done(); i++) {
        const m = group.members[random(3)]!;
        if (random(2) === 0) m.worker!.round();
        else m.channel.step();
      }
      for (let i = 0; i < 20; i++) for (const m of group.members) { m.worker!.round(); m.channel.step(); }
      assert.is(m0.delivered.length, 30, `seed ${seed}: member 0 delivered everything`);
      assert.equal(m1.delivered, m0.delivered, `seed ${seed}: member 1's sequence`);
      assert.equal(m2.delivered, m0.delivered, `seed ${seed}: member 2's sequence`);
      assert.equal(m0.delivered.filter((d) => d.startsWith('0:')), [...Array(20).keys()].map((k) => `0:${k}`));
      // However late a member's steps or rounds come, none takes an honest peer's values for bad ones.
      for (const m of group.members) assert.equal(m.suspects, [], `seed ${seed}: member ${m.id} suspects no one`);
    } finally {
      group.release();
    }
  }
});

test.run();
