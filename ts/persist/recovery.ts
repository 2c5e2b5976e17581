// Opening a persistent log's directory: checks the identity file, removes left-over temporary files, scans every
// segment record by record (magic, length, CRC-32, versions strictly increasing) to rebuild the index, and cuts a
// torn tail — what a crash during a group commit leaves at the end of the last segment. Damage anywhere else is not
// something a crash makes: it is reported (file and offset), never skipped.
//
// Telling the two apart. A group commit writes its bytes and fdatasyncs them; the next commit starts only after,
// and a segment is synced before a commit writes into the next one. Until the sync, the disk may keep any subset of
// the commit's pages — a bad record may be followed by good ones of the same commit. So a bad record at X in the
// last segment is a torn write unless something after X proves X's commit was synced: a valid record marked as the
// first a later commit wrote into the segment (SYNC_START), which was written only after X's commit synced. Without
// that proof the bytes from X on are cut and reported in `recovered.tornTail`; none of them was ever reported
// durable, unless the disk changed bytes of the very last commit, which no check can tell from a torn write.

import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PersistError } from '../errors.js';
import { ioError, syncDirectory, writeFileAtomic } from './files.js';
import {
  checkRecord, IDENTITY_FILE, IDENTITY_FORMAT, parseSegmentName, parseSnapshotName, RECORD_MAGIC,
  SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC,
} from './format.js';
import { IndexTable } from './index-table.js';

export interface LogIdentity { group: string; memberId: number; subgroup: string; shard: number }

/** A segment file of the log. `bytes` counts every byte placed in it, written or still buffered. */
export interface Segment {
  id: number;
  first: bigint;
  name: string;
  bytes: number;
  /** Bytes known to be fdatasync'ed. */
  durableBytes: number;
  /** The file exists (it is created by the first group commit that writes into it). */
  created: boolean;
}

export interface SnapshotInfo { version: bigint; hlc: bigint; name: string }

export interface TornTail { file: string; offset: number; bytes: number }

export interface Recovered {
  segments: Segment[];
  index: IndexTable;
  snapshot: SnapshotInfo | null;
  tornTail: TornTail | null;
}

const SEE_DOCS = 'see docs/persistence.md';

/** Creates the directory and its identity file, or checks the identity of the one there. */
export async function claimDirectory(dir: string, identity: LogIdentity): Promise<string[]> {
  try {
    // A directory made here is durable once its parent is synced, and that parent's if it was made here too.
    const made = await mkdir(dir, { recursive: true });
    if (made !== undefined) {
      for (let d = resolve(dir); ; d = dirname(d)) {
        await syncDirectory(dirname(d));
        if (d === resolve(made) || d === dirname(d)) break;
      }
    }
  } catch (error) {
    throw ioError(`creating the log directory ${dir}`, dir, error);
  }
  const names = await readdir(dir).catch((error: unknown) => { throw ioError(`listing ${dir}`, dir, error); });
  const path = join(dir, IDENTITY_FILE);
  const want = { format: IDENTITY_FORMAT, ...identity };
  if (!names.includes(IDENTITY_FILE)) {
    const logFiles = names.filter((n) => parseSegmentName(n) !== null || parseSnapshotName(n) !== null);
    if (logFiles.length > 0) {
      throw new PersistError(`persistent log: ${dir} holds log files (${logFiles.slice(0, 3).join(', ')}…) but no ` +
        `${IDENTITY_FILE}, so nothing says whose they are: restore the identity file, or move the directory aside ` +
        `and let this member get its state from the others`, path);
    }
    await writeFileAtomic(dir, IDENTITY_FILE, Buffer.from(JSON.stringify(want) + '\n'));
    return names;
  }
  const text = await readFile(path, 'utf8')
    .catch((error: unknown) => { throw ioError(`reading ${path}`, path, error); });
  let found: Record<string, unknown>;
  try {
    found = JSON.parse(text) as Record<string, unknown>;
    if (typeof found !== 'object' || found === null || found.format !== IDENTITY_FORMAT) throw new Error('format');
  } catch (error) {
    throw new PersistError(`persistent log: ${path} is not a squall log identity (${IDENTITY_FORMAT}): it is ` +
      'damaged or belongs to something else; move the directory aside', path, 0, { cause: error });
  }
  const fields = ['group', 'memberId', 'subgroup', 'shard'] as const;
  const differ = fields.filter((f) => found[f] !== identity[f]);
  if (differ.length > 0) {
    const show = (o: Record<string, unknown>): string => fields.map((f) => `${f} ${JSON.stringify(o[f])}`).join(', ');
    throw new PersistError(`persistent log: ${dir} belongs to ${show(found)}, not to ${show({ ...identity })} ` +
      `(${differ.join(', ')} differ): give each member, subgroup and shard its own data directory, or move this ` +
      'one aside if it is stale', path);
  }
  return names;
}

/** Scans the directory's segments and snapshots (names from claimDirectory); cuts a torn tail. */
export async function recover(dir: string, names: string[]): Promise<Recovered> {
  for (const name of names.filter((n) => n.endsWith('.tmp'))) {
    const path = join(dir, name);
    await unlink(path).catch((error: unknown) => { throw ioError(`removing ${name}`, path, error); });
  }
  const firsts = names.map(parseSegmentName).filter((v): v is bigint => v !== null).sort(compareBigInt);
  const segments: Segment[] = [];
  const index = new IndexTable();
  let tornTail: TornTail | null = null;
  let previous = -1n;
  for (let k = 0; k < firsts.length; k++) {
    const first = firsts[k]!;
    const segment: Segment = {
      id: k, first, name: segmentNameOf(names, first), bytes: 0, durableBytes: 0, created: true,
    };
    const path = join(dir, segment.name);
    const data = await readFile(path).catch((error: unknown) => { throw ioError(`reading ${path}`, path, error); });
    const last = k === firsts.length - 1;
    let at = 0;
    while (at < data.length) {
      const check = checkRecord(data, at, data.length);
      if (!check.ok) {
        if (last && !laterSyncAfter(data, at)) {
          tornTail = { file: path, offset: at, bytes: data.length - at };
          break;
        }
        throw damaged(path, at, check.why);
      }
      if (at === 0 && check.version !== first) {
        throw damaged(path, at, `the first record has version ${check.version}, the file name says ${first}`);
      }
      if (check.version <= previous) {
        throw damaged(path, at, `version ${check.version} does not follow version ${previous}`);
      }
      index.add(check.version, check.hlc, segment.id, at, check.bytes);
      previous = check.version;
      at += check.bytes;
    }
    if (at === 0 && !last) throw damaged(path, 0, 'the segment is empty but is not the last one');
    segment.bytes = segment.durableBytes = at;
    if (at > 0) segments.push(segment);
    if (tornTail !== null || at === 0) await cutTail(dir, segment, at);
  }
  return { segments, index, snapshot: await newestSnapshot(dir, names), tornTail };
}

/** Whether a valid record marked SYNC_START follows the bad record at `from`: proof that the group commit holding
 *  `from` was synced before a later one was written. */
export function laterSyncAfter(data: Buffer, from: number): boolean {
  for (let at = nextValidRecord(data, from + 1); at >= 0;) {
    const check = checkRecord(data, at, data.length);
    if (!check.ok) return false; // unreachable: nextValidRecord returned a valid record
    if (check.syncStart) return true;
    at = nextValidRecord(data, at + check.bytes);
  }
  return false;
}

/** The offset of the first whole, valid record at or after `from`, or -1. */
export function nextValidRecord(data: Buffer, from: number): number {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  for (let at = data.indexOf(magic, from); at >= 0; at = data.indexOf(magic, at + 1)) {
    if (checkRecord(data, at, data.length).ok) return at;
  }
  return -1;
}

/** Cuts the last segment at `offset` durably (removes the file when nothing is left of it). */
async function cutTail(dir: string, segment: Segment, offset: number): Promise<void> {
  const path = join(dir, segment.name);
  try {
    if (offset === 0) {
      await unlink(path);
      await syncDirectory(dir);
      return;
    }
    const handle = await open(path, 'r+');
    try {
      await handle.truncate(offset);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw ioError(`cutting the torn tail of ${path}`, path, error, offset);
  }
}

/** The newest snapshot's header (checked: magic and length; the CRC is checked when it is read). */
async function newestSnapshot(dir: string, names: string[]): Promise<SnapshotInfo | null> {
  const versions = names.map(parseSnapshotName).filter((v): v is bigint => v !== null).sort(compareBigInt);
  const version = versions[versions.length - 1];
  if (version === undefined) return null;
  const name = names.find((n) => parseSnapshotName(n) === version)!;
  const path = join(dir, name);
  const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  let size: number;
  try {
    const handle = await open(path, 'r');
    try {
      size = (await handle.stat()).size;
      await handle.read(header, 0, SNAPSHOT_HEADER_BYTES, 0);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw ioError(`reading ${path}`, path, error);
  }
  if (size < SNAPSHOT_HEADER_BYTES || header.readUInt32LE(0) !== SNAPSHOT_MAGIC ||
      header.readBigUInt64LE(24) !== BigInt(size - SNAPSHOT_HEADER_BYTES) || header.readBigInt64LE(8) !== version) {
    throw damaged(path, 0, 'the snapshot header does not match the file (magic, length or version)');
  }
  // Older snapshots are left only by a crash between writing a new one and removing the old: remove them now.
  for (const older of names.filter((n) => { const v = parseSnapshotName(n); return v !== null && v < version; })) {
    const path = join(dir, older);
    await unlink(path).catch((error: unknown) => { throw ioError(`removing ${older}`, path, error); });
  }
  return { version, hlc: header.readBigUInt64LE(16), name };
}

export function damaged(path: string, offset: number, why: string): PersistError {
  return new PersistError(`persistent log: ${path} is damaged at offset ${offset} (${why}). This is not a torn ` +
    'write a crash leaves (that is cut at open by itself): the disk changed durable bytes. Move the directory ' +
    `aside and let this member get its state from the others, or restore it from a backup; ${SEE_DOCS}`,
  path, offset);
}

function segmentNameOf(names: string[], first: bigint): string {
  return names.find((n) => parseSegmentName(n) === first)!;
}

export function compareBigInt(a: bigint, b: bigint): number { return a < b ? -1 : a > b ? 1 : 0; }
