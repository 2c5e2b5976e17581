// A member that holds a later proposal than a commit some row applied (protocol.ts, #olderCommit): when its
// proposal keeps that row, it can never gather that row's acknowledgement, so it applies the older commit
// instead of waiting for ever (the group simulator found the case: seed 31002354). When its proposal removes
// every such row, the proposal can still commit, and the member goes on with it as before.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planView } from '../ts/membership/plans.js';
import type { Change } from '../ts/membership/protocol.js';
import { subgroupColumns } from '../ts/multicast/layout.js';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };
const TRIM = subgroupColumns(planView({ subgroups: { log: LOG } }, [0, 1, 2])[0]!).trim;

/** Writes row `of`'s i32 column (or u8 entries) in member m's table, as a push from that member would. */
function put(m: MemoryMember, of: number, column: string, values: number[], u8 = false): void {
  const col = m.layout.column(column), row = m.layout.rowOf(of);
  values.forEach((v, i) => {
    const at = m.layout.offsetOf(row, col, i);
    if (u8) Atomics.store(m.arena.u8, at, v);
    else Atomics.store(m.arena.i32, at >> 2, v);
  });
}

/**
 * Member 1 of [0, 1, 2] suspected member 0 and, as the leader then, proposed 2 (removing 0) after it had
 * copied proposal 1's trim; member 2's row says it applied proposal 1, which removes `removed`.
 */
function lateLeader(removedByOne: number[]): { group: MemoryGroup; m: MemoryMember } {
  const group = new MemoryGroup([0, 1, 2], LOG);
  const m = group.member(1);
  group.member(0).down = true;
  group.member(2).down = true;
  m.protocol.suspect(0);
  put(m, 1, 'changes', [1, 0, 0], true);
  put(m, 1, 'proposer', [2]);
  put(m, 1, 'trimFor', [1]);
  put(m, 1, 'proposal', [2]);
  put(m, 2, 'wedged', [1], true);
  put(m, 2, 'changes', removedByOne, true);
  put(m, 2, 'proposer', [1]);
  for (const column of ['proposal', 'trimFor', 'committed']) put(m, 2, column, [1]);
  for (const of of [1, 2]) { // nothing was sent: the trim of every sender is −1
    for (let i = 0; i < 3; i++) {
      Atomics.store(m.arena.i64, m.layout.offsetOf(m.layout.rowOf(of), m.layout.column(TRIM), i) >> 3, -1n);
    }
  }
  return { group, m };
}

test('a member whose proposal keeps a row that applied an older commit applies that commit', () => {
  const { group, m } = lateLeader([1, 0, 0]);
  try {
    const result = m.protocol.step();
    assert.is(result?.type, 'commit', 'it applies the older commit instead of waiting');
    const change = (result as { change: Change }).change;
    assert.equal([change.proposal, change.removed, change.next.members], [1, [0], [1, 2]]);
    m.protocol.invariants(); // its row went back to the commit's numbers, in order
    const at = (column: string) => Atomics.load(m.arena.i32, m.layout.offsetOf(1, m.layout.column(column)) >> 2);
    assert.equal([at('proposal'), at('trimFor'), at('committed')], [1, 1, 1]);
  } finally {
    group.release();
  }
});

test('a member whose proposal removes every row that applied the older commit goes on with its own', () => {
  const { group, m } = lateLeader([1, 0, 0]);
  try {
    put(m, 1, 'changes', [1, 0, 1], true); // member 1's proposal 2 removes 0 and 2: it needs no ack of 2's
    let result = null;
    for (let i = 0; i < 10 && !result; i++) result = m.protocol.step();
    assert.is(result?.type, 'commit');
    const change = (result as { change: Change }).change;
    assert.equal([change.proposal, change.removed], [2, [0, 2]], 'its own proposal, not the older commit');
  } finally {
    group.release();
  }
});

test.run();
