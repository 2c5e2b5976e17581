// State transfer (DESIGN.md §6): a member that enters a shard of a replicated subgroup — a joiner, or a
// member the new view's plan moved — receives the shard's object state from a member that was in the shard
// in the old view. The source takes `snapshot()` at the end of the old view, once the trim is delivered and
// before the new view delivers anything, so the snapshot holds exactly the old view's commands; the
// recipient restores it before its first delivery of the new view (the group holds the shard's steps until
// then, so nothing of the new view runs on an empty object, and the rest of the shard waits for it).
//
// The bytes travel over the new view's point-to-point mailboxes, tagged apart from queries and replies:
//
//   begin   [u32 1][u32 chunkBytes][f64 totalBytes][i64 version][u32 chunks]
//   chunk   [u32 2][u32 index][u32 crc32 of the bytes][u32 0][bytes]
//   failed  [u32 3][UTF-8 why]        the source's snapshot() threw: there is no state to send
//   have    [u32 4][u32 crc32][i64 version]   a persistent subgroup's recipient → source: its log ends at
//                                     `version` (−1: use a snapshot), whose record's payload has that CRC
//   records [u32 5][…as begin]        begin of a log catch-up instead of a snapshot: the chunks carry the
//                                     records after the recipient's version (encodeRecords), ending at `version`
//   begin-stream [u32 7]…             a state of 4 MiB or more: its chunks come over a TCP stream of their own
//                                     (ts/group/state-stream.ts), in 1 MiB chunks, not through the mailboxes
//
// The CRC-32 of every chunk is computed at the source before it sends — a chunk at a time, yielding between
// slices — and at the recipient as each chunk arrives (zlib's crc32, about 5 GB/s here: a 1 MiB chunk costs
// the main thread a fraction of a millisecond, less than copying the state to a thread would); a mismatch
// fails the transfer with StateTransferError, and so does a source that sends nothing for the recipient's
// idle timeout. The recipient assembles the state in the one buffer it hands to restore().

import { setImmediate as yieldTurn } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { StateTransferError } from '../errors.js';
import {
  BEGIN_STREAM, decodeBeginStream, encodeBeginStream, receiveStream, StreamOffer, STREAM_MIN_BYTES,
} from './state-stream.js';
import type { GroupConfig } from './config.js';
import { planView } from '../membership/plans.js';

/** Tags of state-transfer records: the shard's point-to-point tag (ShardChannel.tag) with the top bit set. */
const STATE_TAG_BIT = 0x80000000;
export const stateTag = (t: Transfer): number => (STATE_TAG_BIT | (t.index << 16) | t.shard) >>> 0;
export const isStateTag = (tag: number): boolean => (tag & STATE_TAG_BIT) !== 0;

const BEGIN = 1;
const CHUNK = 2;
const FAILED = 3;
const HAVE = 4;
const BEGIN_RECORDS = 5;
const HAVE_BYTES = 16;
const BEGIN_BYTES = 28;
const CHUNK_HEADER = 16;
const CHUNK_BYTES = 256 * 1024;
/** A streamed state's chunks: larger, as a stream has no mailbox to fit (one CRC each). */
const STREAM_CHUNK_BYTES = 1024 * 1024;
/** Chunks a source has in its mailboxes (or queued for them) at once, per recipient. */
const CHUNKS_IN_FLIGHT = 4;
/** The source's checksums yield the event loop after each slice this large. */
const CHECKSUM_SLICE_BYTES = 8 * 1024 * 1024;

/** One shard's state, from `source` to each of `recipients` (ids in the new view). */
export interface Transfer {
  subgroup: string;
  /** The subgroup's index in the configuration. */
  index: number;
  shard: number;
  /** null: no old member of the shard is left — its state is lost, and the recipients start afresh. */
  source: number | null;
  recipients: number[];
}

/**
 * The transfers a change from `previous` to `next` needs, for the subgroups in `typed` (default all: a
 * member serving a subgroup without a replicated object sends an empty state): per shard of the
 * new plan, its members that were not in that shard before receive from the lowest-ranked member that was
 * and is still in the view — in this shard or, if the plan moved it, in another (it snapshots before it
 * restores its own new shard's state). A shard none of whose old members is left has no source (null): its
 * new members start from a fresh object — a member the plan moved there drops its old shard's copy.
 */
export function stateTransfers(config: GroupConfig, previous: readonly number[], next: readonly number[],
  typed: ReadonlySet<string> = new Set(Object.keys(config.subgroups))): Transfer[] {
  if (previous.length === 0) return []; // the first view: every object starts fresh
  const before = planView(config, previous);
  const out: Transfer[] = [];
  for (const plan of planView(config, next)) {
    if (!typed.has(plan.name)) continue;
    plan.shards.forEach((shard, s) => {
      const old = before[plan.index]?.shards[s]?.members ?? [];
      const source = old.find((m) => next.includes(m)) ?? null;
      const recipients = shard.members.filter((m) => !old.includes(m));
      if (recipients.length > 0) out.push({ subgroup: plan.name, index: plan.index, shard: s, source, recipients });
    });
  }
  return out;
}

/** One CRC-32 per chunk of `bytes`, in chunk order, yielding the event loop between slices. */
export async function chunkChecksums(bytes: Uint8Array, chunkBytes: number): Promise<Uint32Array> {
  const chunks = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
  const out = new Uint32Array(chunks);
  for (let i = 0, done = 0; i < chunks; i++) {
    const chunk = bytes.subarray(i * chunkBytes, Math.min(bytes.byteLength, (i + 1) * chunkBytes));
    out[i] = crc32(chunk);
    done += chunk.byteLength;
    if (done >= CHECKSUM_SLICE_BYTES && i < chunks - 1) {
      done = 0;
      await yieldTurn();
    }
  }
  return out;
}

/** What a source sends: a snapshot, why there is none (`failed`), or (`records`) a catch-up from its log. */
export interface SentState { bytes: Uint8Array; version: bigint; failed?: string; records?: boolean }

/** Where a source offers streams (ts/group/state-stream.ts): its host, and how long an offer stands. */
export interface StreamPlace { host: string; timeoutMs: number }

/**
 * Sends `snapshot.bytes` (taken at `snapshot.version`; or, when `snapshot.failed`, why there are none) to
 * each recipient through `send`, a few chunks at a time per recipient; `maxPayload` is the largest record
 * the mailboxes carry. With `stream`, a state of STREAM_MIN_BYTES or more goes over a TCP stream to each
 * recipient instead (the mailbox carries its begin). `crc` is closed when done; `sent(to)` is called once a
 * recipient's last chunk went.
 */
export async function sendState(
  send: (to: number, bytes: Uint8Array) => Promise<void>, recipients: readonly number[],
  { bytes: snapshot, version, failed, records }: SentState, maxPayload: number,
  sent?: (to: number) => void, stream?: StreamPlace,
): Promise<void> {
  if (failed !== undefined) {
    const why = new TextEncoder().encode(failed.slice(0, 1000));
    const record = new Uint8Array(4 + why.byteLength);
    new DataView(record.buffer).setUint32(0, FAILED, true);
    record.set(why, 4);
    await Promise.all(recipients.map((to) => send(to, record)));
    return;
  }
  const length = snapshot.byteLength;
  const streamed = stream !== undefined && length >= STREAM_MIN_BYTES;
  const chunkBytes = streamed ? STREAM_CHUNK_BYTES
    : Math.max(1024, Math.min(CHUNK_BYTES, (maxPayload - CHUNK_HEADER) & ~7));
  const crcs = await chunkChecksums(snapshot, chunkBytes);
  const begin = new Uint8Array(BEGIN_BYTES);
  const view = new DataView(begin.buffer);
  view.setUint32(0, records ? BEGIN_RECORDS : BEGIN, true);
  view.setUint32(4, chunkBytes, true);
  view.setFloat64(8, length, true);
  view.setBigInt64(16, version, true);
  view.setUint32(24, crcs.length, true);
  await Promise.all(recipients.map(async (to) => {
    if (streamed) {
      const offer = await StreamOffer.open(stream.host, stream.timeoutMs);
      try {
        await send(to, encodeBeginStream({
          chunkBytes, totalBytes: length, version, chunks: crcs.length, port: offer.port, records: records === true,
          token: offer.token,
        }));
        await offer.send(snapshot, crcs);
      } finally {
        offer.close();
      }
      sent?.(to);
      return;
    }
    await send(to, begin);
    const inFlight: Array<Promise<void>> = [];
    for (let i = 0; i < crcs.length; i++) {
      const data = snapshot.subarray(i * chunkBytes, Math.min(length, (i + 1) * chunkBytes));
      const record = new Uint8Array(CHUNK_HEADER + data.byteLength);
      const header = new DataView(record.buffer);
      header.setUint32(0, CHUNK, true);
      header.setUint32(4, i, true);
      header.setUint32(8, crcs[i]!, true);
      record.set(data, CHUNK_HEADER);
      const sent = send(to, record);
      sent.catch(() => {}); // seen when awaited below; a rejection meanwhile must not go unhandled
      inFlight.push(sent);
      if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
    }
    await Promise.all(inFlight);
    sent?.(to);
  }));
}

/**
 * What a recipient received: a snapshot, or (`records`) the log records after its own version; `streamMs`:
 * from the source's first record (begin) to its last chunk here — the bytes' time on the way.
 */
export interface ReceivedState { bytes: Uint8Array; version: bigint; records: boolean; streamMs: number }

/** The `have` record: where a persistent subgroup's recipient's log ends (−1n: send a snapshot). */
export function encodeHave(version: bigint, crc: number): Uint8Array {
  const record = new Uint8Array(HAVE_BYTES);
  const view = new DataView(record.buffer);
  view.setUint32(0, HAVE, true);
  view.setUint32(4, crc >>> 0, true);
  view.setBigInt64(8, version, true);
  return record;
}

/** A `have` record's version and CRC, or null when `record` is not one. */
export function decodeHave(record: Uint8Array): { version: bigint; crc: number } | null {
  if (record.byteLength !== HAVE_BYTES) return null;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (view.getUint32(0, true) !== HAVE) return null;
  const version = view.getBigInt64(8, true);
  return version < -1n ? null : { version, crc: view.getUint32(4, true) };
}

/** A log record as a catch-up carries it. */
export interface CarriedRecord { version: bigint; hlc: bigint; sender: number; payload: Uint8Array }
const CARRIED_HEADER = 24;

/** Records for a catch-up: [u32 count] then per record [i64 version][u64 hlc][u32 sender][u32 length][payload]. */
export function encodeRecords(records: readonly CarriedRecord[]): Uint8Array {
  let total = 4;
  for (const r of records) total += CARRIED_HEADER + r.payload.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, records.length, true);
  let at = 4;
  for (const r of records) {
    view.setBigInt64(at, r.version, true);
    view.setBigUint64(at + 8, r.hlc, true);
    view.setUint32(at + 16, r.sender, true);
    view.setUint32(at + 20, r.payload.byteLength, true);
    out.set(r.payload, at + CARRIED_HEADER);
    at += CARRIED_HEADER + r.payload.byteLength;
  }
  return out;
}

/** Reads encodeRecords' bytes, checking every length (they came over the network); throws StateTransferError. */
export function decodeRecords(bytes: Uint8Array): CarriedRecord[] {
  const bad = (why: string): never => { throw new StateTransferError(`a log catch-up is malformed: ${why}`); };
  if (bytes.byteLength < 4) bad('shorter than its count');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const out: CarriedRecord[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + CARRIED_HEADER > bytes.byteLength) bad(`record ${i} of ${count} is cut short`);
    const length = view.getUint32(at + 20, true);
    if (at + CARRIED_HEADER + length > bytes.byteLength) bad(`record ${i} claims ${length} bytes past the end`);
    out.push({
      version: view.getBigInt64(at, true), hlc: view.getBigUint64(at + 8, true), sender: view.getUint32(at + 16, true),
      payload: bytes.slice(at + CARRIED_HEADER, at + CARRIED_HEADER + length),
    });
    at += CARRIED_HEADER + length;
  }
  if (at !== bytes.byteLength) bad(`${bytes.byteLength - at} bytes after the last record`);
  return out;
}

/** The state a shard's new member awaits from its source: assembled from records, checked, then handed over. */
export class StateReceiver {
  readonly transfer: Transfer;
  /** `records`: the bytes are log records after the recipient's version (encodeRecords), not a snapshot. */
  readonly done: Promise<ReceivedState>;
  #resolve!: (state: ReceivedState) => void;
  #records = false;
  #reject!: (error: Error) => void;
  #buffer: ArrayBuffer | null = null;
  #length = 0;
  #chunkBytes = 0;
  #version = -1n;
  #have: Uint8Array | null = null;
  #received = 0;
  /** performance.now() when the begin record arrived, and when the last chunk did. */
  #beganAt = 0;
  #endedAt = 0;
  #settled = false;
  readonly #idleTimeoutMs: number;
  #idle: NodeJS.Timeout | null = null;
  /** Bytes received so far and expected in all (progress). */
  receivedBytes = 0;

  /** The host the source's stream listens on (null: a state that comes as a stream is refused). */
  readonly #sourceHost: string | null;
  /** Closes the stream's connection, while there is one. */
  #closeStream: (() => void) | null = null;

  /**
   * `idleTimeoutMs`: how long it waits for the source's next record (the first, from its creation);
   * `sourceHost`: where to connect when the source streams the state.
   */
  constructor(transfer: Transfer, idleTimeoutMs = 30_000, sourceHost: string | null = null) {
    this.transfer = transfer;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#sourceHost = sourceHost;
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    this.done.catch(() => {}); // the group reports it
    this.#armIdle();
  }

  #armIdle(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.fail(new StateTransferError(`${this.#what()}: nothing arrived for `
      + `${this.#idleTimeoutMs} ms; start the member again to rejoin (connectTimeoutMs sets this wait)`)),
    this.#idleTimeoutMs);
    this.#idle.unref();
  }

  get totalBytes(): number { return this.#length; }

  /** A state record from `from` (copied: the mailbox's bytes are reused). */
  accept(from: number, record: Uint8Array): void {
    if (this.#settled || from !== this.transfer.source) return;
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const kind = view.getUint32(0, true);
    this.#armIdle();
    if ((kind === BEGIN || kind === BEGIN_RECORDS) && !this.#buffer) {
      this.#begin(kind === BEGIN_RECORDS, view.getUint32(4, true), view.getFloat64(8, true), view.getBigInt64(16, true),
        view.getUint32(24, true));
    } else if (kind === BEGIN_STREAM && !this.#buffer) {
      const begin = decodeBeginStream(record);
      if (!begin || this.#sourceHost === null) {
        return this.fail(new StateTransferError(`${this.#what()}: a stream this member cannot take`));
      }
      if (!this.#begin(begin.records, begin.chunkBytes, begin.totalBytes, begin.version, begin.chunks)) return;
      this.#closeStream = receiveStream(this.#sourceHost, begin.port, begin.token, {
        buffer: new Uint8Array(this.#buffer!), chunkBytes: this.#chunkBytes, chunks: begin.chunks,
        chunk: (index, crc) => this.#chunk(index, crc),
        alive: () => this.#armIdle(),
        fail: (error) => this.fail(error),
      });
      return;
    } else if (kind === CHUNK && this.#buffer) {
      const index = view.getUint32(4, true);
      if (index >= this.#have!.length || this.#have![index]) {
        return this.fail(new StateTransferError(`${this.#what()}: chunk ${index} arrived twice or out of range`));
      }
      const data = record.subarray(CHUNK_HEADER);
      if (data.byteLength !== this.#lengthOf(index)) {
        return this.fail(new StateTransferError(`${this.#what()}: chunk ${index} has ${data.byteLength} bytes, not `
          + `${this.#lengthOf(index)}`));
      }
      new Uint8Array(this.#buffer).set(data, index * this.#chunkBytes);
      return this.#chunk(index, view.getUint32(8, true));
    } else if (kind === FAILED) {
      const why = new TextDecoder().decode(record.subarray(4));
      return this.fail(new StateTransferError(`${this.#what()}: member ${from}'s snapshot() failed (${why}); fix the `
        + 'class\'s snapshot(), then join again', false));
    }
  }

  /** A begin record's fields: the buffer the chunks fill. False (and failed) when they do not add up. */
  #begin(records: boolean, chunkBytes: number, length: number, version: bigint, chunks: number): boolean {
    const fits = Number.isSafeInteger(length) && length >= 0 && chunkBytes > 0
      && chunks === Math.max(1, Math.ceil(length / chunkBytes));
    if (!fits) {
      this.fail(new StateTransferError(`${this.#what()}: its begin record does not add up (${length} bytes in `
        + `${chunks} chunks of ${chunkBytes})`));
      return false;
    }
    let buffer: ArrayBuffer;
    try {
      buffer = new ArrayBuffer(length);
    } catch {
      this.fail(new StateTransferError(`${this.#what()}: ${length} bytes do not fit in this process's memory`));
      return false;
    }
    this.#beganAt = performance.now();
    this.#records = records;
    this.#chunkBytes = chunkBytes;
    this.#length = length;
    this.#version = version;
    this.#have = new Uint8Array(chunks);
    this.#buffer = buffer;
    this.#wholeIfDone();
    return true;
  }

  /** The length of chunk `index` (the last may be short; an empty state is one empty chunk). */
  #lengthOf(index: number): number {
    return Math.max(0, Math.min(this.#chunkBytes, this.#length - index * this.#chunkBytes));
  }

  /** Chunk `index` is in the buffer: checked against the CRC its source computed. */
  #chunk(index: number, crc: number): void {
    if (this.#settled) return;
    const start = index * this.#chunkBytes, bytes = this.#lengthOf(index);
    if (crc32(new Uint8Array(this.#buffer!, start, bytes)) !== crc) {
      return this.fail(new StateTransferError(`${this.#what()}: chunk ${index} failed its checksum; the member `
        + 'joins again to retry'));
    }
    this.#have![index] = 1;
    this.#received++;
    this.receivedBytes += bytes;
    this.#wholeIfDone();
  }

  /** Every chunk arrived and passed its checksum: the state is handed over. */
  #wholeIfDone(): void {
    if (this.#settled || !this.#have || this.#received !== this.#have.length && this.#length > 0) return;
    this.#endedAt = performance.now();
    this.#settle();
    this.#resolve({
      bytes: new Uint8Array(this.#buffer!), version: this.#version, records: this.#records,
      streamMs: this.#endedAt - this.#beganAt,
    });
  }

  fail(error: Error): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    this.#settled = true;
    if (this.#idle) clearTimeout(this.#idle);
    this.#closeStream?.();
  }

  #what(): string {
    const { subgroup, shard, source } = this.transfer;
    return `the state of subgroup '${subgroup}' shard ${shard} from member ${source}`;
  }
}
