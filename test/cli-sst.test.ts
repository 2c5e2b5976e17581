// `squall sst --config FILE --id N`: three real CLI processes form a table from a JSON file, count,
// print their copies of the table, and stop cleanly on SIGINT.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../ts/harness/cluster.js';
import { startCli, waitFor, type Run } from './support/cli-runs.js';

function start(config: string, id: number): Run {
  return startCli(['sst', '--config', config, '--id', String(id), '--interval-ms', '20']);
}

test('squall sst: three members from one config file count, see each other, and stop on SIGINT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-'));
  const runs: Run[] = [];
  try {
    const ports = await freePorts(3);
    const config = join(dir, 'table.json');
    writeFileSync(
      config,
      JSON.stringify({
        members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })), suspicionTimeoutMs: 500,
      }));
    for (const id of [2, 0, 1]) runs.push(start(config, id)); // any start order
    for (const r of runs) await waitFor(r, /all peers connected/, 20_000);
    // every member prints a line in which all three counters have moved past zero
    for (const r of runs) await waitFor(r, /counters 0:[1-9]\d* 1:[1-9]\d* 2:[1-9]\d*/, 10_000);
    for (const r of runs) r.child.kill('SIGINT');
    const codes = await Promise.all(
      runs.map((r) => new Promise<number | null>((resolve) => r.child.once('exit', resolve))));
    assert.equal(codes, [0, 0, 0], 'every member exits 0 on SIGINT');
    for (const r of runs) assert.match(r.err, /stopped/);
  } finally {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('squall sst: a missing file, a member not in the file, and bad flags get clear errors and exit 1', async () => {
  const run = async (args: string[]) => {
    const r = startCli(['sst', ...args]);
    return { code: await r.exit, err: r.err };
  };
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-'));
  try {
    const config = join(dir, 'table.json');
    writeFileSync(config, JSON.stringify({ members: [{ id: 0, address: '127.0.0.1:1' }] }));
    const missing = await run(['--config', join(dir, 'nope.json'), '--id', '0']);
    assert.is(missing.code, 1);
    assert.match(missing.err, /cannot read the configuration file .*ERR_SQUALL_CONFIG/);
    const stranger = await run(['--config', config, '--id', '9']);
    assert.match(stranger.err, /member 9 is not in the members list/);
    const noId = await run(['--config', config]);
    assert.match(noId.err, /needs --config FILE and --id N/);
    const bogus = await run(['--bogus']);
    assert.match(bogus.err, /Unknown option '--bogus'.*ERR_SQUALL_CONFIG/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
