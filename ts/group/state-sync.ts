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

import { PeerFailedError, StateTransferError } from '../errors.js';
import type { Change } from '../membership/protocol.js';
import type { ReplicatedObject } from '../objects/replicated-object.js';
import type { GroupConfig } from './config.js';
import type { DriverView, ShardStates, StatePlan } from './driver-parts.js';
import {
  Checksums, isStateTag, sendState, stateTag, stateTransfers, StateReceiver, type Transfer,
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
  /** A subgroup's object was restored from a transfer (a persistent subgroup's log starts again from it). */
  restored?(subgroup: string, version: bigint, bytes: Uint8Array): Promise<void> | undefined;
}

/** A snapshot this member sends: one shard's state, to the members entering it. */
interface Snapshot { t: Transfer; crc: Checksums; bytes: Uint8Array; version: bigint; failed?: string }

export class StateSync implements ShardStates {
  readonly #p: StateSyncParts;
  /** Subgroups whose state this member awaits (it entered their shard). */
  readonly #receivers = new Map<string, StateReceiver>();

  constructor(parts: StateSyncParts) {
    this.#p = parts;
  }

  get selfId(): number { return this.#p.selfId; }

  awaiting(subgroup: string): boolean { return this.#receivers.has(subgroup); }

  accept(tag: number, from: number, bytes: Uint8Array): boolean {
    if (!isStateTag(tag)) return false;
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
    if (!object) return { t, crc: new Checksums(), bytes: new Uint8Array(0), version: -1n };
    try {
      return { t, crc: new Checksums(), bytes: object.snapshot(), version: object.appliedVersion };
    } catch (error) {
      this.#p.error(error as Error);
      return { t, crc: new Checksums(), bytes: new Uint8Array(0), version: -1n, failed: (error as Error).message };
    }
  }

  /** Sends one shard's snapshot to the members entering it, over the new view's mailboxes. */
  send(view: DriverView, { t, crc, ...snapshot }: Snapshot): void {
    const tag = stateTag(t);
    const send = (to: number, record: Uint8Array) => view.mailboxes.send(to, tag, record);
    const maxPayload = view.mailboxes.maxPayload;
    sendState(send, t.recipients, snapshot, maxPayload, crc).catch((error: Error) => {
      // A recipient that failed meanwhile is the view change's business (it removes it), not an error here.
      if (error instanceof PeerFailedError || !this.#p.isCurrent(view)) return;
      this.#p.error(error);
      // The recipients must not wait for the rest: they are told why, and stop.
      const failed = { bytes: new Uint8Array(0), version: -1n, failed: error.message };
      sendState(send, t.recipients, failed, maxPayload, new Checksums())
        .catch(() => {}); // a recipient that cannot be told is failing: the view change removes it
    });
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
    const receiver = new StateReceiver(t, this.#p.idleTimeoutMs);
    this.#receivers.set(t.subgroup, receiver);
    // Point-to-point messages (queries) for the shard, this member's own too, wait in its handle until the
    // state is restored.
    const handle = this.#p.handles.get(t.subgroup);
    handle?.holdDirect();
    let restored = false;
    try {
      const { bytes, version } = await receiver.done;
      // Stopped meanwhile (another transfer failed, a change cut this one off): that is the reason.
      const halted = this.#p.halted();
      if (halted) throw halted;
      const object = this.#p.objects.get(t.subgroup);
      if (object && bytes.byteLength > 0) {
        object.restore(bytes, version);
        await this.#p.restored?.(t.subgroup, version, bytes);
      }
      restored = true;
    } finally {
      if (this.#receivers.get(t.subgroup) === receiver) this.#receivers.delete(t.subgroup);
      if (this.#receivers.size === 0 && !view.closed) view.protocol.setReceiving(false);
      this.#p.schedule();
      handle?.releaseDirect(restored); // last: a handler that throws fails the member, nothing above is skipped
    }
  }
}

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

  /** The source's snapshots, taken now; their checksum threads boot while the view installs. */
  snapshot(): void {
    const mine = this.transfers.filter((t) => t.source === this.#sync.selfId);
    this.#snapshots = mine.map((t) => this.#sync.snapshotOf(t));
    for (const { crc, bytes } of this.#snapshots) crc.warm(bytes.byteLength);
  }

  receive(view: DriverView): void {
    this.restored = this.#sync.receive(this.transfers, view);
  }

  send(view: DriverView): void {
    for (const snapshot of this.#snapshots.splice(0)) this.#sync.send(view, snapshot);
  }

  drop(): void {
    for (const { crc } of this.#snapshots.splice(0)) void crc.close();
  }

  settle(): void {
    this.restored.catch((error: Error) => this.#sync.failed(error));
  }
}
