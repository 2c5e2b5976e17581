// A peer writes its own row of our table (one-sided writes): a row no honest member could write must not
// crash, stall or grow the members that read it (ts/membership/row-checks.ts). Each scenario: a view of three
// members, member 2 turns hostile (its row, as members 0 and 1 hold it, is rewritten; it writes nothing
// else), and the honest members step. They must not throw, must never apply the bad row's trim or
// numbers, must suspect member 2, and must finish the change without it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subgroupColumns } from '../ts/multicast/layout.js';
import { planView } from '../ts/membership/plans.js';
import type { Fabric } from '../ts/fabric/fabric.js';
import { PeerConnections } from '../ts/fabric/peers.js';
import type { Change, ProtocolNote } from '../ts/membership/protocol.js';
import { MembershipTable } from '../ts/membership/table.js';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

const LOG = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };
const HONEST = [0, 1] as const;
const trimColumn = subgroupColumns(planView({ subgroups: { log: LOG } }, [0, 1, 2])[0]!).trim;

type Fields = Partial<Record<'wedged' | 'proposal' | 'trimFor' | 'committed' | 'proposer', number>> & {
  trim?: number[]; changes?: number[]; joins?: number[];
};

function offset(m: MemoryMember, column: string, i = 0): number {
  return m.layout.offsetOf(m.layout.rowOf(2), m.layout.column(column), i);
}

/** Rewrites member 2's row at every honest member. */
function corrupt(group: MemoryGroup, f: Fields): void {
  for (const id of HONEST) {
    const m = group.member(id);
    if (f.wedged !== undefined) Atomics.store(m.arena.u8, offset(m, 'wedged'), f.wedged);
    for (const k of ['proposal', 'trimFor', 'committed', 'proposer'] as const) {
      if (f[k] !== undefined) Atomics.store(m.arena.i32, offset(m, k) >> 2, f[k]!);
    }
    f.trim?.forEach((t, i) => Atomics.store(m.arena.i64, offset(m, trimColumn, i) >> 3, BigInt(t)));
    f.changes?.forEach((v, j) => Atomics.store(m.arena.u8, offset(m, 'changes', j), v));
    f.joins?.forEach((v, k) => Atomics.store(m.arena.i32, offset(m, 'joins', k) >> 2, v));
  }
}

/** A group where member 0 sent `sent` messages that every member received; member 2 then goes silent. */
function hostileGroup(sent: number): MemoryGroup {
  const group = new MemoryGroup([0, 1, 2], LOG);
  const a = group.member(0);
  for (let k = 0; k < sent; k++) a.channel.send(Uint8Array.of(k)).catch(() => { /* torn down mid-test */ });
  for (let i = 0; i < 10; i++) for (const m of group.members) m.channel.step();
  group.member(2).down = true;
  return group;
}

interface Outcome { changes: Map<number, Change>; notes: ProtocolNote[] }

/** Steps the honest members' protocols until both applied a change (at most 40 rounds), with the invariants. */
function stepHonest(group: MemoryGroup): Outcome {
  const changes = new Map<number, Change>(), notes: ProtocolNote[] = [];
  for (let i = 0; i < 40 && changes.size < 2; i++) {
    for (const id of HONEST) {
      if (changes.has(id)) continue;
      const m = group.member(id);
      m.channel.step();
      const result = m.protocol.step();
      notes.push(...(m.protocol.takeNotes() ?? []));
      if (result?.type === 'commit') changes.set(id, result.change);
      else assert.is(result, null, `member ${id} goes on`);
      m.protocol.invariants();
    }
  }
  return { changes, notes };
}

/** Both honest members suspected member 2 for its row, and installed the view of 0 and 1 by an honest trim. */
function assertRemovedForItsRow(group: MemoryGroup, { changes, notes }: Outcome): void {
  for (const id of HONEST) {
    const change = changes.get(id);
    assert.ok(change, `member ${id} applied a change`);
    assert.equal(change.removed, [2], `member ${id} removed member 2`);
    assert.equal(change.next.members, [0, 1]);
    assert.ok(change.proposal > 0 && change.proposal < 100, `proposal ${change.proposal} is small`);
    assert.equal(change.joined, []);
    for (const t of change.trims[0]![0]!) assert.ok(t >= -1 && t <= 10, `trim ${t} is one the members hold`);
  }
  assert.equal(changes.get(0)!.trims, changes.get(1)!.trims, 'one trim');
  assert.ok(notes.some((n) => n.event === 'badRow' && n.member === 2), 'member 2\'s row was found bad');
  for (const id of HONEST) assert.ok(group.member(id).protocol.suspects().has(2));
}

/** Runs one scenario: the group is released whatever happens. */
function scenario(name: string, sent: number, fields: (group: MemoryGroup) => Fields): void {
  test(name, () => {
    const group = hostileGroup(sent);
    try {
      corrupt(group, fields(group));
      const before = process.memoryUsage().heapUsed;
      const outcome = stepHonest(group);
      assertRemovedForItsRow(group, outcome);
      for (const id of HONEST) {
        const m = group.member(id);
        const { unsent } = m.channel.finishView(outcome.changes.get(id)!.trims, true);
        assert.ok(unsent.length <= 5, `member ${id} sends again ${unsent.length} of its messages`);
      }
      assert.ok(process.memoryUsage().heapUsed - before < 64 * 2 ** 20, 'no unbounded allocation');
    } finally {
      group.release();
    }
  });
}

scenario('bad row: a commit whose trim is 3·10^6 is not adopted; the members remove its writer', 5,
  () => ({ wedged: 1, proposal: 7, trimFor: 7, committed: 7, proposer: 3, trim: [3_000_000, 3_000_000, 3_000_000] }));

scenario('bad row: a commit whose trim of our rank is −1000 is not adopted (no slot before ours is read)', 5,
  () => ({ wedged: 1, proposal: 7, trimFor: 7, committed: 7, proposer: 3, trim: [-1000, 1, 1] }));

scenario('bad row: committed 1 with proposal 0 throws at no member', 5,
  () => ({ wedged: 1, proposal: 0, trimFor: 0, committed: 1, proposer: 3 }));

scenario('bad row: a proposal of 2^31 − 1 ends no change and wraps no number', 2,
  () => ({ wedged: 1, proposal: 0x7fffffff, proposer: 3 }));

scenario('bad row: a proposal whose changes byte is 2 is not counted differently by kernels and TypeScript', 2,
  () => ({ wedged: 1, proposal: 1, proposer: 3, changes: [2, 0, 0] }));

scenario('bad row: a proposal made by a member that is not in the view is refused', 2,
  () => ({ wedged: 1, proposal: 1, proposer: 100 }));

scenario('bad row: a joiner id of 70000 is refused (the next layout would throw)', 2,
  () => ({ wedged: 1, proposal: 1, proposer: 3, joins: [70001] }));

scenario('bad row: a joiner that is already a member is refused (it would redirect that member\'s host)', 2,
  () => ({ wedged: 1, proposal: 1, proposer: 3, joins: [1] }));

test('bad row: a row acknowledging the leader\'s proposal without the wedged flag does not stop the leader', () => {
  const group = hostileGroup(2);
  try {
    const a = group.member(0);
    assert.ok(a.protocol.join([{ id: 5, host: 'localhost' }])); // a real change: member 0 leads and proposes
    a.protocol.step();
    const proposal = Atomics.load(a.arena.i32, a.layout.offsetOf(0, a.layout.column('proposal')) >> 2);
    assert.ok(proposal > 0);
    corrupt(group, { wedged: 0, proposal, proposer: 1 });
    const notes: ProtocolNote[] = [];
    for (let i = 0; i < 5; i++) {
      assert.is(a.protocol.step(), null, 'the leader goes on');
      notes.push(...(a.protocol.takeNotes() ?? []));
    }
    assert.ok(notes.some((n) => n.event === 'badRow' && n.member === 2));
    assert.ok(a.protocol.suspects().has(2));
  } finally {
    group.release();
  }
});

/**
 * Member 2's row reads as `good` whenever the protocol copies it (MembershipTable.readRow) and as `bad` at
 * every other moment: the race of a peer that rewrites its row between the check and the use. Run `body`
 * with that in place.
 */
function raced(group: MemoryGroup, good: Fields, bad: Fields, body: () => void): void {
  const readRow = MembershipTable.prototype.readRow;
  MembershipTable.prototype.readRow = function (this: MembershipTable, r: number) {
    if (r === 2) corrupt(group, good);
    const copy = readRow.call(this, r);
    if (r === 2) corrupt(group, bad);
    return copy;
  };
  try {
    corrupt(group, bad);
    body();
  } finally {
    MembershipTable.prototype.readRow = readRow;
  }
}

test('bad row: a commit rewritten after its check is adopted as it was checked (trim, joiners, proposer)', () => {
  const group = hostileGroup(5);
  try {
    const commit = { wedged: 1, proposal: 1, trimFor: 1, committed: 1, changes: [0, 0, 1] };
    const good = { ...commit, proposer: 3, trim: [2, -1, -1], joins: [0] };
    raced(group, good, { ...commit, proposer: 100, trim: [3_000_000, 3_000_000, -1000], joins: [70001] }, () => {
      for (const id of HONEST) {
        const result = group.member(id).protocol.step();
        assert.is(result?.type, 'commit', `member ${id} applies the commit`);
        const change = (result as { change: Change }).change;
        assert.equal(change.trims, [[[2, -1, -1]]], `member ${id} adopted the trim it checked`);
        assert.equal([change.proposer, change.joined, change.removed], [2, [], [2]]);
      }
    });
  } finally {
    group.release();
  }
});

test('bad row: a proposal number raised past the bound after the screen does not end the leader', () => {
  const group = hostileGroup(2);
  try {
    const a = group.member(0);
    assert.ok(a.protocol.join([{ id: 5, host: 'localhost' }])); // a change member 0 leads
    raced(group, { wedged: 1, proposal: 0, proposer: 0 }, { wedged: 1, proposal: 0x7fffffff, proposer: 3 }, () => {
      for (let i = 0; i < 5; i++) assert.is(a.protocol.step(), null, 'the leader waits');
    });
    const mine = Atomics.load(a.arena.i32, a.layout.offsetOf(0, a.layout.column('proposal')) >> 2);
    assert.is(mine, 0, 'it proposed no number its peers would refuse');
  } finally {
    group.release();
  }
});

test('unsentFrom: a trim of −1 for our rank after 5 messages in a window of 3 resends only what our slots hold', () => {
  const group = hostileGroup(5);
  try {
    const a = group.member(0);
    a.channel.wedge();
    const { unsent } = a.channel.finishView([[[-1, -1, -1]]], true);
    assert.ok(unsent.length <= LOG.window, `${unsent.length} sent again`);
  } finally {
    group.release();
  }
});

test('bad row: a port of 70000 or −1 is no port: the member is left out of the next view, not dialed', () => {
  const group = hostileGroup(0);
  try {
    const a = group.member(0);
    const at = (column: string) => offset(a, column) >> 2;
    Atomics.store(a.arena.i32, at('nextPortFor'), 3);
    Atomics.store(a.arena.i32, at('nextPort'), 70000);
    Atomics.store(a.arena.i32, at('contactPort'), -1);
    assert.is(a.protocol.nextPortOf(2, 3), 0, 'a next port out of range reads as none (gone)');
    assert.is(a.protocol.contactPortOf(2), null);
    Atomics.store(a.arena.i32, at('nextPort'), 7002);
    assert.is(a.protocol.nextPortOf(2, 3), 7002);
  } finally {
    group.release();
  }
});

test('connectReachable: one member\'s bad address fails that member only', async () => {
  const peers = new PeerConnections(), dialed: number[] = [];
  const fabric = { connect: (peer: number) => { dialed.push(peer); } } as unknown as Fabric;
  const members = [{ id: 0, address: '127.0.0.1:7000' }, { id: 1, address: '127.0.0.1:70000' },
    { id: 2, address: '127.0.0.1:7002' }];
  setTimeout(() => peers.onConnected(2), 5);
  const unreachable = await peers.connectReachable(fabric, 0, members, 500, () => false, 'test');
  assert.equal(unreachable, [1]);
  assert.equal(dialed, [2]);
  assert.is(peers.failed.get(1), 'BAD_ADDRESS');
});

test.run();
