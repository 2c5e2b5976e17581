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
//
// Pushes are per batch, not per record, as the shard's are per step: send() writes the record into the local
// copy of the mailbox at once, and the records written since the last push go out together — with the
// `written` counter that names them and, when this member consumed records of that peer meanwhile, its `read`
// counter for it — in one writeBatch per peer (one sendmsg). The push runs in a microtask queued by the first
// record or consumption of a batch, so the replies a step produces to one caller, and the read counters of a
// poll, leave together as soon as the step's JS turn ends. flush() pushes at once: the member's driver calls
// it at the end of each step, inside the step's hold of the view's pushes (ts/fabric/staged-pushes.ts), so
// the step's replies to a peer leave in the same send as its acknowledgements to it (see `lane`).
//
// What a peer wrote is checked before it is read: its `written` counter must lie within a mailbox of what we
// consumed, and each record within the mailbox, within `written` and at most maxPayload long; its `read`
// counter may only grow, up to what we wrote to it. A peer whose
// counter or records break that (a bug, or a member that is not what it claims) is failed at once: nothing
// more of its is read, and onMisbehaved reports it, so that the view removes it. Without the checks a counter
// far ahead made the reading loop run for hours over zeroed records, and a record's length read past the
// mailbox into other rows.
//
// A peer that stops reading its mailbox while messages keep coming for it (replies to its calls) would make
// this member queue them without end. At most MAX_QUEUED_PER_PEER wait per peer; the next fails the peer
// the same way. An honest peer's queue is bounded by its own calls and queries in flight: maxCallsInFlight
// (default 1024) per object handle it calls through.

import type { Arena } from '../arena.js';
import { MessageTooLargeError, PeerFailedError, ConfigError } from '../errors.js';
import type { TableFabric } from '../fabric/fabric.js';
import { Lane, WriteStatus } from '../fabric/fabric.js';
import type { SstLayout } from '../sst/layout.js';
import { MAILBOX_COLUMNS } from './layout.js';
import { WRITTEN } from '../objects/channel.js';

const RECORD_HEADER = 8;
/** Sends that may wait for room in one peer's mailbox; the next one fails that peer (the top of this file). */
export const MAX_QUEUED_PER_PEER = 65_536;
const SKIP = 0xffffffff;
const align8 = (n: number) => (n + 7) & ~7;
/** Ranges of one peer's push: the records (two when they wrap past the mailbox's end), `written`, `read`. */
const MAX_PUSH_RANGES = 4;
/** The largest mailbox whose pushes travel on the control lane (Mailboxes.lane): the default size, 1 MiB. */
export const CONTROL_LANE_MAILBOX_BYTES = 1 << 20;

interface Pending { bytes: Uint8Array; tag: number; resolve: () => void; reject: (e: Error) => void }

export type DirectHandler = (from: number, tag: number, bytes: Uint8Array) => void;

export class Mailboxes {
  readonly boxBytes: number;
  /**
   * The lane every push of these mailboxes travels on, for their lifetime (a counter must never change
   * lanes: its pushes would stop being ordered). The control lane when a mailbox is at most
   * CONTROL_LANE_MAILBOX_BYTES: replies then leave in the same send as the step's acknowledgements and
   * arrive with them, and what they can put ahead of a heartbeat is bounded by the mailbox; larger ones go
   * on the data lane.
   */
  readonly lane: Lane;
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
  /** Per row: how much of #sent, and of #consumed, was pushed to it (behind: the next push carries the rest). */
  readonly #sentPushed: number[];
  readonly #consumedPushed: number[];
  /** Per row: the peer's `read` counter for our mailbox as last seen (it may only grow, up to #sent). */
  readonly #readByPeer: number[];
  /** Per row: the mailbox offset of a skip marker written since the last push, −1 if none. */
  readonly #skipAt: number[];
  /** A push is queued (a microtask). */
  #flushQueued = false;
  readonly #ranges = new Float64Array(2 * MAX_PUSH_RANGES);
  readonly #queues: Pending[][];
  readonly #failed = new Map<number, Error>();
  /** Peers that broke the rules below: nothing more of theirs is read (a peer failed otherwise still is). */
  readonly #misbehaving = new Set<number>();
  /**
   * Told of a peer whose mailbox for us broke the rules above (`what` says how), once; the peer is failed
   * here already (the reason BAD_MAILBOX). The group suspects it, so that the next view leaves it out.
   */
  onMisbehaved: ((member: number, what: string) => void) | null = null;

  constructor(arena: Arena, fabric: TableFabric, layout: SstLayout, selfId: number, boxBytes: number) {
    this.#arena = arena;
    this.#fabric = fabric;
    this.#layout = layout;
    this.#selfRow = layout.rowOf(selfId);
    this.boxBytes = boxBytes;
    this.lane = boxBytes <= CONTROL_LANE_MAILBOX_BYTES ? Lane.Control : Lane.Data;
    this.maxPayload = boxBytes / 2 - RECORD_HEADER;
    this.#written = layout.column(MAILBOX_COLUMNS.written).offset;
    this.#read = layout.column(MAILBOX_COLUMNS.read).offset;
    this.#box = layout.column(MAILBOX_COLUMNS.box).offset;
    this.#sent = new Array<number>(layout.rows).fill(0);
    this.#consumed = new Array<number>(layout.rows).fill(0);
    this.#sentPushed = new Array<number>(layout.rows).fill(0);
    this.#consumedPushed = new Array<number>(layout.rows).fill(0);
    this.#readByPeer = new Array<number>(layout.rows).fill(0);
    this.#skipAt = new Array<number>(layout.rows).fill(-1);
    this.#queues = Array.from({ length: layout.rows }, () => []);
  }

  /**
   * Sends `bytes` to member `to`; resolves once written into the mailbox (queued while it is full). The
   * push follows with the batch's (see the top of this file).
   */
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
    if (queue.length === 0 && this.#tryWrite(row, tag, bytes)) return WRITTEN;
    if (queue.length >= MAX_QUEUED_PER_PEER) {
      this.#misbehaved(to, `it stopped reading its mailbox with ${queue.length} messages waiting for room`);
    }
    const failedNow = this.#failed.get(to); // the peer's read counter broke the rules just now, or its queue
    if (failedNow) return Promise.reject(failedNow);
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

  /** Pushes what was written or consumed since the last push, one writeBatch per peer. */
  flush(): void {
    this.#flushQueued = false;
    for (let row = 0; row < this.#layout.rows; row++) {
      if (row !== this.#selfRow) this.#push(row);
    }
  }

  /** Fails queued and later sends to `member`. */
  fail(member: number, reason: string): void {
    const row = this.#layout.rowOf(member);
    if (row < 0 || this.#failed.has(member)) return;
    const error = new PeerFailedError(member, reason,
      `member ${member} failed (${reason}): point-to-point messages to it cannot be delivered`);
    this.#failed.set(member, error);
    this.#sentPushed[row] = this.#sent[row]!; // nothing more goes to it
    this.#consumedPushed[row] = this.#consumed[row]!;
    this.#skipAt[row] = -1;
    for (const p of this.#queues[row]!.splice(0)) p.reject(error);
  }

  readonly #flushSoon = (): void => { if (this.#flushQueued) this.flush(); };

  #schedulePush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flushSoon);
  }

  #boxAt(ownerRow: number, forRow: number): number {
    return this.#layout.rowOffset(ownerRow) + this.#box + forRow * this.boxBytes;
  }

  /** Writes one record into our copy of row's mailbox, if there is room; the push comes later (#push). */
  #tryWrite(row: number, tag: number, bytes: Uint8Array): boolean {
    const record = align8(RECORD_HEADER + bytes.byteLength);
    const readAt = this.#layout.rowOffset(row) + this.#read + this.#selfRow * 8;
    const readByPeer = Number(Atomics.load(this.#arena.i64, readAt >> 3));
    let pos = this.#sent[row]!;
    if (readByPeer !== this.#readByPeer[row] && !this.#readMoved(row, readByPeer, pos)) return false;
    const at = pos % this.boxBytes;
    const skip = at + record > this.boxBytes ? this.boxBytes - at : 0;
    if (pos + skip + record - readByPeer > this.boxBytes) return false;
    const box = this.#boxAt(this.#selfRow, row);
    const u32 = this.#arena.u32;
    if (skip > 0) {
      u32[(box + at) >> 2] = SKIP;
      this.#skipAt[row] = at;
      pos += skip;
    }
    const start = box + (pos % this.boxBytes);
    u32[start >> 2] = bytes.byteLength;
    u32[(start + 4) >> 2] = tag;
    this.#arena.u8.set(bytes, start + RECORD_HEADER);
    this.#sent[row] = pos + record;
    this.#schedulePush();
    return true;
  }

  /**
   * The peer's `read` counter for our mailbox moved: it may only grow, up to what we wrote. False (and the
   * peer failed) when it broke that.
   */
  #readMoved(row: number, readByPeer: number, sent: number): boolean {
    if (readByPeer > this.#readByPeer[row]! && readByPeer <= sent) {
      this.#readByPeer[row] = readByPeer;
      return true;
    }
    this.#misbehaved(this.#layout.members[row]!, `its read counter is ${readByPeer}, after ${this.#readByPeer[row]}, `
      + `of the ${sent} bytes written to it`);
    return false;
  }

  /**
   * One writeBatch to row: the records written since the last push (a skip marker's header, not the rest of
   * the mailbox it skips), then our `written` counter for it — after the records on the same lane, so the
   * peer finds them complete — and our `read` counter for its mailbox when it moved.
   */
  #push(row: number): void {
    const sent = this.#sent[row]!, consumed = this.#consumed[row]!;
    const from = this.#sentPushed[row]!;
    if (sent === from && consumed === this.#consumedPushed[row]) return;
    if (this.#failed.size > 0 && this.#failed.has(this.#layout.members[row]!)) return;
    const ranges = this.#ranges;
    let count = 0;
    if (sent !== from) {
      const box = this.#boxAt(this.#selfRow, row);
      const at = from % this.boxBytes;
      const skipAt = this.#skipAt[row]!;
      // The unpushed bytes are less than a mailbox: at most one wrap, behind a skip marker or at the end.
      const wraps = at + (sent - from) > this.boxBytes;
      const firstEnd = skipAt >= at ? skipAt + RECORD_HEADER : wraps ? this.boxBytes : at + (sent - from);
      ranges[0] = box + at;
      ranges[1] = firstEnd - at;
      count = 1;
      if (wraps) {
        ranges[2] = box;
        ranges[3] = sent % this.boxBytes;
        count = 2;
      }
      count = this.#stageCounter(this.#written, row, sent, count);
      this.#sentPushed[row] = sent;
      this.#skipAt[row] = -1;
    }
    if (consumed !== this.#consumedPushed[row]) {
      count = this.#stageCounter(this.#read, row, consumed, count);
      this.#consumedPushed[row] = consumed;
    }
    const member = this.#layout.members[row]!;
    const status = this.#fabric.writeBatch(member, ranges, count, this.lane);
    if (status !== WriteStatus.Ok) this.refused(member, status);
  }

  /**
   * Stores `value` in our counter `column` (written or read) for row and stages it as the push's range
   * number `count`; returns the ranges staged.
   */
  #stageCounter(column: number, row: number, value: number, count: number): number {
    const counter = this.#layout.rowOffset(this.#selfRow) + column + row * 8;
    Atomics.store(this.#arena.i64, counter >> 3, BigInt(value));
    this.#ranges[2 * count] = counter;
    this.#ranges[2 * count + 1] = 8;
    return count + 1;
  }

  /**
   * The fabric refused a push to `member` (its connection is gone). The failure itself reaches us through
   * the SST's connection news; it is recorded here so that callers hear at once.
   */
  refused(member: number, status: WriteStatus): void {
    if (status === WriteStatus.Ok || this.#layout.rowOf(member) < 0) return;
    this.fail(member, status === WriteStatus.NotConnected ? 'NOT_CONNECTED' : 'FAILED');
  }

  #receive(row: number, handler: DirectHandler): void {
    const arena = this.#arena;
    const writtenAt = this.#layout.rowOffset(row) + this.#written + this.#selfRow * 8;
    const written = Number(Atomics.load(arena.i64, writtenAt >> 3));
    let pos = this.#consumed[row]!;
    if (written === pos) return;
    const from = this.#layout.members[row]!;
    if (this.#misbehaving.size > 0 && this.#misbehaving.has(from)) return; // nothing more of it is read
    if (!(written > pos && written - pos <= this.boxBytes)) {
      this.#misbehaved(from, `its written counter is ${written} with ${pos} bytes read of a ${this.boxBytes}-byte box`);
      return;
    }
    const box = this.#boxAt(row, this.#selfRow);
    while (pos < written) {
      const inBox = pos % this.boxBytes;
      const at = box + inBox;
      const length = arena.u32[at >> 2]!;
      const end = length === SKIP ? pos + this.boxBytes - inBox : pos + align8(RECORD_HEADER + length);
      const fits = length === SKIP || (length <= this.maxPayload && end - pos <= this.boxBytes - inBox);
      if (!fits || end > written) {
        this.#consumed[row] = pos;
        this.#misbehaved(from, `a record at byte ${pos} (length ${length}) overruns its box or its counter ${written}`);
        return;
      }
      pos = end;
      if (length === SKIP) continue;
      this.#consumed[row] = pos; // a handler that throws must not see the record again
      handler(from, arena.u32[(at + 4) >> 2]!, arena.u8.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length));
    }
    this.#consumed[row] = pos;
    this.#schedulePush(); // our read counter goes back to the writer with the batch's push
  }

  /** A peer broke the mailbox's rules (the top of this file): it is failed, and reported once. */
  #misbehaved(member: number, what: string): void {
    if (this.#misbehaving.has(member)) return;
    this.#misbehaving.add(member);
    this.fail(member, 'BAD_MAILBOX');
    this.onMisbehaved?.(member, what);
  }
}
