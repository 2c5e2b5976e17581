// RDMC across real processes on loopback: the native fabric, the rdmc worker, the WebAssembly schedules.
// Every receiver's bytes are checked against the sender's sha256.

import { test } from 'uvu';
import { crashTest } from './support/crash.js';
import * as assert from 'uvu/assert';
import { RdmcCluster, type RdmcClusterMember } from '../ts/harness/cluster.js';
import type { RdmcHarnessEvent } from '../ts/harness/rdmc-process.js';
import type { AlgorithmName } from '../ts/rdmc/schedule.js';

const MiB = 1 << 20;
const BLOCK = 256 * 1024;

type Message = Extract<RdmcHarnessEvent, { type: 'message' }>;
const messageNo = (seq: number) => (e: RdmcHarnessEvent): e is Message => e.type === 'message' && e.seq === seq;

async function sendAndCheck(
  members: number, sizes: number[], algorithm: AlgorithmName = 'binomial', maxMessageBytes = 64 * MiB
): Promise<void> {
  const cluster = await RdmcCluster.start({
    members,
    groups: [{
      id: 1, members: Array.from({ length: members }, (_, i) => i), maxMessageBytes, blockBytes: BLOCK, algorithm,
    }],
  });
  try {
    const [sender] = cluster.members as [RdmcClusterMember];
    let seq = 0;
    for (const size of sizes) {
      seq++;
      const { sha256 } = await cluster.request(sender, { cmd: 'fill', group: 1, size, seed: seq * 7919 });
      await cluster.request(sender, { cmd: 'send', group: 1, size, times: 1 });
      for (const m of cluster.members) {
        const e = (await cluster.waitForEvent(m, messageNo(seq), 30_000)) as Message;
        assert.is(e.size, size, `member ${m.id}: size of message ${seq} (${algorithm}, n=${members})`);
        assert.is(
          e.sha256, sha256, `member ${m.id}: bytes of message ${seq} (${size} bytes, ${algorithm}, n=${members})`);
      }
    }
  } finally {
    await cluster.close();
  }
}

const sizes = [1, BLOCK - 1, BLOCK + 1, 64 * MiB];

for (const n of [2, 3, 4, 5, 8]) {
  test(`rdmc: binomial pipeline, ${n} member processes: 1 byte, 1 block − 1, 1 block + 1 and 64 MiB ` +
    'arrive intact everywhere', async () => {
    await sendAndCheck(n, sizes);
  });
}

test('rdmc: a 1 GiB message reaches 2 receivers intact (binomial pipeline, 3 member processes)', async () => {
  await sendAndCheck(3, [1024 * MiB], 'binomial', 1024 * MiB);
});

for (const algorithm of ['sequential', 'chain', 'tree'] as const) {
  test(`rdmc: ${algorithm}, 5 member processes: messages of 1 byte to 8 MiB arrive intact everywhere`, async () => {
    await sendAndCheck(5, [1, BLOCK + 1, 8 * MiB + 3], algorithm, 8 * MiB + 3);
  });
}

crashTest('rdmc: a receiver killed mid-transfer makes the transfer fail at the others with a clear error, never a ' +
  'hang', async () => {
  const cluster = await RdmcCluster.start({
    members: 4, groups: [{ id: 1, members: [0, 1, 2, 3], maxMessageBytes: 64 * MiB, blockBytes: 64 * 1024 }],
  });
  try {
    const [sender, a, victim, b] = cluster.members as [
      RdmcClusterMember, RdmcClusterMember, RdmcClusterMember, RdmcClusterMember
    ];
    await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'hash-messages', on: false })));
    await cluster.request(sender, { cmd: 'fill', group: 1, size: 64 * MiB, seed: 1 });
    const sending = cluster.request(sender, { cmd: 'send', group: 1, size: 64 * MiB, times: 50 });
    await cluster.waitForEvent(a, (e) => e.type === 'message', 30_000); // transfers are flowing
    victim.process.kill('SIGKILL');
    const started = Date.now();
    const err = await sending.then(() => null, (e: Error) => e);
    assert.ok(err, 'the send failed');
    assert.match(err!.message, /member 2 failed/);
    assert.ok(Date.now() - started < 10_000, 'and failed promptly');
    for (const m of [a, b]) {
      const e = await cluster.waitForEvent(m, (ev) => ev.type === 'failed', 10_000);
      assert.equal(
        [e.type, (e as { peer: number }).peer, (e as { code: string }).code], ['failed', 2, 'ERR_SQUALL_PEER_FAILED']);
    }
  } finally {
    await cluster.close();
  }
});

test.run();
