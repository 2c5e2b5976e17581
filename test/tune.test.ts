// squall tune: the recommendation rule, and the command end to end on loopback (small and quick).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { recommend, type TuneRow } from '../ts/cli/tune.js';

const cli = fileURLToPath(new URL('../ts/cli/main.js', import.meta.url));
const row = (algorithm: TuneRow['algorithm'], blockSize: number, gbytesPerSec: number): TuneRow => ({
  algorithm, blockSize, seconds: 1, gbytesPerSec,
});

test('tune: recommends the smallest binomial-pipeline block size within 3% of its best', () => {
  const rows = [
    row('binomial', 16384, 0.5), row('binomial', 65536, 0.98), row('binomial', 1 << 20, 1.0),
    row('binomial', 4 << 20, 0.99), row('sequential', 4096, 5),
  ];
  assert.equal(recommend(rows)?.blockSize, 65536);
  assert.is(recommend([row('chain', 65536, 1)]), null, 'nothing to recommend without the binomial pipeline');
});

test('tune: sweeps on loopback, prints a table, writes CSV and SVG, and recommends a block size', async () => {
  const out = mkdtempSync(join(tmpdir(), 'squall-tune-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath, [cli, 'tune', '--members', '3', '--size', '2MiB', '--block-sizes', '64KiB,256KiB',
      '--algorithms', 'binomial,sequential', '--repeats', '1', '--out', out, '--json'], { timeout: 120_000 });
    const result = JSON.parse(stdout) as { rows: TuneRow[]; recommendation: { blockSize: number } };
    assert.is(result.rows.length, 4);
    for (const r of result.rows) assert.ok(r.gbytesPerSec > 0 && r.seconds > 0, JSON.stringify(r));
    assert.ok([65536, 262144].includes(result.recommendation.blockSize));
    const csv = readFileSync(join(out, 'tune.csv'), 'utf8').trim().split('\n');
    assert.is(csv.length, 5, 'a header and four rows');
    const svg = readFileSync(join(out, 'tune.svg'), 'utf8');
    assert.match(svg, /^(<\?xml[^>]*>\s*)?<svg[\s\S]*<\/svg>\s*$/);
    assert.match(svg, /binomial pipeline/);
    assert.match(svg, /64 KiB/);
    const mark = /<g class="mark" data-x="(\d+)"[^>]*>[^]*?recommended: [^<]*, ([^<]+)<\/text>/.exec(svg);
    assert.ok(mark, 'the chart marks the recommendation');
    assert.is(Number(mark[1]), result.recommendation.blockSize);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('tune: bad flags get clear errors', async () => {
  const run = (args: string[]) => promisify(execFile)(process.execPath, [cli, 'tune', ...args]).then(() => '',
    (e: { stderr: string }) => e.stderr);
  assert.match(await run(['--rate', '1gbit']), /add --netns/);
  assert.match(await run(['--members', '1']), /at least 2/);
  assert.match(await run(['--size', 'lots']), /size/);
  assert.match(await run(['--bogus']), /Unknown option '--bogus'.*tune --help/);
});

test.run();
