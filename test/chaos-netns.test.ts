// Random outages on real hosts (opt-in: SQUALL_CHAOS=1; needs root, like view-change-netns): four members,
// each in a network namespace of its own, rejoin: true. Eight times, one member picked by the seed is cut off
// by the bridge (its link keeps its carrier, so its TCP connections survive) for 0.1–2.5 s, with up to 2 s
// between. Afterwards the four must be one group again: every member in the same view of four.
//
// Not in the suite yet, because it finds a bug not yet fixed (docs/membership.md, "Known bug: a member cut
// off for about a second can take the whole group down"): with SQUALL_TEST_SEED=2 the group is lost (4 of 4
// runs; seeds 1 and 3 pass). CHAOS_EVENTS=1 prints every member's events at the end.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import { EmulatedNetwork, netnsSupport } from '../ts/netns/emulated-network.js';
import { prng } from '../ts/sim/shard-sim.js';
import { sleep } from './support/membership.js';
import { suiteSeed } from './support/random.js';

const support = netnsSupport();
const optIn = process.env.SQUALL_CHAOS === '1';
if (!support.ok) console.log(`chaos-netns: skipped — ${support.why}`);
else if (!optIn) console.log('chaos-netns: skipped — opt-in (SQUALL_CHAOS=1): it shows a known bug (see its header)');
const chaosTest = support.ok && optIn ? test : test.skip;

type Status = { vid: number; members: number[]; installing: boolean; stopped: string | null };

chaosTest('random outages of one member at a time: afterwards the four are one group again', async () => {
  const seed = suiteSeed(7);
  const r = prng(seed);
  const net = await EmulatedNetwork.create({ members: 4 });
  let cluster: GroupCluster | null = null;
  try {
    const c = cluster = await GroupCluster.start({
      members: 4, rejoin: true,
      subgroups: { kv: { shards: 1, members: { min: 2, max: 4 } } },
      types: { kv: 'KeyValueStore' },
      network: { fork: (i, entry) => net.fork(i, entry), hostOf: (i) => net.hosts[i]!.address },
    });
    await c.request(c.members[0]!, { cmd: 'fill', subgroup: 'kv', method: 'put', count: 4, bytes: 1 << 20 });
    const cuts: string[] = [];
    for (let i = 0; i < 8; i++) {
      const who = Math.floor(r() * 4), ms = 100 + Math.floor(r() * 2400);
      cuts.push(`${who}:${ms}`);
      await net.setBlocked(who, true);
      await sleep(ms);
      await net.setBlocked(who, false);
      await sleep(Math.floor(r() * 2000));
    }
    const statusOf = async (m: GroupCluster['members'][number]): Promise<Status> => {
      try {
        return (await c.request(m, { cmd: 'membership' })).status as Status;
      } catch (error) {
        return { vid: -1, members: [], installing: false, stopped: (error as Error).message };
      }
    };
    let status: Status[] = [];
    const whole = () => status.length === 4 && status.every((s) => s.vid === status[0]!.vid
      && s.members.length === 4 && !s.installing && s.stopped === null);
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && !whole(); await sleep(300)) {
      status = await Promise.all(c.members.filter((m) => !m.exited).map(statusOf));
    }
    if (process.env.CHAOS_EVENTS) {
      for (const m of c.members) {
        console.log(m.id, JSON.stringify(m.events.filter((e) => e.type !== 'warning')
          .map((e) => ({ ...e, atMs: Math.round((e as { atMs: number }).atMs) % 1_000_000 }))));
      }
    }
    assert.ok(whole(), `seed ${seed}, cuts ${cuts.join(' ')}: ${JSON.stringify(status.map((s) => [s.vid, s.members,
      s.stopped]))}`);
  } finally {
    await cluster?.close();
    await net.destroy();
  }
});

test.run();
