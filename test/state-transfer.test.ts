// State transfer's parts in one process (ts/group/state-transfer.ts): which members receive which shard's
// state from whom, and the records between a source and a recipient — sent by sendState, assembled and
// checked by StateReceiver — intact, damaged in flight, and when the source's snapshot() failed. The
// transfer between real processes is in join-processes.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { validateGroupConfig } from '../ts/group/config.js';
import { Checksums, sendState, StateReceiver, stateTransfers, type Transfer } from '../ts/group/state-transfer.js';
import { StateTransferError } from '../ts/errors.js';
import { pattern } from './support/pattern.js';

const config = validateGroupConfig({
  members: [0, 1, 2].map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })),
  subgroups: {
    kv: { shards: 2, members: { min: 1, max: 2 } },
    log: { shards: 1, members: { min: 1, max: 9 } },
  },
});

test('stateTransfers: joiners and members the plan moves receive from the lowest-ranked old member of the shard ' +
  'still in the view', () => {
  // [0,1,2] → kv shards [0],[1] (one each: 3 members / 2 shards); [0,1,2,3] → [0,1],[2,3]. Member 1 moves
  // to shard 0: it receives shard 0's state from 0 and is the source of shard 1's, which it held.
  const plan = stateTransfers(config, [0, 1, 2], [0, 1, 2, 3], new Set(['kv', 'log']));
  assert.equal(plan, [
    { subgroup: 'kv', index: 0, shard: 0, source: 0, recipients: [1] },
    { subgroup: 'kv', index: 0, shard: 1, source: 1, recipients: [2, 3] },
    { subgroup: 'log', index: 1, shard: 0, source: 0, recipients: [3] },
  ] satisfies Transfer[]);
  assert.equal(
    stateTransfers(config, [0, 1, 2], [0, 1, 2, 3], new Set(['log'])).map((t) => t.subgroup), ['log'],
    'only the subgroups asked for');
  assert.equal(stateTransfers(config, [], [0, 1, 2], new Set(['kv', 'log'])), [], 'a first view starts fresh');
  // Shard 1 of kv had only member 1; with 1 gone, its new members have no source and start fresh.
  assert.equal(
    stateTransfers(config, [0, 1, 2], [0, 2, 3, 4], new Set(['kv'])).find((t) => t.shard === 1),
    { subgroup: 'kv', index: 0, shard: 1, source: null, recipients: [3, 4] });
});

/** Runs a transfer of `bytes` from member 0 to a receiver at member 1, passing each record through `tamper`. */
async function transfer(
  snapshot: { bytes: Uint8Array; version: bigint; failed?: string },
  tamper: (record: Uint8Array) => Uint8Array = (r) => r, maxPayload = 512 * 1024
) {
  const receiver = new StateReceiver({ subgroup: 'kv', index: 0, shard: 0, source: 0, recipients: [1] });
  await sendState(async (to, record) => {
    assert.is(to, 1);
    assert.ok(
      record.byteLength <= maxPayload, `a record of ${record.byteLength} bytes fits the mailbox's ${maxPayload}`);
    receiver.accept(0, tamper(record.slice())); // the mailbox's copy: the sender's buffer is its own
  }, [1], snapshot, maxPayload, new Checksums());
  return receiver.done;
}

test('a snapshot arrives whole, in chunks, with its version; small and large (checksums on the pool) alike',
  async () => {
  for (const size of [0, 1000, 3 * 1024 * 1024 + 17, 12 * 1024 * 1024]) {
    const bytes = new Uint8Array(randomBytes(size));
    const got = await transfer({ bytes, version: 42n });
    assert.is(got.version, 42n);
    assert.is(got.bytes.byteLength, size);
    assert.ok(Buffer.from(got.bytes).equals(Buffer.from(bytes)), `${size} bytes arrive unchanged`);
  }
});

test('the smallest mailboxes (4 KiB: records of at most 2 KiB) carry a 1 MiB snapshot', async () => {
  const bytes = new Uint8Array(randomBytes(1 << 20));
  const got = await transfer({ bytes, version: 3n }, (r) => r, 2040);
  assert.ok(Buffer.from(got.bytes).equals(Buffer.from(bytes)));
});

test('a source that sends nothing fails the transfer after the idle timeout', async () => {
  const receiver = new StateReceiver({ subgroup: 'kv', index: 0, shard: 0, source: 0, recipients: [1] }, 50);
  const keepAlive = setTimeout(() => {}, 5000); // the receiver's own timer does not hold the process
  const error = await receiver.done.then(() => null, (e: Error) => e);
  clearTimeout(keepAlive);
  assert.instance(error, StateTransferError);
  assert.match(error!.message, /nothing arrived for 50 ms; start the member again to rejoin/);
});

test('a chunk damaged in flight fails its checksum: StateTransferError, nothing restored', async () => {
  for (const size of [300 * 1024, 12 * 1024 * 1024]) { // checked here, and on the pool
    let chunks = 0;
    const error = await transfer({ bytes: new Uint8Array(randomBytes(size)), version: 1n }, (record) => {
      if (new DataView(record.buffer).getUint32(0, true) === 2 && chunks++ === 1) record[100] ^= 0xff;
      return record;
    }).then(() => null, (e: Error) => e);
    assert.instance(error, StateTransferError);
    assert.match(
      error!.message,
      /the state of subgroup 'kv' shard 0 from member 0: chunk 1 failed its checksum; the member joins again to retry/);
  }
});

test("a source whose snapshot() threw tells the recipient why", async () => {
  const error = await transfer({
    bytes: new Uint8Array(0), version: -1n, failed: 'Inventory has no snapshot() method',
  }).then(() => null, (e: Error) => e);
  assert.instance(error, StateTransferError);
  assert.match(error!.message, pattern([
    /member 0's snapshot\(\) failed \(Inventory has no snapshot\(\) method\); /,
    /fix the class's snapshot\(\), then join again/,
  ]));
});

test('records from a member that is not the source are ignored', async () => {
  const receiver = new StateReceiver({ subgroup: 'kv', index: 0, shard: 0, source: 0, recipients: [1] });
  await sendState(async (_to, record) => {
    receiver.accept(2, record.slice());
  }, [1], { bytes: new Uint8Array(10), version: 1n }, 512 * 1024, new Checksums());
  const settled = await Promise.race([
    receiver.done.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 50)),
  ]);
  assert.is(settled, 'waiting');
  receiver.fail(new StateTransferError('test over'));
});

test.run();
