// `squall bench rdmc`: how fast one RDMC group delivers a message to every receiver, on loopback or in an
// emulated network of capped links, beside one plain TCP stream of the same bytes measured in the same run.
//
// A message's time is taken at the sender, from send() to the last receiver's ack: the slowest receiver
// counts. gbytesPerSec = bytes / that time / 1e9, the rate at which each receiver got the message.

import { EmulatedNetwork, netnsSupport } from '../ts/netns/emulated-network.js';
import { ConfigError } from '../ts/errors.js';
import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { RdmcCluster } from '../ts/harness/cluster.js';
import { algorithmName, parseAlgorithm, type AlgorithmName } from '../ts/rdmc/schedule.js';
import { median, round } from './stats.js';
import { tcpStreamSeconds } from './tcp-stream.js';
import { progressWhile } from '../ts/cli/progress.js';
import { formatBytes } from '../ts/cli/units.js';

export interface RdmcBenchOptions {
  members: number;
  bytes: number;
  algorithm: AlgorithmName;
  blockBytes: number;
  /** Messages timed after one warm-up; the median counts. Default 3. */
  repeats?: number;
  /** Run each member in its own network namespace, links capped at this tc rate ('1gbit'); null = no cap. */
  netns?: { rate: string | null } | null;
  /** Also time one plain TCP stream of the same bytes between two members. */
  tcpBaseline?: boolean;
  /** Native backend of the members; default SQUALL_FABRIC, else tcp. */
  fabric?: FabricChoice;
  onProgress?: (message: string) => void;
}

export interface RdmcBenchResult {
  algorithm: AlgorithmName;
  members: number;
  bytes: number;
  blockSize: number;
  seconds: number;
  gbytesPerSec: number;
  /** Every timed message's seconds. */
  samples: number[];
  network: string;
  /** The members' fabric (fabricLabel): 'tcp', or 'libfabric/<provider> (<mode>)'. */
  fabric: string;
  tcpGbytesPerSec?: number;
  ratioToTcp?: number;
}

/** Builds the emulated network when asked (and allowed), runs `body`, always tears down. */
export async function withNetwork<T>(
  members: number, netns: RdmcBenchOptions['netns'], progress: (m: string) => void,
  body: (net: EmulatedNetwork | null) => Promise<T>
): Promise<T> {
  if (!netns) return body(null);
  const support = netnsSupport();
  if (!support.ok) throw new ConfigError(`--netns is not possible here: ${support.why}`);
  const links = netns.rate ? `, links capped at ${netns.rate} each way` : ', uncapped';
  const net = await progressWhile(progress, `building an emulated network of ${members} namespaces${links}`,
    () => EmulatedNetwork.create({ members, ...(netns.rate ? { rate: netns.rate } : {}) }));
  try {
    return await body(net);
  } finally {
    progress('taking the emulated network down');
    await net.destroy();
  }
}

/** Times messages over one RDMC group in a cluster that `net` (or loopback) hosts. */
export async function timeRdmc(net: EmulatedNetwork | null, o: RdmcBenchOptions): Promise<number[]> {
  const progress = o.onProgress ?? (() => {});
  const cluster = await progressWhile(progress, `starting ${o.members} member processes`, () => RdmcCluster.start({
    members: o.members,
    groups: [{
      id: 1, members: Array.from({ length: o.members }, (_, i) => i), maxMessageBytes: o.bytes,
      blockBytes: o.blockBytes, algorithm: o.algorithm,
    }],
    fabric: resolveFabricChoice(o.fabric),
    ...(net ? {
      fork: (i: number, entry: string) => net.fork(i, entry),
      listenAddress: (i: number) => `${net.hosts[i]!.address}:0`,
    } : {}),
  }));
  try {
    const sender = cluster.members[0]!;
    await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'hash-messages', on: false })));
    await cluster.request(sender, { cmd: 'fill', group: 1, size: o.bytes, seed: 42 });
    const repeats = o.repeats ?? 3;
    const what = `${o.algorithm}, ${o.members} members, ${formatBytes(o.bytes)} in ${formatBytes(o.blockBytes)} blocks`;
    await progressWhile(progress, `${what}: 1 warm-up message`,
      cluster.request(sender, { cmd: 'send', group: 1, size: o.bytes, times: 1 }));
    const timed = await progressWhile(progress, `${what}: ${repeats} timed message${repeats === 1 ? '' : 's'}`,
      cluster.request(sender, { cmd: 'send', group: 1, size: o.bytes, times: repeats }));
    return timed.seconds as number[];
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
}

export async function runRdmcBench(o: RdmcBenchOptions): Promise<RdmcBenchResult> {
  if (!Number.isInteger(o.members) || o.members < 2) {
    throw new ConfigError('--members must be at least 2 (a sender and a receiver)');
  }
  const algorithm = algorithmName(parseAlgorithm(o.algorithm));
  const progress = o.onProgress ?? (() => {});
  return withNetwork(o.members, o.netns, progress, async (net) => {
    const samples = await timeRdmc(net, { ...o, algorithm });
    const seconds = median(samples);
    const result: RdmcBenchResult = {
      algorithm, members: o.members, bytes: o.bytes, blockSize: o.blockBytes,
      seconds: round(seconds, 4), gbytesPerSec: round(o.bytes / seconds / 1e9, 3),
      samples: samples.map((s) => round(s, 4)),
      network: net ? `netns${o.netns?.rate ? `, ${o.netns.rate} links` : ', uncapped'}` : 'loopback',
      fabric: fabricLabel(resolveFabricChoice(o.fabric)),
    };
    if (o.tcpBaseline) {
      const tcp: number[] = [];
      for (let i = 0; i < (o.repeats ?? 3); i++) {
        progress(`plain TCP: one stream of ${formatBytes(o.bytes)}, member 0 → member 1 [${i + 1}/${o.repeats ?? 3}]`);
        const placement = net ? {
          forkAt: (h: number, script: string, args: string[]) => net.fork(h, script, args),
          hostOf: (h: number) => net.hosts[h]!.address,
        } : {};
        tcp.push(await tcpStreamSeconds(o.bytes, placement));
      }
      result.tcpGbytesPerSec = round(o.bytes / median(tcp) / 1e9, 3);
      result.ratioToTcp = round(result.gbytesPerSec / result.tcpGbytesPerSec, 3);
    }
    return result;
  });
}

