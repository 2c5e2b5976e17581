// Persistent subgroups at one member (DESIGN.md §7; docs/persistence-group.md): each shard this member
// serves of a subgroup with `persistent: true` has a PersistentLog (ts/persist/log.ts) in
// `<dataDir>/<subgroup>.<shard>`.
//
//   delivery   every delivered message is appended (version, hlc, sender, payload) before the upcall runs it
//   durable    each group commit's durable version goes into this member's persistedNum (ShardChannel
//              .storePersisted: the main thread writes that column, the next step pushes it)
//   frontier   min persistedNum over the shard's members (ShardChannel.checkPersisted, every step, and a
//              poll while something waits): resolves persisted calls and emits `persisted`
//   snapshot   every snapshotEvery records or snapshotEveryBytes bytes, the object's snapshot() is written;
//              the log drops what it covers
//   restart    before the member joins, each log found is read back: the latest snapshot restored and the
//              records after it replayed through a Replica whose replies go nowhere
//
// The view's vid goes into the log's meta at each install, so that a group whose members all stop and start
// again continues from the next vid: versions keep growing, as a log needs.

import { mkdir, readdir } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { ClosedError, ConfigError, PersistError, StateTransferError } from '../errors.js';
import { MAX_MEMBERS } from '../generated/memory-map.js';
import { decodeEnvelope, Kind } from '../objects/codec.js';
import { Replica } from '../objects/replica.js';
import type { ObjectHistory, ReplicatedObject, ReplicatedType } from '../objects/replicated-object.js';
import { HybridLogicalClock } from '../persist/hlc.js';
import { PersistentLog, type LogRecord } from '../persist/log.js';
import { MAX_MEMBER_ID, type GroupConfig } from './config.js';
import type { ProtocolEvent } from './events.js';
import type { ReplicatedClass } from './join-options.js';
import type { TransferLogs } from './state-sync.js';
import { TotalRestart } from './total-restart.js';
import { decodeRecords, encodeRecords, type CarriedRecord } from './state-transfer.js';
import type { DeliveryLog, SubgroupChannel } from './subgroup-channel.js';

/** The defaults of a persistent subgroup. */
export const PERSIST_DEFAULTS = {
  /** Records between snapshots: a restart replays at most this many. */
  snapshotEvery: 10_000,
  /** Payload bytes between snapshots, whichever comes first: a restart replays at most about this much. */
  snapshotEveryBytes: 256 * 1024 * 1024,
  /** How often the frontier is read while a persisted call waits (the worker engine steps the main thread
   *  only on deliveries, so a peer's persistedNum can land unseen). */
  frontierPollMs: 2,
} as const;

/** The most payload bytes a catch-up from the log carries; past it the source sends its snapshot. */
const MAX_CATCH_UP_BYTES = 64 << 20;

/** A view id the meta file may hold (vids are i32 in the table; hostile bytes must not overflow them). */
const MAX_VID = 2 ** 31 - 2;

/** What a persistent subgroup tells the group (its `persisted` event) and where its faults go. */
export interface PersistenceEvents {
  persisted(subgroup: string, shard: number, version: bigint): void;
  /** The log cannot write: the member cannot keep its promise and stops. */
  failed(error: Error): void;
  /** A total restart's steps (the `protocol` event). */
  protocol?(event: ProtocolEvent): void;
}

/** One shard's log at this member, and what waits on the shard's persistence frontier. */
export class ShardLog implements DeliveryLog, ObjectHistory<object> {
  readonly subgroup: string;
  readonly shard: number;
  readonly log: PersistentLog;
  readonly #type: ReplicatedClass | undefined;
  /** A snapshot after this many records, or this many payload bytes, logged since the last one. */
  readonly #snapshotEvery: { records: number; bytes: number };
  readonly #clock: HybridLogicalClock;
  readonly #events: PersistenceEvents;
  #channel: SubgroupChannel | null = null;
  #object: ReplicatedObject<object> | null = null;
  #frontier = -1n;
  /** Persisted calls waiting, in version order (delivery order). */
  readonly #waiting: Array<{ version: bigint; resolve: () => void; reject: (error: Error) => void }> = [];
  #poll: ReturnType<typeof setInterval> | null = null;
  #sinceSnapshot = 0;
  #bytesSinceSnapshot = 0;
  #snapshotting = false;
  #failed: Error | null = null;

  constructor(subgroup: string, shard: number, log: PersistentLog, type: ReplicatedClass | undefined,
    snapshotEvery: { records: number; bytes: number }, clock: HybridLogicalClock, events: PersistenceEvents) {
    this.subgroup = subgroup;
    this.shard = shard;
    this.log = log;
    this.#type = type;
    this.#snapshotEvery = snapshotEvery;
    this.#clock = clock;
    this.#events = events;
    log.onDurable((version) => {
      this.#channel?.storePersisted(version);
      this.#startPoll();
    });
    log.onError((error) => this.#fail(error));
  }

  /** Deliveries on `channel` (and its object, when the subgroup has a class) go to this log from now on. */
  attach(channel: SubgroupChannel, object: ReplicatedObject<object> | null): void {
    this.#channel = channel;
    this.#object = object;
    channel.setLog(this);
    object?.setHistory(this);
    const durable = this.log.durableVersion;
    if (durable >= 0n) channel.storePersisted(durable);
  }

  append(sender: number, version: bigint, bytes: Uint8Array, hlc = this.#clock.now()): void {
    if (this.#failed) return;
    if (version <= this.log.appendedVersion) return; // logged already (a snapshot from state transfer covers it)
    try {
      this.log.append({ version, hlc, sender, payload: bytes });
      this.#bytesSinceSnapshot += bytes.byteLength;
    } catch (error) {
      this.#fail(error as Error);
    }
  }

  applied(version: bigint): void {
    const due = ++this.#sinceSnapshot >= this.#snapshotEvery.records
      || this.#bytesSinceSnapshot >= this.#snapshotEvery.bytes;
    if (!due || this.#snapshotting || !this.#canSnapshot()) return;
    this.#sinceSnapshot = 0;
    this.#bytesSinceSnapshot = 0;
    void this.snapshot(version);
  }

  /** Writes the object's state at `version` (its snapshot() now) as the log's snapshot. */
  async snapshot(version: bigint, bytes = this.#object!.snapshot()): Promise<void> {
    this.#snapshotting = true;
    try {
      await this.log.writeSnapshot({ version, hlc: this.#clock.now(), bytes: bytes.slice() });
    } catch (error) {
      this.#fail(error as Error);
    } finally {
      this.#snapshotting = false;
    }
  }

  frontier(version: bigint): void {
    if (version <= this.#frontier) return;
    this.#frontier = version;
    while (this.#waiting.length > 0 && this.#waiting[0]!.version <= version) this.#waiting.shift()!.resolve();
    if (this.#waiting.length === 0 && version >= this.log.durableVersion) this.#stopPoll();
    this.#events.persisted(this.subgroup, this.shard, version);
  }

  whenPersisted(version: bigint): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (version <= this.#frontier) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = this.#waiting;
      let i = w.length;
      while (i > 0 && w[i - 1]!.version > version) i--;
      w.splice(i, 0, { version, resolve, reject });
      this.#startPoll();
    });
  }

  recordAt(version: bigint): Promise<LogRecord | null> { return this.log.recordAt(version); }
  get syncs(): number { return this.log.syncs; }

  /** Where this log ends and its last record's CRC, when the object is at that version (a catch-up's `have`). */
  async have(): Promise<{ version: bigint; crc: number } | null> {
    const version = this.log.appendedVersion;
    if (version < 0n || this.#object?.appliedVersion !== version) return null;
    const record = await this.log.recordAt(version);
    return record ? { version, crc: crc32(record.payload) } : null;
  }

  /** The records after `after` up to `upTo`, encoded, when this log holds them all and record `after` has `crc`. */
  async recordsAfter(after: bigint, crc: number, upTo: bigint): Promise<Uint8Array | null> {
    const first = await this.log.recordAt(after);
    if (!first || crc32(first.payload) !== crc || this.log.appendedVersion < upTo) return null;
    const records: CarriedRecord[] = [];
    let bytes = 0;
    for await (const r of this.log.read(after, upTo)) {
      records.push(r);
      bytes += r.payload.byteLength;
      if (bytes > MAX_CATCH_UP_BYTES) return null; // a snapshot is the better deal
    }
    return records.at(-1)?.version === upTo ? encodeRecords(records) : null;
  }

  /** A catch-up's records: run on the object (no replies: they were answered) and logged; they end at `version`. */
  applyRecords(bytes: Uint8Array, version: bigint): void {
    const object = this.#object;
    if (!object) throw new StateTransferError(`subgroup '${this.subgroup}' has no object to catch up`);
    const records = decodeRecords(bytes);
    const replica = new Replica(object.state, 2 ** 31, () => {}, this.#type?.queries);
    let last = object.appliedVersion;
    for (const r of records) {
      if (r.version <= last) {
        throw new StateTransferError(`a log catch-up's versions do not grow (${r.version} after ${last})`);
      }
      const envelope = decodeEnvelope(r.payload);
      if (envelope.kind === Kind.Command) replica.onCommand(r.sender, r.version, envelope);
      this.append(r.sender, r.version, r.payload, r.hlc);
      last = r.version;
    }
    if (last !== version) throw new StateTransferError(`a log catch-up ends at ${last}, not at ${version}`);
    object.reset(replica.state, version);
  }
  versionAt(hlc: bigint): Promise<bigint> { return this.log.versionAt(hlc); }

  stateAt(version: bigint): Promise<object> {
    if (!this.#type) throw new ConfigError(`subgroup '${this.subgroup}' has no class to rebuild a state with`);
    return rebuild(this.log, this.#type, version).then((r) => r.state);
  }

  /** The view `vid` is installed: kept in the log's meta, so a total restart continues after it. */
  async installed(vid: number, members: readonly number[]): Promise<void> {
    if (this.#failed) return;
    try {
      await this.log.writeMeta({ vid, members: [...members] });
    } catch (error) {
      this.#fail(error as Error);
    }
  }

  async close(): Promise<void> {
    this.#stopPoll();
    for (const w of this.#waiting.splice(0)) w.reject(new ClosedError('this group member'));
    try {
      await this.log.flush();
    } finally {
      await this.log.close();
    }
  }

  #canSnapshot(): boolean {
    const state = this.#object?.state as { snapshot?: unknown } | undefined;
    return typeof state?.snapshot === 'function' && typeof this.#type?.restore === 'function';
  }

  /**
   * Reads the frontier every few ms while it lags: a call waits, or this member holds durable what the
   * frontier has not reached (a peer's persistedNum lands without stepping this thread with the worker
   * engine, and with no more deliveries nothing else would look).
   */
  #startPoll(): void {
    if (this.#poll || this.#failed) return;
    this.#poll = setInterval(() => this.#channel?.checkPersisted(), PERSIST_DEFAULTS.frontierPollMs);
    this.#poll.unref();
  }

  #stopPoll(): void {
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
  }

  #fail(error: Error): void {
    if (this.#failed) return;
    this.#failed = error;
    this.#stopPoll();
    for (const w of this.#waiting.splice(0)) w.reject(error);
    this.#events.failed(error);
  }
}

/**
 * The state a log holds up to `upTo` (default everything): its latest snapshot restored (a fresh instance
 * without one) and the records after it run through a Replica whose replies go nowhere.
 */
export async function rebuild(log: PersistentLog, type: ReplicatedClass, upTo = -1n): Promise<{
  state: object; version: bigint;
}> {
  const snapshot = await log.latestSnapshot();
  const last = upTo < 0n ? log.appendedVersion : upTo;
  let state: object;
  let version = -1n;
  if (snapshot && snapshot.version <= last) {
    const restore = (type as ReplicatedType<object>).restore;
    if (typeof restore !== 'function') {
      throw new ConfigError(`the log of ${type.name} holds a snapshot: add static restore(bytes) to the class`);
    }
    state = restore.call(type, snapshot.bytes);
    version = snapshot.version;
  } else if (snapshot && upTo >= 0n) {
    throw new PersistError(`no state at version ${upTo}: the log keeps only what follows its snapshot at `
      + `${snapshot.version}`);
  } else {
    state = new type();
  }
  const replica = new Replica(state, 2 ** 31, () => {}, (type as ReplicatedType<object>).queries);
  for await (const record of log.read(version, last)) {
    const envelope = decodeEnvelope(record.payload);
    if (envelope.kind === Kind.Command) replica.onCommand(record.sender, record.version, envelope);
    version = record.version;
  }
  return { state: replica.state, version };
}

/** The persistent subgroups of one member: their logs, opened and read back before it joins. */
export class GroupPersistence implements TransferLogs {
  readonly #dataDir: string;
  readonly #config: GroupConfig;
  readonly #selfId: number;
  readonly #types: Record<string, ReplicatedClass>;
  readonly #events: PersistenceEvents;
  readonly #clock = new HybridLogicalClock();
  /** By subgroup: the shard's log (one shard per subgroup at a member). */
  readonly #logs = new Map<string, ShardLog>();
  /** By subgroup: the state read back from the log at start, until the object takes it. */
  readonly #recovered = new Map<string, { state: object; version: bigint }>();
  /** Logs being opened for a shard first served now (deliveries wait in #early meanwhile). */
  readonly #opening = new Map<string, Promise<ShardLog | null>>();
  #lastVid = -1;
  /** The members of view #lastVid, as its log's meta recorded them (empty: none recorded). */
  #lastMembers: number[] = [];
  #closed = false;
  /** A total restart's reconciliation of the first view's logs (ts/group/total-restart.ts). */
  readonly restart: TotalRestart;

  constructor(dataDir: string, config: GroupConfig, selfId: number, types: Record<string, ReplicatedClass>,
    events: PersistenceEvents) {
    this.#dataDir = dataDir;
    this.#config = config;
    this.#selfId = selfId;
    this.#types = types;
    this.#events = events;
    this.restart = new TotalRestart({
      selfId, config, typed: (name) => Object.hasOwn(types, name),
      tail: async (name) => (await this.#shardLog(name))?.log.appendedVersion ?? -1n,
      report: (event) => events.protocol?.(event),
    });
  }

  /** The persistence of a member with `dataDir`, when the configuration has persistent subgroups; else null. */
  static of(dataDir: string | undefined, config: GroupConfig, selfId: number, types: Record<string, ReplicatedClass>,
    events: PersistenceEvents): GroupPersistence | null {
    const any = Object.values(config.subgroups).some((sg) => sg.persistent === true);
    return dataDir !== undefined && any ? new GroupPersistence(dataDir, config, selfId, types, events) : null;
  }

  /** The newest view any log here recorded (−1: none): a total restart's first view comes after it. */
  get lastVid(): number { return this.#lastVid; }
  /** The members of that view (empty when none was recorded): a total restart needs a majority of them. */
  get lastMembers(): readonly number[] { return this.#lastMembers; }

  /**
   * Opens every log this member kept and reads its state back (restore + replay); resolves with the newest
   * view they recorded (−1: none).
   */
  async open(): Promise<number> {
    await mkdir(this.#dataDir, { recursive: true });
    const names = Object.entries(this.#config.subgroups).filter(([, sg]) => sg.persistent).map(([n]) => n);
    for (const entry of await readdir(this.#dataDir)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)\.(\d{1,4})$/.exec(entry);
      if (!match || !names.includes(match[1]!) || this.#logs.has(match[1]!)) continue;
      const name = match[1]!;
      const shardLog = await this.#openLog(name, Number(match[2]));
      const meta = await shardLog.log.readMeta();
      const vid = meta?.vid, members = meta?.members;
      const valid = typeof vid === 'number' && Number.isInteger(vid) && vid >= 0 && vid < MAX_VID;
      if (valid && vid > this.#lastVid) {
        this.#lastVid = vid;
        this.#lastMembers = Array.isArray(members) && members.length <= MAX_MEMBERS
          && members.every((m) => Number.isInteger(m) && m >= 0 && m <= MAX_MEMBER_ID) ? [...members] as number[] : [];
      }
      const type = Object.hasOwn(this.#types, name) ? this.#types[name] : undefined;
      if (type && shardLog.log.appendedVersion >= 0n) this.#recovered.set(name, await rebuild(shardLog.log, type));
    }
    return this.#lastVid;
  }

  /** The state read back for subgroup `name` (once: the object takes it), or null. */
  takeRecovered(name: string): { state: object; version: bigint } | null {
    const r = this.#recovered.get(name) ?? null;
    this.#recovered.delete(name);
    return r;
  }

  /**
   * This member serves a shard of subgroup `name` through `channel`; when it is persistent: its log takes every
   * delivery. A log opened at start for another shard is closed (the member's place moved) and a new one
   * opened; until it is open, deliveries wait in memory.
   */
  attach(name: string, channel: SubgroupChannel, object: ReplicatedObject<object> | null): void {
    if (this.#config.subgroups[name]?.persistent !== true) return;
    const shard = channel.shard;
    const existing = this.#logs.get(name);
    if (existing && existing.shard === shard) {
      existing.attach(channel, object);
      return;
    }
    if (existing) {
      this.#logs.delete(name);
      void existing.close();
    }
    const early = new EarlyDeliveries();
    channel.setLog(early);
    const opening = this.#openLog(name, shard).then((shardLog) => {
      if (this.#closed) return null;
      early.replayInto(shardLog);
      shardLog.attach(channel, object);
      return shardLog;
    }, (error: Error) => {
      this.#events.failed(error);
      return null;
    });
    this.#opening.set(name, opening);
    const opened = opening.then((l) => l ?? Promise.reject(new ClosedError('this group member')));
    opened.catch(() => {}); // a caller that waits gets the rejection; nobody waiting is fine
    object?.setHistory({ // until the log is open, reads and persisted calls wait for it
      whenPersisted: (v) => opened.then((l) => l.whenPersisted(v)),
      recordAt: (v) => opened.then((l) => l.recordAt(v)),
      versionAt: (hlc) => opened.then((l) => l.versionAt(hlc)),
      stateAt: (v) => opened.then((l) => l.stateAt(v)),
    });
  }

  /** Resolves once every log being opened is open (Group.join waits for it before it resolves). */
  async ready(): Promise<void> {
    await Promise.all(this.#opening.values());
  }

  /** State transfer restored `name`'s object at `version`: the log starts again from that snapshot. */
  async transferred(name: string, version: bigint, bytes: Uint8Array): Promise<void> {
    const shardLog = await this.#shardLog(name);
    if (!shardLog || version <= shardLog.log.appendedVersion) return;
    await shardLog.snapshot(version, bytes);
  }

  async have(name: string, shard: number): Promise<{ version: bigint; crc: number } | null> {
    const shardLog = await this.#shardLog(name);
    return shardLog?.shard === shard ? shardLog.have() : null; // another shard's log holds another history
  }

  async recordsAfter(name: string, shard: number, after: bigint, crc: number,
    upTo: bigint): Promise<Uint8Array | null> {
    const shardLog = await this.#shardLog(name);
    return shardLog?.shard === shard ? shardLog.recordsAfter(after, crc, upTo) : null;
  }

  async applyRecords(name: string, bytes: Uint8Array, version: bigint): Promise<void> {
    const shardLog = await this.#shardLog(name);
    if (!shardLog) throw new StateTransferError(`subgroup '${name}' has no log here to catch up`);
    shardLog.applyRecords(bytes, version);
  }

  async #shardLog(name: string): Promise<ShardLog | null> {
    return this.#logs.get(name) ?? await this.#opening.get(name) ?? null;
  }

  /** A view is installed here: every log records it. */
  installed(vid: number, members: readonly number[]): void {
    if (vid >= this.#lastVid) {
      this.#lastVid = vid;
      this.#lastMembers = [...members];
    }
    for (const shardLog of this.#logs.values()) void shardLog.installed(vid, members);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#opening.values()]);
    const closing = [...this.#logs.values()].map((l) => l.close());
    this.#logs.clear();
    const results = await Promise.allSettled(closing);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  async #openLog(name: string, shard: number): Promise<ShardLog> {
    const dir = join(this.#dataDir, `${name}.${shard}`);
    const identity = { group: this.#config.name ?? 'squall', memberId: this.#selfId, subgroup: name, shard };
    const log = await PersistentLog.open(dir, identity);
    const type = Object.hasOwn(this.#types, name) ? this.#types[name] : undefined;
    const sg = this.#config.subgroups[name]!;
    const every = {
      records: sg.snapshotEvery ?? PERSIST_DEFAULTS.snapshotEvery,
      bytes: sg.snapshotEveryBytes ?? PERSIST_DEFAULTS.snapshotEveryBytes,
    };
    const shardLog = new ShardLog(name, shard, log, type, every, this.#clock, this.#events);
    this.#logs.set(name, shardLog);
    return shardLog;
  }
}

/** Deliveries while a shard's log opens: kept (copied) and appended, in order, once it is open. */
class EarlyDeliveries implements DeliveryLog {
  readonly #held: Array<[number, bigint, Uint8Array]> = [];
  append(sender: number, version: bigint, bytes: Uint8Array): void {
    this.#held.push([sender, version, bytes.slice()]);
  }
  applied(): void {}
  frontier(): void {}
  readonly syncs = 0;
  replayInto(log: ShardLog): void {
    for (const [sender, version, bytes] of this.#held.splice(0)) log.append(sender, version, bytes);
  }
}
