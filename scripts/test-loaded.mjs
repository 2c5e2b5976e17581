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
// The per-file limit is for hangs, not speed: with every core shared, CPU-bound suites take about three times
// as long. Suites with no timing in them — the seeded simulator (group-sim) and fuzzer, pure computations, the
// package's install (npm's time, not squall's), the options' checks and help texts, the state transfer's parts
// in one process, the benchmarks' output — check nothing more under load: the loaded run leaves them out (npm
// test runs them), and the view-change suite's simulated seeds are 200 (SQUALL_SIM_RUNS; npm test: all).
// That keeps CI's whole run within its budget.
const untimed = 'group-sim,persist-fuzz,kernels.test,charts,rdmc-model,rdmc-schedules,tidy.test,package-install,'
  + 'cli-help,cli-units,config-checks,group-config,exports,state-transfer,bench-multicast,bench-persist,bench-restart';
const env = {
  ...process.env,
  SQUALL_TEST_SKIP: process.env.SQUALL_TEST_SKIP ?? untimed,
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
