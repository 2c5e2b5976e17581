// `squall bench sst`: how fast the SST carries a change from one member to another, beside a plain TCP
// ping-pong measured in the same run, and how fast the WebAssembly kernels scan the table.
//
// pushLatencyUs: member 0 writes its 'ball' counter and pushes it; member 1's predicate (max over 'ball',
// evaluated by its predicate worker) fires, and its trigger on the main thread writes and pushes the
// answer; member 0's predicate fires in turn. One round trip covers two full paths (write → push →
// poller applies → worker wakes and scans → main thread runs the trigger); half of it is one push.

import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { SstCluster } from '../ts/harness/cluster.js';
import { runScanBench } from './scan.js';
import { summarize, type Summary } from './stats.js';
import { tcpPingPong } from './tcp-pingpong.js';

export interface SstBenchOptions {
  members?: number;
  samples?: number;
  warmup?: number;
  /** Skip the kernel scan benchmark (it takes a few seconds). */
  skipScan?: boolean;
  /** Native backend of the members; default SQUALL_FABRIC, else tcp. */
  fabric?: FabricChoice;
  /** The members' suspicion timeout; default the SST's (100 ms). */
  suspicionTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface SstBenchResult {
  members: number;
  /** The members' fabric (fabricLabel): 'tcp', or 'libfabric/<provider> (<mode>)'. */
  fabric: string;
  pushLatencyUs: Summary;
  rawTcpOneWayUs: Summary;
  /** pushLatencyUs.p50 / rawTcpOneWayUs.p50 (target ≤ 2). */
  pushOverRawTcpP50: number;
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
  progress(`starting ${members} SST member processes (fabric ${label})`);
  const cluster = await SstCluster.start({
    members, columns: { ball: { type: 'i64' } }, fabric,
    ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
  });
  let rttNs: number[];
  try {
    await cluster.request(cluster.members[1]!, { cmd: 'pong' });
    progress(`SST ping-pong: ${samples} round trips (+${warmup} warm-up)`);
    rttNs = (await cluster.request(cluster.members[0]!, { cmd: 'ping', samples, warmup })).rttNs as number[];
  } finally {
    await cluster.close();
  }
  progress(`plain TCP ping-pong: ${samples} round trips (+${warmup} warm-up)`);
  const tcpNs = await tcpPingPong(samples, warmup);

  const pushLatencyUs = summarize(rttNs.map((t) => t / 2), 1e-3);
  const rawTcpOneWayUs = summarize(tcpNs.map((t) => t / 2), 1e-3);
  const result: SstBenchResult = {
    members,
    fabric: label,
    pushLatencyUs,
    rawTcpOneWayUs,
    pushOverRawTcpP50: Number((pushLatencyUs.p50 / rawTcpOneWayUs.p50).toFixed(2)),
  };
  if (!options.skipScan) {
    progress('kernel scans: WebAssembly beside plain JS at 4, 16, 64, 256 rows');
    result.scanNs = await runScanBench({ rows: [4, 16, 64, 256], onProgress: progress });
  }
  return result;
}
