// `squall bench restart`: how long a persistent group takes to come back (issue 16). Three member processes
// on loopback replicate a KeyValueStore in one persistent shard (a data directory each, in a temporary
// directory removed at the end), filled with `stateBytes` by ordered puts of 1 MiB values, the last one a
// persisted call (so every log holds everything). Then
//
//   totalRestartMs  every member SIGKILLed at once and all started again with their directories (no contact):
//                   from the last process forked to the group serving again — an ordered put answered by all
//                   three. Each member rebuilds its store from its own log before the first view goes on.
//   catchUpMs       one member SIGKILLed, `updates` ordered puts of `updateBytes` made by the two others, the
//                   member started again with its directory (through a contact address): from its process
//                   forked to its store's version equal to the others'. `records`/`bytes` are what it missed
//                   (the puts, their values' bytes); `by` says what the state transfer sent it: the log's
//                   records after its own (a catch-up from the log) or the source's snapshot.
//
// as medians over `runs` fresh groups. Snapshots are set far apart (SNAPSHOT_EVERY): the logs keep every
// record, so the restart replays the whole log and the catch-up can come from it. Each run checks that the
// three stores agree after each step.

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import { PersistentLog } from '../ts/persist/log.js';
import { median, round } from './stats.js';
import { longPhase, progressWhile } from '../ts/cli/progress.js';
import { formatBytes, formatCount, formatSeconds } from '../ts/cli/units.js';

export interface RestartBenchOptions {
  stateBytes: number;
  /** Ordered puts made while one member is down (default 10,000). */
  updates?: number;
  /** Bytes of each of those puts' values (default 100). */
  updateBytes?: number;
  runs?: number;
  /** Where the data directories go (default the system's temporary directory). */
  dir?: string;
  fabric?: FabricChoice;
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface RestartRun {
  totalRestartMs: number;
  /** From the last process forked to every member's Group.join resolved (logs read back, first view up). */
  rejoinedMs: number;
  /** The longest Group.join call in a restarted member (its log read back, its store rebuilt, the view up). */
  restartJoinMs: number;
  catchUpMs: number;
  /** Group.join in the member that came back, called to resolved (its store rebuilt, then caught up). */
  catchUpJoinMs: number;
  by: 'records' | 'snapshot';
  storesAgree: boolean;
}

export interface RestartBenchResult {
  members: number;
  fabric: string;
  stateBytes: number;
  /** Medians over the runs. */
  totalRestartMs: number;
  catchUpMs: number;
  catchUp: { records: number; bytes: number };
  runs: RestartRun[];
}

const MEMBERS = 3;
const SUBGROUP = 'kv';
const MiB = 1 << 20;
const SUSPICION_TIMEOUT_MS = 1000;
/** Far apart: no snapshot trims the logs during a run. */
const SNAPSHOT_EVERY = 100_000_000;
const SNAPSHOT_EVERY_BYTES = 2 ** 50;

export async function runRestartBench(o: RestartBenchOptions): Promise<RestartBenchResult> {
  const progress = o.onProgress ?? (() => {});
  const runs: RestartRun[] = [];
  const total = o.runs ?? 1;
  const updates = o.updates ?? 10_000, updateBytes = o.updateBytes ?? 100;
  for (let i = 0; i < total; i++) {
    const run = await oneRun(o, updates, updateBytes, (m) => progress(`[${i + 1}/${total}] ${m}`));
    runs.push(run);
  }
  return {
    members: MEMBERS, fabric: fabricLabel(resolveFabricChoice(o.fabric)), stateBytes: o.stateBytes,
    totalRestartMs: round(median(runs.map((r) => r.totalRestartMs))),
    catchUpMs: round(median(runs.map((r) => r.catchUpMs))),
    catchUp: { records: updates, bytes: updates * updateBytes },
    runs,
  };
}

async function oneRun(
  o: RestartBenchOptions, updates: number, updateBytes: number, progress: (m: string) => void
): Promise<RestartRun> {
  const root = await mkdtemp(join(o.dir ?? tmpdir(), 'squall-bench-restart-'));
  const dataDirs = Array.from({ length: MEMBERS }, (_, id) => join(root, `member-${id}`));
  let cluster: GroupCluster | null = null;
  try {
    cluster = await progressWhile(progress, `starting ${MEMBERS} persistent group members`, () => GroupCluster.start({
      members: MEMBERS, types: { [SUBGROUP]: 'KeyValueStore' }, dataDirs, fabric: resolveFabricChoice(o.fabric),
      suspicionTimeoutMs: o.suspicionTimeoutMs ?? SUSPICION_TIMEOUT_MS,
      subgroups: {
        [SUBGROUP]: {
          shards: 1, members: { min: 2, max: MEMBERS }, persistent: true, snapshotEvery: SNAPSHOT_EVERY,
          snapshotEveryBytes: SNAPSHOT_EVERY_BYTES,
        },
      },
    }));
    const c = cluster;
    const value = Math.min(MiB, Math.max(1, o.stateBytes));
    const count = Math.ceil(o.stateBytes / value);
    if (o.stateBytes > 0) {
      await progressWhile(progress,
        `filling the store with ${formatBytes(o.stateBytes)} (${formatCount(count)} ordered puts), persistent`,
        c.request(c.members[0]!, { cmd: 'fill', subgroup: SUBGROUP, method: 'put', count, bytes: value }));
    }
    await put(c, c.members[0]!, 'synced', true);
    const ids = c.members.map((m) => m.id);
    await kill(c.members.filter((m) => !m.exited));
    const { started, joined } = c.relaunch(ids);
    const restartJoinMs = await progressWhile(progress, longPhase(
      `SIGKILL of members ${ids.join(', ')} at once; all started again with their data directories`, 'restarting'),
      async () => Math.max(...(await joined).map((r) => r.joinMs as number)));
    const rejoinedMs = performance.now() - started;
    await put(c, c.live(0), 'after-restart');
    const totalRestartMs = performance.now() - started;
    const ms = (t: number) => formatSeconds(t / 1000);
    progress(`serving again ${ms(totalRestartMs)} after the last member started ` +
      `(every Group.join resolved after ${ms(rejoinedMs)}; the longest took ${ms(restartJoinMs)})`);
    const agreeAfterRestart = await storesAgree(c, ids);
    await progressWhile(progress, longPhase(
      `SIGKILL of member 2; ${formatCount(updates)} ordered puts of ${formatBytes(updateBytes)} while it is down`,
      'updates while member 2 is down'),
      async () => {
        await kill([c.live(2)]);
        await Promise.all([0, 1].map((id) => c.waitForEvent(c.live(id),
          (e) => e.type === 'view' && !e.members.includes(2), 30_000)));
        await c.request(c.live(1), {
          cmd: 'fill', subgroup: SUBGROUP, method: 'put', count: updates, bytes: updateBytes, inFlight: 64,
        });
      });
    const t0 = performance.now();
    const [back] = await progressWhile(progress,
      longPhase('member 2 starts again with its data directory and catches up', 'catching up'),
      async () => {
        const added = await c.add([2]);
        await caughtUp(c, ids);
        return added;
      });
    const catchUpMs = performance.now() - t0;
    const agree = agreeAfterRestart && await storesAgree(c, ids);
    progress('stopping the members');
    await c.close();
    cluster = null;
    const by = await transferredBy(dataDirs[2]!);
    progress(`caught up in ${formatSeconds(catchUpMs / 1000)} (by ${by})${agree ? '' : ' (STORES DISAGREE)'}`);
    return {
      totalRestartMs: round(totalRestartMs), rejoinedMs: round(rejoinedMs), restartJoinMs: round(restartJoinMs),
      catchUpMs: round(catchUpMs), catchUpJoinMs: round(back!.joinMs as number), by, storesAgree: agree,
    };
  } finally {
    if (cluster) await cluster.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** An ordered put from m, answered by every member (`persisted`: durable in every log when it returns). */
async function put(c: GroupCluster, m: GroupClusterMember, key: string, persisted = false): Promise<void> {
  const reply = await c.request(m, {
    cmd: 'call', subgroup: SUBGROUP, method: 'put', args: [key, new Uint8Array([1])],
    ...(persisted ? { persisted } : {}),
  });
  const replies = reply.replies as unknown[];
  if (replies.length !== MEMBERS) throw new Error(`a put was answered by ${replies.length} members, not ${MEMBERS}`);
}

async function kill(members: readonly GroupClusterMember[]): Promise<void> {
  const exited = members.map((m) => once(m.process, 'exit'));
  for (const m of members) m.process.kill('SIGKILL');
  await Promise.all(exited);
}

/** Resolves once every member's store stands at the same version (nothing is being written meanwhile). */
async function caughtUp(c: GroupCluster, ids: readonly number[]): Promise<void> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const versions = await Promise.all(ids.map(async (id) =>
      (await c.request(c.live(id), { cmd: 'version', subgroup: SUBGROUP })).version as bigint));
    if (versions.every((v) => v === versions[0])) return;
    if (performance.now() > deadline) throw new Error(`the members' versions never met: ${versions.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function storesAgree(c: GroupCluster, ids: readonly number[]): Promise<boolean> {
  const summaries = await Promise.all(ids.map(async (id) => JSON.stringify((await c.request(c.live(id), {
    cmd: 'query', subgroup: SUBGROUP, member: id, method: 'summary', args: [],
  })).value)));
  return summaries.every((s) => s === summaries[0]);
}

/**
 * What the catch-up sent member 2: a log restarted from a transferred snapshot holds that snapshot (none is
 * made otherwise here); one that received the records holds them and no snapshot.
 */
async function transferredBy(dataDir: string): Promise<'records' | 'snapshot'> {
  const identity = { group: 'squall', memberId: 2, subgroup: SUBGROUP, shard: 0 };
  const log = await PersistentLog.open(join(dataDir, `${SUBGROUP}.0`), identity);
  try {
    return (await log.latestSnapshot()) === null ? 'records' : 'snapshot';
  } finally {
    await log.close();
  }
}
