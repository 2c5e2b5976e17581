// File-system steps the persistent log needs to be durable: a directory fsync (a created, renamed or deleted
// name survives a crash only once its directory is synced) and the atomic replacement of a small file.

import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistError } from '../errors.js';

/** fsyncs a directory, so the names created, renamed or removed in it are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `dir/name` with `data` atomically: writes `name.tmp`, fsyncs it, renames it over `name`, fsyncs the
 * directory. A crash leaves either the old file or the new one, never a mix (a left-over .tmp is removed at open).
 */
export async function writeFileAtomic(dir: string, name: string, data: Uint8Array | readonly Uint8Array[]):
  Promise<void> {
  const path = join(dir, name);
  const temp = `${path}.tmp`;
  try {
    const handle = await open(temp, 'w', 0o644);
    try {
      for (const part of data instanceof Uint8Array ? [data] : data) await writeAll(handle, part);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dir);
  } catch (error) {
    await unlink(temp).catch(() => undefined); // best effort: the error below is what the caller must see
    throw ioError(`writing ${name}`, path, error);
  }
}

/** Writes every byte of `data` at `position` (or at the file's current offset), looping on short writes. */
export async function writeAll(handle: import('node:fs/promises').FileHandle, data: Uint8Array,
  position: number | null = null): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done,
      position === null ? null : position + done);
    if (bytesWritten === 0) throw new Error('write wrote nothing');
    done += bytesWritten;
  }
}

/** Writes `buffers` back to back at `position` with writev, going on after a short write. */
export async function writevAll(handle: import('node:fs/promises').FileHandle, buffers: Uint8Array[],
  position: number): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0);
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= rest[0]!.length) skip -= rest.shift()!.length;
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

/** The PersistError for a failed file-system call, saying what to do for the errors a disk can give. */
export function ioError(what: string, file: string, error: unknown, offset = -1): PersistError {
  if (error instanceof PersistError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  const advice = code === 'ENOSPC' || code === 'EDQUOT'
    ? 'the disk is full (or over quota): free space on it, or move the data directory to a larger disk, ' +
      'then restart this member — what was durable before is intact'
    : code === 'EIO'
      ? 'the disk reported an I/O error: check the device (dmesg, SMART); after an I/O error the page cache no ' +
        'longer says what reached the disk, so restart this member, which recovers from what is on disk'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'the data directory is not writable by this process: fix its permissions or mount'
        : 'check the data directory and the disk, then restart this member';
  const message = `persistent log: ${what} failed (${code || (error as Error)?.message || error}): ${advice}`;
  return new PersistError(message, file, offset, { cause: error });
}
