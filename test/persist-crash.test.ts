// The persistent log across real process crashes: a child process appends as fast as group commit takes it and is
// killed with SIGKILL at a different point each time; the next open must hold every record the child was told was
// durable, in order, byte for byte, and nothing that was never appended. Three rounds in one directory, each of
// two children in a row (the second takes over the killed one's lock) before the check. A process crash keeps the
// page cache, so this checks the log's bookkeeping and recovery, not the disk's flush (see docs/persistence.md).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PersistentLog } from '../ts/persist/log.js';
import { ID, readAll, removeTempDirs, tempLogDir } from './support/persist.js';
import { crashPayload } from './support/persist-child.js';

const CHILD = fileURLToPath(new URL('./support/persist-child.js', import.meta.url));
const SEGMENT_BYTES = 256 << 10;

test.after(removeTempDirs);

/** Runs the child until it reported `durableAtLeast` (past where it opened), then SIGKILLs it. */
function appendUntilKilled(dir: string, durableAtLeast: number): Promise<{ opened: number; durable: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(SEGMENT_BYTES)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let opened = -2;
    let durable = -1;
    let text = '';
    let errors = '';
    child.stderr.on('data', (d: Buffer) => { errors += d; });
    child.stdout.on('data', (d: Buffer) => {
      text += d;
      const lines = text.split('\n');
      text = lines.pop()!;
      for (const line of lines) {
        const [what, v] = line.split(' ');
        if (what === 'open') opened = Number(v);
        if (what === 'durable') durable = Number(v);
      }
      if (opened > -2 && durable >= opened + durableAtLeast) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ opened, durable });
      else reject(new Error(`the appending child exited (${code ?? signal}) before it was killed: ${errors}`));
    });
  });
}

test('SIGKILL during group commits: every record reported durable is there, in order, after each crash', async () => {
  const dir = await tempLogDir();
  let previous = -1;
  for (const round of [1500, 4000, 9000]) {
    const first = await appendUntilKilled(dir, round);
    assert.is(first.opened, previous, 'the child opened at the version the last check found');
    const { opened, durable } = await appendUntilKilled(dir, round / 2);
    assert.ok(opened >= first.durable, `the second child opened at ${opened}, after ${first.durable}`);
    const log = await PersistentLog.open(dir, ID, { segmentBytes: SEGMENT_BYTES });
    const last = Number(log.appendedVersion);
    assert.ok(last >= durable, `the log ends at ${last}, the child was told ${durable} was durable`);
    const records = await readAll(log);
    assert.is(records.length, last + 1, 'no gap, nothing before 0');
    for (const r of records) {
      const n = Number(r.version);
      assert.is(r.hlc, BigInt(n));
      assert.is(r.sender, 2);
      assert.equal(r.payload, crashPayload(n), `record ${n}`);
    }
    await log.close();
    previous = last;
  }
});

test.run();
