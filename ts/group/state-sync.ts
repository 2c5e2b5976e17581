// State transfer at a Group member (DESIGN.md §6): the glue between the member driver, which says when a
// change's state moves, and ts/group/state-transfer.ts, which moves it. For each change the driver installs
// (and for a joiner's first view) a TransferPlan says which shards this member sends and receives:
//
//   source     takes its subgroup's snapshot once the old view ended at the trim (before the next view
//              delivers anything), and sends it over the next view's mailboxes once that view passed its
//              start barrier
//   recipient  its shard does not step, and point-to-point messages for it (queries) wait in its handle,
//              until the state has arrived, been checked and restored; a change that commits meanwhile
//              cuts the transfer off, and the member stops (it may rejoin)
//   catch-up   a persistent subgroup: the recipient first tells the source where its log ends (`have`: the
//              version and its record's CRC); when the source's log holds that record, with the same CRC,
//              and every one after it, it sends those records instead of the snapshot, and the recipient
//              runs them on the state its own log rebuilt (docs/persistence-group.md)

import { PeerFailedError, StateTransferError } from '../errors.js';
import type { Change } from '../membership/protocol.js';
import type { ProtocolEvent } from './events.js';
import type { ReplicatedObject } from '../objects/replicated-object.js';
import type { GroupConfig } from './config.js';
import type { DriverView, ShardStates, StatePlan } from './driver-parts.js';
import {
  decodeHave, encodeHave, isStateTag, sendState, stateTag, stateTransfers, StateReceiver, type StreamPlace,
  type Transfer,
} from './state-transfer.js';
import type { SubgroupChannel } from './subgroup-channel.js';

export interface StateSyncParts {
  selfId: number;
  config: GroupConfig;
  /** The class each subgroup replicates, by name (a subgroup without one sends an empty state). */
  types: Readonly<Record<string, new () => object>>;
  objects: Map<string, ReplicatedObject<object>>;
  handles: Map<string, SubgroupChannel>;
  /** How long a transfer may be silent (connectTimeoutMs). */
  idleTimeoutMs: number;
  /** Why this member can go no further (stopped or closed), or null while it runs. */
  halted(): Error | null;
  /** `view` is this member's current view and the member is open: a snapshot is sent only over it. */
  isCurrent(view: DriverView): boolean;
  schedule(): void;
  /** The `error` event: the class's snapshot() threw, or a snapshot could not be sent. */
  error(error: Error): void;
  /** This member cannot go on in the group (its state did not arrive): it stops and closes. */
  fail(error: Error): void;
  /** A transfer ended here (stateSent, stateReceived): the `protocol` event. */
  protocol?: (event: ProtocolEvent) => void;
  /** The persistent subgroups' logs, for catch-ups from the log (absent: snapshots only). */
  logs?: TransferLogs | null;
  /**
   * Where this member offers a large state's stream (ts/group/state-stream.ts), and the host of a member, to
   * connect to its stream; absent: every state goes through the mailboxes.
   */
  stream?: { place: StreamPlace; hostOf(member: number): string } | null;
  /** A total restart: shards held until their tails are in, and the `tail` records (ts/group/total-restart.ts). */
  restart?: { held(subgroup: string): boolean; accept(tag: number, from: number, bytes: Uint8Array): boolean } | null;
}

/** What a catch-up from the log needs of this member's logs (ts/group/persistence.ts). */
export interface TransferLogs {
  /** Where this member's log of `subgroup` ends, and its last record's CRC, when its object is at that version. */
  have(subgroup: string, shard: number): Promise<{ version: bigint; crc: number } | null>;
  /** The records after `after` up to `upTo`, encoded, when this log holds them all and record `after` has `crc`. */
  recordsAfter(subgroup: string, shard: number, after: bigint, crc: number, upTo: bigint): Promise<Uint8Array | null>;
  /** A subgroup's object was restored from a snapshot at `version`: its log starts again from it. */
  transferred(subgroup: string, version: bigint, bytes: Uint8Array): Promise<void>;
  /** Runs a catch-up's records on the object and appends them to the log; it must end at `version`. */
  applyRecords(subgroup: string, bytes: Uint8Array, version: bigint): Promise<void>;
}

/** Where a recipient's log ends: its version and the CRC-32 of that record's payload. */
type Have = { version: bigint; crc: number };

/** `have` records kept before their source looks for them (beyond it they are dropped: snapshots follow). */
const MAX_EARLY_HAVES = 4096;

/** How often a recipient looks whether its view is ready to carry its `have`. */
const READY_POLL_MS = 2;

/** How long a source waits for a recipient's `have` before it sends the snapshot. */
const HAVE_WAIT_MS = 5_000;

/** A snapshot this member sends: one shard's state, to the members entering it. */
interface Snapshot { t: Transfer; bytes: Uint8Array; version: bigint; failed?: string }

export class StateSync implements ShardStates {
  readonly #p: StateSyncParts;
  /** Subgroups whose state this member awaits (it entered their shard). */
  readonly #receivers = new Map<string, StateReceiver>();
  /** `have` records by `tag:from`: arrived (a value) or awaited (a waiter), whichever came first. */
  readonly #haves = new Map<string, Have | ((have: Have) => void)>();

  constructor(parts: StateSyncParts) {
    this.#p = parts;
  }

  get selfId(): number { return this.#p.selfId; }

  awaiting(subgroup: string): boolean {
    return this.#receivers.has(subgroup) || this.#p.restart?.held(subgroup) === true;
  }

  accept(tag: number, from: number, bytes: Uint8Array): boolean {
    if (!isStateTag(tag)) return false;
    if (this.#p.restart?.accept(tag, from, bytes)) return true;
    const have = decodeHave(bytes);
    if (have) {
      const key = `${tag}:${from}`, waiter = this.#haves.get(key);
      if (typeof waiter === 'function') {
        this.#haves.delete(key);
        waiter(have);
      } else if (this.#haves.size < MAX_EARLY_HAVES) { // one per recipient and shard; a peer cannot grow it
        this.#haves.set(key, have);
      }
      return true;
    }
    for (const receiver of this.#receivers.values()) {
      if (stateTag(receiver.transfer) === tag) receiver.accept(from, bytes);
    }
    return true;
  }

  cutOff(change: Change): boolean {
    if (this.#receivers.size === 0) return false;
    const [subgroup] = this.#receivers.keys();
    const error = new StateTransferError(`the state of subgroup '${subgroup}' did not arrive before view `
      + `${change.next.vid}: its sender failed or the view changed; start the member again to rejoin`);
    this.failAll(error);
    this.#p.fail(error);
    return true;
  }

  plan(previous: readonly number[], next: readonly number[]): TransferPlan {
    return new TransferPlan(this, stateTransfers(this.#p.config, previous, next));
  }

  /** Every transfer still awaited fails with `error` (the member stops or closes). */
  failAll(error: Error): void {
    for (const receiver of this.#receivers.values()) receiver.fail(error);
  }

  /** Stops this member for a restore that failed (after the install that awaited it is over). */
  failed(error: Error): void { this.#p.fail(error); }

  /**
   * What `subgroup` holds here, to send to a member entering its shard (empty without a replicated object);
   * `failed` says why there is none when the class's snapshot() threw (the recipients are told).
   */
  snapshotOf(t: Transfer): Snapshot {
    const object = this.#p.objects.get(t.subgroup);
    if (!object) return { t, bytes: new Uint8Array(0), version: -1n };
    try {
      return { t, bytes: object.snapshot(), version: object.appliedVersion };
    } catch (error) {
      this.#p.error(error as Error);
      return { t, bytes: new Uint8Array(0), version: -1n, failed: (error as Error).message };
    }
  }

  /** Sends one shard's snapshot to the members entering it, over the new view's mailboxes. */
  send(view: DriverView, { t, ...snapshot }: Snapshot): void {
    if (this.#catchUp(t.subgroup) && !snapshot.failed) {
      for (const to of t.recipients) void this.#sendFromLog(view, t, to, snapshot);
      return;
    }
    this.#sendSnapshot(view, t, t.recipients, snapshot);
  }

  #sendSnapshot(view: DriverView, t: Transfer, recipients: readonly number[],
    snapshot: { bytes: Uint8Array; version: bigint; failed?: string; records?: boolean }): void {
    const tag = stateTag(t);
    const send = (to: number, record: Uint8Array) => view.mailboxes.send(to, tag, record);
    const maxPayload = view.mailboxes.maxPayload;
    const startedAt = performance.now(), { subgroup, shard } = t, vid = view.view.vid;
    const sent = (to: number) => this.#p.protocol?.({ event: 'stateSent', vid, subgroup, shard, to,
      bytes: snapshot.bytes.byteLength, ms: msSince(startedAt), kind: snapshot.records ? 'log' : 'snapshot' });
    sendState(send, recipients, snapshot, maxPayload, sent, this.#p.stream?.place).catch((error: Error) => {
      // A recipient that failed meanwhile is the view change's business (it removes it), not an error here.
      if (error instanceof PeerFailedError || !this.#p.isCurrent(view)) return;
      this.#p.error(error);
      // The recipients must not wait for the rest: they are told why, and stop.
      const failed = { bytes: new Uint8Array(0), version: -1n, failed: error.message };
      sendState(send, recipients, failed, maxPayload)
        .catch(() => {}); // a recipient that cannot be told is failing: the view change removes it
    });
  }

  /** A persistent subgroup whose logs both ends have: the catch-up protocol (see the top of this file). */
  #catchUp(subgroup: string): boolean {
    return !!this.#p.logs && this.#p.config.subgroups[subgroup]?.persistent === true;
  }

  /** The recipient's side of a catch-up: tells the source where its log ends (−1n: it wants the snapshot). */
  async #sendHave(view: DriverView, t: Transfer): Promise<void> {
    const have = await this.#p.logs!.have(t.subgroup, t.shard).catch(() => null) ?? { version: -1n, crc: 0 };
    // Mailbox records are pushed to a peer only once the view passed its start barrier (a push before the
    // connection is lost), and a recipient's view gets there while its transfer is already awaited.
    while (!view.ready && !view.closed && !this.#p.halted()) await new Promise((r) => setTimeout(r, READY_POLL_MS));
    if (view.closed) return;
    view.mailboxes.send(t.source!, stateTag(t), encodeHave(have.version, have.crc))
      .catch(() => {}); // a source that failed: the view change that follows cuts this transfer off
  }

  /**
   * The source's side of a catch-up: waits for the recipient's `have` (or HAVE_WAIT_MS), then sends the
   * records after it when its log holds them with the same CRC, else the snapshot.
   */
  async #sendFromLog(view: DriverView, t: Transfer, to: number, snapshot: { bytes: Uint8Array; version: bigint }) {
    const key = `${stateTag(t)}:${to}`;
    const arrived = this.#haves.get(key);
    const have = typeof arrived === 'object' ? arrived : await new Promise<Have | null>(
      (resolve) => {
        const timer = setTimeout(() => { this.#haves.delete(key); resolve(null); }, HAVE_WAIT_MS);
        timer.unref();
        this.#haves.set(key, (h) => { clearTimeout(timer); resolve(h); });
      });
    this.#haves.delete(key);
    let records: Uint8Array | null = null;
    if (have && have.version >= 0n && have.version < snapshot.version) {
      records = await this.#p.logs!.recordsAfter(t.subgroup, t.shard, have.version, have.crc, snapshot.version)
        .catch((error: Error) => { this.#p.error(error); return null; });
    }
    if (!this.#p.isCurrent(view)) return;
    const state = records ? { bytes: records, version: snapshot.version, records: true } : snapshot;
    this.#sendSnapshot(view, t, [to], state);
  }

  /**
   * Waits for the state of every shard this member enters (its shards hold their deliveries until then),
   * restores each subgroup's object from it, and lets the shard step.
   */
  receive(transfers: readonly Transfer[], view: DriverView): Promise<void> {
    const done = this.#receiveStates(transfers, view);
    done.catch(() => {}); // its caller awaits it later: a failure meanwhile must not count as unhandled
    return done;
  }

  async #receiveStates(transfers: readonly Transfer[], view: DriverView): Promise<void> {
    const { selfId, types, objects } = this.#p;
    const mine = transfers.filter((t) => t.recipients.includes(selfId));
    if (mine.some((t) => t.source !== null)) view.protocol.setReceiving(true);
    for (const t of mine) {
      if (t.source !== null) continue;
      const cls = types[t.subgroup];
      if (cls) objects.get(t.subgroup)?.reset(new cls());
    }
    await Promise.all(mine.filter((t) => t.source !== null).map((t) => this.#receiveOne(t, view)));
  }

  async #receiveOne(t: Transfer, view: DriverView): Promise<void> {
    const receiver = new StateReceiver(t, this.#p.idleTimeoutMs, this.#p.stream?.hostOf(t.source!) ?? null);
    const startedAt = performance.now();
    this.#receivers.set(t.subgroup, receiver);
    // Point-to-point messages (queries) for the shard, this member's own too, wait in its handle until the
    // state is restored.
    const handle = this.#p.handles.get(t.subgroup);
    handle?.holdDirect();
    let restored = false;
    try {
      if (this.#catchUp(t.subgroup)) await this.#sendHave(view, t);
      const { bytes, version, records, streamMs } = await receiver.done;
      // Stopped meanwhile (another transfer failed, a change cut this one off): that is the reason.
      const halted = this.#p.halted();
      if (halted) throw halted;
      const object = this.#p.objects.get(t.subgroup);
      if (records) {
        await this.#p.logs!.applyRecords(t.subgroup, bytes, version);
      } else if (object && bytes.byteLength > 0) {
        object.restore(bytes, version);
        await this.#p.logs?.transferred(t.subgroup, version, bytes);
      }
      restored = true;
      this.#p.protocol?.({ event: 'stateReceived', vid: view.view.vid, subgroup: t.subgroup, shard: t.shard,
        from: t.source!, bytes: bytes.byteLength, ms: msSince(startedAt), streamMs: Math.round(streamMs * 100) / 100,
        kind: records ? 'log' : 'snapshot' });
    } finally {
      if (this.#receivers.get(t.subgroup) === receiver) this.#receivers.delete(t.subgroup);
      if (this.#receivers.size === 0 && !view.closed) view.protocol.setReceiving(false);
      this.#p.schedule();
      handle?.releaseDirect(restored); // last: a handler that throws fails the member, nothing above is skipped
    }
  }
}

/** Milliseconds since `start` (performance.now()), to the hundredth. */
const msSince = (start: number): number => Math.round((performance.now() - start) * 100) / 100;

/** The state one change (or a joiner's first view) moves at this member. */
export class TransferPlan implements StatePlan {
  readonly transfers: readonly Transfer[];
  readonly #sync: StateSync;
  #snapshots: Snapshot[] = [];
  /** Settles once every shard this member enters has its state restored (or could not). */
  restored: Promise<void> = Promise.resolve();

  constructor(sync: StateSync, transfers: readonly Transfer[]) {
    this.#sync = sync;
    this.transfers = transfers;
  }

  /** The source's snapshots, taken now (sent once the next view passed its barrier). */
  snapshot(): void {
    const mine = this.transfers.filter((t) => t.source === this.#sync.selfId);
    this.#snapshots = mine.map((t) => this.#sync.snapshotOf(t));
  }

  receive(view: DriverView): void {
    this.restored = this.#sync.receive(this.transfers, view);
  }

  send(view: DriverView): void {
    for (const snapshot of this.#snapshots.splice(0)) this.#sync.send(view, snapshot);
  }

  drop(): void {
    this.#snapshots = [];
  }

  settle(): void {
    this.restored.catch((error: Error) => this.#sync.failed(error));
  }
}
