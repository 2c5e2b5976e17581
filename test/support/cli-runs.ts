// `squall` subcommands as child processes for the CLI suites: start one, collect what it prints, wait for
// a line.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../ts/cli/main.js', import.meta.url));

export interface Run { child: ChildProcess; out: string; err: string; exit: Promise<number | null> }

/** Starts `squall ...args` with stdout and stderr collected; `nodeArgs` go to node itself. */
export function startCli(args: string[], nodeArgs: string[] = []): Run {
  const child = spawn(process.execPath, [...nodeArgs, cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close': after its output is read
  const run: Run = { child, out: '', err: '', exit: new Promise((resolve) => child.once('close', resolve)) };
  child.stdout!.on('data', (d) => { run.out += d; });
  child.stderr!.on('data', (d) => { run.err += d; });
  return run;
}

/** Resolves once `re` matches what the run printed; fails after timeoutMs or when it exits first. */
export async function waitFor(run: Run, re: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(run.out + run.err)) {
    if (Date.now() > deadline) {
      throw new Error(`no ${re} within ${timeoutMs} ms; stdout: ${run.out} stderr: ${run.err}`);
    }
    if (run.child.exitCode !== null) {
      throw new Error(`exited ${run.child.exitCode} before printing ${re}; stderr: ${run.err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
