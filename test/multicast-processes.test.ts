// Ordered multicast across real processes on loopback (DESIGN.md §4): every member delivers the identical
// sequence — compared in full on small runs and as a running hash on larger ones — with each sender's
// messages in its own order, nothing lost, nothing twice; small messages through SST slots and large ones
// through RDMC share one order; idle senders' nulls keep others moving; a slow receiver holds the window.

import { test } from 'uvu';
import { crashTest } from './support/crash.js';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { SubgroupConfig } from '../ts/membership/plans.js';

/** These suites test ordering, not failure detection: a member whose heartbeat is late on a loaded machine
 *  (ASan, libfabric, CI) must not be taken for failed, so suspicion waits a second. */
const CALM = { suspicionTimeoutMs: 1000 };

type Report = { delivered: number; hash: number; sequence: string[] | null; nullsSent: number };

/** Each sender's messages appear once each, k = 0, 1, 2, … in order, and nothing else appears. */
function checkFifo(sequence: string[], sent: Map<number, number>, who: string): void {
  const next = new Map<number, number>();
  for (const entry of sequence) {
    const [sender, k] = entry.split(':').map(Number) as [number, number];
    const expected = next.get(sender) ?? 0;
    assert.is(k, expected, `${who}: message ${k} of sender ${sender} arrived where ${expected} was due`);
    next.set(sender, expected + 1);
  }
  for (const [sender, count] of sent) {
    assert.is(next.get(sender) ?? 0, count, `${who}: messages delivered from sender ${sender}`);
  }
  for (const sender of next.keys()) {
    assert.ok(sent.has(sender), `${who}: delivered a message from ${sender}, which sent none`);
  }
}

async function run(options: {
  members: number; subgroup: SubgroupConfig; senders: number[]; count: number; sizes: number[]; sequence: boolean;
  slowUs?: Record<number, number>;
}) {
  const cluster = await GroupCluster.start({ ...CALM, members: options.members, subgroups: { log: options.subgroup } });
  try {
    await Promise.all(
      cluster.members.map((m) =>
        cluster.request(
          m, { cmd: 'record', subgroup: 'log', sequence: options.sequence, slowUs: options.slowUs?.[m.id] ?? 0 })));
    const senders = cluster.members.filter((m) => options.senders.includes(m.id));
    const sends = await cluster.all(
      { cmd: 'send', subgroup: 'log', count: options.count, sizes: options.sizes }, senders);
    const total = options.count * senders.length;
    const reports =
      (await cluster.all({ cmd: 'await', subgroup: 'log', total, timeoutMs: 60_000 })) as unknown as Report[];
    for (const [i, r] of reports.entries()) assert.is(r.delivered, total, `member ${i} delivered`);
    for (const r of reports.slice(1)) {
      assert.is(r.hash, reports[0]!.hash, 'every member delivered the same sequence (running hash)');
    }
    if (options.sequence) {
      const sent = new Map(options.senders.map((id) => [id, options.count]));
      for (const [i, r] of reports.entries()) {
        assert.equal(r.sequence, reports[0]!.sequence, `member ${i}'s full sequence equals member 0's`);
        checkFifo(r.sequence!, sent, `member ${i}`);
      }
    }
    return { reports, sends: sends as Array<{ maxQueued: number }> };
  } finally {
    await cluster.close();
  }
}

test('3 members, all sending, small and large (RDMC) messages mixed: identical full sequences, each sender in order',
  async () => {
  await run({
    members: 3, senders: [0, 1, 2], count: 150, sizes: [100, 1000, 40_000, 5, 300_000, 2048], sequence: true,
    subgroup: {
      shards: 1, members: { min: 3, max: 3 }, maxSmcPayload: 4096, maxMessageBytes: 1 << 20, blockBytes: 64 * 1024,
    },
  });
});

test('5 members, all sending, small and large (RDMC) messages mixed: identical full sequences', async () => {
  await run({
    members: 5, senders: [0, 1, 2, 3, 4], count: 80, sizes: [64, 3000, 70_000, 900], sequence: true,
    subgroup: {
      shards: 1, members: { min: 5, max: 5 }, maxSmcPayload: 4096, maxMessageBytes: 256 * 1024, blockBytes: 32 * 1024,
    },
  });
});

test('5 members, 2 of them sending, 3,000 messages each: every member delivers the same sequence', async () => {
  await run({
    members: 5, senders: [0, 1], count: 3000, sizes: [512, 64, 2000], sequence: false,
    subgroup: { shards: 1, members: { min: 5, max: 5 }, senders: 2, maxSmcPayload: 2048, maxMessageBytes: 2048 },
  });
});

test('5 members, all senders, only one sends: the idle senders\' nulls keep its messages flowing', async () => {
  const { reports } = await run({
    members: 5, senders: [3], count: 400, sizes: [256], sequence: true,
    subgroup: { shards: 1, members: { min: 5, max: 5 }, maxSmcPayload: 1024, maxMessageBytes: 1024 },
  });
  for (const [i, r] of reports.entries()) if (i !== 3) assert.ok(r.nullsSent > 0, `idle member ${i} sent nulls`);
});

test('a slow receiver holds the window: senders queue, nothing is lost or reordered', async () => {
  const { sends } = await run({
    members: 3, senders: [0, 1], count: 200, sizes: [128], sequence: true, slowUs: { 2: 1000 },
    subgroup: {
      shards: 1, members: { min: 3, max: 3 }, senders: 2, window: 4, maxSmcPayload: 1024, maxMessageBytes: 1024,
    },
  });
  assert.ok(
    sends.some((s) => s.maxQueued > 0),
    `a sender queued behind the full window (maxQueued ${sends.map((s) => s.maxQueued)})`);
});

test('raw mode: each sender\'s messages arrive in its order at every member, nothing lost', async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3,
    subgroups: {
      log: { shards: 1, members: { min: 3, max: 3 }, mode: 'raw', maxSmcPayload: 1024, maxMessageBytes: 1024 },
    },
  });
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    await cluster.all({ cmd: 'send', subgroup: 'log', count: 500, sizes: [100] });
    const reports =
      (await cluster.all({ cmd: 'await', subgroup: 'log', total: 1500, timeoutMs: 30_000 })) as unknown as Report[];
    const sent = new Map([[0, 500], [1, 500], [2, 500]]);
    for (const [i, r] of reports.entries()) {
      assert.is(r.delivered, 1500, `member ${i} delivered`);
      // Raw mode promises each sender's order only: check it per sender.
      checkFifo(r.sequence!, sent, `member ${i}`);
    }
  } finally {
    await cluster.close();
  }
});

test('clear errors: oversize multicast and point-to-point messages, a member that is not a sender', async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3, mailboxBytes: 64 * 1024,
    subgroups: {
      log: { shards: 1, members: { min: 3, max: 3 }, senders: 2, maxSmcPayload: 1024, maxMessageBytes: 100_000 },
    },
  });
  try {
    const [m0, , m2] = cluster.members;
    const oversize = await cluster.request(m0!, { cmd: 'send-raw', subgroup: 'log', bytes: 100_001 })
      .then(() => null, (e: Error) => e.message);
    assert.match(oversize ?? '', /100001 bytes, more than maxMessageBytes = 100000/);
    const direct = await cluster.request(m0!, { cmd: 'direct', subgroup: 'log', member: 1, bytes: 40_000 })
      .then(() => null, (e: Error) => e.message);
    assert.match(direct ?? '', /point-to-point message .* more than maxMessageBytes = 32760/);
    const notSender = await cluster.request(m2!, { cmd: 'send-raw', subgroup: 'log', bytes: 10 })
      .then(() => null, (e: Error) => e.message);
    assert.match(notSender ?? '', /not a sender of this shard/);
    // The group still works after the refusals.
    await cluster.all({ cmd: 'record', subgroup: 'log' });
    const send = cluster.request(m0!, { cmd: 'send-raw', subgroup: 'log', bytes: 50_000 });
    await send.catch(() => {}); // its outcome is not what this test checks (the refusals above are)
  } finally {
    await cluster.close();
  }
});

test('TicketBook: two members book the same ticket at the same moment; one caller wins, every member agrees',
  async () => {
  const cluster = await GroupCluster.start({
    ...CALM, members: 3, types: { tickets: 'TicketBook' },
    subgroups: { tickets: { shards: 1, members: { min: 3, max: 3 } } },
  });
  try {
    const [m0, m1, m2] = cluster.members;
    for (let round = 0; round < 20; round++) {
      const ticket = `t-${round}`;
      const [a, b] = await Promise.all([
        cluster.request(m0!, { cmd: 'call', subgroup: 'tickets', method: 'book', args: [ticket, 'alice'] }),
        cluster.request(m1!, { cmd: 'call', subgroup: 'tickets', method: 'book', args: [ticket, 'bob'] }),
      ]);
      const repliesA = a.replies as Array<{ member: number; value: boolean; version: bigint }>;
      const repliesB = b.replies as Array<{ member: number; value: boolean; version: bigint }>;
      assert.is(repliesA.length, 3, 'a reply from every member');
      // Every member answers a command alike; exactly one of the two callers got the ticket.
      for (const r of [repliesA, repliesB]) {
        assert.ok(
          r.every((x) => x.value === r[0]!.value && x.version === r[0]!.version),
          `replies agree: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      }
      assert.ok(
        repliesA[0]!.value !== repliesB[0]!.value,
        `exactly one caller succeeds (alice ${repliesA[0]!.value}, bob ${repliesB[0]!.value})`);
      const winner = repliesA[0]!.value ? 'alice' : 'bob';
      const holders = await Promise.all(
        [m0, m1, m2].map((m, i) =>
          cluster.request(
            m!, { cmd: 'query', subgroup: 'tickets', member: (i + 1) % 3, method: 'holder', args: [ticket] })));
      for (const h of holders) assert.is(h.value, winner, `every member holds ${ticket} for ${winner}`);
    }
    const unknown = await cluster.request(
      m2!, { cmd: 'call', subgroup: 'tickets', method: 'cancelEverything', args: [] }).then(() => null,
        (e: Error) => e.message);
    assert.match(unknown ?? '', /TicketBook has no callable method "cancelEverything"; callable: .*\bbook\b/);
  } finally {
    await cluster.close();
  }
});

crashTest('partition safety: a member left with a minority of its view stops with PartitionedError; a majority does ' +
  'not', async () => {
  const subgroups = { log: { shards: 1, members: { min: 3, max: 3 }, maxSmcPayload: 1024, maxMessageBytes: 1024 } };
  const three = await GroupCluster.start({ ...CALM, members: 3, subgroups });
  try {
    const [m0, m1, m2] = three.members;
    m1!.process.kill('SIGKILL');
    m2!.process.kill('SIGKILL');
    const e = await three.waitForEvent(m0!, (ev) => ev.type === 'partitioned', 10_000);
    assert.ok(
      e.type === 'partitioned' &&
        /member 0 is in a minority of view 0: 2 of its 3 members are unreachable/.test(e.message), JSON.stringify(e));
    const refused = await three.request(m0!, { cmd: 'send-raw', subgroup: 'log', bytes: 64 }).then(() => null,
      (err: Error) => err.message);
    assert.match(refused ?? '', /minority/, 'a partitioned member refuses to send');
  } finally {
    await three.close();
  }
  // With a majority left, the survivors do not stop: they remove the failed members (view-change-processes
  // tests that change in full).
  const five = await GroupCluster.start({
    ...CALM, members: 5, subgroups: { log: { ...subgroups.log, members: { min: 3, max: 5 } } },
  });
  try {
    five.members[3]!.process.kill('SIGKILL');
    five.members[4]!.process.kill('SIGKILL');
    for (const m of five.members.slice(0, 3)) {
      const view = await five.waitForEvent(m, (ev) => ev.type === 'view', 10_000);
      assert.ok(
        view.type === 'view' && view.vid === 1 && JSON.stringify(view.members) === '[0,1,2]',
        `member ${m.id} installs view 1 of 0, 1, 2: ${JSON.stringify(view)}`);
      assert.not.ok(m.events.some((ev) => ev.type === 'partitioned'), `member ${m.id}: 3 of 5 is a majority`);
    }
    await five.all({ cmd: 'send-raw', subgroup: 'log', bytes: 64 }, five.members.slice(0, 3));
  } finally {
    await five.close();
  }
});

test.run();
