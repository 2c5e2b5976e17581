// The member side of `squall bench calls` (bench/calls.ts): a replicated counter, ordered calls of its
// `inc` kept `inFlight` at a time for a while, each timed from the call to its last member's reply, and a
// multicast ping on a plain channel (one message in flight, send to its delivery here) to set beside it.
// Not public API.

import type { SubgroupChannel } from '../group/subgroup-channel.js';

/** The replicated object the benchmark calls: every member applies every `inc` and answers with the new total. */
export class BenchCounter {
  static readonly queries = ['get'] as const;
  value = 0;

  /** Ordered: adds `by`; returns the total. */
  inc(by: number): number {
    this.value += by;
    return this.value;
  }

  /** A query: the total. */
  get(): number {
    return this.value;
  }

  snapshot(): Uint8Array {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, this.value, true);
    return bytes;
  }

  static restore(bytes: Uint8Array): BenchCounter {
    const counter = new BenchCounter();
    counter.value = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(0, true);
    return counter;
  }
}

/** What a run of calls needs of the replicated object. */
export interface CallTarget {
  call(method: string, args: unknown[]): Promise<Array<{ member: number; value: unknown; version: bigint }>>;
}

export interface CallLoadOptions {
  inFlight: number;
  /** Calls made before timing starts (JIT, caches, the window's first turn). */
  warmupMs: number;
  seconds: number;
  /** Replies each call must have (the shard's members); 0: at least one (members may leave meanwhile). */
  replies: number;
  /** Return each resolved call's total (the counter after its inc, the same in every reply). */
  values?: boolean;
}

export interface CallLoadResult {
  /** Calls made in all, warm-up included: each added 1 to the counter. */
  made: number;
  /** Calls that began and settled inside the timed window. */
  timed: number;
  /** The timed window's length in ms (from its start to the last timed call's end). */
  elapsedMs: number;
  /** CPU time of this whole process (every thread: main, worker, poller), user and system, over the timed window. */
  cpuUs: number;
  /** Per timed call, µs from the call to its last reply. */
  latencyUs: Float64Array;
  /** Calls that rejected, or resolved short of replies or with replies that disagree. */
  failed: number;
  firstError: string | null;
  /** With `values`: every resolved call's total, in the order they resolved. */
  values: number[] | null;
}

/**
 * The process's CPU time (every thread, user and system) from `fromMs` (performance.now()) until stop() is
 * called: a figure the other processes on a shared machine disturb far less than a rate.
 */
export function cpuMeter(fromMs: number): { stop(): number } {
  let start: NodeJS.CpuUsage | null = null;
  const timer = setTimeout(() => { start = process.cpuUsage(); }, Math.max(0, fromMs - performance.now()));
  return {
    stop: () => {
      clearTimeout(timer);
      const used = process.cpuUsage(start ?? undefined);
      return start ? used.user + used.system : 0;
    },
  };
}

/** Live counts for the parent's progress line. */
export const callProgress = { made: 0, timed: 0 };

/**
 * `inFlight` loops, each calling `inc(1)` again as soon as its last call settled, for warmupMs + seconds.
 * Latency is taken with performance.now(): one process, so its clock is enough.
 */
export async function runCallLoad(target: CallTarget, o: CallLoadOptions): Promise<CallLoadResult> {
  const start = performance.now();
  const timedFrom = start + o.warmupMs;
  const end = timedFrom + o.seconds * 1000;
  let latency = new Float64Array(1 << 16);
  let timed = 0, made = 0, failed = 0, lastEnd = timedFrom;
  let firstError: string | null = null;
  const values: number[] | null = o.values ? [] : null;
  callProgress.made = 0;
  callProgress.timed = 0;
  const cpu = cpuMeter(timedFrom);
  const loop = async (): Promise<void> => {
    for (let t0 = performance.now(); t0 < end; t0 = performance.now()) {
      made++;
      callProgress.made = made;
      try {
        const replies = await target.call('inc', [1]);
        const wrong = checkReplies(replies, o.replies);
        if (wrong) {
          failed++;
          firstError ??= wrong;
        }
        values?.push(replies[0]!.value as number);
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
        continue;
      }
      const t1 = performance.now();
      if (t0 < timedFrom || t1 > end) continue;
      if (timed === latency.length) {
        const grown = new Float64Array(latency.length * 2);
        grown.set(latency);
        latency = grown;
      }
      latency[timed++] = (t1 - t0) * 1000;
      callProgress.timed = timed;
      lastEnd = t1;
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, loop));
  const cpuUs = cpu.stop();
  const latencyUs = latency.slice(0, timed);
  return { made, timed, elapsedMs: lastEnd - timedFrom, cpuUs, latencyUs, failed, firstError, values };
}

/** Why a call's replies are wrong — too few, or members that disagree on its total or version — or null. */
function checkReplies(replies: Awaited<ReturnType<CallTarget['call']>>, expected: number): string | null {
  if (replies.length === 0 || (expected > 0 && replies.length !== expected)) {
    return `a call resolved with ${replies.length} replies, expected ${expected || 'at least 1'}`;
  }
  const first = replies[0]!;
  for (const r of replies) {
    if (r.value !== first.value || r.version !== first.version) {
      return `members ${first.member} and ${r.member} answered one call differently: ` +
        `${String(first.value)}@${first.version} and ${String(r.value)}@${r.version}`;
    }
  }
  return null;
}

/** Pings before timing starts. */
const PING_WARMUP_MS = 300;

/**
 * The multicast under the calls, alone: this member keeps `inFlight` messages of `bytes` bytes in flight on
 * `channel`, each timed from send() to its delivery here (ordered: once every member holds it), for
 * `seconds`. Every member does so at once, as every member calls at once.
 */
export async function runPing(
  channel: SubgroupChannel, o: { seconds: number; bytes: number; inFlight: number }
): Promise<{ latencyUs: Float64Array; timed: number; elapsedMs: number; cpuUs: number }> {
  const self = channel.memberId;
  const samples: number[] = [];
  // A sender's messages are delivered in the order it sent them: the oldest waiter is the one delivered.
  const waiters: Array<() => void> = [];
  channel.onDeliver((sender) => { if (sender === self) waiters.shift()?.(); });
  const bytes = new Uint8Array(Math.max(8, o.bytes));
  const timedFrom = performance.now() + PING_WARMUP_MS;
  const end = timedFrom + o.seconds * 1000;
  let lastEnd = timedFrom;
  const cpu = cpuMeter(timedFrom);
  const loop = async (): Promise<void> => {
    for (let t0 = performance.now(); t0 < end; t0 = performance.now()) {
      const delivered = new Promise<void>((resolve) => { waiters.push(resolve); });
      await channel.send(bytes);
      await delivered;
      const t1 = performance.now();
      if (t0 < timedFrom || t1 > end) continue;
      samples.push((t1 - t0) * 1000);
      lastEnd = t1;
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, loop));
  const cpuUs = cpu.stop();
  return { latencyUs: Float64Array.from(samples), timed: samples.length, elapsedMs: lastEnd - timedFrom, cpuUs };
}
