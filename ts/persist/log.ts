// A persistent log of one (subgroup, shard) at one member: an append-only write-ahead log in segment files, with
// group commit. append() only copies the record into a buffer on the main thread; one write + fdatasync at a time
// runs on libuv's threads (fs/promises) and takes everything appended meanwhile, so a burst of appends costs one
// fdatasync. durableVersion / onDurable say what has reached the disk. Snapshots, a truncation for total restart
// and a small atomic metadata document live beside the segments. The byte maps are in ./format.ts and
// docs/persistence.md; opening and recovery (torn tail, damage, identity) in ./recovery.ts.

import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ClosedError, PersistError } from '../errors.js';
import { ioError, syncDirectory, writeFileAtomic, writevAll } from './files.js';
import {
  checkRecord, decodeSnapshot, encodeRecord, encodeSnapshotHeader, markSyncStart, MAX_HLC, MAX_PAYLOAD_BYTES,
  MAX_SENDER, MAX_VERSION, META_FILE, RECORD_HEADER_BYTES, segmentName, snapshotName,
} from './format.js';
import type { IndexTable } from './index-table.js';
import { lockDirectory } from './lock.js';
import {
  claimDirectory, damaged, recover, type LogIdentity, type Recovered, type Segment, type SnapshotInfo, type TornTail,
} from './recovery.js';

export type { LogIdentity } from './recovery.js';
export interface LogRecord { version: bigint; hlc: bigint; sender: number; payload: Uint8Array }
export interface LogSnapshot { version: bigint; hlc: bigint; bytes: Uint8Array }
export interface LogOptions {
  /** A segment is closed and a new one started past this size (default 64 MiB; 4 KiB … 1 GiB). */
  segmentBytes?: number;
  /** Wait this long after the first append of a batch before writing it, to gather more (default 0: the batch
   *  is what was appended while the previous one was being written). */
  commitDelayUs?: number;
}

export const DEFAULT_SEGMENT_BYTES = 64 << 20;
/** Appends are copied into buffers of CHUNK_BYTES (a larger record gets one of its own size), reused once their
 *  commit is done (at most POOLED_CHUNKS kept); a commit writes a segment's buffers with one writev. Reuse matters:
 *  here, copying 64 KiB into fresh memory took 200–450 µs (page faults), into a reused buffer 1 µs. */
const CHUNK_BYTES = 1 << 20;
const POOLED_CHUNKS = 32;
/** read() reads the segment in spans of about this many bytes. */
const READ_SPAN_BYTES = 1 << 20;
const META_FORMAT = 'squall-log-meta/1';

/** Bytes appended into one segment, waiting for the next group commit. `firstPayloadCrc` is the payload CRC-32 of
 *  its first record (at 0 in `buf`), to mark that record as a sync start. */
interface Chunk {
  segment: Segment; buf: Buffer; fill: number; fileOffset: number; lastVersion: bigint; firstPayloadCrc: number;
}

export class PersistentLog {
  readonly dir: string;
  readonly identity: LogIdentity;
  readonly recovered: { tornTail: TornTail | null };
  readonly #segmentBytes: number;
  readonly #commitDelayUs: number;
  #segments: Segment[];
  #segmentById = new Map<number, Segment>();
  #nextSegmentId: number;
  #index: IndexTable;
  #snapshot: SnapshotInfo | null;
  #appended: bigint;
  #durable: bigint;
  #pending: Chunk[] = [];
  #freeChunks: Buffer[] = [];
  /** Every file operation runs on this chain, one at a time: group commits, snapshots, truncation, close. */
  #chain: Promise<void> = Promise.resolve();
  #batchQueued = false;
  #handles = new Map<number, FileHandle>();
  #durableListeners: Array<(version: bigint) => void> = [];
  #errorListeners: Array<(error: PersistError) => void> = [];
  #flushWaiters: Array<{ version: bigint; resolve: (v: bigint) => void; reject: (e: Error) => void }> = [];
  #failed: PersistError | null = null;
  #closed = false;
  /** truncateAfter is running: appends are refused until it is done. */
  #truncating = false;
  #metaChain: Promise<void> = Promise.resolve();
  #unlock: () => Promise<void> = async () => undefined;
  #syncs = 0;

  private constructor(dir: string, identity: LogIdentity, options: LogOptions, found: Recovered) {
    this.dir = dir;
    this.identity = { ...identity };
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#commitDelayUs = options.commitDelayUs ?? 0;
    this.#segments = found.segments;
    for (const s of found.segments) this.#segmentById.set(s.id, s);
    this.#nextSegmentId = found.segments.length === 0 ? 0 : found.segments[found.segments.length - 1]!.id + 1;
    this.#index = found.index;
    this.#snapshot = found.snapshot;
    this.recovered = { tornTail: found.tornTail };
    const lastRecord = found.index.count > 0 ? found.index.version(found.index.count - 1) : -1n;
    const snapshotVersion = found.snapshot?.version ?? -1n;
    this.#appended = this.#durable = lastRecord > snapshotVersion ? lastRecord : snapshotVersion;
  }

  /** Creates or opens the log in `dir`; recovers (see ./recovery.ts). */
  static async open(dir: string, identity: LogIdentity, options: LogOptions = {}): Promise<PersistentLog> {
    checkIdentity(identity);
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isInteger(segmentBytes) || segmentBytes < 4096 || segmentBytes > 1 << 30) {
      throw new RangeError(`segmentBytes must be an integer from 4096 to 2^30, not ${segmentBytes}`);
    }
    const delay = options.commitDelayUs ?? 0;
    if (!Number.isFinite(delay) || delay < 0 || delay > 1e6) {
      throw new RangeError(`commitDelayUs must be from 0 to 1000000, not ${delay}`);
    }
    const names = await claimDirectory(dir, identity);
    const unlock = await lockDirectory(dir);
    try {
      const log = new PersistentLog(dir, identity, options, await recover(dir, names));
      log.#unlock = unlock;
      return log;
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  /** The highest version appended (−1n when empty); a snapshot's version counts. */
  get appendedVersion(): bigint { return this.#appended; }
  /** The version of the oldest record the log holds (−1n when none). Only snapshots drop records from the front,
   *  so read(after) gives every record after `after` when after ≥ firstVersion, or when there is no snapshot, or
   *  when after ≥ the latest snapshot's version. */
  get firstVersion(): bigint { return this.#index.count > 0 ? this.#index.version(0) : -1n; }
  /** The highest version fdatasync'ed (−1n when none). */
  get durableVersion(): bigint { return this.#durable; }
  /** fdatasync calls of the group commits so far (one per segment a commit wrote into). */
  get syncs(): number { return this.#syncs; }

  onDurable(listener: (version: bigint) => void): void { this.#durableListeners.push(listener); }
  onError(listener: (error: PersistError) => void): void { this.#errorListeners.push(listener); }

  /** Buffers one record for the next group commit; the payload is copied, so the caller may reuse it. */
  append(record: LogRecord): void {
    if (this.#closed) throw new ClosedError('persistent log');
    if (this.#failed !== null) throw this.#failed;
    if (this.#truncating) throw new RangeError('persistent log: append while truncateAfter runs; await it first');
    const { version, hlc, sender, payload } = record;
    if (typeof version !== 'bigint' || version <= this.#appended || version > MAX_VERSION) {
      throw new RangeError(`persistent log: version ${version} does not follow the last appended version ` +
        `${this.#appended} (versions are strictly increasing, below 2^63)`);
    }
    if (typeof hlc !== 'bigint' || hlc < 0n || hlc > MAX_HLC) throw new RangeError(`hlc ${hlc} is not a u64`);
    if (!Number.isInteger(sender) || sender < 0 || sender > MAX_SENDER) throw new RangeError(`sender ${sender}`);
    if (!(payload instanceof Uint8Array) || payload.length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`payload must be a Uint8Array of at most ${MAX_PAYLOAD_BYTES} bytes`);
    }
    const size = RECORD_HEADER_BYTES + payload.length;
    let segment = this.#segments[this.#segments.length - 1];
    if (segment === undefined || (segment.bytes > 0 && segment.bytes + size > this.#segmentBytes)) {
      segment = {
        id: this.#nextSegmentId++, first: version, name: segmentName(version), bytes: 0, durableBytes: 0,
        created: false,
      };
      this.#segments.push(segment);
      this.#segmentById.set(segment.id, segment);
    }
    let chunk = this.#pending[this.#pending.length - 1];
    if (chunk === undefined || chunk.segment !== segment || chunk.fill + size > chunk.buf.length) {
      const buf = size <= CHUNK_BYTES ? this.#freeChunks.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES)
        : Buffer.allocUnsafe(size);
      chunk = { segment, buf, fill: 0, fileOffset: segment.bytes, lastVersion: version, firstPayloadCrc: 0 };
      this.#pending.push(chunk);
    }
    const payloadCrc = encodeRecord(chunk.buf, chunk.fill, version, hlc, sender, payload);
    if (chunk.fill === 0) chunk.firstPayloadCrc = payloadCrc;
    this.#index.add(version, hlc, segment.id, segment.bytes, size);
    chunk.fill += size;
    chunk.lastVersion = version;
    segment.bytes += size;
    this.#appended = version;
    this.#scheduleCommit();
  }

  /** Resolves with durableVersion once everything appended before the call is durable. */
  flush(): Promise<bigint> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    if (this.#durable >= this.#appended) return Promise.resolve(this.#durable);
    return new Promise((resolve, reject) => this.#flushWaiters.push({ version: this.#appended, resolve, reject }));
  }

  /**
   * Records with after < version ≤ upTo (default: the appended version at the call), in order. Waits for them
   * to be durable first: a reader never sees a record a crash could still take back.
   */
  async *read(after: bigint, upTo?: bigint): AsyncIterable<LogRecord> {
    const last = upTo === undefined || upTo > this.#appended ? this.#appended : upTo;
    if (last > this.#durable) await this.flush();
    let from = after;
    while (true) {
      const i = this.#index.firstAfter(from);
      if (i >= this.#index.count || this.#index.version(i) > last) return;
      const span = await this.#readSpan(i, last);
      for (const record of span) yield record;
      from = span[span.length - 1]!.version;
    }
  }

  /** The record with this version, or null when the log does not hold it (never appended, trimmed or cut). */
  async recordAt(version: bigint): Promise<LogRecord | null> {
    if (version > this.#durable && version <= this.#appended) await this.flush();
    const i = this.#index.find(version);
    if (i < 0) return null;
    return (await this.#readSpan(i, version))[0] ?? null;
  }

  /** The newest version whose hlc ≤ t, every earlier record's too (hlcs from the group's clock never go back);
   *  a snapshot's version when the records before t were trimmed; −1n when none. */
  async versionAt(hlc: bigint): Promise<bigint> {
    const i = this.#index.lastAtOrBefore(hlc);
    const fromLog = i >= 0 ? this.#index.version(i) : -1n;
    const snap = this.#snapshot;
    if (snap !== null && snap.hlc <= hlc && snap.version > fromLog && (i + 1 >= this.#index.count ||
        this.#index.version(i + 1) > snap.version)) {
      return snap.version;
    }
    return fromLog;
  }

  /** Writes a snapshot durably (temp file + fsync + rename + directory fsync), then drops the older snapshots
   *  and the segments whose every record is ≤ its version (never the segment appends go into). */
  async writeSnapshot(snapshot: LogSnapshot): Promise<void> {
    const { version, hlc, bytes } = snapshot;
    if (typeof version !== 'bigint' || version < 0n || version > MAX_VERSION) {
      throw new RangeError(`snapshot version ${version} is not from 0 to 2^63 - 1`);
    }
    if (typeof hlc !== 'bigint' || hlc < 0n || hlc > MAX_HLC) throw new RangeError(`hlc ${hlc} is not a u64`);
    if (!(bytes instanceof Uint8Array)) throw new RangeError('snapshot bytes must be a Uint8Array');
    await this.#exclusive(async () => {
      if (this.#snapshot !== null && version < this.#snapshot.version) { // checked here: snapshots run in turn
        throw new RangeError(`snapshot version ${version} is older than the log's latest, ${this.#snapshot.version}`);
      }
      const name = snapshotName(version);
      await writeFileAtomic(this.dir, name, [encodeSnapshotHeader(version, hlc, bytes), bytes]);
      const previous = this.#snapshot;
      this.#snapshot = { version, hlc, name };
      if (previous !== null && previous.name !== name) await this.#remove(previous.name);
      await this.#dropCoveredSegments(version);
      await syncDirectory(this.dir);
      if (version > this.#appended) this.#appended = version;
      if (this.#pending.length === 0) this.#setDurable(this.#appended);
    });
  }

  async latestSnapshot(): Promise<LogSnapshot | null> {
    const snap = this.#snapshot;
    if (snap === null) return null;
    const path = join(this.dir, snap.name);
    const file = await readFile(path).catch((error: unknown) => { throw ioError(`reading ${path}`, path, error); });
    const decoded = decodeSnapshot(file);
    if (typeof decoded === 'string') throw damaged(path, 0, decoded);
    return { version: decoded.version, hlc: decoded.hlc, bytes: decoded.bytes };
  }

  /** Cuts every record with version > `version`, durably. Refused below the latest snapshot (whose records
   *  before it are gone). */
  async truncateAfter(version: bigint): Promise<void> {
    if (typeof version !== 'bigint') throw new RangeError(`version ${version} is not a bigint`);
    this.#truncating = true;
    await this.#exclusive(async () => {
      const snap = this.#snapshot;
      if (snap !== null && version < snap.version) {
        throw new PersistError(`persistent log: cannot cut after version ${version}: the snapshot at version ` +
          `${snap.version} already holds later updates and the records before it were dropped`,
        join(this.dir, snap.name));
      }
      const index = this.#index;
      const i = index.firstAfter(version);
      if (i >= index.count) return;
      const cutId = index.segment(i);
      const cutAt = index.offset(i);
      while (this.#segments.length > 0) {
        const segment = this.#segments[this.#segments.length - 1]!;
        if (segment.id < cutId || (segment.id === cutId && cutAt > 0)) break;
        this.#segments.pop();
        this.#segmentById.delete(segment.id);
        await this.#closeHandle(segment.id);
        await this.#remove(segment.name);
      }
      const kept = this.#segmentById.get(cutId);
      if (kept !== undefined) {
        const handle = await this.#handleFor(kept);
        try {
          await handle.truncate(cutAt);
          await handle.datasync();
        } catch (error) {
          throw ioError(`cutting ${kept.name}`, join(this.dir, kept.name), error, cutAt);
        }
        kept.bytes = kept.durableBytes = cutAt;
      }
      await syncDirectory(this.dir);
      index.truncate(i);
      const last = i > 0 ? index.version(i - 1) : -1n;
      const floor = snap?.version ?? -1n;
      this.#appended = this.#durable = last > floor ? last : floor;
    }).finally(() => { this.#truncating = false; });
  }

  /** Replaces the metadata document atomically (JSON; bigints are not allowed). */
  async writeMeta(meta: Record<string, unknown>): Promise<void> {
    if (this.#closed) throw new ClosedError('persistent log');
    const text = JSON.stringify({ format: META_FORMAT, meta }) + '\n';
    const step = this.#metaChain.then(() => writeFileAtomic(this.dir, META_FILE, Buffer.from(text)));
    this.#metaChain = step.catch(() => undefined); // the caller gets the error from `step`; the chain goes on
    await step;
  }

  async readMeta(): Promise<Record<string, unknown> | null> {
    await this.#metaChain;
    const path = join(this.dir, META_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError(`reading ${path}`, path, error);
    }
    try {
      const doc = JSON.parse(text) as { format?: unknown; meta?: unknown };
      if (doc.format !== META_FORMAT || typeof doc.meta !== 'object' || doc.meta === null) throw new Error('format');
      return doc.meta as Record<string, unknown>;
    } catch (error) {
      throw new PersistError(`persistent log: ${path} is not a squall log metadata document (${META_FORMAT}); ` +
        'it was replaced atomically, so the disk or another program changed it: move it aside', path, 0,
      { cause: error });
    }
  }

  /** Writes what is appended, then closes the files. The log cannot be used after. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#exclusive(async () => undefined)
      .catch(() => undefined); // a failed log has already reported its error through onError and flush
    for (const id of [...this.#handles.keys()]) await this.#closeHandle(id);
    await this.#metaChain;
    await this.#unlock();
  }

  // ---- group commit -------------------------------------------------------------------------------------------

  #scheduleCommit(): void {
    if (this.#batchQueued) return;
    this.#batchQueued = true;
    const enqueue = (): void => {
      this.#chain = this.#chain.then(() => this.#commit()).catch((error: unknown) =>
        this.#fail(ioError('a group commit', this.dir, error), new Set()));
    };
    if (this.#commitDelayUs > 0) setTimeout(enqueue, this.#commitDelayUs / 1000);
    else queueMicrotask(enqueue);
  }

  /** One group commit: writes the pending chunks (one writev per segment) and fdatasyncs each segment before
   *  writing into the next (so only the last segment can hold a torn write), syncs the directory when a segment was
   *  created. The first record it writes into each segment is marked SYNC_START (recovery.ts says why). Runs on the
   *  chain. */
  async #commit(): Promise<void> {
    this.#batchQueued = false;
    if (this.#failed !== null || this.#pending.length === 0) return;
    const chunks = this.#pending;
    this.#pending = [];
    const touched = new Set<Segment>();
    let createdFile = false;
    let current: Chunk | undefined;
    try {
      for (let k = 0; k < chunks.length;) {
        current = chunks[k]!;
        let end = k + 1;
        while (end < chunks.length && chunks[end]!.segment === current.segment) end++;
        if (!current.segment.created) createdFile = true;
        touched.add(current.segment);
        const handle = await this.#handleFor(current.segment);
        markSyncStart(current.buf, 0, current.firstPayloadCrc);
        await writevAll(handle, chunks.slice(k, end).map((c) => c.buf.subarray(0, c.fill)), current.fileOffset);
        await handle.datasync();
        this.#syncs++;
        k = end;
      }
      current = undefined;
      if (createdFile) await syncDirectory(this.dir);
    } catch (error) {
      const segment = current?.segment ?? [...touched][0]!;
      await this.#fail(ioError('a group commit (write + fdatasync)', join(this.dir, segment.name), error,
        current?.fileOffset ?? segment.durableBytes), touched);
      return;
    } finally {
      for (const c of chunks) {
        if (c.buf.length === CHUNK_BYTES && this.#freeChunks.length < POOLED_CHUNKS) this.#freeChunks.push(c.buf);
      }
    }
    for (const segment of touched) segment.durableBytes = segment.bytes - this.#pendingBytesOf(segment);
    const tail = this.#segments[this.#segments.length - 1];
    for (const id of [...this.#handles.keys()]) if (id !== tail?.id) await this.#closeHandle(id);
    // With nothing left to write, everything appended is durable — a snapshot's version past the records too.
    this.#setDurable(this.#pending.length === 0 ? this.#appended : chunks[chunks.length - 1]!.lastVersion);
  }

  #pendingBytesOf(segment: Segment): number {
    let bytes = 0;
    for (const chunk of this.#pending) if (chunk.segment === segment) bytes += chunk.fill;
    return bytes;
  }

  #setDurable(version: bigint): void {
    if (version <= this.#durable) return;
    this.#durable = version;
    const waiting = this.#flushWaiters;
    this.#flushWaiters = waiting.filter((w) => w.version > version);
    for (const w of waiting) if (w.version <= version) w.resolve(version);
    for (const listener of this.#durableListeners) {
      try {
        listener(version);
      } catch (error) {
        queueMicrotask(() => { throw error; }); // a listener's bug surfaces as an uncaught error, not as ours
      }
    }
  }

  /** The log can write no more: cut what the failed batch wrote (so the files end at durable bytes), refuse
   *  appends, reject the flushes waiting, tell the listeners once. */
  async #fail(error: PersistError, touched: Set<Segment>): Promise<void> {
    this.#failed = error;
    this.#pending = [];
    for (const segment of touched) {
      try {
        if (segment.durableBytes === 0) {
          await this.#closeHandle(segment.id);
          await unlink(join(this.dir, segment.name));
        } else {
          await this.#handles.get(segment.id)?.truncate(segment.durableBytes);
        }
      } catch {
        // Best effort, on a disk that just failed: a left-over partial batch is a torn tail, cut at the next open.
      }
    }
    for (const segment of this.#segments) segment.bytes = segment.durableBytes;
    this.#segments = this.#segments.filter((segment) => segment.durableBytes > 0);
    this.#index.truncate(this.#index.firstAfter(this.#durable));
    this.#appended = this.#durable;
    for (const w of this.#flushWaiters) w.reject(error);
    this.#flushWaiters = [];
    for (const listener of this.#errorListeners) {
      try {
        listener(error);
      } catch (thrown) {
        queueMicrotask(() => { throw thrown; }); // a listener's bug surfaces as an uncaught error, not as ours
      }
    }
  }

  /** Runs `step` on the chain after writing what is pending. */
  #exclusive(step: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(async () => {
      await this.#commit();
      if (this.#failed !== null) throw this.#failed;
      await step();
    });
    this.#chain = run.catch(() => undefined); // the caller gets the error from `run`; later steps still run
    return run;
  }

  async #handleFor(segment: Segment): Promise<FileHandle> {
    let handle = this.#handles.get(segment.id);
    if (handle === undefined) {
      const path = join(this.dir, segment.name);
      handle = await open(path, segment.created ? 'r+' : 'w', 0o644);
      segment.created = true;
      this.#handles.set(segment.id, handle);
    }
    return handle;
  }

  async #closeHandle(id: number): Promise<void> {
    const handle = this.#handles.get(id);
    this.#handles.delete(id);
    await handle?.close();
  }

  async #remove(name: string): Promise<void> {
    const path = join(this.dir, name);
    await unlink(path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`removing ${name}`, path, error);
    });
  }

  async #dropCoveredSegments(version: bigint): Promise<void> {
    const index = this.#index;
    const i = index.firstAfter(version);
    const tail = this.#segments[this.#segments.length - 1];
    const keepFrom = i < index.count ? index.segment(i) : tail?.id ?? 0;
    let dropped = 0;
    // A segment still waiting for bytes of a group commit stays (appends made while the snapshot was written).
    while (this.#segments.length > 1 && this.#segments[0]!.id < keepFrom &&
        this.#segments[0]!.durableBytes === this.#segments[0]!.bytes) {
      const segment = this.#segments.shift()!;
      this.#segmentById.delete(segment.id);
      await this.#closeHandle(segment.id);
      await this.#remove(segment.name);
    }
    while (dropped < index.count && !this.#segmentById.has(index.segment(dropped))) dropped++;
    index.dropFront(dropped);
  }

  /** Reads records from index entry i on, in one segment, up to about READ_SPAN_BYTES and version `last`. */
  async #readSpan(i: number, last: bigint): Promise<LogRecord[]> {
    const index = this.#index;
    const segmentId = index.segment(i);
    const segment = this.#segmentById.get(segmentId)!;
    const start = index.offset(i);
    let j = i;
    let end = start;
    while (j < index.count && index.segment(j) === segmentId && index.version(j) <= last &&
        (j === i || end + index.bytes(j) - start <= READ_SPAN_BYTES)) {
      end += index.bytes(j);
      j++;
    }
    const path = join(this.dir, segment.name);
    const buf = Buffer.allocUnsafe(end - start);
    try {
      const handle = await open(path, 'r');
      try {
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await handle.read(buf, got, buf.length - got, start + got);
          if (bytesRead === 0) throw damaged(path, start + got, 'the file ends before the records the index holds');
          got += bytesRead;
        }
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PersistError(`persistent log: ${segment.name} was dropped (a snapshot covered it or the log was ` +
          'cut) while it was being read: read again from the latest snapshot', path, start, { cause: error });
      }
      throw ioError(`reading ${path}`, path, error, start);
    }
    const records: LogRecord[] = [];
    for (let at = 0, k = i; k < j; k++) {
      const check = checkRecord(buf, at, buf.length);
      if (!check.ok || check.version !== index.version(k)) {
        const why = check.ok ? `version ${check.version} where ${index.version(k)} was` : check.why;
        throw damaged(path, start + at, why);
      }
      const payload = buf.slice(at + RECORD_HEADER_BYTES, at + check.bytes);
      records.push({ version: check.version, hlc: check.hlc, sender: check.sender, payload: new Uint8Array(payload) });
      at += check.bytes;
    }
    return records;
  }
}

function checkIdentity(identity: LogIdentity): void {
  const { group, memberId, subgroup, shard } = identity ?? {};
  if (typeof group !== 'string' || typeof subgroup !== 'string' || !Number.isInteger(memberId) ||
      !Number.isInteger(shard)) {
    throw new RangeError('a log identity is { group: string, memberId: integer, subgroup: string, shard: integer }');
  }
}
