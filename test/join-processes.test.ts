// Joins across real processes on loopback (DESIGN.md §6 "Join", "State transfer"): new member processes
// enter a running group of three through its contact addresses, under continuous ordered load from every
// member, and receive the replicated KeyValueStore's state before their first delivery. After each: the
// old members' delivered sequences are identical and hold every message of every sender once, in order;
// what they delivered before the join is a prefix of it; each joiner's sequence is a suffix of it (it
// delivers from its first view on); every member installs the view with the joiners appended in join
// order; and every member's store — the joiners', restored from the transferred snapshot and then fed the
// commands of the new views — has the same keys, bytes and CRC.

import { test } from 'uvu';
import { crashTest } from './support/crash.js';
import * as assert from 'uvu/assert';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import { startCli } from './support/cli-runs.js';
import {
  bySender, isPrefix, isSuffix, LOG, quiescentReports, SIZES, sleep, TIMING, type Report,
} from './support/membership.js';
import { pattern } from './support/pattern.js';

type Summary = { keys: number; bytes: number; crc: number };

const MiB = 1 << 20;
/** Messages each old member sends once the joiners are in (see joinUnderLoad). */
const AFTER_JOIN = 50;

async function summaries(cluster: GroupCluster, members: GroupClusterMember[]): Promise<Summary[]> {
  return Promise.all(members.map(async (m) => {
    const reply = await cluster.request(m, { cmd: 'query', subgroup: 'kv', member: m.id, method: 'summary', args: [] });
    return reply.value as Summary;
  }));
}

interface JoinScenario {
  joiners: number[];
  /** MiB of state in the store before the join (1 MiB values). */
  stateMiB: number;
  count: number;
  ratePerSec: number;
}

async function joinUnderLoad(s: JoinScenario): Promise<void> {
  const cluster = await GroupCluster.start({
    ...TIMING, members: 3, types: { kv: 'KeyValueStore' },
    subgroups: { log: LOG, kv: { shards: 1, members: { min: 3, max: 9 } } },
  });
  try {
    const old = [...cluster.members];
    await cluster.request(old[0]!, { cmd: 'fill', subgroup: 'kv', method: 'put', count: s.stateMiB, bytes: MiB });
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    // Load: every member multicasts on 'log', and member 1 keeps writing small values into the store.
    const sends = Promise.all(
      old.map((m) =>
        cluster.request(m, { cmd: 'send', subgroup: 'log', count: s.count, sizes: SIZES, ratePerSec: s.ratePerSec })));
    const puts = cluster.request(
      old[1]!, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 200, bytes: 1000, inFlight: 1 });
    sends.catch(() => {}); // awaited below; a failure before that must not go unhandled
    puts.catch(() => {}); // awaited below, like sends
    await cluster.request(
      old[0]!, { cmd: 'await', subgroup: 'log', total: Math.floor(s.count / 4), timeoutMs: 30_000 });
    const before = (await cluster.all({ cmd: 'report', subgroup: 'log' }, old)) as unknown as Report[];

    const started = performance.now();
    const joined = await cluster.add(s.joiners);
    const joinMs = performance.now() - started;
    const joiners = cluster.members.slice(old.length);
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true }, joiners);
    await sends;
    await puts;
    // A last wave once the joiners record: on a slow machine (ASan, busy cores) the join can outlast the
    // load, and the joiners must still be seen delivering the group's messages.
    await cluster.all({ cmd: 'send', subgroup: 'log', count: AFTER_JOIN, sizes: SIZES, firstK: s.count }, old);

    // The final view: the old members, then the joiners in the order the leader took them.
    const last = joined.reduce((a, b) => ((b.vid as number) > (a.vid as number) ? b : a));
    const members = last.members as number[];
    assert.equal(members.slice(0, 3), [0, 1, 2], 'the old members keep their ranks');
    assert.equal(
      [...members.slice(3)].sort(), [...s.joiners].sort(),
      `every joiner is in view ${last.vid as number}: ${JSON.stringify(members)}`);
    const joinedEvents = new Set<number>();
    for (const m of old) {
      await cluster.waitForEvent(
        m, (e) => e.type === 'view' && e.vid === last.vid && JSON.stringify(e.members) === JSON.stringify(members),
        20_000);
      for (const e of m.events) if (e.type === 'view') for (const j of e.joined) joinedEvents.add(j);
    }
    assert.equal([...joinedEvents].sort(), [...s.joiners].sort(), 'the view events name the joiners');
    for (const m of cluster.members) {
      assert.not.ok(
        m.events.some((e) => e.type === 'memberFailed' || e.type === 'error'),
        `member ${m.id} saw no failure: ${JSON.stringify(m.events)}`);
    }

    const reports = await quiescentReports(cluster, cluster.members, 'log');
    const final = reports[0]!.sequence;
    assert.is(final.length, 3 * (s.count + AFTER_JOIN), 'every message of the three senders is delivered');
    for (const [i, r] of reports.slice(0, 3).entries()) {
      assert.equal(r.sequence, final, `old member ${i} delivered the same sequence as member 0`);
    }
    for (const [i, r] of before.entries()) {
      assert.ok(
        isPrefix(r.sequence, final), `what member ${i} delivered before the join is a prefix of the final sequence`);
    }
    for (const [i, r] of reports.slice(3).entries()) {
      assert.ok(
        r.delivered >= 3 * AFTER_JOIN && isSuffix(r.sequence, final),
        `joiner ${joiners[i]!.id}'s ${r.delivered} deliveries are the end of the old members' ${final.length}`);
    }
    for (const [sender, ks] of bySender(final)) {
      ks.forEach((k, i) => assert.is(k, i, `sender ${sender}: message ${k} delivered where ${i} was due`));
    }

    const stores = await summaries(cluster, cluster.members);
    assert.equal(
      stores[0], { keys: s.stateMiB + 200, bytes: s.stateMiB * MiB + 200 * 1000, crc: stores[0]!.crc },
      'the store holds what was written');
    for (const [i, store] of stores.entries()) {
      assert.equal(store, stores[0], `member ${cluster.members[i]!.id}'s store equals member 0's`);
    }
    console.log(`  ${s.joiners.length} joiner(s), ${s.stateMiB} MiB of state: joined in ${joinMs.toFixed(0)} ms`);
  } finally {
    await cluster.close();
  }
}

test('a member joins a group of 3 under load and catches up 100 MB of state', async () => {
  await joinUnderLoad({ joiners: [3], stateMiB: 100, count: 2000, ratePerSec: 1000 });
});

test('three members join at once under load; each receives the state', async () => {
  await joinUnderLoad({ joiners: [3, 4, 5], stateMiB: 10, count: 2000, ratePerSec: 1000 });
});

crashTest('a member fails while another joins: one change removes it and takes the joiner, or two do; the state ' +
  'arrives', async () => {
  // Killed 100 ms after the joiner's process starts, the failure usually lands first and the leader folds
  // both into one change; at 250 ms the join is usually committed first. Either way the checks hold.
  for (const killAfterMs of [100, 250]) {
    const cluster = await GroupCluster.start({
      ...TIMING, members: 4, types: { kv: 'KeyValueStore' },
      subgroups: { log: LOG, kv: { shards: 1, members: { min: 2, max: 9 } } },
    });
    try {
      const [m0, , , m3] = cluster.members as [
        GroupClusterMember, GroupClusterMember, GroupClusterMember, GroupClusterMember
      ];
      await cluster.request(m0, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 20, bytes: 100_000 });
      const joining = cluster.add([4]);
      await sleep(killAfterMs);
      m3.process.kill('SIGKILL');
      const [joined] = await joining;
      const survivors = cluster.members.filter((m) => m.id !== 3);
      for (const m of survivors.slice(0, 3)) {
        await cluster.waitForEvent(
          m, (e) => e.type === 'view' && !e.members.includes(3) && e.members.includes(4), 20_000);
      }
      if ((joined!.members as number[]).includes(3)) {
        await cluster.waitForEvent(survivors[3]!, (e) => e.type === 'view' && !e.members.includes(3), 20_000);
      }
      const stores = await summaries(cluster, survivors);
      for (const store of stores) {
        assert.equal(store, stores[0], `every store is the same (kill after ${killAfterMs} ms)`);
      }
      assert.is(stores[0]!.keys, 20);
    } finally {
      await cluster.close();
    }
  }
});

crashTest('a joiner killed while it receives 100 MB: the others remove it and go on, with no error and their stores ' +
  'intact', async () => {
  const cluster = await GroupCluster.start({
    ...TIMING, members: 3, types: { kv: 'KeyValueStore' },
    subgroups: { log: LOG, kv: { shards: 1, members: { min: 2, max: 9 } } },
  });
  try {
    const old = [...cluster.members];
    await cluster.request(old[0]!, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 100, bytes: MiB });
    const before = await summaries(cluster, old);
    const joining = cluster.add([3]).then(() => 'joined', (e: Error) => e.message);
    const joiner = cluster.members[3]!;
    // the transfer begins
    await cluster.waitForEvent(old[0]!, (e) => e.type === 'view' && e.members.includes(3), 20_000);
    joiner.process.kill('SIGKILL');
    assert.match(String(await joining), /member 3 exited|joined/);
    for (const m of old) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && !e.members.includes(3) && e.vid >= 2, 20_000);
    }
    for (const m of old) {
      assert.not.ok(
        m.events.some((e) => e.type === 'error'), `member ${m.id} reported no error: ${JSON.stringify(m.events)}`);
    }
    assert.equal(await summaries(cluster, old), before, 'the stores are as they were');
    const call = await cluster.request(
      old[1]!, { cmd: 'call', subgroup: 'kv', method: 'put', args: ['after', new Uint8Array(10)] });
    const replies = call.replies as unknown[];
    assert.is(replies.length, 3, 'an ordered call in the new view gets the three replies');
  } finally {
    await cluster.close();
  }
});

test('a join that reshuffles shards: each member of a shard it did not hold receives that shard\'s state, from the ' +
  'old member even if it moved away; queries wait for it', async () => {
  // kv has two shards of at most 2: [0],[1] with 3 members (member 2 serves none), [0,1],[2,3] with 4.
  const cluster = await GroupCluster.start({
    ...TIMING, members: 3, types: { kv: 'KeyValueStore' },
    subgroups: { kv: { shards: 2, members: { min: 1, max: 2 } } },
  });
  try {
    const [m0, m1] = cluster.members as [GroupClusterMember, GroupClusterMember];
    // Alone in its shard, member 0 sends through its SST slots only: values of at most maxSmcPayload (10 KiB).
    // shard 0
    await cluster.request(m0, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 2000, bytes: 8000, inFlight: 16 });
    await cluster.request(m1, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 5, bytes: 1000 }); // shard 1
    const [shard0, shard1] = await summaries(cluster, [m0, m1]);
    await cluster.add([3]);
    // Member 1 installs the view as its 16 MB of shard 0 begin to arrive: a query it puts to itself then
    // (as to any member receiving its shard's state) waits for the restore instead of reading the copy of
    // the shard it held in view 0.
    for (const m of [m0, m1, cluster.members[2]!]) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && e.members.includes(3), 20_000);
    }
    const after = await summaries(cluster, cluster.members);
    assert.equal(
      after, [shard0, shard0, shard1, shard1],
      'members 0 and 1 hold shard 0\'s store, 2 and 3 shard 1\'s (which member 1 held)');
  } finally {
    await cluster.close();
  }
});

test('a joiner whose id the view has is refused with a message saying why', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    const error = await cluster.add([1], () => 1, 10_000).then(() => null, (e: Error) => e);
    assert.ok(error, 'the join is refused');
    assert.match(error!.message, pattern([
      /member 1 cannot join: member 1 is in view 0 already; /,
      /give the new member an id the view does not have \(0, 1, 2\)/,
    ]));
  } finally {
    await cluster.close();
  }
});

test('squall bench join: prints joinMs and MB/s for the state given, with every store alike; refuses a bad size',
  async () => {
  const run = startCli(['bench', 'join', '--state', '256KiB', '--runs', '1', '--json']);
  assert.is(await run.exit, 0, run.err);
  const result = JSON.parse(run.out.trim().split('\n').pop()!) as {
    members: number; stateBytes: number; joinMs: number; mbytesPerSec: number; runs: Array<{ storesAgree: boolean }>
  };
  assert.equal([result.members, result.stateBytes, result.runs.length], [3, 256 * 1024, 1]);
  assert.ok(result.joinMs > 0 && result.mbytesPerSec > 0, JSON.stringify(result));
  assert.ok(result.runs[0]!.storesAgree, 'the joiner\'s store equals the others\'');
  assert.match(run.err, /\[1\/1\] joined in [\d.]+ m?s/);
  const bad = startCli(['bench', 'join', '--state', 'lots']);
  assert.is(await bad.exit, 1);
  assert.match(bad.err, /--state must be a size such as 16KiB/);
});

test.run();
