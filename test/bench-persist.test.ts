// squall bench persist --members 2: a short run end to end prints the documented JSON — every message the
// members delivered became durable at every member (counted by the persistence frontier), the members agree on
// the order, the disk's figures of the same run are there, the logs fdatasync'ed — and its data directories are
// gone afterwards. No timing thresholds: this machine is shared.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const cli = fileURLToPath(new URL('../ts/cli/main.js', import.meta.url));
const run = (args: string[]) => promisify(execFile)(process.execPath, [cli, 'bench', 'persist', ...args],
  { timeout: 180_000 });

test('bench persist --members 2 --seconds 1 --json: durable everywhere, fsyncs, latency, the disk', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-test-bench-persist-'));
  try {
    const { stdout, stderr } = await run(['--members', '2', '--seconds', '1', '--dir', dir, '--json']);
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      members: number; bytes: number; sent: number; hashesAgree: boolean; fsyncsPerSec: number;
      perNode: { msgsPerSec: number }; ordered: { msgsPerSec: number };
      persistLatencyUs: { p50: number; samples: number };
      disk: { append256KiBMBps: number; ceilingPerNode: number; sharedFdatasyncUs: { samples: number } };
      perMember: Array<{ persisted: number; fsyncs: number }>;
    };
    assert.is(r.members, 2);
    assert.is(r.bytes, 1024);
    assert.ok(r.sent > 0, JSON.stringify(r));
    assert.ok(r.hashesAgree, 'same order everywhere, and every delivered message durable everywhere');
    for (const m of r.perMember) {
      assert.is(m.persisted, r.sent, 'each member counted every flooded message durable at every member');
      assert.ok(m.fsyncs > 0, 'the logs fdatasync');
    }
    assert.ok(r.perNode.msgsPerSec > 0 && r.ordered.msgsPerSec > 0 && r.fsyncsPerSec > 0);
    assert.ok(r.persistLatencyUs.samples > 0 && r.persistLatencyUs.p50 > 0);
    assert.ok(r.disk.append256KiBMBps > 0 && r.disk.ceilingPerNode > 0 && r.disk.sharedFdatasyncUs.samples > 0);
    assert.match(stderr, /\[bench persist .*\] latency: every member sends/);
    assert.equal(readdirSync(dir), [], 'the data directories are removed at the end');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench persist: --size without --members is refused, saying what it goes with', async () => {
  const failed = await run(['--size', '1KiB']).then(() => null, (e: { stderr: string }) => e);
  assert.ok(failed, 'the command fails');
  assert.match(failed!.stderr, /--size goes with --members N/);
});

test.run();
