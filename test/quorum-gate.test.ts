// The protocol's side of the quorum gate (workers/predicate-worker.ts; docs/membership.md, "Failure
// detection"): a member whose failure detector found it cut off writes nothing to its row, and its next step
// stops it — as removed when the rows that reached it suspect it, else as partitioned. The worker's side (who
// is heard) is the heardWithin kernel (test/kernels.test.ts); the whole path runs in test/chaos-netns.test.ts
// and in the simulator's held cuts (test/group-sim.test.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };

/** Member `of`'s u8 entries of `column` in member m's copy of the table. */
function row(m: MemoryMember, of: number, column: string): number[] {
  const col = m.layout.column(column), r = m.layout.rowOf(of);
  return m.layout.members.map((_, i) => Atomics.load(m.arena.u8, m.layout.offsetOf(r, col, i)));
}

function withGroup(body: (group: MemoryGroup) => void): void {
  const group = new MemoryGroup([0, 1, 2, 3], LOG);
  try {
    body(group);
  } finally {
    group.release();
  }
}

test('a member cut off writes nothing and stops as partitioned, naming the members it did not hear', () => {
  withGroup((group) => {
    const m = group.member(3);
    for (const id of [0, 1, 2]) m.protocol.cutOff(id);
    const result = m.protocol.step();
    assert.equal(result, { type: 'partitioned', unreachable: [0, 1, 2] });
    assert.equal(row(m, 3, 'suspected'), [0, 0, 0, 0], 'no suspicion in its own row');
    assert.equal(row(group.member(0), 3, 'suspected'), [0, 0, 0, 0], 'and none pushed to the others');
    assert.is(row(group.member(0), 3, 'wedged')[0], 0, 'it did not wedge');
    assert.not.ok(m.protocol.wedged);
    assert.is(m.protocol.step(), null, 'it steps no more');
  });
});

test('a member cut off whose peers\' rows already suspect it stops as removed, by them', () => {
  withGroup((group) => {
    const m = group.member(1);
    // Member 0's row suspects member 1, as it arrives at member 1 (a process stopped, then continued).
    const col = m.layout.column('suspected');
    Atomics.store(m.arena.u8, m.layout.offsetOf(m.layout.rowOf(0), col, m.layout.rowOf(1)), 1);
    m.protocol.cutOff(2);
    assert.equal(m.protocol.step(), { type: 'suspected', by: [0] });
  });
});

test('a member that is not cut off is not stopped by the gate: a member outside the view is ignored', () => {
  withGroup((group) => {
    const m = group.member(0);
    m.protocol.cutOff(9); // no such member in the view
    assert.is(m.protocol.step(), null);
  });
});

test.run();
