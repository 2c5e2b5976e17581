// The SST across real processes on loopback: native fabric, predicate workers, WebAssembly kernels.

import { test } from 'uvu';
import { crashTest } from './support/crash.js';
import * as assert from 'uvu/assert';
import { SstCluster, type SstClusterMember as ClusterMember } from '../ts/harness/cluster.js';
import type { HarnessEvent } from '../ts/harness/sst-process.js';

const N = 100_000;
const columns = { counter: { type: 'i64' as const } };

const fired = (kind: string) => (e: HarnessEvent) => e.type === 'fired' && e.kind === kind;
const event = (name: string, peer?: number) => (e: HarnessEvent) => e.type === 'event' && e.name === name &&
  (peer === undefined || e.args[0] === peer);

async function countAndConverge(members: number): Promise<void> {
  // Every member pushes in a tight loop: with 5 members that is ~15 busy threads on this 2-core machine,
  // where a thread can wait tens of milliseconds for a core. The default suspicion timeout (1 s) is made
  // for such a machine, and the failure detector must stay quiet; detection itself is tested below.
  const cluster = await SstCluster.start({ members, columns });
  try {
    const results = await Promise.all(
      cluster.members.map((m) => cluster.request(m, { cmd: 'count', column: 'counter', times: N, target: N })));
    for (const r of results) assert.is(r.final, N, 'each member counted its own row to N');
    for (const m of cluster.members) {
      await cluster.waitForEvent(m, fired('one-time'), 60_000);
      await cluster.waitForEvent(m, fired('transition'), 60_000);
    }
    await new Promise((r) => setTimeout(r, 300)); // room for a wrong second firing to show up
    for (const m of cluster.members) {
      assert.is(m.events.filter(fired('one-time')).length, 1, `one-time predicate fired once at member ${m.id}`);
      assert.is(m.events.filter(fired('transition')).length, 1, `transition predicate fired once at member ${m.id}`);
      const e = m.events.find(fired('one-time')) as Extract<HarnessEvent, { type: 'fired' }>;
      assert.is(e.value, N, 'the value that fired is the minimum, N');
      const { values } = await cluster.request(m, { cmd: 'read', column: 'counter' });
      assert.equal(values, cluster.members.map(() => N), `member ${m.id}'s copy converged`);
      assert.is(m.events.filter(event('suspected')).length, 0, `member ${m.id} suspected nobody`);
    }
  } finally {
    await cluster.close();
  }
}

test('sst: 3 member processes push 100,000 increments each; every copy converges; "every row ≥ N" fires once per ' +
  'member', async () => {
  await countAndConverge(3);
});

test('sst: 5 member processes push 100,000 increments each; every copy converges; "every row ≥ N" fires once per ' +
  'member', async () => {
  await countAndConverge(5);
});

crashTest('sst: a member stopped (SIGSTOP) for three suspicion timeouts suspects nobody when it runs again (it ' +
  'discounts its own lateness)', async () => {
  const suspicionTimeoutMs = 300;
  const cluster = await SstCluster.start({ members: 3, columns, heartbeatIntervalMs: 10, suspicionTimeoutMs });
  try {
    const [a, b, stopped] = cluster.members as [ClusterMember, ClusterMember, ClusterMember];
    await new Promise((r) => setTimeout(r, 200)); // heartbeats flowing
    stopped.process.kill('SIGSTOP');
    // it looked dead to them
    for (const s of [a, b]) await cluster.waitForEvent(s, event('suspected', stopped.id), 10_000);
    await new Promise((r) => setTimeout(r, 3 * suspicionTimeoutMs));
    stopped.process.kill('SIGCONT');
    // Running again, it sees the others' heartbeats move on (they never stopped); its own pause is no
    // reason to suspect them.
    await new Promise((r) => setTimeout(r, 3 * suspicionTimeoutMs));
    assert.is(
      stopped.events.filter(event('suspected')).length, 0,
      `the stopped member suspected nobody: ${JSON.stringify(stopped.events)}`);
    const { values } = await cluster.request(stopped, { cmd: 'read', column: 'counter' });
    assert.is((values as number[]).length, 3, 'and it answers');
  } finally {
    await cluster.close();
  }
});

async function detectionMs(
  cluster: SstCluster, survivor: ClusterMember, victim: ClusterMember, since: number
): Promise<number> {
  const e = await cluster.waitForEvent(survivor, event('suspected', victim.id), 20_000);
  return e.atMs - since;
}

crashTest('sst: SIGKILL of one member of 3 — the survivors suspect it through the broken connection, well within the ' +
  'timeout, and keep working', async () => {
  const suspicionTimeoutMs = 1000;
  const cluster = await SstCluster.start({ members: 3, columns, heartbeatIntervalMs: 10, suspicionTimeoutMs });
  try {
    await Promise.all(
      cluster.members.map((m) => cluster.request(m, { cmd: 'count', column: 'counter', times: 1000, target: 1000 })));
    const [a, b, victim] = cluster.members as [ClusterMember, ClusterMember, ClusterMember];
    const killedAt = performance.timeOrigin + performance.now();
    victim.process.kill('SIGKILL');
    for (const s of [a, b]) {
      const ms = await detectionMs(cluster, s, victim, killedAt);
      // Half the timeout: only the broken connection can be that fast (a stalled heartbeat takes the whole
      // timeout), and it leaves room for a busy machine's scheduling delays.
      assert.ok(
        ms <= suspicionTimeoutMs / 2,
        `member ${s.id} suspected the killed member after ${ms.toFixed(1)} ms (limit ${suspicionTimeoutMs / 2}: the ` +
          `broken connection, not the timeout)`);
    }
    // the survivors go on: a predicate over the live rows (the dead one excluded) still fires
    const more = await Promise.all(
      [a, b].map((m) => cluster.request(m, { cmd: 'count', column: 'counter', times: 5000, target: 6000 })));
    for (const r of more) assert.is(r.final, 6000);
    for (const s of [a, b]) {
      const views = (await cluster.request(s, { cmd: 'read', column: 'counter' })).values as number[];
      assert.is(views[0], 6000);
      assert.is(views[1], 6000);
      assert.is(views[2], 1000, 'the dead member\'s row keeps its last pushed value');
      const late = await cluster.waitForEvent(
        s, (e) => e.type === 'fired' && e.kind === 'one-time' && e.value >= 6000, 10_000);
      assert.ok(late);
    }
  } finally {
    await cluster.close();
  }
});

crashTest('sst: a member frozen with SIGSTOP is suspected from its stalled heartbeat, not before the timeout',
  async () => {
  const suspicionTimeoutMs = 1000;
  const cluster = await SstCluster.start({ members: 3, columns, heartbeatIntervalMs: 10, suspicionTimeoutMs });
  try {
    const [a, b, frozen] = cluster.members as [ClusterMember, ClusterMember, ClusterMember];
    await new Promise((r) => setTimeout(r, 200)); // heartbeats flowing
    const stoppedAt = performance.timeOrigin + performance.now();
    frozen.process.kill('SIGSTOP');
    for (const s of [a, b]) {
      const ms = await detectionMs(cluster, s, frozen, stoppedAt);
      assert.ok(
        ms >= suspicionTimeoutMs - 20,
        `member ${s.id} suspected after ${ms.toFixed(1)} ms: too early for a ${suspicionTimeoutMs} ms timeout`);
      // Late only by what a busy machine costs: the checker discounts its own late wake-ups (they count
      // against nobody), so on a loaded machine detection may take a few timeouts, never forever.
      assert.ok(
        ms <= 5 * suspicionTimeoutMs,
        `member ${s.id} suspected after ${ms.toFixed(1)} ms: too late for a ${suspicionTimeoutMs} ms timeout`);
      assert.is(s.events.filter(event('peerFailed', frozen.id)).length, 0, 'the connection itself did not fail');
    }
    frozen.process.kill('SIGKILL');
  } finally {
    await cluster.close();
  }
});

test.run();
