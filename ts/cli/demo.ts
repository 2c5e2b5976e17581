// `squall demo` (npm start): three group members as separate processes on loopback, each replicating the
// TicketBook example (DESIGN.md §8) in one shard, persistent: each member logs every booking in a data
// directory of its own under a temporary directory (removed at the end). It opens with the race of the
// example: two members book seat A1 for different customers at the same moment — exactly one caller gets
// it, and every member names the same holder. Then every member keeps booking tickets through ordered
// calls for --seconds, and once a second the demo prints the ordered commands per second, each member's
// count of bookings and who holds each seat (one more seat is raced by all three every second). Then it
// kills one member with SIGKILL and shows the survivors notice, install view 1 without it (DESIGN.md §6) and
// go on: an ordered call then gets the two survivors' replies. The killed member comes back with its data
// directory through a survivor's contact address: its TicketBook rebuilt from its own log, it receives the
// bookings it missed as state before view 2 goes on with it. Last, one `persisted` booking (durable at
// every member when it returns), every member SIGKILLed at once and started again from its data directory:
// the group serves again with every booking each member held (count and checksum), and takes ordered calls.
// It ends by itself and kills every process it started.

import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from '../errors.js';
import { GroupCluster, type GroupClusterMember } from '../harness/cluster.js';
import type { Reply as ObjectReply } from '../objects/caller.js';
import { formatVersion } from '../objects/version.js';
import { defineCommand, parseCommand } from './args.js';
import { longPhase, progressOnStderr, progressWhile } from './progress.js';
import { formatCount, formatMillis, formatSeconds, parsePositiveInt } from './units.js';

const SUBGROUP = 'tickets';
/** The seats shown live: A1 is raced first, then one more each second. */
const SEATS = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8'];
/** Member i books for CUSTOMERS[i]. */
const CUSTOMERS = ['alice', 'bob', 'carol'];
/** Ordered calls each member keeps outstanding while the load runs: enough to batch, few enough to stay live. */
const CALLS_IN_FLIGHT = 32;

type Reply = ObjectReply<unknown>;

const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const DEMO_COMMAND = defineCommand({
  command: 'demo',
  usage: '[--seconds S]',
  about: `A local 3-member group booking tickets, live (npm start): three members as processes on 127.0.0.1
replicate a persistent TicketBook; two race for seat A1, all book under load, one is SIGKILLed and the
survivors install the next view, then it comes back from its data directory and receives the bookings it
missed; last, after a persisted booking, every member is SIGKILLed at once and started again from its
log, holding every booking. Ends by itself (about --seconds + 5 s).`,
  options: {
    seconds: { type: 'string', value: 'S', help: 'how long the load runs (default 8)' },
  },
});

export async function run(argv: string[]): Promise<void> {
  const values = parseCommand(DEMO_COMMAND, argv);
  if (values === null) return;
  const seconds = parsePositiveInt(values.seconds, 'seconds', 8);
  const root = await mkdtemp(join(tmpdir(), 'squall-demo-'));
  // Ctrl-C or SIGTERM mid-demo: the member processes are killed and the data directories removed too.
  let cluster: GroupCluster | null = null;
  const stop = (signal: NodeJS.Signals) => {
    cluster?.kill();
    rmSync(root, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    await runIn(root, seconds, (c) => { cluster = c; });
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
    await rm(root, { recursive: true, force: true });
  }
}

async function runIn(root: string, seconds: number, started: (c: GroupCluster) => void): Promise<void> {
  const progress = progressOnStderr('demo');
  const dataDirs = [0, 1, 2].map((id) => join(root, `member-${id}`));
  const cluster = await progressWhile(progress, longPhase(
    'starting 3 group members as processes on 127.0.0.1, each replicating a persistent TicketBook',
    'starting the members'), () => GroupCluster.start({
    members: 3, subgroups: { [SUBGROUP]: { shards: 1, members: { min: 2, max: 3 }, persistent: true } },
    types: { [SUBGROUP]: 'TicketBook' }, dataDirs,
    // A member's heartbeat starts with its predicate worker, which can still be starting when its peers
    // begin to watch it: the last to join was sometimes suspected at once under the 100 ms default. The
    // kill below is seen through the broken connection (CLOSED) within milliseconds either way.
    suspicionTimeoutMs: 1000,
  }));
  started(cluster);
  try {
    for (const m of cluster.members) out(`member ${m.id}  pid ${m.process.pid}  listening on ${m.address}`);
    out(`each member logs every booking in its own data directory under ${root} (removed at the end)`);
    // Each member asks its own copy first. The harness creates a member's replicated object at its first
    // call or query, and commands delivered before that are lost to it (its reply would never come).
    await Promise.all(cluster.members.map((m) => query(cluster, m, m.id, 'count')));
    await race(cluster);
    progress(`every member keeps ${CALLS_IN_FLIGHT} ordered book() calls in flight for ${formatSeconds(seconds)}`);
    await live(cluster, seconds);
    await killOne(cluster, progress);
    await comeBack(cluster, progress);
    await restartAll(cluster, progress);
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
  progress('done');
}

/** Member 0 books A1 for alice and member 1 for bob in the same instant; one wins, everywhere. */
async function race(cluster: GroupCluster): Promise<void> {
  const callers = [{ m: cluster.members[0]!, customer: 'alice' }, { m: cluster.members[1]!, customer: 'bob' }];
  out(`race: ${callers.map((c) => `member ${c.m.id} books A1 for ${c.customer}`).join(' and ')}, at the same moment`);
  const calls = await Promise.all(callers.map((c) => book(cluster, c.m, 'A1', c.customer)));
  for (const [i, replies] of calls.entries()) {
    const answers = replies.map((r) => `member ${r.member} says ${String(r.value)}`).join(', ');
    out(
      `  member ${callers[i]!.m.id}'s book(A1, ${callers[i]!.customer}) → ${String(replies[0]!.value)}  (${answers}; ` +
        `ordered as version ${formatVersion(replies[0]!.version)}, view.seq)`);
  }
  const holders = await holdersAt(cluster, 'A1');
  out(`  holder of A1: ${holders.map((h, i) => `member ${cluster.members[i]!.id} says ${h}`).join(', ')}`);
  const winners = callers.filter((_, i) => calls[i]![0]!.value === true).map((c) => c.customer);
  const agreed = calls.every((replies) => unanimous(replies, cluster.members.length)) &&
    holders.every((h) => h === winners[0]);
  assert(
    winners.length === 1 && agreed,
    `the race for A1 did not end with one winner everywhere: ${JSON.stringify({ holders, winners })}`);
  out(`race result: exactly one booking of A1 succeeded (${winners[0]}'s); ` +
    `every member says A1 is held by ${winners[0]}`);
}

/** The load, one line of figures a second, one more seat raced each second; then the load stops. */
async function live(cluster: GroupCluster, seconds: number): Promise<void> {
  const load = startLoad(cluster);
  const started = performance.now();
  let last = { at: started, commands: 0 };
  for (let t = 1; t <= seconds; t++) {
    const seat = SEATS[t];
    if (seat) await Promise.all(cluster.members.map((m, i) => book(cluster, m, seat, CUSTOMERS[i]!)));
    await sleep(started + t * 1000 - performance.now());
    const now = { at: performance.now(), commands: load.completed() };
    const rate = ((now.commands - last.commands) * 1000) / (now.at - last.at);
    last = now;
    const counts = await Promise.all(cluster.members.map((m) => query(cluster, m, m.id, 'count')));
    const bookings = counts.map((c, i) => `member ${cluster.members[i]!.id} ${formatCount(c as number)}`);
    out(`t=${t}s  ${formatCount(rate).padStart(7)} ordered commands/s   bookings: ${bookings.join('  ')}`);
    out(`       ${await seatLine(cluster)}`);
  }
  await load.stop();
  const counts = await Promise.all(cluster.members.map((m) => query(cluster, m, m.id, 'count')));
  const same = counts.every((c) => c === counts[0]);
  assert(same, `members hold different numbers of bookings after the load: ${counts.join(', ')}`);
  out(`load stopped after ${formatCount(load.completed())} ordered bookings in ${seconds} s; ` +
    `with A1 and the raced seats, every member holds ${formatCount(counts[0] as number)}`);
}

/** Who holds each seat; every member is asked about its own copy, and the line says whether they agree. */
async function seatLine(cluster: GroupCluster): Promise<string> {
  const cells: string[] = [];
  let agree = true;
  for (const seat of SEATS) {
    const holders = await holdersAt(cluster, seat);
    const same = holders.every((h) => h === holders[0]);
    agree &&= same;
    cells.push(`${seat} ${(same ? String(holders[0] ?? '·') : holders.join('/')).padEnd(5)}`);
  }
  return `seats: ${cells.join(' ')}  ${agree ? '(every member agrees)' : '(MEMBERS DIFFER)'}`;
}

/** SIGKILL the last member; the survivors report it failed, install the next view, and serve calls in it. */
async function killOne(cluster: GroupCluster, progress: (m: string) => void): Promise<void> {
  const victim = cluster.members[cluster.members.length - 1]!;
  const survivors = cluster.members.filter((m) => m !== victim);
  progress(`SIGKILL member ${victim.id} (pid ${victim.process.pid})`);
  const exited = new Promise((resolve) => victim.process.once('exit', resolve));
  const killedAt = performance.now();
  victim.process.kill('SIGKILL');
  await Promise.all(survivors.map(async (s) => {
    const e = await cluster.waitForEvent(s, (ev) => ev.type === 'memberFailed' && ev.member === victim.id, 5000);
    const reason = e.type === 'memberFailed' ? e.reason : '';
    const after = formatMillis(performance.now() - killedAt);
    out(`member ${s.id} noticed member ${victim.id} failed (${reason}) ${after} after the kill`);
  }));
  await Promise.all(survivors.map(async (s) => {
    const e = await cluster.waitForEvent(s, (ev) => ev.type === 'view', 10_000);
    if (e.type !== 'view') return;
    const after = formatMillis(performance.now() - killedAt);
    out(`member ${s.id} installed view ${e.vid} (members ${e.members.join(', ')}) ${after} after the kill`);
  }));
  await exited;
  const [first] = survivors;
  const replies = await book(cluster, first!, 'B1', CUSTOMERS[first!.id]!);
  const says = replies.map((r) => `member ${r.member} says ${String(r.value)}`).join(', ');
  const version = replies[0] ? formatVersion(replies[0].version) : 'none';
  out(`member ${first!.id}'s ordered book(B1) in the new view: ${says} (version ${version})`);
  const holders = await Promise.all(survivors.map((m) => query(cluster, m, m.id, 'holder', ['A1'])));
  const copies = survivors.map((m, i) => `member ${m.id} says A1 is held by ${String(holders[i])}`);
  out(`queries still answer from each survivor's copy: ${copies.join(', ')}`);
}

/**
 * The killed member comes back with its data directory, through member 0's contact address: its TicketBook
 * rebuilt from its own log, it receives the bookings it missed as state, and answers like the others.
 */
async function comeBack(cluster: GroupCluster, progress: (m: string) => void): Promise<void> {
  const id = cluster.config.members.length - 1;
  const [joined] = await progressWhile(progress, longPhase(
    `starting member ${id} again with its data directory: it enters the group through member 0's contact address`,
    `member ${id} joining`), cluster.add([id]));
  const back = cluster.live(id);
  out(`member ${id} (pid ${back.process.pid}) came back and entered view ${String(joined!.vid)} ` +
    `(members ${(joined!.members as number[]).join(', ')}) in ${formatMillis(joined!.joinMs as number)}: ` +
    'its TicketBook rebuilt from its own log, the bookings it missed received as state');
  const live = liveMembers(cluster);
  const counts = await Promise.all(live.map((m) => query(cluster, m, m.id, 'count')));
  const holders = await Promise.all(live.map((m) => query(cluster, m, m.id, 'holder', ['A1'])));
  const same = counts.every((c) => c === counts[0]) && holders.every((h) => h === holders[0]);
  const bookings = live.map((m, i) => `member ${m.id} ${formatCount(counts[i] as number)}`);
  out(`bookings: ${bookings.join('  ')}; A1 held by ${String(holders[0])} at every member ` +
    (same ? '(every member agrees)' : '(MEMBERS DIFFER)'));
  const replies = await book(cluster, back, 'C1', 'dave');
  const says = replies.map((r) => `member ${r.member} says ${String(r.value)}`);
  out(`member ${id}'s ordered book(C1): ${says.join(', ')}`);
}

/**
 * The last act: one persisted booking (durable at every member when it returns), every member SIGKILLed at
 * once, all started again from their data directories; each holds every booking it held (count and
 * checksum), and ordered calls go on.
 */
async function restartAll(cluster: GroupCluster, progress: (m: string) => void): Promise<void> {
  const members = liveMembers(cluster);
  const [first] = members;
  const persisted = await book(cluster, first!, 'D1', 'erin', true);
  out(`member ${first!.id}'s persisted book(D1, erin) → ${String(persisted[0]!.value)} ` +
    `(version ${formatVersion(persisted[0]!.version)}): it returned once durable in every member's log`);
  const before = await holdings(cluster, members);
  out(`before the kill: ${describeHoldings(before)}`);
  const ids = members.map((m) => m.id);
  progress(`SIGKILL members ${ids.join(', ')} at once (pids ${members.map((m) => m.process.pid).join(', ')})`);
  const exited = members.map((m) => once(m.process, 'exit'));
  for (const m of members) m.process.kill('SIGKILL');
  await Promise.all(exited);
  out(`SIGKILL of members ${ids.join(', ')} at once: no member process is left, nothing was closed or flushed`);
  const { started, joined } = cluster.relaunch(ids);
  const replies = await progressWhile(progress, longPhase(
    `starting members ${ids.join(', ')} again, each with its data directory and no contact`, 'restarting'), joined);
  const servingMs = performance.now() - started;
  const again = ids.map((id) => cluster.live(id));
  const view = replies[0]!;
  out(`members ${ids.join(', ')} started again (pids ${again.map((m) => m.process.pid).join(', ')}), each ` +
    `TicketBook rebuilt from its own log: view ${String(view.vid)} ` +
    `(members ${(view.members as number[]).join(', ')}) ` +
    `serving ${formatMillis(servingMs)} after the start`);
  const after = await holdings(cluster, again);
  const kept = after.every((h, i) => h.count === before[i]!.count && h.hash === before[i]!.hash);
  assert(kept, `members lost bookings in the restart: ${JSON.stringify({ before, after })}`);
  out(`after the restart: ${describeHoldings(after)}; every member holds exactly the bookings it held before the kill`);
  const call = await book(cluster, again[0]!, 'E1', 'frank');
  const says = call.map((r) => `member ${r.member} says ${String(r.value)}`).join(', ');
  const version = call[0] ? formatVersion(call[0].version) : 'none';
  out(`member ${again[0]!.id}'s ordered book(E1) after the restart: ${says} (version ${version})`);
}

/** Each member's own count of bookings and a SHA-256 of all of them (ticket and holder, sorted). */
async function holdings(
  cluster: GroupCluster, members: readonly GroupClusterMember[]
): Promise<Array<{ id: number; count: number; hash: string }>> {
  return Promise.all(members.map(async (m) => {
    const all = await query(cluster, m, m.id, 'bookings') as Array<[string, string]>;
    const hash = createHash('sha256').update(JSON.stringify(all)).digest('hex').slice(0, 16);
    return { id: m.id, count: all.length, hash };
  }));
}

function describeHoldings(held: ReadonlyArray<{ id: number; count: number; hash: string }>): string {
  const same = held.every((h) => h.count === held[0]!.count && h.hash === held[0]!.hash);
  const cells = held.map((h) => `member ${h.id} ${formatCount(h.count)} bookings (sha256 ${h.hash})`);
  return `${cells.join('  ')} ${same ? '(every member agrees)' : '(MEMBERS DIFFER)'}`;
}

/** Each member's live process, in member order. */
function liveMembers(cluster: GroupCluster): GroupClusterMember[] {
  return cluster.members.filter((m) => !m.exited).sort((a, b) => a.id - b.id);
}

/** Every member books tickets of its own, CALLS_IN_FLIGHT calls at a time, until stop(). */
function startLoad(cluster: GroupCluster): { completed(): number; stop(): Promise<void> } {
  let completed = 0;
  let stopped = false;
  const loops = cluster.members.flatMap((m, i) => Array.from({ length: CALLS_IN_FLIGHT }, async (_, lane) => {
    for (let k = 0; !stopped; k++) {
      await book(cluster, m, `m${m.id}-${lane}-${k}`, CUSTOMERS[i]!);
      completed++;
    }
  }));
  const all = Promise.all(loops);
  all.catch(() => {}); // stop() reports it
  return {
    completed: () => completed,
    stop: async () => { stopped = true; await all; },
  };
}

/** An ordered book() from member m (`persisted`: returns once durable everywhere): every reply, in rank order. */
async function book(
  cluster: GroupCluster, m: GroupClusterMember, ticket: string, customer: string, persisted = false
): Promise<Reply[]> {
  const reply = await cluster.request(m, {
    cmd: 'call', subgroup: SUBGROUP, method: 'book', args: [ticket, customer], ...(persisted ? { persisted } : {}),
  });
  return reply.replies as Reply[];
}

/** A query from member m to `member`'s copy. */
async function query(
  cluster: GroupCluster, m: GroupClusterMember, member: number, method: string, args: unknown[] = []
): Promise<unknown> {
  return (await cluster.request(m, { cmd: 'query', subgroup: SUBGROUP, member, method, args })).value;
}

/** The holder of `seat` as each member's own copy has it, in member order. */
function holdersAt(cluster: GroupCluster, seat: string): Promise<unknown[]> {
  return Promise.all(cluster.members.map((m) => query(cluster, m, m.id, 'holder', [seat])));
}

/** All `members` replied, and alike. */
function unanimous(replies: Reply[], members: number): boolean {
  return replies.length === members &&
    replies.every((r) => r.value === replies[0]!.value && r.version === replies[0]!.version);
}
