// `squall bench persist`: its options and how its result prints (the benchmarks are bench/persist-disk.ts, the
// disk and the log alone, and bench/persist-group.ts, a persistent group with --members).

import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseNumberFlag } from '../validate.js';
import { defineCommand, parseCommand } from './args.js';
import { FABRIC_OPTIONS, JSON_OPTION, SUSPICION_OPTION, fabricOf, suspicionOf } from './bench-options.js';
import { progressOnStderr } from './progress.js';
import {
  formatBytes, formatCount, formatMillis, formatSeconds, parseBytes, parsePositiveInt,
} from './units.js';
import { percentiles } from './bench-describe.js';
import type { PersistDiskBenchResult } from '../../bench/persist-disk.js'; // types only
import type { PersistGroupBenchResult } from '../../bench/persist-group.js';

export const PERSIST_BENCH = defineCommand({
  command: 'bench persist', usage: '[--members N [--size SIZE] [--window W]] [--dir DIR] [--seconds T] [--json]',
  about: `Alone: the persistent log's disk — fdatasync of 4KiB appends, 256KiB appends, the log's group commit of
1KiB records. With --members N: ordered multicast made durable at every member (a persistent shard of N
member processes, logs in DIR): messages durable everywhere per second per member beside their ordered
delivery rate, fdatasyncs per second, the latency from send to durable everywhere at a tenth of that rate,
and the disk's ceiling for N members measured in the same run.`,
  options: {
    members: { type: 'string', value: 'N', help: 'a persistent group of N member processes (default: the disk alone)' },
    size: { type: 'string', value: 'SIZE', help: 'with --members: message size (default 1KiB)' },
    window: { type: 'string', value: 'W', help: 'with --members: slots per sender (default 256)' },
    dir: { type: 'string', value: 'DIR', help: 'a directory on the disk to measure (default the temp dir)' },
    seconds: { type: 'string', value: 'T', help: 'seconds per measurement (default 2; 5 with --members)' },
    json: JSON_OPTION,
    ...FABRIC_OPTIONS,
    suspicion: SUSPICION_OPTION,
  },
});

export async function benchPersist(argv: string[]): Promise<void> {
  const values = parseCommand(PERSIST_BENCH, argv);
  if (values === null) return;
  const dir = values.dir === undefined ? {} : { dir: resolve(values.dir) };
  const progress = progressOnStderr('bench persist');
  if (values.members === undefined) {
    for (const flag of ['size', 'window'] as const) {
      if (values[flag] !== undefined) throw new ConfigError(`--${flag} goes with --members N (a persistent group)`);
    }
    const seconds = parseNumberFlag(values.seconds, 'seconds', 0, 600, 2, true);
    const { runPersistDiskBench } = await import('../../bench/persist-disk.js');
    const result = await runPersistDiskBench({ ...dir, seconds, onProgress: progress });
    process.stdout.write(values.json ? JSON.stringify(result) + '\n' : describeDisk(result));
    return;
  }
  const { runPersistGroupBench } = await import('../../bench/persist-group.js');
  const result = await runPersistGroupBench({
    members: parsePositiveInt(values.members, 'members', 3),
    bytes: values.size ? parseBytes(values.size, 'size') : 1024,
    seconds: parseNumberFlag(values.seconds, 'seconds', 0, 600, 5, true), ...dir,
    ...(values.window !== undefined ? { window: parsePositiveInt(values.window, 'window', 0) } : {}),
    fabric: fabricOf(values), ...suspicionOf(values), onProgress: progress,
  });
  if (values.json) { process.stdout.write(JSON.stringify(result) + '\n'); return; }
  process.stdout.write(describeGroup(result));
}

function describeDisk(r: PersistDiskBenchResult): string {
  const n = formatCount;
  return [
    `the disk under ${dirname(r.dir)}, ${formatSeconds(r.seconds)} per measurement:`,
    `  fdatasync of a 4 KiB append: ${percentiles(r.fdatasync4KiB.latencyUs)}`,
    `  256 KiB appends + fdatasync: ${r.append256KiB.mbytesPerSec} MB/s`,
    `  the log, 1 KiB records, group commit: ${n(r.log1KiB.recordsPerSec)} records/s ` +
      `(${r.log1KiB.mbytesPerSec} MB/s), ` +
      `${r.log1KiB.recordsPerCommit} per fdatasync; append to durable ${percentiles(r.log1KiB.durableLatencyUs)}`,
    `  the log, 1 KiB records one at a time: ${n(r.log1KiBOneAtATime.recordsPerSec)} records/s, ` +
      `${percentiles(r.log1KiBOneAtATime.durableLatencyUs)}`,
    `  reopening the log (${n(r.reopen.records)} records, ${r.reopen.mbytes} MB): ${formatMillis(r.reopen.ms)}, ` +
      `${r.reopen.mbytesPerSec} MB/s`,
  ].join('\n') + '\n';
}

function describeGroup(r: PersistGroupBenchResult): string {
  const n = formatCount;
  const { perNode, ordered, persistLatencyUs: l, disk } = r;
  return [
    `persistent multicast: ${r.members} members (fabric ${r.fabric}), ${formatBytes(r.bytes)} messages, ` +
      `window ${r.window}, ${formatSeconds(r.seconds)}`,
    `  per member (median): ${n(perNode.msgsPerSec)} durable at every member /s (${perNode.mbytesPerSec} MB/s; ` +
      `ordered delivery ${n(ordered.msgsPerSec)}/s), ${n(r.fsyncsPerSec)} fdatasyncs/s, ` +
      `${r.recordsPerFsync} messages per fdatasync`,
    `  send to durable everywhere at ${n(l.ratePerSec)} msgs/s: ${percentiles(l)} over ${n(l.samples)} messages`,
    `  the disk: ${disk.append256KiBMBps} MB/s of 256 KiB appends; ${n(disk.ceilingPerNode)}/s per member at most ` +
      `(${Math.round(disk.fractionOfCeiling * 100)}% of it reached); fdatasync with ${r.members} writers ` +
      percentiles(disk.sharedFdatasyncUs),
    `  delivery order: ${r.hashesAgree ? 'the same at every member, every message durable' : 'MEMBERS DISAGREE'}; ` +
      `suspicions ${r.suspicions}, view changes ${r.viewChanges}`,
  ].join('\n') + '\n';
}
