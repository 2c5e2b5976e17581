// How an emulated network is named, found again and torn down whatever happens to the process that built it.
//
// Every namespace of a network is named `squall-<pid>-<tag>-<role>`: the creating process's pid, the network's
// tag (the third octet of its subnet, or `check` for netnsSupport()'s probe) and `br` or `m<i>`. The pid in
// the name is what makes leftovers findable without any state file: a network whose creator is no longer
// alive is stale, and removeStaleNetworks() deletes it together with any process still running inside.
//
// While a network of this process exists, handlers for 'exit', SIGINT, SIGTERM and SIGHUP tear it down
// synchronously. SIGKILL cannot be caught: member processes then die with their parent (they are spawned
// under `setpriv --pdeathsig KILL`), and the namespaces are removed by the next create() in any process.

import { listNamespaces, namespacePids, killPids, run } from './commands.js';

export const namespacePrefix = 'squall-';

const namePattern = /^squall-(\d+)-([a-z0-9]+)-(br|m\d+)$/;

export function namespaceName(pid: number, tag: string, role: string): string {
  return `${namespacePrefix}${pid}-${tag}-${role}`;
}

export interface ParsedName { pid: number; tag: string; role: string }

export function parseNamespaceName(name: string): ParsedName | null {
  const m = namePattern.exec(name);
  return m ? { pid: Number(m[1]), tag: m[2]!, role: m[3]! } : null;
}

/** True when a process with this pid exists (EPERM means it exists but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes every network whose creating process is gone: first SIGKILL to the processes still inside its
 * namespaces (a namespace lives on while a process is in it), then the namespaces, which takes their veth
 * links and bridge with them. Returns the number of networks removed.
 *
 * A pid reused by an unrelated process keeps that network until the pid is free again; that costs nothing
 * but a few idle namespaces, since two networks never share a link or an address space.
 */
export async function removeStaleNetworks(): Promise<number> {
  const stale = new Map<string, string[]>();
  for (const name of await listNamespaces()) {
    const parsed = parseNamespaceName(name);
    if (!parsed || pidAlive(parsed.pid)) continue;
    const key = `${parsed.pid}-${parsed.tag}`;
    stale.set(key, [...(stale.get(key) ?? []), name]);
  }
  if (stale.size === 0) return 0;
  const names = [...stale.values()].flat();
  for (const name of names) killPids(await namespacePids(name));
  await run('ip', ['-force', '-batch', '-'], names.map((n) => `netns del ${n}\n`).join(''));
  return stale.size;
}

/** What the exit and signal handlers need of a live network. */
export interface SyncTeardown { destroySync(): void }

const live = new Set<SyncTeardown>();
const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function tearDownAll(): void {
  for (const network of [...live]) {
    try { network.destroySync(); } catch { /* best effort while dying; the next create() removes what is left */ }
  }
  live.clear();
}

function onExit(): void {
  tearDownAll();
}

function onSignal(signal: NodeJS.Signals): void {
  tearDownAll();
  uninstall();
  // With our handler gone and nobody else listening, re-raising gives the default action (the process dies
  // of the signal, exit status 128+n), as if we had never been there. Other listeners decide for themselves.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const s of signals) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const s of signals) process.off(s, onSignal);
}

/** Keeps `network` torn down on exit and on SIGINT/SIGTERM/SIGHUP until released. */
export function guard(network: SyncTeardown): void {
  live.add(network);
  install();
}

export function release(network: SyncTeardown): void {
  live.delete(network);
  if (live.size === 0) uninstall();
}
