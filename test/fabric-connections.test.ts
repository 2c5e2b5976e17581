// The fabric's connections, one by one (NativeFabric.connections(), native/api_stats.cc): a connected pair
// reports each other as connected and counts, per peer, exactly the bytes written; a disconnect shows as
// failed with its reason at both ends; and the send queue's depth rises while the receiver stops reading and
// falls back to zero once it reads again (a raw receiver this file drives, as in fabric-coalescing.test.ts).
// The pair's checks run on tcp and, when the addon has it, on libfabric's tcp provider.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { Arena } from '../ts/arena.js';
import type { FabricConnection } from '../ts/fabric/connections.js';
import type { FabricOptions } from '../ts/fabric/fabric.js';
import { NativeFabric, nativeBackends } from '../ts/fabric/native.js';
import { D, Member, connectPair, controlGrant, until } from './support/fabric-members.js';
import { HELLO, hello, helloOf } from './support/wire.js';

const FRAME_HEADER_BYTES = 24;

const to = (m: Member, peer: number): FabricConnection => {
  const c = m.fabric.connections().find((x) => x.peer === peer);
  assert.ok(c, `member ${m.id} knows peer ${peer}`);
  return c;
};

const backends: [string, Partial<FabricOptions>][] = [['tcp', {}]];
if (nativeBackends().includes('libfabric')) backends.push(['libfabric/tcp', { backend: 'libfabric', provider: 'tcp' }]);

for (const [name, options] of backends) {
  test(`connections (${name}): a connected pair reports each other connected, and counts per peer exactly the ` +
    'bytes written; a disconnect shows as failed at both ends, with its reason', async () => {
    const a = new Member(1, options);
    const b = new Member(2, options);
    try {
      await connectPair(a, b, [controlGrant(D, 64 * 1024)]);
      await until([a, b], () => to(a, 2).state === 'connected' && to(b, 1).state === 'connected', 'both connected');
      assert.equal(a.fabric.connections().map((c) => c.peer), [2], 'one connection per peer');
      assert.equal([to(a, 2).failReason, to(a, 2).queuedFrames, to(a, 2).queuedBytes], [null, 0, 0]);
      const sentBefore = to(a, 2).bytesOut;
      const receivedBefore = to(b, 1).bytesIn;
      assert.ok(sentBefore > 0, 'the initiator\'s HELLOs count');

      const writes = 500;
      for (let i = 0; i < writes; i++) a.fabric.write(2, D + 8 * i, 8); // distinct ranges: none merges
      const expected = writes * (FRAME_HEADER_BYTES + 8);
      await until([a, b], () => to(b, 1).bytesIn - receivedBefore >= expected, 'the writes arrived');
      await until([a, b], () => to(a, 2).queuedFrames === 0, 'the send queue emptied');
      assert.is(to(a, 2).bytesOut - sentBefore, expected, 'bytes sent to the peer: every frame, header included');
      assert.is(to(b, 1).bytesIn - receivedBefore, expected, 'bytes received from the peer: the same');
      assert.is(to(a, 2).queuedBytes, 0);

      a.fabric.disconnect(2);
      await until([a, b], () => to(a, 2).state === 'failed' && to(b, 1).state === 'failed', 'both failed');
      assert.is(to(a, 2).failReason, 'LOCAL_CLOSE');
      assert.is(to(b, 1).failReason, 'CLOSED');
    } finally {
      a.close();
      b.close();
    }
    assert.equal(a.fabric.connections(), [], 'a closed fabric has none');
  });
}

test('connections (tcp): the send queue deepens while the receiver stops reading, and empties once it reads',
  async () => {
    const TAG = 0x600d;
    const sockets: Socket[] = [];
    let data: Socket | undefined;
    const server = createServer((s) => {
      sockets.push(s);
      let head = Buffer.alloc(0);
      s.on('data', (d) => {
        if (head.length >= 40) return; // after the HELLO: read and dropped
        head = Buffer.concat([head, d]);
        if (head.length < 40) return;
        const h = helloOf(head);
        assert.is(h.type, HELLO);
        if (h.lane === 0) data = s;
        s.write(hello(7, TAG, h.lane));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const arena = Arena.create({ memberId: 1, bytes: 4 << 20 });
    const fabric = NativeFabric.create(arena, { memberId: 1, layoutTag: TAG });
    const peer7 = () => fabric.connections().find((c) => c.peer === 7)!;
    try {
      fabric.connect(7, '127.0.0.1', port);
      for (let i = 0; i < 300 && peer7().state !== 'connected'; i++) await new Promise((r) => setTimeout(r, 10));
      assert.is(peer7().state, 'connected');
      data!.pause(); // the kernel's buffers fill, then the fabric queues

      const FRAME = 60 * 1024; // snapshot-sized; two alternating ranges so that no write merges into the newest
      let writes = 0;
      while (peer7().queuedFrames < 8 && writes < 20_000) {
        fabric.write(7, D + (writes % 2) * FRAME, FRAME);
        writes++;
      }
      const deep = peer7();
      assert.ok(deep.queuedFrames >= 8, `frames queued behind a reader that stopped (${deep.queuedFrames})`);
      const frameBytes = FRAME_HEADER_BYTES + FRAME;
      assert.ok(deep.queuedBytes > (deep.queuedFrames - 1) * frameBytes && deep.queuedBytes <=
        deep.queuedFrames * frameBytes, `bytes queued fit the frames queued (${deep.queuedBytes})`);

      data!.resume();
      for (let i = 0; i < 500 && peer7().queuedFrames > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal([peer7().queuedFrames, peer7().queuedBytes], [0, 0], 'the queue emptied once the peer read');
    } finally {
      fabric.close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

test.run();
