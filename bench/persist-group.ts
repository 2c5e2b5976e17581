// `squall bench persist --members N`: ordered multicast made durable at every member (issue 16). One
// persistent subgroup of one shard, every member a process with its log in a temporary data directory on the
// disk measured (removed at the end). Three measurements in one run:
//
//   disk        256 KiB appends, each followed by fdatasync, for a moment (persist-disk.ts): the disk's durable
//               streaming rate, and from it the ceiling of this run — N members sharing the one disk can make at
//               most rate / N / (record bytes) records durable per second each (record bytes: the payload and
//               the log's 32-byte record header). Then N writers at once, each a 1 KiB append + fdatasync again
//               and again: the latency of one durable write while N members share the disk.
//   throughput  every member floods `seconds` with `bytes`-byte messages; a message counts at a member once the
//               shard's persistence frontier passed it there (every member's log holds it, fdatasync'ed): a
//               member's rate is those messages over the time from the first frontier that covered any to the
//               last. perNode is the median member's; `ordered` is the same members' delivery rate of the same
//               messages in the same run (the multicast's own pace). fsyncsPerSec: the median member's log's
//               fdatasync calls over the time from the start of the flood to its last frontier.
//   latency     the members together send at a tenth of perNode.msgsPerSec for about `seconds`; a message's
//               latency is from its send() to the moment its sender saw the frontier pass it: durable at every
//               member (one monotonic clock on the host).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, TimeoutError } from '../ts/errors.js';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { PersistFigures } from '../ts/harness/persist-tracker.js';
import { RECORD_HEADER_BYTES } from '../ts/persist/format.js';
import { benchSubgroup, checkOptions, defaultWindow, disturbances, measureIn } from './multicast.js';
import { syncedAppends } from './persist-disk.js';
import { median, round, summarize, type Summary } from './stats.js';
import { longPhase, progressWhile, timedPhase } from '../ts/cli/progress.js';
import { formatBytes, formatCount, formatSeconds } from '../ts/cli/units.js';

export interface PersistGroupBenchOptions {
  members: number;
  /** Bytes of each message (at least 16: the harness stamps sender, number and send time). */
  bytes: number;
  /** Seconds of flooding, and about as many of paced sending for the latency. */
  seconds: number;
  /** Slots per sender; default as `bench multicast`. */
  window?: number;
  /** A directory on the disk to measure (default the system's temporary directory). */
  dir?: string;
  fabric?: FabricChoice;
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface PersistGroupBenchResult {
  members: number;
  fabric: string;
  bytes: number;
  seconds: number;
  window: number;
  /** Messages durable at every member, per second, at the median member; and their payload MB/s. */
  perNode: { msgsPerSec: number; mbytesPerSec: number };
  /** The same messages' ordered delivery rate at the median member, in the same run. */
  ordered: { msgsPerSec: number };
  /** From send() to durable at every member, at `ratePerSec` in total (a tenth of perNode.msgsPerSec). */
  persistLatencyUs: Summary & { ratePerSec: number };
  /** fdatasync calls per second of the median member's log during the flood, and messages made durable per call. */
  fsyncsPerSec: number;
  recordsPerFsync: number;
  /**
   * The disk in the same run: 256 KiB appends + fdatasync (MB/s); the most records of this size each member
   * could make durable per second with N members sharing it; perNode.msgsPerSec as a fraction of that; and
   * the latency of a 1 KiB append + fdatasync with N writers at once (the floor under persistLatencyUs: each
   * member's group commit is one such write, and the disk serves the N members' together).
   */
  disk: { append256KiBMBps: number; ceilingPerNode: number; fractionOfCeiling: number; sharedFdatasyncUs: Summary };
  perMember: Array<{ id: number; persisted: number; persistedPerSec: number; deliveredPerSec: number;
    fsyncs: number }>;
  sent: number;
  /** Every member delivered the same sequence, and every delivered message became durable everywhere. */
  hashesAgree: boolean;
  suspicions: number;
  viewChanges: number;
}

const SUBGROUP = 'bench';
/** How long the last messages may take to become durable everywhere after the senders stop. */
const DRAIN_MS = 60_000;
/** Seconds of the disk measurement. */
const DISK_SECONDS = 1.5;

interface Report {
  delivered: number;
  hash: number;
  firstMs: number;
  lastMs: number;
  persist: PersistFigures;
  logSyncs: number;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export async function runPersistGroupBench(options: PersistGroupBenchOptions): Promise<PersistGroupBenchResult> {
  const o = { ...options, senders: 'all' as const, window: options.window ?? defaultWindow(options.bytes) };
  checkOptions(o);
  if (o.bytes > 64 * 1024) throw new ConfigError(`--size must be at most 64 KiB here (one slot), got ${o.bytes}`);
  const progress = o.onProgress ?? (() => {});
  const base = await mkdtemp(join(o.dir ?? tmpdir(), 'squall-bench-persist-group-'));
  try {
    const during = `${formatSeconds(DISK_SECONDS)}`;
    const disk = await progressWhile(progress,
      timedPhase(`disk: 256 KiB appends + fdatasync in ${base}, ${during}`, 'disk', DISK_SECONDS),
      () => syncedAppends(join(base, 'disk'), 256 << 10, DISK_SECONDS));
    const diskMBps = disk.bytes / 1e6 / disk.seconds;
    const shared = await progressWhile(progress, timedPhase(
      `disk: ${o.members} writers at once, each appending 1 KiB + fdatasync, ${during}`, 'disk', DISK_SECONDS),
    () => Promise.all(Array.from({ length: o.members },
      (_, i) => syncedAppends(join(base, `sync${i}`), 1024, DISK_SECONDS))));
    const sharedSync = summarize(shared.flatMap((r) => r.latenciesMs), 1000, 0);
    const cluster = await progressWhile(progress, longPhase(
      `starting ${o.members} members, one persistent shard (logs in ${base}), window ${o.window}`,
      'starting the members'),
      () => GroupCluster.start({
        members: o.members, subgroups: { [SUBGROUP]: { ...benchSubgroup(o), persistent: true } },
        fabric: resolveFabricChoice(o.fabric),
        dataDirs: Array.from({ length: o.members }, (_, i) => join(base, `m${i}`)),
        ...(o.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs } : {}),
      }));
    return await measureIn(cluster, progress, async () => {
      const throughput = await measureThroughput(cluster, o, progress);
      const rate = throughput.perNode.msgsPerSec / 10;
      const latency = await measureLatency(cluster, o, rate, progress);
      const recordBytes = o.bytes + RECORD_HEADER_BYTES;
      const ceilingPerNode = Math.round(diskMBps * 1e6 / recordBytes / o.members);
      return {
        members: o.members, fabric: fabricLabel(resolveFabricChoice(o.fabric)), bytes: o.bytes, seconds: o.seconds,
        window: o.window, ...throughput, persistLatencyUs: latency.latencyUs,
        disk: {
          append256KiBMBps: round(diskMBps, 1), ceilingPerNode, sharedFdatasyncUs: sharedSync,
          fractionOfCeiling: round(throughput.perNode.msgsPerSec / Math.max(1, ceilingPerNode), 3),
        },
        hashesAgree: throughput.hashesAgree && latency.hashesAgree, ...disturbances(cluster),
      };
    });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

type Throughput = Pick<PersistGroupBenchResult, 'perNode' | 'ordered' | 'fsyncsPerSec' | 'recordsPerFsync' |
  'perMember' | 'sent' | 'hashesAgree'>;

async function measureThroughput(cluster: GroupCluster, o: PersistGroupBenchOptions & { window: number },
  progress: (message: string) => void): Promise<Throughput> {
  await cluster.all({ cmd: 'record', subgroup: SUBGROUP, persisted: true });
  const before = await reports(cluster);
  const started = nowMs();
  const floods = await progressWhile(progress, timedPhase(
    `throughput: every member floods ${formatSeconds(o.seconds)} with ${formatBytes(o.bytes)} messages`,
    'throughput: flooding', o.seconds),
  cluster.all({ cmd: 'flood', subgroup: SUBGROUP, seconds: o.seconds, size: o.bytes, inFlight: o.window }));
  const sent = floods.reduce((sum, f) => sum + (f.sent as number), 0);
  const after = await progressWhile(progress,
    `throughput: ${formatCount(sent)} messages sent; waiting until every member's log holds them`,
    awaitDurable(cluster, sent));
  const perMember = after.map((r, i) => {
    const p = r.persist;
    const fsyncs = r.logSyncs - before[i]!.logSyncs;
    return {
      id: cluster.members[i]!.id, persisted: p.persisted, fsyncs,
      persistedPerSec: p.lastMs > p.firstMs ? Math.round(p.persisted / (p.lastMs - p.firstMs) * 1000) : 0,
      deliveredPerSec: r.lastMs > r.firstMs ? Math.round(r.delivered / (r.lastMs - r.firstMs) * 1000) : 0,
      fsyncsPerSec: p.lastMs > started ? fsyncs / ((p.lastMs - started) / 1000) : 0,
    };
  });
  const msgsPerSec = median(perMember.map((m) => m.persistedPerSec));
  const fsyncs = median(perMember.map((m) => m.fsyncs));
  return {
    perNode: { msgsPerSec, mbytesPerSec: round(msgsPerSec * o.bytes / 1e6, 2) },
    ordered: { msgsPerSec: median(perMember.map((m) => m.deliveredPerSec)) },
    fsyncsPerSec: Math.round(median(perMember.map((m) => m.fsyncsPerSec))),
    recordsPerFsync: round(sent / Math.max(1, fsyncs), 1),
    perMember: perMember.map(({ fsyncsPerSec: _, ...m }) => m), sent,
    hashesAgree: after.every((r) => r.hash === after[0]!.hash && r.persist.persisted === r.delivered),
  };
}

async function measureLatency(cluster: GroupCluster, o: PersistGroupBenchOptions, ratePerSec: number,
  progress: (message: string) => void): Promise<{ latencyUs: Summary & { ratePerSec: number }; hashesAgree: boolean }> {
  const perSender = Math.max(1, ratePerSec / o.members);
  const count = Math.max(1, Math.round(perSender * o.seconds));
  await cluster.all({ cmd: 'record', subgroup: SUBGROUP, persisted: true });
  const announce = `latency: every member sends ${formatCount(count)} messages at ${formatCount(perSender)}/s ` +
    '(a tenth of the peak in total), each timed to durable at every member';
  const after = await progressWhile(progress, timedPhase(announce, 'latency: sending', count / perSender), async () => {
    await cluster.all({ cmd: 'send', subgroup: SUBGROUP, count, sizes: [o.bytes], ratePerSec: perSender });
    return awaitDurable(cluster, count * o.members);
  });
  return {
    latencyUs: { ...summarize(after.flatMap((r) => r.persist.latencyMs), 1000, 0),
      ratePerSec: Math.round(perSender * o.members) },
    hashesAgree: after.every((r) => r.hash === after[0]!.hash && r.persist.persisted === r.delivered),
  };
}

function reports(cluster: GroupCluster): Promise<Report[]> {
  return cluster.all({ cmd: 'report', subgroup: SUBGROUP }) as unknown as Promise<Report[]>;
}

/** Every member's report once `total` messages are durable everywhere as it sees it; a TimeoutError if not. */
async function awaitDurable(cluster: GroupCluster, total: number): Promise<Report[]> {
  const after = (await cluster.all({ cmd: 'await', subgroup: SUBGROUP, total, timeoutMs: DRAIN_MS,
    persisted: true })) as unknown as Report[];
  after.forEach((r, i) => {
    if (r.persist.persisted >= total) return;
    throw new TimeoutError(`member ${cluster.members[i]!.id}: ${r.persist.persisted} of ${total} messages durable ` +
      `at every member (${r.delivered} delivered) ${DRAIN_MS / 1000} s after the senders stopped: the logs or ` +
      'the persistence frontier stalled; rerun, and report it if it persists');
  });
  return after;
}
