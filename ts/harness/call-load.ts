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
export interface CallTarget { call(method: string, args: unknown[]): Promise<Array<{ value: unknown }>> }

export interface CallLoadOptions {
  inFlight: number;
  /** Calls made before timing starts (JIT, caches, the window's first turn). */
  warmupMs: number;
  seconds: number;
  /** Replies each call must have (the shard's members). */
  replies: number;
}

export interface CallLoadResult {
  /** Calls made in all, warm-up included: each added 1 to the counter. */
  made: number;
  /** Calls that began and settled inside the timed window. */
  timed: number;
  /** The timed window's length in ms (from its start to the last timed call's end). */
  elapsedMs: number;
  /** Per timed call, µs from the call to its last reply. */
  latencyUs: Float64Array;
  /** Calls that rejected, or resolved without every member's reply. */
  failed: number;
  firstError: string | null;
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
  callProgress.made = 0;
  callProgress.timed = 0;
  const loop = async (): Promise<void> => {
    for (let t0 = performance.now(); t0 < end; t0 = performance.now()) {
      made++;
      callProgress.made = made;
      try {
        const replies = await target.call('inc', [1]);
        if (replies.length !== o.replies) {
          failed++;
          firstError ??= `a call resolved with ${replies.length} replies, expected ${o.replies}`;
        }
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
  return { made, timed, elapsedMs: lastEnd - timedFrom, latencyUs: latency.slice(0, timed), failed, firstError };
}

/** Pings before timing starts. */
const PING_WARMUP_MS = 300;

/**
 * The multicast under the calls, alone: this member sends one `bytes`-byte message at a time on `channel`
 * and times it from send() to its own delivery here (ordered: once every member holds it), for `seconds`.
 * Every member pings at once, as every member calls at once.
 */
export async function runPing(
  channel: SubgroupChannel, o: { seconds: number; bytes: number }
): Promise<{ latencyUs: Float64Array }> {
  const self = channel.memberId;
  const samples: number[] = [];
  let waiting: (() => void) | null = null;
  channel.onDeliver((sender) => {
    if (sender === self && waiting) {
      const done = waiting;
      waiting = null;
      done();
    }
  });
  const bytes = new Uint8Array(Math.max(8, o.bytes));
  const timedFrom = performance.now() + PING_WARMUP_MS;
  const end = timedFrom + o.seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    const delivered = new Promise<void>((resolve) => { waiting = resolve; });
    await channel.send(bytes);
    await delivered;
    if (t0 >= timedFrom) samples.push((performance.now() - t0) * 1000);
  }
  return { latencyUs: Float64Array.from(samples) };
}
