// `squall bench <what>`: benchmarks that print the figures their issue names, as JSON with --json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { toCsv, type CsvValue } from '../charts/csv.js';
import { lineChart } from '../charts/svg.js';
import { ConfigError } from '../errors.js';
import { fabricChoiceFromFlags, resolveFabricChoice, type FabricChoice } from '../fabric/choice.js';
import { checkFabricUsable, fabricLabel } from '../fabric/native.js';
import { cliArgs } from './args.js';
import { formatBytes, parseBytes, parseNonNegative } from './units.js';
import { progressOnStderr } from './progress.js';
import type { MulticastBenchResult } from '../../bench/multicast.js'; // types only: the benchmark loads when run

const USAGE = `usage:
  squall bench sst [--members N] [--samples N] [--warmup N] [--no-scan] [--under-load] [--json]
      --under-load: the same ping-pong again while the members also flood a multicast shard with 10KiB
      messages and send 256MiB RDMC messages over the same connections (pushLatencyUnderLoadUs)
  squall bench rdmc --members N --size SIZE --algorithm A [--block-size SIZE] [--netns --rate RATE]
                    [--repeats N] [--tcp-baseline] [--json]
      A: binomial (default), chain, tree, sequential; SIZE like 64MiB; RATE like 1gbit (--netns needs root)
  squall bench multicast [--members N] [--size SIZE | --sizes LIST] [--seconds T] [--senders all|one]
                         [--window W] [--no-latency] [--out DIR] [--json]
      ordered deliveries per second per member (the median member) while the senders flood, then the
      latency (send to delivery at the last member) at a tenth of that rate. Defaults: 3 members, 1KiB,
      5 s, all send, window 256 slots per sender (fewer above 16KiB: at most 4MiB in flight per sender).
      --sizes 1KiB,4KiB,10KiB runs each size and writes DIR/multicast.csv and DIR/multicast.svg (DIR
      defaults to ./squall-results).
  squall bench viewchange [--members N | --members 3,5,7] [--runs N] [--rate R] [--suspicion MS] [--out DIR] [--json]
      SIGKILLs one member of a loaded group: detectMs (kill to every survivor suspecting it) and installMs
      (then to the next view installed everywhere), medians over --runs (default 5) fresh groups. Defaults:
      5 members, 1,000 messages/s from each, suspicion 300 ms. A list of sizes writes DIR/viewchange.csv and
      DIR/viewchange.svg.
  squall bench join [--members N] [--state SIZE | --state LIST] [--runs N] [--out DIR] [--json]
      a new member joins a group whose replicated KeyValueStore holds SIZE: joinMs (Group.join called to
      resolved, the state restored) and mbytesPerSec, medians over --runs (default 3) fresh groups.
      Defaults: 3 members, 100MiB. A list (--state 1MiB,10MiB,100MiB) writes DIR/join.csv and DIR/join.svg.
  every benchmark also takes --fabric tcp|libfabric [--provider P]: the members' native backend (default
      SQUALL_FABRIC, else tcp). libfabric's provider defaults to tcp; 'verbs' on RDMA hardware, 'shm' on one
      machine; P+msg for messages instead of one-sided writes. Results name the mode (docs/rdma.md).
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
    case 'multicast': return benchMulticast(rest);
    case 'viewchange': return benchViewChange(rest);
    case 'join': return benchJoin(rest);
    default:
      throw new ConfigError(`unknown benchmark '${what ?? ''}'; available: sst, rdmc, multicast, viewchange, join`);
  }
}

const FABRIC_FLAGS = { fabric: { type: 'string' }, provider: { type: 'string' } } as const;

/** --fabric/--provider, else the environment; fails here (not in every child) when it cannot work. */
function fabricOf(values: { fabric?: string | undefined; provider?: string | undefined }): FabricChoice {
  const choice = resolveFabricChoice(fabricChoiceFromFlags(values.fabric, values.provider));
  checkFabricUsable(choice);
  return choice;
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
      json: { type: 'boolean' }, 'no-scan': { type: 'boolean' }, 'under-load': { type: 'boolean' }, ...FABRIC_FLAGS,
    },
  }).values);
  const members = positiveInt(values.members, 'members', 3);
  if (members < 2) throw new ConfigError('--members must be at least 2 (a ping-pong needs two members)');
  const fabric = fabricOf(values);
  const { runSstBench } = await import('../../bench/sst.js');
  const result = await runSstBench({
    members, fabric,
    samples: positiveInt(values.samples, 'samples', 20_000),
    warmup: positiveInt(values.warmup, 'warmup', 2_000),
    skipScan: values['no-scan'] ?? false,
    underLoad: values['under-load'] ?? false,
    onProgress: progressOnStderr('bench sst'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const l = result.pushLatencyUs, t = result.rawTcpOneWayUs;
  process.stdout.write(
    `SST push latency (${result.members} members, fabric ${result.fabric}): p50 ${l.p50} µs, p99 ${l.p99} µs over ${l.samples} samples\n` +
    `plain TCP one-way (two Node processes):  p50 ${t.p50} µs, p99 ${t.p99} µs\n` +
    `push / raw TCP at p50: ${result.pushOverRawTcpP50}\n`);
  if (result.pushLatencyUnderLoadUs && result.load) {
    const u = result.pushLatencyUnderLoadUs, f = result.load;
    process.stdout.write(
      `SST push latency under load: p50 ${u.p50} µs, p99 ${u.p99} µs over ${u.samples} samples ` +
      `(beside ${formatBytes(f.multicastBytes)} multicasts and ${formatBytes(f.rdmcBytes)} RDMC messages on the same connections: ` +
      `${f.multicastSent} sent, ${f.multicastDeliveredPerMember} delivered per member, ${f.rdmcMessages} RDMC messages in ${f.seconds} s; ${f.suspicions} suspicions)\n`);
  }
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
      ...FABRIC_FLAGS,
    },
  }).values);
  if (values.rate && !values.netns) throw new ConfigError('--rate caps the links of an emulated network: add --netns (needs root)');
  const fabric = fabricOf(values);
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
    fabric,
    onProgress: progressOnStderr('bench rdmc'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(`${result.algorithm}, ${result.members} members, ${formatBytes(result.bytes)} in ${formatBytes(result.blockSize)} blocks (${result.network}, fabric ${result.fabric}): ` +
    `${result.seconds} s per message, ${result.gbytesPerSec} GB/s to each receiver\n`);
  if (result.tcpGbytesPerSec !== undefined) process.stdout.write(`plain TCP stream: ${result.tcpGbytesPerSec} GB/s; RDMC / TCP = ${result.ratioToTcp}\n`);
}

async function benchMulticast(argv: string[]): Promise<void> {
  const values = cliArgs('bench multicast', () => parseArgs({
    args: argv,
    options: {
      members: { type: 'string' }, size: { type: 'string' }, sizes: { type: 'string' }, seconds: { type: 'string' },
      senders: { type: 'string' }, window: { type: 'string' }, 'no-latency': { type: 'boolean' }, out: { type: 'string' },
      json: { type: 'boolean' }, ...FABRIC_FLAGS,
    },
  }).values);
  if (values.size && values.sizes) throw new ConfigError('give --size (one run) or --sizes (a sweep), not both');
  if (values.out && !values.sizes) throw new ConfigError('--out is where a --sizes sweep writes its CSV and chart: add --sizes, or drop --out');
  const senders = values.senders ?? 'all';
  if (senders !== 'all' && senders !== 'one') throw new ConfigError(`--senders must be 'all' or 'one', got '${senders}'`);
  const seconds = parseNonNegative(values.seconds, 'seconds', 5);
  if (seconds <= 0) throw new ConfigError(`--seconds must be above 0, got '${values.seconds}'`);
  const options = {
    members: positiveInt(values.members, 'members', 3),
    seconds, senders: senders as 'all' | 'one',
    ...(values.window !== undefined ? { window: positiveInt(values.window, 'window', 0) } : {}),
    skipLatency: values['no-latency'] ?? false,
    fabric: fabricOf(values),
    onProgress: progressOnStderr('bench multicast'),
  };
  const bench = await import('../../bench/multicast.js');
  if (values.sizes) {
    const sizes = values.sizes.split(',').map((s) => parseBytes(s.trim(), 'sizes'));
    for (const bytes of sizes) bench.checkOptions({ ...options, bytes, window: options.window ?? bench.defaultWindow(bytes) });
    const rows = await bench.runMulticastSweep(options, sizes);
    const written = writeMulticastSweep(rows, values.out ?? 'squall-results');
    if (values.json) {
      process.stdout.write(JSON.stringify({ members: options.members, fabric: fabricLabel(options.fabric), seconds, senders, rows, ...written }) + '\n');
      return;
    }
    for (const r of rows) process.stdout.write(describeMulticast(r));
    process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
    return;
  }
  const result = await bench.runMulticastBench({ ...options, bytes: values.size ? parseBytes(values.size, 'size') : 1024 });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(describeMulticast(result));
}

function describeMulticast(r: MulticastBenchResult): string {
  const n = (v: number) => v.toLocaleString('en-US');
  const lines = [
    `ordered multicast: ${r.members} members (fabric ${r.fabric}), ${r.senders === 'all' ? 'all send' : 'one sends'}, ${formatBytes(r.bytes)} messages, window ${r.window}, ${r.seconds} s`,
    `  per member (median): ${n(r.perNode.msgsPerSec)} deliveries/s, ${r.perNode.mbytesPerSec} MB/s` +
      `  [${r.perMember.map((m) => `member ${m.id}: ${n(m.msgsPerSec)}/s`).join(', ')}]`,
  ];
  if (r.latencyUs.samples > 0) {
    lines.push(`  latency at ${n(r.latencyUs.ratePerSec)} msgs/s (a tenth of the peak), send to delivery at the last member: ` +
      `p50 ${r.latencyUs.p50} µs, p99 ${r.latencyUs.p99} µs over ${n(r.latencyUs.samples)} messages`);
  }
  lines.push(`  delivery order: ${r.hashesAgree ? 'the same at every member' : 'MEMBERS DISAGREE (a bug: please report it)'}`);
  return lines.join('\n') + '\n';
}

/** The sweep's CSV and chart (deliveries and MB/s per member against message size) in `dir`. */
async function benchViewChange(argv: string[]): Promise<void> {
  const values = cliArgs('bench viewchange', () => parseArgs({
    args: argv,
    options: {
      members: { type: 'string' }, runs: { type: 'string' }, rate: { type: 'string' }, suspicion: { type: 'string' },
      out: { type: 'string' }, json: { type: 'boolean' }, ...FABRIC_FLAGS,
    },
  }).values);
  const sizes = (values.members ?? '5').split(',').map((m) => positiveInt(m.trim(), 'members', 5));
  for (const n of sizes) if (n < 3) throw new ConfigError(`--members must be at least 3 (a majority must survive the kill), got ${n}`);
  if (values.out && sizes.length < 2) throw new ConfigError('--out is where a sweep (--members 3,5,7) writes its CSV and chart');
  const options = {
    runs: positiveInt(values.runs, 'runs', 5),
    ratePerSec: positiveInt(values.rate, 'rate', 1000),
    suspicionTimeoutMs: positiveInt(values.suspicion, 'suspicion', 300),
    fabric: fabricOf(values),
    onProgress: progressOnStderr('bench viewchange'),
  };
  const { runViewChangeBench } = await import('../../bench/viewchange.js');
  const results = [];
  for (const members of sizes) results.push(await runViewChangeBench({ ...options, members }));
  const written = sizes.length < 2 ? null : writeSweep(values.out, 'viewchange',
    results.map((r) => ({ members: r.members, detectMs: r.detectMs, installMs: r.installMs, runs: r.runs.length })), {
      title: `squall bench viewchange: one member SIGKILLed under load (median of ${options.runs})`,
      xLabel: 'members', yLabel: 'milliseconds',
      series: [
        { name: 'detectMs', points: results.map((r) => [r.members, r.detectMs]) },
        { name: 'installMs', points: results.map((r) => [r.members, r.installMs]) },
      ],
    });
  if (values.json) {
    process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : { rows: results, ...written }) + '\n');
    return;
  }
  for (const r of results) {
    process.stdout.write(`view change: ${r.members} members (fabric ${r.fabric}), member ${r.members - 1} SIGKILLed under ${r.ratePerSec} msgs/s per member\n` +
      `  detectMs ${r.detectMs} (median), installMs ${r.installMs} (median) over ${r.runs.length} runs; suspicion timeout ${r.suspicionTimeoutMs} ms\n` +
      `  runs: ${r.runs.map((x) => `${x.detectMs}/${x.installMs}${x.hashesAgree ? '' : ' (hashes DISAGREE)'}`).join(', ')}\n`);
  }
  if (written) process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
}

async function benchJoin(argv: string[]): Promise<void> {
  const values = cliArgs('bench join', () => parseArgs({
    args: argv,
    options: { members: { type: 'string' }, state: { type: 'string' }, runs: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, ...FABRIC_FLAGS },
  }).values);
  const members = positiveInt(values.members, 'members', 3);
  const states = (values.state ?? '100MiB').split(',').map((t) => parseBytes(t.trim(), 'state', 0));
  if (values.out && states.length < 2) throw new ConfigError('--out is where a sweep (--state 1MiB,10MiB,100MiB) writes its CSV and chart');
  const runs = positiveInt(values.runs, 'runs', 3);
  const fabric = fabricOf(values);
  const onProgress = progressOnStderr('bench join');
  const { runJoinBench } = await import('../../bench/join.js');
  const results = [];
  for (const stateBytes of states) results.push(await runJoinBench({ members, stateBytes, runs, fabric, onProgress }));
  const written = states.length < 2 ? null : writeSweep(values.out, 'join',
    results.map((r) => ({ members: r.members, stateBytes: r.stateBytes, joinMs: r.joinMs, mbytesPerSec: r.mbytesPerSec, runs: r.runs.length })), {
      title: `squall bench join: a member joins ${members} and catches up the state (median of ${runs})`,
      xLabel: 'state (MiB)', yLabel: 'MB/s', series: [{ name: 'mbytesPerSec', points: results.map((r) => [r.stateBytes / (1 << 20), r.mbytesPerSec]) }],
    });
  if (values.json) {
    process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : { rows: results, ...written }) + '\n');
    return;
  }
  for (const r of results) {
    process.stdout.write(`join: a member joins ${r.members} (fabric ${r.fabric}) holding ${formatBytes(r.stateBytes)}\n` +
      `  joinMs ${r.joinMs} (median), ${r.mbytesPerSec} MB/s over ${r.runs.length} runs: ${r.runs.map((x) => `${x.joinMs}${x.storesAgree ? '' : ' (stores DISAGREE)'}`).join(', ')}\n`);
  }
  if (written) process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
}

/** A sweep's rows as DIR/NAME.csv and its chart as DIR/NAME.svg (DIR defaults to ./squall-results). */
function writeSweep(dir: string | undefined, name: string, rows: Array<Record<string, CsvValue>>, chart: Parameters<typeof lineChart>[0]): { csv: string; svg: string } {
  const outDir = resolve(dir ?? 'squall-results');
  mkdirSync(outDir, { recursive: true });
  const written = { csv: join(outDir, `${name}.csv`), svg: join(outDir, `${name}.svg`) };
  writeFileSync(written.csv, toCsv(rows));
  writeFileSync(written.svg, lineChart(chart));
  return written;
}

function writeMulticastSweep(rows: readonly MulticastBenchResult[], dir: string): { csv: string; svg: string } {
  const outDir = resolve(dir);
  mkdirSync(outDir, { recursive: true });
  const csv = join(outDir, 'multicast.csv');
  const svg = join(outDir, 'multicast.svg');
  writeFileSync(csv, toCsv(rows.map((r) => ({
    members: r.members, senders: r.senders, window: r.window, bytes: r.bytes, seconds: r.seconds,
    msgsPerSec: r.perNode.msgsPerSec, mbytesPerSec: r.perNode.mbytesPerSec,
    latencyP50Us: r.latencyUs.p50, latencyP99Us: r.latencyUs.p99, latencyRatePerSec: r.latencyUs.ratePerSec, hashesAgree: r.hashesAgree,
  }))));
  const first = rows[0]!;
  const windows = [...new Set(rows.map((r) => r.window))];
  writeFileSync(svg, lineChart({
    title: `squall bench multicast: ${first.members} members, ${first.senders === 'all' ? 'all send' : 'one sends'}, ` +
      (windows.length === 1 ? `window ${windows[0]}` : `window ${rows.map((r) => r.window).join('/')}`),
    xLabel: 'message size', yLabel: 'per member (median)', xLog: true, yLog: true, xFormat: formatBytes,
    series: [
      { name: 'thousand deliveries/s', points: rows.map((r) => [r.bytes, r.perNode.msgsPerSec / 1000]) },
      { name: 'MB/s', points: rows.map((r) => [r.bytes, r.perNode.mbytesPerSec]) },
    ],
  }));
  return { csv, svg };
}
