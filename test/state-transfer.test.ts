// State transfer's parts in one process (ts/group/state-transfer.ts): which members receive which shard's
// state from whom, and the records between a source and a recipient — sent by sendState, assembled and
// checked by StateReceiver — intact, damaged in flight, and when the source's snapshot() failed; large ones
// over a real TCP stream (ts/group/state-stream.ts), with strangers at its port and a source that misbehaves.
// The transfer between real processes is in join-processes.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { validateGroupConfig } from '../ts/group/config.js';
import { sendState, StateReceiver, stateTransfers, type Transfer } from '../ts/group/state-transfer.js';
import { StateTransferError } from '../ts/errors.js';
import { connect } from 'node:net';
import { once } from 'node:events';
import { decodeBeginStream, encodeBeginStream, StreamOffer, STREAM_MIN_BYTES } from '../ts/group/state-stream.js';
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
  }, [1], snapshot, maxPayload);
  return receiver.done;
}

test('a snapshot arrives whole, in chunks, with its version; small and large alike',
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
  for (const size of [300 * 1024, 12 * 1024 * 1024]) {
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
  }, [1], { bytes: new Uint8Array(10), version: 1n }, 512 * 1024);
  const settled = await Promise.race([
    receiver.done.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 50)),
  ]);
  assert.is(settled, 'waiting');
  receiver.fail(new StateTransferError('test over'));
});

const STREAM = { host: '127.0.0.1', timeoutMs: 5000 };
const SOURCE = { subgroup: 'kv', index: 0, shard: 0, source: 0, recipients: [1] };

/** A transfer over a stream: the mailbox records pass through `mailbox` (which may look at them). */
async function streamed(bytes: Uint8Array, mailbox: (record: Uint8Array) => Promise<void> | void = () => {},
  receiver = new StateReceiver(SOURCE, 5000, '127.0.0.1')) {
  const kinds: number[] = [];
  await sendState(async (_to, record) => {
    kinds.push(new DataView(record.buffer, record.byteOffset).getUint32(0, true));
    await mailbox(record);
    receiver.accept(0, record.slice());
  }, [1], { bytes, version: 9n }, 512 * 1024, undefined, STREAM);
  return { got: await receiver.done, kinds };
}

test('a state of 4 MiB or more goes over a TCP stream of its own: one mailbox record, the bytes intact; a '
  + 'smaller one through the mailboxes', async () => {
  for (const size of [STREAM_MIN_BYTES, 24 * 1024 * 1024 + 5]) {
    const bytes = new Uint8Array(randomBytes(size));
    const { got, kinds } = await streamed(bytes);
    assert.equal(kinds, [7], 'the mailbox carries the begin-stream record only');
    assert.is(got.version, 9n);
    assert.ok(Buffer.from(got.bytes).equals(Buffer.from(bytes)), `${size} bytes arrive unchanged`);
    assert.ok(got.streamMs >= 0);
  }
  const { kinds } = await streamed(new Uint8Array(STREAM_MIN_BYTES - 1));
  assert.ok(kinds.length > 1 && kinds.every((k) => k === 1 || k === 2), 'below 4 MiB: begin and chunks');
});

test("strangers at a stream's port are closed (a wrong token, a silent one, junk) and the recipient still gets "
  + 'the state', async () => {
  const bytes = new Uint8Array(randomBytes(STREAM_MIN_BYTES + 1));
  const strangers: Array<Promise<unknown>> = [];
  const { got } = await streamed(bytes, async (record) => {
    const begin = decodeBeginStream(record)!;
    for (const junk of [new Uint8Array(32), new Uint8Array(100).fill(1), begin.token.subarray(0, 10)]) {
      const socket = connect({ host: '127.0.0.1', port: begin.port });
      socket.on('error', () => {}); // closed by the source: what is tested
      socket.write(junk);
      strangers.push(once(socket, 'close'));
    }
    await Promise.all(strangers.slice(0, 2)); // the wrong tokens are turned away before the recipient comes
  });
  assert.ok(Buffer.from(got.bytes).equals(Buffer.from(bytes)));
  await Promise.all(strangers);
});

test('a stream\'s listener holds at most 16 connections: strangers that connect and stay silent cannot pile up '
  + 'file descriptors (the ones past it are closed at once)', async () => {
  const offer = await StreamOffer.open('127.0.0.1', 3000);
  const sockets = Array.from({ length: 24 }, () => {
    const socket = connect({ host: '127.0.0.1', port: offer.port });
    socket.on('error', () => {}); // closed by the listener: what is tested
    return socket;
  });
  let closed = 0;
  for (const socket of sockets) socket.on('close', () => { closed++; });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(closed >= 8, `the connections past 16 are closed at once (${closed} of 24 closed)`);
  for (const socket of sockets) socket.destroy();
  offer.close();
});

/**
 * A fake source: a listener that takes the recipient's token and then writes `write(socket)`'s bytes; the
 * receiver is handed a begin-stream record for a `chunks`-chunk state of 1 KiB chunks.
 */
async function fakeSource(chunks: number, write: (socket: import('node:net').Socket) => void) {
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    socket.on('error', () => {}); // the recipient closes it once it failed: expected
    socket.once('data', () => write(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const receiver = new StateReceiver(SOURCE, 3000, '127.0.0.1');
  receiver.accept(0, encodeBeginStream({
    chunkBytes: 1024, totalBytes: chunks * 1024, version: 1n, chunks, port, records: false,
    token: new Uint8Array(32),
  }));
  const error = await receiver.done.then(() => null, (e: Error) => e);
  server.close();
  return error;
}

/** What a stream carries for `chunks`: their CRCs (`crcs`, default each one's own), then their bytes. */
function streamOf(chunks: Uint8Array[], crcs = chunks.map((c) => crc32(c))): Buffer {
  const head = Buffer.alloc(4 * crcs.length);
  crcs.forEach((crc, i) => head.writeUInt32LE(crc, 4 * i));
  return Buffer.concat([head, ...chunks]);
}

test('a stream that lies fails the transfer: a damaged chunk, a stream cut short, a begin that does not add '
  + 'up, a port nobody listens on, a wrong token', async () => {
  const data = [new Uint8Array(1024).fill(1), new Uint8Array(1024).fill(2)];
  const cases: Array<[string, (socket: import('node:net').Socket) => void, RegExp]> = [
    ['a damaged chunk', (s) => { s.end(streamOf(data, [crc32(data[0]!), 7])); }, /chunk 1 failed its checksum/],
    ['cut short', (s) => { s.end(streamOf(data).subarray(0, 8 + 1500)); }, /it ended after 1500 of 2048 bytes/],
  ];
  for (const [what, write, message] of cases) {
    const error = await fakeSource(2, write);
    assert.instance(error, StateTransferError, what);
    assert.match(error!.message, message, what);
  }
  // Bytes past the announced end are not read: the state is whole, and the connection is closed.
  const extra = await fakeSource(2, (s) => { s.end(Buffer.concat([streamOf(data), new Uint8Array(5)])); });
  assert.is(extra, null, 'the state arrives; what follows it is dropped');
  const liar = new StateReceiver(SOURCE, 3000, '127.0.0.1');
  liar.accept(0, encodeBeginStream({ chunkBytes: 1024, totalBytes: 4096, version: 1n, chunks: 3, port: 9,
    records: false, token: new Uint8Array(32) }));
  let error = await liar.done.then(() => null, (e: Error) => e);
  assert.match(error!.message, /does not add up \(4096 bytes in 3 chunks of 1024\)/);
  // A begin that adds up but claims more than an ArrayBuffer holds: refused, not thrown out of accept().
  const huge = new StateReceiver(SOURCE, 3000, '127.0.0.1');
  const hugeBytes = 2 ** 52, hugeChunk = 2 ** 32 - 1;
  huge.accept(0, encodeBeginStream({ chunkBytes: hugeChunk, totalBytes: hugeBytes, version: 1n,
    chunks: Math.ceil(hugeBytes / hugeChunk), port: 9, records: false, token: new Uint8Array(32) }));
  error = await huge.done.then(() => null, (e: Error) => e);
  assert.match(error!.message, /do not fit in this process's memory/);
  const nobody = new StateReceiver(SOURCE, 3000, '127.0.0.1');
  nobody.accept(0, encodeBeginStream({ chunkBytes: 1024, totalBytes: 1024, version: 1n, chunks: 1, port: 1,
    records: false, token: new Uint8Array(32) }));
  error = await nobody.done.then(() => null, (e: Error) => e);
  assert.match(error!.message, /the state's stream from 127\.0\.0\.1:1: .*ECONNREFUSED/);
  // A real source and a wrong token: the source closes the connection, the recipient fails.
  const bytes = new Uint8Array(STREAM_MIN_BYTES);
  const wrong = new StateReceiver(SOURCE, 3000, '127.0.0.1');
  const sending = sendState(async (_to, record) => {
    record = record.slice();
    record[40]! ^= 1;
    wrong.accept(0, record);
  }, [1], { bytes, version: 1n }, 512 * 1024, undefined, { host: '127.0.0.1', timeoutMs: 1000 });
  error = await wrong.done.then(() => null, (e: Error) => e);
  assert.match(error!.message, /it ended after 0 of 4194304 bytes/);
  const sourceError = await sending.then(() => null, (e: Error) => e);
  assert.match(sourceError!.message, /did not connect to this state's stream within 1000 ms/);
});

test.run();
