// squall bench multicast: a short run end to end on loopback prints figures of the documented shape, and
// every member delivered the same sequence. No timing thresholds: this machine is shared.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runMulticastSweep, slowestPerMessage } from '../bench/multicast.js';

const cli = fileURLToPath(new URL('../ts/cli/main.js', import.meta.url));
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [cli, 'bench', 'multicast', ...args], { timeout: 120_000 });

test('bench multicast: 3 members, 256-byte messages, half a second: positive figures, one delivery order', async () => {
  const { stdout } = await run(['--members', '3', '--size', '256', '--seconds', '0.5', '--isolated', '50', '--json']);
  const lines = stdout.trim().split('\n');
  const r = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown> & {
    perNode: { msgsPerSec: number; mbytesPerSec: number }; latencyUs: { p50: number; p99: number; samples: number };
    isolatedLatencyUs: { p50: number; p99: number; samples: number };
    perMember: Array<{ delivered: number }>; sent: number;
  };
  const keys = [
    'members', 'bytes', 'seconds', 'perNode', 'latencyUs', 'isolatedLatencyUs', 'hashesAgree', 'window', 'senders',
    'suspicions', 'viewChanges',
  ];
  for (const key of keys) assert.ok(key in r, `has ${key}`);
  assert.is(r.suspicions, 0, 'no member was suspected');
  assert.is(r.viewChanges, 0, 'the group never changed');
  assert.is(r.members, 3);
  assert.is(r.bytes, 256);
  assert.is(r.seconds, 0.5);
  assert.ok(r.perNode.msgsPerSec > 0 && r.perNode.mbytesPerSec > 0, JSON.stringify(r.perNode));
  assert.ok(
    Math.abs(r.perNode.mbytesPerSec - (r.perNode.msgsPerSec * 256) / 1e6) < 0.01,
    'mbytesPerSec = msgsPerSec × bytes / 1e6');
  assert.ok(
    r.latencyUs.p50 > 0 && r.latencyUs.p99 >= r.latencyUs.p50 && r.latencyUs.samples > 0, JSON.stringify(r.latencyUs));
  const iso = r.isolatedLatencyUs;
  assert.ok(iso.p50 > 0 && iso.p99 >= iso.p50 && iso.samples === 50, JSON.stringify(iso));
  assert.is(r.perMember.length, 3);
  for (const m of r.perMember) assert.is(m.delivered, r.sent, 'every member delivered every message sent');
  assert.is(r.hashesAgree, true);
});

test('bench multicast --large: RDMC messages mixed into the flood are delivered everywhere in one order', async () => {
  const { stdout } = await run([
    '--members', '3', '--size', '1KiB', '--large', '128KiB', '--large-every', '8', '--seconds', '0.5', '--no-latency',
    '--json',
  ]);
  const lines = stdout.trim().split('\n');
  const r = JSON.parse(lines[lines.length - 1]!) as {
    large: { bytes: number; every: number }; sent: number; perMember: Array<{ delivered: number }>;
    hashesAgree: boolean; perNode: { msgsPerSec: number; mbytesPerSec: number }
  };
  assert.equal(r.large, { bytes: 131072, every: 8 });
  for (const m of r.perMember) {
    assert.is(m.delivered, r.sent, 'every member delivered every message sent, large ones too');
  }
  assert.is(r.hashesAgree, true);
  assert.ok(
    r.perNode.mbytesPerSec > (r.perNode.msgsPerSec * 1024) / 1e6, 'the large messages count in the bytes delivered');
});

test('bench multicast: a sweep that fails at a later size keeps the sizes it finished', async () => {
  // The second size cannot run (below the 16-byte header); the first ran on real members and is kept.
  const { rows, failed } = await runMulticastSweep(
    { members: 2, seconds: 0.3, senders: 'all', skipLatency: true }, [256, 8]);
  assert.is(rows.length, 1, 'the 256-byte run is kept');
  assert.is(rows[0]!.bytes, 256);
  assert.ok(rows[0]!.perNode.msgsPerSec > 0);
  assert.is(failed?.bytes, 8, 'the failure names its size');
  assert.match(failed!.error.message, /--size must be at least 16 bytes/);
});

test('bench multicast: a message counts with its slowest member', () => {
  const slowest = slowestPerMessage([
    { sender: [0, 0, 1], k: [0, 1, 0], ms: [0.1, 0.2, 0.3] },
    { sender: [0, 1, 0], k: [0, 0, 1], ms: [0.5, 0.1, 0.1] },
  ]);
  assert.equal(slowest.sort(), [0.2, 0.3, 0.5]);
});

test('bench multicast: bad flags get clear errors', async () => {
  const err = (args: string[]) => run(args).then(() => '', (e: { stderr: string }) => e.stderr);
  assert.match(await err(['--senders', 'some']), /--senders must be 'all' or 'one'.*ERR_SQUALL_CONFIG/);
  assert.match(await err(['--size', '8']), /--size must be at least 16 bytes/);
  assert.match(await err(['--members', '1']), /at least 2/);
  assert.match(await err(['--seconds', 'soon']), /--seconds/);
  assert.match(await err(['--bogus']), /Unknown option '--bogus'.*bench multicast --help/);
});

test.run();
