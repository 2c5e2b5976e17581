// How much TCP an emulated network carries on this machine: builds one (root only), runs flows between its
// hosts at once and prints each flow's rate as its receiver counts payload. Tells which link cap a
// benchmark can ask for and still measure the protocol rather than the CPU.
//
//   node dist/bench/netns-throughput.js [--members 2] [--rate 1gbit] [--streams 1] [--pattern pair|ring]
//                                       [--window-ms 2000] [--json]
//
//   pair   host 0 → host 1 over `streams` connections
//   ring   every host i → host (i+1) mod n, `streams` connections each: every link busy both ways

import { fileURLToPath } from 'node:url';
import { progressOnStderr, type Progress } from '../ts/cli/progress.js';
import { ConfigError } from '../ts/errors.js';
import { EmulatedNetwork, netnsSupport } from '../ts/netns/emulated-network.js';
import { measureFlows, type FlowResult, type FlowSpec } from '../ts/netns/throughput.js';

export interface NetnsThroughputOptions {
  members: number;
  rate?: string | undefined;
  streams: number;
  pattern: 'pair' | 'ring';
  windowMs: number;
  onProgress?: Progress;
}

export interface NetnsThroughputResult {
  members: number;
  rate: string | null;
  pattern: string;
  streams: number;
  flows: Array<{ from: number; to: number; mbitPerSecond: number; perStreamMbitPerSecond: number[] }>;
  totalMbitPerSecond: number;
}

export async function runNetnsThroughput(options: NetnsThroughputOptions): Promise<NetnsThroughputResult> {
  const { members, pattern, streams } = options;
  if (members < 2) throw new ConfigError('--members must be at least 2');
  const flows: FlowSpec[] = pattern === 'pair'
    ? [{ from: 0, to: 1, streams }]
    : Array.from({ length: members }, (_, i) => ({ from: i, to: (i + 1) % members, streams }));
  const network = await EmulatedNetwork.create({ members, rate: options.rate, onProgress: options.onProgress });
  let results: FlowResult[];
  try {
    options.onProgress?.(`${flows.length} flow(s) of ${streams} stream(s), ${options.windowMs} ms window`);
    results = await measureFlows(network, flows, { windowMs: options.windowMs });
  } finally {
    await network.destroy();
  }
  const mbit = (b: number) => Math.round(b / 1e5) / 10;
  return {
    members, rate: options.rate ?? null, pattern, streams,
    flows: results.map(
      (r) => ({
        from: r.from, to: r.to, mbitPerSecond: mbit(r.bitsPerSecond),
        perStreamMbitPerSecond: r.perStreamBitsPerSecond.map(mbit),
      })),
    totalMbitPerSecond: mbit(results.reduce((a, r) => a + r.bitsPerSecond, 0)),
  };
}

function parseArgs(argv: string[]): NetnsThroughputOptions & { json: boolean } {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const pattern = value('--pattern') ?? 'pair';
  if (pattern !== 'pair' && pattern !== 'ring') throw new ConfigError(`--pattern must be pair or ring; got ${pattern}`);
  return {
    members: Number(value('--members') ?? 2),
    rate: value('--rate'),
    streams: Number(value('--streams') ?? 1),
    pattern,
    windowMs: Number(value('--window-ms') ?? 2000),
    json: argv.includes('--json'),
  };
}

async function main(): Promise<void> {
  const support = netnsSupport();
  if (!support.ok) {
    process.stderr.write(`netns-throughput: ${support.why}\n`);
    process.exit(2);
  }
  const { json, ...options } = parseArgs(process.argv.slice(2));
  const result = await runNetnsThroughput({ ...options, onProgress: progressOnStderr('netns') });
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  for (const f of result.flows) {
    const per = f.perStreamMbitPerSecond.length > 1 ? `  (streams: ${f.perStreamMbitPerSecond.join(', ')})` : '';
    process.stdout.write(`${f.from} → ${f.to}  ${f.mbitPerSecond} Mbit/s${per}\n`);
  }
  process.stdout.write(
    `total ${result.totalMbitPerSecond} Mbit/s (${result.members} hosts, ${result.pattern}, ` +
      `cap ${result.rate ?? 'none'})\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`netns-throughput: ${err.message}\n`);
    process.exit(1);
  });
}
