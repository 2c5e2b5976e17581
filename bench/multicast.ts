// `squall bench multicast`: ordered multicast throughput and latency of one subgroup shard whose members
// are separate processes on this host (issue 4).
//
// Throughput: every sender floods `seconds` seconds with `bytes`-byte messages through a window of
// `window` slots; each member counts its ordered deliveries from the first to the last, so its rate is
// delivered / (lastMs − firstMs). perNode is the median member's rate; mbytesPerSec = msgsPerSec × bytes /
// 1e6. Every member keeps a running hash of (sender, k, length) in delivery order: equal hashes, equal
// sequences (hashesAgree).
//
// Latency: in the same cluster, once the flood is delivered everywhere, the senders together send at a
// tenth of the measured peak for about `seconds` seconds. A message's latency is the largest, over the
// members, of its time from send() to delivery there (one monotonic clock for the whole host), so p50 and
// p99 say when a message has been delivered everywhere. The harness paces its sends with timers, which fire
// at best once a millisecond: at these rates each sender sends small bursts, not evenly spaced messages.
//
// With --block-main MS the last member's main thread is blocked MS ms every second during that run (a long
// task, a GC pause), and latencyUs is the slowest of the *other* members per message.
//
// Isolated latency: then the first member alone sends `isolatedSamples` messages, one in flight at a time:
// it sends one, waits until its own table shows every member delivered it, and only then sends the next
// (group-process.ts, 'isolated'). A message's latency is again its slowest member's send-to-delivery time, so
// isolatedLatencyUs is what one message costs the protocol when nothing else is in flight (the other members
// stay idle senders: they fill their turns with nulls, as a group whose members send now and then does). The
// sender paces itself because on 2 cores the parent's per-message requests ('send', then 'await' to every
// member) ran beside the message they timed and took about half of its latency (docs/benchmarks.md, "Where
// a hop's time goes").

import { resolveSecret } from '../ts/group/credential.js';
import { shardEngineFromEnv } from '../ts/group/join-options.js';
import { ConfigError, PeerFailedError, TimeoutError } from '../ts/errors.js';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import type { SubgroupConfig } from '../ts/membership/plans.js';
import { median, round, summarize } from './stats.js';
import { progressWhile, timedPhase } from '../ts/cli/progress.js';
import { formatBytes, formatCount, formatSeconds } from '../ts/cli/units.js';

export interface MulticastBenchOptions {
  /** Processes in the one shard (each one member). */
  members: number;
  /** Bytes of each message (at least MIN_MESSAGE_BYTES: the header the harness stamps). */
  bytes: number;
  /** Seconds of flooding, and about as many of paced sending for the latency. */
  seconds: number;
  /** Every member sends, or only the first. */
  senders: 'all' | 'one';
  /** Slots per sender; default defaultWindow(bytes). */
  window?: number;
  /** Skip the latency run. */
  skipLatency?: boolean;
  /** Messages of the isolated-latency run (one in flight at a time); 0 skips it. Default 1000. */
  isolatedSamples?: number;
  /**
   * During the latency run at a tenth of peak, the last member's main thread is blocked this many ms every
   * second, and latencyUs is measured at the other members only. 0 (default): nobody is blocked.
   */
  blockMainMs?: number;
  /** Messages per second, in total, of the latency run; default a tenth of the measured peak. */
  latencyRate?: number;
  /**
   * Mix large messages into the flood: every `every`-th message a sender sends is `bytes` bytes, above the
   * slot payload, so it travels by RDMC beside the small ones (ordered by its slot like them).
   */
  large?: { bytes: number; every: number };
  /** Native backend of the members; default SQUALL_FABRIC, else tcp. */
  fabric?: FabricChoice;
  /** The members' suspicion timeout; default the library's (1 s). */
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

/** Options with the window settled. */
export type MulticastRun = MulticastBenchOptions & { window: number };

export interface MemberFigures {
  id: number;
  delivered: number;
  msgsPerSec: number;
  nullsSent: number;
}

export interface MulticastBenchResult {
  members: number;
  /** The members' fabric (fabricLabel): 'tcp', or 'libfabric/<provider> (<mode>)'. */
  fabric: string;
  bytes: number;
  seconds: number;
  senders: 'all' | 'one';
  window: number;
  maxSmcPayload: number;
  /** The median member's ordered deliveries per second, and the bytes they carry. */
  perNode: { msgsPerSec: number; mbytesPerSec: number };
  /** Send to delivery at the last member, at ratePerSec in total (a tenth of perNode.msgsPerSec unless told). */
  latencyUs: { p50: number; p99: number; min: number; max: number; samples: number; ratePerSec: number };
  /** The last member's main thread was blocked this many ms a second during the latency run (0: never). */
  blockMainMs: number;
  /** Which thread ran the ordered shards' control step (SQUALL_SHARD_ENGINE in the member processes). */
  engine: 'main' | 'worker';
  /** Send to delivery at the last member, one message of the first member in flight at a time. */
  isolatedLatencyUs: { p50: number; p99: number; min: number; max: number; samples: number };
  perMember: MemberFigures[];
  /** Messages the senders sent during the flood. */
  sent: number;
  /** Every member delivered the flood, and then the paced messages, in the same order. */
  hashesAgree: boolean;
  /** The large messages mixed into the flood, if any (MulticastBenchOptions.large). */
  large: { bytes: number; every: number } | null;
  /** Suspicions any member reported during the run (memberFailed events): 0 when no member looked failed. */
  suspicions: number;
  /** Views installed at any member after the first: 0 when the group never changed. */
  viewChanges: number;
  /**
   * The members ran with the group's key (SQUALL_SECRET or SQUALL_SECRET_FILE in the environment, which the
   * member processes inherit): every fabric connection was authenticated (docs/security.md).
   */
  authenticated: boolean;
}

/** The harness stamps [u32 sender][u32 k][f64 send time] at the head of every message. */
export const MIN_MESSAGE_BYTES = 16;
/** Messages up to this size go through the SST slots; larger ones by RDMC, ordered by a slot. */
export const MAX_SLOT_PAYLOAD = 64 * 1024;
/** The slot payload when messages travel by RDMC (the slot only orders them). */
const LARGE_SLOT_PAYLOAD = 1024;
/** Slot bytes a member's table may hold (window × slot × members), well inside the 4 GiB arena. */
const MAX_SLOTS_BYTES = 1 << 30;
const SUBGROUP = 'bench';
/** Default slots per sender: enough that a sender rarely waits for the slowest member… */
const WINDOW = 256;
/** …but no more bytes in flight per sender than this: a window of large messages queued on a connection
 *  delays the heartbeats behind it, and on a busy 2-core host 256 × 64 KiB got members suspected. */
const WINDOW_BYTES = 4 << 20;

/** The window the benchmark uses for `bytes`-byte messages unless told: 256, fewer above 16 KiB. */
export function defaultWindow(bytes: number): number {
  return Math.max(16, Math.min(WINDOW, Math.floor(WINDOW_BYTES / Math.min(bytes, MAX_SLOT_PAYLOAD))));
}

/** How long the last messages may take to arrive everywhere after the senders stop. */
const DRAIN_MS = 30_000;

/** The one subgroup the benchmark runs: a single shard of every member. */
export function benchSubgroup(
  o: Pick<MulticastRun, 'members' | 'bytes' | 'senders' | 'window' | 'large'>
): SubgroupConfig {
  const slotted = o.bytes <= MAX_SLOT_PAYLOAD;
  const maxSmcPayload = slotted ? Math.ceil(o.bytes / 8) * 8 : LARGE_SLOT_PAYLOAD;
  return {
    shards: 1, members: { min: o.members, max: o.members }, senders: o.senders === 'all' ? 'all' : 1,
    window: o.window, maxSmcPayload, maxMessageBytes: Math.max(slotted ? maxSmcPayload : o.bytes, o.large?.bytes ?? 0),
  };
}

export function checkOptions(o: MulticastRun): void {
  if (!Number.isInteger(o.members) || o.members < 2) {
    throw new ConfigError(`--members must be at least 2 (a sender and a receiver), got ${o.members}`);
  }
  if (!Number.isInteger(o.bytes) || o.bytes < MIN_MESSAGE_BYTES) {
    throw new ConfigError(
      `--size must be at least ${MIN_MESSAGE_BYTES} bytes (each message carries its sender, number ` +
        `and send time), got ${o.bytes}`);
  }
  if (!(o.seconds > 0) || o.seconds > 3600) {
    throw new ConfigError(`--seconds must be a number above 0 and at most 3600, got ${o.seconds}`);
  }
  if (!Number.isInteger(o.window) || o.window < 1 || o.window > 65536) {
    throw new ConfigError(`--window must be an integer from 1 to 65536, got ${o.window}`);
  }
  if (o.large) {
    const slot = benchSubgroup(o).maxSmcPayload!;
    if (!Number.isInteger(o.large.bytes) || o.large.bytes <= slot) {
      throw new ConfigError(
        `--large must be above the slot payload (${slot} bytes for ${o.bytes}-byte messages), so that it ` +
          `travels by RDMC; got ${o.large.bytes}`);
    }
    if (o.large.bytes > 256 * 2 ** 20) throw new ConfigError(`--large must be at most 256 MiB, got ${o.large.bytes}`);
    if (!Number.isInteger(o.large.every) || o.large.every < 2) {
      throw new ConfigError(`--large-every must be an integer of at least 2, got ${o.large.every}`);
    }
  }
  const slotsBytes = o.window * (benchSubgroup(o).maxSmcPayload! + 16) * o.members;
  if (slotsBytes > MAX_SLOTS_BYTES) {
    throw new ConfigError(
      `--window ${o.window} with ${o.bytes}-byte messages needs ${Math.ceil(slotsBytes / 2 ** 20)} MiB of slots in ` +
        `every member's table (at most ${MAX_SLOTS_BYTES / 2 ** 20}): lower --window`);
  }
}

/** Starts the members, runs the throughput then the latency measurement, always stops the members. */
export async function runMulticastBench(options: MulticastBenchOptions): Promise<MulticastBenchResult> {
  const o = { ...options, window: options.window ?? defaultWindow(options.bytes) };
  checkOptions(o);
  const progress = o.onProgress ?? (() => {});
  const subgroup = benchSubgroup(o);
  const sending = o.senders === 'all' ? 'every member sends' : 'member 0 sends';
  const cluster = await progressWhile(progress,
    `starting ${o.members} group members (one shard, ${sending}, window ${o.window})`, () => startCluster(o));
  return measureIn(cluster, progress, () => measure(cluster, o, subgroup));
}

/** Runs `run` on a started cluster; a member's failure explained (explainFailure); the members always stopped. */
export async function measureIn<T>(cluster: GroupCluster, progress: (message: string) => void,
  run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw explainFailure(error);
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
}

/** Throughput, then latency at a tenth of the throughput, in one running cluster. */
async function measure(
  cluster: GroupCluster, o: MulticastRun, subgroup: SubgroupConfig
): Promise<MulticastBenchResult> {
  const throughput = await measureThroughput(cluster, o);
  const latency = o.skipLatency
    ? { latencyUs: { ...summarize([]), ratePerSec: 0 }, hashesAgree: true }
    : await measureLatency(cluster, o, o.latencyRate ?? throughput.perNode.msgsPerSec / 10);
  const isolated = await measureIsolatedLatency(cluster, o, o.isolatedSamples ?? ISOLATED_SAMPLES);
  return {
    members: o.members, fabric: fabricLabel(resolveFabricChoice(o.fabric)), bytes: o.bytes, seconds: o.seconds,
    senders: o.senders, window: o.window,
    maxSmcPayload: subgroup.maxSmcPayload!, ...throughput, latencyUs: latency.latencyUs,
    isolatedLatencyUs: isolated.latencyUs, blockMainMs: o.blockMainMs ?? 0,
    engine: shardEngineFromEnv(),
    hashesAgree: throughput.hashesAgree && latency.hashesAgree && isolated.hashesAgree, large: o.large ?? null,
    ...disturbances(cluster),
    authenticated: resolveSecret({}) !== null,
  };
}

/** What the members reported besides deliveries: suspicions and views installed after the first. */
export function disturbances(cluster: GroupCluster): { suspicions: number; viewChanges: number } {
  const events = cluster.members.flatMap((m) => m.events);
  return {
    suspicions: events.filter((e) => e.type === 'memberFailed').length,
    viewChanges: events.filter((e) => e.type === 'view').length,
  };
}

/**
 * A member's failure, as the child reported it, becomes the PeerFailedError it was there. On a busy host
 * the usual cause is a heartbeat stuck behind a window of large messages (suspicion after 100 ms).
 */
export function explainFailure(error: unknown): unknown {
  const message = (error as Error)?.message ?? '';
  const exited = /^member (\d+) (?:has )?exited/.exec(message);
  if (exited) {
    return new PeerFailedError(Number(exited[1]), 'EXITED',
      `member ${exited[1]}'s process exited during the benchmark (its error is printed above); ` +
      'rerun, and report it if it persists');
  }
  const m = /member (\d+) of this shard failed \((\w+)\)/.exec(message);
  if (!m) return error;
  const how = m[2] === 'SUSPECTED' ? 'suspected (its heartbeats arrived late)' : 'lost';
  return new PeerFailedError(Number(m[1]), m[2]!,
    `${(error as Error).message}. The benchmark stopped: a member was ${how}; ` +
    'on a busy machine rerun it, raise --suspicion, or lower --window or --size so that less data queues ' +
    'ahead of the heartbeats');
}

/** The members of one run: every member a process, one subgroup of one shard. */
export function startCluster(
  o: Pick<MulticastRun, 'members' | 'bytes' | 'senders' | 'window' | 'fabric' | 'large' | 'suspicionTimeoutMs'>
): Promise<GroupCluster> {
  return GroupCluster.start({
    members: o.members, subgroups: { [SUBGROUP]: benchSubgroup(o) }, fabric: resolveFabricChoice(o.fabric),
    ...(o.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs } : {}),
  });
}

/**
 * One benchmark per message size (a fresh cluster each: the slot size follows the message size). A size
 * that fails ends the sweep; the sizes finished before it are kept, with the failure beside them.
 */
export async function runMulticastSweep(
  o: Omit<MulticastBenchOptions, 'bytes'>, sizes: readonly number[]
): Promise<{ rows: MulticastBenchResult[]; failed: { bytes: number; error: Error } | null }> {
  const rows: MulticastBenchResult[] = [];
  for (const bytes of sizes) {
    o.onProgress?.(`[${rows.length + 1}/${sizes.length}] ${formatBytes(bytes)} messages`);
    try {
      rows.push(await runMulticastBench({ ...o, bytes }));
    } catch (error) {
      o.onProgress?.(`${formatBytes(bytes)} messages failed: ${(error as Error).message}`);
      return { rows, failed: { bytes, error: error as Error } };
    }
  }
  return { rows, failed: null };
}

/** The senders of the bench shard: every member, or the first. */
export function sendersOf(cluster: GroupCluster, senders: 'all' | 'one'): GroupCluster['members'] {
  return senders === 'all' ? cluster.members : cluster.members.slice(0, 1);
}

interface Report {
  delivered: number;
  hash: number;
  firstMs: number;
  lastMs: number;
  nullsSent: number;
  latency: { sender: number[]; k: number[]; ms: number[] } | null;
}

/** Floods, waits until every member delivered everything, and works out each member's rate. */
export async function measureThroughput(
  cluster: GroupCluster, o: MulticastRun
): Promise<Pick<MulticastBenchResult, 'perNode' | 'perMember' | 'sent' | 'hashesAgree'>> {
  const progress = o.onProgress ?? (() => {});
  await cluster.all({ cmd: 'record', subgroup: SUBGROUP });
  const senders = sendersOf(cluster, o.senders);
  const large = o.large ? { largeSize: o.large.bytes, largeEvery: o.large.every } : {};
  const floods = await progressWhile(progress, timedPhase(
    `throughput: ${senders.length} sender(s) flood ${formatSeconds(o.seconds)} with ${formatBytes(o.bytes)} messages`,
    'throughput: flooding', o.seconds),
  cluster.all(
    { cmd: 'flood', subgroup: SUBGROUP, seconds: o.seconds, size: o.bytes, inFlight: o.window, ...large }, senders));
  const sent = floods.reduce((sum, f) => sum + (f.sent as number), 0);
  const sentBytes = floods.reduce((sum, f) => sum + (f.bytes as number), 0);
  const reports = await progressWhile(progress,
    `throughput: ${formatCount(sent)} messages sent; waiting for every member to deliver them`,
    awaitAll(cluster, sent));
  const perMember = reports.map((r, i) => ({
    id: cluster.members[i]!.id, delivered: r.delivered, nullsSent: r.nullsSent,
    msgsPerSec: r.lastMs > r.firstMs ? Math.round((r.delivered / (r.lastMs - r.firstMs)) * 1000) : 0,
  }));
  const msgsPerSec = median(perMember.map((m) => m.msgsPerSec));
  return {
    perNode: { msgsPerSec, mbytesPerSec: round((msgsPerSec * (sent > 0 ? sentBytes / sent : o.bytes)) / 1e6, 2) },
    perMember, sent, hashesAgree: reports.every((r) => r.hash === reports[0]!.hash),
  };
}

/** Sends at `ratePerSec` in total for about o.seconds; each message's latency is its slowest member's. */
export async function measureLatency(
  cluster: GroupCluster, o: MulticastBenchOptions, ratePerSec: number
): Promise<{ latencyUs: MulticastBenchResult['latencyUs']; hashesAgree: boolean }> {
  const progress = o.onProgress ?? (() => {});
  const senders = sendersOf(cluster, o.senders);
  const perSender = Math.max(1, ratePerSec / senders.length);
  const count = Math.max(1, Math.round(perSender * o.seconds));
  await cluster.all({ cmd: 'record', subgroup: SUBGROUP, latency: true });
  const announce = `latency: ${senders.length} sender(s) send ${formatCount(count)} messages each at ` +
    `${formatCount(perSender)}/s` + (o.latencyRate ? '' : ' (a tenth of the peak in total)');
  const block = o.blockMainMs ?? 0;
  const blocked = cluster.members.slice(-1);
  if (block > 0) {
    progress(`latency: member ${blocked[0]!.id}'s main thread is blocked ${block} ms every second; latency is ` +
      'measured at the other members');
    await cluster.all({ cmd: 'block-main', ms: block, everyMs: 1000 }, blocked);
  }
  const reports = await progressWhile(progress, timedPhase(announce, 'latency: sending', count / perSender),
    async () => {
      await cluster.all({ cmd: 'send', subgroup: SUBGROUP, count, sizes: [o.bytes], ratePerSec: perSender }, senders);
      return awaitAll(cluster, count * senders.length);
    });
  if (block > 0) await cluster.all({ cmd: 'block-main', ms: 0, everyMs: 1000 }, blocked);
  const measured = block > 0 ? reports.slice(0, -1) : reports;
  const slowest = slowestPerMessage(measured.map((r) => r.latency!));
  return {
    latencyUs: { ...summarize(slowest, 1000, 1), ratePerSec: Math.round(perSender * senders.length) },
    hashesAgree: reports.every((r) => r.hash === reports[0]!.hash),
  };
}

/** Messages of the isolated-latency run unless told. */
const ISOLATED_SAMPLES = 1000;

/**
 * The first member sends `samples` messages, the next only once every member delivered the previous one;
 * each message's latency is its slowest member's.
 */
export async function measureIsolatedLatency(
  cluster: GroupCluster, o: MulticastBenchOptions, samples: number
): Promise<{ latencyUs: MulticastBenchResult['isolatedLatencyUs']; hashesAgree: boolean }> {
  if (samples <= 0) return { latencyUs: summarize([]), hashesAgree: true };
  await cluster.all({ cmd: 'record', subgroup: SUBGROUP, latency: true });
  const announce = `isolated latency: member ${cluster.members[0]!.id} sends ${formatCount(samples)} messages, ` +
    'one in flight at a time';
  const reports = await progressWhile(o.onProgress ?? (() => {}), announce, async () => {
    // The sender paces itself (group-process.ts, 'isolated'): no IPC from this process while a message is in flight.
    await cluster.all({ cmd: 'isolated', subgroup: SUBGROUP, count: samples, size: o.bytes, firstK: 0,
      timeoutMs: DRAIN_MS + samples * 100 }, cluster.members.slice(0, 1));
    return awaitAll(cluster, samples);
  });
  return {
    latencyUs: summarize(slowestPerMessage(reports.map((r) => r.latency!)), 1000, 1),
    hashesAgree: reports.every((r) => r.hash === reports[0]!.hash),
  };
}

/** Every member's report once it has delivered `total` messages; a TimeoutError when one falls short. */
async function awaitAll(cluster: GroupCluster, total: number): Promise<Report[]> {
  const reports =
    (await cluster.all({ cmd: 'await', subgroup: SUBGROUP, total, timeoutMs: DRAIN_MS })) as unknown as Report[];
  reports.forEach((r, i) => {
    const member = cluster.members[i]!;
    if (r.delivered >= total) return;
    const events = cluster.members.flatMap((m) => m.events.map((e) => `member ${m.id}: ${JSON.stringify(e)}`));
    throw new TimeoutError(
      `member ${member.id} delivered ${r.delivered} of ${total} messages within ${DRAIN_MS / 1000} s ` +
      'of the senders stopping' +
      (events.length > 0 ? ` (${events.slice(0, 5).join('; ')})` : '') +
      '; the ordered multicast stalled: rerun, and report it if it persists');
  });
  return reports;
}

/** Per message (sender, k): the largest of the members' send-to-delivery times, in ms. */
export function slowestPerMessage(latencies: ReadonlyArray<{ sender: number[]; k: number[]; ms: number[] }>): number[] {
  const slowest = new Map<number, number>();
  for (const l of latencies) {
    for (let i = 0; i < l.ms.length; i++) {
      const key = l.sender[i]! * 2 ** 32 + l.k[i]!;
      const ms = l.ms[i]!;
      const seen = slowest.get(key);
      if (seen === undefined || ms > seen) slowest.set(key, ms);
    }
  }
  return [...slowest.values()];
}

