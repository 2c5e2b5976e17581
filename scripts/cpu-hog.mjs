#!/usr/bin/env node
// Busy processes that keep the CPU loaded, for running squall beside other work (npm run test:loaded,
// benchmarks "with a busy process beside it").
//
//   node scripts/cpu-hog.mjs [--procs N] [--seconds S]     N busy processes (default: one per core) for S s
//
// Each hog spins on its own core-sized share and ends by itself: after S seconds (default 3600), or as
// soon as the process that started it is gone (its parent pid changes), so a killed test run leaves none.
// Imported, startHogs() starts them in the background and returns a stop function.

import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const SPIN = `
const deadline = Date.now() + Number(process.argv[1]) * 1000;
const parent = process.ppid;
for (let i = 0; ; i++) {
  if ((i & 0xfffff) === 0 && (Date.now() > deadline || process.ppid !== parent)) process.exit(0);
}`;

/** Starts `procs` busy processes for at most `seconds`; the returned function ends them. */
export function startHogs({ procs = availableParallelism(), seconds = 3600 } = {}) {
  const children = [];
  for (let i = 0; i < procs; i++) {
    children.push(spawn(process.execPath, ['-e', SPIN, String(seconds)], { stdio: 'ignore' }));
  }
  return () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? fallback : Number(process.argv[i + 1]);
  };
  const procs = arg('--procs', availableParallelism());
  const seconds = arg('--seconds', 3600);
  if (!(procs >= 1) || !(seconds > 0)) {
    console.error('usage: node scripts/cpu-hog.mjs [--procs N] [--seconds S]');
    process.exit(2);
  }
  const stop = startHogs({ procs, seconds });
  console.error(
    `cpu-hog: ${procs} busy process(es) for up to ${seconds} s (pid ${process.pid}); Ctrl-C or kill ends them`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stop(); process.exit(0); });
  setTimeout(() => { stop(); process.exit(0); }, seconds * 1000);
}
