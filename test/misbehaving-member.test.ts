// A group member that writes into its own row what no honest member could (Group.join, three members in this
// process, the real fabric and workers, the worker engine): the member it pushes that to suspects it with the
// check's reason, the next view leaves it out, and calls go on among the others. The paths from a check to
// the group (Mailboxes.onMisbehaved on the main thread; the predicate worker's SUSPECTED event for a shard
// value; its protocol's badRow note for a membership row) each end in one line of ViewEngine or the driver:
// this is where they run end to end. To reach the writer's table and fabric, the test keeps each ViewEngine
// a member makes (ViewEngine.prototype.listen, wrapped).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lane } from '../ts/fabric/fabric.js';
import { Group } from '../ts/group/group.js';
import { ViewEngine } from '../ts/group/view-engine.js';
import { freePorts } from '../ts/harness/cluster.js';
import { TicketBook } from '../ts/examples/ticket-book.js';
import { MEMBERSHIP_COLUMNS } from '../ts/membership/columns.js';
import { MAILBOX_COLUMNS, subgroupColumns } from '../ts/multicast/layout.js';
import { SUSPECTED_BAD_SHARD } from '../ts/sst/worker-protocol.js';

const WRITER = 2;
const VICTIM = 0;

/** Runs `misbehave` at member 2's current view engine and checks member 0's suspicion and the view after. */
async function removedFor(reason: string, misbehave: (engine: ViewEngine) => void): Promise<void> {
  const engines: ViewEngine[] = [];
  const listen = ViewEngine.prototype.listen;
  ViewEngine.prototype.listen = function (this: ViewEngine, ...args: Parameters<typeof listen>) {
    engines.push(this);
    return listen.apply(this, args);
  };
  const ports = await freePorts(3);
  const members = [0, 1, 2].map((id) => ({ id, address: `127.0.0.1:${ports[id]}` }));
  const config = { members, subgroups: { tickets: { shards: 1, members: { min: 2, max: 3 } } } };
  let groups: Group[] = [];
  try {
    groups = await Promise.all([0, 1, 2].map((id) => Group.join({ id, config, types: { tickets: TicketBook } })));
    groups[WRITER]!.on('error', () => { /* the writer may stop itself once the others remove it */ });
    const book = (g: Group, seat: string) => g.subgroup('tickets', TicketBook).ordered.book(seat, 'x');
    await book(groups[VICTIM]!, 'A1');
    const failed: Array<[number, string]> = [];
    groups[VICTIM]!.on('memberFailed', (member, why) => failed.push([member, why]));
    const installed = Promise.all([0, 1].map((i) => new Promise((resolve) => groups[i]!.once('view', resolve))));

    const current = (id: number) => engines.find((e) => e.sst.id === id && e.view.vid === groups[id]!.view.vid)!;
    const suspectedBad: number[] = [];
    current(VICTIM).sst.on('suspected', (member, value) => {
      if (value === SUSPECTED_BAD_SHARD) suspectedBad.push(member);
    });
    misbehave(current(WRITER));

    // A timer that keeps the process alive: unref'd, a view that never came would let the process exit early
    // (uvu: "Exiting early before testing is finished") instead of failing here with what was missing. One
    // such exit was seen in this suite's BAD_ROW test, cause not proven.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve('late'), 20_000); });
    const outcome = await Promise.race([installed, late]);
    clearTimeout(timer);
    assert.is.not(outcome, 'late', `a view without the writer installed (member 0 saw: ${JSON.stringify(failed)})`);
    // For a shard value the victim's predicate worker found it: its SUSPECTED event says why (value −1). The
    // same worker marks the suspicion in the victim's row at once, so the main thread can step the view change
    // before it reads the event: the report still gives the worker's reason (ViewEngine.ownSuspicion), not
    // SUSPECTED_BY_PEER.
    if (reason === 'BAD_SHARD') assert.ok(suspectedBad.includes(WRITER), 'the victim\'s worker suspected the writer');
    assert.equal(failed[0], [WRITER, reason], `member 0 suspected the writer: ${JSON.stringify(failed)}`);
    assert.equal(groups[VICTIM]!.view.members, [0, 1]);
    await book(groups[VICTIM]!, 'A2');
    await book(groups[1]!, 'A3');
  } finally {
    ViewEngine.prototype.listen = listen;
    await Promise.all(groups.map((g) => g.close().catch(() => undefined /* the removed member may have stopped */)));
  }
}

/** Stores `value` in the writer's own row at `column` (+ `at`) and pushes it to the victim on `lane`. */
function pushOwn(engine: ViewEngine, column: string, at: number, value: bigint, lane: Lane): void {
  const offset = ownOffset(engine, column) + at;
  Atomics.store(engine.sst.arena.i64, offset >> 3, value);
  engine.pushes.write(VICTIM, offset, 8, lane);
}

function ownOffset(engine: ViewEngine, column: string): number {
  const layout = engine.sst.layout;
  return layout.rowOffset(layout.rowOf(WRITER)) + layout.column(column).offset;
}

test('group: a member whose mailbox counter runs 2^50 bytes ahead is suspected (BAD_MAILBOX) and removed', () =>
  removedFor('BAD_MAILBOX', (engine) => {
    const row = engine.sst.layout.rowOf(VICTIM);
    pushOwn(engine, MAILBOX_COLUMNS.written, row * 8, 1n << 50n, engine.mailboxes.lane);
  }));

test('group: a member whose shard index runs past the window is suspected (BAD_SHARD) and removed', () =>
  removedFor('BAD_SHARD', (engine) => {
    pushOwn(engine, subgroupColumns(engine.plans[0]!).index, 0, 1n << 40n, Lane.Data);
  }));

test('group: a member whose membership row holds trimFor above its proposal is suspected (BAD_ROW) and removed', () =>
  removedFor('BAD_ROW', (engine) => {
    // Wedged, so the victim's protocol steps and reads the row; trimFor 3 with no proposal, which no honest
    // row holds. The writer's own protocol never reads its trimFor before it is removed.
    const wedged = ownOffset(engine, MEMBERSHIP_COLUMNS.wedged);
    const trimFor = ownOffset(engine, MEMBERSHIP_COLUMNS.trimFor);
    Atomics.store(engine.sst.arena.i32, trimFor >> 2, 3);
    Atomics.store(engine.sst.arena.u8, wedged, 1);
    // The fabric takes 8-byte-aligned writes only: one range that covers both.
    const from = Math.min(wedged, trimFor) & ~7, to = (Math.max(wedged, trimFor) + 4 + 7) & ~7;
    engine.pushes.write(VICTIM, from, to - from, Lane.Control);
  }));

test.run();
