// `squall sim [--level group|rules] [--seed S] [--runs N] [--heal] [--trace] [--json]`: the seeded view-change
// simulations over seeds S, S+1, …, S+N−1. A violation prints the seed and the command that replays it,
// and exits 1.
//
//   group  (default) ts/sim/group-sim.ts: 3–9 members running the real shard and view-change code over a
//          simulated fabric, with crashes, partitions, ragged delays, leaves and joins
//   rules  ts/sim/view-change-sim.ts: the rules of a view change as pure functions, one shard, crashes and
//          leaders failing mid-change

import { ConfigError } from '../errors.js';
import { afterRun, GroupSim } from '../sim/group-sim.js';
import { SimulationViolation } from '../sim/shard-sim.js';
import { runViewChange } from '../sim/view-change-sim.js';
import { defineCommand, parseCommand } from './args.js';
import { progressCounter, progressOnStderr } from './progress.js';
import { formatCount, formatSeconds } from './units.js';
import { parseIntegerFlag } from '../validate.js';

export const SIM_COMMAND = defineCommand({
  command: 'sim',
  usage: '[--level group|rules] [--seed S] [--runs N] [--heal] [--trace] [--json]',
  about: 'Runs a seeded view-change simulation and checks every run; a violation prints its seed and exits 1.',
  options: {
    level: {
      type: 'string', value: 'LEVEL', help: `group (default): 3–9 members run the real shard and view-change code over a
simulated fabric: ordered load from every member, crashes, partitions, ragged
delays, leaves and joins; checks total order, virtual synchrony, one view per vid,
nothing delivered after a member stopped, each sender's order, and that the live
majority settles with every message delivered
rules: the view-change rules as pure functions: one shard, crashes, leaders
failing mid-change` },
    seed: { type: 'string', value: 'S', help: 'first seed (default 1)' },
    runs: { type: 'string', value: 'N', help: 'how many seeds (default 1000)' },
    heal: { type: 'boolean', help: 'group level: each run\'s partition heals 100–2,100 ticks after it struck' },
    trace: { type: 'boolean', help: 'print each step of the view changes (group level; for replaying one seed)' },
    json: { type: 'boolean', help: 'print a summary object on stdout' },
  },
});

export async function run(argv: string[]): Promise<void> {
  const values = parseCommand(SIM_COMMAND, argv);
  if (values === null) return;
  const level = values.level ?? 'group';
  if (level !== 'group' && level !== 'rules') {
    throw new ConfigError(`--level must be 'group' or 'rules', got '${level}'`);
  }
  const seed = parseIntegerFlag(values.seed, 'seed', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1);
  const runs = parseIntegerFlag(values.runs, 'runs', 1, 100_000_000, 1000);
  const progress = progressOnStderr('sim');
  const heal = values.heal === true;
  if (heal && level !== 'group') throw new ConfigError('--heal applies to --level group only');
  const trace = values.trace ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
  const started = performance.now();
  /** Runs that installed a new view; the rest kept view 0 or left only a minority. */
  let changed = 0;
  let faults = 0;
  /** Joiners that asked, and those that entered a view. */
  let asked = 0, joined = 0;
  /** Partitions that healed (--heal). */
  let healed = 0;
  // At each tenth, and every 2 s at least: a group-level run can take a second or more.
  const report = progressCounter(progress, runs,
    (done, percent) => `${formatCount(done)} of ${formatCount(runs)} runs (${percent}%), no violation`);
  for (let i = 0; i < runs; i++) {
    try {
      if (level === 'rules') {
        if (runViewChange(seed + i).installed) changed++;
      } else {
        const r = new GroupSim({ seed: seed + i, heal, ...(trace ? { trace } : {}) }).run();
        if (r.views > 0) changed++;
        faults += r.faults.length;
        asked += r.faults.filter((f) => f.startsWith('join')).length;
        joined += r.joined;
        healed += r.faults.filter((f) => f.startsWith('heal ')).length;
      }
    } catch (error) {
      if (!(error instanceof SimulationViolation)) throw error;
      const trace = level === 'group' ? ' --trace' : '';
      const replay = `npx squall sim --level ${level} --seed ${seed + i} --runs 1${heal ? ' --heal' : ''}${trace}`;
      process.stderr.write(`squall sim: violation in seed ${seed + i}: ${error.message}\nreplay: ${replay}\n`);
      process.exitCode = 1;
      return;
    }
    report(i + 1);
    await afterRun();
  }
  const seconds = Number(((performance.now() - started) / 1000).toFixed(2));
  if (level === 'rules') {
    const result = { level, runs, installed: changed, minority: runs - changed, seconds };
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(
      `${formatCount(runs)} runs from seed ${seed}: no violation (${formatCount(changed)} installed a new view, ` +
        `${formatCount(runs - changed)} left a minority that stopped) in ${formatSeconds(seconds)}\n`);
    return;
  }
  const result = {
    level, runs, viewChanges: changed, faults, joinsAsked: asked, joined, ...(heal ? { healed } : {}), seconds,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(
    `${formatCount(runs)} runs from seed ${seed}: no violation (${formatCount(faults)} faults injected, ` +
      `${formatCount(joined)} of ${formatCount(asked)} joiners entered a view; ${formatCount(changed)} runs ` +
      `installed a new view${heal ? `; ${formatCount(healed)} partitions healed` : ''}) in `
      + `${formatSeconds(seconds)}\n`);
}
