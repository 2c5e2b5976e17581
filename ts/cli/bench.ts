// `squall bench <what>`: benchmarks that print the figures their issue names, as JSON with --json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toCsv, type CsvValue } from '../charts/csv.js';
import { lineChart } from '../charts/svg.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_SUSPICION_TIMEOUT_MS } from '../sst/config.js';
import { fabricLabel } from '../fabric/native.js';
import { defineCommand, helpText, parseCommand, synopsis, type CommandSpec } from './args.js';
import {
  ENGINE_OPTION, FABRIC_OPTIONS, JSON_OPTION, SUSPICION_OPTION, engineOf, fabricOf, suspicionOf,
} from './bench-options.js';
import { benchPersist, PERSIST_BENCH } from './bench-persist.js';
import { benchRestart, RESTART_BENCH } from './bench-restart.js';
import { formatBytes, parseBytes, parsePositiveInt } from './units.js';
import { parseIntegerFlag, parseNumberFlag } from '../validate.js';
import { resolveSecret } from '../group/credential.js';
import { progressOnStderr } from './progress.js';
import type { MulticastBenchResult } from '../../bench/multicast.js'; // types only: the benchmark loads when run
import {
  describeCalls, describeJoin, describeMulticast, describeRdmc, describeSst, describeViewChange,
} from './bench-describe.js';

/** One table per benchmark: `squall bench <name> --help` prints it, and its parser reads it. */
const BENCHMARKS = {
  sst: defineCommand({
    command: 'bench sst',
    usage: '[--members N] [--samples N] [--warmup N] [--no-scan] [--under-load] [--json]',
    about: `SST push latency (a write and push at one member to the predicate firing at another, round trip
halved) beside a plain TCP ping-pong between two Node processes, and the kernels' scan speed.`,
    options: {
      members: { type: 'string', value: 'N', help: 'SST member processes (default 3)' },
      samples: { type: 'string', value: 'N', help: 'timed round trips (default 20000)' },
      warmup: { type: 'string', value: 'N', help: 'round trips before timing (default 2000)' },
      'no-scan': { type: 'boolean', help: 'skip the kernel scan benchmark' },
      'under-load': {
        type: 'boolean',
        help: 'the same ping-pong again while the members also flood a multicast shard with\n' +
          '10KiB messages and send 256MiB RDMC messages over the same connections (pushLatencyUnderLoadUs)',
      },
      suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  rdmc: defineCommand({
    command: 'bench rdmc',
    usage: '--members N --size SIZE --algorithm A [options]',
    about: 'RDMC throughput to every receiver (the slowest receiver counts).',
    options: {
      members: { type: 'string', value: 'N', help: 'group size, sender included (default 2)' },
      size: { type: 'string', value: 'SIZE', help: 'message size, e.g. 64MiB (default 256MiB)' },
      algorithm: { type: 'string', value: 'A', help: 'binomial (default), chain, tree, sequential' },
      'block-size': { type: 'string', value: 'SIZE', help: 'block size (default 1MiB)' },
      netns: { type: 'boolean', help: 'each member in its own network namespace (root only)' },
      rate: { type: 'string', value: 'RATE', help: 'with --netns: cap every link at RATE, e.g. 1gbit' },
      repeats: { type: 'string', value: 'N', help: 'timed messages (default 3)' },
      'tcp-baseline': { type: 'boolean', help: 'also time a plain TCP stream of the same size' },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  multicast: defineCommand({
    command: 'bench multicast',
    usage: '[--members N] [--size SIZE | --sizes LIST] [--seconds T] [--senders all|one] [options]',
    about: `Ordered deliveries per second per member (the median member) while the senders flood, then the
latency (send to delivery at the last member) at a tenth of that rate. The result also counts the
suspicions and view changes any member reported (both 0 when no member was taken for failed); a sweep
that fails at one size keeps the sizes it finished. With SQUALL_SECRET (or SQUALL_SECRET_FILE) in the
environment the members hold the group's key and authenticate every connection ("authenticated": true).`,
    options: {
      members: { type: 'string', value: 'N', help: 'members, each a process, in one shard (default 3)' },
      size: { type: 'string', value: 'SIZE', help: 'message size (default 1KiB)' },
      sizes: {
        type: 'string', value: 'LIST',
        help: 'a sweep, e.g. 1KiB,4KiB,10KiB: writes DIR/multicast.csv and DIR/multicast.svg',
      },
      seconds: { type: 'string', value: 'T', help: 'seconds of flooding (default 5)' },
      senders: { type: 'string', value: 'all|one', help: 'every member sends, or only the first (default all)' },
      window: {
        type: 'string', value: 'W',
        help: 'slots per sender (default 256; fewer above 16KiB: at most 4MiB in flight per sender)',
      },
      'no-latency': { type: 'boolean', help: 'skip the latency run' },
      isolated: {
        type: 'string', value: 'N',
        help: 'messages of the isolated latency run: one sender, one in flight (default 1000; 0 skips it)',
      },
      'latency-rate': {
        type: 'string', value: 'R',
        help: 'messages per second, in total, of the latency run (default a tenth of the peak)',
      },
      engine: ENGINE_OPTION,
      'block-main': {
        type: 'string', value: 'MS',
        help: 'during the latency run block the last member\'s main thread MS ms every second (latency at the others)',
      },
      large: {
        type: 'string', value: 'SIZE',
        help: 'mix messages of SIZE (above the slot payload: they travel by RDMC) into the flood',
      },
      'large-every': { type: 'string', value: 'N', help: 'with --large: every Nth message is large (default 16)' },
      suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
      out: {
        type: 'string', value: 'DIR', help: 'where a --sizes sweep writes its CSV and chart (default ./squall-results)',
      },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  calls: defineCommand({
    command: 'bench calls',
    usage: '[--members N] [--in-flight N] [--seconds T] [--window W] [--persisted] [--no-multicast] [--json]',
    about: `Ordered calls of a replicated counter (ordered.inc(1)), each resolved with every member's reply:
calls per second per member (the median member) with N calls in flight at each member, and the latency
from the call to its last reply; beside it the multicast alone in the same group (as many messages
in flight per member, send to delivery): what the calls ride on.`,
    options: {
      members: { type: 'string', value: 'N', help: 'members, each a process, in one shard (default 3)' },
      'in-flight': { type: 'string', value: 'N', help: 'calls each member keeps waiting for replies (default 1)' },
      seconds: { type: 'string', value: 'T', help: 'seconds timed, after a half-second warm-up (default 5)' },
      window: { type: 'string', value: 'W', help: "slots per sender of the counter's subgroup (default 256)" },
      'no-multicast': { type: 'boolean', help: 'skip the multicast-alone latency' },
      persisted: {
        type: 'boolean', help: 'a persistent counter (logs in a temporary directory) and persisted.inc(1) calls: ' +
          'each resolves once durable at every member',
      },
      suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  viewchange: defineCommand({
    command: 'bench viewchange',
    usage: '[--members N | --members 3,5,7] [--runs N] [--rate R] [--suspicion MS] [options]',
    about: `SIGKILLs one member of a loaded group: detectMs (kill to every survivor suspecting it), commitMs (kill to
the leader committing the change) and installMs (detection to the next view installed everywhere), medians
over --runs fresh groups. --block-main MS holds member 1's main thread MS ms from 200 ms before the kill.`,
    options: {
      members: {
        type: 'string', value: 'N|LIST',
        help: 'group size (default 5); a list such as 3,5,7 writes DIR/viewchange.csv and .svg',
      },
      runs: { type: 'string', value: 'N', help: 'fresh groups per size (default 5)' },
      rate: { type: 'string', value: 'R', help: 'messages per second from each member (default 1000)' },
      suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
      engine: ENGINE_OPTION,
      'block-main': {
        type: 'string', value: 'MS',
        help: 'member 1\'s main thread is blocked MS ms (a long task) from 200 ms before the kill',
      },
      out: { type: 'string', value: 'DIR', help: 'where a sweep writes its CSV and chart (default ./squall-results)' },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  join: defineCommand({
    command: 'bench join',
    usage: '[--members N] [--state SIZE | --state LIST] [--runs N] [options]',
    about: `A new member joins a group whose replicated KeyValueStore holds SIZE: joinMs (Group.join called to
resolved, the state restored) and mbytesPerSec, medians over --runs fresh groups; streamMs and streamMBps
(the state's bytes on the way: its first record at the joiner to its last chunk checked) and stateMs
(the joiner awaiting the state to its object restored). With SQUALL_SECRET
(or SQUALL_SECRET_FILE) the join is authenticated; --contact-tls also encrypts its contact channel.`,
    options: {
      members: { type: 'string', value: 'N', help: 'members before the join (default 3)' },
      'contact-tls': {
        type: 'boolean', help: 'the configuration\'s contactTls: TLS 1.3 on the contact port (needs SQUALL_SECRET)',
      },
      state: {
        type: 'string', value: 'SIZE|LIST',
        help: 'state held (default 100MiB); a list such as 1MiB,10MiB,100MiB writes\nDIR/join.csv and DIR/join.svg',
      },
      runs: { type: 'string', value: 'N', help: 'fresh groups per size (default 3)' },
      suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
      out: { type: 'string', value: 'DIR', help: 'where a sweep writes its CSV and chart (default ./squall-results)' },
      json: JSON_OPTION,
      ...FABRIC_OPTIONS,
    },
  }),
  restart: RESTART_BENCH,
  persist: PERSIST_BENCH,
} satisfies Record<string, CommandSpec>;

/** `squall bench --help`: each benchmark's synopsis and what it measures, from the tables above. */
const BENCH_USAGE = `usage: squall bench <benchmark> [options]

benchmarks:
${Object.values(BENCHMARKS).map((b) => `  ${synopsis(b)}\n      ${b.about.replace(/\n/g, ' ')}`).join('\n')}

squall bench <benchmark> --help lists a benchmark's options; every one takes --fabric tcp|libfabric
[--provider P] (the members' native backend) and --json.
`;

/** The help of one benchmark (for tests and `squall help bench <name>`). */
export function benchHelp(name: string): string | undefined {
  return Object.hasOwn(BENCHMARKS, name) ? helpText(BENCHMARKS[name as keyof typeof BENCHMARKS]) : undefined;
}

export async function run(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
    process.stdout.write(BENCH_USAGE);
    return;
  }
  switch (what) {
    case 'sst': return benchSst(rest);
    case 'rdmc': return benchRdmc(rest);
    case 'multicast': return benchMulticast(rest);
    case 'calls': return benchCalls(rest);
    case 'viewchange': return benchViewChange(rest);
    case 'join': return benchJoin(rest);
    case 'persist': return benchPersist(rest);
    case 'restart': return benchRestart(rest);
    default:
      throw new ConfigError(
        `unknown benchmark '${what}'; available: ${Object.keys(BENCHMARKS).join(', ')} (squall bench --help)`);
  }
}

const positiveInt = parsePositiveInt;

async function benchSst(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.sst, argv);
  if (values === null) return;
  const members = positiveInt(values.members, 'members', 3);
  if (members < 2) throw new ConfigError('--members must be at least 2 (a ping-pong needs two members)');
  const fabric = fabricOf(values);
  const { runSstBench } = await import('../../bench/sst.js');
  const result = await runSstBench({
    members, fabric, ...suspicionOf(values),
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
  process.stdout.write(describeSst(result));
}

async function benchRdmc(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.rdmc, argv);
  if (values === null) return;
  if (values.rate && !values.netns) {
    throw new ConfigError('--rate caps the links of an emulated network: add --netns (needs root)');
  }
  const fabric = fabricOf(values);
  const { runRdmcBench } = await import('../../bench/rdmc.js');
  const { parseAlgorithm, algorithmName } = await import('../rdmc/schedule.js');
  const result = await runRdmcBench({
    members: positiveInt(values.members, 'members', 2),
    bytes: values.size ? parseBytes(values.size, 'size') : 256 * 1024 * 1024,
    algorithm: algorithmName(parseAlgorithm(values.algorithm ?? 'binomial')),
    blockBytes: values['block-size'] ? parseBytes(values['block-size'], 'block-size') : 1024 * 1024,
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
  process.stdout.write(describeRdmc(result));
}

async function benchMulticast(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.multicast, argv);
  if (values === null) return;
  if (values.size && values.sizes) throw new ConfigError('give --size (one run) or --sizes (a sweep), not both');
  if (values.out && !values.sizes) {
    throw new ConfigError('--out is where a --sizes sweep writes its CSV and chart: add --sizes, or drop --out');
  }
  const senders = values.senders ?? 'all';
  if (senders !== 'all' && senders !== 'one') {
    throw new ConfigError(`--senders must be 'all' or 'one', got '${senders}'`);
  }
  const seconds = parseNumberFlag(values.seconds, 'seconds', 0, 3600, 5, true);
  engineOf(values); // the member processes inherit it
  const options = {
    members: positiveInt(values.members, 'members', 3),
    seconds, senders: senders as 'all' | 'one',
    ...(values.window !== undefined ? { window: positiveInt(values.window, 'window', 0) } : {}),
    skipLatency: values['no-latency'] ?? false,
    ...(values.isolated !== undefined
      ? { isolatedSamples: parseIntegerFlag(values.isolated, 'isolated', 0, 1_000_000, 1000) } : {}),
    fabric: fabricOf(values),
    ...(values['latency-rate'] !== undefined
      ? { latencyRate: parseNumberFlag(values['latency-rate'], 'latency-rate', 0, 10_000_000, 1000, true) } : {}),
    ...(values['block-main'] !== undefined
      ? { blockMainMs: parseIntegerFlag(values['block-main'], 'block-main', 0, 999, 0) } : {}),
    ...(values.large !== undefined ? {
      large: { bytes: parseBytes(values.large, 'large'), every: positiveInt(values['large-every'], 'large-every', 16) },
    } : {}),
    ...suspicionOf(values),
    onProgress: progressOnStderr('bench multicast'),
  };
  if (values['large-every'] !== undefined && values.large === undefined) {
    throw new ConfigError('--large-every goes with --large SIZE');
  }
  const bench = await import('../../bench/multicast.js');
  if (values.sizes) {
    const sizes = values.sizes.split(',').map((s) => parseBytes(s.trim(), 'sizes'));
    for (const bytes of sizes) {
      bench.checkOptions({ ...options, bytes, window: options.window ?? bench.defaultWindow(bytes) });
    }
    const { rows, failed } = await bench.runMulticastSweep(options, sizes);
    const written: { csv?: string; svg?: string } = rows.length > 0
      ? writeMulticastSweep(rows, values.out ?? 'squall-results') : {};
    const failure = failed ? { failed: { bytes: failed.bytes, error: failed.error.message } } : {};
    if (values.json) {
      const fabric = fabricLabel(options.fabric);
      process.stdout.write(
        JSON.stringify({ members: options.members, fabric, seconds, senders, rows, ...written, ...failure }) + '\n');
    } else {
      for (const r of rows) process.stdout.write(describeMulticast(r));
      if (written.csv) process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
    }
    if (failed) throw failed.error; // after the finished sizes are out: the command fails with the reason
    return;
  }
  const result = await bench.runMulticastBench({
    ...options, bytes: values.size ? parseBytes(values.size, 'size') : 1024,
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(describeMulticast(result));
}

async function benchCalls(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.calls, argv);
  if (values === null) return;
  const { runCallsBench } = await import('../../bench/calls.js');
  const result = await runCallsBench({
    members: positiveInt(values.members, 'members', 3),
    inFlight: positiveInt(values['in-flight'], 'in-flight', 1),
    seconds: parseNumberFlag(values.seconds, 'seconds', 0, 3600, 5, true),
    ...(values.window !== undefined ? { window: positiveInt(values.window, 'window', 0) } : {}),
    skipPing: values['no-multicast'] ?? false, persisted: values.persisted ?? false,
    fabric: fabricOf(values), ...suspicionOf(values),
    onProgress: progressOnStderr('bench calls'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(describeCalls(result));
}

async function benchViewChange(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.viewchange, argv);
  if (values === null) return;
  const sizes = (values.members ?? '5').split(',').map((m) => positiveInt(m.trim(), 'members', 5));
  for (const n of sizes) {
    if (n < 3) throw new ConfigError(`--members must be at least 3 (a majority must survive the kill), got ${n}`);
  }
  if (values.out && sizes.length < 2) {
    throw new ConfigError('--out is where a sweep (--members 3,5,7) writes its CSV and chart');
  }
  const options = {
    runs: positiveInt(values.runs, 'runs', 5),
    ratePerSec: positiveInt(values.rate, 'rate', 1000),
    suspicionTimeoutMs: positiveInt(values.suspicion, 'suspicion', DEFAULT_SUSPICION_TIMEOUT_MS),
    fabric: fabricOf(values),
    engine: engineOf(values),
    blockMainMs: values['block-main'] === undefined ? 0 : positiveInt(values['block-main'], 'block-main', 0),
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
  for (const r of results) process.stdout.write(describeViewChange(r));
  if (written) process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
}

async function benchJoin(argv: string[]): Promise<void> {
  const values = parseCommand(BENCHMARKS.join, argv);
  if (values === null) return;
  const members = positiveInt(values.members, 'members', 3);
  const states = (values.state ?? '100MiB').split(',').map((t) => parseBytes(t.trim(), 'state', 0));
  if (values.out && states.length < 2) {
    throw new ConfigError('--out is where a sweep (--state 1MiB,10MiB,100MiB) writes its CSV and chart');
  }
  const runs = positiveInt(values.runs, 'runs', 3);
  const fabric = fabricOf(values);
  const onProgress = progressOnStderr('bench join');
  const { runJoinBench } = await import('../../bench/join.js');
  const results = [];
  const suspicion = suspicionOf(values);
  const contactTls = values['contact-tls'] === true;
  if (contactTls && resolveSecret({}) === null) {
    throw new ConfigError('--contact-tls needs the group\'s key in the environment: ' +
      'SQUALL_SECRET=$(squall keygen) squall bench join --contact-tls');
  }
  for (const stateBytes of states) {
    results.push(await runJoinBench({ members, stateBytes, runs, fabric, onProgress, contactTls, ...suspicion }));
  }
  const rows = results.map((r) => ({
    members: r.members, stateBytes: r.stateBytes, joinMs: r.joinMs, mbytesPerSec: r.mbytesPerSec,
    streamMs: r.streamMs, streamMBps: r.streamMBps, stateMs: r.stateMs, runs: r.runs.length,
  }));
  const written = states.length < 2 ? null : writeSweep(values.out, 'join', rows, {
    title: `squall bench join: a member joins ${members} and catches up the state (median of ${runs})`,
    xLabel: 'state (MiB)', yLabel: 'MB/s',
    series: [{ name: 'mbytesPerSec', points: results.map((r) => [r.stateBytes / (1 << 20), r.mbytesPerSec]) }],
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : { rows: results, ...written }) + '\n');
    return;
  }
  for (const r of results) process.stdout.write(describeJoin(r));
  if (written) process.stdout.write(`wrote ${written.csv}\nwrote ${written.svg}\n`);
}

/** A sweep's rows as DIR/NAME.csv and its chart as DIR/NAME.svg (DIR defaults to ./squall-results). */
function writeSweep(
  dir: string | undefined, name: string, rows: Array<Record<string, CsvValue>>, chart: Parameters<typeof lineChart>[0]
): { csv: string; svg: string } {
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
    latencyP50Us: r.latencyUs.p50, latencyP99Us: r.latencyUs.p99, latencyRatePerSec: r.latencyUs.ratePerSec,
    hashesAgree: r.hashesAgree,
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

