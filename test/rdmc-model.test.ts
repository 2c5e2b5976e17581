// The discrete-event RDMC model (bench/rdmc-model.ts): sanity against what DESIGN.md §5 says the
// schedules should do, and against times worked out by hand.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_MODEL_TRANSFERS, modelTransfer, runModel } from '../bench/rdmc-model.js';
import { memberSweep, parseAlgorithmList, run as runModelCli } from '../ts/cli/model.js';
import { ConfigError } from '../ts/errors.js';
import { Algorithm, ALGORITHMS, algorithmName } from '../ts/rdmc/schedule.js';

const MiB = 2 ** 20;
const GBIT = 1e9 / 8;
const base = { bytes: 256 * MiB, blockBytes: MiB, linkBytesPerSec: GBIT, latencySec: 0 };
const oneCopy = base.bytes / base.linkBytesPerSec; // one message over one link

const close = (actual: number, expected: number, relative = 1e-9): boolean =>
  Math.abs(actual - expected) <= relative * expected;

test('zero latency, 2 members: every schedule takes exactly bytes / rate', () => {
  for (const algorithm of ALGORITHMS) {
    const { seconds } = modelTransfer({ ...base, algorithm, members: 2 });
    assert.ok(close(seconds, oneCopy), `${algorithmName(algorithm)}: ${seconds} s, expected ${oneCopy}`);
  }
  // a short last block costs only its own bytes
  const odd = modelTransfer({ ...base, bytes: 10.5 * MiB, algorithm: 'binomial', members: 2 });
  assert.ok(close(odd.seconds, (10.5 * MiB) / GBIT), `short last block: ${odd.seconds}`);
});

test('sequential send to n − 1 receivers is n − 1 times slower', () => {
  for (const n of [3, 8, 33, 100]) {
    const { seconds } = modelTransfer({ ...base, algorithm: 'sequential', members: n });
    assert.ok(close(seconds, (n - 1) * oneCopy, 1e-6), `n=${n}: ${seconds / oneCopy} copies`);
  }
});

test('the binomial pipeline stays nearly flat from 2 to 4096 members', () => {
  const at = (members: number) => modelTransfer({ ...base, latencySec: 5e-6, algorithm: 'binomial', members }).seconds;
  const two = at(2);
  for (const n of [3, 4, 16, 100, 1000, 1024, 4095, 4096]) {
    // k + L steps of 256 at most, and a little latency per step
    const seconds = at(n);
    assert.ok(
      seconds >= two && seconds <= two * (256 + 12) / 256 * 1.001, `n=${n}: ${seconds} s against ${two} s at n=2`);
  }
});

test('for small groups the chain is about as fast as the binomial pipeline; for large ones much slower', () => {
  for (const n of [3, 4, 5, 8]) {
    const chain = modelTransfer({ ...base, algorithm: 'chain', members: n }).seconds;
    const pipeline = modelTransfer({ ...base, algorithm: 'binomial', members: n }).seconds;
    assert.ok(Math.abs(chain - pipeline) / pipeline < 0.03, `n=${n}: chain ${chain}, pipeline ${pipeline}`);
  }
  const chain = modelTransfer({ ...base, algorithm: 'chain', members: 1024 }).seconds;
  const pipeline = modelTransfer({ ...base, algorithm: 'binomial', members: 1024 }).seconds;
  assert.ok(chain > 2 * pipeline, `n=1024: chain ${chain}, pipeline ${pipeline}`);
});

test('the binomial tree takes ⌈log2 n⌉ whole copies', () => {
  for (const [n, copies] of [[3, 2], [4, 2], [5, 3], [64, 6], [65, 7]] as const) {
    const { seconds } = modelTransfer({ ...base, algorithm: 'tree', members: n });
    assert.ok(close(seconds, copies * oneCopy, 1e-6), `n=${n}: ${seconds / oneCopy} copies, expected ${copies}`);
  }
});

test('with no latency and equal blocks no run takes longer than its steps, and small cases match by hand', () => {
  const unit = { bytes: 1, blockBytes: 1, linkBytesPerSec: 1, latencySec: 0 };
  for (const algorithm of ALGORITHMS) {
    for (const n of [2, 3, 5, 6, 7, 8, 12, 17, 31, 64]) {
      for (const k of [1, 2, 3, 10]) {
        const r = modelTransfer({ ...unit, bytes: k, algorithm, members: n });
        assert.ok(
          r.seconds <= r.steps,
          `${algorithmName(algorithm)} n=${n} k=${k}: ${r.seconds} time units over ${r.steps} steps`);
      }
    }
  }
  // chain of 3, 2 blocks: 0→1 b0 | 0→1 b1, 1→2 b0 | 1→2 b1
  assert.is(modelTransfer({ ...unit, bytes: 2, algorithm: 'chain', members: 3 }).seconds, 3);
  // the twin pair of n = 3 needs its extra step
  assert.is(modelTransfer({ ...unit, bytes: 3, algorithm: 'binomial', members: 3 }).seconds, 4);
});

test('latency delays every hop: a chain of n pays it n − 1 times for the first block', () => {
  const latencySec = 0.5;
  const unit = { bytes: 1, blockBytes: 1, linkBytesPerSec: 1, latencySec };
  // one block down a chain of 5: 4 hops of (1 + latency)
  assert.ok(close(modelTransfer({ ...unit, algorithm: 'chain', members: 5 }).seconds, 4 * 1.5));
  // two members: k blocks back to back, the last arriving latency after it ends
  assert.ok(close(modelTransfer({ ...unit, bytes: 7, algorithm: 'binomial', members: 2 }).seconds, 7 + latencySec));
});

test('runModel reports one row per (members, algorithm) with GB/s per receiver, and progress', async () => {
  const messages: string[] = [];
  const rows = await runModel({
    algorithms: ['binomial', 'sequential'], membersList: [2, 5], bytes: 64 * MiB, blockBytes: MiB, rate: GBIT,
    latencyUs: 0,
    onProgress: (m) => messages.push(m),
  });
  assert.equal(
    rows.map((r) => [r.algorithm, r.members]),
    [['binomial', 2], ['sequential', 2], ['binomial', 5], ['sequential', 5]]);
  for (const row of rows) {
    assert.ok(close(row.gbytesPerSec, (64 * MiB) / row.seconds / 1e9));
    assert.is(row.blocks, 64);
  }
  assert.ok(close(rows[0]!.gbytesPerSec, GBIT / 1e9), 'two members run at the link rate');
  assert.ok(close(rows[3]!.gbytesPerSec, GBIT / 1e9 / 4, 1e-6), 'sequential to 4 receivers: a quarter');
  // A model that took over a second (a stalled machine) adds a line naming the next one: not counted here.
  const perSize = messages.filter((m) => !/blocks: \w+$/.test(m));
  assert.equal(perSize, ['2 members, 64 blocks (1 of 2)', '5 members, 64 blocks (2 of 2)']);
});

test('bad parameters are ConfigErrors that say what to change', () => {
  const expectConfig = (options: Parameters<typeof modelTransfer>[0], pattern: RegExp) =>
    assert.throws(() => modelTransfer(options),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message), pattern.source);
  expectConfig({ ...base, algorithm: 'star', members: 4 }, /sequential, chain, tree, binomial/);
  expectConfig({ ...base, algorithm: 7, members: 4 }, /0\.\.3/);
  expectConfig({ ...base, algorithm: 'binomial', members: 1 }, /2 to 4096 members/);
  expectConfig({ ...base, algorithm: 'binomial', members: 4097 }, /2 to 4096 members/);
  expectConfig({ ...base, blockBytes: 16, algorithm: 'binomial', members: 4 }, /larger block size/);
  expectConfig({ ...base, bytes: 0, algorithm: 'binomial', members: 4 }, /message size/);
  expectConfig({ ...base, linkBytesPerSec: 0, algorithm: 'binomial', members: 4 }, /link rate/);
  expectConfig({ ...base, latencySec: -1, algorithm: 'binomial', members: 4 }, /latency/);
  const blocks = 2 ** 17;
  assert.ok(blocks * 4095 > MAX_MODEL_TRANSFERS);
  expectConfig(
    { ...base, bytes: blocks, blockBytes: 1, algorithm: Algorithm.binomialPipeline, members: 4096 },
    /larger blocks or fewer members/);
});

// ------------------------------------------------------------------------------- squall model rdmc

/** Runs the CLI module with stdout and stderr captured. */
async function cli(argv: string[]): Promise<{ stdout: string; stderr: string }> {
  const out = process.stdout.write.bind(process.stdout), err = process.stderr.write.bind(process.stderr);
  let stdout = '', stderr = '';
  process.stdout.write = ((chunk: string) => { stdout += chunk; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => { stderr += chunk; return true; }) as typeof process.stderr.write;
  try {
    await runModelCli(argv);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { stdout, stderr };
}

test('the sweep takes powers of two, a few sizes between them, and the maximum', () => {
  assert.equal(memberSweep(4096), [2, 3, 4, 5, 8, 12, 16, 32, 64, 100, 128, 256, 512, 1000, 1024, 2048, 3000, 4096]);
  assert.equal(memberSweep(2), [2]);
  assert.equal(memberSweep(20), [2, 3, 4, 5, 8, 12, 16, 20]);
  assert.equal(parseAlgorithmList(undefined), [0, 1, 2, 3]);
  assert.equal(parseAlgorithmList('all'), [0, 1, 2, 3]);
  assert.equal(parseAlgorithmList('binomial, seq,binomial-pipeline'), [3, 0]);
  assert.throws(() => parseAlgorithmList(' , '),
    (e: unknown) => e instanceof ConfigError && /'all' or a list/.test(e.message));
});

test('squall model rdmc: a table on stdout, progress on stderr, CSV and SVG in --out; --json prints the rows',
  async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-model-'));
  try {
    const table = await cli([
      'rdmc', '--max-members', '16', '--size', '16MiB', '--block-size', '1MiB', '--rate', '10gbit', '--out', dir,
    ]);
    assert.match(table.stdout, /16 MiB in 16 blocks of 1 MiB, 10 Gbit\/s links, 5 µs latency/);
    assert.match(table.stdout, /binomial pipeline/);
    assert.is(table.stdout.split('\n').filter((l) => /^\s+\d+\s/.test(l)).length, 7, 'rows for 2, 3, 4, 5, 8, 12, 16');
    assert.match(table.stderr, /16 members, 16 blocks \(7 of 7\)/);
    const csv = readFileSync(join(dir, 'rdmc-model.csv'), 'utf8').trim().split('\n');
    assert.is(csv[0], 'algorithm,members,blocks,steps,seconds,gbytesPerSec,bytes,blockBytes,rateBytesPerSec,latencyUs');
    assert.is(csv.length, 1 + 7 * 4);
    const svg = readFileSync(join(dir, 'rdmc-model.svg'), 'utf8');
    for (const name of ['sequential', 'chain', 'binomial tree', 'binomial pipeline']) {
      assert.ok(svg.includes(`data-series="${name}"`), name);
    }

    const json = await cli([
      'rdmc', '--max-members', '4', '--size', '4MiB', '--algorithms', 'binomial,sequential', '--latency-us', '0',
      '--json', '--out', dir,
    ]);
    const parsed = JSON.parse(json.stdout) as {
      parameters: { blocks: number; members: number[] }; rows: { algorithm: string; members: number; seconds: number }[]
    };
    assert.equal(parsed.parameters.members, [2, 3, 4]);
    assert.equal(
      parsed.rows.map((r) => `${r.algorithm}@${r.members}`),
      ['binomial@2', 'sequential@2', 'binomial@3', 'sequential@3', 'binomial@4', 'sequential@4']);
    assert.ok(close(parsed.rows[5]!.seconds, 3 * (4 * MiB) / GBIT, 1e-6), 'sequential to 3 receivers');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('squall model rdmc: bad flags say what to write', async () => {
  const expectConfig = async (argv: string[], pattern: RegExp) => {
    try {
      await cli(argv);
    } catch (e) {
      assert.ok(e instanceof ConfigError && pattern.test(e.message), `${argv.join(' ')}: ${(e as Error).message}`);
      return;
    }
    assert.unreachable(`${argv.join(' ')} was accepted`);
  };
  await expectConfig(['rdmc', '--max-members', '1'], /--max-members must be between 2 and 4096/);
  await expectConfig(['rdmc', '--max-members', 'many'], /--max-members must be a positive integer/);
  await expectConfig(['rdmc', '--size', '12XB'], /--size must be a size such as 16KiB/);
  await expectConfig(['rdmc', '--rate', '1g'], /--rate must be a rate such as 100mbit, 1gbit/);
  await expectConfig(['rdmc', '--algorithms', 'star'], /sequential, chain, tree, binomial/);
  await expectConfig(['rdmc', '--size', '1GiB', '--block-size', '1KiB'], /use a larger --block-size/);
  await expectConfig(
    ['rdmc', '--size', '256MiB', '--block-size', '4KiB'], /larger --block-size or a smaller --max-members/);
  await expectConfig(['rdmc', '--bogus'], /--bogus.*--help lists the options/);
  await expectConfig(['rdmc', '--latency-us', '-3'], /--latency-us/);
  await expectConfig(['tcp'], /unknown model 'tcp'; available: rdmc/);
});

test.run();
