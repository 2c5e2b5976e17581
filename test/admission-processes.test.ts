// Admission that cannot be used against the group (issue 13; docs/membership.md, "Admission"), with real
// member processes on loopback. Strangers — raw TCP clients at a member's contact port, with ids the view
// does not have — ask to join in swarms larger than the group and vanish at each step of the join: once
// accepted, once offered the view, after the offer without ever answering, after answering a port where
// nothing listens. Real joiner processes are SIGKILLed right after the leader takes them. After each: the
// three members never stop (no partitioned, removed or error event), they end in a view of exactly
// themselves, an ordered message from each is delivered at all of them within a bound of one suspicion
// timeout plus generous slack (the machine is busy: stops and membership are asserted strictly, times
// loosely), and a real joiner still gets in afterwards.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createConnection, type Socket } from 'node:net';
import { crashTest } from './support/crash.js';
import { freePort, GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import { LOG, sleep, TIMING } from './support/membership.js';
import { joinRequest, type Greeting } from './support/contact-clients.js';

/**
 * Where a stranger vanishes: it closes once accepted, once offered, never answers the offer, or answers a dead port.
 */
type Vanish = 'accepted' | 'offer' | 'silent' | 'port';

/** Strangers in one swarm: more than the three members, so that counting them would leave the members a minority. */
const SWARM = 5;
/** Delivery must resume within one suspicion timeout plus this (generous: a busy machine, two view changes). */
const SLACK_MS = 9_000;

interface Stranger {
  /** The leader accepted it (its id went into a proposal). */
  accepted: boolean;
  /** The messages it received, by kind. */
  seen: string[];
  /** Closes it, if it is still connected ('silent' stays until the round ends). */
  close(): void;
}

/**
 * A raw TCP client asking to join as `id` through `contact`: it follows redirects and asks again on
 * `retry` (a swarm that insists) until accepted once, then vanishes as `vanish` says. Resolves once it has
 * vanished (for 'silent': once it was offered the view and went quiet).
 */
function stranger(
  contact: string, id: number, vanish: Vanish, deadPort: number, deadline = Date.now() + 20_000
): Promise<Stranger> {
  return new Promise((resolve) => {
    const sep = contact.lastIndexOf(':');
    const socket: Socket = createConnection({ host: contact.slice(0, sep), port: Number(contact.slice(sep + 1)) });
    const me: Stranger = { accepted: false, seen: [], close: () => socket.destroy() };
    let buffered = '';
    let done = false;
    const finish = (value: Stranger | Promise<Stranger>) => { if (!done) { done = true; resolve(value); } };
    socket.setEncoding('utf8');
    socket.on('error', () => finish(me));
    socket.on('close', () => finish(me));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const message = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        const kind = Object.keys(message)[0]!;
        me.seen.push(kind);
        if (kind === 'hello') { // the member's greeting: the group is open, so the request needs no proof
          socket.write(`${JSON.stringify(joinRequest(message['hello'] as Greeting, id, '127.0.0.1', null))}\n`);
          continue;
        }
        if (kind === 'redirect' || (kind === 'retry' && !me.accepted)) {
          socket.destroy();
          const next = kind === 'redirect' ? message['redirect'] as string : contact;
          if (Date.now() < deadline) finish(
            sleep(kind === 'retry' ? 30 : 0).then(() => stranger(next, id, vanish, deadPort, deadline)));
          else finish(me);
          return;
        }
        if (kind === 'accepted') {
          me.accepted = true;
          if (vanish === 'accepted') { socket.destroy(); finish(me); return; }
        }
        if (kind === 'offer') {
          if (vanish === 'offer') { socket.destroy(); finish(me); return; }
          if (vanish === 'silent') { finish(me); return; } // connected, and never answers
          if (vanish === 'port') socket.write(`${JSON.stringify({ port: deadPort })}\n`);
        }
        if (kind === 'addresses' || kind === 'retry' || kind === 'refused') { socket.destroy(); finish(me); return; }
      }
    });
  });
}

const stopped = (m: GroupClusterMember) => m.events.filter((e) =>
  e.type === 'partitioned' || e.type === 'removed' || e.type === 'error');

/** The members' views: each ends in exactly `members` (waits for the event), and none stopped. */
async function settleIn(
  cluster: GroupCluster, old: GroupClusterMember[], members: number[], after: number
): Promise<number> {
  let vid = 0;
  for (const m of old) {
    const e = await cluster.waitForEvent(
      m, (x) => x.type === 'view' && x.vid > after && JSON.stringify(x.members) === JSON.stringify(members), 30_000);
    vid = Math.max(vid, e.type === 'view' ? e.vid : 0);
  }
  for (const m of old) assert.equal(stopped(m), [], `member ${m.id} never stops: ${JSON.stringify(m.events)}`);
  for (const m of old) assert.not.ok(m.exited, `member ${m.id} still runs`);
  return vid;
}

/** One ordered message from each member, delivered at all of them: how long it took. */
async function roundTrip(
  cluster: GroupCluster, old: GroupClusterMember[], delivered: { total: number }, k: number
): Promise<number> {
  const started = performance.now();
  await cluster.all({ cmd: 'send', subgroup: 'log', count: 1, sizes: [100], firstK: k }, old);
  delivered.total += old.length;
  const reports = await cluster.all({ cmd: 'await', subgroup: 'log', total: delivered.total, timeoutMs: 60_000 }, old);
  for (const [i, r] of reports.entries()) {
    assert.ok(
      (r.delivered as number) >= delivered.total,
      `member ${old[i]!.id} delivered ${r.delivered as number} of ${delivered.total}`);
  }
  return performance.now() - started;
}

function lastVid(m: GroupClusterMember): number {
  return Math.max(0, ...m.events.map((e) => (e.type === 'view' ? e.vid : 0)));
}

test('swarms of strangers larger than the group ask to join and vanish once accepted, once offered, silent after the ' +
  'offer, after a dead port: the members never stop and deliver again within a suspicion timeout; a real joiner gets ' +
  'in after', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    const old = [...cluster.members];
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const delivered = { total: 0 };
    await roundTrip(cluster, old, delivered, 0);
    const deadPort = await freePort(); // nothing listens there
    let id = 100, k = 1, vid = 0;
    for (const vanish of ['accepted', 'offer', 'silent', 'port'] as const) {
      const contact = cluster.contacts.get(0)!; // the leader's: the swarm arrives in one batch
      const swarm = await Promise.all(Array.from({ length: SWARM }, () => stranger(contact, id++, vanish, deadPort)));
      const vanishedAt = performance.now();
      assert.ok(
        swarm.every((s) => s.accepted),
        `every stranger was accepted (${vanish}): ${JSON.stringify(swarm.map((s) => s.seen))}`);
      // Sent at once, delivered once the group has removed the strangers (the sends wait out the changes).
      const resumeMs = await roundTrip(cluster, old, delivered, k++).catch((e: Error) => {
        throw new Error(
          `${e.message} (${vanish}); events: ${old.map((m) => `${m.id}: ${JSON.stringify(m.events)}`).join('; ')}`);
      });
      const sinceMs = performance.now() - vanishedAt;
      for (const s of swarm) s.close();
      const taken = Math.max(...old[0]!.events.map((e) => (e.type === 'view' && e.vid > vid ? e.joined.length : 0)));
      vid = await settleIn(cluster, old, [0, 1, 2], vid);
      console.log(
        `  ${SWARM} strangers vanishing (${vanish}), at most ${taken} in one view: delivery ` +
          `again ${sinceMs.toFixed(0)} ms after they vanished (round trip ${resumeMs.toFixed(0)} ms)`);
      assert.ok(
        sinceMs < TIMING.suspicionTimeoutMs + SLACK_MS,
        `delivery resumed ${sinceMs.toFixed(0)} ms after the strangers vanished (${vanish}); the bound is one ` +
          `suspicion timeout (${TIMING.suspicionTimeoutMs} ms) plus ${SLACK_MS} ms`);
      vid = Math.max(vid, ...old.map(lastVid));
    }
    // A real joiner still gets in, and delivers with the others.
    const [joined] = await cluster.add([3]);
    assert.equal(joined!.members, [0, 1, 2, 3], 'the joiner enters after the members');
    await settleIn(cluster, old, [0, 1, 2, 3], vid);
    await cluster.request(cluster.members[3]!, { cmd: 'record', subgroup: 'log', sequence: true });
    await cluster.all({ cmd: 'send', subgroup: 'log', count: 1, sizes: [100], firstK: k }, old);
    const report = await cluster.request(
      cluster.members[3]!, { cmd: 'await', subgroup: 'log', total: 3, timeoutMs: 30_000 });
    assert.is(report.delivered, 3, 'the joiner delivers the members\' messages');
  } finally {
    await cluster.close();
  }
});

crashTest('real joiners SIGKILLed right after the leader takes them: the members never stop, deliver again within a ' +
  'suspicion timeout, and another joiner gets in', async () => {
  const cluster = await GroupCluster.start({ ...TIMING, members: 3, subgroups: { log: LOG } });
  try {
    const old = [...cluster.members];
    await cluster.all({ cmd: 'record', subgroup: 'log', sequence: true });
    const delivered = { total: 0 };
    await roundTrip(cluster, old, delivered, 0);
    // The leader's event loop is held while the four joiner processes start and ask: it then reads their
    // requests together, and takes all four into one proposal (more joiners than members).
    const held = cluster.request(old[0]!, { cmd: 'busy', ms: 8_000 });
    const joining = cluster.add([3, 4, 5, 6], undefined, 20_000).then(() => 'joined', (e: Error) => e.message);
    const joiners = cluster.members.slice(3);
    await held;
    // The leader wedges as it takes the first joiners into its proposal: that is when they die.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await cluster.request(old[0]!, { cmd: 'membership' }) as {
        rows: Array<{ member: number; wedged: boolean; proposal: number }>
      };
      if (rows.find((r) => r.member === 0)?.wedged) break;
      assert.ok(Date.now() < deadline, 'the leader took the joiners');
      await sleep(2);
    }
    for (const j of joiners) j.process.kill('SIGKILL');
    const killedAt = performance.now();
    assert.match(String(await joining), /exited/, 'the killed joiners did not join');
    const resumeMs = await roundTrip(cluster, old, delivered, 1);
    const sinceMs = performance.now() - killedAt;
    const vid = await settleIn(cluster, old, [0, 1, 2], 0);
    const taken = Math.max(...old[0]!.events.map((e) => (e.type === 'view' ? e.joined.length : 0)));
    console.log(`  4 joiners killed once taken, at most ${taken} in one view: ` +
      `delivery again ${sinceMs.toFixed(0)} ms after (round trip ${resumeMs.toFixed(0)} ms), view ${vid}`);
    assert.ok(
      sinceMs < TIMING.suspicionTimeoutMs + SLACK_MS,
      `delivery resumed ${sinceMs.toFixed(0)} ms after the joiners died; the bound is one ` +
        `suspicion timeout plus ${SLACK_MS} ms`);
    const [joined] = await cluster.add([7]);
    assert.equal(
      joined!.members, [0, 1, 2, 7],
      `a new joiner enters the ` +
        `members' view; events: ${old.map((m) => `${m.id}: ${JSON.stringify(m.events)}`).join('; ')}`);
    await settleIn(cluster, old, [0, 1, 2, 7], vid);
  } finally {
    await cluster.close();
  }
});

test.run();
