// `squall bench calls`: ordered calls of a replicated object, the path applications use (issue 15), with
// members that are separate processes on this host.
//
// Every member holds a replicated counter (ts/harness/call-load.ts, BenchCounter) and keeps `inFlight`
// calls of `ordered.inc(1)` going for `seconds` after a short warm-up: each call is a multicast command
// that every member applies and answers point-to-point, and it resolves once every member answered. A
// member's rate is its calls settled in the timed window per second; perNode is the median member's.
// Latency is each call's time from the call to its last reply, over every member's calls.
//
// Beside it, in the same group (unless skipped): the multicast alone, on a second subgroup of the same
// members with the same window — every member keeps `inFlight` messages of a command's size in flight and
// times each to its own delivery (an ordered message is delivered once every member holds it). That is
// what the calls ride on: the part of a call's latency (and the bound on its rate) the ordering takes;
// the rest is the replies' way back and the object layer.
//
// CPU per call: each member process's CPU time over the timed window (every thread, user and system) over
// the calls it settled, the median member's — beside the multicast alone's CPU per message it delivered to
// itself. On a machine shared with other work this moves far less than the rates do.
//
// At the end every member's counter must hold the number of calls made by all of them (countersAgree).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, TimeoutError } from '../ts/errors.js';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { SubgroupConfig } from '../ts/membership/plans.js';
import { disturbances, measureIn } from './multicast.js';
import { median, round, summarize, type Summary } from './stats.js';
import { progressWhile, timedPhase } from '../ts/cli/progress.js';
import { formatBytes, formatCount, formatSeconds } from '../ts/cli/units.js';

export interface CallsBenchOptions {
  /** Member processes, all in the one shard. */
  members: number;
  /** Calls each member keeps in flight. */
  inFlight: number;
  /** Seconds timed (after the warm-up). */
  seconds: number;
  /** Slots per sender of the counter's subgroup (default WINDOW). */
  window?: number;
  /** Skip the multicast-alone measurement. */
  skipPing?: boolean;
  /**
   * The counter's subgroup is persistent (a data directory per member in a temporary directory, removed at
   * the end) and the calls are `persisted.inc(1)`: each resolves once durable at every member.
   */
  persisted?: boolean;
  fabric?: FabricChoice;
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface CallsBenchResult {
  members: number;
  /** The calls were persisted calls (resolved once durable at every member's log). */
  persisted: boolean;
  fabric: string;
  inFlight: number;
  seconds: number;
  window: number;
  /**
   * The median member's calls per second (each with every member's reply), and its process's CPU time per
   * call settled (µs, every thread).
   */
  perNode: { callsPerSec: number; cpuUsPerCall: number };
  /** From the call to its last reply, over every member's timed calls. */
  latencyUs: Summary;
  perMember: Array<{ id: number; callsPerSec: number; calls: number; p50Us: number; cpuUsPerCall: number }>;
  /**
   * The multicast alone in the same group: `inFlight` messages in flight per member, each from send to its
   * delivery at the sender (every member holds it then), every member at once. Null when skipped.
   */
  multicast: { perNode: { msgsPerSec: number; cpuUsPerMsg: number }; latencyUs: Summary } | null;
  /** Calls that failed or came back short of replies (0 in a healthy run). */
  failed: number;
  /** Every member's counter equals the calls made by all members. */
  countersAgree: boolean;
  suspicions: number;
  viewChanges: number;
}

const COUNTER = 'counter';
const PING = 'ping';
/** Slots per sender: the multicast benchmark's default, so the window is not what limits the calls. */
const WINDOW = 256;
/** A call of inc(1) encodes to about a dozen bytes; the slot payload leaves room to spare. */
const SLOT_BYTES = 256;
const WARMUP_MS = 500;
/** Seconds of the multicast alone (at most --seconds). */
const PING_SECONDS = 3;
/** Bytes of each ping: about what a command of inc(1) weighs. */
const PING_BYTES = 16;
/** How long the parent waits beyond the run for the members' results. */
const SLACK_MS = 60_000;

export function callsSubgroups(o: { members: number; window: number; persisted?: boolean }):
  Record<string, SubgroupConfig> {
  const shard = { shards: 1, members: { min: o.members, max: o.members }, senders: 'all' as const };
  return {
    [COUNTER]: {
      ...shard, window: o.window, maxSmcPayload: SLOT_BYTES, maxMessageBytes: SLOT_BYTES,
      ...(o.persisted ? { persistent: true } : {}),
    },
    [PING]: { ...shard, window: o.window, maxSmcPayload: SLOT_BYTES, maxMessageBytes: SLOT_BYTES },
  };
}

export function checkCallsOptions(o: CallsBenchOptions & { window: number }): void {
  if (!Number.isInteger(o.members) || o.members < 1) {
    throw new ConfigError(`--members must be at least 1, got ${o.members}`);
  }
  if (!Number.isInteger(o.inFlight) || o.inFlight < 1 || o.inFlight > 1024) {
    throw new ConfigError(
      `--in-flight must be an integer from 1 to 1024 (calls waiting per member), got ${o.inFlight}`);
  }
  if (!(o.seconds > 0) || o.seconds > 3600) {
    throw new ConfigError(`--seconds must be a number above 0 and at most 3600, got ${o.seconds}`);
  }
  if (!Number.isInteger(o.window) || o.window < 1 || o.window > 65536) {
    throw new ConfigError(`--window must be an integer from 1 to 65536, got ${o.window}`);
  }
}

export async function runCallsBench(options: CallsBenchOptions): Promise<CallsBenchResult> {
  const o = { ...options, window: options.window ?? WINDOW };
  checkCallsOptions(o);
  const progress = o.onProgress ?? (() => {});
  const dir = o.persisted ? mkdtempSync(join(tmpdir(), 'squall-bench-calls-')) : null;
  try {
    const cluster = await progressWhile(progress,
      `starting ${o.members} group members (one shard of a replicated counter, window ${o.window}` +
        `${dir ? `, persistent: logs in ${dir}` : ''})`,
      () => GroupCluster.start({
        members: o.members, subgroups: callsSubgroups(o), types: { [COUNTER]: 'BenchCounter' },
        fabric: resolveFabricChoice(o.fabric),
        ...(o.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs } : {}),
        ...(dir ? { dataDirs: Array.from({ length: o.members }, (_, i) => join(dir, `member-${i}`)) } : {}),
      }));
    return await measureIn(cluster, progress, () => measure(cluster, o));
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(cluster: GroupCluster, o: CallsBenchOptions & { window: number }): Promise<CallsBenchResult> {
  const progress = o.onProgress ?? (() => {});
  const kind = o.persisted ? 'persisted' : 'ordered';
  progress(`calls: every member keeps ${o.inFlight} ${kind} inc(1) call(s) in flight for ` +
    `${formatSeconds(o.seconds)}, after ${formatSeconds(WARMUP_MS / 1000)} of warm-up`);
  const runs = withProgress(cluster, o, cluster.all({
    cmd: 'calls', subgroup: COUNTER, inFlight: o.inFlight, warmupMs: WARMUP_MS, seconds: o.seconds,
    ...(o.persisted ? { persisted: true } : {}),
  }));
  const results = await withDeadline(runs, WARMUP_MS + o.seconds * 1000 + SLACK_MS, 'the calls');
  const perMember = results.map((r, i) => {
    const latency = r.latencyUs as Float64Array;
    const calls = r.timed as number;
    return {
      id: cluster.members[i]!.id, calls, p50Us: summarize([...latency], 1, 0).p50,
      callsPerSec: Math.round((calls / Math.max(1, r.elapsedMs as number)) * 1000),
      cpuUsPerCall: round((r.cpuUs as number) / Math.max(1, calls), 1),
    };
  });
  const all: number[] = [];
  for (const r of results) for (const v of r.latencyUs as Float64Array) all.push(v);
  const made = results.reduce((sum, r) => sum + (r.made as number), 0);
  const failed = results.reduce((sum, r) => sum + (r.failed as number), 0);
  const firstError = results.map((r) => r.firstError).find((e) => e);
  if (firstError) progress(`calls: ${formatCount(failed)} failed; the first: ${String(firstError)}`);
  const counters = await cluster.all({ cmd: 'counter', subgroup: COUNTER });
  const countersAgree = counters.every((c) => c.value === made);
  const multicast = o.skipPing ? null : await measurePing(cluster, o);
  return {
    members: o.members, persisted: o.persisted ?? false, fabric: fabricLabel(resolveFabricChoice(o.fabric)),
    inFlight: o.inFlight,
    seconds: o.seconds, window: o.window,
    perNode: {
      callsPerSec: median(perMember.map((m) => m.callsPerSec)),
      cpuUsPerCall: median(perMember.map((m) => m.cpuUsPerCall)),
    },
    latencyUs: summarize(all, 1, 0),
    perMember, multicast, failed, countersAgree, ...disturbances(cluster),
  };
}

/** The multicast alone, at the calls' concurrency (see the top of this file). */
async function measurePing(
  cluster: GroupCluster, o: CallsBenchOptions
): Promise<NonNullable<CallsBenchResult['multicast']>> {
  const seconds = Math.min(PING_SECONDS, o.seconds);
  const announce = `multicast alone: every member keeps ${o.inFlight} message(s) of ${formatBytes(PING_BYTES)} ` +
    `in flight for ${formatSeconds(seconds)}`;
  const pings = await progressWhile(o.onProgress ?? (() => {}), timedPhase(announce, 'multicast alone', seconds),
    withDeadline(cluster.all({
      cmd: 'ping', subgroup: PING, seconds, bytes: PING_BYTES, inFlight: o.inFlight,
    }), seconds * 1000 + SLACK_MS, 'the multicast alone'));
  const samples: number[] = [];
  for (const p of pings) for (const v of p.latencyUs as Float64Array) samples.push(v);
  const rates = pings.map((p) => Math.round(((p.timed as number) / Math.max(1, p.elapsedMs as number)) * 1000));
  const cpu = pings.map((p) => round((p.cpuUs as number) / Math.max(1, p.timed as number), 1));
  return { perNode: { msgsPerSec: median(rates), cpuUsPerMsg: median(cpu) }, latencyUs: summarize(samples, 1, 0) };
}

/** Prints each second how many calls the members have settled so far, until `run` is done. */
async function withProgress<T>(cluster: GroupCluster, o: CallsBenchOptions, run: Promise<T>): Promise<T> {
  const progress = o.onProgress;
  if (!progress) return run;
  let last = 0, lastAt = performance.now();
  const timer = setInterval(() => {
    cluster.all({ cmd: 'calls-progress' }).then((counts) => {
      const made = counts.reduce((sum, c) => sum + (c.made as number), 0);
      const now = performance.now();
      const rate = ((made - last) / (now - lastAt)) * 1000 / Math.max(1, counts.length);
      [last, lastAt] = [made, now];
      progress(`calls: ${formatCount(made)} made so far, ${formatCount(rate)}/s per member`);
    }, () => {});
  }, 1000);
  try {
    return await run;
  } finally {
    clearInterval(timer);
  }
}

function withDeadline<T>(run: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(
      `${what} did not finish within ${Math.round(ms / 1000)} s: a member stalled; ` +
      'rerun, and report it if it persists')),
    ms);
  });
  return Promise.race([run, deadline]).finally(() => clearTimeout(timer));
}
