#!/usr/bin/env node
// npm run test:loaded: every suite with the CPU kept busy beside it — one busy process per core for the
// whole run (scripts/cpu-hog.mjs) — as on a shared CI box or beside an application's own work. Arguments go
// to scripts/run-tests.mjs (e.g. `npm run test:loaded -- multicast`). Ends with run-tests' closing line.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHogs } from './cpu-hog.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const stop = startHogs({ seconds: 3600 });
console.error('test:loaded: every suite runs with one busy process per core beside it');
// The per-file limit is for hangs, not speed: with every core shared, CPU-bound suites (the 1,000-seed
// simulation) take about three times as long.
// The simulator is seeded and single-threaded: a busy CPU changes its time, nothing it checks — so the loaded
// run takes 200 of its seeds (npm test runs all 1,000), which keeps CI's whole run within its budget.
const env = {
  ...process.env,
  SQUALL_TEST_TIMEOUT_S: process.env.SQUALL_TEST_TIMEOUT_S ?? '900',
  SQUALL_SIM_RUNS: process.env.SQUALL_SIM_RUNS ?? '200',
};
const child = spawn(
  process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...process.argv.slice(2)], { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { child.kill(signal); });
child.on('exit', (code, signal) => {
  stop();
  process.exit(code ?? (signal ? 1 : 0));
});
