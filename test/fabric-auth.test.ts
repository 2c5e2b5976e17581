// Authenticated fabric connections (FabricOptions.authKey, native/auth.h) on the tcp backend, with real
// fabrics and raw sockets that play strangers byte by byte (test/support/wire.ts computes the handshake's
// MACs with node:crypto, independently of the C++). Member 1 listens; 2 is a real peer with the key; 7 is
// expected (granted) but played by whoever the test says.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { ConfigError } from '../ts/errors.js';
import { Lane, WriteStatus } from '../ts/fabric/fabric.js';
import { nativeDigest } from '../ts/fabric/native.js';
import * as map from '../ts/generated/memory-map.js';
import { D, Member, controlGrant, dataGrant, until } from './support/fabric-members.js';
import { defineLaneTests } from './support/lane-tests.js';
import { prng, suiteSeed } from './support/random.js';
import {
  HELLO, LANE_CONTROL, LANE_DATA, RawSocket as Raw, WRITE, authFrame, frame, handshakeMac, hello, helloAuth,
  until as waitFor,
} from './support/wire.js';

const { CompletionKind: K, FailReason: R } = map;
const TAG = 0x5eed;
const KEY = new Uint8Array(randomBytes(32));
const SEED = suiteSeed();

const GRANT_2 = [dataGrant(D, 65536), controlGrant(D + 65536, 4096)];
const RANGE_7_DATA = dataGrant(D + 131072, 65536);
const RANGE_7_CONTROL = controlGrant(D + 196608, 4096);

const arenaHash = (m: Member) => createHash('sha256').update(m.arena.u8.subarray(D)).digest('hex');
const reasons = (m: Member, kind: number, peer: number) => m.seen[0].filter((e) =>
  e.kind === kind && e.peer === peer).map((e) => map.FailReasonName[e.imm]);

/** Member 1 (listening, with `key`, null for none), expecting 2 and 7. */
function listener(key: Uint8Array | null = KEY, handshakeTimeoutMs = 5000): Member {
  const one = new Member(1, { authKey: key ?? undefined, handshakeTimeoutMs });
  one.listen();
  for (const g of GRANT_2) one.fabric.grant(2, g);
  one.fabric.grant(7, RANGE_7_DATA);
  one.fabric.grant(7, RANGE_7_CONTROL);
  return one;
}

/** Connects member `from` to 1 and waits until both report it. */
async function join(one: Member, from: Member, grants = GRANT_2): Promise<void> {
  for (const g of grants) from.fabric.grant(1, g);
  from.fabric.connect(1, '127.0.0.1', one.port);
  await until(
    [one, from], () => one.has(K.PEER_CONNECTED, from.id) && from.has(K.PEER_CONNECTED, 1),
    `${from.id} connected to 1`);
}

/** A write from 2 still lands at 1 (on both lanes). */
async function twoStillWrites(one: Member, two: Member, fill: number): Promise<void> {
  two.arena.u8.fill(fill, D, D + 64);
  Atomics.store(two.arena.i64, (D + 65536) >> 3, BigInt(fill));
  assert.is(two.fabric.write(1, D, 64), WriteStatus.Ok);
  assert.is(two.fabric.write(1, D + 65536, 8, Lane.Control), WriteStatus.Ok);
  await until(
    [one, two], () => one.arena.u8[D + 63] === fill && Atomics.load(one.arena.i64, (D + 65536) >> 3) === BigInt(fill),
    'the writes of 2');
}

/**
 * A raw stranger runs the keyed handshake as 7 on one lane with `key` up to its AUTH; returns the socket and what it
 * sent.
 */
async function strangerHandshake(
  one: Member, key: Uint8Array, lane: number
): Promise<{ raw: Raw; nonce: Uint8Array; replyNonce: Buffer; replyMac: Buffer }> {
  const raw = new Raw(one.port);
  await raw.opened();
  const nonce = new Uint8Array(randomBytes(16));
  raw.send(helloAuth(7, TAG, lane, nonce));
  await waitFor(() => raw.received.length >= 88 || raw.closed, 'the answer of 1');
  assert.ok(raw.received.length >= 88, 'member 1 answered the HELLO');
  assert.is(raw.received.readUInt32LE(16), 64, 'a keyed answer is 64 bytes');
  const replyNonce = raw.received.subarray(24 + 16, 24 + 32), replyMac = raw.received.subarray(24 + 32, 24 + 64);
  const want = handshakeMac(
    KEY, 'acceptor', { initiatorNonce: nonce, acceptorNonce: replyNonce, initiator: 7, acceptor: 1, lane, tag: TAG });
  assert.ok(want.equals(replyMac), 'the acceptor proves the key (the MAC matches node:crypto)');
  const mac = handshakeMac(
    key, 'initiator', { initiatorNonce: nonce, acceptorNonce: replyNonce, initiator: 7, acceptor: 1, lane, tag: TAG });
  raw.send(authFrame(mac));
  return { raw, nonce, replyNonce, replyMac };
}

/** Waits for `count` CONNECTION_REJECTED events at 1; returns their reasons. */
async function rejections(one: Member, count: number): Promise<string[]> {
  await until([one], () => reasons(one, K.CONNECTION_REJECTED, 0xffff).length >= count, `${count} rejection(s)`);
  return reasons(one, K.CONNECTION_REJECTED, 0xffff);
}

// ------------------------------------------------------------------------------------------- primitives

test('SHA-256 and HMAC-SHA256 of the addon equal node:crypto on 3000 random inputs (seeded)', () => {
  const rand = prng(SEED ^ 0x5a5a);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  for (let i = 0; i < 3000; i++) {
    // Lengths around the block (64) and padding (56) boundaries are the interesting ones.
    const n = i < 200 ? i : Math.floor(rand() * (rand() < 0.5 ? 130 : 3000));
    const data = bytes(n);
    const key = bytes(Math.floor(rand() * 150)); // keys longer than a block are hashed first
    const sha = createHash('sha256').update(data).digest();
    const mac = createHmac('sha256', key).update(data).digest();
    assert.ok(sha.equals(nativeDigest(null, data)), `SHA-256 of ${n} bytes (SQUALL_TEST_SEED=${SEED})`);
    assert.ok(
      mac.equals(nativeDigest(key, data)), `HMAC-SHA256 of ${n} bytes, key ${key.length} (SQUALL_TEST_SEED=${SEED})`);
  }
});

test('authKey is checked: 16 to 64 bytes of a Uint8Array, else ConfigError', () => {
  for (const bad of [new Uint8Array(15), new Uint8Array(65), 'secret-secret-secret', [1, 2, 3], null]) {
    assert.throws(() => new Member(3, { authKey: bad as unknown as Uint8Array }),
      (e: unknown) => e instanceof ConfigError &&
      /authKey/.test((e as Error).message));
  }
  new Member(3, { authKey: new Uint8Array(16) }).close();
  new Member(3, { authKey: new Uint8Array(64) }).close();
});

// ------------------------------------------------------------------------------------------------ peers

test('two members with the same key connect and write on both lanes, both ways', async () => {
  const one = listener(), two = new Member(2, { authKey: KEY });
  try {
    await join(one, two);
    await twoStillWrites(one, two, 0x21);
    one.arena.u8.fill(0x12, D + 100, D + 200);
    assert.is(one.fabric.writeImm(2, D + 100, 100, 9), WriteStatus.Ok);
    Atomics.store(one.arena.i64, (D + 65544) >> 3, 99n);
    assert.is(one.fabric.write(2, D + 65544, 8, Lane.Control), WriteStatus.Ok);
    await until(
      [one, two], () => two.has(K.WRITE_IMM, 1, 9) && Atomics.load(two.arena.i64, (D + 65544) >> 3) === 99n,
      'the writes of 1');
    assert.is(two.arena.u8[D + 199], 0x12);
    assert.equal(reasons(one, K.CONNECTION_REJECTED, 0xffff), [], 'nothing refused');
  } finally {
    one.close();
    two.close();
  }
});

test('a different key: the initiator refuses the acceptor (AUTH_FAILED), nobody connects, nothing is written',
  async () => {
  const one = listener(), two = new Member(2, { authKey: new Uint8Array(randomBytes(32)), connectTimeoutMs: 2000 });
  try {
    const before = arenaHash(one);
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', one.port);
    await until([one, two], () => two.has(K.PEER_FAILED, 1), '2 to give up on 1');
    assert.equal(reasons(two, K.PEER_FAILED, 1), ['AUTH_FAILED']);
    await until(
      [one], () => reasons(one, K.CONNECTION_REJECTED, 0xffff).length >= 1, 'member 1 to drop the half-done handshake');
    assert.not.ok(
      one.has(K.PEER_CONNECTED, 2) || one.has(K.PEER_FAILED, 2), '2 never connected at 1, nor failed there');
    assert.is(two.fabric.write(1, D, 8), WriteStatus.Failed);
    assert.is(arenaHash(one), before, 'the arena of 1 is untouched');
  } finally {
    one.close();
    two.close();
  }
});

test('a key on one side only is refused by the keyed side and by the keyless one (AUTH_FAILED)', async () => {
  // Keyed acceptor, keyless initiator.
  let one = listener(KEY), two = new Member(2, { connectTimeoutMs: 2000 });
  try {
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', one.port);
    assert.equal((await rejections(one, 1))[0], 'AUTH_FAILED');
    await until([one, two], () => two.has(K.PEER_FAILED, 1), '2 to see its connection closed');
    assert.not.ok(one.has(K.PEER_CONNECTED, 2) || two.has(K.PEER_CONNECTED, 1));
  } finally {
    one.close();
    two.close();
  }
  // Keyless acceptor, keyed initiator.
  one = listener(null);
  two = new Member(2, { authKey: KEY, connectTimeoutMs: 2000 });
  try {
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', one.port);
    assert.equal((await rejections(one, 1))[0], 'AUTH_FAILED');
    await until([one, two], () => two.has(K.PEER_FAILED, 1), '2 to see its connection closed');
    assert.not.ok(one.has(K.PEER_CONNECTED, 2) || two.has(K.PEER_CONNECTED, 1));
  } finally {
    one.close();
    two.close();
  }
});

// ------------------------------------------------------------------------------------------- strangers

test('a stranger without the key (keyless HELLO, then writes) is refused at once: nothing written, nothing answered',
  async () => {
  const one = listener(), two = new Member(2, { authKey: KEY });
  try {
    await join(one, two);
    const before = arenaHash(one);
    const raw = new Raw(one.port);
    await raw.opened();
    raw.send(
      Buffer.concat([
        hello(7, TAG, LANE_DATA),
        frame({ type: WRITE, offset: RANGE_7_DATA.offset, payload: new Uint8Array(64).fill(0xee) }),
      ]));
    assert.equal(await rejections(one, 1), ['AUTH_FAILED']);
    await waitFor(() => raw.closed, 'the stranger closed');
    assert.is(raw.received.length, 0, 'nothing was sent back');
    assert.is(arenaHash(one), before, 'the arena is untouched');
    assert.not.ok(one.has(K.PEER_CONNECTED, 7) || one.has(K.PEER_FAILED, 7), '7 untouched');
    await twoStillWrites(one, two, 0x31);
  } finally {
    one.close();
    two.close();
  }
});

test('a stranger with a wrong key gets an answer but its AUTH fails: AUTH_FAILED, arena untouched, the real 7 still ' +
  'connects', async () => {
  const one = listener(), two = new Member(2, { authKey: KEY });
  try {
    await join(one, two);
    const before = arenaHash(one);
    const wrong = new Uint8Array(randomBytes(32));
    for (const lane of [LANE_CONTROL, LANE_DATA]) {
      const { raw } = await strangerHandshake(one, wrong, lane);
      // Writes right behind the bad AUTH, in the same stream: none may land.
      raw.send(
        frame({
          type: WRITE, offset: lane === LANE_DATA ? RANGE_7_DATA.offset : RANGE_7_CONTROL.offset,
          payload: new Uint8Array(64).fill(0xee),
        }));
      await waitFor(() => raw.closed, 'the stranger closed');
    }
    assert.equal(await rejections(one, 2), ['AUTH_FAILED', 'AUTH_FAILED']);
    assert.is(arenaHash(one), before, 'the arena is untouched');
    assert.not.ok(one.has(K.PEER_FAILED, 7), 'the member the stranger claimed to be is not failed');
    // The real 7, with the key, connects afterwards and writes.
    const seven = new Member(7, { authKey: KEY });
    try {
      await join(one, seven, [RANGE_7_DATA, RANGE_7_CONTROL]);
      seven.arena.u8.fill(0x77, RANGE_7_DATA.offset, RANGE_7_DATA.offset + 32);
      assert.is(seven.fabric.write(1, RANGE_7_DATA.offset, 32), WriteStatus.Ok);
      await until([one], () => one.arena.u8[RANGE_7_DATA.offset + 31] === 0x77, 'the write of the real 7');
    } finally {
      seven.close();
    }
    await twoStillWrites(one, two, 0x41);
  } finally {
    one.close();
    two.close();
  }
});

test('a stranger claiming a connected member is refused before any proof, and that member keeps its lanes',
  async () => {
  const one = listener(), two = new Member(2, { authKey: KEY });
  try {
    await join(one, two);
    const raw = new Raw(one.port);
    await raw.opened();
    raw.send(helloAuth(2, TAG, LANE_CONTROL, new Uint8Array(randomBytes(16))));
    assert.equal(await rejections(one, 1), ['DUPLICATE_PEER']);
    assert.is(raw.received.length, 0, 'no answer, so no MAC to study');
    assert.not.ok(one.has(K.PEER_FAILED, 2));
    await twoStillWrites(one, two, 0x51);
  } finally {
    one.close();
    two.close();
  }
});

test('a stranger that answers the HELLO with writes instead of AUTH is refused (BAD_TYPE); one that stays silent ' +
  'times out', async () => {
  const one = listener(KEY, 300);
  try {
    const before = arenaHash(one);
    const raw = new Raw(one.port);
    await raw.opened();
    raw.send(helloAuth(7, TAG, LANE_DATA, new Uint8Array(randomBytes(16))));
    await waitFor(() => raw.received.length >= 88, 'the answer');
    raw.send(frame({ type: WRITE, offset: RANGE_7_DATA.offset, payload: new Uint8Array(64).fill(0xee) }));
    assert.equal(await rejections(one, 1), ['BAD_TYPE']);
    const silent = new Raw(one.port);
    await silent.opened();
    silent.send(helloAuth(7, TAG, LANE_DATA, new Uint8Array(randomBytes(16))));
    assert.equal((await rejections(one, 2))[1], 'HANDSHAKE_TIMEOUT');
    assert.is(arenaHash(one), before);
    silent.socket.destroy();
  } finally {
    one.close();
  }
});

// --------------------------------------------------------------------------------------------- replays

/** A TCP relay in front of `port` that records each connection's bytes in both directions. */
interface Recorded { toAcceptor: Buffer; toInitiator: Buffer }
async function recordingRelay(
  port: number
): Promise<{ server: Server; port: number; conns: Recorded[]; sockets: Socket[] }> {
  const conns: Recorded[] = [];
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const rec: Recorded = { toAcceptor: Buffer.alloc(0), toInitiator: Buffer.alloc(0) };
    conns.push(rec);
    const upstream = netConnect(port, '127.0.0.1');
    sockets.push(client, upstream);
    client.on('data', (d) => { rec.toAcceptor = Buffer.concat([rec.toAcceptor, d]); upstream.write(d); });
    upstream.on('data', (d) => { rec.toInitiator = Buffer.concat([rec.toInitiator, d]); client.write(d); });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { server, port: (server.address() as { port: number }).port, conns, sockets };
}

test('a recorded handshake replayed on new connections is refused, in both directions (AUTH_FAILED)', async () => {
  const one = listener(), two = new Member(2, { authKey: KEY });
  const relay = await recordingRelay(one.port);
  try {
    // Record a real handshake of 2 with 1, and a write.
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', relay.port);
    await until(
      [one, two], () => one.has(K.PEER_CONNECTED, 2) && two.has(K.PEER_CONNECTED, 1), '2 connected through the relay');
    two.arena.u8.fill(0x61, D, D + 64);
    assert.is(two.fabric.write(1, D, 64), WriteStatus.Ok);
    await until([one], () => one.arena.u8[D + 63] === 0x61, 'the recorded write');
    assert.is(relay.conns.length, 2);
    for (const c of relay.conns) assert.is(c.toAcceptor.readUInt8(3), HELLO);

    // Replay what 2 sent to a fresh 1 (same id, key and grants, as after a restart): its nonce is new.
    const fresh = listener();
    try {
      const before = arenaHash(fresh);
      const raws: Raw[] = [];
      for (const c of relay.conns) {
        const raw = new Raw(fresh.port);
        await raw.opened();
        raw.send(c.toAcceptor);
        raws.push(raw);
      }
      assert.equal(await rejections(fresh, 2), ['AUTH_FAILED', 'AUTH_FAILED']);
      await waitFor(() => raws.every((r) => r.closed), 'the replays closed');
      assert.is(arenaHash(fresh), before, 'nothing of the replayed write landed');
      assert.not.ok(fresh.has(K.PEER_CONNECTED, 2) || fresh.has(K.PEER_FAILED, 2));
    } finally {
      fresh.close();
    }

    // Replay what 1 answered to a fresh 2 dialling an impostor acceptor: 2's nonce is new.
    const replies = relay.conns.map((c) => c.toInitiator);
    const impostor = createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d) => {
        const lane = d.readUInt8(24 + 8);
        const reply = replies.find((r) => r.readUInt8(24 + 8) === lane)!;
        s.write(reply.subarray(0, 24 + 64));
      });
    });
    await new Promise<void>((res) => impostor.listen(0, '127.0.0.1', res));
    const twoAgain = new Member(2, { authKey: KEY, connectTimeoutMs: 2000 });
    try {
      for (const g of GRANT_2) twoAgain.fabric.grant(1, g);
      twoAgain.fabric.connect(1, '127.0.0.1', (impostor.address() as { port: number }).port);
      await until([twoAgain], () => twoAgain.has(K.PEER_FAILED, 1), '2 to refuse the replayed answer');
      assert.equal(reasons(twoAgain, K.PEER_FAILED, 1), ['AUTH_FAILED']);
      assert.not.ok(twoAgain.has(K.PEER_CONNECTED, 1));
    } finally {
      twoAgain.close();
      impostor.close();
    }
  } finally {
    for (const s of relay.sockets) s.destroy();
    relay.server.close();
    one.close();
    two.close();
  }
});

test('an acceptor answer whose MAC is for another lane is refused (the lane is in the transcript)', async () => {
  // A raw acceptor that proves the key correctly but for the data lane on the control lane's connection.
  const server = createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const lane = d.readUInt8(24 + 8), nonce = d.subarray(24 + 16, 24 + 32);
      const mine = new Uint8Array(randomBytes(16));
      const mac = handshakeMac(
        KEY, 'acceptor',
        { initiatorNonce: nonce, acceptorNonce: mine, initiator: 2, acceptor: 1, lane: 1 - lane, tag: TAG });
      s.write(helloAuth(1, TAG, lane, mine, mac));
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const two = new Member(2, { authKey: KEY, connectTimeoutMs: 2000 });
  try {
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', (server.address() as { port: number }).port);
    await until([two], () => two.has(K.PEER_FAILED, 1), '2 to refuse');
    assert.equal(reasons(two, K.PEER_FAILED, 1), ['AUTH_FAILED']);
  } finally {
    two.close();
    server.close();
  }
});

test('a raw peer that runs the keyed handshake right (node:crypto) connects and writes on both lanes', async () => {
  const one = listener();
  try {
    const control = await strangerHandshake(one, KEY, LANE_CONTROL);
    const data = await strangerHandshake(one, KEY, LANE_DATA);
    await until([one], () => one.has(K.PEER_CONNECTED, 7), '7 connected');
    data.raw.send(frame({ type: WRITE, offset: RANGE_7_DATA.offset, payload: new Uint8Array(16).fill(0x71) }));
    control.raw.send(frame({ type: WRITE, offset: RANGE_7_CONTROL.offset, payload: new Uint8Array(8).fill(0x72) }));
    await until(
      [one], () => one.arena.u8[RANGE_7_DATA.offset + 15] === 0x71 && one.arena.u8[RANGE_7_CONTROL.offset + 7] === 0x72,
      'both writes of 7');
    control.raw.socket.destroy();
    data.raw.socket.destroy();
  } finally {
    one.close();
  }
});

// The lane suite, on fabrics that authenticate every connection.
defineLaneTests('tcp+authKey', { authKey: KEY });

test.run();
