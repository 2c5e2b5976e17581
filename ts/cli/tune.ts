// `squall tune`: which RDMC block size suits this network? Sweeps block sizes (16 KiB to 16 MiB by
// default) for each schedule over real member processes — on loopback, or in an emulated network of
// capped links with --netns --rate — prints a table, writes DIR/tune.csv and DIR/tune.svg (throughput
// against block size), and recommends a block size for the binomial pipeline.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { median } from '../../bench/stats.js';
import { timeRdmc, withNetwork } from '../../bench/rdmc.js';
import { toCsv } from '../charts/csv.js';
import { lineChart } from '../charts/svg.js';
import { ConfigError } from '../errors.js';
import { MAX_BLOCKS, algorithmName, blockCount, type AlgorithmName } from '../rdmc/schedule.js';
import { defineCommand, parseCommand } from './args.js';
import { TITLES, parseAlgorithmList } from './model.js';
import { progressOnStderr } from './progress.js';
import { formatBytes, parseBytes, parsePositiveInt } from './units.js';

export const TUNE_COMMAND = defineCommand({
  command: 'tune',
  usage: '--members N --size SIZE [options]',
  about: `Which RDMC block size suits this network? Sweeps block sizes for each schedule over real member
processes, prints a table, writes DIR/tune.csv and DIR/tune.svg, and recommends a block size for the
binomial pipeline.`,
  options: {
    members: { type: 'string', value: 'N', help: 'group size, sender included (default 4)' },
    size: { type: 'string', value: 'SIZE', help: 'message size, e.g. 64MiB, 256MiB, 1GiB (default 256MiB)' },
    netns: {
      type: 'boolean',
      help: 'run each member in its own network namespace (root only); without it\nthe members talk over loopback',
    },
    rate: { type: 'string', value: 'RATE', help: 'with --netns: cap every link at RATE each way, e.g. 1gbit' },
    'block-sizes': {
      type: 'string', value: 'LIST', help: 'comma-separated sizes (default 16KiB,64KiB,256KiB,1MiB,4MiB,16MiB)',
    },
    algorithms: { type: 'string', value: 'LIST', help: 'all, or some of binomial,chain,tree,sequential (default all)' },
    repeats: {
      type: 'string', value: 'N', help: 'timed messages per point after one warm-up; the median counts (default 2)',
    },
    out: { type: 'string', value: 'DIR', help: 'where tune.csv and tune.svg go (default ./squall-results)' },
    json: { type: 'boolean', help: 'print {parameters, rows, recommendation} as JSON' },
  },
});

const DEFAULT_BLOCKS = ['16KiB', '64KiB', '256KiB', '1MiB', '4MiB', '16MiB'];
/** Block sizes within this fraction of the best throughput count as equally good; the smallest wins. */
const GOOD_ENOUGH = 0.03;

export interface TuneRow { algorithm: AlgorithmName; blockSize: number; seconds: number; gbytesPerSec: number }

/** The smallest block size within GOOD_ENOUGH of the best binomial-pipeline throughput. */
export function recommend(rows: readonly TuneRow[]): TuneRow | null {
  const candidates = rows.filter((r) => r.algorithm === 'binomial');
  if (candidates.length === 0) return null;
  const best = Math.max(...candidates.map((r) => r.gbytesPerSec));
  const goodEnough = candidates.filter((r) => r.gbytesPerSec >= best * (1 - GOOD_ENOUGH));
  return goodEnough.sort((a, b) => a.blockSize - b.blockSize)[0]!;
}

export async function run(argv: string[]): Promise<void> {
  const values = parseCommand(TUNE_COMMAND, argv);
  if (values === null) return;
  if (values.rate && !values.netns) {
    throw new ConfigError('--rate caps the links of an emulated network: add --netns (needs root)');
  }
  const members = parsePositiveInt(values.members, 'members', 4);
  if (members < 2) throw new ConfigError('--members must be at least 2 (a sender and a receiver)');
  const bytes = parseBytes(values.size ?? '256MiB', 'size');
  const repeats = parsePositiveInt(values.repeats, 'repeats', 2);
  const algorithms = parseAlgorithmList(values.algorithms).map(algorithmName);
  const blockSizes = (values['block-sizes']?.split(',') ?? DEFAULT_BLOCKS).map((s) =>
    parseBytes(s.trim(), 'block-sizes'));
  const usable = blockSizes.filter((b) => blockCount(bytes, b) <= MAX_BLOCKS);
  if (usable.length < blockSizes.length) {
    throw new ConfigError(
      `${formatBytes(bytes)} in ${formatBytes(Math.min(...blockSizes))} blocks is more than ${MAX_BLOCKS} blocks: ` +
        `drop the smallest block sizes`);
  }
  const outDir = resolve(values.out ?? 'squall-results');
  const progress = progressOnStderr('tune');
  const netns = values.netns ? { rate: values.rate ?? null } : null;
  const network = netns ? `netns, ${netns.rate ? `${netns.rate} links` : 'uncapped'}` : 'loopback';

  const rows: TuneRow[] = [];
  const total = algorithms.length * blockSizes.length;
  await withNetwork(members, netns, progress, async (net) => {
    for (const algorithm of algorithms) {
      for (const blockBytes of blockSizes) {
        const step = `[${rows.length + 1}/${total}]`;
        const samples = await timeRdmc(net, {
          members, bytes, algorithm, blockBytes, repeats, onProgress: (m) => progress(`${step} ${m}`),
        });
        const seconds = median(samples);
        const row = {
          algorithm, blockSize: blockBytes, seconds: Number(seconds.toFixed(4)),
          gbytesPerSec: Number((bytes / seconds / 1e9).toFixed(4)),
        };
        rows.push(row);
        progress(`${step} ${TITLES[algorithm] ?? algorithm}, ${formatBytes(blockBytes)} blocks: ` +
          `${row.gbytesPerSec} GB/s to each receiver`);
      }
    }
  });
  const best = recommend(rows);

  progress(`writing the CSV and the chart in ${outDir}`);
  mkdirSync(outDir, { recursive: true });
  const csvPath = join(outDir, 'tune.csv');
  const svgPath = join(outDir, 'tune.svg');
  writeFileSync(csvPath, toCsv(rows.map((r) => ({ ...r, members, bytes, network }))));
  writeFileSync(svgPath, lineChart({
    title: `squall tune: ${members} members, ${formatBytes(bytes)} messages, ${network}`,
    xLabel: 'block size', yLabel: 'GB/s to each receiver', xLog: true, xFormat: formatBytes,
    series: algorithms.map((a) => ({
      name: TITLES[a] ?? a,
      points: rows.filter((r) => r.algorithm === a).map((r) => [r.blockSize, r.gbytesPerSec] as [number, number]),
    })),
    ...(best ? { mark: { x: best.blockSize, y: best.gbytesPerSec,
      label: `recommended: ${TITLES[best.algorithm] ?? best.algorithm}, ${formatBytes(best.blockSize)}` } } : {}),
  }));

  const recommendation = best
    ? { algorithm: best.algorithm, blockSize: best.blockSize, gbytesPerSec: best.gbytesPerSec } : null;
  if (values.json) {
    const parameters = { members, bytes, network, repeats, algorithms, blockSizes };
    process.stdout.write(JSON.stringify({ parameters, rows, recommendation }) + '\n');
    progress(`wrote ${csvPath} and ${svgPath}`);
    return;
  }
  const lines = [
    `squall tune: ${members} members, ${formatBytes(bytes)} messages, ${network}; GB/s to each receiver`, '',
    `${'block'.padStart(9)}  ${algorithms.map((a) => (TITLES[a] ?? a).padStart(18)).join('')}`];
  for (const b of blockSizes) {
    const cells = algorithms.map((a) => {
      const row = rows.find((r) => r.algorithm === a && r.blockSize === b);
      return String(row?.gbytesPerSec ?? '-').padStart(18);
    });
    lines.push(`${formatBytes(b).padStart(9)}  ${cells.join('')}`);
  }
  lines.push('');
  lines.push(best
    ? `recommended: blockBytes ${best.blockSize} (${formatBytes(best.blockSize)}) — the binomial pipeline's smallest ` +
      `block size within ${GOOD_ENOUGH * 100}% of its best, ${best.gbytesPerSec} GB/s`
    : 'no recommendation: include the binomial pipeline in --algorithms');
  lines.push(`wrote ${csvPath}`, `wrote ${svgPath}`);
  process.stdout.write(lines.join('\n') + '\n');
}
