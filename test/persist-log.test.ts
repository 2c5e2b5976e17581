// The persistent log (ts/persist/log.ts) on real files in the system's temporary directory: round trips through
// group commit and reopen, many segments, a torn tail cut at open (a write cut mid-record, garbage appended), a
// damaged record in the middle refused with its file and offset, an identity mismatch. Snapshots, truncateAfter,
// versionAt and the metadata document: persist-snapshot.test.ts; a full disk: persist-enospc.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistentLog } from '../ts/persist/log.js';
import { PersistError, SquallError } from '../ts/errors.js';
import { RECORD_HEADER_BYTES } from '../ts/persist/format.js';
import { spawnSync } from 'node:child_process';
import {
  assertRecords, ID, readAll, record, removeTempDirs, segmentFiles, tempLogDir as tempDir,
} from './support/persist.js';

test.after(removeTempDirs);

test('round trip: appends become durable in group commits, read back in order, and again after reopen', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  assert.is(log.appendedVersion, -1n);
  assert.is(log.durableVersion, -1n);
  assert.is(log.recovered.tornTail, null);
  const durable: bigint[] = [];
  log.onDurable((v) => durable.push(v));
  for (let n = 0; n < 500; n++) log.append(record(n));
  assert.is(log.appendedVersion, record(499).version);
  assert.ok(log.durableVersion < log.appendedVersion, 'append returns before the disk has it');
  assert.is(await log.flush(), record(499).version);
  assert.is(log.durableVersion, record(499).version);
  assert.ok(durable.length >= 1 && durable.length < 500, `${durable.length} group commits for 500 appends`);
  assert.equal(durable, [...durable].sort((a, b) => (a < b ? -1 : 1)), 'onDurable versions increase');
  assertRecords(await readAll(log), 0, 500);
  assertRecords(await readAll(log, record(99).version, record(199).version), 100, 200);
  assertRecords(await readAll(log, record(99).version + 1n), 100, 500);
  const at = await log.recordAt(record(42).version);
  assert.ok(at);
  assertRecords([at], 42, 43);
  assert.is(await log.recordAt(record(42).version + 1n), null);
  await log.close();
  assert.throws(() => log.append(record(500)),
    (e: unknown) => e instanceof SquallError && e.code === 'ERR_SQUALL_CLOSED');

  const again = await PersistentLog.open(dir, ID);
  assert.is(again.recovered.tornTail, null);
  assert.is(again.appendedVersion, record(499).version);
  assert.is(again.durableVersion, record(499).version);
  assertRecords(await readAll(again), 0, 500);
  again.append(record(500));
  assert.is(await again.flush(), record(500).version);
  assertRecords(await readAll(again), 0, 501);
  await again.close();
});

test('large records: payloads past an append buffer (1 MiB) and past a segment round-trip', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID, { segmentBytes: 1 << 20 });
  const sizes = [10, (1 << 20) - 32, 1 << 20, 3 << 20, 5, (1 << 20) + 7, 100];
  const payloads = sizes.map((n, k) => new Uint8Array(n).map((_, i) => (i * 7 + k) & 0xff));
  payloads.forEach((payload, k) => log.append({ version: BigInt(k), hlc: 1n, sender: 1, payload }));
  await log.flush();
  await log.close();
  const again = await PersistentLog.open(dir, ID, { segmentBytes: 1 << 20 });
  const got = await readAll(again);
  assert.equal(got.map((r) => r.payload.length), sizes);
  got.forEach((r, k) => assert.ok(Buffer.from(r.payload).equals(payloads[k]!), `payload ${k}`));
  assert.ok((await segmentFiles(dir)).length >= 5, 'a record larger than segmentBytes fills a segment alone');
  await again.close();
});

test('commitDelayUs gathers appends made in separate turns of the event loop into one group commit', async () => {
  const log = await PersistentLog.open(await tempDir(), ID, { commitDelayUs: 200_000 });
  const durable: bigint[] = [];
  log.onDurable((v) => durable.push(v));
  for (let n = 0; n < 5; n++) {
    log.append(record(n));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await log.flush();
  assert.equal(durable, [record(4).version], 'one commit for the five appends');
  await log.close();
});

test('appends are refused unless versions strictly increase', async () => {
  const log = await PersistentLog.open(await tempDir(), ID);
  log.append(record(5));
  assert.throws(() => log.append(record(5)), /strictly increasing/);
  assert.throws(() => log.append(record(4)), /strictly increasing/);
  assert.throws(() => log.append({ ...record(6), sender: -1 }), /sender/);
  log.append(record(6));
  await log.flush();
  await log.close();
});

test('many segments: records roll into new segment files named by their first version, all read back', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID, { segmentBytes: 8192 });
  for (let n = 0; n < 2000; n++) {
    log.append(record(n));
    if (n % 97 === 0) await log.flush();
  }
  await log.flush();
  const files = await segmentFiles(dir);
  assert.ok(files.length > 20, `${files.length} segments`);
  for (const name of files) {
    const size = (await stat(join(dir, name))).size;
    assert.ok(size <= 8192, `${name} holds ${size} bytes`);
    const first = BigInt(name.slice(4, 24));
    assert.is((first - 5n) % 10n, 0n, `${name} is named by a record's version`);
  }
  assertRecords(await readAll(log), 0, 2000);
  await log.close();
  const again = await PersistentLog.open(dir, ID, { segmentBytes: 8192 });
  assertRecords(await readAll(again, record(1499).version), 1500, 2000);
  await again.close();
});

test('torn tail: a record cut mid-way at the end of the last segment is cut at open and reported', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  for (let n = 0; n < 100; n++) log.append(record(n));
  await log.close();
  const [name] = await segmentFiles(dir);
  const path = join(dir, name!);
  const size = (await stat(path)).size;
  const lastBytes = RECORD_HEADER_BYTES + record(99).payload.length;
  await truncate(path, size - 7); // the last record loses its last 7 bytes
  const again = await PersistentLog.open(dir, ID);
  assert.equal(again.recovered.tornTail, { file: path, offset: size - lastBytes, bytes: lastBytes - 7 });
  assert.is(again.appendedVersion, record(98).version);
  assert.is((await stat(path)).size, size - lastBytes, 'the partial record is gone from the file');
  assertRecords(await readAll(again), 0, 99);
  again.append(record(99));
  await again.flush();
  await again.close();
  const third = await PersistentLog.open(dir, ID);
  assert.is(third.recovered.tornTail, null);
  assertRecords(await readAll(third), 0, 100);
  await third.close();
});

test('torn tail: garbage after the last whole record is cut at open and reported', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  for (let n = 0; n < 50; n++) log.append(record(n));
  await log.close();
  const [name] = await segmentFiles(dir);
  const path = join(dir, name!);
  const size = (await stat(path)).size;
  await appendFile(path, Buffer.from('this is not a record, it is what a crash can leave behind'));
  const again = await PersistentLog.open(dir, ID);
  assert.equal(again.recovered.tornTail, { file: path, offset: size, bytes: 57 });
  assertRecords(await readAll(again), 0, 50);
  await again.close();
});

test('torn tail: a last record whose bytes were flipped (bad CRC) is cut; a lone new segment is removed', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID, { segmentBytes: 4096 });
  for (let n = 0; n < 200; n++) log.append(record(n));
  await log.close();
  const files = await segmentFiles(dir);
  const path = join(dir, files[files.length - 1]!);
  const bytes = await readFile(path);
  const firstLength = RECORD_HEADER_BYTES + (bytes.readUInt32LE(4) & 0x7fff_ffff); // bit 31: SYNC_START
  await writeFile(path, bytes.subarray(0, firstLength)); // the last segment holds one record now
  const flipped = Buffer.from(bytes.subarray(0, firstLength));
  flipped[RECORD_HEADER_BYTES - 1] ^= 0x40;
  await writeFile(path, flipped);
  const again = await PersistentLog.open(dir, ID, { segmentBytes: 4096 });
  assert.equal(again.recovered.tornTail, { file: path, offset: 0, bytes: firstLength });
  assert.equal(await segmentFiles(dir), files.slice(0, -1), 'the empty last segment is removed');
  const kept = await readAll(again);
  assert.ok(kept.length > 0 && kept.length < 199, `${kept.length} records kept`);
  assertRecords(kept, 0, kept.length);
  await again.close();
});

/** The offset of record n in a log's first segment. */
function offsetOf(n: number): number {
  let offset = 0;
  for (let k = 0; k < n; k++) offset += RECORD_HEADER_BYTES + record(k).payload.length;
  return offset;
}

test('a damaged record in the middle is refused with a PersistError naming the file and offset', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  for (let n = 0; n < 30; n++) {
    log.append(record(n));
    if (n % 5 === 4) await log.flush(); // record 10 is in a group commit that later commits prove synced
  }
  await log.close();
  const [name] = await segmentFiles(dir);
  const path = join(dir, name!);
  const bytes = await readFile(path);
  const offset = offsetOf(10);
  bytes[offset + RECORD_HEADER_BYTES + 3] ^= 0xff; // record 10's payload
  await writeFile(path, bytes);
  const error = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  const e = error as PersistError;
  assert.is(e.code, 'ERR_SQUALL_PERSIST');
  assert.is(e.file, path);
  assert.is(e.offset, offset);
  assert.match(e.message, `offset ${offset}`);
  assert.match(e.message, 'CRC-32');
  assert.match(e.message, 'Move the directory aside');
});

test('torn tail: a bad record followed by good ones of the same, last group commit is a torn write', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  for (let n = 0; n < 10; n++) log.append(record(n));
  await log.flush();
  for (let n = 10; n < 30; n++) log.append(record(n)); // one group commit: its pages may reach the disk in any order
  await log.close();
  const [name] = await segmentFiles(dir);
  const path = join(dir, name!);
  const bytes = await readFile(path);
  bytes.fill(0, offsetOf(12), offsetOf(14)); // two records of the last commit never reached the disk
  await writeFile(path, bytes);
  const again = await PersistentLog.open(dir, ID);
  assert.equal(again.recovered.tornTail, { file: path, offset: offsetOf(12), bytes: bytes.length - offsetOf(12) });
  assertRecords(await readAll(again), 0, 12);
  await again.close();
});

test('a damaged record in an older segment is refused even at the end of that segment', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID, { segmentBytes: 4096 });
  for (let n = 0; n < 200; n++) log.append(record(n));
  await log.close();
  const files = await segmentFiles(dir);
  assert.ok(files.length > 2, `${files.length} segments`);
  const path = join(dir, files[0]!);
  const size = (await stat(path)).size;
  await truncate(path, size - 3);
  const error = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  assert.is((error as PersistError).file, path);
});

test('an identity mismatch (another member or group) is a PersistError saying whose the directory is', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  log.append(record(1));
  await log.close();
  for (const other of [{ ...ID, memberId: 4 }, { ...ID, group: 'g2' }, { ...ID, shard: 1 }]) {
    const error = await PersistentLog.open(dir, other).then(() => null, (e: unknown) => e);
    assert.instance(error, PersistError);
    assert.match((error as Error).message, 'belongs to group "g1", memberId 3');
    assert.is((error as PersistError).file, join(dir, 'identity.json'));
  }
  await writeFile(join(dir, 'identity.json'), '{"not": "ours"');
  const error = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  await rm(join(dir, 'identity.json'));
  const missing = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(missing, PersistError);
  assert.match((missing as Error).message, 'no identity.json');
});

/** Opens the log at `dir` in another node process; returns what it printed (the error's code and message, or ok). */
function openInChild(dir: string): string {
  const logModule = new URL('../ts/persist/log.js', import.meta.url).href;
  const script = `import { PersistentLog } from ${JSON.stringify(logModule)};
    try { const log = await PersistentLog.open(${JSON.stringify(dir)}, ${JSON.stringify(ID)}); await log.close();
      console.log('ok'); } catch (e) { console.log(e.code + ' ' + e.message); }`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(child.status, 0, child.stderr);
  return child.stdout.trim();
}

test('one process at a time: a second open, here or in another process, is refused; a dead owner is not', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  const here = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(here, PersistError);
  assert.match((here as Error).message, 'already open in this process');
  const there = openInChild(dir);
  assert.match(there, 'ERR_SQUALL_PERSIST');
  assert.match(there, `process ${process.pid} has this log open`);
  await log.close();
  assert.is(openInChild(dir), 'ok', 'closing released the lock');
  const gone = spawnSync(process.execPath, ['-e', '0']).pid; // a process that has exited: its lock is stale
  await writeFile(join(dir, 'lock'), `${gone}\n`);
  const again = await PersistentLog.open(dir, ID);
  assert.is(await readFile(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
  await again.close();
});

test.run();
