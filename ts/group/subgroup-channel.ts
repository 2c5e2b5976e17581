// A member's handle on its shard of one subgroup, across views: what group.channel(name) returns and what
// a ReplicatedObject runs on. Each view has its own ShardChannel (fresh tables, DESIGN.md §6); this handle
// forwards to the current one. During a view change it holds new sends, and hands the next view's channel
// first the messages the old view did not deliver, then those it held — so a sender's order is kept and
// nothing sent is lost.

import { loopBack, type OrderedChannel } from '../objects/channel.js';
import { queueRefusal, type Outgoing } from '../multicast/send-queue.js';
import type { ShardChannel } from '../multicast/shard.js';
import type { LatencySink } from '../multicast/latency.js';

type DeliverHandler = (sender: number, version: bigint, bytes: Uint8Array) => void;

/** A persistent subgroup's log at this member (ts/group/persistence.ts), as the channel sees it. */
export interface DeliveryLog {
  /** Each delivered message, before the upcall (it copies the bytes). */
  append(sender: number, version: bigint, bytes: Uint8Array): void;
  /** After the upcall: the object's state includes `version` (the moment for a snapshot). */
  applied(version: bigint): void;
  /** The shard's persistence frontier moved (min persistedNum over its members). */
  frontier(version: bigint): void;
  /** fdatasync calls the log made so far (diagnostics). */
  readonly syncs: number;
}

export class SubgroupChannel implements OrderedChannel {
  readonly name: string;
  readonly memberId: number;
  /** The latest view's channel; during a change, the old view's (read for members, never sent on). */
  #current: ShardChannel;
  #changing = false;
  #held: Outgoing[] = [];
  /** Bytes of the messages in #held. */
  #heldBytes = 0;
  /** Names this handle's queue in OverloadedError. */
  readonly #queueName: string;
  #onDeliver: DeliverHandler | null = null;
  #onDirect: ((from: number, bytes: Uint8Array) => void) | null = null;
  #onMemberFailed: ((member: number) => void) | null = null;
  /** Point-to-point messages that wait while this member's shard receives its state (null: none wait). */
  #heldDirect: Array<[number, Uint8Array]> | null = null;
  /** sendTo's messages waiting for room in each destination's mailbox, and their bytes. */
  readonly #pendingTo = new Map<number, { count: number; bytes: number }>();
  #stopped: Error | null = null;
  /** Set when this member leaves: new sends are refused, the shard itself goes on until the change. */
  #refused: Error | null = null;
  /**
   * Raw mode: per sender, how many of its first messages in the next views this member delivered already
   * (beyond an old view's trim: the sender sends them again, and they are passed over here).
   */
  readonly #skip = new Map<number, number>();
  /** A persistent subgroup: where each delivery is logged, and the durable version this member stores. */
  #log: DeliveryLog | null = null;
  #persisted = -1n;
  /** Deliveries of earlier views, so `delivered` counts across views. */
  #deliveredBefore = 0;
  /** Bytes of the messages passed to the onDeliver handler, over every view. */
  #deliveredBytes = 0;
  #nullsBefore = 0;
  #stallsBefore = 0;
  /** Who listens to the sampled latencies of this member's sends (the metrics): on every view's shard. */
  readonly #latencySinks: LatencySink[] = [];

  constructor(name: string, memberId: number, first: ShardChannel) {
    this.name = name;
    this.memberId = memberId;
    this.#current = first;
    this.#queueName = `subgroup '${name}' at member ${memberId}`;
  }

  /** Members of the shard in the current view, in rank order. */
  get members(): readonly number[] { return this.#current.members; }
  get senders(): readonly number[] { return this.#current.senders; }
  get mode(): 'ordered' | 'raw' { return this.#current.mode; }
  /** The index of this member's shard of the subgroup in the current view. */
  get shard(): number { return this.#current.tag & 0xffff; }
  get maxMessageBytes(): number { return this.#current.maxMessageBytes; }
  get maxSmcPayload(): number { return this.#current.maxSmcPayload; }
  /** Messages delivered here, over every view. */
  get delivered(): number { return this.#deliveredBefore + (this.#changing ? 0 : this.#current.delivered); }
  /** Bytes of the messages delivered here (to the onDeliver handler), over every view. */
  get deliveredBytes(): number { return this.#deliveredBytes; }
  get nullsSent(): number { return this.#nullsBefore + (this.#changing ? 0 : this.#current.nullsSent); }
  /** Sends that found the window full (or sends waiting for it already) and queued for a slot, over every view. */
  get windowStalls(): number { return this.#stallsBefore + (this.#changing ? 0 : this.#current.windowStalls); }
  /** Highest sequence number delivered in the current view. */
  get deliveredNum(): number { return this.#current.deliveredNum; }
  /** Messages waiting: for a slot in this view, or for the next view during a change. */
  get queued(): number { return this.#held.length + (this.#changing ? 0 : this.#current.queued); }
  /** Bytes of those messages. */
  get queuedBytes(): number { return this.#heldBytes + (this.#changing ? 0 : this.#current.queuedBytes); }
  /**
   * Sends this member may have queued here before send() rejects with OverloadedError, and their bytes
   * (the subgroup's maxQueuedMessages and maxQueuedBytes).
   */
  get maxQueuedMessages(): number { return this.#current.maxQueuedMessages; }
  get maxQueuedBytes(): number { return this.#current.maxQueuedBytes; }

  /** Diagnostics: the current view's shard state, and what this handle holds for the next view. */
  state(): Record<string, unknown> {
    const stopped = this.#stopped?.message ?? null;
    const log = this.#log === null ? {} : { logSyncs: this.#log.syncs };
    return { held: this.#held.length, changing: this.#changing, stopped, shard: this.#current.state(), ...log };
  }

  send(bytes: Uint8Array): Promise<void> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (this.#refused) return Promise.reject(this.#refused);
    if (!this.#changing) return this.#current.send(bytes);
    // During a view change sends wait here, bounded as the shard's queue is (the old view's unsent
    // messages count, so the next view starts with at most the limit plus one window).
    const refused = queueRefusal(this.#queueName, this.#held.length, this.#heldBytes, bytes.byteLength, this.#current);
    if (refused) return Promise.reject(refused);
    this.#heldBytes += bytes.byteLength;
    return new Promise((resolve, reject) => {
      this.#held.push({ bytes: bytes.slice(), large: false, carried: false, resolve, reject });
    });
  }

  onDeliver(handler: DeliverHandler): void {
    this.#onDeliver = handler;
    this.#current.onDeliver(this.#deliver);
  }

  /** The upcall every view's shard calls: the user's, after passing over what was delivered already. */
  readonly #deliver: DeliverHandler = (sender, version, bytes) => {
    const skip = this.#skip.get(sender);
    if (skip !== undefined) {
      if (skip <= 1) this.#skip.delete(sender);
      else this.#skip.set(sender, skip - 1);
      return;
    }
    this.#deliveredBytes += bytes.byteLength;
    const log = this.#log;
    if (log === null) {
      this.#onDeliver!(sender, version, bytes);
      return;
    }
    log.append(sender, version, bytes);
    this.#onDeliver!(sender, version, bytes);
    log.applied(version);
  };

  /**
   * `sink` gets the sampled latencies of this member's sends, in this view's shard and the next ones
   * (ts/multicast/latency.ts: one send in many is timed to its push and to its delivery here). Once per sink.
   */
  observeLatency(sink: LatencySink): void {
    if (this.#latencySinks.includes(sink)) return;
    this.#latencySinks.push(sink);
    this.#current.latencySink = this.#onLatency;
  }

  readonly #onLatency: LatencySink = (kind, seconds) => { for (const sink of this.#latencySinks) sink(kind, seconds); };

  /** @internal A persistent subgroup: every delivery from now on goes to `log` too. */
  setLog(log: DeliveryLog): void {
    this.#log = log;
    this.#current.onPersisted((frontier) => log.frontier(frontier));
  }

  /** @internal `version` is durable in this member's log: stored in its row in this view and the next ones. */
  storePersisted(version: bigint): void {
    if (version <= this.#persisted) return;
    this.#persisted = version;
    if (!this.#changing) this.#current.storePersisted(version);
  }

  /** @internal Checks the persistence frontier now (the worker engine steps this thread only on deliveries). */
  checkPersisted(): void {
    if (!this.#changing && !this.#stopped) this.#current.checkPersisted();
  }

  /**
   * Point-to-point over the current view's mailboxes (during a change, the old view's: still connected).
   * What waits for room in one member's mailbox is bounded like send's queue — maxQueuedMessages sends and
   * maxQueuedBytes of them per destination — and past it this rejects at once with OverloadedError.
   */
  sendTo(member: number, bytes: Uint8Array): Promise<void> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (member === this.memberId) return loopBack(bytes, (copy) => this.direct(member, copy));
    const pending = this.#pendingTo.get(member) ?? { count: 0, bytes: 0 };
    const where = `${this.#queueName}'s point-to-point queue to member ${member}`;
    const refused = queueRefusal(where, pending.count, pending.bytes, bytes.byteLength, this.#current);
    if (refused) return Promise.reject(refused);
    pending.count++;
    pending.bytes += bytes.byteLength;
    this.#pendingTo.set(member, pending);
    const settle = () => {
      pending.count--;
      pending.bytes -= bytes.byteLength;
      if (pending.count === 0) this.#pendingTo.delete(member);
    };
    const sent = this.#current.sendTo(member, bytes);
    sent.then(settle, settle);
    return sent;
  }

  /**
   * @internal A replicated object's reply: never refused for room (a caller waits for it), and bounded
   * without a count here — each caller has at most maxQueuedMessages calls waiting for replies.
   */
  reply(member: number, bytes: Uint8Array): Promise<void> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (member === this.memberId) return loopBack(bytes, (copy) => this.direct(member, copy));
    return this.#current.sendTo(member, bytes);
  }

  onDirect(handler: (from: number, bytes: Uint8Array) => void): void { this.#onDirect = handler; }

  onMemberFailed(handler: (member: number) => void): void { this.#onMemberFailed = handler; }

  /** @internal A point-to-point message for this shard (from another member, or this one): held while the
   *  shard's state is on its way, since a query answered now would read the wrong copy. */
  direct(from: number, bytes: Uint8Array): void {
    if (this.#heldDirect) this.#heldDirect.push([from, bytes.slice()]);
    else this.#onDirect?.(from, bytes);
  }

  /** @internal This member's shard receives its state: point-to-point messages wait until releaseDirect. */
  holdDirect(): void { this.#heldDirect ??= []; }

  /** @internal The state is restored (deliver: the held messages go on, in arrival order), or never will be. */
  releaseDirect(deliver: boolean): void {
    const held = this.#heldDirect;
    this.#heldDirect = null;
    if (deliver && held) for (const [from, bytes] of held) this.#onDirect?.(from, bytes);
  }

  /**
   * @internal The view ended: the old channel's unsent messages wait here for the next one; of each sender's
   * first messages there, `deliveredBeyond` were delivered here already (raw mode; see finishView).
   */
  detach(unsent: Outgoing[], deliveredBeyond: ReadonlyMap<number, number> = new Map()): void {
    for (const [sender, n] of deliveredBeyond) this.#skip.set(sender, (this.#skip.get(sender) ?? 0) + n);
    if (!this.#changing) {
      this.#deliveredBefore += this.#current.delivered;
      this.#nullsBefore += this.#current.nullsSent;
      this.#stallsBefore += this.#current.windowStalls;
    }
    this.#changing = true;
    this.#held.unshift(...unsent);
    for (const m of unsent) this.#heldBytes += m.bytes.byteLength;
  }

  /** @internal The next view's channel: it sends what was held first, in order. */
  attach(channel: ShardChannel): void {
    this.#current = channel;
    this.#changing = false;
    if (this.#onDeliver) channel.onDeliver(this.#deliver);
    if (this.#latencySinks.length > 0) channel.latencySink = this.#onLatency;
    const log = this.#log;
    if (log) {
      channel.onPersisted((frontier) => log.frontier(frontier));
      channel.storePersisted(this.#persisted); // every row starts at −1 in a new view
    }
    const held = this.#held.splice(0);
    this.#heldBytes = 0;
    for (const m of held) m.large = m.bytes.byteLength > channel.maxSmcPayload;
    channel.sendFirst(held);
  }

  /**
   * @internal This member rejoined the group after it was removed: the handle starts afresh on `channel`,
   * the shard of its new view (what it held was rejected when it stopped).
   */
  resume(channel: ShardChannel): void {
    if (!this.#changing) {
      this.#deliveredBefore += this.#current.delivered;
      this.#nullsBefore += this.#current.nullsSent;
      this.#stallsBefore += this.#current.windowStalls;
    }
    this.#stopped = null;
    this.#refused = null;
    this.#skip.clear();
    this.#heldDirect = null;
    this.attach(channel);
  }

  /** @internal This member is leaving: sends from now on reject with `error`. */
  refuseSends(error: Error): void { this.#refused ??= error; }

  /** @internal Nothing held here, and every message sent through the current shard is stable. */
  get settled(): boolean { return !this.#changing && this.#held.length === 0 && this.#current.settled; }

  /** @internal `member` is gone from the shard: calls waiting on its reply stop waiting. */
  memberGone(member: number): void { this.#onMemberFailed?.(member); }

  /** @internal This member can go no further (partitioned, removed, closed): sends reject with `error`. */
  stop(error: Error): void {
    this.#stopped ??= error;
    this.#heldBytes = 0;
    for (const m of this.#held.splice(0)) m.reject(error);
    this.#current.stop(error);
  }
}
