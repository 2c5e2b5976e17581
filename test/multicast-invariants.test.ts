// The ordered shard's assertions and invariants() (ts/multicast/shard.ts, sender.ts, receiver.ts) over a
// view of three members in one process (test/support/memory-group.ts): they hold at every step of a load
// with an idle sender (nulls) and a window that wraps, and a corrupted slot of ours is caught in invariants();
// a peer's counter that goes back is not counted, and the peer is reported.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subgroupColumns } from '../ts/multicast/layout.js';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';
import { planView } from '../ts/membership/plans.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };
const COLUMNS = subgroupColumns(planView({ subgroups: { log: LOG } }, [0, 1, 2])[0]!);

function stepAll(group: MemoryGroup, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const m of group.members) {
      m.channel.step();
      m.channel.invariants();
    }
  }
}

function sendFrom(m: MemoryMember, count: number): void {
  for (let k = 0; k < count; k++) {
    m.channel.send(Uint8Array.of(m.id * 16 + k)).catch(() => { /* the group is torn down mid-test */ });
  }
}

/** Arena offset of `column` (element `i`) in row `ofMember` of member m's copy of the table. */
function offset(m: MemoryMember, ofMember: number, column: string, i = 0): number {
  return m.layout.offsetOf(m.layout.rowOf(ofMember), m.layout.column(column), i);
}

test('multicast: invariants hold at every step of an ordered load whose window wraps, one sender idle (n=3)', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    sendFrom(group.member(0), 10);
    sendFrom(group.member(1), 7);
    stepAll(group, 30);
    for (const m of group.members) {
      assert.is(m.delivered.length, 17, `member ${m.id} delivered every message`);
      assert.equal(m.delivered, group.member(0).delivered, 'one order everywhere');
    }
    assert.ok(group.member(2).channel.nullsSent > 0, 'the idle sender kept the round robin going with nulls');
    for (const m of group.members) assert.equal(m.suspects, [], `member ${m.id} suspects no honest peer`);
  } finally {
    group.release();
  }
});

test('multicast: invariants() catches a slot of ours that does not hold the index written into it', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    const m = group.member(0);
    sendFrom(m, 5);
    stepAll(group, 10);
    m.channel.invariants();
    const at = offset(m, 0, COLUMNS.slots, (4 % LOG.window) * COLUMNS.slotBytes); // index 4's slot
    m.arena.u32[at >> 2] = 2; // the slot's index (low half, stored plus one: slots.ts) now says 1
    assert.throws(() => m.channel.invariants(), /internal error: the index a slot of ours holds: 1, expected 4/);
  } finally {
    group.release();
  }
});

test('multicast: a sender\'s index and a peer\'s seqNum that go back are not counted: the peer is reported', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    sendFrom(group.member(0), 5);
    stepAll(group, 10);
    const m = group.member(1);
    const index = offset(m, 0, COLUMNS.index) >> 3;
    assert.is(Atomics.load(m.arena.i64, index), 5n, 'member 1 holds member 0\'s index');
    Atomics.store(m.arena.i64, index, 2n);
    m.channel.step(); // a peer's value: no assertion (test/shard-peer-values.test.ts has every such value)
    assert.equal(m.suspects, ['main:0'], 'member 1 reports member 0');
    assert.is((m.channel.state()['numReceived'] as number[])[0], 4, 'its last good index stays counted');
    const seqNum = offset(m, 2, COLUMNS.seqNum) >> 3;
    const seen = Atomics.load(m.arena.i64, seqNum);
    assert.ok(seen > 0n, 'member 1 holds member 2\'s seqNum');
    m.channel.invariants(); // the kernels take minima; invariants() reads every peer's counters
    Atomics.store(m.arena.i64, seqNum, seen - 1n); // not below the frontier: only invariants() sees it
    m.channel.invariants();
    m.channel.step();
    assert.equal(m.suspects, ['main:0', 'main:2'], 'and member 2, whose seqNum went back');
  } finally {
    group.release();
  }
});

test.run();
