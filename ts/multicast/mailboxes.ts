// Point-to-point messages between two members (queries and replies, DESIGN.md §8), carried by the SST as
// everything else is: member A's row holds one mailbox per member row d (p2p_box), written to member d only
// with one-sided writes, and the counters that make each a single-producer single-consumer ring:
//
//   p2p_written[d]   in A's row, at d:   bytes A has written into its mailbox for d (monotonic)
//   p2p_read[a]      in d's row, at A:   bytes d has consumed of A's mailbox for it (monotonic)
//
// A record is [u32 length][u32 tag][payload], padded to 8 bytes; a record never wraps — when it does not
// fit before the end, a skip marker (length 0xffffffff) fills the rest and the record starts at 0. The writer
// sends the record bytes, then its `written` counter, on the same connection (data before control), so a
// reader that sees the counter finds the records complete. A full mailbox queues sends here until the reader's
// `read` counter comes back. Tags let several shards share one mailbox pair.

import type { Arena } from '../arena.js';
import { MessageTooLargeError, PeerFailedError, ConfigError } from '../errors.js';
import type { TableFabric } from '../fabric/fabric.js';
import { WriteStatus } from '../fabric/fabric.js';
import type { SstLayout } from '../sst/layout.js';
import { MAILBOX_COLUMNS } from './layout.js';

const RECORD_HEADER = 8;
const SKIP = 0xffffffff;
const align8 = (n: number) => (n + 7) & ~7;

interface Pending { bytes: Uint8Array; tag: number; resolve: () => void; reject: (e: Error) => void }

export type DirectHandler = (from: number, tag: number, bytes: Uint8Array) => void;

export class Mailboxes {
  readonly boxBytes: number;
  /** Largest payload one record carries: half a mailbox, so a record always fits after a skip. */
  readonly maxPayload: number;
  readonly #arena: Arena;
  readonly #fabric: TableFabric;
  readonly #layout: SstLayout;
  readonly #selfRow: number;
  readonly #written: number; // column offsets
  readonly #read: number;
  readonly #box: number;
  /** Bytes written to each row's mailbox (mirrors our p2p_written). */
  readonly #sent: number[];
  /** Bytes consumed of each row's mailbox for us (mirrors our p2p_read). */
  readonly #consumed: number[];
  readonly #queues: Pending[][];
  readonly #failed = new Map<number, Error>();

  constructor(arena: Arena, fabric: TableFabric, layout: SstLayout, selfId: number, boxBytes: number) {
    this.#arena = arena;
    this.#fabric = fabric;
    this.#layout = layout;
    this.#selfRow = layout.rowOf(selfId);
    this.boxBytes = boxBytes;
    this.maxPayload = boxBytes / 2 - RECORD_HEADER;
    this.#written = layout.column(MAILBOX_COLUMNS.written).offset;
    this.#read = layout.column(MAILBOX_COLUMNS.read).offset;
    this.#box = layout.column(MAILBOX_COLUMNS.box).offset;
    this.#sent = new Array<number>(layout.rows).fill(0);
    this.#consumed = new Array<number>(layout.rows).fill(0);
    this.#queues = Array.from({ length: layout.rows }, () => []);
  }

  /** Sends `bytes` to member `to`; resolves once written (queued while its mailbox is full). */
  send(to: number, tag: number, bytes: Uint8Array): Promise<void> {
    const row = this.#layout.rowOf(to);
    if (row < 0 || row === this.#selfRow) {
      return Promise.reject(new ConfigError(`member ${to} is not another member of this group`));
    }
    if (bytes.byteLength > this.maxPayload) {
      const what = 'a point-to-point message (query or reply)';
      return Promise.reject(new MessageTooLargeError(what, bytes.byteLength, this.maxPayload));
    }
    const failed = this.#failed.get(to);
    if (failed) return Promise.reject(failed);
    const queue = this.#queues[row]!;
    if (queue.length === 0 && this.#tryWrite(row, tag, bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => queue.push({ bytes, tag, resolve, reject }));
  }

  /** Delivers every record that arrived since the last poll and retries queued sends; call after table changes. */
  poll(handler: DirectHandler): void {
    for (let row = 0; row < this.#layout.rows; row++) {
      if (row === this.#selfRow) continue;
      this.#receive(row, handler);
      const queue = this.#queues[row]!;
      while (queue.length > 0 && this.#tryWrite(row, queue[0]!.tag, queue[0]!.bytes)) queue.shift()!.resolve();
    }
  }

  /** Fails queued and later sends to `member`. */
  fail(member: number, reason: string): void {
    const row = this.#layout.rowOf(member);
    if (row < 0 || this.#failed.has(member)) return;
    const error = new PeerFailedError(member, reason,
      `member ${member} failed (${reason}): point-to-point messages to it cannot be delivered`);
    this.#failed.set(member, error);
    for (const p of this.#queues[row]!.splice(0)) p.reject(error);
  }

  #boxAt(ownerRow: number, forRow: number): number {
    return this.#layout.rowOffset(ownerRow) + this.#box + forRow * this.boxBytes;
  }

  #tryWrite(row: number, tag: number, bytes: Uint8Array): boolean {
    const record = align8(RECORD_HEADER + bytes.byteLength);
    const readAt = this.#layout.rowOffset(row) + this.#read + this.#selfRow * 8;
    const readByPeer = Number(Atomics.load(this.#arena.i64, readAt >> 3));
    let pos = this.#sent[row]!;
    const at = pos % this.boxBytes;
    const skip = at + record > this.boxBytes ? this.boxBytes - at : 0;
    if (pos + skip + record - readByPeer > this.boxBytes) return false;
    const box = this.#boxAt(this.#selfRow, row);
    const u32 = this.#arena.u32;
    if (skip > 0) {
      u32[(box + at) >> 2] = SKIP;
      this.#check(this.#fabric.write(this.#layout.members[row]!, box + at, RECORD_HEADER), row);
      pos += skip;
    }
    const start = box + (pos % this.boxBytes);
    u32[start >> 2] = bytes.byteLength;
    u32[(start + 4) >> 2] = tag;
    this.#arena.u8.set(bytes, start + RECORD_HEADER);
    this.#check(this.#fabric.write(this.#layout.members[row]!, start, RECORD_HEADER + bytes.byteLength), row);
    pos += record;
    this.#sent[row] = pos;
    const counter = this.#layout.rowOffset(this.#selfRow) + this.#written + row * 8;
    Atomics.store(this.#arena.i64, counter >> 3, BigInt(pos));
    this.#check(this.#fabric.write(this.#layout.members[row]!, counter, 8), row);
    return true;
  }

  #check(status: WriteStatus, row: number): void {
    if (status === WriteStatus.Ok) return;
    // The failure itself reaches us through the SST's connection news; record it so callers hear at once.
    this.fail(this.#layout.members[row]!, status === WriteStatus.NotConnected ? 'NOT_CONNECTED' : 'FAILED');
  }

  #receive(row: number, handler: DirectHandler): void {
    const arena = this.#arena;
    const writtenAt = this.#layout.rowOffset(row) + this.#written + this.#selfRow * 8;
    const written = Number(Atomics.load(arena.i64, writtenAt >> 3));
    let pos = this.#consumed[row]!;
    if (written === pos) return;
    const box = this.#boxAt(row, this.#selfRow);
    const from = this.#layout.members[row]!;
    while (pos < written) {
      const at = box + (pos % this.boxBytes);
      const length = arena.u32[at >> 2]!;
      if (length === SKIP) { pos += this.boxBytes - (pos % this.boxBytes); continue; }
      const tag = arena.u32[(at + 4) >> 2]!;
      pos += align8(RECORD_HEADER + length);
      this.#consumed[row] = pos; // a handler that throws must not see the record again
      handler(from, tag, arena.u8.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length));
    }
    this.#consumed[row] = pos;
    const counter = this.#layout.rowOffset(this.#selfRow) + this.#read + row * 8;
    Atomics.store(arena.i64, counter >> 3, BigInt(pos));
    this.#fabric.write(from, counter, 8);
  }
}
