// A group that keeps working when its members are slow, stopped or failing (issue 12), with real member
// processes on loopback: a member stopped with SIGSTOP is removed and, once it runs again, rejoins by itself;
// members without an 'error' listener survive a peer killed with calls in flight; calls pending at a removed
// or partitioned member reject with the error that stopped it; leave() settles in every state; a rejoining
// member whose state transfer a view change cut off asks again, past a contact that is stopped.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import type { GroupHarnessEvent } from '../ts/harness/group-process.js';
import { crashTest } from './support/crash.js';
import { isPrefix, LOG, quiescentReports, sleep, SIZES, type Report } from './support/membership.js';

const KV = { shards: 1, members: { min: 1, max: 5 } };
/** MiB of state in the store when a rejoining member's transfer is cut off. */
const REJOIN_STATE_MIB = 64;
const isView = (members: number[]) => (e: GroupHarnessEvent) => e.type === 'view' &&
  JSON.stringify(e.members) === JSON.stringify(members);

crashTest('a member stopped (SIGSTOP) for three suspicion timeouts is removed; after SIGCONT it rejoins by itself ' +
  'and the group is whole', async () => {
  const suspicionTimeoutMs = 500;
  const cluster = await GroupCluster.start({ members: 3, subgroups: { log: LOG }, suspicionTimeoutMs, rejoin: true });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const [m0, m1, m2] = cluster.members as [GroupClusterMember, GroupClusterMember, GroupClusterMember];
    await cluster.all({ cmd: 'send', subgroup: 'log', count: 200, sizes: SIZES });
    await cluster.all({ cmd: 'await', subgroup: 'log', total: 600 });

    m2.process.kill('SIGSTOP');
    try {
      await cluster.waitForEvent(m0, isView([0, 1]), 20_000);
      await cluster.waitForEvent(m1, isView([0, 1]), 20_000);
      // The two go on while member 2 is stopped.
      await Promise.all(
        [m0, m1].map((m) => cluster.request(m, { cmd: 'send', subgroup: 'log', count: 100, sizes: SIZES })));
      await sleep(Math.max(0, 3 * suspicionTimeoutMs - 500));
    } finally {
      m2.process.kill('SIGCONT');
    }
    const removed = await cluster.waitForEvent(m2, (e) => e.type === 'removed', 20_000);
    assert.ok(removed.type === 'removed' && removed.rejoining, 'member 2 learns it was removed, and rejoins');
    const rejoined = await cluster.waitForEvent(m2, (e) => e.type === 'rejoined', 30_000);
    assert.ok(
      rejoined.type === 'rejoined' && rejoined.members.length === 3,
      `member 2 is back in a view of 3 members: ${JSON.stringify(rejoined)}`);
    for (const m of [m0, m1]) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && e.members.length === 3 && e.joined.includes(2), 20_000);
    }

    // The group is whole again: every member sends, and every member delivers the same messages after.
    await cluster.all({ cmd: 'send', subgroup: 'log', count: 100, sizes: SIZES });
    const reports = await quiescentReports(cluster, cluster.members, 'log');
    const [r0, r1, r2] = reports as [Report, Report, Report];
    assert.equal(r0.sequence, r1.sequence, 'members 0 and 1 delivered the same sequence');
    assert.ok(r0.sequence.length >= 600 + 200 + 300, `every message reached members 0 and 1 (${r0.sequence.length})`);
    // Member 2: what it delivered before its removal is a prefix of the others' sequence (at least the 600
    // it had when it was stopped), and what it delivered since it rejoined is the rest of that sequence from
    // the view it entered on — no message twice, none out of order.
    let k = 0;
    while (k < r2.sequence.length && r2.sequence[k] === r0.sequence[k]) k++;
    const after = r2.sequence.slice(k);
    assert.ok(k >= 600, `member 2's sequence starts with the others' (${k} messages in common)`);
    assert.equal(
      after, r0.sequence.slice(r0.sequence.length - after.length),
      'since it rejoined, member 2 delivered the end of the same sequence');
    assert.ok(r0.sequence.length - after.length >= k, 'and nothing it had delivered before is delivered again');
    assert.equal(
      r2.sequence.slice(-300), r0.sequence.slice(-300), 'member 2 delivered the 300 messages sent once it was back');
    assert.ok(
      !cluster.members.some((m) => m.events.some((e) => e.type === 'error' || e.type === 'partitioned')),
      'no member reported an error or a partition');
  } finally {
    await cluster.close();
  }
});

crashTest('members without an error listener: one killed while every member has ordered calls in flight; every ' +
  'survivor lives', async () => {
  for (let round = 0; round < 3; round++) {
    const cluster = await GroupCluster.start({
      members: 4, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' }, listenErrors: false,
    });
    try {
      const fills = cluster.members.map((m) =>
        cluster.request(
          m, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 2000, bytes: 64, inFlight: 32 })
            .catch((e: Error) => e));
      await sleep(150);
      const victim = cluster.members[1 + (round % 3)]!;
      victim.process.kill('SIGKILL');
      const survivors = cluster.members.filter((m) => m !== victim);
      for (const m of survivors) {
        await cluster.waitForEvent(m, (e) => e.type === 'view' && !e.members.includes(victim.id), 20_000);
      }
      const results = await Promise.all(fills);
      for (const [i, m] of cluster.members.entries()) {
        if (m === victim) continue;
        assert.not.instance(results[i], Error, `member ${m.id}'s calls all settled: ${String(results[i])}`);
      }
      // Every survivor is still alive and answers.
      for (const m of survivors) {
        assert.not.ok(m.exited, `member ${m.id} is alive`);
        const call = await cluster.request(m, {
          cmd: 'call', subgroup: 'kv', method: 'put', args: ['after', new Uint8Array(4)],
        });
        const replies = call.replies as unknown[];
        assert.is(
          replies.length, survivors.length, `member ${m.id}'s call after the failure got every survivor's reply`);
      }
    } finally {
      await cluster.close();
    }
  }
});

crashTest('calls pending at a partitioned member reject with PartitionedError; its leave() rejects with it too, in ' +
  'bounded time', async () => {
  const cluster = await GroupCluster.start({ members: 3, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' } });
  try {
    const [m0, m1, m2] = cluster.members as [GroupClusterMember, GroupClusterMember, GroupClusterMember];
    m1.process.kill('SIGKILL');
    m2.process.kill('SIGKILL');
    // Member 0's call: the others are gone, so it can never be ordered.
    const call = cluster.request(
      m0, { cmd: 'call', subgroup: 'kv', method: 'put', args: ['x', new Uint8Array(4)] })
        .catch((e: Error & { code?: string }) => e);
    await cluster.waitForEvent(m0, (e) => e.type === 'partitioned', 20_000);
    const error = await call;
    assert.instance(error, Error);
    assert.is(
      (error as { code?: string }).code, 'ERR_SQUALL_PARTITIONED',
      `the pending call rejects with PartitionedError: ${String(error)}`);
    const started = Date.now();
    const left = await cluster.request(m0, { cmd: 'leave' }).catch((e: Error & { code?: string }) => e);
    assert.is(
      (left as { code?: string }).code, 'ERR_SQUALL_PARTITIONED',
      `leave() on a partitioned member rejects with PartitionedError: ${String(left)}`);
    assert.ok(Date.now() - started < 5_000, 'and settles at once');
  } finally {
    await cluster.close();
  }
});

test('the last two members leave together: both leave() calls resolve', async () => {
  const cluster = await GroupCluster.start({ members: 2, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' } });
  try {
    await cluster.request(
      cluster.members[0]!, { cmd: 'call', subgroup: 'kv', method: 'put', args: ['x', new Uint8Array(4)] });
    const started = Date.now();
    const results = await Promise.all(
      cluster.members.map((m) => cluster.request(m, { cmd: 'leave' }).then(() => 'left', (e: Error) => e.message)));
    assert.equal(results, ['left', 'left'], 'both members left');
    assert.ok(Date.now() - started < 5_000, `within the leave time limit (${Date.now() - started} ms)`);
  } finally {
    await cluster.close();
  }
});

test('the last member leaves: leave() resolves', async () => {
  const cluster = await GroupCluster.start({ members: 1, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' } });
  try {
    await cluster.request(cluster.members[0]!, { cmd: 'leave' });
  } finally {
    await cluster.close();
  }
});

crashTest('leave() during a view change settles: the leaver is out, the others go on', async () => {
  const cluster = await GroupCluster.start({ members: 4, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' } });
  try {
    const [m0, m1, , m3] = cluster.members as [
      GroupClusterMember, GroupClusterMember, GroupClusterMember, GroupClusterMember
    ];
    m3.process.kill('SIGKILL');
    await cluster.waitForEvent(m1, (e) => e.type === 'memberFailed', 10_000);
    const started = Date.now();
    const left = await cluster.request(m1, { cmd: 'leave' }).then(() => 'left', (e: Error) => e.message);
    if (left !== 'left') {
      const state = await Promise.all(
        [m0, cluster.members[2]!].map((m) => cluster.request(m, { cmd: 'membership' }).catch((e: Error) => e.message)));
      const events = JSON.stringify(cluster.members.map((m) => m.events));
      assert.unreachable(
        `the leave during the change did not resolve: ${left}\nevents: ${events}\nstate: ${JSON.stringify(state)}`);
    }
    // leave() bounds itself at leaveTimeoutMs (5 s); the rest is this process's round trip to the member's,
    // which a busy machine can stretch by seconds.
    assert.ok(Date.now() - started < 12_000, `within the leave time limit (${Date.now() - started} ms)`);
    await cluster.waitForEvent(m0, isView([0, 2]), 20_000);
  } finally {
    await cluster.close();
  }
});

crashTest('a rejoining member whose state a view change cut off asks again (rejoinRetry), passes over a stopped ' +
  'contact, and gets back in', async () => {
  const suspicionTimeoutMs = 500;
  const cluster = await GroupCluster.start({
    members: 4, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' }, suspicionTimeoutMs, rejoin: true,
  });
  try {
    const [m0, , , m3] = cluster.members as [GroupClusterMember, unknown, unknown, GroupClusterMember];
    // A state large enough that its transfer is still on its way when its source is stopped below.
    await cluster.request(cluster.members[1]!, {
      cmd: 'fill', subgroup: 'kv', method: 'put', count: REJOIN_STATE_MIB, bytes: 1 << 20,
    });
    m3.process.kill('SIGSTOP');
    try {
      await cluster.waitForEvent(m0, isView([0, 1, 2]), 20_000);
    } finally {
      m3.process.kill('SIGCONT');
    }
    await cluster.waitForEvent(m3, (e) => e.type === 'removed', 20_000);
    // Member 3 rejoins. Once member 0 — its state's source, the lowest-ranked old member of the shard — has
    // installed the view that takes it back, member 0 stops: the state cannot all arrive, and the others
    // remove member 0 in a change that cuts member 3's transfer off. Member 3 must ask again, not close.
    const back = await cluster.waitForEvent(m0, (e) => e.type === 'view' && e.joined.includes(3), 20_000);
    const backVid = back.type === 'view' ? back.vid : Infinity;
    m0.process.kill('SIGSTOP');
    let retry: GroupHarnessEvent;
    try {
      retry = await cluster.waitForEvent(m3, (e) => e.type === 'rejoinRetry', 20_000);
      await cluster.waitForEvent(m3, (e) => e.type === 'rejoined', 30_000);
    } finally {
      m0.process.kill('SIGCONT');
    }
    assert.ok(retry.type === 'rejoinRetry' && /state/.test(retry.message),
      `member 3's attempt failed for want of its state: ${JSON.stringify(retry)}`);
    // Member 3's next attempt asks the contacts it knows in order, member 0 first: stopped, its kernel still
    // takes the connection, and nothing answers. The attempt waited for that answer until connectTimeoutMs ran
    // out (rejoinFailed); it now gives a contact handshakeMs (5 s) to greet and asks the next.
    // Member 0, removed meanwhile, rejoins too: the four end in one view again, with one store.
    const whole = (e: GroupHarnessEvent) =>
      (e.type === 'view' || e.type === 'rejoined') && e.vid > backVid && e.members.length === 4;
    for (const m of cluster.members) await cluster.waitForEvent(m, whole, 30_000);
    const summaries = await Promise.all(cluster.members.map((m) =>
      cluster.request(m, { cmd: 'query', subgroup: 'kv', member: m.id, method: 'summary', args: [] })));
    const first = JSON.stringify(summaries[0]!.value);
    for (const s of summaries) assert.equal(JSON.stringify(s.value), first, 'every member holds the same store');
    assert.ok((summaries[0]!.value as { keys: number }).keys >= REJOIN_STATE_MIB, `the store is whole: ${first}`);
    assert.ok(!m3.events.some((e) => e.type === 'error' || e.type === 'rejoinFailed'),
      `member 3 never gave up: ${JSON.stringify(m3.events.filter((e) => e.type !== 'view'))}`);
  } finally {
    await cluster.close();
  }
});

crashTest('calls pending at a member removed while alive reject with RemovedError', async () => {
  const cluster = await GroupCluster.start({
    members: 3, subgroups: { kv: KV }, types: { kv: 'KeyValueStore' }, suspicionTimeoutMs: 1000,
  });
  try {
    const m2 = cluster.members[2]!;
    // Member 2 blocks its event loop (its calls cannot complete meanwhile), then is stopped long enough
    // for the others to remove it; its pending call must then reject with RemovedError.
    const call = cluster.request(
      m2, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 100_000, bytes: 64, inFlight: 8 })
        .catch((e: Error & { code?: string }) => e);
    await sleep(100);
    m2.process.kill('SIGSTOP');
    try {
      for (const m of cluster.members.slice(0, 2)) await cluster.waitForEvent(m, isView([0, 1]), 20_000);
    } finally {
      m2.process.kill('SIGCONT');
    }
    const error = await call;
    assert.is(
      (error as { code?: string }).code, 'ERR_SQUALL_REMOVED',
      `the pending calls reject with RemovedError: ${String(error)}`);
    await cluster.waitForEvent(m2, (e) => e.type === 'removed', 10_000);
  } finally {
    await cluster.close();
  }
});

test.run();
