// A seeded fuzz of the fabric's frames against a real listener (native/tcp/connection.cc and handshake.cc),
// with and without an auth key. Thousands of connections each send one input — random bytes, mutated HELLOs of
// both kinds, headers with random fields, writes before any handshake, truncated frames, keyed handshakes
// with mangled proofs — and half-close. "Insiders" (members the listener expects, played by raw sockets
// that know the key) run the handshake right on both lanes and then send a stream of writes, some mutated.
// Afterwards: every connection was closed by the listener, nothing landed outside the insiders' grants,
// every insider that connected failed once, and a real member still connects and writes on both lanes.
// A failure names the seed: SQUALL_TEST_SEED=<seed> npm test -- fabric-fuzz replays it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { Lane, WriteStatus } from '../ts/fabric/fabric.js';
import * as map from '../ts/generated/memory-map.js';
import { D, Member, controlGrant, dataGrant, until } from './support/fabric-members.js';
import { prng, suiteSeed } from './support/random.js';
import {
  AUTH, HELLO, LANE_CONTROL, LANE_DATA, MAGIC, RawSocket as Raw, VERSION, WRITE, WRITE_IMM, authFrame, frame,
  handshakeMac, hello, helloAuth,
  until as waitFor,
} from './support/wire.js';

const { CompletionKind: K } = map;
const SEED = suiteSeed();
const KEY = new Uint8Array(32).map((_, i) => (i * 37 + SEED) & 0xff);
const TAG = 0x5eed;
const MAX_FRAME = 64 * 1024;

// Member 1's ranges: 2's (the real member), 7's (expected, never connected), then one pair per insider.
const GRANT_2 = [dataGrant(D, 65536), controlGrant(D + 65536, 4096)];
const GRANT_7 = [dataGrant(D + 131072, 65536), controlGrant(D + 196608, 4096)];
const INSIDERS = 24;
const INSIDER_BASE = D + 0x40000;
const INSIDER_END = INSIDER_BASE + INSIDERS * 0x2000;
const insiderId = (i: number) => 100 + i;
const insiderData = (i: number) => dataGrant(INSIDER_BASE + i * 0x2000, 0x1000);
const insiderControl = (i: number) => controlGrant(INSIDER_BASE + i * 0x2000 + 0x1000, 256);

/** The arena outside the insiders' ranges (which their good writes may change). */
const outsideInsiders = (m: Member) => createHash('sha256')
  .update(m.arena.u8.subarray(D, INSIDER_BASE)).update(m.arena.u8.subarray(INSIDER_END)).digest('hex');

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const bytes = (rand: Rand, n: number) => Buffer.from(Uint8Array.from({ length: n }, () => int(rand, 256)));

/** Flips, truncates or extends `b` a little. */
function mutate(rand: Rand, b: Buffer): Buffer {
  let out = Buffer.from(b);
  const edits = 1 + int(rand, 4);
  for (let e = 0; e < edits; e++) {
    const what = rand();
    if (what < 0.6 && out.length > 0) out[int(rand, out.length)] = int(rand, 256);
    else if (what < 0.8) out = out.subarray(0, int(rand, out.length + 1));
    else out = Buffer.concat([out, bytes(rand, 1 + int(rand, 64))]);
  }
  return out;
}

/** A header with the right magic and version and random other fields, maybe with a payload. */
function randomHeader(rand: Rand): Buffer {
  const h = bytes(rand, 24);
  h.writeUInt16LE(MAGIC, 0);
  h.writeUInt8(VERSION, 2);
  h.writeUInt8([HELLO, WRITE, WRITE_IMM, AUTH, int(rand, 256)][int(rand, 5)]!, 3);
  if (rand() < 0.5) h.writeUInt32LE([0, 16, 32, 64, MAX_FRAME, MAX_FRAME + 1, 0xffffffff][int(rand, 7)]!, 16);
  if (rand() < 0.5) h.writeBigUInt64LE(BigInt([0, D, GRANT_7[0]!.offset, INSIDER_BASE, 2 ** 40][int(rand, 5)]!), 8);
  return Buffer.concat([h, bytes(rand, int(rand, 80))]);
}

/** One input for a connection that has not shaken hands. */
function strangerInput(rand: Rand, keyed: boolean): Buffer {
  const member = [7, 2, 1, insiderId(int(rand, INSIDERS)), int(rand, 0x10000)][int(rand, 5)]!;
  const lane = rand() < 0.9 ? int(rand, 2) : int(rand, 256);
  const nonce = bytes(rand, 16);
  switch (int(rand, 7)) {
    case 0: return bytes(rand, int(rand, 300));
    case 1: return mutate(rand, hello(member, TAG, lane));
    case 2: return mutate(rand, helloAuth(member, TAG, lane, nonce));
    case 3: return randomHeader(rand);
    case 4: return Buffer.concat([helloAuth(member, TAG, lane, nonce), mutate(rand, authFrame(bytes(rand, 32)))]);
    case 5: return frame({
      type: rand() < 0.5 ? WRITE : WRITE_IMM, offset: GRANT_7[0]!.offset, payload: bytes(rand, 64),
    });
    default: {
      // A plausible prefix cut anywhere: a keyed HELLO and a write.
      const whole = Buffer.concat([
        keyed ? helloAuth(member, TAG, lane, nonce) : hello(member, TAG, lane),
        frame({ type: WRITE, offset: GRANT_7[0]!.offset, payload: bytes(rand, 32) }),
      ]);
      return whole.subarray(0, int(rand, whole.length));
    }
  }
}

/** Sends `input`, half-closes, and waits for the listener to close; false if it never did. */
async function shoot(port: number, input: Buffer): Promise<boolean> {
  const raw = new Raw(port);
  try {
    await raw.opened();
  } catch {
    return true; // refused outright (backlog full): nothing reached the fabric
  }
  raw.send(input);
  raw.socket.end();
  try {
    await waitFor(() => raw.closed, 'the listener to close', 8000);
    return true;
  } catch {
    raw.socket.destroy();
    return false;
  }
}

/** A keyed handshake done right, then a proof mangled (bit flip, wrong transcript or wrong direction), then a write. */
async function badProof(rand: Rand, port: number): Promise<boolean> {
  const raw = new Raw(port);
  await raw.opened();
  const lane = int(rand, 2), nonce = bytes(rand, 16);
  raw.send(helloAuth(7, TAG, lane, nonce));
  await waitFor(() => raw.received.length >= 88 || raw.closed, 'the answer', 8000);
  if (raw.received.length < 88) return raw.closed;
  const t = {
    initiatorNonce: nonce, acceptorNonce: raw.received.subarray(40, 56), initiator: 7, acceptor: 1, lane, tag: TAG,
  };
  const how = int(rand, 4);
  let mac: Buffer;
  if (how === 0) mac = handshakeMac(KEY, 'acceptor', t); // the other direction's label
  else if (how === 1) mac = handshakeMac(KEY, 'initiator', { ...t, lane: 1 - lane });
  else if (how === 2) mac = handshakeMac(KEY, 'initiator', { ...t, acceptorNonce: nonce }); // its own nonce twice
  else {
    mac = handshakeMac(KEY, 'initiator', t);
    mac[int(rand, 32)] ^= 1 << int(rand, 8);
  }
  raw.send(
    Buffer.concat([
      authFrame(mac),
      frame({ type: WRITE, offset: GRANT_7[lane === LANE_DATA ? 0 : 1]!.offset, payload: bytes(rand, 8) }),
    ]));
  raw.socket.end();
  try {
    await waitFor(() => raw.closed, 'the listener to close', 8000);
    return true;
  } catch {
    raw.socket.destroy();
    return false;
  }
}

/**
 * An insider's lane: the handshake done right (with the key, or without), then `frames`; false if it did not connect.
 */
async function insiderLane(port: number, id: number, lane: number, keyed: boolean): Promise<Raw | undefined> {
  const raw = new Raw(port);
  await raw.opened();
  const nonce = new Uint8Array(randomBytes(16));
  raw.send(keyed ? helloAuth(id, TAG, lane, nonce) : hello(id, TAG, lane));
  const answer = keyed ? 88 : 40;
  await waitFor(() => raw.received.length >= answer || raw.closed, 'the answer', 8000);
  if (raw.received.length < answer) return undefined;
  if (keyed) {
    const t = {
      initiatorNonce: nonce, acceptorNonce: raw.received.subarray(40, 56), initiator: id, acceptor: 1, lane, tag: TAG,
    };
    raw.send(authFrame(handshakeMac(KEY, 'initiator', t)));
  }
  return raw;
}

/** A stream of writes into the insider's own grants, each mutated with probability 0.15. */
function insiderStream(rand: Rand, i: number, lane: number): Buffer {
  const g = lane === LANE_DATA ? insiderData(i) : insiderControl(i);
  const parts: Buffer[] = [];
  for (let f = 0; f < 40; f++) {
    const length = lane === LANE_DATA ? 1 + int(rand, 512) : 8 * (1 + int(rand, 4));
    const offset = g.offset +
      (lane === LANE_DATA ? int(rand, g.length - length) : 8 * int(rand, (g.length - length) / 8 + 1));
    const good = frame({
      type: rand() < 0.3 ? WRITE_IMM : WRITE, offset, payload: bytes(rand, length), imm: int(rand, 1000),
    });
    parts.push(rand() < 0.15 ? mutate(rand, good) : good);
  }
  return Buffer.concat(parts);
}

async function fuzzListener(keyed: boolean, connections: number): Promise<void> {
  const rand = prng(SEED ^ (keyed ? 0x1111 : 0x2222));
  const where = `(keyed ${keyed}, SQUALL_TEST_SEED=${SEED})`;
  const one = new Member(1, { authKey: keyed ? KEY : undefined, handshakeTimeoutMs: 2000, maxFrameBytes: MAX_FRAME });
  const two = new Member(2, { authKey: keyed ? KEY : undefined });
  try {
    one.listen();
    for (const g of [...GRANT_2]) one.fabric.grant(2, g);
    for (const g of GRANT_7) one.fabric.grant(7, g);
    for (let i = 0; i < INSIDERS; i++) {
      one.fabric.grant(insiderId(i), insiderData(i));
      one.fabric.grant(insiderId(i), insiderControl(i));
    }
    const before = outsideInsiders(one);

    // Strangers, 32 at a time; every 1/INSIDERS of the way, an insider session alongside.
    let unclosed = 0, insidersConnected = 0, inputs = 0;
    const perInsider = Math.ceil(connections / INSIDERS);
    for (let done = 0, next = 0; done < connections; done += 32) {
      const batch: Promise<boolean>[] = [];
      for (let j = 0; j < 32 && done + j < connections; j++) {
        const input = strangerInput(rand, keyed);
        // Without a key anyone may say HELLO as any expected member and get in (that is what the key is
        // for): on the keyless listener strangers name nobody expected. The keyed one gets them all.
        const named = input.length >= 28 ? input.readUInt32LE(24) : -1;
        if (!keyed && (named === 2 || named === 7 || (named >= insiderId(0) && named < insiderId(INSIDERS)))) {
          input.writeUInt32LE(99, 24);
        }
        batch.push(keyed && rand() < 0.05 ? badProof(rand, one.port) : shoot(one.port, input));
        inputs++;
      }
      if (next < INSIDERS && done >= next * perInsider) {
        const i = next++;
        const control = await insiderLane(one.port, insiderId(i), LANE_CONTROL, keyed);
        const data = control && await insiderLane(one.port, insiderId(i), LANE_DATA, keyed);
        if (control && data) {
          await until(
            [one], () => one.has(K.PEER_CONNECTED, insiderId(i)) || one.has(K.PEER_FAILED, insiderId(i)),
            `insider ${i} connected ${where}`);
          if (one.has(K.PEER_CONNECTED, insiderId(i))) insidersConnected++;
          control.send(insiderStream(rand, i, LANE_CONTROL));
          data.send(insiderStream(rand, i, LANE_DATA));
          inputs += 80;
          control.socket.end();
          data.socket.end();
          batch.push(
            waitFor(() => control.closed && data.closed, 'the insider closed', 8000).then(() => true, () => false));
        } else {
          control?.socket.destroy();
          data?.socket.destroy();
        }
      }
      for (const ok of await Promise.all(batch)) if (!ok) unclosed++;
      one.drain();
    }
    assert.is(unclosed, 0, `every connection closed by the listener ${where}`);
    // Every stranger's connection reached the fabric and was refused there (reported once each).
    await until(
      [one], () => one.seen[0].filter((e) => e.kind === K.CONNECTION_REJECTED).length >= connections - 2 * INSIDERS,
      `the strangers' connections reported ${where}`);
    const byReason = new Map<string, number>();
    for (const e of one.seen[0]) {
      if (e.kind !== K.CONNECTION_REJECTED) continue;
      const reason = map.FailReasonName[e.imm]!;
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    }
    if (process.env['SQUALL_FUZZ_VERBOSE']) {
      console.log(where, 'insiders', insidersConnected, 'inputs', inputs, Object.fromEntries(byReason));
    }
    assert.ok(insidersConnected >= INSIDERS / 2, `most insiders connected (${insidersConnected}) ${where}`);
    assert.ok(inputs >= connections, `${inputs} inputs`);
    for (let i = 0; i < INSIDERS; i++) {
      if (!one.has(K.PEER_CONNECTED, insiderId(i))) continue;
      await until([one], () => one.has(K.PEER_FAILED, insiderId(i)), `insider ${i} failed ${where}`);
      assert.is(
        one.seen[0].filter((e) => e.kind === K.PEER_FAILED && e.peer === insiderId(i)).length, 1,
        `insider ${i} failed once ${where}`);
    }
    assert.not.ok(one.has(K.PEER_CONNECTED, 7), `nobody got in as 7 ${where}`);
    assert.not.ok(one.has(K.PEER_CONNECTED, 2), `nobody got in as 2 ${where}`);
    assert.is(outsideInsiders(one), before, `nothing landed outside the insiders' grants ${where}`);

    // The fabric is up: the real 2 connects and writes on both lanes.
    for (const g of GRANT_2) two.fabric.grant(1, g);
    two.fabric.connect(1, '127.0.0.1', one.port);
    await until(
      [one, two], () => one.has(K.PEER_CONNECTED, 2) && two.has(K.PEER_CONNECTED, 1),
      `the real 2 connected after the fuzz ${where}`);
    two.arena.u8.fill(0x5d, D, D + 4096);
    Atomics.store(two.arena.i64, (D + 65536) >> 3, 0x5d5dn);
    assert.is(two.fabric.writeImm(1, D, 4096, 42), WriteStatus.Ok);
    assert.is(two.fabric.write(1, D + 65536, 8, Lane.Control), WriteStatus.Ok);
    await until(
      [one, two], () => one.has(K.WRITE_IMM, 2, 42) && Atomics.load(one.arena.i64, (D + 65536) >> 3) === 0x5d5dn,
      `the writes of 2 ${where}`);
    assert.ok(one.arena.u8.subarray(D, D + 4096).every((b) => b === 0x5d), `the write of 2 whole ${where}`);
  } finally {
    one.close();
    two.close();
  }
}

test('fuzz: 4000 hostile connections and 24 insiders against a keyed listener leave it serving (seeded)', async () => {
  await fuzzListener(true, 4000);
});

test('fuzz: 2000 hostile connections and 24 insiders against a keyless listener leave it serving (seeded)',
  async () => {
  await fuzzListener(false, 2000);
});

test.run();
