// The native fabric's wire format (native/frame.h, version 3), written out here independently of the C++
// so that a mistake on either side shows: tests drive raw sockets that play a peer byte by byte.
//
// A frame is a 24-byte little-endian header — magic u16, version u8, type u8, view u32, offset u64,
// length u32, immediate u32 — then `length` payload bytes. A HELLO's 16-byte payload is member u32, layout
// tag u32, lane u8 (0 data, 1 control), flags u8, 6 zero bytes. A peer is two connections, one per lane.
// With an auth key (flags 1) the HELLO goes on with a 16-byte nonce and a 32-byte MAC, and the initiator
// sends a third frame, AUTH, with its own MAC (native/auth.h; computed here with node:crypto).

import { createHmac } from 'node:crypto';
import { Socket, connect } from 'node:net';

export const MAGIC = 0x5153;
export const VERSION = 3;
export const HELLO = 1;
export const WRITE = 2;
export const WRITE_IMM = 3;
export const AUTH = 4;
export const HELLO_AUTH_FLAG = 1;
export const LANE_DATA = 0;
export const LANE_CONTROL = 1;

export interface FrameFields {
  magic?: number; version?: number; type: number; offset: number; length?: number; imm?: number; payload?: Uint8Array
}

export function frame(f: FrameFields): Buffer {
  const payload = f.payload ?? new Uint8Array(0);
  const b = Buffer.alloc(24 + payload.length);
  b.writeUInt16LE(f.magic ?? MAGIC, 0);
  b.writeUInt8(f.version ?? VERSION, 2);
  b.writeUInt8(f.type, 3);
  b.writeUInt32LE(0, 4);
  b.writeBigUInt64LE(BigInt(f.offset), 8);
  b.writeUInt32LE(f.length ?? payload.length, 16);
  b.writeUInt32LE(f.imm ?? 0, 20);
  b.set(payload, 24);
  return b;
}

/** A whole HELLO frame without a key; `reserved` sets the first reserved byte (after the flags; must be 0). */
export function hello(member: number, tag: number, lane: number = LANE_DATA, reserved = 0): Buffer {
  const p = Buffer.alloc(16);
  p.writeUInt32LE(member, 0);
  p.writeUInt32LE(tag, 4);
  p.writeUInt8(lane, 8);
  p.writeUInt8(reserved, 10);
  return frame({ type: HELLO, offset: 0, payload: p });
}

/** A whole HELLO frame with a key: flags 1, then the nonce and the MAC (zero in an initiator's HELLO). */
export function helloAuth(
  member: number, tag: number, lane: number, nonce: Uint8Array, mac: Uint8Array = new Uint8Array(32)
): Buffer {
  const p = Buffer.alloc(64);
  p.writeUInt32LE(member, 0);
  p.writeUInt32LE(tag, 4);
  p.writeUInt8(lane, 8);
  p.writeUInt8(HELLO_AUTH_FLAG, 9);
  p.set(nonce, 16);
  p.set(mac, 32);
  return frame({ type: HELLO, offset: 0, payload: p });
}

/** The initiator's AUTH frame. */
export function authFrame(mac: Uint8Array): Buffer {
  return frame({ type: AUTH, offset: 0, payload: mac });
}

export interface Transcript {
  initiatorNonce: Uint8Array; acceptorNonce: Uint8Array; initiator: number; acceptor: number; lane: number; tag: number
}

/** A handshake MAC as native/auth.h defines it: HMAC-SHA256(key, label ‖ Ni ‖ Na ‖ i ‖ a ‖ lane ‖ tag). */
export function handshakeMac(key: Uint8Array, who: 'acceptor' | 'initiator', t: Transcript): Buffer {
  const label = Buffer.from(`squall fabric v3: ${who} proof\0`, 'latin1');
  const fields = Buffer.alloc(13);
  fields.writeUInt32LE(t.initiator, 0);
  fields.writeUInt32LE(t.acceptor, 4);
  fields.writeUInt8(t.lane, 8);
  fields.writeUInt32LE(t.tag, 9);
  return createHmac('sha256', key).update(label).update(t.initiatorNonce).update(t.acceptorNonce).update(fields)
    .digest();
}

/** The fields of the HELLO frame at the start of `bytes` (40 bytes at least). */
export function helloOf(bytes: Buffer): { type: number; version: number; member: number; tag: number; lane: number } {
  return {
    type: bytes.readUInt8(3), version: bytes.readUInt8(2), member: bytes.readUInt32LE(24), tag: bytes.readUInt32LE(28),
    lane: bytes.readUInt8(32),
  };
}

export interface Frame { type: number; offset: number; length: number; imm: number; payload: Buffer }

/** Splits a byte stream into whole frames. */
export function parseFrames(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at + 24 <= bytes.length) {
    const length = bytes.readUInt32LE(at + 16);
    if (at + 24 + length > bytes.length) break;
    out.push({
      type: bytes.readUInt8(at + 3), offset: Number(bytes.readBigUInt64LE(at + 8)), length,
      imm: bytes.readUInt32LE(at + 20), payload: bytes.subarray(at + 24, at + 24 + length),
    });
    at += 24 + length;
  }
  return out;
}

/** A raw connection to a fabric's port: records what it receives and when it is closed. */
export class RawSocket {
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(ready: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}
