// `squall bench viewchange`: how long a view change takes (issue 5). A group of `members` processes on this
// host carries ordered load from every member; the last member is SIGKILLed; then
//
//   detectMs   from the SIGKILL to the moment the last survivor suspects the dead member
//   commitMs   from the SIGKILL to the moment the leader (member 0) commits the change
//   installMs  from detection to the moment the last survivor has installed the next view
//
// With `blockMainMs`, member 1's main thread is held that long by a long task from 200 ms before the kill:
// with the main engine the change cannot commit until it returns (its acknowledgement is its main thread's);
// with the worker engine its predicate worker acknowledges (docs/benchmarks.md, "The view-change protocol in
// the predicate worker").
//
// Both on one monotonic clock (process.hrtime is CLOCK_MONOTONIC for every process on the host), as medians
// over `runs` fresh clusters. Each run also checks that the survivors delivered the same sequence (running
// hashes agree once the load has drained).

import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { shardEngineFromEnv } from '../ts/group/join-options.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { GroupHarnessEvent } from '../ts/harness/group-process.js';
import { median, round } from './stats.js';
import { progressWhile } from '../ts/cli/progress.js';
import { formatSeconds } from '../ts/cli/units.js';

export interface ViewChangeBenchOptions {
  members: number;
  runs: number;
  /** Messages per second each member sends during the run. */
  ratePerSec: number;
  suspicionTimeoutMs: number;
  fabric?: FabricChoice;
  /** Which thread steps the shards and the view-change protocol (the member processes' SQUALL_SHARD_ENGINE). */
  engine?: 'main' | 'worker';
  /** Member 1's main thread is blocked this long from 200 ms before the kill (0: not). */
  blockMainMs?: number;
  onProgress?: (message: string) => void;
}

/**
 * One run. `phases`: at the slowest survivor, ms from applying the commit to: its next engine built,
 * the others' ports known, connected, the start barrier passed (Group.status().lastInstall).
 */
export interface ViewChangeRun {
  detectMs: number; commitMs: number; installMs: number; hashesAgree: boolean; phases: Record<string, number>
}

export interface ViewChangeBenchResult {
  members: number;
  fabric: string;
  /** Medians over the runs. */
  detectMs: number;
  commitMs: number;
  installMs: number;
  runs: ViewChangeRun[];
  engine: 'main' | 'worker';
  blockMainMs: number;
  suspicionTimeoutMs: number;
  ratePerSec: number;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runViewChangeBench(o: ViewChangeBenchOptions): Promise<ViewChangeBenchResult> {
  const progress = o.onProgress ?? (() => {});
  const runs: ViewChangeRun[] = [];
  for (let i = 0; i < o.runs; i++) {
    const step = (m: string) => progress(`[${i + 1}/${o.runs}] ${m}`);
    const run = await oneRun(o, step);
    step(`detect ${formatSeconds(run.detectMs / 1000)}, commit ${formatSeconds(run.commitMs / 1000)}, ` +
      `install ${formatSeconds(run.installMs / 1000)}` +
      (run.hashesAgree ? '' : ' (hashes DISAGREE)'));
    runs.push(run);
  }
  return {
    members: o.members, fabric: fabricLabel(resolveFabricChoice(o.fabric)),
    detectMs: round(median(runs.map((r) => r.detectMs))), commitMs: round(median(runs.map((r) => r.commitMs))),
    installMs: round(median(runs.map((r) => r.installMs))),
    runs: runs.map((r) => ({
      ...r, detectMs: round(r.detectMs), commitMs: round(r.commitMs), installMs: round(r.installMs),
    })),
    engine: o.engine ?? shardEngineFromEnv(),
    blockMainMs: o.blockMainMs ?? 0,
    suspicionTimeoutMs: o.suspicionTimeoutMs, ratePerSec: o.ratePerSec,
  };
}

async function oneRun(o: ViewChangeBenchOptions, progress: (message: string) => void): Promise<ViewChangeRun> {
  const subgroups = {
    log: { shards: 1, members: { min: 1, max: o.members }, maxSmcPayload: 1024, maxMessageBytes: 1024 },
  };
  const cluster = await progressWhile(progress, `starting ${o.members} group members`, () => GroupCluster.start({
    members: o.members, subgroups, suspicionTimeoutMs: o.suspicionTimeoutMs, fabric: resolveFabricChoice(o.fabric),
  }));
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log' });
    const count = Math.ceil(o.ratePerSec * 1.5);
    const sends = cluster.members.map((m) => cluster.request(m, {
      cmd: 'send', subgroup: 'log', count, sizes: [256], ratePerSec: o.ratePerSec,
    }).catch(() => null));
    progress(`every member sends ${o.ratePerSec} msgs/s; SIGKILL of member ${o.members - 1} in ${formatSeconds(0.5)}`);
    const blockMs = o.blockMainMs ?? 0;
    await sleep(blockMs > 0 ? 300 : 500);
    const blocked = blockMs > 0 ? cluster.request(cluster.members[1]!, { cmd: 'busy', ms: blockMs }) : null;
    if (blocked) await sleep(200);
    const victim = cluster.members[o.members - 1]!;
    const survivors = cluster.members.slice(0, -1);
    const killedAt = nowMs();
    victim.process.kill('SIGKILL');
    const waitMs = 30_000 + blockMs;
    const [failed, committed, views] = await progressWhile(progress,
      `SIGKILL of member ${victim.id}: waiting for every survivor to suspect it and install the next view`,
      () => Promise.all([
        Promise.all(survivors.map((m) =>
          cluster.waitForEvent(m, (e) => e.type === 'memberFailed' && e.member === victim.id, waitMs))),
        cluster.waitForEvent(survivors[0]!, (e) => e.type === 'committed', waitMs),
        Promise.all(survivors.map((m) => cluster.waitForEvent(m, (e) => e.type === 'view', waitMs))),
      ]));
    await blocked;
    const detected = Math.max(...failed.map((e) => (e as GroupHarnessEvent & { atMs: number }).atMs));
    const installed = Math.max(...views.map((e) => (e as GroupHarnessEvent & { atMs: number }).atMs));
    const statuses = await cluster.all({ cmd: 'membership' }, survivors);
    const phases: Record<string, number> = {};
    for (const st of statuses) {
      const lastInstall = (st.status as { lastInstall: Record<string, number> | null }).lastInstall;
      for (const [k, v] of Object.entries(lastInstall ?? {})) phases[k] = Math.max(phases[k] ?? 0, v);
    }
    const hashesAgree = await progressWhile(progress, 'the load ends; comparing what the survivors delivered',
      async () => {
        await Promise.all(sends);
        for (let tries = 0; tries < 100; tries++) {
          const reports = await cluster.all({ cmd: 'report', subgroup: 'log' }, survivors);
          if (reports.every((r) => r.hash === reports[0]!.hash && r.delivered === reports[0]!.delivered)) return true;
          await sleep(100);
        }
        return false;
      });
    return {
      detectMs: detected - killedAt, commitMs: (committed as { atMs: number }).atMs - killedAt,
      installMs: installed - detected, hashesAgree, phases,
    };
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
}
