// Seeded fuzzing of the persistent log. (1) Crash states a power loss can leave: the bytes of every synced group
// commit, then the last commit's bytes with random sectors missing (zeroed) and the file cut at a random point —
// opening must succeed with every synced record and a prefix of the last commit, nothing else. (2) One byte flipped
// in a synced commit that a later commit follows — opening must fail naming that record's file and offset.
// (3) Random appends, flushes, snapshots, truncations and reopens against a model of what the log must hold.
// A failure names its seed; SQUALL_TEST_SEED=<seed> replays it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistentLog, type LogRecord } from '../ts/persist/log.js';
import { PersistError } from '../ts/errors.js';
import { RECORD_HEADER_BYTES } from '../ts/persist/format.js';
import { ID, readAll, removeTempDirs, segmentFiles, tempLogDir } from './support/persist.js';
import { prng, suiteSeed } from './support/random.js';

const SEED = suiteSeed();
test.after(removeTempDirs);

function fuzzRecord(n: number, rand: () => number): LogRecord {
  const payload = new Uint8Array(Math.floor(rand() * 1500));
  for (let i = 0; i < payload.length; i++) payload[i] = (n * 7 + i * 13) & 0xff;
  return { version: BigInt(n * 3 + 1), hlc: BigInt(n), sender: n % 5, payload };
}

function assertSame(got: LogRecord, want: LogRecord, seed: number): void {
  assert.is(got.version, want.version, `seed ${seed}`);
  assert.is(got.hlc, want.hlc, `seed ${seed}`);
  assert.is(got.sender, want.sender, `seed ${seed}`);
  assert.equal(got.payload, want.payload, `seed ${seed}: payload of version ${want.version}`);
}

/** A one-segment log of `commits` group commits; the file's bytes, each commit's end offset, the records. */
async function committedLog(rand: () => number, commits: number):
  Promise<{ dir: string; path: string; bytes: Buffer; ends: number[]; records: LogRecord[]; starts: number[] }> {
  const dir = await tempLogDir();
  const log = await PersistentLog.open(dir, ID);
  const records: LogRecord[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let offset = 0;
  for (let c = 0; c < commits; c++) {
    const count = 1 + Math.floor(rand() * 12);
    for (let k = 0; k < count; k++) {
      const r = fuzzRecord(records.length, rand);
      records.push(r);
      starts.push(offset);
      offset += RECORD_HEADER_BYTES + r.payload.length;
      log.append(r);
    }
    await log.flush();
    ends.push(offset);
  }
  await log.close();
  const [name] = await segmentFiles(dir);
  const path = join(dir, name!);
  const bytes = await readFile(path);
  assert.is(bytes.length, offset);
  return { dir, path, bytes, ends, records, starts };
}

test('fuzz: a power loss in the last group commit leaves every synced record and a prefix of that commit', async () => {
  for (let i = 0; i < 40; i++) {
    const seed = SEED + i;
    const rand = prng(seed);
    const { dir, path, bytes, ends, records, starts } = await committedLog(rand, 2 + Math.floor(rand() * 5));
    const synced = ends[ends.length - 2]!;
    const crashed = Buffer.from(bytes.subarray(0, synced + Math.floor(rand() * (bytes.length - synced + 1))));
    for (let sector = synced; sector < crashed.length; sector += 512) {
      if (rand() < 0.3) crashed.fill(0, sector, Math.min(sector + 512, crashed.length));
    }
    await writeFile(path, crashed);
    const log = await PersistentLog.open(dir, ID);
    const got = await readAll(log);
    const mustHave = starts.filter((s) => s < synced).length;
    assert.ok(got.length >= mustHave, `seed ${seed}: ${got.length} records, ${mustHave} were synced`);
    got.forEach((r, k) => assertSame(r, records[k]!, seed));
    const cut = log.recovered.tornTail;
    const kept = got.length === records.length ? bytes.length : starts[got.length]!;
    assert.is((await stat(path)).size, kept, `seed ${seed}: the file ends after the last record kept`);
    if (cut !== null) assert.is(cut.offset, kept, `seed ${seed}`);
    await log.close();
  }
});

test('fuzz: a byte flipped in a synced commit that a later commit follows is refused, naming its record', async () => {
  for (let i = 0; i < 40; i++) {
    const seed = SEED + 1000 + i;
    const rand = prng(seed);
    const { dir, path, bytes, ends, starts } = await committedLog(rand, 3 + Math.floor(rand() * 4));
    const synced = ends[ends.length - 2]!;
    const at = Math.floor(rand() * synced);
    const damaged = Buffer.from(bytes);
    damaged[at] ^= 1 + Math.floor(rand() * 255);
    await writeFile(path, damaged);
    const error = await PersistentLog.open(dir, ID).then((log) => log.close().then(() => null), (e: unknown) => e);
    assert.instance(error, PersistError, `seed ${seed}: byte ${at} flipped, open did not refuse`);
    const record = starts.filter((s) => s <= at).length - 1;
    assert.is((error as PersistError).offset, starts[record], `seed ${seed}: byte ${at} is in record ${record}`);
    assert.is((error as PersistError).file, path, `seed ${seed}`);
  }
});

test('fuzz: appends, flushes, snapshots, truncations and reopens agree with a model of the log', async () => {
  for (let i = 0; i < 6; i++) {
    const seed = SEED + 2000 + i;
    const rand = prng(seed);
    const dir = await tempLogDir();
    const options = { segmentBytes: 4096 + Math.floor(rand() * 16384) };
    let log = await PersistentLog.open(dir, ID, options);
    let model: LogRecord[] = []; // what the log must hold, in order
    let floor = -1n; // the latest snapshot's version
    let n = 0;
    for (let step = 0; step < 300; step++) {
      const roll = rand();
      if (roll < 0.75) {
        const r = fuzzRecord(n++, rand);
        if (r.version <= floor) continue;
        log.append(r);
        model.push(r);
      } else if (roll < 0.83) {
        await log.flush();
      } else if (roll < 0.88 && model.length > 0) {
        const at = model[Math.floor(rand() * model.length)]!.version;
        if (at < floor) continue;
        await log.writeSnapshot({ version: at, hlc: 0n, bytes: new Uint8Array([Number(at & 0xffn)]) });
        floor = at;
      } else if (roll < 0.93 && model.length > 0) {
        const after = model[Math.floor(rand() * model.length)]!.version;
        if (after < floor) continue;
        await log.truncateAfter(after);
        model = model.filter((r) => r.version <= after);
      } else {
        await log.close();
        log = await PersistentLog.open(dir, ID, options);
        assert.is(log.recovered.tornTail, null, `seed ${seed}`);
      }
    }
    const got = await readAll(log);
    const want = model.slice(model.length - got.length); // the log holds a suffix of the model …
    got.forEach((r, k) => assertSame(r, want[k]!, seed));
    const afterSnapshot = model.filter((r) => r.version > floor).length; // … with every record past the snapshot
    assert.ok(got.length >= afterSnapshot, `seed ${seed}: ${got.length} records, ${afterSnapshot} after ${floor}`);
    const last = model.length > 0 ? model[model.length - 1]!.version : -1n;
    assert.is(log.appendedVersion, last > floor ? last : floor, `seed ${seed}`);
    if (floor >= 0n) assert.is((await log.latestSnapshot())?.version, floor, `seed ${seed}`);
    await log.close();
  }
});

test.run();
