// One process at a time per log directory: two writers appending to the same segments would interleave their
// records. A `lock` file holds the owner's pid; a lock whose process is gone (a crash) is taken over. Within one
// process a set of open directories refuses a second open. Node has no flock(); a pid reused by an unrelated process
// after a crash makes the lock look held — the error says which pid and how to clear it.

import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PersistError } from '../errors.js';
import { ioError } from './files.js';

export const LOCK_FILE = 'lock';
const openHere = new Set<string>();

/** Takes the directory's lock; resolves with the function that releases it. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const key = resolve(dir);
  const path = join(key, LOCK_FILE);
  if (openHere.has(key)) {
    throw new PersistError(`persistent log: ${key} is already open in this process; close it first, or give each ` +
      'member, subgroup and shard its own directory', path);
  }
  openHere.add(key);
  try {
    await takeLock(path);
  } catch (error) {
    openHere.delete(key);
    throw error;
  }
  return async () => {
    openHere.delete(key);
    await unlink(path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`removing ${path}`, path, error);
    });
  };
}

async function takeLock(path: string): Promise<void> {
  try {
    const handle = await open(path, 'wx', 0o644);
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`creating ${path}`, path, error);
  }
  const text = await readFile(path, 'utf8').catch(() => ''); // unreadable or vanished: treated as stale below
  const pid = Number.parseInt(text, 10);
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
    throw new PersistError(`persistent log: ${path} says process ${pid} has this log open: two processes must not ` +
      `write one log. Stop that process, or give this one another data directory; if process ${pid} is not a ` +
      `squall member (its pid was reused after a crash), remove ${path}`, path);
  }
  await writeFile(path, `${process.pid}\n`)
    .catch((error: unknown) => { throw ioError(`writing ${path}`, path, error); });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by another user
  }
}
