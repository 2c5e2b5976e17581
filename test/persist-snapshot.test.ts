// The persistent log's snapshots (atomic, trimming the segments they cover), truncateAfter, versionAt over hlcs,
// the atomic metadata document, and the hybrid logical clock — on real files in the system's temporary directory.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistentLog } from '../ts/persist/log.js';
import { PersistError } from '../ts/errors.js';
import { HybridLogicalClock, hlcMs, hlcOf } from '../ts/persist/hlc.js';
import {
  assertRecords, ID, readAll, record, removeTempDirs, segmentFiles, tempLogDir as tempDir,
} from './support/persist.js';

test.after(removeTempDirs);

const SEGMENT = { segmentBytes: 8192 };

async function filledLog(dir: string, count: number): Promise<PersistentLog> {
  const log = await PersistentLog.open(dir, ID, SEGMENT);
  for (let n = 0; n < count; n++) log.append(record(n));
  await log.flush();
  return log;
}

test('a snapshot is written atomically, drops the segments it covers wholly, and is found again at open', async () => {
  const dir = await tempDir();
  const log = await filledLog(dir, 2000);
  const before = await segmentFiles(dir);
  assert.is(await log.latestSnapshot(), null);
  const state = new TextEncoder().encode('the state after record 1000');
  await log.writeSnapshot({ version: record(1000).version, hlc: record(1000).hlc, bytes: state });
  const after = await segmentFiles(dir);
  assert.ok(after.length < before.length, `${before.length} segments, ${after.length} after the snapshot`);
  const kept = await readAll(log);
  assert.is(log.firstVersion, kept[0]!.version);
  const firstKept = Number((kept[0]!.version - 5n) / 10n);
  assert.ok(firstKept <= 1001, 'the record after the snapshot is still in the log');
  assert.ok(firstKept > 500, `the covered segments are gone (the log starts at record ${firstKept})`);
  assertRecords(kept, firstKept, 2000);
  assert.equal(await segmentFiles(dir), after);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
  const snap = await log.latestSnapshot();
  assert.is(snap?.version, record(1000).version);
  assert.equal([...snap!.bytes], [...state]);
  await log.close();

  const again = await PersistentLog.open(dir, ID, SEGMENT);
  assert.is((await again.latestSnapshot())?.version, record(1000).version);
  assertRecords(await readAll(again), firstKept, 2000);
  await again.writeSnapshot({ version: record(1999).version, hlc: record(1999).hlc, bytes: new Uint8Array(3) });
  const snaps = (await readdir(dir)).filter((n) => n.startsWith('snap-'));
  assert.is(snaps.length, 1, 'the older snapshot is removed');
  assert.is((await segmentFiles(dir)).length, 1, 'only the segment appends go into is kept');
  again.append(record(2000));
  await again.flush();
  assertRecords(await readAll(again, record(1999).version), 2000, 2001);
  await again.close();
});

test('a snapshot past the last record moves the log to its version; the next append must follow it', async () => {
  const log = await PersistentLog.open(await tempDir(), ID);
  await log.writeSnapshot({ version: 500n, hlc: 7n, bytes: new Uint8Array([1, 2, 3]) });
  assert.is(log.appendedVersion, 500n);
  assert.is(log.durableVersion, 500n);
  assert.is(log.firstVersion, -1n);
  assert.is(await log.flush(), 500n);
  assert.throws(() => log.append({ version: 500n, hlc: 8n, sender: 1, payload: new Uint8Array() }), /strictly/);
  log.append({ version: 501n, hlc: 8n, sender: 1, payload: new Uint8Array() });
  assert.is(await log.flush(), 501n);
  await log.close();
});

test('a snapshot past records still being written: durable reaches its version once they are', async () => {
  const log = await PersistentLog.open(await tempDir(), ID);
  log.append(record(0));
  const written = log.writeSnapshot({ version: 1000n, hlc: 9n, bytes: new Uint8Array([4]) });
  log.append(record(1)); // while the snapshot is being written
  await written;
  assert.is(log.appendedVersion, 1000n);
  assert.is(await log.flush(), 1000n);
  assert.is(log.durableVersion, 1000n);
  assertRecords(await readAll(log), 0, 2);
  await log.close();
});

test('a damaged snapshot is a PersistError: its header at open, its bytes when it is read', async () => {
  const dir = await tempDir();
  const log = await filledLog(dir, 10);
  await log.writeSnapshot({ version: record(5).version, hlc: 1n, bytes: new Uint8Array(100).fill(9) });
  await log.close();
  const [name] = (await readdir(dir)).filter((n) => n.startsWith('snap-'));
  const path = join(dir, name!);
  const bytes = await readFile(path);
  bytes[60] ^= 1;
  await writeFile(path, bytes);
  const again = await PersistentLog.open(dir, ID);
  const error = await again.latestSnapshot().then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  assert.is((error as PersistError).file, path);
  await again.close();
  await writeFile(path, bytes.subarray(0, 50));
  const refused = await PersistentLog.open(dir, ID).then(() => null, (e: unknown) => e);
  assert.instance(refused, PersistError);
  assert.match((refused as Error).message, 'snapshot header');
});

test('truncateAfter cuts every later record durably, across segments, and appends go on from there', async () => {
  const dir = await tempDir();
  const log = await filledLog(dir, 2000);
  await log.truncateAfter(record(1234).version + 3n); // between two versions
  assert.is(log.appendedVersion, record(1234).version);
  assert.is(log.durableVersion, record(1234).version);
  assertRecords(await readAll(log), 0, 1235);
  assert.is(await log.recordAt(record(1500).version), null);
  log.append(record(1235));
  await log.flush();
  await log.close();
  const again = await PersistentLog.open(dir, ID, SEGMENT);
  assert.is(again.recovered.tornTail, null);
  assertRecords(await readAll(again), 0, 1236);
  await again.truncateAfter(record(1235).version);
  assertRecords(await readAll(again), 0, 1236);
  await again.truncateAfter(-1n);
  assert.is(again.appendedVersion, -1n);
  assert.equal(await segmentFiles(dir), []);
  await again.close();
  const empty = await PersistentLog.open(dir, ID, SEGMENT);
  assert.equal(await readAll(empty), []);
  await empty.close();
});

test('truncateAfter below the latest snapshot is refused (the records before it are gone)', async () => {
  const log = await filledLog(await tempDir(), 100);
  await log.writeSnapshot({ version: record(50).version, hlc: 1n, bytes: new Uint8Array() });
  const error = await log.truncateAfter(record(20).version).then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  await log.truncateAfter(record(60).version);
  assert.is(log.appendedVersion, record(60).version);
  await log.close();
});

test('versionAt: the newest version whose hlc (and every earlier one) is at or before the time', async () => {
  const log = await filledLog(await tempDir(), 300);
  assert.is(await log.versionAt(999n), -1n);
  assert.is(await log.versionAt(1000n), record(0).version);
  assert.is(await log.versionAt(1150n), record(150).version);
  assert.is(await log.versionAt(1n << 60n), record(299).version);
  log.append({ version: record(300).version, hlc: 5000n, sender: 0, payload: new Uint8Array() });
  log.append({ version: record(301).version, hlc: 4000n, sender: 0, payload: new Uint8Array() });
  assert.is(await log.versionAt(4500n), record(299).version, 'a prefix: 301 came after 300, stamped 5000');
  assert.is(await log.versionAt(5000n), record(301).version);
  await log.close();
});

test('meta: absent at first, replaced atomically, read back after reopen; damaged, a PersistError', async () => {
  const dir = await tempDir();
  const log = await PersistentLog.open(dir, ID);
  assert.is(await log.readMeta(), null);
  const view = { vid: 4, members: [1, 3, 5], trimmedAt: '12345' };
  await Promise.all([log.writeMeta({ vid: 3 }), log.writeMeta(view)]);
  assert.equal(await log.readMeta(), view);
  await log.close();
  const again = await PersistentLog.open(dir, ID);
  assert.equal(await again.readMeta(), view);
  await writeFile(join(dir, 'meta.json'), '{"format": "squall-log-meta/1", "meta": ');
  const error = await again.readMeta().then(() => null, (e: unknown) => e);
  assert.instance(error, PersistError);
  await again.close();
});

test('hybrid logical clock: stamps strictly increase when the wall clock stalls or goes back, and pass remotes', () => {
  let ms = 1_000_000;
  const clock = new HybridLogicalClock(() => ms);
  const a = clock.now();
  assert.is(hlcMs(a), 1_000_000);
  const b = clock.now();
  assert.ok(b > a);
  ms -= 500;
  const c = clock.now();
  assert.ok(c > b, 'the wall clock went back, the stamp did not');
  const remote = (2_000_000n << 16n) + 7n;
  const d = clock.update(remote);
  assert.ok(d > remote && d > c);
  assert.ok(clock.now() > d);
  ms = 3_000_000;
  assert.is(clock.now(), 3_000_000n << 16n, 'back on the wall clock once it is ahead');
  assert.is(hlcMs(hlcOf(3_000_000)), 3_000_000);
  assert.ok(hlcOf(3_000_000) >= clock.last);
  assert.throws(() => clock.update(-1n), /u64/);
});

test.run();
