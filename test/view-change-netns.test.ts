// Partition safety with real hosts (DESIGN.md §6): five members, each in a network namespace of its own,
// under ordered load from every member; the links of two are taken down. The three go on in a view of
// their own; the two find themselves in a minority, stop with PartitionedError and deliver nothing more —
// not even once their links are back. Then the two are started again in their namespaces and rejoin as new
// members through the three's contact addresses: the five install one view, and the two catch up on the
// replicated store (written to before and during the partition) and on the multicast that goes on.
//
// Needs root and the kernel's netns/veth/bridge support: without them the test is skipped, saying why.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import { EmulatedNetwork, netnsSupport } from '../ts/netns/emulated-network.js';
import { isPrefix, sleep, type Report } from './support/membership.js';

const support = netnsSupport();
if (!support.ok) console.log(`view-change-netns: skipped — ${support.why}`);
const netTest = support.ok ? test : test.skip;


netTest('links of 2 of 5 members down: the 3 go on in view 1, the 2 stop with a partition error and deliver nothing ' +
  'more; back, they rejoin and catch up', async () => {
  const net = await EmulatedNetwork.create({ members: 5 });
  let cluster: GroupCluster | null = null;
  try {
    cluster = await GroupCluster.start({
      members: 5, // the default suspicion timeout (1 s): five members starting at once in namespaces on a busy machine
      // can each take hundreds of ms to get a core, and at 500 ms one was once suspected before the first view formed
      subgroups: {
        log: { shards: 1, members: { min: 2, max: 5 }, maxSmcPayload: 1024, maxMessageBytes: 1024 },
        kv: { shards: 1, members: { min: 2, max: 5 } },
      },
      types: { kv: 'KeyValueStore' },
      network: { fork: (i, entry) => net.fork(i, entry), hostOf: (i) => net.hosts[i]!.address },
    });
    const c = cluster;
    const [m0, m1, m2, m3, m4] = c.members as [
      typeof c.members[0], typeof c.members[0], typeof c.members[0], typeof c.members[0], typeof c.members[0]
    ];
    const majority = [m0, m1, m2], minority = [m3, m4];
    await c.all({ cmd: 'record', subgroup: 'log', sequence: true });
    await c.request(m1, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 8, bytes: 1 << 20 });
    const count = 2000;
    const sends = c.members.map((m) =>
      c.request(m, { cmd: 'send', subgroup: 'log', count, sizes: [200], ratePerSec: 1000 }).catch(() => null));
    await c.request(m0, { cmd: 'await', subgroup: 'log', total: 1000, timeoutMs: 30_000 });

    await net.setLinkUp(3, false);
    await net.setLinkUp(4, false);
    for (const m of majority) {
      const view = await c.waitForEvent(m, (e) => e.type === 'view', 20_000);
      assert.ok(
        view.type === 'view' && JSON.stringify(view.members) === '[0,1,2]',
        `member ${m.id} installs the view of 0, 1, 2: ${JSON.stringify(view)}`);
    }
    for (const m of minority) {
      const e = await c.waitForEvent(m, (ev) => ev.type === 'partitioned', 20_000);
      assert.ok(e.type === 'partitioned' && /is in a minority of view 0/.test(e.message), JSON.stringify(e));
    }
    const stopped = (await c.all({ cmd: 'report', subgroup: 'log' }, minority)) as unknown as Report[];
    await Promise.all(sends.slice(0, 3));

    // The majority drains; its members agree, and have every message its senders sent. Their sends have all
    // resolved, so every message will be delivered: wait for that (not for the count to hold still, which on a
    // busy machine it can do for a while before the rest comes).
    let reports: Report[] = [];
    const whole = (r: Report) => [0, 1, 2].every((sender) =>
      r.sequence.filter((d) => d.startsWith(`${sender}:`)).length >= count);
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
      reports = (await c.all({ cmd: 'report', subgroup: 'log' }, majority)) as unknown as Report[];
      if (reports.every(whole) && reports.every((r) => r.delivered === reports[0]!.delivered)) break;
    }
    const final = reports[0]!.sequence;
    for (const r of reports) assert.equal(r.sequence, final, 'the three delivered the same sequence');
    for (const sender of [0, 1, 2]) {
      assert.is(final.filter((d) => d.startsWith(`${sender}:`)).length, count, `every message of member ${sender}`);
    }
    for (const [i, r] of stopped.entries()) {
      assert.ok(isPrefix(r.sequence, final), `member ${minority[i]!.id}'s deliveries are a prefix of the majority's`);
    }

    // The links come back: the two stay stopped and deliver nothing more.
    await net.setLinkUp(3, true);
    await net.setLinkUp(4, true);
    await sleep(1500);
    const after = (await c.all({ cmd: 'report', subgroup: 'log' }, minority)) as unknown as Report[];
    for (const [i, r] of after.entries()) {
      assert.is(r.delivered, stopped[i]!.delivered, `member ${minority[i]!.id} delivered nothing after it stopped`);
      assert.not.ok(minority[i]!.events.some((e) => e.type === 'view'), `member ${minority[i]!.id} installed no view`);
    }

    // The two are started again in their namespaces and rejoin as new members, while the store changes.
    await c.request(m0, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 4, bytes: 1 << 20 });
    await Promise.all(minority.map((m) => c.request(m, { cmd: 'close' })
      .catch(() => {}))); // a stopped member may exit instead of answering; it is started again below anyway
    const joined = await c.add([3, 4]);
    const rejoined = c.members.slice(5);
    const final5 = joined.reduce((a, b) => ((b.vid as number) > (a.vid as number) ? b : a));
    assert.equal(
      [...(final5.members as number[])].sort(), [0, 1, 2, 3, 4],
      `the five are one view again: ${JSON.stringify(final5)}`);
    for (const m of majority) await c.waitForEvent(m, (e) => e.type === 'view' && e.vid === final5.vid, 20_000);
    const stores = await Promise.all([...majority, ...rejoined].map(async (m) => {
      const reply = await c.request(m, { cmd: 'query', subgroup: 'kv', member: m.id, method: 'summary', args: [] });
      return reply.value;
    }));
    assert.equal(
      (stores[0] as { keys: number }).keys, 12,
      'the store holds the 8 values written before and the 4 during the partition');
    for (const [i, store] of stores.entries()) {
      assert.equal(store, stores[0], `member ${[...majority, ...rejoined][i]!.id}'s store equals member 0's`);
    }

    // And the multicast goes on among all five.
    await c.all({ cmd: 'record', subgroup: 'log', sequence: true }, rejoined);
    const live = [...majority, ...rejoined];
    const before5 = (await c.all({ cmd: 'report', subgroup: 'log' }, majority)) as unknown as Report[];
    await Promise.all(live.map((m) => c.request(m, { cmd: 'send', subgroup: 'log', count: 200, sizes: [200] })));
    const total = before5[0]!.delivered + 1000;
    const awaited = await c.all({ cmd: 'await', subgroup: 'log', total, timeoutMs: 30_000 }, majority);
    const drained = awaited as unknown as Report[];
    for (const r of drained) {
      assert.is(
        r.delivered, before5[0]!.delivered + 1000, 'the 1,000 messages the five sent are delivered at the three');
    }
    const awaited5 = await c.all({ cmd: 'await', subgroup: 'log', total: 1000, timeoutMs: 30_000 }, rejoined);
    const r5 = awaited5 as unknown as Report[];
    for (const r of r5) {
      assert.equal(
        r.sequence, drained[0]!.sequence.slice(-1000),
        'the rejoined members delivered the same 1,000, in the same order');
    }
  } finally {
    await cluster?.close();
    await net.destroy();
  }
});

test.run();
