// The persistent log on a disk that fills up: a 1 MiB tmpfs mounted for the test (root only; skipped otherwise,
// saying why). Appends run until a group commit meets ENOSPC: the log reports one PersistError through onError
// saying the disk is full and what to do, refuses appends and flushes after, and everything that was durable
// before is intact when the log is opened again. And the advice each other disk error gets.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersistentLog } from '../ts/persist/log.js';
import { PersistError } from '../ts/errors.js';
import { ioError } from '../ts/persist/files.js';
import { ID, readAll } from './support/persist.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('persist-enospc: skipped — mounting a small tmpfs to fill needs root');
const rootTest = isRoot ? test : test.skip;

let mountPoint = '';

test.after(async () => {
  if (mountPoint === '') return;
  let result = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
  // A file left open (a failed assertion before close) keeps the mount busy: detach it lazily then.
  if (result.status !== 0) result = spawnSync('umount', ['-l', mountPoint], { encoding: 'utf8' });
  if (result.status !== 0) console.error(`persist-enospc: umount ${mountPoint} failed: ${result.stderr}`);
  await rm(mountPoint, { recursive: true, force: true });
});

function payloadOf(n: number): Uint8Array { return new Uint8Array(4000).fill(n & 0xff); }

test('the error of each disk failure says what to do (EIO, EACCES, EDQUOT), naming the file and offset', () => {
  const fail = (code: string): PersistError =>
    ioError('a group commit', '/data/t.0/seg-1.log', Object.assign(new Error(code), { code }), 4096);
  const eio = fail('EIO');
  assert.is(eio.code, 'ERR_SQUALL_PERSIST');
  assert.is(eio.file, '/data/t.0/seg-1.log');
  assert.is(eio.offset, 4096);
  assert.match(eio.message, 'I/O error');
  assert.match(eio.message, 'restart this member');
  assert.match(fail('EACCES').message, 'not writable');
  assert.match(fail('EDQUOT').message, 'over quota');
  assert.instance(fail('EIO').cause, Error);
});

rootTest('a full disk: one PersistError through onError, appends refused, durable records intact', async () => {
  mountPoint = await mkdtemp(join(tmpdir(), 'squall-enospc-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { encoding: 'utf8' });
  assert.is(mounted.status, 0, `mount -t tmpfs: ${mounted.stderr}`);
  const dir = join(mountPoint, 'tickets.0');
  const log = await PersistentLog.open(dir, ID, { segmentBytes: 256 << 10 });
  const errors: PersistError[] = [];
  log.onError((e) => errors.push(e));
  let n = 0;
  let durableBeforeFailure = -1n;
  // 4 KiB records, a flush every 8: the disk fills within a group commit at the latest after 1 MiB.
  while (errors.length === 0 && n < 1000) {
    for (let k = 0; k < 8; k++, n++) {
      log.append({ version: BigInt(n), hlc: BigInt(n), sender: 1, payload: payloadOf(n) });
    }
    durableBeforeFailure = log.durableVersion;
    await log.flush().catch(() => undefined); // the failure is asserted through onError below
  }
  assert.is(errors.length, 1, 'onError is called once');
  const error = errors[0]!;
  if (process.env.SQUALL_SHOW_ERRORS) console.log(error.message);
  assert.instance(error, PersistError);
  assert.is(error.code, 'ERR_SQUALL_PERSIST');
  assert.match(error.message, 'the disk is full');
  assert.match(error.message, 'free space');
  assert.ok(error.file.startsWith(dir), `the error names the segment (${error.file})`);
  assert.ok(log.durableVersion >= durableBeforeFailure, 'nothing durable is taken back');
  const durable = log.durableVersion;
  assert.ok(durable > 100n, `${durable + 1n} records were durable before the disk filled`);
  assert.is(log.appendedVersion, durable, 'the records of the failed commit are not appended');
  assert.throws(() => log.append({ version: BigInt(n), hlc: 0n, sender: 1, payload: payloadOf(0) }),
    (e: unknown) => e === error);
  await log.flush().then(() => assert.unreachable('flush after the failure'), (e: unknown) => assert.is(e, error));
  await log.close();

  const again = await PersistentLog.open(dir, ID, { segmentBytes: 256 << 10 });
  assert.is(again.recovered.tornTail, null, 'the failed commit was cut back before close');
  assert.is(again.appendedVersion, durable);
  const records = await readAll(again);
  assert.is(records.length, Number(durable) + 1);
  for (const r of records) assert.equal(r.payload, payloadOf(Number(r.version)), `record ${r.version}`);
  await again.close();
  assert.ok((await stat(dir)).isDirectory());
});

test.run();
