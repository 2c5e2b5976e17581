// squall bench restart: a small run end to end (1 MiB of state, 300 updates while one member is down) prints
// the documented JSON; the stores agree after the total restart and after the catch-up, which came from the
// log. No timing thresholds: this machine is shared.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const cli = fileURLToPath(new URL('../ts/cli/main.js', import.meta.url));

test('bench restart --state 1MiB --updates 300 --json: totalRestartMs, catchUpMs, records and bytes', async () => {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath, [cli, 'bench', 'restart', '--state', '1MiB', '--updates', '300', '--json'], { timeout: 120_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    members: number; stateBytes: number; totalRestartMs: number; catchUpMs: number;
    catchUp: { records: number; bytes: number };
    runs: Array<{ totalRestartMs: number; rejoinedMs: number; catchUpMs: number; by: string; storesAgree: boolean }>;
  };
  assert.is(r.members, 3);
  assert.is(r.stateBytes, 1 << 20);
  assert.ok(r.totalRestartMs > 0 && r.catchUpMs > 0, JSON.stringify(r));
  assert.equal(r.catchUp, { records: 300, bytes: 300 * 100 });
  assert.is(r.runs.length, 1);
  const [run] = r.runs;
  assert.ok(run!.rejoinedMs > 0 && run!.rejoinedMs <= run!.totalRestartMs, 'Group.join resolves before the call');
  assert.ok(run!.storesAgree, 'every store holds the same entries after the restart and after the catch-up');
  assert.is(run!.by, 'records', 'the member caught up from the log, not from a snapshot');
  assert.match(stderr, /\[bench restart .*\] \[1\/1\] caught up in [\d.]+ m?s \(by records\)/);
});

test.run();
