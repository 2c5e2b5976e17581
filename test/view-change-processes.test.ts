// View changes across real processes on loopback (DESIGN.md §6), under continuous ordered load from every
// member: members are SIGKILLed (one of 3, two of 5, the leader, the leader during a change) or leave
// cleanly, and the survivors install the next view and go on. After each: the survivors' delivered
// sequences are identical; every surviving sender's messages are there once each, in its order (what the
// old view did not deliver was sent again in the new one); a dead sender's messages form a prefix of what
// it sent; whatever any member — the dead included — had delivered before the change is a prefix of the
// survivors' sequence; and every survivor installed the same new view.

import { test } from 'uvu';
import { crashTest } from './support/crash.js';
import * as assert from 'uvu/assert';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import { bySender, isPrefix, LOG, SIZES, sleep, TIMING, type Report } from './support/membership.js';

type ViewEvent = { type: 'view'; vid: number; members: number[]; removed: number[] };


interface Scenario {
  members: number;
  /** Members killed, and when: after `afterDelivered` deliveries at member `watch`. */
  kill: number[];
  /** A second wave killed as soon as the first failure is detected at `onDetectAt` (a change under way). */
  thenKill?: { members: number[]; onDetectAt: number };
  /** Members that leave cleanly instead. */
  leave?: number[];
  count: number;
  ratePerSec: number;
}

async function scenario(s: Scenario): Promise<void> {
  const cluster = await GroupCluster.start({ ...TIMING, members: s.members, subgroups: { log: LOG } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const gone = new Set([...s.kill, ...(s.thenKill?.members ?? []), ...(s.leave ?? [])]);
    const survivors = cluster.members.filter((m) => !gone.has(m.id));
    const sends = cluster.members.map((m) =>
      cluster.request(
        m, { cmd: 'send', subgroup: 'log', count: s.count, sizes: SIZES, ratePerSec: s.ratePerSec }).catch(() => null));
    await cluster.request(
      survivors[0]!, { cmd: 'await', subgroup: 'log', total: Math.floor(s.count / 4), timeoutMs: 30_000 });

    // What every member delivered before the change (the victims' reports are taken just before they die).
    const before = new Map<number, string[]>();
    const victims = cluster.members.filter((m) => s.kill.includes(m.id));
    for (const v of victims) {
      before.set(v.id, ((await cluster.request(v, { cmd: 'report', subgroup: 'log' })) as unknown as Report).sequence);
    }
    for (const v of victims) v.process.kill('SIGKILL');
    if (s.thenKill) {
      const watcher = cluster.members.find((m) => m.id === s.thenKill!.onDetectAt)!;
      await cluster.waitForEvent(watcher, (e) => e.type === 'memberFailed', 10_000);
      for (const m of cluster.members.filter((x) => s.thenKill!.members.includes(x.id))) {
        before.set(
          m.id, ((await cluster.request(m, { cmd: 'report', subgroup: 'log' })) as unknown as Report).sequence);
        m.process.kill('SIGKILL');
      }
    }
    const leavers = cluster.members.filter((m) => s.leave?.includes(m.id));
    await Promise.all(leavers.map((m) => cluster.request(m, { cmd: 'leave' })));
    for (const m of survivors) {
      before.set(m.id, ((await cluster.request(m, { cmd: 'report', subgroup: 'log' })) as unknown as Report).sequence);
    }

    // Every survivor installs a view of exactly the survivors.
    const expected = survivors.map((m) => m.id);
    const dump = async () => JSON.stringify(await Promise.all(survivors.map(async (m) => {
      return { id: m.id, events: m.events, ...(await cluster.request(m, { cmd: 'membership' })) };
    })));
    for (const m of survivors) {
      await cluster.waitForEvent(
        m, (e) => e.type === 'view' && JSON.stringify((e as ViewEvent).members) === JSON.stringify(expected), 20_000)
        .catch(async (error: Error) => {
          assert.unreachable(`${error.message.slice(0, 200)}\nstate: ${await dump()}`);
        });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the senders did not finish within 30 s')), 30_000);
    });
    await Promise.race([Promise.all(sends), timeout]).catch(async (error: Error) => {
      assert.unreachable(`${error.message}\nstate: ${await dump()}`);
    });
    clearTimeout(timer);
    // Quiescence: every survivor delivered the same number twice in a row.
    let reports: Report[] = [];
    let last = -1;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(150)) {
      reports = (await cluster.all({ cmd: 'report', subgroup: 'log' }, survivors)) as unknown as Report[];
      const n = reports[0]!.delivered;
      if (reports.every((r) => r.delivered === n) && n === last) break;
      last = reports.every((r) => r.delivered === n) ? n : -1;
    }
    const final = reports[0]!.sequence;
    for (const [i, r] of reports.entries()) {
      assert.is(
        r.sequence.length, final.length, `member ${survivors[i]!.id} delivered as many as member ${survivors[0]!.id}`);
      assert.ok(
        isPrefix(r.sequence, final), `member ${survivors[i]!.id}'s sequence equals member ${survivors[0]!.id}'s`);
    }
    for (const [id, seq] of before) {
      assert.ok(
        isPrefix(seq, final),
        `what member ${id} delivered before the change (${seq.length}) is a prefix of the survivors' sequence`);
    }
    const per = bySender(final);
    for (const m of cluster.members) {
      const ks = per.get(m.id) ?? [];
      ks.forEach((k, i) =>
        assert.is(k, i, `sender ${m.id}: message ${k} delivered where ${i} was due (nothing lost, nothing twice)`));
      if (!gone.has(m.id) || s.leave?.includes(m.id)) {
        if (!gone.has(m.id)) assert.is(ks.length, s.count, `every message of surviving sender ${m.id} is delivered`);
      }
    }
    // The leavers delivered everything up to the change and then nothing more.
    for (const m of leavers) {
      const r = (await cluster.request(m, { cmd: 'report', subgroup: 'log' })) as unknown as Report;
      assert.ok(isPrefix(r.sequence, final), `leaver ${m.id}'s sequence is a prefix of the survivors'`);
      assert.ok(m.events.some((e) => e.type === 'view') === false, `leaver ${m.id} installs no view`);
    }
  } finally {
    await cluster.close();
  }
}

crashTest('SIGKILL of one member of 3 under load: the two install view 1 and go on', async () => {
  await scenario({ members: 3, kill: [2], count: 3000, ratePerSec: 3000 });
});

crashTest('SIGKILL of two members of 5 under load: the three go on', async () => {
  await scenario({ members: 5, kill: [3, 4], count: 2000, ratePerSec: 2000 });
});

crashTest('the leader killed: the next-ranked member leads the change', async () => {
  await scenario({ members: 3, kill: [0], count: 3000, ratePerSec: 3000 });
});

crashTest('the leader killed during a view change: the next leader adopts and finishes it', async () => {
  await scenario({ members: 5, kill: [4], thenKill: { members: [0], onDetectAt: 1 }, count: 2000, ratePerSec: 2000 });
});

test('a clean leave: the others install a view without the leaver, which delivered up to the change', async () => {
  await scenario({ members: 3, kill: [], leave: [2], count: 3000, ratePerSec: 3000 });
});

test('the leader leaves: it leads its own removal, and its messages sent before leaving are delivered', async () => {
  await scenario({ members: 3, kill: [], leave: [0], count: 3000, ratePerSec: 3000 });
});

/**
 * Three members with the default 1 s suspicion timeout (TIMING); members 0 and 1 each send `count` messages at
 * `ratePerSec`
 * (member 2 sends nothing), and `body` runs once member 0 has delivered `after` of them.
 */
async function threeUnderLoad(
  load: { count: number; ratePerSec: number; after: number },
  body: (cluster: GroupCluster, members: [GroupClusterMember, GroupClusterMember, GroupClusterMember],
    sends: Promise<unknown>) => Promise<void>,
): Promise<void> {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const members = cluster.members as [GroupClusterMember, GroupClusterMember, GroupClusterMember];
    const sends = Promise.all(
      members.slice(0, 2).map((m) =>
        cluster.request(
          m, { cmd: 'send', subgroup: 'log', count: load.count, sizes: SIZES, ratePerSec: load.ratePerSec })));
    sends.catch(() => {}); // the body awaits it; a failure before that must not end the suite
    await cluster.request(members[0], { cmd: 'await', subgroup: 'log', total: load.after, timeoutMs: 30_000 });
    await body(cluster, members, sends);
  } finally {
    await cluster.close();
  }
}

test('a busy event loop is not a failure: a member whose main thread is blocked for 2.5 s is not suspected (1 s ' +
  'timeout)', async () => {
  await threeUnderLoad({ count: 1000, ratePerSec: 1000, after: 100 }, async (cluster, [, , m2], sends) => {
    await cluster.request(m2, { cmd: 'busy', ms: 2500 }); // the heartbeat is the predicate worker's: it goes on
    await sends;
    const reports =
      (await cluster.all({ cmd: 'await', subgroup: 'log', total: 2000, timeoutMs: 30_000 })) as unknown as Report[];
    for (const m of cluster.members) {
      assert.not.ok(
        m.events.some((e) => e.type === 'memberFailed' || e.type === 'view'),
        `member ${m.id} saw no failure: ${JSON.stringify(m.events)}`);
    }
    for (const r of reports) {
      assert.equal(r.sequence, reports[0]!.sequence, 'every member delivered the same 2,000 messages');
    }
    assert.is(reports[0]!.delivered, 2000);
  });
});

test('a member whose main thread is blocked for 2 s as a change commits is waited for: its port, published late in ' +
  'the old table while its heartbeat goes on, is not taken for a failure', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 4, subgroups: { log: LOG } });
  try {
    const [m0, m1, m2, m3] = cluster.members as [
      GroupClusterMember, GroupClusterMember, GroupClusterMember, GroupClusterMember
    ];
    // Member 2 applies the commit, and publishes its next port, about 2 s after the others have theirs
    // out — longer than the suspicion timeout, as a member starved on a loaded machine can.
    await cluster.request(m2, { cmd: 'block-after-trim', ms: 2000 });
    await cluster.request(m3, { cmd: 'leave' });
    for (const m of [m0, m1, m2]) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && !e.members.includes(3), 30_000);
    }
    const status = (await cluster.request(m0, { cmd: 'membership' })).status as {
      lastInstall: Record<string, number> | null
    };
    const phases = status.lastInstall ?? {};
    console.log(`  member 0 waited ${((phases.ports ?? 0) - (phases.published ?? 0)).toFixed(0)} ms for the ports`);
    for (const m of [m0, m1, m2]) {
      const views = m.events.flatMap((e) => (e.type === 'view' ? [e.members] : []));
      assert.equal(
        views, [[0, 1, 2]], `member ${m.id} installed one view, without the leaver only`);
      // (the leaver's connections close once it is out: a member still in the old view may report that)
      assert.not.ok(
        m.events.some((e) => (e.type === 'memberFailed' && e.member !== 3) || e.type === 'removed'),
        `member ${m.id} saw no failure but the leaver's: ${JSON.stringify(m.events)}`);
    }
  } finally {
    await cluster.close();
  }
});

crashTest('a member frozen past the suspicion timeout (SIGSTOP) is removed; resumed, it learns so and stops',
  async () => {
  await threeUnderLoad({ count: 1500, ratePerSec: 1500, after: 300 }, async (cluster, [m0, m1, m2], sends) => {
    m2.process.kill('SIGSTOP');
    for (const m of [m0, m1]) {
      const view = await cluster.waitForEvent(m, (e) => e.type === 'view', 20_000);
      assert.ok(
        view.type === 'view' && JSON.stringify(view.members) === '[0,1]',
        `member ${m.id} installs the view of 0 and 1: ${JSON.stringify(view)}`);
    }
    m2.process.kill('SIGCONT');
    // If the commit the others pushed before they moved on reached its table, it applies it and finds itself
    // removed (RemovedError; what happens on tcp). If the commit was still queued at the others when they
    // closed the old view (libfabric holds sends to a receiver that stopped reposting), it finds them gone
    // and itself a minority (PartitionedError). Either way it stops.
    const gone = await cluster.waitForEvent(m2, (e) => e.type === 'removed' || e.type === 'partitioned', 20_000);
    const message = gone.type === 'removed' || gone.type === 'partitioned' ? gone.message : '';
    assert.match(
      message,
      gone.type === 'removed' ? /member 2 was removed from the group in view 1: the others suspected it/
        : /member 2 is in a minority of view 0/);
    await sends;
    // Members 0 and 1 each sent 1,500 (member 2 sends nothing here): both deliver all 3,000, alike.
    const awaited = await cluster.all({ cmd: 'await', subgroup: 'log', total: 3000, timeoutMs: 30_000 }, [m0, m1]);
    const [r0, r1] = awaited as unknown as Report[];
    assert.is(r0!.delivered, 3000);
    assert.equal(r1!.sequence, r0!.sequence, 'the two agree');
    const r2 = (await cluster.request(m2, { cmd: 'report', subgroup: 'log' })) as unknown as Report;
    await sleep(300);
    const again = (await cluster.request(m2, { cmd: 'report', subgroup: 'log' })) as unknown as Report;
    assert.is(again.delivered, r2.delivered, 'the removed member delivers nothing more');
    assert.ok(
      isPrefix(r2.sequence, r0!.sequence), 'what the removed member delivered is a prefix of the others\' sequence');
  });
});

crashTest('a change that leaves a shard below its minimum: the survivors stop with a ConfigError on the error event, ' +
  'and their processes live on', async () => {
  const cluster = await GroupCluster.start({
    ...TIMING, members: 3, subgroups: { log: { ...LOG, members: { min: 3, max: 9 } } },
  });
  try {
    const [m0, m1, m2] = cluster.members as [GroupClusterMember, GroupClusterMember, GroupClusterMember];
    m2.process.kill('SIGKILL');
    for (const m of [m0, m1]) {
      const e = await cluster.waitForEvent(m, (ev) => ev.type === 'error', 20_000);
      assert.match(
        (e as { message: string }).message,
        /subgroup 'log' needs 1 shard\(s\) of at least 3 members; the view has 2 members/);
    }
    await sleep(200);
    for (const m of [m0, m1]) {
      assert.not.ok(m.exited, `member ${m.id}'s process is still running (no unhandled rejection)`);
      await cluster.request(m, { cmd: 'membership' }); // and answers
    }
  } finally {
    await cluster.close();
  }
});

test.run();
