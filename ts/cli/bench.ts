// `squall bench <what>`: benchmarks that print the figures their issue names, as JSON with --json.

import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { cliArgs } from './args.js';
import { formatBytes, parseBytes } from './units.js';
import { progressOnStderr } from './progress.js';

const USAGE = `usage:
  squall bench sst [--members N] [--samples N] [--warmup N] [--no-scan] [--json]
  squall bench rdmc --members N --size SIZE --algorithm A [--block-size SIZE] [--netns --rate RATE]
                    [--repeats N] [--tcp-baseline] [--json]
      A: binomial (default), chain, tree, sequential; SIZE like 64MiB; RATE like 1gbit (--netns needs root)
`;

export async function run(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  switch (what) {
    case 'sst': return benchSst(rest);
    case 'rdmc': return benchRdmc(rest);
    default:
      throw new ConfigError(`unknown benchmark '${what ?? ''}'; available: sst, rdmc`);
  }
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

async function benchSst(argv: string[]): Promise<void> {
  const values = cliArgs('bench sst', () => parseArgs({
    args: argv,
    options: {
      members: { type: 'string' }, samples: { type: 'string' }, warmup: { type: 'string' },
      json: { type: 'boolean' }, 'no-scan': { type: 'boolean' },
    },
  }).values);
  const members = positiveInt(values.members, 'members', 3);
  if (members < 2) throw new ConfigError('--members must be at least 2 (a ping-pong needs two members)');
  const { runSstBench } = await import('../../bench/sst.js');
  const result = await runSstBench({
    members,
    samples: positiveInt(values.samples, 'samples', 20_000),
    warmup: positiveInt(values.warmup, 'warmup', 2_000),
    skipScan: values['no-scan'] ?? false,
    onProgress: progressOnStderr('bench sst'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const l = result.pushLatencyUs, t = result.rawTcpOneWayUs;
  process.stdout.write(
    `SST push latency (${result.members} members): p50 ${l.p50} µs, p99 ${l.p99} µs over ${l.samples} samples\n` +
    `plain TCP one-way (two Node processes):  p50 ${t.p50} µs, p99 ${t.p99} µs\n` +
    `push / raw TCP at p50: ${result.pushOverRawTcpP50}\n`);
  if (result.scanNs) {
    process.stdout.write('\nkernel scans, ns per call (wasm / js):\n');
    for (const [kernel, byRows] of Object.entries(result.scanNs)) {
      const cells = Object.entries(byRows).map(([rows, r]) => `${rows} rows ${r.wasmNs.toFixed(0)}/${r.jsNs.toFixed(0)}`);
      process.stdout.write(`  ${kernel.padEnd(16)} ${cells.join('   ')}\n`);
    }
  }
}

async function benchRdmc(argv: string[]): Promise<void> {
  const values = cliArgs('bench rdmc', () => parseArgs({
    args: argv,
    options: {
      members: { type: 'string' }, size: { type: 'string' }, algorithm: { type: 'string' }, 'block-size': { type: 'string' },
      netns: { type: 'boolean' }, rate: { type: 'string' }, repeats: { type: 'string' }, 'tcp-baseline': { type: 'boolean' }, json: { type: 'boolean' },
    },
  }).values);
  if (values.rate && !values.netns) throw new ConfigError('--rate caps the links of an emulated network: add --netns (needs root)');
  const { runRdmcBench } = await import('../../bench/rdmc.js');
  const { parseAlgorithm, algorithmName } = await import('../rdmc/schedule.js');
  const result = await runRdmcBench({
    members: positiveInt(values.members, 'members', 2),
    bytes: values.size ? parseBytes(values.size, '--size') : 256 * 1024 * 1024,
    algorithm: algorithmName(parseAlgorithm(values.algorithm ?? 'binomial')),
    blockBytes: values['block-size'] ? parseBytes(values['block-size'], '--block-size') : 1024 * 1024,
    repeats: positiveInt(values.repeats, 'repeats', 3),
    netns: values.netns ? { rate: values.rate ?? null } : null,
    tcpBaseline: values['tcp-baseline'] ?? false,
    onProgress: progressOnStderr('bench rdmc'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(`${result.algorithm}, ${result.members} members, ${formatBytes(result.bytes)} in ${formatBytes(result.blockSize)} blocks (${result.network}): ` +
    `${result.seconds} s per message, ${result.gbytesPerSec} GB/s to each receiver\n`);
  if (result.tcpGbytesPerSec !== undefined) process.stdout.write(`plain TCP stream: ${result.tcpGbytesPerSec} GB/s; RDMC / TCP = ${result.ratioToTcp}\n`);
}
