// Ordered calls of a replicated object across real member processes (issue 15, "the path users call"):
// many calls in flight from every member at once, then calls in flight while a view change removes a
// member. A counter makes the checks exact: each command adds 1, so the total each call resolves with
// names its place in the shard's order — every call's replies must agree on it (and on the version), and
// no two calls may get the same total.

import { test } from 'uvu';
import { existsSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { crashTest } from './support/crash.js';
import { startCli } from './support/cli-runs.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { SubgroupConfig } from '../ts/membership/plans.js';
import { sleep, TIMING } from './support/membership.js';

const COUNTER: SubgroupConfig = { shards: 1, members: { min: 2, max: 9 }, window: 16, maxSmcPayload: 256 };

interface CallsResult { made: number; failed: number; firstError: string | null; values: number[] }

function assertDistinct(values: readonly number[], what: string): void {
  const seen = new Set<number>();
  for (const v of values) {
    assert.ok(!seen.has(v), `${what}: two calls resolved with the same total ${v}`);
    seen.add(v);
  }
}

test('3 members, 16 calls in flight at each for 1 s: every call has every member\'s agreeing reply, the totals ' +
  'are 1..N once each, and every counter holds N', async () => {
  const cluster = await GroupCluster.start({
    members: 3, subgroups: { counter: COUNTER }, types: { counter: 'BenchCounter' },
  });
  try {
    const runs = (await cluster.all({
      cmd: 'calls', subgroup: 'counter', inFlight: 16, warmupMs: 0, seconds: 1, values: true,
    })) as unknown as CallsResult[];
    for (const [i, r] of runs.entries()) assert.is(r.failed, 0, `member ${i}: ${r.firstError}`);
    const made = runs.reduce((sum, r) => sum + r.made, 0);
    const values = runs.flatMap((r) => r.values);
    assert.is(values.length, made, 'every call resolved');
    assertDistinct(values, 'all members');
    assert.equal([...values].sort((a, b) => a - b), Array.from({ length: made }, (_, i) => i + 1));
    const counters = await cluster.all({ cmd: 'counter', subgroup: 'counter' });
    for (const c of counters) assert.is(c.value, made);
  } finally {
    await cluster.close();
  }
});

crashTest('calls in flight across a view change (one of 4 members SIGKILLed): every survivor\'s calls settle, ' +
  'each with agreeing replies of the members still there, no total twice; the survivors\' counters agree',
async () => {
  const cluster = await GroupCluster.start({
    ...TIMING, members: 4, subgroups: { counter: COUNTER }, types: { counter: 'BenchCounter' },
  });
  try {
    const survivors = cluster.members.slice(0, 3);
    const victim = cluster.members[3]!;
    const runs = cluster.all({
      cmd: 'calls', subgroup: 'counter', inFlight: 8, warmupMs: 0, seconds: 3, replies: 0, values: true,
    }, survivors);
    cluster.request(victim, {
      cmd: 'calls', subgroup: 'counter', inFlight: 8, warmupMs: 0, seconds: 3, replies: 0,
    }).catch(() => {}); // it dies mid-run
    await sleep(800);
    victim.process.kill('SIGKILL');
    for (const m of survivors) {
      await cluster.waitForEvent(m, (e) => e.type === 'view' && e.members.length === 3, 20_000);
    }
    const results = (await runs) as unknown as CallsResult[];
    for (const [i, r] of results.entries()) {
      assert.is(r.failed, 0, `member ${i}: ${r.firstError}`);
      assert.is(r.values.length, r.made, `member ${i}: every call resolved`);
    }
    const values = results.flatMap((r) => r.values);
    assertDistinct(values, 'the survivors');
    const counters = await cluster.all({ cmd: 'counter', subgroup: 'counter' }, survivors);
    for (const c of counters) assert.is(c.value, counters[0]!.value, 'the survivors\' counters agree');
    assert.ok(Math.max(...values) <= (counters[0]!.value as number), 'no call resolved past the final total');
    assert.ok(values.length > 0 && results.every((r) => r.values.length > 0), 'every survivor made calls');
  } finally {
    await cluster.close();
  }
});

test('squall bench calls: prints calls/s per member, CPU per call, the latency and the multicast alone beside ' +
  'them, with every counter holding every call; refuses a bad --in-flight', async () => {
  const run = startCli(['bench', 'calls', '--in-flight', '4', '--seconds', '0.5', '--json']);
  assert.is(await run.exit, 0, run.err);
  const r = JSON.parse(run.out.trim().split('\n').pop()!) as {
    members: number; inFlight: number; perNode: { callsPerSec: number; cpuUsPerCall: number };
    latencyUs: { p50: number; p99: number; samples: number }; countersAgree: boolean; failed: number;
    multicast: { perNode: { msgsPerSec: number }; latencyUs: { p50: number } };
  };
  assert.equal([r.members, r.inFlight, r.failed, r.countersAgree], [3, 4, 0, true]);
  assert.ok(r.perNode.callsPerSec > 0 && r.perNode.cpuUsPerCall > 0, JSON.stringify(r.perNode));
  assert.ok(r.latencyUs.samples > 0 && r.latencyUs.p50 > 0 && r.latencyUs.p99 >= r.latencyUs.p50, JSON.stringify(r));
  assert.ok(r.multicast.perNode.msgsPerSec > 0 && r.multicast.latencyUs.p50 > 0, JSON.stringify(r.multicast));
  assert.match(run.err, /calls: every member keeps 4 ordered inc\(1\) call\(s\) in flight/);
  // --persisted: a persistent counter whose calls resolve once durable at every member; its logs go at the end.
  // Two seconds: the first persisted calls wait for the logs' first commits (hundreds of ms on a busy disk).
  const persisted = startCli(['bench', 'calls', '--in-flight', '4', '--seconds', '2', '--persisted', '--no-multicast',
    '--json']);
  assert.is(await persisted.exit, 0, persisted.err);
  const p = JSON.parse(persisted.out.trim().split('\n').pop()!) as typeof r & { persisted: boolean };
  assert.equal([p.persisted, p.failed, p.countersAgree], [true, 0, true]);
  assert.ok(p.perNode.callsPerSec > 0 && p.latencyUs.samples > 0, JSON.stringify(p));
  const logs = /persistent: logs in (\S+)\)/.exec(persisted.err)?.[1];
  assert.ok(logs !== undefined && !existsSync(logs), `the logs' directory is removed: ${persisted.err}`);
  const bad = startCli(['bench', 'calls', '--in-flight', '0']);
  assert.is(await bad.exit, 1);
  assert.match(bad.err, /--in-flight/);
});

test.run();
