// A peer writes its own row of every member's table (one-sided writes): what it writes into the shard's columns
// is input (ts/multicast/control.ts, receiver.ts, slots.ts). Over a view of three members in one process
// (test/support/memory-group.ts), member 2 turns bad — it stops writing honestly (`down`) and its row in the
// others' copies is corrupted the way a faulty or hostile peer could write it — on both engines where both
// apply: the honest members never throw (not in a step, not in a worker round, not in send()), deliver only
// what was sent, in one order, and suspect member 2 (the shard's onMisbehaved, or its worker's suspect).

import { EventEmitter } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subgroupColumns } from '../ts/multicast/layout.js';
import { planView, type SubgroupConfig } from '../ts/membership/plans.js';
import { SlotKind } from '../ts/multicast/slots.js';
import type { RdmcGroup } from '../ts/rdmc/node.js';
import { MemoryGroup, type MemoryMember } from './support/memory-group.js';

type Engine = 'main' | 'worker';
const ENGINES: Engine[] = ['main', 'worker'];
const LOG: SubgroupConfig = { shards: 1, members: { min: 1, max: 8 }, maxSmcPayload: 16, window: 3 };
const RAW: SubgroupConfig = { ...LOG, mode: 'raw' };
const COLUMNS = subgroupColumns(planView({ subgroups: { log: LOG } }, [0, 1, 2])[0]!);
const BAD = 2;

/** Rounds of every member that is up: its step, and with the worker engine its worker's round. */
function stepAll(group: MemoryGroup, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const m of group.members) {
      if (m.down) continue;
      m.channel.step();
      m.worker?.round();
    }
  }
}

function sendFrom(m: MemoryMember, count: number, first = 0): void {
  for (let k = first; k < first + count; k++) {
    m.channel.send(Uint8Array.of(m.id * 16 + k)).catch(() => { /* the group is torn down mid-test */ });
  }
}

/** Arena offset of `column` (element `i`) in row `ofMember` of member m's copy of the table. */
function offset(m: MemoryMember, ofMember: number, column: string, i = 0): number {
  return m.layout.offsetOf(m.layout.rowOf(ofMember), m.layout.column(column), i);
}

function storeI64(m: MemoryMember, ofMember: number, column: string, value: bigint, i = 0): void {
  Atomics.store(m.arena.i64, offset(m, ofMember, column, i) >> 3, value);
}

/** The honest members: each delivered only messages that were sent ("id:byte", byte = id·16 + k), each
 *  sender's in its order, and one the prefix of the other's; each suspects the bad member, and only it. */
function checkHonest(group: MemoryGroup, suspecting = [0, 1]): void {
  const [a, b] = [group.member(0).delivered, group.member(1).delivered];
  const shorter = a.length <= b.length ? a : b, longer = shorter === a ? b : a;
  assert.equal(longer.slice(0, shorter.length), shorter, 'one order at every honest member');
  for (const list of [a, b]) {
    const next = new Map<number, number>();
    for (const entry of list) {
      const [sender, byte] = entry.split(':').map(Number) as [number, number];
      const k = next.get(sender) ?? 0;
      assert.is(byte, sender * 16 + k, `the message delivered is the one sent (${entry})`);
      next.set(sender, k + 1);
    }
  }
  for (const id of suspecting) {
    const suspects = group.member(id).suspects;
    assert.ok(suspects.some((s) => s.endsWith(`:${BAD}`)), `member ${id} suspects member ${BAD}: ${suspects}`);
    assert.ok(suspects.every((s) => s.endsWith(`:${BAD}`)), `member ${id} suspects no one else: ${suspects}`);
  }
}

/** A group of three, member 0 and 2 sending, everything delivered; then member 2 stops writing honestly. */
function warmGroup(engine: Engine, config = LOG): MemoryGroup {
  const group = new MemoryGroup([0, 1, 2], config, 'wasm', engine);
  sendFrom(group.member(0), 4);
  sendFrom(group.member(BAD), 2);
  stepAll(group, 12);
  for (const m of group.members) assert.is(m.delivered.length, 6, `member ${m.id} delivered the warm-up`);
  group.member(BAD).down = true;
  return group;
}

function scenario(name: string, run: (engine: Engine) => void, engines = ENGINES): void {
  for (const engine of engines) test(`peer shard values (${engine} engine): ${name}`, () => run(engine));
}

scenario('a peer\'s seqNum that goes back is not counted; the peer is suspected', (engine) => {
  const group = warmGroup(engine);
  try {
    for (const id of [0, 1]) storeI64(group.member(id), BAD, COLUMNS.seqNum, -1n);
    sendFrom(group.member(0), 2, 4);
    stepAll(group, 6);
    checkHonest(group);
  } finally {
    group.release();
  }
});

scenario('a peer\'s deliveredNum that goes back: send() does not throw, the window stays, the peer is suspected',
  (engine) => {
    const group = warmGroup(engine);
    try {
      for (const id of [0, 1]) storeI64(group.member(id), BAD, COLUMNS.deliveredNum, -1n);
      sendFrom(group.member(0), 4, 4); // past the window of 3: send() reads the window's minimum
      stepAll(group, 6);
      checkHonest(group, [0]); // member 1 sends nothing: it never reads the window
    } finally {
      group.release();
    }
  });

scenario('raw: a peer\'s numReceived of our messages that goes back; the peer is suspected', () => {
  const group = warmGroup('main', RAW);
  try {
    const zero = group.member(0);
    storeI64(zero, BAD, COLUMNS.numReceived, -1n, 0); // member 2's count of member 0's messages (rank 0)
    sendFrom(zero, 4, 4);
    stepAll(group, 6);
    checkHonest(group, [0]);
  } finally {
    group.release();
  }
}, ['main']);

scenario('a sender\'s index that goes back is not counted; the sender is suspected', (engine) => {
  const group = warmGroup(engine);
  try {
    for (const id of [0, 1]) storeI64(group.member(id), BAD, COLUMNS.index, 0n);
    sendFrom(group.member(0), 2, 4);
    stepAll(group, 6);
    checkHonest(group);
    // The worker engine's receipt is the predicate worker's: it reports (to its suspect(), a SUSPECTED event).
    if (engine === 'worker') assert.ok(group.member(0).suspects.includes(`worker:${BAD}`), 'reported by the worker');
  } finally {
    group.release();
  }
});

for (const [what, index] of [['1000', 1000n], ['2^62', 2n ** 62n]] as const) {
  scenario(`a sender's index ${what} ahead of the window, with a seqNum far ahead, is not counted`, (engine) => {
    const group = warmGroup(engine);
    const counted = (id: number) => (group.member(id).channel.state()['numReceived'] as number[])[BAD];
    const before = [counted(0), counted(1)];
    try {
      for (const id of [0, 1]) {
        storeI64(group.member(id), BAD, COLUMNS.index, index);
        storeI64(group.member(id), BAD, COLUMNS.seqNum, 1_000_000n);
      }
      sendFrom(group.member(0), 2, 4);
      stepAll(group, 10);
      checkHonest(group);
      assert.equal([counted(0), counted(1)], before, 'what member 2 sent honestly is counted, no more');
    } finally {
      group.release();
    }
  });
}

/** Member 2 sends one more message and pushes it; then its slot's header (word 2 length, word 3 kind) is
 *  rewritten at the honest members, before they read the index that names it, and its seqNum claims all. */
function badSlot(engine: Engine, word: 2 | 3, value: number): void {
  const group = warmGroup(engine);
  const bad = group.member(BAD);
  bad.down = false;
  const index = bad.channel.state()['nextIndex'] as number;
  sendFrom(bad, 1, 2);
  bad.channel.step();
  bad.worker?.round();
  bad.down = true;
  try {
    for (const id of [0, 1]) {
      const m = group.member(id);
      const at = offset(m, BAD, COLUMNS.slots, (index % 3) * COLUMNS.slotBytes); // its slot
      m.arena.u32[(at >> 2) + word] = value;
      storeI64(m, BAD, COLUMNS.seqNum, 1_000_000n); // it claims to hold everything: stability is ours alone
    }
    stepAll(group, 6);
    checkHonest(group);
    for (const id of [0, 1]) assert.is(group.member(id).delivered.length, 6, 'the bad slot is not delivered');
  } finally {
    group.release();
  }
}

scenario('a slot of length 2^32 − 1 is never counted; its sender is suspected',
  (engine) => badSlot(engine, 2, 2 ** 32 - 1));
scenario('a slot of an unknown kind is never counted; its sender is suspected', (engine) => badSlot(engine, 3, 7));

scenario('a slot rewritten after it was counted is not delivered: delivery stops before it, no throw', (engine) => {
  const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', engine);
  try {
    const zero = group.member(0), bad = group.member(BAD);
    sendFrom(bad, 1);
    bad.channel.step();
    bad.worker?.round(); // member 2's slot and index are at 0 and 1 now
    zero.channel.step();
    zero.worker?.round(); // member 0 counted it
    const at = offset(zero, BAD, COLUMNS.slots);
    zero.arena.u32[(at >> 2) + 3] = SlotKind.LARGE; // … and then it says LARGE (16 bytes: not even allowed)
    zero.arena.u32[(at >> 2) + 2] = 100; // of 100 bytes, a body RDMC never carried
    stepAll(group, 8);
    assert.is(zero.delivered.length, 0, 'member 0 delivered nothing of it');
    assert.is(group.member(1).delivered.length, 1, 'member 1 delivered it');
    checkHonest(group, [0]);
  } finally {
    group.release();
  }
});

scenario('more RDMC bodies from one sender than its window allows are dropped; the sender is suspected',
  (engine) => {
    const bodies = new EventEmitter(); // member 0's RDMC group of sender 2, as the receive side sees it
    const rdmc = (id: number, rank: number) => (id === 0 && rank === 2 ? bodies as unknown as RdmcGroup : null);
    const group = new MemoryGroup([0, 1, 2], LOG, 'wasm', engine, rdmc);
    try {
      const zero = group.member(0);
      const waiting = () => (zero.channel.state()['largeBodies'] as number[])[2];
      for (let k = 0; k < 4; k++) bodies.emit('message', new Uint8Array(100)); // W + 1: an honest sender's most
      stepAll(group, 2);
      assert.is(waiting(), 4, 'W + 1 bodies wait');
      assert.equal(zero.suspects, [], 'an honest sender may have W + 1 waiting');
      bodies.emit('message', new Uint8Array(100));
      stepAll(group, 2);
      assert.is(waiting(), 4, 'the one too many is dropped');
      assert.equal(zero.suspects, ['main:2'], 'and its sender suspected');
    } finally {
      group.release();
    }
  });

test.run();
