// Raw clients of a contact port (ts/group/contact.ts) for the hostile-input tests: a line reader over a
// plain socket, and a seeded generator of fuzz cases — random bytes, random JSON values, non-object JSON,
// mutated valid join requests (proven with the real key over the real nonce, then broken), oversized,
// endless and partial lines.

import { connect, type Socket } from 'node:net';
import { parseAddress } from '../../ts/address.js';
import { proof } from '../../ts/group/contact-wire.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw connection: the lines it received, and when it closed. */
export class RawClient {
  readonly socket: Socket;
  readonly lines: string[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  #buffered = '';
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffered += chunk;
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        this.lines.push(this.#buffered.slice(0, nl));
        this.#buffered = this.#buffered.slice(nl + 1);
      }
      this.#wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => { this.isClosed = true; this.#wake(); resolve(); }));
  }

  /** `localAddress`: the source address to connect from (another loopback address is another source). */
  static open(address: string, localAddress?: string): Promise<RawClient> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** The next line (in order), or null when the connection closed first or timeoutMs passed. */
  async line(timeoutMs: number, index = this.#read): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length <= index) {
      if (this.isClosed || Date.now() >= deadline) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    this.#read = index + 1;
    return this.lines[index]!;
  }
  #read = 0;

  /** Resolves true once the server closed the connection, false after timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(timeoutMs).then(() => false)]);
  }

  write(data: string | Buffer): void { if (!this.isClosed) this.socket.write(data); }
  destroy(): void { this.socket.destroy(); }

  #wake(): void { for (const w of this.#waiters.splice(0)) w(); }
}

/** The greeting a member sends first. */
export interface Greeting { nonce: string; auth: boolean }

export function parseGreeting(line: string | null): Greeting | null {
  try {
    const v = JSON.parse(line ?? '') as { hello?: Greeting };
    return v.hello && typeof v.hello.nonce === 'string' ? v.hello : null;
  } catch { return null; }
}

/** A valid join request over `greeting`, proven with `key` when given. */
export function joinRequest(
  greeting: Greeting, id: number, host: string, key: Buffer | null, nonce = 'ab'.repeat(32)
): Record<string, unknown> {
  const joiner = { id, host };
  return { join: joiner, nonce, ...(key ? { proof: proof(key, 'joiner', greeting.nonce, nonce, joiner) } : {}) };
}

/** One fuzz case: what to write after the greeting, and whether to half-close afterwards. */
export interface FuzzCase {
  kind: string;
  chunks: (greeting: Greeting | null) => Array<string | Buffer>;
  /** 'end': half-close after writing; 'hold': stay open (the server's deadline must close it). */
  then: 'end' | 'hold';
}

const KEYS = [
  'join', 'port', 'nonce', 'proof', 'id', 'host', 'hello', 'sealed', 'mac', '__proto__', 'constructor', 'toString',
  'offer', 'accepted',
];

function randomJson(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 3 || r < 0.35) {
    const atoms = [
      0, -1, 5, 1e308, -0.5, 2 ** 53 + 1, true, false, null, '', 'x', 'a'.repeat(Math.floor(rand() * 64)), '\u0000',
      '\ud800',
    ];
    return atoms[Math.floor(rand() * atoms.length)];
  }
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => randomJson(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) {
    o[KEYS[Math.floor(rand() * KEYS.length)]!] = randomJson(rand, depth + 1);
  }
  return o;
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Breaks one thing of a valid join request. */
function mutate(rand: () => number, request: Record<string, unknown>): unknown {
  const m = JSON.parse(JSON.stringify(request)) as Record<string, Record<string, unknown> | unknown>;
  const join = m.join as Record<string, unknown>;
  const edits: Array<() => unknown> = [
    () => { join.id = randomJson(rand); return m; },
    () => { join.id = 70_000; return m; },
    () => { join.host = 'h'.repeat(300); return m; },
    () => { join.host = randomJson(rand); return m; },
    () => { delete m.nonce; return m; },
    () => { m.nonce = 'zz'.repeat(32); return m; },
    () => { m.proof = '00'.repeat(32); return m; },
    () => {
      const p = String(m.proof ?? '0'.repeat(64)); m.proof = p.slice(0, 63) + (p.endsWith('0') ? '1' : '0'); return m;
    },
    () => { m.extra = 1; return m; },
    () => { join.extra = true; return m; },
    () => { delete m.join; return m; },
    () => ({ port: randomJson(rand) }),
    () => ({ port: 7000, join }),
    () => ({ sealed: JSON.stringify(m), mac: '11'.repeat(32) }),
    () => [m],
    () => ({ join: [join.id, join.host], nonce: m.nonce }),
  ];
  return edits[Math.floor(rand() * edits.length)]!();
}

/**
 * The `i`th fuzz case for a member whose joiners prove `key` (null: an open group). None of them is a
 * valid join request, so a member must never take one in.
 */
export function fuzzCase(rand: () => number, key: Buffer | null, holdRate = 0.02): FuzzCase {
  const r = rand();
  const end = rand() < holdRate ? 'hold' : 'end';
  if (r < 0.2) {
    const n = Math.floor(rand() * 300);
    return { kind: 'random bytes', chunks: () => [randomBytes(rand, n)], then: end };
  }
  if (r < 0.4) {
    const value = randomJson(rand);
    return { kind: 'random JSON', chunks: () => [`${JSON.stringify(value) ?? 'null'}\n`], then: end };
  }
  if (r < 0.5) {
    const atoms = ['5', 'true', '"x"', 'null', '[]', '{}', '-0', '1e999', '"join"', '[{"join":{"id":1,"host":"h"}}]'];
    const line = atoms[Math.floor(rand() * atoms.length)]!;
    return { kind: 'non-object JSON', chunks: () => [`${line}\n`], then: end };
  }
  if (r < 0.8) {
    const id = 100 + Math.floor(rand() * 50);
    return {
      kind: 'mutated join request',
      chunks: (g) => {
        const valid = joinRequest(g ?? { nonce: '00'.repeat(32), auth: false }, id, '127.0.0.1', key);
        // Without a key, an intact request would be valid: it is always broken here.
        return [`${JSON.stringify(mutate(rand, valid))}\n`];
      },
      then: end,
    };
  }
  if (r < 0.88) {
    const n = 4096 + Math.floor(rand() * 60_000);
    return { kind: 'oversized line', chunks: () => [Buffer.alloc(n, 0x61), rand() < 0.5 ? '\n' : ''], then: end };
  }
  if (r < 0.93) {
    const text = `{"join":{"id":${Math.floor(rand() * 100)},"host":"127.0.0.1"},"nonce":"`;
    const cut = Math.floor(rand() * text.length);
    return { kind: 'partial line', chunks: () => [text.slice(0, cut)], then: end };
  }
  if (r < 0.97) {
    // A line split into many small writes, then broken at the end.
    const value = JSON.stringify(randomJson(rand));
    return { kind: 'split line', chunks: () => [...(value ?? 'x').match(/.{1,3}/gs) ?? [], '\u00ff\n'], then: end };
  }
  // Two lines at once, then more: lines ahead of the protocol.
  return { kind: 'lines ahead', chunks: () => ['{"port":1}\n'.repeat(2 + Math.floor(rand() * 10))], then: end };
}

/**
 * Runs `cases` against the contact address `count` times, `parallel` at a time: greets, writes the case,
 * and waits (up to holdMs) for the server to close. Resolves with what the server answered, by kind.
 */
export async function runFuzz(
  address: string, count: number, rand: () => number, key: Buffer | null, parallel: number, holdMs: number,
  holdRate = 0.02
): Promise<{ byKind: Map<string, number>; accepted: number; notClosed: number }> {
  const byKind = new Map<string, number>();
  let accepted = 0, notClosed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const c = fuzzCase(rand, key, holdRate);
      byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
      const client = await RawClient.open(address);
      const greeting = parseGreeting(await client.line(5_000));
      for (const chunk of c.chunks(greeting)) client.write(chunk);
      if (c.then === 'end') client.socket.end();
      const closed = await client.closedWithin(holdMs);
      if (!closed) notClosed++;
      if (client.lines.some((l) => l.includes('"accepted"') || l.includes('"welcome"') || l.includes('"redirect"'))) {
        accepted++;
      }
      client.destroy();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { byKind, accepted, notClosed };
}
