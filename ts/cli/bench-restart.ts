// `squall bench restart`: its options and how its result prints (the benchmark is bench/restart.ts).

import { resolve } from 'node:path';
import { defineCommand, parseCommand } from './args.js';
import { FABRIC_OPTIONS, JSON_OPTION, SUSPICION_OPTION, fabricOf, suspicionOf } from './bench-options.js';
import { progressOnStderr } from './progress.js';
import { formatBytes, formatCount, formatMillis, parseBytes, parsePositiveInt } from './units.js';

export const RESTART_BENCH = defineCommand({
  command: 'bench restart',
  usage: '[--state SIZE] [--updates N] [--runs N] [--dir DIR] [--json]',
  about: `A 3-member persistent group holding SIZE: totalRestartMs (every member SIGKILLed, all started again
from their logs: the last one started to an ordered call answered) and catchUpMs (one member SIGKILLed
while N ordered updates go by, started again with its log: to its version equal to the others').`,
  options: {
    state: { type: 'string', value: 'SIZE', help: 'state held, in 1MiB values (default 100MiB)' },
    updates: {
      type: 'string', value: 'N', help: 'ordered updates of 100 bytes while one member is down (default 10000)',
    },
    runs: { type: 'string', value: 'N', help: 'fresh groups (default 1); the figures are medians' },
    dir: { type: 'string', value: 'DIR', help: 'where the data directories go (default the temp dir)' },
    suspicion: { ...SUSPICION_OPTION, help: `${SUSPICION_OPTION.help} (default 1000)` },
    json: JSON_OPTION,
    ...FABRIC_OPTIONS,
  },
});

export async function benchRestart(argv: string[]): Promise<void> {
  const values = parseCommand(RESTART_BENCH, argv);
  if (values === null) return;
  const { runRestartBench } = await import('../../bench/restart.js');
  const r = await runRestartBench({
    stateBytes: values.state === undefined ? 100 * 1024 * 1024 : parseBytes(values.state, 'state', 0),
    updates: parsePositiveInt(values.updates, 'updates', 10_000),
    runs: parsePositiveInt(values.runs, 'runs', 1),
    ...(values.dir === undefined ? {} : { dir: resolve(values.dir) }),
    fabric: fabricOf(values), ...suspicionOf(values),
    onProgress: progressOnStderr('bench restart'),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const runs = r.runs.map((x) => `${formatMillis(x.totalRestartMs)}/${formatMillis(x.catchUpMs)} ` +
    `(${x.by}${x.storesAgree ? '' : ', STORES DISAGREE'})`);
  const median = r.runs.length > 1 ? `, median of ${r.runs.length}` : '';
  process.stdout.write(
    `restart: ${r.members} persistent members (fabric ${r.fabric}) holding ${formatBytes(r.stateBytes)}\n` +
    `  total restart ${formatMillis(r.totalRestartMs)} (totalRestartMs${median}: every member SIGKILLed and ` +
    `started again, to an ordered call answered)\n` +
    `  catch-up ${formatMillis(r.catchUpMs)} (catchUpMs${median}: one member back after ` +
    `${formatCount(r.catchUp.records)} updates, ${formatBytes(r.catchUp.bytes)}, ` +
    `to its version equal to the others')\n` +
    `  runs (total/catch-up): ${runs.join(', ')}\n`);
}
