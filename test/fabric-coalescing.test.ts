// Coalescing on the send side: when a peer's socket is full, a plain write of exactly the range of the
// newest queued, unsent frame refreshes that frame instead of queuing another. The receiver here is a raw
// peer this file drives (two sockets, one per lane): it completes the handshake, stops reading the data
// lane until the sender has queued a backlog, then reads every frame and checks what arrived and in which
// order.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { Arena } from '../ts/arena.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { NativeFabric } from '../ts/fabric/native.js';
import * as map from '../ts/generated/memory-map.js';
import { HELLO, hello, helloOf, parseFrames, type Frame } from './support/wire.js';

const TAG = 0x600d;
const D = map.DYNAMIC_BASE;
const BULK = { offset: D, length: 60 * 1024 };   // snapshot-sized data range
const X = D + 128 * 1024;                        // an 8-byte counter
const Y = D + 128 * 1024 + 64;                   // another one
const IMM = D + 128 * 1024 + 128;                // written with an immediate: never merged

test('fabric: writes of the same range queued behind a full socket merge into the newest frame, in order', async () => {
  // Each lane's socket answers its HELLO as member 7; the data lane's bytes after the HELLO are collected.
  let socket!: Socket;
  const sockets: Socket[] = [];
  const chunks: Buffer[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let head = Buffer.alloc(0);
    s.on('data', (d) => {
      if (head.length >= 40) { if (s === socket) chunks.push(d); return; }
      head = Buffer.concat([head, d]);
      if (head.length < 40) return;
      const h = helloOf(head);
      assert.is(h.type, HELLO);
      if (h.lane === 0) { socket = s; if (head.length > 40) chunks.push(head.subarray(40)); }
      s.write(hello(7, TAG, h.lane));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const arena = Arena.create({ memberId: 1, bytes: 4 << 20 });
  const fabric = NativeFabric.create(arena, { memberId: 1, layoutTag: TAG });
  const ring = new CompletionRing(arena, 0);
  try {
    fabric.connect(7, '127.0.0.1', port);
    // the handshake (answered by the server above on each lane): wait for PEER_CONNECTED
    let connected = false;
    for (let i = 0; i < 200 && !connected; i++) {
      ring.drain((kind) => { if (kind === map.CompletionKind.PEER_CONNECTED) connected = true; });
      if (!connected) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(connected, 'handshake completed');
    chunks.length = 0;
    socket.pause(); // stop reading: the kernel buffers fill, then the fabric must queue

    const before = fabric.stats();
    let bulkWrites = 0;
    while (fabric.stats().framesCoalesced === before.framesCoalesced && bulkWrites < 20_000) {
      arena.u8.fill(bulkWrites & 0xff, BULK.offset, BULK.offset + BULK.length);
      fabric.write(7, BULK.offset, BULK.length);
      bulkWrites++;
    }
    assert.ok(bulkWrites < 20_000, 'the socket filled and the queue began to merge');
    const lastBulkByte = (bulkWrites - 1) & 0xff;

    for (let v = 1; v <= 1000; v++) { arena.i64[X >> 3] = BigInt(v); fabric.write(7, X, 8); }
    arena.i64[Y >> 3] = 1n; fabric.write(7, Y, 8);
    arena.i64[X >> 3] = 2000n; fabric.write(7, X, 8);
    arena.i64[IMM >> 3] = 5n; fabric.writeImm(7, IMM, 8, 42);
    arena.i64[IMM >> 3] = 6n; fabric.writeImm(7, IMM, 8, 43);
    // Mostly merged: on a busy machine the poller may get a few frames out while the loop runs (the
    // receiver's kernel buffer grows), so not necessarily all 999.
    const coalesced = fabric.stats().framesCoalesced - before.framesCoalesced;
    assert.ok(coalesced >= 500, `1000 writes of X behind a full socket were mostly merged (${coalesced} merged)`);

    socket.resume();
    const expectedTail = 5;
    let frames: Frame[] = [];
    for (let i = 0; i < 500; i++) {
      frames = parseFrames(Buffer.concat(chunks));
      if (frames.length > 0 && frames[frames.length - 1]!.imm === 43) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const tail = frames.slice(-expectedTail).map((f) => [f.type, f.offset, f.payload.readBigInt64LE(0), f.imm]);
    // Whatever left before the queue merged them, X's frames carry increasing values, the last one 1000.
    const xs = frames.filter((f) => f.offset === X).map((f) => f.payload.readBigInt64LE(0));
    assert.ok(
      xs.every((v, i) => i === 0 || v > xs[i - 1]!), `X's frames carry increasing values (${xs.length} frames)`);
    assert.equal(tail, [
      [2, X, 1000n, 0],    // the thousand writes of X: the frame they merged into carries the newest value
      [2, Y, 1n, 0],       // Y was queued after it, so the next X could not merge into it
      [2, X, 2000n, 0],
      [3, IMM, 5n, 42],    // writes with an immediate are never merged
      [3, IMM, 6n, 43],
    ]);
    const bulk = frames.filter((f) => f.offset === BULK.offset);
    assert.ok(bulk.length < bulkWrites, `bulk writes merged (${bulk.length} frames for ${bulkWrites} writes)`);
    assert.is(bulk[bulk.length - 1]!.payload[0], lastBulkByte, 'the last bulk frame carries the last bytes written');
    for (const f of bulk) {
      assert.ok(f.payload.every((b) => b === f.payload[0]), 'each bulk frame is one whole snapshot');
    }
  } finally {
    fabric.close();
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test.run();
