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
// members — every member sends one message at a time and times it to its own delivery (an ordered message
// is delivered once every member holds it). At one call in flight that is the part of a call's latency
// the multicast takes; the rest is the replies' way back and the object layer.
//
// At the end every member's counter must hold the number of calls made by all of them (countersAgree).

import { ConfigError, TimeoutError } from '../ts/errors.js';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { SubgroupConfig } from '../ts/membership/plans.js';
import { disturbances, explainFailure } from './multicast.js';
import { median, round, summarize, type Summary } from './stats.js';

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
  fabric?: FabricChoice;
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface CallsBenchResult {
  members: number;
  fabric: string;
  inFlight: number;
  seconds: number;
  window: number;
  /** The median member's calls per second (each with every member's reply). */
  perNode: { callsPerSec: number };
  /** From the call to its last reply, over every member's timed calls. */
  latencyUs: Summary;
  perMember: Array<{ id: number; callsPerSec: number; calls: number; p50Us: number }>;
  /**
   * The multicast alone in the same group: one message in flight per member, send to delivery at the
   * sender (everyone holds it then), every member at once. Null when skipped.
   */
  multicastLatencyUs: Summary | null;
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
const PING_SECONDS = 2;
/** Bytes of each ping: about what a command of inc(1) weighs. */
const PING_BYTES = 16;
/** How long the parent waits beyond the run for the members' results. */
const SLACK_MS = 60_000;

export function callsSubgroups(o: { members: number; window: number }): Record<string, SubgroupConfig> {
  const shard = { shards: 1, members: { min: o.members, max: o.members }, senders: 'all' as const };
  return {
    [COUNTER]: { ...shard, window: o.window, maxSmcPayload: SLOT_BYTES, maxMessageBytes: SLOT_BYTES },
    [PING]: { ...shard, window: 16, maxSmcPayload: SLOT_BYTES, maxMessageBytes: SLOT_BYTES },
  };
}

export function checkCallsOptions(o: CallsBenchOptions & { window: number }): void {
  if (!Number.isInteger(o.members) || o.members < 1) throw new ConfigError(`--members must be at least 1, got ${o.members}`);
  if (!Number.isInteger(o.inFlight) || o.inFlight < 1 || o.inFlight > 1024) {
    throw new ConfigError(`--in-flight must be an integer from 1 to 1024 (calls waiting per member), got ${o.inFlight}`);
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
  progress(`starting ${o.members} group members (one shard of a replicated counter, window ${o.window})`);
  const cluster = await GroupCluster.start({
    members: o.members, subgroups: callsSubgroups(o), types: { [COUNTER]: 'BenchCounter' },
    fabric: resolveFabricChoice(o.fabric), ...(o.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs } : {}),
  });
  try {
    return await measure(cluster, o);
  } catch (error) {
    throw explainFailure(error);
  } finally {
    await cluster.close();
  }
}

async function measure(cluster: GroupCluster, o: CallsBenchOptions & { window: number }): Promise<CallsBenchResult> {
  const progress = o.onProgress ?? (() => {});
  progress(`calls: every member keeps ${o.inFlight} ordered inc(1) call(s) in flight for ${o.seconds} s`);
  const runs = withProgress(cluster, o, cluster.all({
    cmd: 'calls', subgroup: COUNTER, inFlight: o.inFlight, warmupMs: WARMUP_MS, seconds: o.seconds,
  }));
  const results = await withDeadline(runs, WARMUP_MS + o.seconds * 1000 + SLACK_MS, 'the calls');
  const perMember = results.map((r, i) => {
    const latency = r.latencyUs as Float64Array;
    const calls = r.timed as number;
    return {
      id: cluster.members[i]!.id, calls, p50Us: summarize([...latency], 1, 0).p50,
      callsPerSec: Math.round((calls / Math.max(1, r.elapsedMs as number)) * 1000),
    };
  });
  const all: number[] = [];
  for (const r of results) for (const v of r.latencyUs as Float64Array) all.push(v);
  const made = results.reduce((sum, r) => sum + (r.made as number), 0);
  const failed = results.reduce((sum, r) => sum + (r.failed as number), 0);
  const firstError = results.map((r) => r.firstError).find((e) => e);
  if (firstError) progress(`calls: ${failed} failed; the first: ${String(firstError)}`);
  const counters = await cluster.all({ cmd: 'counter', subgroup: COUNTER });
  const countersAgree = counters.every((c) => c.value === made);
  let multicastLatencyUs: Summary | null = null;
  if (!o.skipPing) {
    progress(`multicast alone: every member sends one ${PING_BYTES}-byte message at a time for ${PING_SECONDS} s`);
    const pings = await cluster.all({ cmd: 'ping', subgroup: PING, seconds: PING_SECONDS, bytes: PING_BYTES });
    const samples: number[] = [];
    for (const p of pings) for (const v of p.latencyUs as Float64Array) samples.push(v);
    multicastLatencyUs = summarize(samples, 1, 0);
  }
  return {
    members: o.members, fabric: fabricLabel(resolveFabricChoice(o.fabric)), inFlight: o.inFlight,
    seconds: o.seconds, window: o.window,
    perNode: { callsPerSec: median(perMember.map((m) => m.callsPerSec)) }, latencyUs: summarize(all, 1, 0),
    perMember, multicastLatencyUs, failed, countersAgree, ...disturbances(cluster),
  };
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
      progress(`calls: ${made.toLocaleString('en-US')} made so far, ${round(rate, 0).toLocaleString('en-US')}/s per member`);
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
      `${what} did not finish within ${Math.round(ms / 1000)} s: a member stalled; rerun, and report it if it persists`)),
    ms);
  });
  return Promise.race([run, deadline]).finally(() => clearTimeout(timer));
}
