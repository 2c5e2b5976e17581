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

import type { Arena } from '../arena.js';
import { ClosedError, ConfigError, MessageTooLargeError, OverloadedError, assert } from '../errors.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import type { ShardPlan, SubgroupPlan } from '../membership/plans.js';
import { loopBack, type OrderedChannel } from '../objects/channel.js';
import type { RdmcGroup } from '../rdmc/node.js';
import type { SstLayout } from '../sst/layout.js';
import { subgroupColumns } from './layout.js';
import type { Mailboxes } from './mailboxes.js';
import { nullTarget, receivePrefix } from './ordering.js';
import { trimDeliveries } from '../membership/view-change.js';
import { SLOT_HEADER_BYTES, SlotKind } from './slots.js';

export type DeliverHandler = (sender: number, version: bigint, bytes: Uint8Array) => void;

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
}

/** A message waiting to be sent: its bytes, and the send() it answers (none for one sent again). */
export interface Outgoing {
  bytes: Uint8Array;
  large: boolean;
  /** For LARGE: RDMC has delivered the bytes at every member. */
  carried: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

const TWO_32 = 2 ** 32;
const RESOLVED = Promise.resolve();

/**
 * Why a send of `size` bytes may not join a queue holding `count` sends of `bytes` bytes, or null when it
 * may: the queue is at maxQueuedMessages, or (when it is not empty: one message alone always fits) the
 * bytes would pass maxQueuedBytes. Shared by the shard's queue and the handle's, which holds sends during
 * a view change.
 */
export function queueRefusal(where: string, count: number, bytes: number, size: number, limits: { maxQueuedMessages: number; maxQueuedBytes: number }): OverloadedError | null {
  if (count >= limits.maxQueuedMessages) return new OverloadedError(where, 'messages', count, limits.maxQueuedMessages);
  if (count > 0 && bytes + size > limits.maxQueuedBytes) return new OverloadedError(where, 'bytes', bytes, limits.maxQueuedBytes);
  return null;
}

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

  // ---- counters, for tests and benchmarks ----
  delivered = 0;
  nullsSent = 0;

  readonly #p: ShardParts;
  readonly #vidBase: bigint;
  readonly #S: number;
  readonly #W: number;
  readonly #slotBytes: number;
  readonly #rows: number[]; // SST rows of the shard's members
  readonly #selfRow: number;
  readonly #senderRows: number[]; // SST rows of the senders, by rank
  readonly #senderIds: number[];
  // Arena offsets of this member's shard counters and of each sender's slot column (by rank).
  readonly #indexAt: number;
  readonly #numReceivedAt: number;
  readonly #seqNumAt: number;
  readonly #deliveredAt: number;
  /** [offset, length] of this member's acknowledgements (numReceived … persistedNum): the control lane's push. */
  readonly #ackSpan: [number, number];
  readonly #slotsAt: number[];
  readonly #indexCol: number; // column offsets within a row
  readonly #seqNumCol: number;
  readonly #deliveredCol: number;
  readonly #numReceivedCol: number;

  readonly #ranges = new Float64Array(6); // this step's data-lane push: at most two slot ranges and index
  #rangeCount = 0;
  #nextIndex = 0; // messages committed to our slots
  #sentSinceStep = false;
  #minDeliveredSeen = -1;
  #pushedIndex = 0; // of which pushed
  #numReceived: number[];
  #seqNum = -1;
  #deliveredNum = -1;
  #controlDirty = true;
  #queue: Outgoing[] = [];
  /** Bytes of the messages in #queue. */
  #queuedBytes = 0;
  /** Names this queue in OverloadedError (made once: the send path makes no strings). */
  readonly #queueName: string;
  #rdmcBusy = false;
  #largeBodies: Uint8Array[][];
  #onDeliver: DeliverHandler | null = null;
  #onDirect: ((from: number, bytes: Uint8Array) => void) | null = null;
  #failure: Error | null = null;
  #wedged = false;
  #closed = false;

  constructor(parts: ShardParts) {
    const { layout, plan } = parts;
    const shard: ShardPlan = plan.shards[parts.shardIndex]!;
    this.#p = parts;
    this.#vidBase = BigInt(parts.vid ?? 0) << 32n;
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
    const cols = subgroupColumns(plan);
    this.#S = shard.senders.length;
    this.#W = plan.window;
    this.#slotBytes = cols.slotBytes;
    this.#rows = shard.members.map((id) => layout.rowOf(id));
    this.#selfRow = layout.rowOf(parts.selfId);
    this.#senderIds = [...shard.senders];
    this.#senderRows = shard.senders.map((id) => layout.rowOf(id));
    const col = (name: string) => layout.column(name);
    this.#indexCol = col(cols.index).offset;
    this.#numReceivedCol = col(cols.numReceived).offset;
    this.#seqNumCol = col(cols.seqNum).offset;
    this.#deliveredCol = col(cols.deliveredNum).offset;
    const own = layout.rowOffset(this.#selfRow);
    this.#indexAt = own + this.#indexCol;
    this.#numReceivedAt = own + this.#numReceivedCol;
    this.#seqNumAt = own + this.#seqNumCol;
    this.#deliveredAt = own + this.#deliveredCol;
    const lastControl = col(cols.persistedNum);
    this.#ackSpan = [this.#numReceivedAt, lastControl.offset + 8 - this.#numReceivedCol];
    this.#slotsAt = this.#senderRows.map((row) => layout.offsetOf(row, col(cols.slots)));
    this.#numReceived = new Array<number>(this.#S).fill(-1);
    this.#largeBodies = this.#senderIds.map(() => []);
    parts.rdmc.forEach((group, rank) => {
      if (!group || rank === this.rank) return;
      // The bytes of a sender's LARGE messages arrive here in its index order; the slot that orders each
      // comes after RDMC acknowledged it everywhere, so the body is always here first.
      group.on('message', (bytes) => { this.#largeBodies[rank]!.push(bytes.slice()); });
    });
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
    if (this.rank < 0) return Promise.reject(new ConfigError(`member ${this.memberId} is not a sender of this shard (senders: ${this.senders.join(', ')}); send from a sender, or list it in the subgroup's senders`));
    const size = bytes.byteLength;
    if (size > this.maxMessageBytes) return Promise.reject(new MessageTooLargeError('a multicast message', size, this.maxMessageBytes));
    const large = size > this.maxSmcPayload;
    this.#sentSinceStep = true;
    // The cached minimum only grows, so it is a safe first answer; the table is read when it says no.
    if (!this.#wedged && !large && this.#queue.length === 0 && (this.#windowOpen(this.#minDeliveredSeen) || this.#windowOpen(this.#minDelivered()))) {
      this.#commit(SlotKind.DATA, bytes);
      this.#p.schedule();
      return RESOLVED;
    }
    const refused = queueRefusal(this.#queueName, this.#queue.length, this.#queuedBytes, size, this);
    if (refused) return Promise.reject(refused);
    this.#queuedBytes += size;
    if (this.#wedged) {
      // A view change is under way: the message waits here and moves to the next view (#takeUnsent).
      return new Promise((resolve, reject) => { this.#queue.push({ bytes: bytes.slice(), large, carried: false, resolve, reject }); });
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ bytes, large, carried: false, resolve, reject });
      this.#p.schedule();
    });
  }

  /** Sets the upcall. Until there is one, stable messages wait in their slots (holding the window): none is lost. */
  onDeliver(handler: DeliverHandler): void {
    this.#onDeliver = handler;
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
  get queuedBytes(): number { return this.#queuedBytes; }
  /** Highest sequence number delivered here. */
  get deliveredNum(): number { return this.#deliveredNum; }

  /**
   * Every message this member sent is stable (ordered: delivered here, so received everywhere; raw:
   * received by every member) and none waits: what a member that leaves waits for first.
   */
  get settled(): boolean {
    if (this.#queue.length > 0) return false;
    if (this.rank < 0 || this.#nextIndex === 0) return true;
    if (this.mode === 'raw') return this.#minDelivered() >= this.#nextIndex - 1;
    return this.#deliveredNum >= (this.#nextIndex - 1) * this.#S + this.rank;
  }

  /** Where this shard is, for diagnostics: what it sent, received and delivered, and what it waits for. */
  state(): Record<string, unknown> {
    return {
      vid: Number(this.#vidBase >> 32n), nextIndex: this.#nextIndex, pushedIndex: this.#pushedIndex, numReceived: [...this.#numReceived],
      seqNum: this.#seqNum, deliveredNum: this.#deliveredNum, minDelivered: this.#minDelivered(), queued: this.#queue.length,
      queuedLarge: this.#queue.filter((m) => m.large).length, rdmcBusy: this.#rdmcBusy, wedged: this.#wedged, closed: this.#closed,
      failure: this.#failure?.message ?? null, hasUpcall: this.#onDeliver !== null,
      largeBodies: this.#largeBodies.map((b) => b.length),
    };
  }

  // ---- the protocol step --------------------------------------------------------------------------------

  /** @internal A point-to-point message for this shard. */
  direct(from: number, bytes: Uint8Array): void { this.#onDirect?.(from, bytes); }

  /** @internal One round of send, receive, deliver, push. */
  step(): void {
    if (this.#closed || this.#failure || this.#wedged || this.#S === 0) return;
    for (let round = 0; round < 4; round++) {
      const before = this.#nextIndex + this.#deliveredNum;
      this.#sendQueued();
      if (this.mode === 'ordered') this.#receiveOrdered();
      else this.#receiveRaw();
      if (this.#nextIndex + this.#deliveredNum === before) break; // nothing opened the window further
    }
    this.#push();
    this.#sentSinceStep = false;
  }

  /**
   * @internal A view change began: send nothing new, and freeze the receive counters and deliveries — the
   * leader computes the ragged trim from them (ts/membership/protocol.ts). Slots still land.
   */
  wedge(): void {
    this.#wedged = true;
  }

  /**
   * The end of the view: delivers exactly the messages inside `trim` (per sender rank, the
   * highest index every member of the next view received) that were not delivered yet, in order.
   */
  /**
   * Delivers up to `trim`. A member that goes on to the next view holds every message inside it (the trim
   * is the least any of them received); one that does not (it leaves, or was removed) may lack some — the
   * trim was not computed from its counters — and delivers only the prefix of the order it holds.
   */
  #deliverTrim(trim: readonly number[], goesOn: boolean): void {
    assert(this.#wedged, 'deliverTrim before wedge');
    if (!this.#onDeliver) return;
    if (this.mode === 'raw') {
      for (let r = 0; r < this.#S; r++) {
        const last = goesOn ? trim[r]! : Math.min(trim[r]!, this.#numReceived[r]!);
        for (let index = this.#numReceived[r]! + 1; index <= last; index++) this.#deliverSlot(r, index, index * this.#S + r);
      }
      return;
    }
    for (const seq of trimDeliveries(this.#deliveredNum, trim)) {
      const r = seq % this.#S, index = Math.floor(seq / this.#S);
      if (!goesOn && index > this.#numReceived[r]!) return;
      this.#deliveredNum = seq;
      this.#deliverSlot(r, index, seq);
    }
  }

  /**
   * After #deliverTrim: this member's messages the view did not deliver — its own beyond the trim,
   * then those still queued — to be sent again, in order, in the next view. The channel is closed after.
   */
  #takeUnsent(trim: readonly number[]): Outgoing[] {
    const out: Outgoing[] = [];
    if (this.rank >= 0) {
      const arena = this.#p.arena;
      const bodies = this.#largeBodies[this.rank]!;
      for (let index = trim[this.rank]! + 1; index < this.#nextIndex; index++) {
        const at = this.#slotsAt[this.rank]! + (index % this.#W) * this.#slotBytes;
        const w = at >> 2;
        const kind = arena.u32[w + 3]!;
        if (kind === SlotKind.NULL) continue;
        const bytes = kind === SlotKind.LARGE ? bodies.shift()! : arena.u8.slice(at + SLOT_HEADER_BYTES, at + SLOT_HEADER_BYTES + arena.u32[w + 2]!);
        out.push({ bytes, large: kind === SlotKind.LARGE, carried: false, resolve: () => {}, reject: () => {} });
      }
    }
    for (const m of this.#queue.splice(0)) out.push({ ...m, carried: false });
    this.#queuedBytes = 0;
    this.#closed = true;
    return out;
  }

  /**
   * @internal The end of the view, by a committed change's trims (per subgroup, per shard): delivers up to
   * this shard's trim (`goesOn`: this member is in the next view; see #deliverTrim). Returns this member's
   * messages to send again in the next view, and — raw mode, which delivers on receipt — how many messages
   * of each sender beyond the trim it delivered already: the sender sends those again too, and this member
   * must pass over that many of its first ones.
   */
  finishView(trims: readonly (readonly (readonly number[])[])[], goesOn = true): { unsent: Outgoing[]; deliveredBeyond: Map<number, number> } {
    const trim = trims[this.subgroupIndex]![this.#p.shardIndex]!;
    const deliveredBeyond = new Map<number, number>();
    if (this.mode === 'raw') {
      this.#senderIds.forEach((id, r) => {
        const beyond = this.#numReceived[r]! - trim[r]!;
        if (beyond > 0) deliveredBeyond.set(id, beyond); // its own too: raw delivers them at once
      });
    }
    this.#deliverTrim(trim, goesOn);
    return { unsent: this.#takeUnsent(trim), deliveredBeyond };
  }

  /** @internal Messages of the previous view to send first (finishView there). */
  sendFirst(messages: readonly Outgoing[]): void {
    this.#queue.unshift(...messages);
    for (const m of messages) this.#queuedBytes += m.bytes.byteLength;
    if (messages.length > 0) this.#p.schedule();
  }

  /** @internal Stops the shard for good (a partitioned member): sends reject with `error`, nothing more is delivered. */
  stop(error: Error): void {
    this.#failure = error;
    this.#queuedBytes = 0;
    for (const m of this.#queue.splice(0)) m.reject(error);
  }

  /** @internal */
  close(): void {
    this.#closed = true;
    const error = new ClosedError('this group');
    this.#queuedBytes = 0;
    for (const m of this.#queue.splice(0)) m.reject(error);
  }

  #sendQueued(): void {
    const minDelivered = this.#minDelivered();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.large && !head.carried) { this.#carry(head); return; }
      if (!this.#windowOpen(minDelivered)) return;
      this.#queue.shift();
      this.#queuedBytes -= head.bytes.byteLength;
      // Our own large message is delivered here from a copy: RDMC's buffer takes the next one meanwhile, and
      // the caller may reuse its bytes once send() resolves.
      if (head.large) this.#largeBodies[this.rank]!.push(head.bytes.slice());
      this.#commit(head.large ? SlotKind.LARGE : SlotKind.DATA, head.bytes);
      head.resolve();
    }
  }

  /** Starts RDMC on a large message at the head of the queue. */
  #carry(m: Outgoing): void {
    if (this.#rdmcBusy) return;
    const group = this.#p.rdmc[this.rank];
    assert(group, 'a large message without an RDMC group');
    this.#rdmcBusy = true;
    group.send(m.bytes).then(() => {
      this.#rdmcBusy = false;
      if (this.#closed) return; // the view ended meanwhile: the message went to the next one
      m.carried = true;
      this.#p.schedule();
    }, () => {
      // A member failed: the view change that follows wedges this shard and sends the message again in the
      // next view; until then the next step tries again.
      this.#rdmcBusy = false;
    });
  }

  /** Writes our next message (or null) into its slot; pushed by the next #push. */
  #commit(kind: SlotKind, payload?: Uint8Array): void {
    const index = this.#nextIndex++;
    const at = this.#slotsAt[this.rank]! + (index % this.#W) * this.#slotBytes;
    const arena = this.#p.arena;
    const bytes = payload ? payload.byteLength : 0;
    if (kind === SlotKind.DATA) arena.u8.set(payload!, at + SLOT_HEADER_BYTES); // LARGE: the bytes went by RDMC
    else if (kind === SlotKind.NULL) this.nullsSent++;
    const w = at >> 2;
    arena.u32[w] = index >>> 0;
    arena.u32[w + 1] = Math.floor(index / TWO_32);
    arena.u32[w + 2] = bytes;
    arena.u32[w + 3] = kind;
  }

  /** Whether our next index may take its slot: everyone delivered the message that used it before. */
  #windowOpen(minDelivered: number): boolean {
    const index = this.#nextIndex;
    if (index < this.#W) return true;
    if (this.mode === 'raw') return minDelivered >= index - this.#W; // raw: received from us, per member
    return minDelivered >= (index - this.#W) * this.#S + this.rank;
  }

  /** Ordered: the lowest deliveredNum in the shard. Raw: the lowest count of our messages received. */
  #minDelivered(): number {
    let min = this.mode === 'raw' ? this.#numReceived[this.rank] ?? -1 : this.#deliveredNum;
    for (const row of this.#rows) {
      if (row === this.#selfRow) continue;
      const base = this.#p.layout.rowOffset(row);
      const v = this.mode === 'raw' ? this.#readI64(base + this.#numReceivedCol + this.rank * 8) : this.#readI64(base + this.#deliveredCol);
      if (v < min) min = v;
    }
    this.#minDeliveredSeen = min;
    return min;
  }

  #receiveOrdered(): void {
    this.#readIndexes();
    if (this.rank >= 0 && this.#queue.length === 0 && !this.#sentSinceStep) {
      // Idle (nothing queued, nothing sent since the last step — a sender mid-burst fills its turn with
      // messages a moment later): fill the round robin with nulls up to where the others are, as far as
      // the window allows.
      const target = nullTarget(this.rank, this.#numReceived);
      if (this.#nextIndex < target) {
        const minDelivered = this.#minDelivered();
        while (this.#nextIndex < target && this.#windowOpen(minDelivered)) this.#commit(SlotKind.NULL);
        this.#numReceived[this.rank] = this.#nextIndex - 1;
      }
    }
    const seqNum = receivePrefix(this.#numReceived);
    if (seqNum !== this.#seqNum) { this.#seqNum = seqNum; this.#controlDirty = true; }
    let stable = seqNum;
    for (const row of this.#rows) {
      if (row === this.#selfRow) continue;
      const v = this.#readI64(this.#p.layout.rowOffset(row) + this.#seqNumCol);
      if (v < stable) stable = v;
    }
    if (stable <= this.#deliveredNum || !this.#onDeliver) return;
    const S = this.#S;
    for (let seq = this.#deliveredNum + 1; seq <= stable; seq++) {
      this.#deliveredNum = seq; // before the upcall: an upcall that throws does not see its message again
      this.#deliverSlot(seq % S, Math.floor(seq / S), seq);
    }
    this.#controlDirty = true;
  }

  #receiveRaw(): void {
    if (!this.#onDeliver) return; // hold everything (and so the window) until there is an upcall
    const before = this.#numReceived.slice();
    this.#readIndexes();
    for (let r = 0; r < this.#S; r++) {
      for (let index = before[r]! + 1; index <= this.#numReceived[r]!; index++) this.#deliverSlot(r, index, index * this.#S + r);
      if (this.#numReceived[r] !== before[r]) this.#controlDirty = true;
    }
  }

  /** numReceived[r] = index_r − 1: the slots named by a sender's index are here before the index. */
  #readIndexes(): void {
    for (let r = 0; r < this.#S; r++) {
      this.#numReceived[r] = r === this.rank ? this.#nextIndex - 1 : this.#readI64(this.#p.layout.rowOffset(this.#senderRows[r]!) + this.#indexCol) - 1;
    }
  }

  #deliverSlot(rank: number, index: number, seq: number): void {
    const arena = this.#p.arena;
    const at = this.#slotsAt[rank]! + (index % this.#W) * this.#slotBytes;
    const w = at >> 2;
    if (arena.u32[w] !== index >>> 0) assert(false, `slot ${index % this.#W} of sender ${this.#senderIds[rank]} holds index ${arena.u32[w]}, expected ${index}`);
    const kind = arena.u32[w + 3]!;
    if (kind === SlotKind.NULL) return;
    const bytes = arena.u32[w + 2]!;
    let payload: Uint8Array;
    if (kind === SlotKind.LARGE) {
      const body = this.#largeBodies[rank]!.shift();
      assert(body && body.byteLength === bytes, `large message ${index} of sender ${this.#senderIds[rank]}: RDMC body missing or of the wrong size`);
      payload = body;
    } else {
      payload = arena.u8.subarray(at + SLOT_HEADER_BYTES, at + SLOT_HEADER_BYTES + bytes);
    }
    this.delivered++;
    this.#onDeliver!(this.#senderIds[rank]!, this.#vidBase + BigInt(seq), payload);
  }

  #push(): void {
    const arena = this.#p.arena;
    const written = this.#nextIndex - this.#pushedIndex;
    if (written > 0) {
      const i64 = arena.i64;
      Atomics.store(i64, this.#indexAt >> 3, BigInt(this.#nextIndex));
      const column = this.#slotsAt[this.rank]!;
      const first = this.#pushedIndex % this.#W;
      const count = Math.min(written, this.#W);
      const end = first + count;
      // The slots written since the last push: one range, or two when they wrap around the ring.
      if (count === this.#W) this.#range(column, this.#W * this.#slotBytes);
      else if (end <= this.#W) this.#range(column + first * this.#slotBytes, count * this.#slotBytes);
      else {
        this.#range(column + first * this.#slotBytes, (this.#W - first) * this.#slotBytes);
        this.#range(column, (end - this.#W) * this.#slotBytes);
      }
      this.#range(this.#indexAt, 8); // behind its slots on the same lane: a receiver that sees it has them
      this.#pushedIndex = this.#nextIndex;
      this.#controlDirty = true; // our own numReceived moved with it
    }
    const acks = this.#controlDirty;
    if (acks) {
      const i64 = arena.i64;
      for (let r = 0; r < this.#S; r++) Atomics.store(i64, (this.#numReceivedAt >> 3) + r, BigInt(this.#numReceived[r]!));
      Atomics.store(i64, this.#seqNumAt >> 3, BigInt(this.#seqNum));
      Atomics.store(i64, this.#deliveredAt >> 3, BigInt(this.#deliveredNum));
      this.#controlDirty = false;
    }
    if (this.#rangeCount === 0 && !acks) return;
    // Per peer: the slots and index in one send on the data lane, the acknowledgements on the control lane.
    const [ackAt, ackBytes] = this.#ackSpan;
    for (const id of this.members) {
      if (id === this.memberId) continue;
      if (this.#rangeCount > 0) this.#p.fabric.writeBatch(id, this.#ranges, this.#rangeCount, Lane.Data);
      if (acks) this.#p.fabric.write(id, ackAt, ackBytes, Lane.Control);
    }
    this.#rangeCount = 0;
  }

  #range(offset: number, length: number): void {
    this.#ranges[2 * this.#rangeCount] = offset;
    this.#ranges[2 * this.#rangeCount + 1] = length;
    this.#rangeCount++;
  }

  #readI64(at: number): number {
    return Number(Atomics.load(this.#p.arena.i64, at >> 3));
  }
}
