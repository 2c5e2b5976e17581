// `squall model rdmc`: the discrete-event model of RDMC (bench/rdmc-model.ts) swept over group sizes, for
// each schedule. Prints a table of completion time and GB/s per receiver against the group size, writes
// DIR/rdmc-model.csv and DIR/rdmc-model.svg (completion time against members, log-log), and with --json
// prints {parameters, rows} to stdout instead of the table. Progress goes to stderr.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineCommand, parseCommand, synopsis } from './args.js';
import { toCsv } from '../charts/csv.js';
import { lineChart } from '../charts/svg.js';
import { ConfigError } from '../errors.js';
import {
  ALGORITHMS, MAX_MEMBERS, MIN_MEMBERS, algorithmName, blockCount, parseAlgorithm, validateGroup, type AlgorithmId,
} from '../rdmc/schedule.js';
import { MAX_MODEL_TRANSFERS, runModel } from '../../bench/rdmc-model.js';
import { progressOnStderr } from './progress.js';
import {
  formatBytes, formatRate, formatSeconds, parseBytes, parseNonNegative, parsePositiveInt, parseRate,
} from './units.js';

export const MODEL_RDMC_COMMAND = defineCommand({
  command: 'model rdmc',
  usage: '[options]',
  about: `Completion time of an RDMC transfer against group size, by discrete-event simulation, for each
schedule: a table, DIR/rdmc-model.csv and DIR/rdmc-model.svg.`,
  options: {
    'max-members': {
      type: 'string', value: 'N',
      help: 'largest group modelled, 2..4096 (default 4096); the sweep takes 2, 3, 4, 8,\n' +
        '16, … up to N, with a few sizes between powers of two',
    },
    size: { type: 'string', value: 'SIZE', help: 'message size, e.g. 16KiB, 1MiB, 256MiB, 1GiB (default 256MiB)' },
    'block-size': { type: 'string', value: 'SIZE', help: 'block size (default 1MiB)' },
    rate: {
      type: 'string', value: 'RATE',
      help: "every member's uplink and downlink, e.g. 100mbit, 1gbit, 10gbit (default 1gbit)",
    },
    'latency-us': {
      type: 'string', value: 'US', help: "delay from the end of a block's transmission to its arrival (default 5)",
    },
    algorithms: {
      type: 'string', value: 'LIST',
      help: 'all, or a comma-separated list of sequential, chain, tree, binomial (default all)',
    },
    out: {
      type: 'string', value: 'DIR', help: 'where rdmc-model.csv and rdmc-model.svg go (default ./squall-results)',
    },
    json: { type: 'boolean', help: 'print {parameters, rows} as JSON instead of the table' },
  },
});

/** `squall model --help`: the models there are. */
const MODEL_USAGE = `usage: squall model <model> [options]

models:
  ${synopsis(MODEL_RDMC_COMMAND)}
      ${MODEL_RDMC_COMMAND.about.split('\n')[0]}

squall model <model> --help lists a model's options.
`;

/** Long names for the table and the chart legend. */
export const TITLES: Record<string, string> = {
  sequential: 'sequential', chain: 'chain', tree: 'binomial tree', binomial: 'binomial pipeline',
};

/** GB/s with three significant digits, however small: sequential send to 4095 receivers is 3e-5. */
function formatRateGb(gbytesPerSec: number): string {
  return gbytesPerSec >= 0.01 ? gbytesPerSec.toFixed(3) : Number(gbytesPerSec.toPrecision(3)).toString();
}

/** Sizes between powers of two that the sweep adds: the twin rule of the binomial pipeline at work. */
const EXTRA_MEMBERS = [3, 5, 12, 100, 1000, 3000];

export async function run(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  switch (what) {
    case 'rdmc': return modelRdmc(rest);
    case undefined: case '--help': case '-h': case 'help':
      process.stdout.write(MODEL_USAGE);
      return;
    default:
      throw new ConfigError(`unknown model '${what}'; available: rdmc (squall model rdmc --help)`);
  }
}

/** The group sizes of the sweep: powers of two and EXTRA_MEMBERS up to `max`, and `max` itself. */
export function memberSweep(max: number): number[] {
  const sizes = new Set<number>([max]);
  for (let n = 2; n <= max; n *= 2) sizes.add(n);
  for (const n of EXTRA_MEMBERS) if (n <= max) sizes.add(n);
  return [...sizes].sort((a, b) => a - b);
}

/** 'all' or a comma-separated list of algorithm names, in the order given, without repeats. */
export function parseAlgorithmList(text: string | undefined): AlgorithmId[] {
  if (text === undefined || text.trim().toLowerCase() === 'all') return [...ALGORITHMS];
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) {
    throw new ConfigError(`--algorithms must be 'all' or a list such as binomial,sequential, got '${text}'`);
  }
  return [...new Set(names.map((name) => parseAlgorithm(name)))];
}

async function modelRdmc(argv: string[]): Promise<void> {
  const values = parseCommand(MODEL_RDMC_COMMAND, argv);
  if (values === null) return;
  const maxMembers = parsePositiveInt(values['max-members'], 'max-members', MAX_MEMBERS);
  if (maxMembers < MIN_MEMBERS || maxMembers > MAX_MEMBERS) {
    throw new ConfigError(
      `--max-members must be between ${MIN_MEMBERS} and ${MAX_MEMBERS}, got '${values['max-members']}'`);
  }
  const bytes = parseBytes(values.size ?? '256MiB', 'size');
  const blockBytes = parseBytes(values['block-size'] ?? '1MiB', 'block-size');
  const rate = parseRate(values.rate ?? '1gbit', 'rate');
  const latencyUs = parseNonNegative(values['latency-us'], 'latency-us', 5);
  const algorithms = parseAlgorithmList(values.algorithms);
  const outDir = resolve(values.out ?? 'squall-results');
  const blocks = blockCount(bytes, blockBytes);
  try {
    validateGroup(maxMembers, blocks);
  } catch (cause) {
    throw new ConfigError(
      `--size ${formatBytes(bytes)} in --block-size ${formatBytes(blockBytes)} blocks is ${blocks} blocks, more than ` +
        `524288 (2^19): use a larger --block-size`, { cause });
  }
  if (blocks * (maxMembers - 1) > MAX_MODEL_TRANSFERS) {
    throw new ConfigError(
      `modelling ${maxMembers} members × ${blocks} blocks takes more than ${MAX_MODEL_TRANSFERS} block transfers: ` +
        `use a larger --block-size or a smaller --max-members`);
  }
  const membersList = memberSweep(maxMembers);
  const progress = progressOnStderr('model rdmc');

  const rows = await runModel({ algorithms, membersList, bytes, blockBytes, rate, latencyUs, onProgress: progress });

  const parameters = {
    bytes, blockBytes, blocks, rateBytesPerSec: rate, latencyUs, algorithms: algorithms.map(algorithmName),
    members: membersList,
  };
  const description = `${formatBytes(bytes)} in ${blocks} blocks of ${formatBytes(blockBytes)}, ` +
    `${formatRate(rate)} links, ${latencyUs} µs latency`;
  mkdirSync(outDir, { recursive: true });
  const csvPath = join(outDir, 'rdmc-model.csv');
  const svgPath = join(outDir, 'rdmc-model.svg');
  writeFileSync(csvPath, toCsv(rows.map((r) => ({ ...r, bytes, blockBytes, rateBytesPerSec: rate, latencyUs }))));
  writeFileSync(svgPath, lineChart({
    title: `RDMC model: ${description}`,
    xLabel: 'members (sender included)', yLabel: 'completion time (s)',
    xLog: true, yLog: true,
    series: algorithms.map((a) => {
      const name = algorithmName(a);
      return {
        name: TITLES[name] ?? name,
        points: rows.filter((r) => r.algorithm === name).map((r) => [r.members, r.seconds] as [number, number]),
      };
    }),
  }));

  if (values.json) {
    process.stdout.write(JSON.stringify({ parameters, rows }) + '\n');
    progress(`wrote ${csvPath} and ${svgPath}`);
    return;
  }
  const names = algorithms.map(algorithmName);
  const cell = 25;
  const lines = [
    `RDMC model: ${description}`,
    'completion time, and GB/s delivered to each receiver',
    '',
    `${'members'.padStart(7)}  ${names.map((n) => (TITLES[n] ?? n).padEnd(cell)).join('')}`,
  ];
  for (const members of membersList) {
    const cells = names.map((name) => {
      const row = rows.find((r) => r.members === members && r.algorithm === name)!;
      const text = `${formatSeconds(row.seconds).padStart(9)}  ${formatRateGb(row.gbytesPerSec).padStart(7)} GB/s`;
      return text.padEnd(cell);
    });
    lines.push(`${String(members).padStart(7)}  ${cells.join('')}`);
  }
  lines.push('', `wrote ${csvPath}`, `wrote ${svgPath}`);
  process.stdout.write(lines.map((l) => l.trimEnd()).join('\n') + '\n');
}
