// Helpers of the persistent log's tests: temporary directories, a deterministic record per number, reading a
// whole log, checking records against the ones appended.

import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogIdentity, LogRecord, PersistentLog } from '../../ts/persist/log.js';

export const ID: LogIdentity = { group: 'g1', memberId: 3, subgroup: 'tickets', shard: 0 };

const made: string[] = [];

/** A fresh directory under the system's temporary directory; the log's own directory inside it. */
export async function tempLogDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'squall-persist-'));
  made.push(dir);
  return join(dir, 'tickets.0');
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** Record n: version 10n + 5 (versions need not be contiguous), hlc 1000 + n, a payload of n % 300 bytes. */
export function record(n: number): LogRecord {
  const payload = new Uint8Array(n % 300);
  for (let i = 0; i < payload.length; i++) payload[i] = (n * 31 + i) & 0xff;
  return { version: BigInt(n * 10 + 5), hlc: BigInt(1000 + n), sender: n % 7, payload };
}

export async function readAll(log: PersistentLog, after = -1n, upTo?: bigint): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of log.read(after, upTo)) out.push(r);
  return out;
}

/** `got` is exactly record(from) … record(to - 1). */
export function assertRecords(got: LogRecord[], from: number, to: number): void {
  assert.is(got.length, to - from, `records ${from}..${to - 1}`);
  for (let n = from; n < to; n++) {
    const want = record(n);
    const r = got[n - from]!;
    assert.is(r.version, want.version);
    assert.is(r.hlc, want.hlc);
    assert.is(r.sender, want.sender);
    assert.equal([...r.payload], [...want.payload], `payload of record ${n}`);
  }
}

export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort();
}
