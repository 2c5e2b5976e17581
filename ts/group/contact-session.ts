// One contact connection (ts/group/contact.ts), at either end: newline-delimited JSON out, and the raw lines
// that came in, bounded in count and length, decoded, opened (once sealed) and validated against the
// direction's schema (ts/group/contact-wire.ts) only when the protocol asks for the next one.

import type { Socket } from 'node:net';
import { JoinError, TimeoutError } from '../errors.js';
import {
  CONTACT_LIMITS, parseFromJoiner, parseFromMember, parseSealed, type ContactMessage, type SessionSeal,
} from './contact-wire.js';

export type ContactLimits = { -readonly [K in keyof typeof CONTACT_LIMITS]: number };

/** A peer broke the contact protocol (a malformed, oversized, unsealed or forged line): its connection is closed. */
export class ContactProtocolError extends JoinError {}

/**
 * The connection closed (the peer closed it, it broke, or this end did) before the message next() waited for.
 * A line sent just before a close can be lost with it: a reset discards what the receiver had not read.
 */
export class ContactClosedError extends JoinError {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One contact connection, at either end: JSON lines out, and the raw lines that came in, queued (bounded in
 * count and length) until next() decodes, opens and validates them — in order, so a session switches to
 * sealed lines exactly after the handshake's last unsealed one.
 */
export class ContactSession {
  readonly #socket: Socket;
  /** 'member': this end is the member, lines come from a joiner; 'joiner': the other way round. */
  readonly #role: 'member' | 'joiner';
  readonly #limits: ContactLimits;
  readonly #lineBytesMax: number;
  readonly #lines: Buffer[] = [];
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #seal: SessionSeal | null = null;
  #waiter: (() => void) | null = null;
  #closed = false;
  /** Why this end closed the connection on its peer (a broken rule), for next()'s error. */
  #abortReason: string | null = null;
  readonly #onClose: Array<() => void> = [];
  /** The remote end, 'host:port'. */
  readonly peer: string;

  constructor(socket: Socket, role: 'member' | 'joiner', limits: ContactLimits = CONTACT_LIMITS) {
    this.#socket = socket;
    this.#role = role;
    this.#limits = limits;
    this.#lineBytesMax = role === 'member' ? limits.joinerLineBytesMax : limits.memberLineBytesMax;
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  get closed(): boolean { return this.#closed; }

  send(message: ContactMessage): void {
    if (this.#closed) return;
    const text = JSON.stringify(message);
    this.#socket.write(`${this.#seal ? this.#seal.seal(text) : text}\n`);
    // A peer that does not read must not make this process hold its output without bound.
    if (this.#socket.writableLength > this.#limits.outputBytesMax) {
      this.abort(`it does not read what it is sent (${this.#socket.writableLength} bytes queued)`);
    }
  }

  /** From now on every line, both ways, is sealed with the handshake's session key. */
  sealWith(seal: SessionSeal): void { this.#seal = seal; }

  /**
   * The next message, validated; rejects when the connection closes first, after timeoutMs, or when the
   * line breaks the protocol (ContactProtocolError: the connection is closed then).
   */
  async next(timeoutMs: number): Promise<ContactMessage> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line) return this.#decode(line);
      if (this.#closed) {
        if (this.#abortReason) {
          throw new ContactProtocolError(`contact connection with ${this.peer} closed: ${this.#abortReason}`);
        }
        throw new ContactClosedError('the contact connection closed');
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`no answer on the contact connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        t.unref(); // the open socket keeps the process alive while it matters
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  onClose(handler: () => void): void {
    if (this.#closed) handler();
    else this.#onClose.push(handler);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    this.#socket.destroySoon?.();
    this.#wake();
    for (const h of this.#onClose.splice(0)) h();
  }

  /** Closes the connection at once on a peer that broke a rule; what it sent and did not read is dropped. */
  abort(reason: string): void {
    if (this.#closed) return;
    this.#abortReason = reason;
    this.#lines.length = 0;
    this.#partial = [];
    this.#socket.destroy();
    this.close();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      if (!this.#take(chunk.subarray(start, nl))) return;
      const line = this.#partial.length === 1 ? this.#partial[0]! : Buffer.concat(this.#partial);
      this.#partial = [];
      this.#partialBytes = 0;
      if (this.#lines.length >= this.#limits.queuedLinesMax) {
        return this.abort(`it sent more than ${this.#limits.queuedLinesMax} lines ahead of the protocol`);
      }
      this.#lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.byteLength && !this.#take(chunk.subarray(start))) return;
    this.#wake();
  }

  /** Adds a piece of the line being read; false (and the connection closed) when the line grows too long. */
  #take(piece: Buffer): boolean {
    this.#partialBytes += piece.byteLength;
    if (this.#partialBytes > this.#lineBytesMax) {
      this.abort(`it sent a line longer than ${this.#lineBytesMax} bytes`);
      return false;
    }
    this.#partial.push(piece);
    return true;
  }

  #decode(line: Buffer): ContactMessage {
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(line));
    } catch {
      return this.#broken('a line that is not UTF-8 JSON');
    }
    if (this.#seal) {
      const envelope = parseSealed(value);
      if (!envelope) return this.#broken('an unsealed line in an authenticated session');
      const text = this.#seal.open(envelope);
      if (text === null) return this.#broken('a line whose MAC does not check (forged, replayed or reordered)');
      try { value = JSON.parse(text); } catch { return this.#broken('a sealed line that is not JSON'); }
    }
    const message = this.#role === 'member' ? parseFromJoiner(value) : parseFromMember(value);
    return message ?? this.#broken(`a message the contact protocol does not have (${describe(value)})`);
  }

  #broken(reason: string): never {
    this.abort(`it sent ${reason}`);
    throw new ContactProtocolError(`contact connection with ${this.peer} closed: it sent ${reason}`);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
}

/** A short, safe description of a rejected value for a log line (never the value itself). */
function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'string' ? 'a string' : String(value).slice(0, 16);
  }
  if (Array.isArray(value)) return 'an array';
  const keys = Object.keys(value).slice(0, 4).map((k) => JSON.stringify(k.slice(0, 24)));
  return `an object with ${keys.join(', ') || 'no keys'}`;
}
