// `squall sim [--seed S] [--runs N] [--json]`: the seeded view-change simulation (ts/sim/view-change-sim.ts)
// over seeds S, S+1, …, S+N−1. A violation prints the seed and the command that replays it, and exits 1.

import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { SimulationViolation } from '../sim/shard-sim.js';
import { runViewChange } from '../sim/view-change-sim.js';
import { cliArgs } from './args.js';
import { progressOnStderr } from './progress.js';

const HELP = `squall sim [--seed S] [--runs N] [--json]

Runs the view-change simulation: a shard of 3–9 members under ordered load, crashes with half-received
messages, the leader sometimes failing mid-change, the ragged trim; checks virtual synchrony in each run.
  --seed S   first seed (default 1)
  --runs N   how many seeds (default 1000)
  --json     print {"runs", "installed", "minority", "seconds"} on stdout
`;

export async function run(argv: string[]): Promise<void> {
  const values = cliArgs('sim', () => parseArgs({
    args: argv,
    options: { seed: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
  }).values);
  if (values.help) { process.stdout.write(HELP); return; }
  const seed = Number(values.seed ?? 1);
  const runs = Number(values.runs ?? 1000);
  if (!Number.isSafeInteger(seed)) throw new ConfigError(`--seed must be an integer, got '${values.seed}'`);
  if (!Number.isInteger(runs) || runs < 1) throw new ConfigError(`--runs must be a positive integer, got '${values.runs}'`);
  const progress = progressOnStderr('sim');
  const started = performance.now();
  let installed = 0;
  const tenth = Math.max(1, Math.floor(runs / 10));
  for (let i = 0; i < runs; i++) {
    try {
      if (runViewChange(seed + i).installed) installed++;
    } catch (error) {
      if (!(error instanceof SimulationViolation)) throw error;
      process.stderr.write(`squall sim: violation in seed ${seed + i}: ${error.message}\nreplay: npx squall sim --seed ${seed + i} --runs 1\n`);
      process.exitCode = 1;
      return;
    }
    if ((i + 1) % tenth === 0) progress(`${i + 1} of ${runs} runs, no violation`);
  }
  const seconds = (performance.now() - started) / 1000;
  const result = { runs, installed, minority: runs - installed, seconds: Number(seconds.toFixed(2)) };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${runs} runs from seed ${seed}: no violation (${installed} installed a new view, ${runs - installed} left a minority that stopped) in ${seconds.toFixed(1)} s\n`);
}
