// `squall bench sst`: how fast the SST carries a change from one member to another, beside a plain TCP
// ping-pong measured in the same run, and how fast the WebAssembly kernels scan the table.
//
// pushLatencyUs: member 0 writes its 'ping' counter and pushes it; member 1's predicate (max over 'ping',
// evaluated by its predicate worker) fires, and its trigger on the main thread writes the answer into its
// 'pong' counter and pushes it; member 0's predicate over 'pong' fires in turn (no side's predicate fires
// on its own write, as no side of the TCP ping-pong hears its own send). One round trip covers two full
// paths (write → push → poller applies → worker wakes and scans → main thread runs the trigger); half of it
// is one push.
//
// --under-load (underLoad): the members run the same ping-pong on a fabric that also carries, to and from the
// same members over the same connections, an ordered multicast flood of 10 KiB messages from every member and
// RDMC messages of 256 MiB from member 0 back to back (ts/harness/load-process.ts). pushLatencyUs is then the
// ping-pong of those processes before the flood starts, pushLatencyUnderLoadUs during it: what a heartbeat or
// an SST counter waits for when bulk data fills the path to its reader.

import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { LoadCluster, SstCluster } from '../ts/harness/cluster.js';
import { benchSubgroup, defaultWindow } from './multicast.js';
import { runScanBench } from './scan.js';
import { summarize, type Summary } from './stats.js';
import { tcpPingPong } from './tcp-pingpong.js';
import { progressWhile } from '../ts/cli/progress.js';
import { formatBytes, formatCount, formatSeconds } from '../ts/cli/units.js';

export interface SstBenchOptions {
  members?: number;
  samples?: number;
  warmup?: number;
  /** Skip the kernel scan benchmark (it takes a few seconds). */
  skipScan?: boolean;
  /** Native backend of the members; default SQUALL_FABRIC, else tcp. */
  fabric?: FabricChoice;
  /** The members' suspicion timeout; default the SST's (1 s). */
  suspicionTimeoutMs?: number;
  /** Also measure the ping-pong while a multicast flood and an RDMC transfer share its connections. */
  underLoad?: boolean;
  /** Under load: the longest a ping-pong may take (it stops early with the samples it has). Default 60 s. */
  maxSeconds?: number;
  onProgress?: (message: string) => void;
}

/** What ran beside the ping-pong under load. */
export interface LoadFigures {
  multicastBytes: number;
  rdmcBytes: number;
  /** Seconds the flood ran (its warm-up, then the ping-pong under load). */
  seconds: number;
  /** Multicast messages sent by all members, and delivered per member (median), during the flood. */
  multicastSent: number;
  multicastDeliveredPerMember: number;
  rdmcMessages: number;
  /** Members suspected by any member during the run (heartbeats later than the suspicion timeout). */
  suspicions: number;
}

export interface SstBenchResult {
  members: number;
  /** The members' fabric (fabricLabel): 'tcp', or 'libfabric/<provider> (<mode>)'. */
  fabric: string;
  pushLatencyUs: Summary;
  rawTcpOneWayUs: Summary;
  /** pushLatencyUs.p50 / rawTcpOneWayUs.p50 (target ≤ 2). */
  pushOverRawTcpP50: number;
  /** With underLoad: the ping-pong while the flood runs (pushLatencyUs is the same processes before it). */
  pushLatencyUnderLoadUs?: Summary;
  load?: LoadFigures;
  scanNs?: Awaited<ReturnType<typeof runScanBench>>;
}

export async function runSstBench(options: SstBenchOptions = {}): Promise<SstBenchResult> {
  const members = options.members ?? 3;
  const samples = options.samples ?? 20_000;
  const warmup = options.warmup ?? 2_000;
  const progress = options.onProgress ?? (() => {});
  if (!Number.isInteger(members) || members < 2) throw new RangeError('--members must be at least 2');

  const fabric = resolveFabricChoice(options.fabric);
  const label = fabricLabel(fabric);
  let rttNs: number[];
  let loaded: { rttNs: number[]; load: LoadFigures } | null = null;
  if (options.underLoad) {
    const run = await pingPongUnderLoad(members, samples, warmup, options.maxSeconds ?? 60, fabric, label, progress);
    rttNs = run.idleNs;
    loaded = run;
  } else {
    const cluster = await progressWhile(progress, `starting ${members} SST member processes (fabric ${label})`,
      () => SstCluster.start({
        members, columns: { ping: { type: 'i64' }, pong: { type: 'i64' } }, fabric,
        ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
      }));
    try {
      await cluster.request(cluster.members[1]!, { cmd: 'pong' });
      rttNs = (await progressWhile(progress, `SST ping-pong: ${roundTrips(samples, warmup)}`,
        cluster.request(cluster.members[0]!, { cmd: 'ping', samples, warmup }))).rttNs as number[];
    } finally {
      progress('stopping the SST members');
      await cluster.close();
    }
  }
  const tcpNs = await progressWhile(progress, `plain TCP ping-pong: ${roundTrips(samples, warmup)}`,
    () => tcpPingPong(samples, warmup));

  const pushLatencyUs = summarize(rttNs.map((t) => t / 2), 1e-3);
  const rawTcpOneWayUs = summarize(tcpNs.map((t) => t / 2), 1e-3);
  const result: SstBenchResult = {
    members,
    fabric: label,
    pushLatencyUs,
    rawTcpOneWayUs,
    pushOverRawTcpP50: Number((pushLatencyUs.p50 / rawTcpOneWayUs.p50).toFixed(2)),
  };
  if (loaded) {
    result.pushLatencyUnderLoadUs = summarize(loaded.rttNs.map((t) => t / 2), 1e-3);
    result.load = loaded.load;
  }
  if (!options.skipScan) {
    progress('kernel scans: WebAssembly beside plain JS at 4, 16, 64, 256 rows');
    result.scanNs = await runScanBench({ rows: [4, 16, 64, 256], onProgress: progress });
  }
  return result;
}

const roundTrips = (samples: number, warmup: number): string =>
  `${formatCount(samples)} round trips (+${formatCount(warmup)} warm-up)`;

/** The multicast messages and RDMC messages of the flood. */
const FLOOD_MESSAGE_BYTES = 10 * 1024;
const FLOOD_RDMC_BYTES = 256 * 1024 * 1024;
/** The flood runs this long before the ping-pong under load starts. */
const FLOOD_WARMUP_MS = 1000;

/** The ping-pong in one set of load members (load-process.ts): first idle, then beside the flood. */
async function pingPongUnderLoad(
  members: number, samples: number, warmup: number, maxSeconds: number, fabric: FabricChoice, label: string,
  progress: (message: string) => void): Promise<{ idleNs: number[]; rttNs: number[]; load: LoadFigures }> {
  const subgroup = benchSubgroup({
    members, bytes: FLOOD_MESSAGE_BYTES, senders: 'all', window: defaultWindow(FLOOD_MESSAGE_BYTES),
  });
  const cluster = await progressWhile(progress,
    `starting ${members} member processes, each with an SST, a multicast shard and an RDMC group on ` +
      `one fabric (fabric ${label})`,
    () => LoadCluster.start({ members, subgroup, rdmcBytes: FLOOD_RDMC_BYTES, fabric }));
  try {
    const [pinger, ponger] = [cluster.members[0]!, cluster.members[1]!];
    await cluster.request(ponger, { cmd: 'pong' });
    const idleNs = (await progressWhile(progress, `SST ping-pong, idle: ${roundTrips(samples, warmup)}`,
      cluster.request(pinger, { cmd: 'ping', samples, warmup, maxSeconds }))).rttNs as number[];
    progress(
      `flood: every member multicasts ${formatBytes(FLOOD_MESSAGE_BYTES)} messages, member 0 ` +
        `sends ${formatBytes(FLOOD_RDMC_BYTES)} messages by RDMC, back to back; ` +
        `${formatSeconds(FLOOD_WARMUP_MS / 1000)} of warm-up`);
    const started = performance.now();
    await Promise.all(
      cluster.members.map((m) => cluster.request(m, { cmd: 'flood-start', size: FLOOD_MESSAGE_BYTES })));
    await new Promise((resolve) => setTimeout(resolve, FLOOD_WARMUP_MS));
    const rttNs = (await progressWhile(progress,
      `SST ping-pong under the flood: ${roundTrips(samples, warmup)}, at most ${formatSeconds(maxSeconds)}`,
      cluster.request(pinger, { cmd: 'ping', samples, warmup, maxSeconds }))).rttNs as number[];
    const stops = await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'flood-stop' })));
    const seconds = (performance.now() - started) / 1000;
    progress(`flood stopped after ${formatSeconds(seconds)}; ${formatCount(rttNs.length)} round trips timed under it`);
    const suspicions = new Set<string>();
    stops.forEach((s, i) => { for (const id of s.suspected as number[]) suspicions.add(`${i}:${id}`); });
    const delivered = stops.map((s) => s.delivered as number).sort((a, b) => a - b);
    return {
      idleNs, rttNs,
      load: {
        multicastBytes: FLOOD_MESSAGE_BYTES, rdmcBytes: FLOOD_RDMC_BYTES, seconds: Number(seconds.toFixed(1)),
        multicastSent: stops.reduce((n, s) => n + (s.sent as number), 0),
        multicastDeliveredPerMember: delivered[Math.floor(delivered.length / 2)]!,
        rdmcMessages: stops.reduce((n, s) => n + (s.rdmcMessages as number), 0),
        suspicions: suspicions.size,
      },
    };
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
}
