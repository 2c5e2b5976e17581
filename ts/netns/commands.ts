// Running `ip` and `tc` without a shell. Every network change of the emulated network goes through here, so
// a failure always names the command and what it printed on stderr.
//
// Batches (`ip -n NS -batch -`) send many commands in one process: the command switches into the
// namespace once, which keeps building a network of many hosts to a few dozen milliseconds.

import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EmulatedNetworkError } from '../errors.js';

/** A single `ip`/`tc` call must not hang a test run; the slowest seen (deleting a namespace) takes ~50 ms. */
const commandTimeoutMs = 15_000;

/** Where `ip`, `tc` and `setpriv` live on Debian; PATH of a non-login root shell may lack the sbin dirs. */
const systemDirs = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

const resolved = new Map<string, string | null>();

/** Absolute path of an executable found on PATH or in the system dirs, or null. */
export function findExecutable(name: string): string | null {
  const known = resolved.get(name);
  if (known !== undefined) return known;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...systemDirs];
  let found: string | null = null;
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      found = join(dir, name);
      break;
    } catch { /* not here */ }
  }
  resolved.set(name, found);
  return found;
}

/** iproute2's tools. */
export type Tool = 'ip' | 'tc' | 'bridge';

function toolPath(tool: Tool): string {
  const path = findExecutable(tool);
  if (!path) {
    throw new EmulatedNetworkError(`\`${tool}\` is not installed: install iproute2 (apt-get install iproute2)`);
  }
  return path;
}

function describe(tool: Tool, args: readonly string[], input?: string): string {
  const line = `${tool} ${args.join(' ')}`;
  if (!input) return `\`${line}\``;
  const lines = input.trim().split('\n');
  return `\`${line}\` with input [${lines.join('; ')}]`;
}

/** Runs `tool args` (stdin = input), resolves with its stdout, rejects with an EmulatedNetworkError. */
export function run(tool: Tool, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(toolPath(tool), args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: commandTimeoutMs });
    } catch (err) {
      reject(err);
      return;
    }
    let out = '';
    let errText = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { errText += d; });
    child.on('error', (err) => {
      reject(new EmulatedNetworkError(`${describe(tool, args, input)} could not run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else {
        const why = errText.trim() || out.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new EmulatedNetworkError(`${describe(tool, args, input)} failed: ${why}`));
      }
    });
    child.stdin.on('error', () => { /* the command exited before reading all input; its exit code says why */ });
    child.stdin.end(input ?? '');
  });
}

/** Synchronous form, for exit and signal handlers, where no promise will ever be awaited. */
export function runSync(tool: Tool, args: readonly string[], input?: string): string {
  try {
    return execFileSync(toolPath(tool), args, {
      input: input ?? '', stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8', timeout: commandTimeoutMs,
    });
  } catch (err) {
    if (err instanceof EmulatedNetworkError) throw err;
    const e = err as { stderr?: string; message: string };
    throw new EmulatedNetworkError(
      `${describe(tool, args, input)} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** Names of all named network namespaces (`ip netns list` prints "name" or "name (id: N)"). */
export function parseNamespaceList(text: string): string[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

export async function listNamespaces(): Promise<string[]> {
  return parseNamespaceList(await run('ip', ['netns', 'list']));
}

export function listNamespacesSync(): string[] {
  return parseNamespaceList(runSync('ip', ['netns', 'list']));
}

/** PIDs of the processes inside a namespace (none if the namespace is already gone). */
export async function namespacePids(namespace: string): Promise<number[]> {
  try {
    return parsePids(await run('ip', ['netns', 'pids', namespace]));
  } catch {
    return [];
  }
}

export function namespacePidsSync(namespace: string): number[] {
  try {
    return parsePids(runSync('ip', ['netns', 'pids', namespace]));
  } catch {
    return [];
  }
}

function parsePids(text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map(Number).filter((pid) =>
    Number.isInteger(pid) && pid > 0 && pid !== process.pid);
}

/** Sends SIGKILL to each pid; a pid that is already gone is fine. */
export function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}
