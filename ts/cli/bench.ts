// `squall bench <what>`: benchmarks that print the figures their issue names, as JSON with --json.

import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { progressOnStderr } from './progress.js';

export async function run(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  switch (what) {
    case 'sst': return benchSst(rest);
    default:
      throw new ConfigError(`unknown benchmark '${what ?? ''}'; available: sst`);
  }
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

async function benchSst(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      members: { type: 'string' }, samples: { type: 'string' }, warmup: { type: 'string' },
      json: { type: 'boolean' }, 'no-scan': { type: 'boolean' },
    },
  });
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
