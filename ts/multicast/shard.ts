// The ordered multicast of one subgroup shard at one member (DESIGN.md §4), over the member's SST and the
// RDMC groups of the shard's senders. It implements OrderedChannel, so a ReplicatedObject runs on it.
//
// Everything runs on the main thread, in `step()`, which the group member calls after every batch of table
// changes the predicate worker reports and after local sends:
//
//   1. send     write queued messages into free slots of this member's row (the window decides), LARGE
//               ones once RDMC has carried their bytes to every member
//   2. receive  numReceived[r] = index_r − 1 for every sender (a slot arrives before the index that names
//               it); nulls when this sender is idle and others moved on; seqNum = the receive prefix
//   3. deliver  stable = min seqNum over the shard; upcall each message seq ∈ (deliveredNum, stable]
//               straight from the sender's slot in the local table; deliveredNum = stable
//   (the numbers of 1–3 — receipt, null target, prefix, stability, the window's minimum — are WebAssembly
//   kernels called through control.ts, the same ShardControl the simulator runs)
//   4. push     to the shard's members only: on the data lane the slots written, then `index`, which
//               names them; on the control lane the acknowledgements numReceived, seqNum, deliveredNum
//               and persistedNum
//
// Lanes (ts/fabric/fabric.ts, Lane). Writes on one lane land in order; the two lanes are not ordered with
// each other. What relies on which order, and why each is safe:
//   - A receiver reads a sender's slots once its `index` names them: index travels on the data lane right
//     behind its slots, so the slots it names are there (the same connection order as before lanes).
//   - Stability: member x delivers seq ≤ min over the shard of seqNum, from its own copy of the slots. A
//     peer's seqNum (control) may arrive before the slots it covers reach x, but x's own seqNum is in the
//     minimum and comes from the indexes x itself received, so x never reads a slot it does not hold.
//   - The window: a sender reuses a slot once every member's deliveredNum (control) passed the message
//     that used it; that member has delivered it, so a new slot overtaking nothing it still needs is fine.
//     Raw mode reads the members' numReceived instead: the same argument.
//   - The ragged trim (ts/membership/protocol.ts) is computed from numReceived, which travels with the
//     view-change columns on the control lane; see there.
//   - LARGE messages: the slot that orders one is committed only once RDMC (data lane) acknowledged the
//     body at every member, so the body is always there before its slot.

// One step handles a whole batch: the costs per message are a slot write at the sender and an upcall at
// each member; reads of the table, pushes and syscalls are per batch. Raw mode skips 2's prefix and 3's
// stability: messages are delivered as they arrive, in each sender's order.
//
// The shard, file by idea: this one is the channel — the OrderedChannel a ReplicatedObject runs on, the
// step that drives the two sides, the push, and the hand-over at the end of a view; sender.ts is the send
// side (slots, window, nulls, RDMC); receiver.ts the receive and deliver side (indexes, prefix, stability,
// delivery, the trim); send-queue.ts the bounded queue of sends waiting for a slot; shard-table.ts where
// the shard's columns are. Slots are read and written through one codec (slots.ts). invariants() checks
// the whole shard at once.

import { formatVersion } from '../objects/version.js';
import type { Arena } from '../arena.js';
import { assert, assertAtMost, assertEqual, fail } from '../assert.js';
import { ClosedError, ConfigError, MessageTooLargeError } from '../errors.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import type { ShardPlan, SubgroupPlan } from '../membership/plans.js';
import { loopBack, WRITTEN, type OrderedChannel } from '../objects/channel.js';
import type { RdmcGroup } from '../rdmc/node.js';
import type { SstLayout } from '../sst/layout.js';
import { controlKernels, ShardControl, type ControlKernels } from './control.js';
import { subgroupColumns } from './layout.js';
import type { Mailboxes } from './mailboxes.js';
import { ShardReceiver, type DeliverHandler } from './receiver.js';
import { ShardSender } from './sender.js';
import { LatencySampler, type LatencySink } from './latency.js';
import { queueRefusal, SendQueue, type Outgoing } from './send-queue.js';
import { ShardTable, shardGeometry, type ShardGeometry } from './shard-table.js';
import { LockHolder, ShardWords, persistedWordAt } from './shard-words.js';
import { SlotKind } from './slots.js';

export type { DeliverHandler } from './receiver.js';

export interface ShardParts {
  arena: Arena;
  fabric: TableFabric;
  layout: SstLayout;
  selfId: number;
  plan: SubgroupPlan;
  shardIndex: number;
  mailboxes: Mailboxes;
  /** RDMC group per sender rank (rank 0 of each RDMC group is that sender), when messages can be large. */
  rdmc: ReadonlyArray<RdmcGroup | null>;
  /** Asks the owner for a step soon (after the current JS turn), to batch sends. */
  schedule: () => void;
  /** The view: versions are vid · 2^32 + seq. Default 0. */
  vid?: number;
  /** Where in SHARD_ROWS this shard's row lists go (ShardRows.take, one per shard of the arena). */
  rowsAt: number;
  /** The kernels of the control step (control.ts); default the WebAssembly ones over `arena`. */
  kernels?: ControlKernels;
  /** This shard's line in SHARD_WORDS (ShardRows.taken before its take); default 0. */
  wordsSlot?: number;
  /**
   * Who runs the control step (receipt, prefix, stability, nulls, the acknowledgements): 'main' (this
   * thread, in step()) or 'worker' (the predicate worker, workers/shard-engine.ts; ordered shards only —
   * raw ones stay on this thread). Default 'main'.
   */
  engine?: ShardEngine;
  /** The worker engine: rings the predicate worker (this member's counters or slots changed here). */
  wakeWorker?: () => void;
}

export type ShardEngine = 'main' | 'worker';

/** One shard as the predicate worker steps it (the worker engine): plain data, posted to the worker. */
export interface WorkerShardSpec {
  geometry: ShardGeometry;
  /** This member's sender rank (−1: it does not send). */
  rank: number;
  /** Its row lists in SHARD_ROWS (written by this thread's ShardControl) and its line in SHARD_WORDS. */
  rowsAt: number;
  wordsSlot: number;
  /** The shard's other members, by id. */
  peers: number[];
}

/** How long wedge() waits for the predicate worker to stop stepping the shard before calling it broken. */
const WORKER_WEDGE_TIMEOUT_MS = 10_000;

export class ShardChannel implements OrderedChannel {
  readonly memberId: number;
  readonly members: readonly number[];
  readonly senders: readonly number[];
  readonly mode: 'ordered' | 'raw';
  /** This member's sender rank, −1 when it does not send. */
  readonly rank: number;
  readonly maxSmcPayload: number;
  readonly maxMessageBytes: number;
  /** Sends this member may have queued (accepted, not yet in a slot) before send() rejects; and their bytes. */
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  /** The tag of this shard's point-to-point messages. */
  readonly tag: number;
  /** The subgroup's name and index (configuration order). */
  readonly subgroup: string;
  readonly subgroupIndex: number;

  readonly #p: ShardParts;
  readonly #vid: number;
  readonly #table: ShardTable;
  readonly #sender: ShardSender;
  readonly #receiver: ShardReceiver;
  readonly #control: ShardControl;
  /**
   * The words shared with the predicate worker, which runs the control step: ordered shards with engine
   * 'worker' only (null: this thread runs it).
   */
  readonly #words: ShardWords | null;
  /** The shard's members other than this one: who every push goes to. */
  readonly #peers: readonly number[];
  readonly #queue = new SendQueue();
  /** Times one send in many, to its push and its delivery here (latency.ts). */
  readonly #latency = new LatencySampler();
  /** Sends that found the window full (or sends already waiting for it) and were queued for a slot. */
  windowStalls = 0;
  /** Names this queue in OverloadedError (made once: the send path makes no strings). */
  readonly #queueName: string;
  #sentSinceStep = false;
  #onDirect: ((from: number, bytes: Uint8Array) => void) | null = null;
  #failure: Error | null = null;
  #wedged = false;
  #closed = false;
  /** The worker engine: this thread stepped the shard once, so the worker may too (ShardWords OPEN). */
  #opened = false;
  /** Where the persistence frontier is kept (the shard's PERSISTED word, on either engine). */
  readonly #persistedOut: number;
  /** A persistent subgroup: the version durable in this member's log, as stored in its row; push pending. */
  #persisted = -1n;
  #persistedDirty = false;
  /** The persistence frontier last reported to #onPersisted (min persistedNum over the shard). */
  #frontier = -1n;
  #onPersisted: ((frontier: bigint) => void) | null = null;
  /** Told once, at the end of a step, of a member whose shard values broke the rules (control.ts): BAD_SHARD. */
  onMisbehaved: ((member: number, what: string) => void) | null = null;

  constructor(parts: ShardParts) {
    const { plan } = parts;
    const shard: ShardPlan = plan.shards[parts.shardIndex]!;
    this.#p = parts;
    this.#vid = parts.vid ?? 0;
    this.memberId = parts.selfId;
    this.members = shard.members;
    this.senders = shard.senders;
    this.mode = plan.mode;
    this.rank = shard.senders.indexOf(parts.selfId);
    this.maxSmcPayload = plan.maxSmcPayload;
    this.maxMessageBytes = Math.max(plan.maxSmcPayload, parts.rdmc.some((g) => g) ? plan.maxMessageBytes : 0);
    this.maxQueuedMessages = plan.maxQueuedMessages;
    this.maxQueuedBytes = plan.maxQueuedBytes;
    this.#queueName = `subgroup '${plan.name}' at member ${parts.selfId}`;
    this.tag = (plan.index << 16) | parts.shardIndex;
    this.subgroup = plan.name;
    this.subgroupIndex = plan.index;
    this.#table = new ShardTable(parts.arena, shardGeometry(parts.layout, plan, shard, parts.selfId));
    this.#control = new ShardControl(this.#table, this.mode, this.rank, parts.rowsAt,
      parts.kernels ?? controlKernels(parts.arena));
    this.#peers = shard.members.filter((id) => id !== parts.selfId);
    this.#words = parts.engine === 'worker' && this.mode === 'ordered'
      ? new ShardWords(parts.arena, parts.wordsSlot ?? 0) : null;
    this.#words?.reset();
    this.#persistedOut = persistedWordAt(parts.wordsSlot ?? 0);
    this.#receiver = new ShardReceiver(
      this.#table, this.#control, this.mode, this.rank, [...shard.senders], this.#vid, parts.rdmc);
    this.#sender = new ShardSender({
      table: this.#table, mode: this.mode, rank: this.rank, rdmc: this.rank < 0 ? null : parts.rdmc[this.rank] ?? null,
      ownWindowCounter: this.mode === 'raw'
        ? () => this.#receiver.numReceived[this.rank] ?? -1 : () => this.#receiver.deliveredNum,
      keepLargeBody: (bytes) => { this.#receiver.largeBodies[this.rank]!.push(bytes); },
      control: this.#control, schedule: parts.schedule, closed: () => this.#closed, latency: this.#latency,
    });
    this.#receiver.latency = this.#latency;
    this.#receiver.nudge = parts.schedule;
  }

  /** Sets every counter of the shard in every row to its initial value (−1); before connecting. */
  static initialize(arena: Arena, layout: SstLayout, plan: SubgroupPlan): void {
    const cols = subgroupColumns(plan);
    for (let row = 0; row < layout.rows; row++) {
      for (const name of [cols.numReceived, cols.seqNum, cols.deliveredNum, cols.persistedNum]) {
        const c = layout.column(name);
        for (let i = 0; i < c.count; i++) Atomics.store(arena.i64, layout.offsetOf(row, c, i) >> 3, -1n);
      }
    }
  }

  // ---- OrderedChannel ---------------------------------------------------------------------------------

  send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('this group'));
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.rank < 0) return Promise.reject(this.#notASender());
    const size = bytes.byteLength;
    if (size > this.maxMessageBytes) {
      return Promise.reject(new MessageTooLargeError('a multicast message', size, this.maxMessageBytes));
    }
    const large = size > this.maxSmcPayload;
    const sender = this.#sender, queue = this.#queue;
    this.#sentSinceStep = true;
    // The cached minimum only grows, so it is a safe first answer; the table is read when it says no.
    this.#words?.markSending(); // no nulls from the worker in its next round
    const timed = this.#latency.take();
    if (!this.#wedged && !large && queue.length === 0 && this.#lockSlots(true)) {
      let open = false;
      try {
        open = sender.windowOpen(sender.minDeliveredSeen) || sender.windowOpen(sender.minDelivered());
        if (open) sender.commit(SlotKind.DATA, bytes);
        if (open && timed) this.#latency.committed(sender.nextIndex - 1);
      } finally {
        this.#unlockSlots();
      }
      if (open) {
        this.#p.schedule();
        return WRITTEN;
      }
    }
    const refused = queueRefusal(this.#queueName, queue.length, queue.bytes, size, this);
    if (refused) return Promise.reject(refused);
    if (this.#wedged) {
      // A view change is under way: the message waits here and moves to the next view (finishView).
      return new Promise((resolve, reject) => {
        queue.push({ bytes: bytes.slice(), large, carried: false, resolve, reject });
      });
    }
    if (!large) this.windowStalls++;
    return new Promise((resolve, reject) => {
      const outgoing = { bytes, large, carried: false, resolve, reject };
      if (timed) this.#latency.waiting = outgoing;
      queue.push(outgoing);
      this.#p.schedule();
    });
  }

  /** @internal Where the timed sends' latencies go (null: none is timed). */
  set latencySink(sink: LatencySink | null) { this.#latency.sink = sink; }

  /** Sets the upcall. Until there is one, stable messages wait in their slots (holding the window): none is lost. */
  onDeliver(handler: DeliverHandler): void {
    this.#receiver.onDeliver = handler;
    this.#p.schedule();
  }

  sendTo(member: number, bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('this group'));
    if (member === this.memberId) return loopBack(bytes, (copy) => this.direct(member, copy));
    return this.#p.mailboxes.send(member, this.tag, bytes);
  }

  onDirect(handler: (from: number, bytes: Uint8Array) => void): void { this.#onDirect = handler; }

  /** Messages waiting for a slot (the window is closed, or a large one is on its way). */
  get queued(): number { return this.#queue.length; }
  /** Bytes of those messages. */
  get queuedBytes(): number { return this.#queue.bytes; }
  /** Highest sequence number delivered here. */
  get deliveredNum(): number { return this.#receiver.deliveredNum; }
  /** Messages delivered here, and nulls sent from here (for tests and benchmarks). */
  get delivered(): number { return this.#receiver.delivered; }
  get nullsSent(): number { return this.#sender.nullsSent + (this.#words?.workerNulls ?? 0); }

  /**
   * Every message this member sent is stable (ordered: delivered here, so received everywhere; raw:
   * received by every member) and none waits: what a member that leaves waits for first.
   */
  get settled(): boolean {
    if (this.#queue.length > 0) return false;
    const next = this.#sender.nextIndex;
    if (this.rank < 0 || next === 0) return true;
    if (this.mode === 'raw') return this.#sender.minDelivered() >= next - 1;
    return this.#receiver.deliveredNum >= (next - 1) * this.#table.S + this.rank;
  }

  /** Where this shard is, for diagnostics: what it sent, received and delivered, and what it waits for. */
  state(): Record<string, unknown> {
    const sender = this.#sender, receiver = this.#receiver, words = this.#words;
    if (words && !this.#wedged && !this.#closed) { // the worker's counters and indexes, as it left them
      receiver.readFromRow();
      if (words.take(LockHolder.Main, sender)) words.release(sender);
    }
    const minDelivered = sender.minDelivered();
    return {
      vid: this.#vid, nextIndex: sender.nextIndex, pushedIndex: sender.pushedIndex,
      numReceived: [...receiver.numReceived], seqNum: receiver.seqNum, deliveredNum: receiver.deliveredNum,
      minDelivered, window: sender.windowSize, inFlight: this.rank < 0 ? 0 : sender.inFlight(minDelivered),
      queued: this.#queue.length, queuedLarge: this.#queue.countLarge(),
      rdmcBusy: sender.rdmcBusy, wedged: this.#wedged, closed: this.#closed,
      failure: this.#failure?.message ?? null, hasUpcall: receiver.hasUpcall,
      largeBodies: receiver.largeBodies.map((b) => b.length),
      ...(words ? { worker: words.state() } : {}),
      ...(this.#onPersisted // a persistent subgroup: the version durable here, and at every member
        ? { persisted: formatVersion(this.#persisted), frontier: formatVersion(this.#frontier) } : {}),
    };
  }

  // ---- persistence (a persistent subgroup: ts/group/persistence.ts) ------------------------------------

  /**
   * @internal `version` is durable in this member's log of the shard: stored in its persistedNum now (the
   * main thread is that column's one writer), pushed to the shard's members at the next step. Only grows.
   */
  storePersisted(version: bigint): void {
    if (version <= this.#persisted || this.#closed) return;
    this.#persisted = version;
    Atomics.store(this.#table.arena.i64, this.#table.persistedAt >> 3, version);
    this.#persistedDirty = true;
    this.#p.schedule();
  }

  /**
   * The persistence frontier: the least persistedNum over the shard's rows (−1n while a member has none), by
   * the kernel into the shard's PERSISTED word. The worker engine's worker computes it in its rounds (and
   * wakes this thread when it moves); this thread does when no worker steps the shard.
   */
  persistedFrontier(): bigint {
    if (!this.#words || !this.#opened || this.#wedged) this.#control.persistedFrontier(this.#persistedOut);
    return Atomics.load(this.#table.arena.i64, this.#persistedOut >> 3);
  }

  /** @internal Called with the persistence frontier each time it moves (checked every step, and by checkPersisted). */
  onPersisted(handler: (frontier: bigint) => void): void {
    this.#onPersisted = handler;
  }

  /**
   * @internal Pushes persistedNum when it moved (`push`: from step() only, which runs once the view passed
   * its start barrier — a push before the connections exist is lost), and reports the frontier when it did.
   */
  checkPersisted(push = false): void {
    if (push && this.#persistedDirty && !this.#closed && !this.#failure) {
      this.#persistedDirty = false;
      const at = this.#table.persistedAt;
      for (const id of this.#peers) this.#p.fabric.write(id, at, 8, Lane.Control);
    }
    if (!this.#onPersisted) return;
    const frontier = this.persistedFrontier();
    if (frontier > this.#frontier) {
      this.#frontier = frontier;
      this.#onPersisted(frontier);
    }
  }

  // ---- the protocol step --------------------------------------------------------------------------------

  /** @internal A point-to-point message for this shard. */
  direct(from: number, bytes: Uint8Array): void { this.#onDirect?.(from, bytes); }

  /**
   * @internal One round of send, receive, deliver, push; then the members found misbehaving meanwhile (here,
   * or in a send since the last step) are reported.
   */
  step(): void {
    if (this.#closed) return;
    this.#stepOnce();
    for (const row of this.#control.takeMisbehaved()) {
      this.onMisbehaved?.(this.#p.layout.members[row]!, 'a shard counter, index or slot that breaks the rules');
    }
  }

  #stepOnce(): void {
    if (this.#failure || this.#wedged || this.#table.S === 0) return;
    if (this.#words) {
      if (!this.#opened) this.#open(this.#words);
      this.#stepBesideWorker(this.#words);
      if (this.#onPersisted || this.#persistedDirty) this.checkPersisted(true);
      return;
    }
    const sender = this.#sender, receiver = this.#receiver;
    for (let round = 0; round < 4; round++) {
      const before = sender.nextIndex + receiver.deliveredNum;
      sender.sendQueued(this.#queue);
      if (this.mode === 'ordered') this.#receiveOrdered();
      else receiver.receiveRaw(sender.nextIndex);
      if (sender.nextIndex + receiver.deliveredNum === before) break; // nothing opened the window further
    }
    this.#push();
    this.#sentSinceStep = false;
    if (this.#onPersisted || this.#persistedDirty) this.checkPersisted(true);
  }

  /**
   * @internal A view change began: send nothing new, and freeze the receive counters and deliveries — the
   * leader computes the ragged trim from them (ts/membership/protocol.ts). Slots still land.
   */
  wedge(): void {
    this.#wedged = true;
    const words = this.#words;
    if (!words) return;
    // The worker stops stepping the shard and pushes its last counters before it says so: from then on
    // numReceived and seqNum stand still for the trim, and only this thread touches the shard.
    words.askWedge();
    this.#p.wakeWorker?.();
    if (!words.waitStopped(WORKER_WEDGE_TIMEOUT_MS)) {
      fail(`the predicate worker did not stop stepping shard ${this.tag} within ${WORKER_WEDGE_TIMEOUT_MS} ms`);
    }
    // The indexes and counters it left are this thread's from now on.
    this.#sender.adopt(words.nextIndex, words.pushedIndex);
    this.#receiver.readFromRow();
  }

  /** The worker engine: what the control step's worker needs to step this shard (geometry, rank, words). */
  workerShard(): WorkerShardSpec | null {
    if (!this.#words) return null;
    return {
      geometry: this.#table.geometry, rank: this.rank, rowsAt: this.#p.rowsAt, wordsSlot: this.#p.wordsSlot ?? 0,
      peers: [...this.#peers],
    };
  }

  /**
   * @internal The end of the view, by a committed change's trims (per subgroup, per shard): delivers up to
   * this shard's trim (`goesOn`: this member is in the next view; see ShardReceiver.deliverTrim). Returns
   * this member's messages to send again in the next view — its own beyond the trim, then those still
   * queued — and, raw mode, which delivers on receipt, how many messages of each sender beyond the trim it
   * delivered already: the sender sends those again too, and this member must pass over that many of its
   * first ones. The channel is closed after.
   */
  finishView(trims: readonly (readonly (readonly number[])[])[], goesOn = true): {
    unsent: Outgoing[]; deliveredBeyond: Map<number, number>;
  } {
    const trim = trims[this.subgroupIndex]![this.#p.shardIndex]!;
    const receiver = this.#receiver;
    const deliveredBeyond = this.mode === 'raw' ? receiver.deliveredBeyond(trim) : new Map<number, number>();
    assert(this.#wedged, 'deliverTrim before wedge');
    receiver.deliverTrim(trim, goesOn);
    const unsent = this.rank < 0 ? [] : this.#sender.unsentFrom(trim[this.rank]! + 1, receiver.largeBodies[this.rank]!);
    for (const m of this.#queue.takeAll()) unsent.push({ ...m, carried: false });
    this.#closed = true;
    return { unsent, deliveredBeyond };
  }

  /** @internal Messages of the previous view to send first (finishView there). */
  sendFirst(messages: readonly Outgoing[]): void {
    this.#queue.unshift(messages);
    if (messages.length > 0) this.#p.schedule();
  }

  /**
   * @internal Stops the shard for good (a partitioned member): sends reject with `error`, nothing more is
   * delivered.
   */
  stop(error: Error): void {
    this.#failure = error;
    for (const m of this.#queue.takeAll()) m.reject(error);
  }

  /** @internal */
  close(): void {
    this.#closed = true;
    const error = new ClosedError('this group');
    for (const m of this.#queue.takeAll()) m.reject(error);
  }

  /**
   * Throws (an assertion) when the shard's state is inconsistent: the control step's (control.ts: the
   * peers' counters the kernels read only grow), the send side's (pushed ≤ committed, our
   * slots hold our last W messages, the window held), the receive side's (deliveredNum ≤ seqNum ≤ the
   * receive prefix while the view runs), our own numReceived ≤ what we committed, and the queue's byte
   * count. For the simulator, after every step: O(S + W + queued).
   */
  invariants(): void {
    this.#sender.invariants();
    this.#receiver.invariants(!this.#closed);
    this.#control.invariants();
    if (this.rank >= 0) {
      assertAtMost(this.#receiver.numReceived[this.rank]!, this.#sender.nextIndex - 1, 'our own numReceived');
    }
    assertEqual(this.#queue.bytes, this.#queue.bytesQueued(), 'the bytes counted in the send queue');
  }

  #receiveOrdered(): void {
    const sender = this.#sender, receiver = this.#receiver;
    receiver.readIndexes(sender.nextIndex);
    if (this.rank >= 0 && this.#queue.length === 0 && !this.#sentSinceStep) {
      // Idle (nothing queued, nothing sent since the last step — a sender mid-burst fills its turn with
      // messages a moment later): fill the round robin with nulls up to where the others are, as far as
      // the window allows.
      const target = this.#control.nullTarget();
      if (sender.nextIndex < target) {
        sender.fillNulls(target);
        receiver.receivedOwn(sender.nextIndex);
      }
    }
    receiver.deliverOrdered();
  }

  /** Per peer: the slots and index in one send on the data lane, the acknowledgements on the control lane. */
  #push(): void {
    const fabric = this.#p.fabric;
    if (this.#sender.pushWrites(fabric, this.#peers) > 0) this.#receiver.markDirty(); // our numReceived moved too
    if (!this.#receiver.storeAcks()) return;
    const [ackAt, ackBytes] = this.#table.ackSpan;
    for (const id of this.#peers) fabric.write(id, ackAt, ackBytes, Lane.Control);
  }

  /**
   * The worker engine, at this thread's first step (the driver steps a shard only once the view passed its
   * start barrier, and its state, if any, arrived): the worker may step and push the shard from now on.
   */
  #open(words: ShardWords): void {
    this.#opened = true;
    words.open();
    this.#p.wakeWorker?.();
  }

  /**
   * The worker engine's step on this thread: commit queued sends and push them (holding the shard's slots),
   * then deliver up to the stable frontier, store deliveredNum, and ring the worker when either moved (it
   * pushes the acknowledgements and runs receipt over our own new messages).
   *
   * The frontier is the worker's, or the one this thread reads itself when that is further: the least seqNum
   * of the shard, with ours as the worker last stored it in our row. The poller wakes this thread and the
   * worker at once when the others' seqNum land, so reading it here delivers without waiting for the worker
   * to compute it and ring back — one thread wake-up fewer on the path of every message. Reading is safe:
   * each seqNum only grows and is stored whole, ours only once the worker counted the slots it covers.
   */
  #stepBesideWorker(words: ShardWords): void {
    const receiver = this.#receiver;
    let moved = this.#sendBesideWorker(words);
    const table = this.#table;
    const stable = Math.max(words.stable, this.#control.stable(table.readI64(table.seqNumAt)));
    if (receiver.deliverThrough(stable)) {
      receiver.storeDelivered();
      moved = true;
      // Our own deliveries may be what opens our window (we were the slowest to deliver).
      if (this.#queue.length > 0) this.#sendBesideWorker(words);
    }
    if (moved) this.#p.wakeWorker?.();
  }

  /** Commits queued sends and pushes what is committed, holding the slots; true when it pushed. */
  #sendBesideWorker(words: ShardWords): boolean {
    const sender = this.#sender;
    if (this.#queue.length > 0) words.markSending();
    if (this.#queue.length === 0 && sender.pushedIndex >= sender.nextIndex && words.pushedIndex >= words.nextIndex) {
      return false;
    }
    if (!this.#lockSlots()) {
      this.#p.schedule(); // the worker is writing nulls: microseconds
      return false;
    }
    try {
      sender.sendQueued(this.#queue);
      return sender.pushWrites(this.#p.fabric, this.#peers) > 0;
    } finally {
      this.#unlockSlots();
    }
  }

  /** Takes the shard's slots (the worker engine: unless the worker is writing nulls; `toSend`: takeToSend). */
  #lockSlots(toSend = false): boolean {
    return (toSend ? this.#words?.takeToSend(this.#sender) : this.#words?.take(LockHolder.Main, this.#sender)) ?? true;
  }

  /** Publishes the indexes and releases the slots; rings the worker when it found them held meanwhile. */
  #unlockSlots(): void {
    const words = this.#words;
    if (!words) return;
    words.release(this.#sender);
    if (words.takeRetry()) this.#p.wakeWorker?.();
  }

  #notASender(): ConfigError {
    const senders = this.senders.join(', ');
    return new ConfigError(`member ${this.memberId} is not a sender of this shard (senders: ${senders}); `
      + 'send from a sender, or list it in the subgroup\'s senders');
  }
}
