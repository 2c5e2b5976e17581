// `squall bench persist`: what the disk under the persistent log (ts/persist/) can do, and what the log makes of
// it. Three measurements in a fresh directory on that disk, each for `seconds`:
//   fdatasync4KiB   append 4 KiB to a file and fdatasync it, one after the other: the latency of one durable
//                   write, the floor of any persistence latency on this disk (p50/p99, µs)
//   append256KiB    append 256 KiB and fdatasync, one after the other: the disk's durable streaming rate (MB/s)
//   log1KiB         PersistentLog with 1 KiB records appended as fast as the log takes them (at most `window`
//                   appended and not yet durable): records/s and MB/s made durable by group commit, and each
//                   record's latency from append() to the onDurable that covers it (p50/p99, µs)
//   log1KiBOneAtATime  the same log, one record appended at a time, the next after the previous is durable
//   reopen          opening the log1KiB log again: recovery reads every segment and checks every record's CRC
// All file calls go through fs/promises, as the log's do (libuv's thread pool).

import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersistentLog } from '../ts/persist/log.js';
import { round, summarize, type Summary } from './stats.js';
import { progressWhile, timedPhase } from '../ts/cli/progress.js';
import { formatSeconds } from '../ts/cli/units.js';

export interface PersistDiskBenchOptions {
  /** A directory on the disk to measure (default the system's temporary directory). */
  dir?: string;
  /** Seconds per measurement (default 2). */
  seconds?: number;
  /** Records appended and not yet durable, at most, in the log1KiB run (default 1024). */
  window?: number;
  onProgress?: (message: string) => void;
}

export interface PersistDiskBenchResult {
  dir: string;
  seconds: number;
  fdatasync4KiB: { latencyUs: Summary };
  append256KiB: { mbytesPerSec: number; writes: number };
  log1KiB: {
    recordsPerSec: number; mbytesPerSec: number; durableLatencyUs: Summary; groupCommits: number;
    recordsPerCommit: number; window: number; /** main-thread time per append() call, mean */ appendUs: number;
  };
  log1KiBOneAtATime: { recordsPerSec: number; durableLatencyUs: Summary };
  reopen: { records: number; mbytes: number; ms: number; mbytesPerSec: number };
}

export async function runPersistDiskBench(options: PersistDiskBenchOptions = {}): Promise<PersistDiskBenchResult> {
  const seconds = options.seconds ?? 2;
  const window = options.window ?? 1024;
  const progress = options.onProgress ?? (() => undefined);
  const base = await mkdtemp(join(options.dir ?? tmpdir(), 'squall-bench-persist-'));
  try {
    const timed = <T>(what: string, work: () => Promise<T>): Promise<T> =>
      progressWhile(progress, timedPhase(`${what}, ${formatSeconds(seconds)}`, what, seconds), work);
    const small = await timed(`fdatasync of 4 KiB appends in ${base}`,
      () => syncedAppends(join(base, 'small'), 4096, seconds));
    const large = await timed('256 KiB appends + fdatasync',
      () => syncedAppends(join(base, 'large'), 256 << 10, seconds));
    const log = await timed('the log: 1 KiB records, group commit',
      () => logThroughput(join(base, 'log'), 1024, seconds, window));
    const reopen = await progressWhile(progress, 'reopening the log (recovery scans it)',
      () => timeReopen(join(base, 'log'), log.bytes));
    const single = await timed('the log: 1 KiB records one at a time',
      () => logThroughput(join(base, 'log-single'), 1024, seconds, 1));
    return {
      dir: base, seconds,
      fdatasync4KiB: { latencyUs: summarize(small.latenciesMs, 1000, 1) },
      append256KiB: { mbytesPerSec: round(large.bytes / 1e6 / large.seconds, 1), writes: large.latenciesMs.length },
      log1KiB: {
        recordsPerSec: Math.round(log.records / log.seconds), mbytesPerSec: round(log.bytes / 1e6 / log.seconds, 1),
        durableLatencyUs: summarize(log.latenciesMs, 1000, 0), groupCommits: log.commits,
        recordsPerCommit: round(log.records / Math.max(1, log.commits), 1), window,
        appendUs: round(log.appendMs * 1000 / log.records, 2),
      },
      log1KiBOneAtATime: {
        recordsPerSec: Math.round(single.records / single.seconds),
        durableLatencyUs: summarize(single.latenciesMs, 1000, 1),
      },
      reopen,
    };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

const BENCH_ID = { group: 'bench', memberId: 0, subgroup: 'bench', shard: 0 };

/** Opens the log at `dir` again (its files are in the page cache: this times the scan and the checks). */
async function timeReopen(dir: string, bytes: number): Promise<PersistDiskBenchResult['reopen']> {
  const t0 = performance.now();
  const log = await PersistentLog.open(dir, BENCH_ID);
  const ms = performance.now() - t0;
  const records = Number(log.appendedVersion) + 1;
  await log.close();
  return { records, mbytes: round(bytes / 1e6, 1), ms: round(ms, 1), mbytesPerSec: round(bytes / 1e3 / ms, 1) };
}

/** Appends `bytes` and fdatasyncs, again and again for `seconds`. */
export async function syncedAppends(path: string, bytes: number, seconds: number):
  Promise<{ latenciesMs: number[]; bytes: number; seconds: number }> {
  const data = Buffer.alloc(bytes, 0x5a);
  const handle = await open(path, 'w');
  const latenciesMs: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  try {
    let position = 0;
    while (performance.now() < until) {
      const t0 = performance.now();
      await handle.write(data, 0, bytes, position);
      await handle.datasync();
      latenciesMs.push(performance.now() - t0);
      position += bytes;
    }
  } finally {
    await handle.close();
  }
  return { latenciesMs, bytes: latenciesMs.length * bytes, seconds: (performance.now() - started) / 1000 };
}

/** Appends records of `bytes` to a PersistentLog for `seconds`, at most `window` not yet durable. */
async function logThroughput(dir: string, bytes: number, seconds: number, window: number):
  Promise<{ records: number; bytes: number; seconds: number; latenciesMs: number[]; commits: number;
    appendMs: number }> {
  const log = await PersistentLog.open(dir, BENCH_ID);
  const payload = new Uint8Array(bytes).fill(0x33);
  const appendedAt = new Float64Array(window);
  const latenciesMs: number[] = [];
  let durable = -1;
  let commits = 0;
  let wake: (() => void) | null = null;
  log.onDurable((version) => {
    const now = performance.now();
    for (let v = durable + 1; v <= Number(version); v++) latenciesMs.push(now - appendedAt[v % window]!);
    durable = Number(version);
    commits++;
    wake?.();
  });
  const started = performance.now();
  const until = started + seconds * 1000;
  let next = 0;
  let appendMs = 0;
  while (performance.now() < until) {
    while (next - durable - 1 < window) {
      const t0 = performance.now();
      appendedAt[next % window] = t0;
      log.append({ version: BigInt(next), hlc: 0n, sender: 0, payload });
      appendMs += performance.now() - t0;
      next++;
      if ((next & 255) === 0) break; // let the event loop run: the commit's completion needs it
    }
    await new Promise<void>((resolve) => {
      if (next - durable - 1 < window) setImmediate(resolve);
      else wake = resolve;
    });
    wake = null;
  }
  await log.flush();
  const elapsed = (performance.now() - started) / 1000;
  await log.close();
  return { records: next, bytes: next * bytes, seconds: elapsed, latenciesMs, commits, appendMs };
}
