// The view-change protocol's assertions and invariants() (ts/membership/protocol.ts), over a view of three
// members in one process (test/support/memory-group.ts): they hold at every step of a change that removes
// a member that crashed under load, and a counter corrupted through the table is caught.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Change } from '../ts/membership/protocol.js';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 4 };

/** Steps the live members `rounds` times (shard, then protocol), checking every invariant after each step. */
function stepAll(group: MemoryGroup, rounds: number, changes: Map<number, Change>): void {
  for (let i = 0; i < rounds; i++) {
    for (const m of group.members) {
      if (m.down || changes.has(m.id)) continue;
      m.channel.step();
      const result = m.protocol.step();
      if (result?.type === 'commit') changes.set(m.id, result.change);
      else assert.is(result, null, `member ${m.id} goes on`);
      m.protocol.invariants();
      m.channel.invariants();
    }
  }
}

function sendFrom(m: MemoryMember, count: number): void {
  for (let k = 0; k < count; k++) {
    m.channel.send(Uint8Array.of(m.id * 16 + k)).catch(() => { /* the group is torn down mid-test */ });
  }
}

test('view change: invariants hold at every step of a change that removes a member crashed under load (n=3)', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    const changes = new Map<number, Change>();
    for (const m of group.members) sendFrom(m, 6);
    stepAll(group, 12, changes);
    for (const m of group.members) assert.is(m.delivered.length, 18, `member ${m.id} delivered every message`);
    const [a, b, c] = group.members as [MemoryMember, MemoryMember, MemoryMember];
    sendFrom(a, 3);
    sendFrom(c, 3);
    a.channel.step(); // some of the last messages reach the others before member 2 crashes, some do not
    c.down = true;
    a.protocol.suspect(2);
    b.protocol.suspect(2);
    stepAll(group, 12, changes);
    for (const id of [0, 1]) {
      const change = changes.get(id);
      assert.ok(change, `member ${id} applied the change`);
      assert.equal(change.removed, [2]);
      assert.equal(change.next, { vid: 1, members: [0, 1] });
    }
    for (const m of [a, b]) {
      m.channel.finishView(changes.get(m.id)!.trims, true);
      m.protocol.invariants();
      m.channel.invariants();
    }
    assert.equal(a.delivered, b.delivered, 'the members that go on delivered the same sequence');
  } finally {
    group.release();
  }
});

test('view change: invariants() catches a counter corrupted through the table (committed above the proposal)', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    const changes = new Map<number, Change>();
    const leader = group.member(0);
    group.member(2).down = true;
    leader.protocol.suspect(2);
    stepAll(group, 1, changes); // the leader proposes; member 1 acknowledges
    const { arena, layout } = leader;
    const at = (column: string) => layout.offsetOf(layout.rowOf(0), layout.column(column)) >> 2;
    const proposal = Atomics.load(arena.i32, at('proposal'));
    assert.ok(proposal > 0, 'the leader holds a proposal');
    leader.protocol.invariants();
    Atomics.store(arena.i32, at('committed'), proposal + 1);
    assert.throws(() => leader.protocol.invariants(), /squall internal error: committed ≤ trimFor in a row/);
    Atomics.store(arena.i32, at('committed'), 0);
    leader.protocol.invariants();
    Atomics.store(arena.u8, layout.offsetOf(layout.rowOf(0), layout.column('wedged')), 0);
    assert.throws(() => leader.protocol.invariants(), /wedged flag/, 'a member that wedged says so in its row');
  } finally {
    group.release();
  }
});

test('view change: a trimFor that would go back in this member\'s row is caught where it is written', () => {
  const group = new MemoryGroup([0, 1, 2], LOG);
  try {
    const changes = new Map<number, Change>();
    const follower = group.member(1);
    group.member(2).down = true;
    group.member(0).protocol.suspect(2);
    stepAll(group, 1, changes); // the leader proposes p; member 1 acknowledges it
    const { arena, layout } = follower;
    const at = (column: string) => layout.offsetOf(layout.rowOf(1), layout.column(column)) >> 2;
    const proposal = Atomics.load(arena.i32, at('proposal'));
    assert.ok(proposal > 0, 'member 1 acknowledged the proposal');
    // Corrupted: member 1's row says it copied a trim for a later proposal. When the leader publishes the
    // trim for p, member 1 copies it, and its trimFor would go back.
    Atomics.store(arena.i32, at('trimFor'), proposal + 1);
    assert.throws(() => stepAll(group, 1, changes), /squall internal error: this member's trimFor went back/);
  } finally {
    group.release();
  }
});

test.run();
