// Bounded sends across real processes (issue 13): a member that fires sends — or ordered calls — without
// ever awaiting them keeps a bounded number queued, its memory stays flat, the excess is refused at once
// with OverloadedError (ERR_SQUALL_OVERLOADED), and every send it accepted is delivered at every member,
// in its order.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import { MULTICAST_DEFAULTS } from '../ts/membership/plans.js';

/** Ordering and bounds, not failure detection: a busy 2-core machine must not get members suspected. */
const CALM = { suspicionTimeoutMs: 3000 };
const MiB = 1 << 20;

type Fired = {
  fired: number; accepted: number[]; refused: number; codes: Record<string, number>;
  maxQueued: number; maxQueuedBytes: number; rssBefore: number; rssMax: number; rssAfter: number;
};
type Report = { delivered: number; hash: number };

/**
 * The recorder's running hash (ts/harness/group-process.ts) of `sender`'s messages k ∈ ks, `size` bytes each, in order.
 */
function expectedHash(sender: number, ks: readonly number[], size: number): number {
  const mix = (hash: number, value: number) => Math.imul(hash ^ value, 0x01000193) >>> 0;
  let hash = 0x811c9dc5;
  for (const k of ks) hash = mix(mix(mix(hash, sender), k), size);
  return hash;
}

function describe(f: Fired): string {
  return `fired ${f.fired}, accepted ${f.accepted.length}, refused ${f.refused} ${JSON.stringify(f.codes)}, ` +
    `most queued ${f.maxQueued} ` +
    `(${f.maxQueuedBytes} B), RSS ${(f.rssBefore / MiB).toFixed(1)} → max ${(f.rssMax / MiB).toFixed(1)} MiB`;
}

/** The fire-and-forget sender fires for `seconds`; every member must deliver exactly what it accepted, in order. */
async function fireAndCheck(cluster: GroupCluster, size: number, seconds: number): Promise<Fired> {
  await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'record', subgroup: 'log' })));
  const sender = cluster.members[1]!;
  const fired = (await cluster.request(sender, { cmd: 'fire', subgroup: 'log', seconds, size })) as unknown as Fired;
  console.log(`  ${describe(fired)}`);
  assert.is(fired.accepted.length + fired.refused, fired.fired, 'every send settled, accepted or refused');
  assert.ok(fired.refused > 0, 'a sender that never awaits meets the bound');
  assert.equal(Object.keys(fired.codes), ['ERR_SQUALL_OVERLOADED'], 'every refusal is an OverloadedError');
  assert.ok(fired.accepted.length > 0, 'sends were accepted');
  const total = fired.accepted.length;
  const awaited = await cluster.all({ cmd: 'await', subgroup: 'log', total, timeoutMs: 120_000 });
  const reports = awaited as unknown as Report[];
  const hash = expectedHash(sender.id, fired.accepted, size);
  for (const [i, r] of reports.entries()) {
    assert.is(r.delivered, fired.accepted.length, `member ${i} delivered every accepted send`);
    assert.is(r.hash, hash, `member ${i} delivered exactly the accepted sends, in the order sent`);
  }
  return fired;
}

test('bounded sends: a member firing 1 KiB sends for 4 s without awaiting keeps at most the default 1024 queued, RSS ' +
  'flat, the rest refused, all accepted delivered in order', async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3, subgroups: { log: { shards: 1, members: { min: 3, max: 3 } } },
  });
  try {
    const fired = await fireAndCheck(cluster, 1024, 4);
    assert.ok(
      fired.maxQueued <= MULTICAST_DEFAULTS.maxQueuedMessages, `at most maxQueuedMessages queued (${fired.maxQueued})`);
    // Unbounded, 4 s of this loop queued hundreds of MiB; bounded, the queue holds 1 MiB. The bound is loose:
    // garbage (refused sends) and the allocator's slack come and go.
    assert.ok(
      fired.rssMax - fired.rssBefore < 128 * MiB,
      `RSS grew by ${((fired.rssMax - fired.rssBefore) / MiB).toFixed(1)} MiB`);
  } finally {
    await cluster.close();
  }
});

test('bounded sends: the subgroup\'s maxQueuedBytes bounds the queued bytes, and Group.join\'s maxQueuedMessages ' +
  'wins over the configuration\'s', async () => {
  const subgroups = {
    log: { shards: 1, members: { min: 3, max: 3 }, maxQueuedBytes: 32 * 1024, maxQueuedMessages: 100_000 },
  };
  const byBytes = await GroupCluster.start({ ...CALM, members: 3, subgroups });
  try {
    const fired = await fireAndCheck(byBytes, 4096, 2);
    assert.ok(fired.maxQueuedBytes <= 32 * 1024, `at most maxQueuedBytes queued (${fired.maxQueuedBytes})`);
    assert.ok(fired.maxQueued <= 8, `so at most 8 sends of 4 KiB (${fired.maxQueued})`);
  } finally {
    await byBytes.close();
  }
  const byOption = await GroupCluster.start({
    ...CALM, members: 3, subgroups: { log: { ...subgroups.log, maxQueuedBytes: 64 * MiB } }, maxQueuedMessages: 50,
  });
  try {
    const fired = await fireAndCheck(byOption, 256, 2);
    assert.ok(fired.maxQueued <= 50, `at most Group.join's maxQueuedMessages queued (${fired.maxQueued})`);
  } finally {
    await byOption.close();
  }
});

test('bounded point-to-point: sendTo fired for 3 s without awaiting keeps at most maxQueuedMessages waiting per ' +
  'destination, RSS flat, the rest refused, every accepted one received', async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3, maxQueuedMessages: 64, subgroups: { log: { shards: 1, members: { min: 3, max: 3 } } },
  });
  try {
    await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'record', subgroup: 'log' })));
    const reply = await cluster.request(cluster.members[1]!, {
      cmd: 'fire', subgroup: 'log', seconds: 3, size: 4096, to: 2,
    });
    const fired = reply as unknown as Fired;
    console.log(`  sendTo: ${describe(fired)}`);
    assert.is(fired.accepted.length + fired.refused, fired.fired, 'every sendTo settled, accepted or refused');
    assert.ok(fired.refused > 0, 'a sender that never awaits meets the bound');
    assert.equal(Object.keys(fired.codes), ['ERR_SQUALL_OVERLOADED'], 'every refusal is an OverloadedError');
    assert.ok(
      fired.rssMax - fired.rssBefore < 128 * MiB,
      `RSS grew by ${((fired.rssMax - fired.rssBefore) / MiB).toFixed(1)} MiB`);
    const deadline = Date.now() + 30_000;
    let received = 0;
    while (Date.now() < deadline) {
      received =
        ((await cluster.request(cluster.members[2]!, { cmd: 'report', subgroup: 'log' })) as { directs: number })
        .directs;
      if (received >= fired.accepted.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(received, fired.accepted.length, 'member 2 received every accepted sendTo, once');
  } finally {
    await cluster.close();
  }
});

test('bounded calls: ordered calls fired without awaiting keep at most maxQueuedMessages waiting for replies; the ' +
  'rest refused, every accepted one applied everywhere', async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3, subgroups: { kv: { shards: 1, members: { min: 3, max: 3 } } }, types: { kv: 'KeyValueStore' },
    maxQueuedMessages: 64,
  });
  try {
    const sender = cluster.members[1]!;
    const reply = await cluster.request(sender, {
      cmd: 'fire', subgroup: 'kv', seconds: 2, size: 32, batch: 200, calls: { method: 'put' },
    });
    const fired = reply as unknown as Fired;
    console.log(`  ${describe(fired)}`);
    assert.ok(fired.refused > 0, 'a caller that never awaits meets the bound');
    assert.equal(Object.keys(fired.codes), ['ERR_SQUALL_OVERLOADED'], 'every refusal is an OverloadedError');
    assert.ok(fired.maxQueued <= 64, `at most 64 calls in flight (${fired.maxQueued})`);
    assert.ok(fired.accepted.length > 0, 'calls were accepted');
    const summaries = await Promise.all(cluster.members.map(async (m) => {
      const reply = await cluster.request(m, {
        cmd: 'query', subgroup: 'kv', member: m.id, method: 'summary', args: [],
      });
      return reply.value as { keys: number };
    }));
    for (const [i, s] of summaries.entries()) {
      assert.is(s.keys, fired.accepted.length, `member ${i} applied every accepted call and no refused one`);
    }
  } finally {
    await cluster.close();
  }
});

test.run();
