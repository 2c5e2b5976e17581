// A step's pushes, held and sent together (ts/fabric/staged-pushes.ts), over the real native fabric: the
// receiver is a raw peer this file drives (one socket per lane, the handshake answered as member 7), which
// reads every frame and checks what arrived, on which lane, in which order, and in how many sends.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { Arena } from '../ts/arena.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { Lane, WriteStatus } from '../ts/fabric/fabric.js';
import { NativeFabric } from '../ts/fabric/native.js';
import { StagedPushes } from '../ts/fabric/staged-pushes.js';
import * as map from '../ts/generated/memory-map.js';
import { HELLO, hello, helloOf, parseFrames, until, type Frame } from './support/wire.js';

const TAG = 0x5ba7;
const D = map.DYNAMIC_BASE;
const SLOTS = { offset: D, length: 4096 };   // data a counter names
const MORE = { offset: D + 8192, length: 512 };
const INDEX = D + 16384;                      // the counter that names them
const ACKS = D + 16384 + 64;                  // a control-lane counter
const BYTES = D + 32768;                      // records sent on the control lane before their counter

/** A raw peer answering as member 7 and keeping each lane's bytes after the HELLO. */
async function rawPeer() {
  const sockets: Socket[] = [];
  const lanes: Buffer[][] = [[], []];
  const server = createServer((s) => {
    sockets.push(s);
    let head = Buffer.alloc(0);
    let lane = -1;
    s.on('data', (d) => {
      if (lane >= 0) { lanes[lane]!.push(d); return; }
      head = Buffer.concat([head, d]);
      if (head.length < 40) return;
      const h = helloOf(head);
      assert.is(h.type, HELLO);
      lane = h.lane;
      if (head.length > 40) lanes[lane]!.push(head.subarray(40));
      s.write(hello(7, TAG, h.lane));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const frames = (lane: Lane): Frame[] => parseFrames(Buffer.concat(lanes[lane]!));
  const close = () => { for (const s of sockets) s.destroy(); server.close(); };
  return { port, frames, close };
}

type Peer = Awaited<ReturnType<typeof rawPeer>>;

/** Runs `body` with a native fabric connected to a fresh raw peer; closes both after. */
async function withPeer(body: (arena: Arena, fabric: NativeFabric, peer: Peer) => Promise<void>): Promise<void> {
  const peer = await rawPeer();
  const arena = Arena.create({ memberId: 1, bytes: 4 << 20 });
  const fabric = NativeFabric.create(arena, { memberId: 1, layoutTag: TAG });
  try {
    const ring = new CompletionRing(arena, 0);
    fabric.connect(7, '127.0.0.1', peer.port);
    let up = false;
    await until(() => {
      ring.drain((kind) => { if (kind === map.CompletionKind.PEER_CONNECTED) up = true; });
      return up;
    }, 'the raw peer connected');
    await body(arena, fabric, peer);
  } finally {
    fabric.close();
    peer.close();
  }
}

const i64 = (arena: Arena, at: number, v: number) => { arena.i64[at >> 3] = BigInt(v); };

test('staged pushes: one send per lane per step; a counter pushed twice leaves once, after its data', () =>
  withPeer(async (arena, fabric, peer) => {
    const pushes = new StagedPushes(fabric);
    const before = fabric.stats().sendCalls;

    pushes.hold();
    arena.u8.fill(1, SLOTS.offset, SLOTS.offset + SLOTS.length);
    i64(arena, INDEX, 1);
    const batch = new Float64Array([SLOTS.offset, SLOTS.length, INDEX, 8]);
    assert.is(pushes.writeBatch(7, batch, 2, Lane.Data), WriteStatus.Ok);       // the shard's push
    assert.is(pushes.write(7, ACKS, 8, Lane.Control), WriteStatus.Ok);          // its acknowledgements
    arena.u8.fill(2, BYTES, BYTES + 256);
    assert.is(pushes.write(7, BYTES, 256, Lane.Control), WriteStatus.Ok);       // a mailbox's records
    pushes.hold();                                                              // a nested hold
    arena.u8.fill(3, MORE.offset, MORE.offset + MORE.length);
    i64(arena, INDEX, 2);
    batch.set([MORE.offset, MORE.length, INDEX, 8]);
    pushes.writeBatch(7, batch, 2, Lane.Data);                                  // more data, the counter again
    i64(arena, ACKS, 5);
    pushes.write(7, ACKS, 8, Lane.Control);                                     // the acknowledgements again
    pushes.release();
    assert.is(fabric.stats().sendCalls, before, 'nothing left while held');
    pushes.release();

    await until(() => peer.frames(Lane.Data).length >= 3 && peer.frames(Lane.Control).length >= 2, 'every frame');
    assert.is(fabric.stats().sendCalls - before, 2, 'one send per lane');
    const data = peer.frames(Lane.Data).map((f) => [f.offset, f.length]);
    assert.equal(data, [[SLOTS.offset, SLOTS.length], [MORE.offset, MORE.length], [INDEX, 8]],
      'the counter leaves once, after all the data it names');
    assert.is(peer.frames(Lane.Data)[2]!.payload.readBigInt64LE(0), 2n, 'with its newest value');
    const control = peer.frames(Lane.Control);
    assert.equal(control.map((f) => [f.offset, f.length]), [[BYTES, 256], [ACKS, 8]]);
    assert.is(control[1]!.payload.readBigInt64LE(0), 5n);

    // Not held: straight through, one send each.
    const sent = fabric.stats().sendCalls;
    pushes.write(7, ACKS, 8, Lane.Control);
    assert.is(fabric.stats().sendCalls - sent, 1);
  }));

test('staged pushes: writeAll first sends what is staged on its lane, so order on the lane holds', () =>
  withPeer(async (_arena, fabric, peer) => {
    const pushes = new StagedPushes(fabric);
    pushes.hold();
    pushes.write(7, ACKS, 8, Lane.Control);       // a shard's frozen counters…
    pushes.write(7, SLOTS.offset, 64, Lane.Data); // (another lane: stays staged)
    assert.is(pushes.writeAll(BYTES, 64, Lane.Control), 1); // …then the membership push that relies on them
    await until(() => peer.frames(Lane.Control).length >= 2, 'the control frames');
    assert.equal(peer.frames(Lane.Control).map((f) => f.offset), [ACKS, BYTES]);
    assert.is(peer.frames(Lane.Data).length, 0, 'the data lane still held');
    pushes.release();
    await until(() => peer.frames(Lane.Data).length >= 1, 'the data frame at release');
  }));

test('staged pushes: a batch the fabric refuses at release is reported with its peer', () => {
  const arena = Arena.create({ memberId: 1, bytes: 4 << 20 });
  const fabric = NativeFabric.create(arena, { memberId: 1, layoutTag: TAG });
  try {
    const pushes = new StagedPushes(fabric);
    const refused: Array<[number, WriteStatus]> = [];
    pushes.onRefused = (peer, status) => refused.push([peer, status]);
    pushes.hold();
    pushes.write(9, ACKS, 8, Lane.Control); // never connected
    pushes.write(9, ACKS, 8, Lane.Control);
    pushes.release();
    assert.equal(refused, [[9, WriteStatus.NotConnected]], 'once per peer and lane');
    pushes.release(); // an extra release is harmless
    assert.is(pushes.held, false);
  } finally {
    fabric.close();
  }
});

test('staged pushes: a throw while sending keeps the lists not yet sent, and a later flush sends them', () => {
  const arena = Arena.create({ memberId: 1, bytes: 4 << 20 });
  const fabric = NativeFabric.create(arena, { memberId: 1, layoutTag: TAG });
  try {
    const pushes = new StagedPushes(fabric);
    const refused: number[] = [];
    pushes.onRefused = (peer) => {
      refused.push(peer);
      if (peer === 9) throw new Error('the caller failed');
    };
    pushes.hold();
    pushes.write(9, ACKS, 8, Lane.Control);  // none of these peers is connected: each batch is refused
    pushes.write(10, ACKS, 8, Lane.Control);
    pushes.write(11, ACKS, 8, Lane.Data);
    assert.throws(() => pushes.release(), /the caller failed/);
    assert.equal(refused, [9]);
    pushes.flush();
    assert.equal(refused, [9, 10, 11], 'the rest sent once each, in the order staged');
    pushes.flush();
    assert.equal(refused, [9, 10, 11], 'and not again');
  } finally {
    fabric.close();
  }
});

test.run();
