// Long-running commands report each phase on stderr while stdout keeps the result, and print that result
// for a reader in human units: squall sim (a loop of seeded runs) and squall bench sst (member processes
// started, timed, stopped). Small runs, no timing asserted: they pass on a busy machine.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCli } from './support/cli-runs.js';

const TIME = String.raw`[\d.]+ (µs|ms|s|min|h)`;

async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const run = startCli(args);
  const code = await run.exit;
  return { code, out: run.out, err: run.err };
}

/** The progress lines, stamp removed: "[sim    0.3s] 3 of 3 runs" → "3 of 3 runs". */
function progressLines(err: string, prefix: string): string[] {
  const stamp = new RegExp(String.raw`^\[${prefix} +[\d.]+s\] `);
  const lines = err.trimEnd().split('\n');
  for (const line of lines) assert.match(line, stamp, `every stderr line is a progress line: ${line}`);
  return lines.map((line) => line.replace(stamp, ''));
}

test('squall sim --runs 3: a progress line per run with the count and percent; the summary\'s time has a unit',
  async () => {
  const r = await cli(['sim', '--runs', '3', '--seed', '1']);
  assert.is(r.code, 0, r.err);
  const lines = progressLines(r.err, 'sim');
  assert.equal(lines, ['1 of 3 runs (33%), no violation', '2 of 3 runs (66%), no violation',
    '3 of 3 runs (100%), no violation']);
  assert.match(r.out, new RegExp(String.raw`^3 runs from seed 1: no violation \(.*\) in ${TIME}\n$`));
  const json = await cli(['sim', '--runs', '2', '--level', 'rules', '--json']);
  assert.is(json.code, 0, json.err);
  const parsed = JSON.parse(json.out) as { runs: number; seconds: number };
  assert.is(parsed.runs, 2);
  assert.type(parsed.seconds, 'number', '--json keeps raw numbers');
});

test('squall bench sst --members 2: stderr names each phase (start, ping-pong, stop, TCP); stdout in µs or ms',
  async () => {
  const r = await cli(['bench', 'sst', '--members', '2', '--samples', '300', '--warmup', '30', '--no-scan']);
  assert.is(r.code, 0, r.err);
  const lines = progressLines(r.err, 'bench sst');
  const phases = [
    /^starting 2 SST member processes \(fabric .+\)$/, /^SST ping-pong: 300 round trips \(\+30 warm-up\)$/,
    /^stopping the SST members$/, /^plain TCP ping-pong: 300 round trips \(\+30 warm-up\)$/,
  ];
  // In order; a slow phase may add "…: 1 s so far" lines after its announcement.
  let at = 0;
  for (const phase of phases) {
    const found = lines.findIndex((line, i) => i >= at && phase.test(line));
    assert.ok(found >= 0, `${phase} in order in:\n${lines.join('\n')}`);
    at = found + 1;
  }
  for (const line of lines) {
    if (phases.some((p) => p.test(line))) continue;
    assert.match(line, new RegExp(String.raw`: ${TIME} so far$`), `an elapsed-time line: ${line}`);
  }
  assert.match(r.out, new RegExp(String.raw`^SST push latency \(2 members, fabric .+\): p50 ${TIME}, p99 ${TIME} ` +
    String.raw`over 300 samples$`, 'm'));
  assert.match(r.out,
    new RegExp(String.raw`^plain TCP one-way \(two Node processes\): +p50 ${TIME}, p99 ${TIME}$`, 'm'));
  // formatSeconds' three significant digits, in the unit that suits them: 101 µs, 1.32 ms, never 1323.76 µs.
  for (const [figure, digits] of r.out.matchAll(/([\d.]+) (?:µs|ms)\b/g)) {
    assert.ok(digits!.replace('.', '').replace(/^0+/, '').length <= 3, `${figure} in ${r.out}`);
  }
});

test.run();
