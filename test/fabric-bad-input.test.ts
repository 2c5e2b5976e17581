// The native fabric's receiver against bad input (DESIGN.md §2). A member (id 1) expects two peers: 2, a
// real NativeFabric, and 7, played by a raw net.Socket that this file drives byte by byte. Whatever 7
// sends, the member must close that connection, report why in completion ring 0, leave its arena as it
// was, and keep applying writes from 2.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { Arena } from '../ts/arena.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { GrantKind, WriteStatus } from '../ts/fabric/fabric.js';
import { NativeFabric } from '../ts/fabric/native.js';
import * as map from '../ts/generated/memory-map.js';

const { CompletionKind: K, FailReason: R } = map;
const D = map.DYNAMIC_BASE;
const TAG = 0x1a2b3c4d;
const MAX_FRAME = 1024 * 1024;

// The ranges member 1 grants (the same in every arena, as in a real layout).
const RANGE_2 = { offset: D, length: 65536, kind: GrantKind.Data, ring: 0 };
const RANGE_7_DATA = { offset: D + 65536, length: 65536, kind: GrantKind.Data, ring: 0 };
const RANGE_7_CONTROL = { offset: D + 131072, length: 4096, kind: GrantKind.Control, ring: 0 };

// ------------------------------------------------------------------------------------------ the wire format
// Written out here independently of native/frame.h, so a mistake on either side shows.

const HELLO = 1;
const WRITE = 2;
const WRITE_IMM = 3;

interface FrameFields { magic?: number; version?: number; type: number; offset: number; length?: number; imm?: number; payload?: Uint8Array }

function frame(f: FrameFields): Buffer {
  const payload = f.payload ?? new Uint8Array(0);
  const b = Buffer.alloc(24 + payload.length);
  b.writeUInt16LE(f.magic ?? 0x5153, 0);
  b.writeUInt8(f.version ?? 1, 2);
  b.writeUInt8(f.type, 3);
  b.writeUInt32LE(0, 4);
  b.writeBigUInt64LE(BigInt(f.offset), 8);
  b.writeUInt32LE(f.length ?? payload.length, 16);
  b.writeUInt32LE(f.imm ?? 0, 20);
  b.set(payload, 24);
  return b;
}

function hello(member: number, tag = TAG): Buffer {
  const p = Buffer.alloc(16);
  p.writeUInt32LE(member, 0);
  p.writeUInt32LE(tag, 4);
  return frame({ type: HELLO, offset: 0, payload: p });
}

const filled = (n: number, v: number) => new Uint8Array(n).fill(v);

// ---------------------------------------------------------------------------------------------- harness

interface Seen { kind: number; peer: number; imm: number }

class Side {
  readonly arena: Arena;
  readonly fabric: NativeFabric;
  readonly ring: CompletionRing;
  readonly seen: Seen[] = [];
  constructor(id: number, handshakeTimeoutMs = 5000) {
    this.arena = Arena.create({ memberId: id, bytes: 4 * 1024 * 1024 });
    this.fabric = NativeFabric.create(this.arena, { memberId: id, layoutTag: TAG, maxFrameBytes: MAX_FRAME, handshakeTimeoutMs });
    this.ring = new CompletionRing(this.arena, 0);
  }
  drain(): void {
    this.ring.drain((kind, peer, imm) => this.seen.push({ kind, peer, imm }));
  }
  has(kind: number, peer: number, imm?: number): boolean {
    this.drain();
    return this.seen.some((e) => e.kind === kind && e.peer === peer && (imm === undefined || e.imm === imm));
  }
}

/** The raw peer: a socket that records what it receives and when it is closed. */
class Raw {
  readonly socket: Socket;
  received = Buffer.alloc(0);
  closed = false;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => { this.received = Buffer.concat([this.received, d]); });
    this.socket.on('error', () => {}); // a reset is one way to see the close
    this.socket.on('close', () => { this.closed = true; });
  }
  async opened(): Promise<void> {
    if (this.socket.readyState === 'open') return;
    await new Promise<void>((res, rej) => { this.socket.once('connect', res); this.socket.once('error', rej); });
  }
  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ready: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

function dynamicHash(arena: Arena): string {
  return createHash('sha256').update(arena.u8.subarray(D)).digest('hex');
}

interface Scene { member: Side; two: Side; port: number; close(): void }

/** A fresh member 1 with peer 2 connected and peer 7 expected. */
async function scene(handshakeTimeoutMs = 5000): Promise<Scene> {
  const member = new Side(1, handshakeTimeoutMs);
  const two = new Side(2);
  const port = member.fabric.listen('127.0.0.1', 0);
  member.fabric.grant(2, RANGE_2);
  member.fabric.grant(7, RANGE_7_DATA);
  member.fabric.grant(7, RANGE_7_CONTROL);
  two.fabric.grant(1, RANGE_2);
  two.fabric.connect(1, '127.0.0.1', port);
  await until(() => member.has(K.PEER_CONNECTED, 2) && two.has(K.PEER_CONNECTED, 1), 'peer 2 connected');
  return { member, two, port, close() { member.fabric.close(); two.fabric.close(); } };
}

/** Connects the raw peer as member 7 and checks the member's HELLO answer and a first good write. */
async function rawAsSeven(s: Scene): Promise<Raw> {
  const raw = new Raw(s.port);
  await raw.opened();
  raw.send(hello(7));
  await until(() => s.member.has(K.PEER_CONNECTED, 7) && raw.received.length >= 40, 'the handshake with 7');
  assert.is(raw.received.readUInt16LE(0), 0x5153, 'reply magic');
  assert.is(raw.received.readUInt8(3), HELLO, 'reply type');
  assert.is(raw.received.readUInt32LE(24), 1, 'the reply names member 1');
  assert.is(raw.received.readUInt32LE(28), TAG, 'the reply carries the layout tag');
  // A good write first: proves the frames built here are right, so the bad ones fail for the reason named.
  raw.send(frame({ type: WRITE_IMM, offset: RANGE_7_DATA.offset, payload: filled(32, 0x77), imm: 5 }));
  await until(() => s.member.arena.u8[RANGE_7_DATA.offset + 31] === 0x77 && s.member.has(K.WRITE_IMM, 7, 5), 'the good write from 7');
  return raw;
}

/** After the bad input: the raw socket was closed, the arena is as it was, and peer 2 still gets through. */
async function expectRejected(s: Scene, raw: Raw, before: string, kind: number, peer: number, reason: number): Promise<void> {
  await until(() => raw.closed, 'the member to close the raw connection');
  await until(() => s.member.has(kind, peer), `${map.CompletionKindName[kind]} for ${peer}`);
  const event = s.member.seen.find((e) => e.kind === kind && e.peer === peer)!;
  assert.is(map.FailReasonName[event.imm], map.FailReasonName[reason], 'the reason');
  assert.is(dynamicHash(s.member.arena), before, 'the arena is untouched');
  s.two.arena.u8.fill(0x22, D + 1000, D + 1100);
  assert.is(s.two.fabric.write(1, D + 1000, 100), WriteStatus.Ok);
  await until(() => s.member.arena.u8[D + 1099] === 0x22, 'a write from peer 2 after the failure');
  assert.is(s.member.fabric.write(7, RANGE_7_DATA.offset, 8), peer === 7 ? WriteStatus.Failed : WriteStatus.NotConnected);
}

async function established(reasonName: string, bad: (raw: Raw) => void, reason: number): Promise<void> {
  const s = await scene();
  try {
    const raw = await rawAsSeven(s);
    const before = dynamicHash(s.member.arena);
    bad(raw);
    await expectRejected(s, raw, before, K.PEER_FAILED, 7, reason);
    raw.socket.destroy();
  } catch (err) {
    throw new Error(`${reasonName}: ${(err as Error).message}`, { cause: err });
  } finally {
    s.close();
  }
}

async function beforeHandshake(bad: (raw: Raw) => void, reason: number, handshakeTimeoutMs = 5000): Promise<void> {
  const s = await scene(handshakeTimeoutMs);
  try {
    const raw = new Raw(s.port);
    await raw.opened();
    const before = dynamicHash(s.member.arena);
    bad(raw);
    await expectRejected(s, raw, before, K.CONNECTION_REJECTED, 0xffff, reason);
    assert.not.ok(s.member.has(K.PEER_CONNECTED, 7), '7 never counted as connected');
    assert.is(raw.received.length, 0, 'the member sent nothing back');
    raw.socket.destroy();
  } finally {
    s.close();
  }
}

// ------------------------------------------------------------------------------------------------ tests

test('garbage before any HELLO: CONNECTION_REJECTED(BAD_MAGIC)', async () => {
  await beforeHandshake((raw) => raw.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), R.BAD_MAGIC);
});

test('a WRITE before any HELLO: CONNECTION_REJECTED(BAD_TYPE)', async () => {
  await beforeHandshake((raw) => raw.send(frame({ type: WRITE, offset: RANGE_7_DATA.offset, payload: filled(16, 1) })), R.BAD_TYPE);
});

test('a HELLO from a member nobody expects: CONNECTION_REJECTED(UNKNOWN_PEER)', async () => {
  await beforeHandshake((raw) => raw.send(hello(9)), R.UNKNOWN_PEER);
});

test('a HELLO with another layout tag: CONNECTION_REJECTED(LAYOUT_MISMATCH)', async () => {
  await beforeHandshake((raw) => raw.send(hello(7, TAG ^ 1)), R.LAYOUT_MISMATCH);
});

test('a HELLO claiming to be an already connected member: CONNECTION_REJECTED(DUPLICATE_PEER)', async () => {
  await beforeHandshake((raw) => raw.send(hello(2)), R.DUPLICATE_PEER);
});

test('a connection that never says HELLO: CONNECTION_REJECTED(HANDSHAKE_TIMEOUT)', async () => {
  const t0 = Date.now();
  await beforeHandshake(() => {}, R.HANDSHAKE_TIMEOUT, 200);
  assert.ok(Date.now() - t0 >= 190, 'not before the handshake timeout');
});

test('a HELLO cut short, then end: CONNECTION_REJECTED(TRUNCATED)', async () => {
  await beforeHandshake((raw) => raw.socket.end(hello(7).subarray(0, 30)), R.TRUNCATED);
});

test('HELLO as 7, a truncated frame, then end: PEER_FAILED(TRUNCATED)', async () => {
  await established('TRUNCATED', (raw) => {
    const whole = frame({ type: WRITE, offset: RANGE_7_DATA.offset + 100, payload: filled(100, 0xee) });
    raw.socket.end(whole.subarray(0, 24 + 50));
  }, R.TRUNCATED);
});

test('a write outside the grants of 7 (into the range of 2): PEER_FAILED(OUT_OF_GRANT)', async () => {
  await established('OUT_OF_GRANT', (raw) => raw.send(frame({ type: WRITE, offset: RANGE_2.offset, payload: filled(64, 0xee) })), R.OUT_OF_GRANT);
});

test('a write straddling the end of a grant: PEER_FAILED(OUT_OF_GRANT)', async () => {
  const offset = RANGE_7_DATA.offset + RANGE_7_DATA.length - 8;
  await established('OUT_OF_GRANT', (raw) => raw.send(frame({ type: WRITE, offset, payload: filled(16, 0xee) })), R.OUT_OF_GRANT);
});

test('a write past the end of the arena: PEER_FAILED(OUT_OF_GRANT)', async () => {
  await established('OUT_OF_GRANT', (raw) => raw.send(frame({ type: WRITE, offset: 2 ** 52, payload: filled(16, 0xee) })), R.OUT_OF_GRANT);
});

test('a frame longer than maxFrameBytes: PEER_FAILED(OVERSIZE)', async () => {
  await established('OVERSIZE', (raw) => raw.send(frame({ type: WRITE, offset: RANGE_7_DATA.offset, length: MAX_FRAME + 1, payload: filled(4096, 0xee) })), R.OVERSIZE);
});

test('a frame of another protocol version: PEER_FAILED(BAD_VERSION)', async () => {
  await established('BAD_VERSION', (raw) => raw.send(frame({ version: 2, type: WRITE, offset: RANGE_7_DATA.offset, payload: filled(64, 0xee) })), R.BAD_VERSION);
});

test('a frame with bad magic after the handshake: PEER_FAILED(BAD_MAGIC)', async () => {
  await established('BAD_MAGIC', (raw) => raw.send(frame({ magic: 0x5154, type: WRITE, offset: RANGE_7_DATA.offset, payload: filled(64, 0xee) })), R.BAD_MAGIC);
});

test('an unknown frame type, or a second HELLO: PEER_FAILED(BAD_TYPE)', async () => {
  await established('BAD_TYPE', (raw) => raw.send(frame({ type: 9, offset: RANGE_7_DATA.offset, payload: filled(64, 0xee) })), R.BAD_TYPE);
  await established('BAD_TYPE', (raw) => raw.send(hello(7)), R.BAD_TYPE);
});

test('a misaligned write into a control range: PEER_FAILED(MISALIGNED)', async () => {
  await established('MISALIGNED', (raw) => raw.send(frame({ type: WRITE, offset: RANGE_7_CONTROL.offset + 4, payload: filled(8, 0xee) })), R.MISALIGNED);
  await established('MISALIGNED', (raw) => raw.send(frame({ type: WRITE, offset: RANGE_7_CONTROL.offset, payload: filled(12, 0xee) })), R.MISALIGNED);
});

test('good frames ahead of a bad one in the same packet are applied, the bad one is not', async () => {
  const s = await scene();
  try {
    const raw = await rawAsSeven(s);
    const good = frame({ type: WRITE, offset: RANGE_7_DATA.offset + 256, payload: filled(64, 0x55) });
    const bad = frame({ type: WRITE, offset: RANGE_2.offset, payload: filled(64, 0xee) });
    const expected = s.member.arena.u8.slice(D);
    expected.fill(0x55, RANGE_7_DATA.offset + 256 - D, RANGE_7_DATA.offset + 320 - D);
    raw.send(Buffer.concat([good, bad]));
    await until(() => raw.closed && s.member.has(K.PEER_FAILED, 7), 'the close');
    assert.is(map.FailReasonName[s.member.seen.find((e) => e.kind === K.PEER_FAILED)!.imm], 'OUT_OF_GRANT');
    assert.is(createHash('sha256').update(s.member.arena.u8.subarray(D)).digest('hex'), createHash('sha256').update(expected).digest('hex'));
  } finally {
    s.close();
  }
});

test('a peer that closes cleanly between frames: PEER_FAILED(CLOSED)', async () => {
  const s = await scene();
  try {
    const raw = await rawAsSeven(s);
    raw.socket.end();
    await until(() => s.member.has(K.PEER_FAILED, 7), 'PEER_FAILED');
    assert.is(map.FailReasonName[s.member.seen.find((e) => e.kind === K.PEER_FAILED)!.imm], 'CLOSED');
    // 7 stays failed: a new HELLO as 7 is turned away.
    const again = new Raw(s.port);
    await again.opened();
    again.send(hello(7));
    await until(() => again.closed && s.member.has(K.CONNECTION_REJECTED, 0xffff), 'the second HELLO refused');
    assert.is(map.FailReasonName[s.member.seen.find((e) => e.kind === K.CONNECTION_REJECTED)!.imm], 'DUPLICATE_PEER');
  } finally {
    s.close();
  }
});

test('random bytes from many connections (seeded): every one is refused, the member keeps serving peer 2', async () => {
  const seed = Number(process.env.SQUALL_TEST_SEED ?? Date.now() % 1e9);
  let x = seed >>> 0 || 1;
  const rand = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
  const s = await scene(500);
  try {
    const before = dynamicHash(s.member.arena);
    const raws: Raw[] = [];
    for (let i = 0; i < 40; i++) {
      // Mostly a mangled HELLO (so parsing goes past the magic), sometimes pure noise.
      const bytes = rand() < 0.7 ? Buffer.from(hello(7 + 1 + Math.floor(rand() * 100))) : Buffer.alloc(1 + Math.floor(rand() * 64));
      for (let j = 0; j < bytes.length; j++) if (rand() < 0.1) bytes[j] = Math.floor(rand() * 256);
      if (bytes.length >= 28 && bytes.readUInt32LE(24) === 7) bytes.writeUInt32LE(99, 24); // never a valid HELLO
      const raw = new Raw(s.port);
      await raw.opened();
      raw.send(bytes);
      raws.push(raw);
    }
    await until(() => raws.every((r) => r.closed), `every connection closed (seed ${seed})`, 5000);
    const rejected = () => { s.member.drain(); return s.member.seen.filter((e) => e.kind === K.CONNECTION_REJECTED).length; };
    await until(() => rejected() === raws.length, `40 rejections (seed ${seed})`);
    assert.is(dynamicHash(s.member.arena), before, `the arena is untouched (seed ${seed})`);
    assert.not.ok(s.member.has(K.PEER_CONNECTED, 7));
    s.two.arena.u8.fill(0x33, D, D + 8);
    assert.is(s.two.fabric.write(1, D, 8), WriteStatus.Ok);
    await until(() => s.member.arena.u8[D + 7] === 0x33, 'peer 2 still served');
  } finally {
    s.close();
  }
});

test.run();
