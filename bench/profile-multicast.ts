// Where a member's CPU goes during `squall bench multicast`'s flood: runs the throughput measurement with
// every member process under V8's sampling profiler (--cpu-prof, the main thread and each worker thread
// writes one .cpuprofile), then prints the functions with the most self time, per thread kind.
//
//   node dist/bench/profile-multicast.js [--members 3] [--size 1024] [--seconds 5] [--senders all|one]
//                                        [--window W] [--out DIR] [--top 25]
//
// The profiles stay in DIR (default ./squall-results/profile-multicast) for Chrome DevTools or speedscope.
// Not part of the CLI: a tool for whoever works on the engine. The native poller thread is C++ and does not
// appear here (use perf for it).

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkOptions, defaultWindow, measureThroughput, startCluster, type MulticastRun } from './multicast.js';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile {
  nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[]
}

export interface SelfTime { name: string; where: string; ms: number; share: number }

/**
 * Self time per function (name + file:line) of one profile, most first, counting only samples taken
 * within [fromUs, toUs] of the monotonic clock (V8's profile timestamps and process.hrtime share it);
 * idle and GC stay in as V8 names them.
 */
export function selfTimes(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): SelfTime[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, { name: string; where: string; ms: number }>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) return;
    const node = byNode.get(id)!;
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}|${where}`;
    const entry = ms.get(key) ?? { name: f.functionName || '(anonymous)', where, ms: 0 };
    entry.ms += dt;
    total += dt;
    ms.set(key, entry);
  });
  return [...ms.values()].sort((a, b) => b.ms - a.ms).map((e) => ({ ...e, share: total > 0 ? e.ms / total : 0 }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      members: { type: 'string' }, size: { type: 'string' }, seconds: { type: 'string' }, senders: { type: 'string' },
      window: { type: 'string' }, out: { type: 'string' }, top: { type: 'string' },
    },
  });
  const bytes = Number(values.size ?? 1024);
  const o: MulticastRun = {
    members: Number(values.members ?? 3), bytes, seconds: Number(values.seconds ?? 5),
    senders: values.senders === 'one' ? 'one' : 'all', window: Number(values.window ?? defaultWindow(bytes)),
    onProgress: (m) => process.stderr.write(`[profile] ${m}\n`),
  };
  checkOptions(o);
  const top = Number(values.top ?? 25);
  const dir = resolve(values.out ?? 'squall-results/profile-multicast');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  // fork() hands children this process's execArgv unless told otherwise, and GroupCluster forks with the
  // defaults: so the members (and their worker threads) run under the profiler, this process does not.
  process.execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  const cluster = await startCluster(o);
  const pids = new Set(cluster.members.map((m) => m.process.pid));
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  let fromUs = 0, toUs = 0;
  try {
    fromUs = nowUs();
    const r = await measureThroughput(cluster, o);
    toUs = nowUs();
    process.stderr.write(
      `[profile] ${r.perNode.msgsPerSec} deliveries/s per member (median), hashes agree: ${r.hashesAgree}\n`);
    // A profile is written as its process exits: close every member and let it exit on its own.
    await cluster.all({ cmd: 'close' });
    const deadline = Date.now() + 20_000;
    while (cluster.members.some((m) => !m.exited) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    cluster.kill();
  }

  // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is a member's main thread. Members of
  // a start that had to be retried were killed and left none, or a worker's: skip those.
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && pids.has(Number(f.split('.')[3])));
  process.stdout.write(
    `self time during the measurement only (${((toUs - fromUs) / 1e6).toFixed(2)} s), per thread kind, ` +
      `all members together\n`);
  const groups = new Map<string, SelfTime[][]>();
  for (const f of files) {
    const tid = Number(f.split('.')[4]);
    const profile = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const times = selfTimes(profile, fromUs, toUs);
    const kind = tid === 0 ? 'main thread' : workerKind(times);
    groups.set(kind, [...(groups.get(kind) ?? []), times]);
  }
  for (const [kind, profiles] of groups) {
    const merged = new Map<string, SelfTime>();
    let total = 0;
    for (const p of profiles) for (const t of p) {
      const key = `${t.name}|${t.where}`;
      const e = merged.get(key) ?? { ...t, ms: 0, share: 0 };
      e.ms += t.ms;
      total += t.ms;
      merged.set(key, e);
    }
    const rows = [...merged.values()].sort((a, b) => b.ms - a.ms);
    process.stdout.write(`\n${kind}: ${profiles.length} profile(s), ${(total / 1000).toFixed(2)} s sampled in all\n`);
    for (const t of rows.slice(0, top)) {
      process.stdout.write(
        `  ${((t.ms / total) * 100).toFixed(1).padStart(5)}%  ${t.ms.toFixed(0).padStart(7)} ms ` +
          ` ${t.name}  ${t.where}\n`);
    }
    // The same by file: which module (or V8's idle, GC, native code) the time is in.
    const byFile = new Map<string, number>();
    for (const t of rows) {
      const file = t.where ? t.where.replace(/:\d+$/, '').replace(/^node:.*/, 'node internals') : t.name;
      byFile.set(file, (byFile.get(file) ?? 0) + t.ms);
    }
    process.stdout.write('  by file:\n');
    for (const [file, ms] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
      process.stdout.write(
        `  ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(7)} ms  ${file}\n`);
    }
  }
  process.stdout.write(`\nprofiles in ${dir}\n`);
}

/** Names a worker thread's profile by what runs in it. */
function workerKind(times: SelfTime[]): string {
  const files = times.map((t) => t.where).join(' ');
  if (/predicate/.test(files)) return 'predicate worker';
  if (/rdmc/.test(files)) return 'rdmc worker';
  return 'other worker';
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
