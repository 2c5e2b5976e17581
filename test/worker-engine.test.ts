// The worker engine (issue 15; SQUALL_SHARD_ENGINE=worker): the ordered shards' control step — receipt,
// nulls, seqNum, stability, the acknowledgements' push — runs in each member's predicate worker, and the
// main thread only sends and delivers. Real member processes on loopback: the same ordering guarantees as
// the main-thread engine, idle senders' nulls sent by the worker, a member removed mid-flow (the wedge
// hands the shard back to the main thread), and what the engine is for: a member whose main thread is
// blocked still acknowledges, so the others go on delivering.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import { crashTest } from './support/crash.js';
import { bySender, LOG, quiescentReports, SIZES, sleep, TIMING, type Report } from './support/membership.js';

// Every member process this suite starts inherits it (GroupCluster forks with this environment).
process.env['SQUALL_SHARD_ENGINE'] = 'worker';

const SHARD = { shards: 1, members: { min: 3, max: 3 }, maxSmcPayload: 1024, maxMessageBytes: 1024, window: 64 };

test('worker engine, 3 members, one sends: identical sequences, the idle senders\' worker sends nulls', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: SHARD } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const first = cluster.members.slice(0, 1);
    await cluster.all({ cmd: 'send', subgroup: 'log', count: 500, sizes: [200, 17, 1000] }, first);
    const reports = (await cluster.all({ cmd: 'await', subgroup: 'log', total: 500, timeoutMs: 60_000 })) as
      unknown as Array<Report & { nullsSent: number }>;
    for (const [i, r] of reports.entries()) {
      assert.is(r.delivered, 500, `member ${i} delivered`);
      assert.equal(r.sequence, reports[0]!.sequence, `member ${i}'s sequence equals member 0's`);
    }
    assert.equal(bySender(reports[0]!.sequence).get(0), [...Array(500).keys()], 'sender 0\'s messages in order');
    for (const i of [1, 2]) assert.ok(reports[i]!.nullsSent > 0, `idle member ${i}'s worker sent nulls`);
  } finally {
    await cluster.close();
  }
});

test('worker engine, 3 members flooding in bursts for 2 s: every member delivers the same messages', async () => {
  // Bursts of sends and the worker's nulls between them, the window wrapping thousands of times: a slot whose
  // bytes reached a peer after an `index` naming them (this thread's push held back while the worker pushed
  // its own) is delivered from a stale slot — the receiver's check stops that member, or the hashes differ.
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: { ...SHARD, window: 256 } } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: false });
    const floods = (await cluster.all({ cmd: 'flood', subgroup: 'log', seconds: 2, size: 1000, inFlight: 256 })) as
      unknown as Array<{ sent: number }>;
    const total = floods.reduce((sum, f) => sum + f.sent, 0);
    const reports = (await cluster.all({ cmd: 'await', subgroup: 'log', total, timeoutMs: 60_000 })) as
      unknown as Array<Report & { hash: number }>;
    for (const [i, r] of reports.entries()) {
      assert.is(r.delivered, total, `member ${i} delivered`);
      assert.is(r.hash, reports[0]!.hash, `member ${i}'s deliveries hash as member 0's`);
    }
  } finally {
    await cluster.close();
  }
});

test('worker engine: a member whose main thread is blocked still acknowledges; the others deliver', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: SHARD } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: false });
    const [sender, watcher, blocked] = cluster.members as [typeof cluster.members[0], typeof cluster.members[0],
      typeof cluster.members[0]];
    // Member 2's event loop stops for 6 s (a long task). Fewer messages than the window: with the main-thread
    // engine none of them could be delivered anywhere before it returns (its seqNum would stand still).
    const busy = cluster.request(blocked, { cmd: 'busy', ms: 6000 });
    const startedMs = Date.now();
    await cluster.request(sender, { cmd: 'send', subgroup: 'log', count: 40, sizes: [100] });
    const seen = (await cluster.request(watcher, { cmd: 'await', subgroup: 'log', total: 40, timeoutMs: 4000 })) as
      unknown as Report;
    const tookMs = Date.now() - startedMs;
    await busy;
    assert.is(seen.delivered, 40, `member 1 delivered while member 2's main thread was blocked (after ${tookMs} ms)`);
    assert.ok(tookMs < 6000, `delivered before the blocked member's main thread came back (${tookMs} ms)`);
    const after = (await cluster.request(blocked, { cmd: 'await', subgroup: 'log', total: 40, timeoutMs: 30_000 })) as
      unknown as Report;
    assert.is(after.delivered, 40, 'the blocked member delivers them once its main thread is back');
  } finally {
    await cluster.close();
  }
});

test('worker engine: messages committed just before the sender\'s event loop stalls still go out', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: SHARD } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: false });
    const [sender, ...others] = cluster.members;
    // send() commits each message to a slot at once; the step that pushes them would run after the current
    // turn, which a 6 s long task holds: the worker pushes them meanwhile (and sends the sender's nulls).
    const sending =
      cluster.request(sender!, { cmd: 'send', subgroup: 'log', count: 5, sizes: [64], thenBlockMs: 6000 });
    const startedMs = Date.now();
    const seen = (await cluster.all({ cmd: 'await', subgroup: 'log', total: 5, timeoutMs: 4000 }, others)) as
      unknown as Report[];
    const tookMs = Date.now() - startedMs;
    await sending;
    for (const [i, r] of seen.entries()) {
      assert.is(
        r.delivered, 5, `member ${others[i]!.id} delivered while the sender's event loop was blocked (${tookMs} ms)`);
    }
  } finally {
    await cluster.close();
  }
});

crashTest('worker engine: a member killed mid-flow; the survivors wedge, agree and go on', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const [a, b, victim] = cluster.members as [typeof cluster.members[0], typeof cluster.members[0],
      typeof cluster.members[0]];
    const sends = [a, b].map((m) =>
      cluster.request(m, { cmd: 'send', subgroup: 'log', count: 300, sizes: SIZES, ratePerSec: 1500 }));
    cluster.request(victim, { cmd: 'send', subgroup: 'log', count: 300, sizes: SIZES, ratePerSec: 1500 })
      .catch(() => null);
    await cluster.request(a, { cmd: 'await', subgroup: 'log', total: 100, timeoutMs: 30_000 });
    victim.process.kill('SIGKILL');
    await Promise.all(sends);
    for (const m of [a, b]) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && (e as { members: number[] }).members.length === 2,
        20_000);
    }
    const [ra, rb] = await quiescentReports(cluster, [a, b], 'log');
    assert.equal(ra!.sequence, rb!.sequence, 'the survivors delivered the same sequence');
    for (const id of [a.id, b.id]) {
      assert.equal(
        bySender(ra!.sequence).get(id), [...Array(300).keys()], `survivor ${id}'s messages, once each, in order`);
    }
  } finally {
    await cluster.close();
  }
});

crashTest('worker engine: a change commits while a member\'s main thread is blocked '
  + '(its worker acknowledges)', async () => {
  // The view-change protocol runs in each member's predicate worker: member 1's worker wedges, acknowledges
  // the leader's proposal and copies its trim while member 1's event loop is held for 6 s, so the leader
  // commits the removal of the killed member 2 long before that (with the main engine it cannot: member 1's
  // acknowledgement would wait for its main thread). The next view installs once member 1 is back.
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const [leader, blocked, victim] = cluster.members as [typeof cluster.members[0], typeof cluster.members[0],
      typeof cluster.members[0]];
    await cluster.request(leader, { cmd: 'send', subgroup: 'log', count: 50, sizes: SIZES });
    await cluster.all({ cmd: 'await', subgroup: 'log', total: 50, timeoutMs: 30_000 });
    const busy = cluster.request(blocked, { cmd: 'busy', ms: 6000 });
    await sleep(200); // the request reached member 1 and its loop is held
    const killedMs = Date.now();
    victim.process.kill('SIGKILL');
    const committed = await cluster.waitForEvent(leader, (e) => e.type === 'committed', 5000);
    const commitMs = Date.now() - killedMs;
    assert.equal((committed as { removed: number[] }).removed, [victim.id], 'the change removes the killed member');
    assert.ok(commitMs < 5000, `the leader committed ${commitMs} ms after the kill, member 1 still blocked`);
    await busy;
    // Its main thread heard of the failure only after the commit: it still reports it (the driver's commit path).
    const failedHere = (e: { type: string; member?: number }) => e.type === 'memberFailed' && e.member === victim.id;
    await cluster.waitForEvent(blocked, failedHere, 20_000);
    for (const m of [leader, blocked]) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && (e as { members: number[] }).members.length === 2,
        20_000);
    }
    await cluster.request(blocked, { cmd: 'send', subgroup: 'log', count: 20, sizes: SIZES });
    const [ra, rb] = (await cluster.all({ cmd: 'await', subgroup: 'log', total: 70, timeoutMs: 30_000 },
      [leader, blocked])) as unknown as Report[];
    assert.equal(ra!.sequence, rb!.sequence, 'the survivors delivered the same sequence');
    assert.is(ra!.sequence.length, 70, 'every message once');
  } finally {
    await cluster.close();
  }
});

test.run();
