// The send side of one shard at one member (DESIGN.md §4): this member as sender rank r writes its messages
// into the W slots of its own row — DATA with the payload in the slot, LARGE once RDMC carried the body to
// every member, NULL to keep the round robin moving — as far as the window allows, and stages the push of
// the slots written since the last push, then `index`, which names them (ts/multicast/shard.ts pushes them
// on the data lane). A member that does not send has rank −1 and commits nothing.
//
// The window: index i may take slot i mod W once every member delivered the message that used the slot
// before — ordered, deliveredNum ≥ (i − W)·S + r at every member; raw, every member received index i − W.
// The slot index written here is read back by every receiver (receiver.ts), which checks it is the index
// it expects; here the sender checks that the slot it overwrites held the message one window back.

import { assert, assertEqual, assertMonotonic, fail } from '../assert.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import type { RdmcGroup } from '../rdmc/node.js';
import type { ShardControl } from './control.js';
import type { LatencySampler } from './latency.js';
import type { Outgoing, SendQueue } from './send-queue.js';
import type { ShardTable } from './shard-table.js';
import { SlotKind, copySlotPayload, slotIndex, slotKind, writeSlot } from './slots.js';

export interface SenderParts {
  table: ShardTable;
  mode: 'ordered' | 'raw';
  /** This member's sender rank, −1 when it does not send. */
  rank: number;
  /** The RDMC group this member sends its LARGE messages in (rank 0 of it is this member), or null. */
  rdmc: RdmcGroup | null;
  /** This member's own counter the window counts: ordered its deliveredNum, raw its numReceived of ours. */
  ownWindowCounter: () => number;
  /** Keeps the body of our own LARGE message for its delivery here (the receive side's largeBodies). */
  keepLargeBody: (bytes: Uint8Array) => void;
  /** The window's minimum, by the shard kernels (control.ts). */
  control: ShardControl;
  /** Asks the owner for a step soon (after the current JS turn). */
  schedule: () => void;
  /** The view ended (the shard closed): a body RDMC carries now belongs to the next view. */
  closed: () => boolean;
  /** Times a sample of our sends (latency.ts): told when the timed one takes its slot and is pushed. None in
   *  the worker engine's worker (the main thread times them). */
  latency?: LatencySampler | null;
}

export class ShardSender {
  readonly rank: number;
  /** Nulls this member sent (for tests and benchmarks). */
  nullsSent = 0;
  readonly #p: SenderParts;
  readonly #t: ShardTable;
  /** Raw mode, the window and the senders, copied from the parts: the send path reads them per message. */
  readonly #raw: boolean;
  readonly #W: number;
  readonly #S: number;
  /** Messages committed to our slots, and of those the ones pushed. */
  #nextIndex = 0;
  #pushedIndex = 0;
  #rdmcBusy = false;
  /** This step's data-lane push: [offset, length] of at most two slot ranges, and of index. */
  readonly #ranges = new Float64Array(6);
  #rangeCount = 0;
  readonly #latency: LatencySampler | null;

  constructor(parts: SenderParts) {
    this.#latency = parts.latency ?? null;
    this.#p = parts;
    this.#t = parts.table;
    this.rank = parts.rank;
    this.#raw = parts.mode === 'raw';
    this.#W = parts.table.W;
    this.#S = parts.table.S;
  }

  get nextIndex(): number { return this.#nextIndex; }
  get pushedIndex(): number { return this.#pushedIndex; }
  /** The last minimum the window was checked against; it only grows. */
  get minDeliveredSeen(): number { return this.#p.control.windowMinSeen; }
  get rdmcBusy(): boolean { return this.#rdmcBusy; }
  /** Slots per sender. */
  get windowSize(): number { return this.#W; }

  /** Of our messages, those not yet stable (ordered: delivered everywhere; raw: received everywhere), given the
   *  shard's `minDelivered`: the slots of the window in use; at windowSize the window is full. */
  inFlight(minDelivered: number): number {
    const stable = this.#raw ? minDelivered + 1
      : minDelivered < this.rank ? 0 : Math.floor((minDelivered - this.rank) / this.#S) + 1;
    return Math.max(0, this.#nextIndex - stable);
  }

  /** Whether our next index may take its slot: everyone delivered the message that used it before. */
  windowOpen(minDelivered: number): boolean {
    const index = this.#nextIndex;
    const W = this.#W;
    if (index < W) return true;
    if (this.#raw) return minDelivered >= index - W; // raw: received from us, per member
    return minDelivered >= (index - W) * this.#S + this.rank;
  }

  /** Ordered: the lowest deliveredNum in the shard. Raw: the lowest count of our messages received. */
  minDelivered(): number {
    // Every member's count only grows: a smaller minimum means a counter went back, or was misread (checked
    // in windowMin).
    return this.#p.control.windowMin(this.#p.ownWindowCounter());
  }

  /**
   * Takes over the indexes another thread left in the shard's shared words (the worker engine: whoever
   * holds the shard's LOCK commits and pushes, starting where the other stopped).
   */
  adopt(nextIndex: number, pushedIndex: number): void {
    assertMonotonic(this.#nextIndex, nextIndex, 'nextIndex (taken over from the shard\'s words)');
    this.#nextIndex = nextIndex;
    this.#pushedIndex = pushedIndex;
  }

  /** Commits queued messages into free slots, in order; a LARGE one once RDMC carried it (see carry). */
  sendQueued(queue: SendQueue): void {
    const minDelivered = this.minDelivered(), latency = this.#latency;
    while (queue.length > 0) {
      const head = queue.head!;
      if (head.large && !head.carried) { this.#carry(head); return; }
      if (!this.windowOpen(minDelivered)) return;
      queue.shift();
      // Our own large message is delivered here from a copy: RDMC's buffer takes the next one meanwhile, and
      // the caller may reuse its bytes once send() resolves.
      if (head.large) this.#p.keepLargeBody(head.bytes.slice());
      this.commit(head.large ? SlotKind.LARGE : SlotKind.DATA, head.bytes);
      if (latency !== null && head === latency.waiting) latency.committed(this.#nextIndex - 1);
      head.resolve();
    }
  }

  /** Nulls up to index `target`, as far as the window allows (an idle sender keeps the round robin going). */
  fillNulls(target: number): void {
    const minDelivered = this.minDelivered();
    while (this.#nextIndex < target && this.windowOpen(minDelivered)) this.commit(SlotKind.NULL);
  }

  /** Writes our next message (or a null) into its slot; pushed by the next stageWrites. */
  commit(kind: SlotKind, payload?: Uint8Array): void {
    const index = this.#nextIndex++;
    const t = this.#t, W = this.#W;
    const at = t.slotAt(this.rank, index);
    // The slot held the message one window back (or nothing yet): the window let every member deliver it.
    if (index >= W && slotIndex(t.arena, at) !== index - W) this.#slotReused(index, slotIndex(t.arena, at));
    if (kind === SlotKind.NULL) this.nullsSent++;
    if (kind === SlotKind.LARGE) writeSlot(t.arena, at, index, kind, undefined, payload!.byteLength);
    else writeSlot(t.arena, at, index, kind, payload);
  }

  /** Pushes what stageWrites() stages to each of `peers` on the data lane, one batch each; ranges pushed. */
  pushWrites(fabric: Pick<TableFabric, 'writeBatch'>, peers: readonly number[]): number {
    const ranges = this.stageWrites();
    if (ranges > 0) for (const id of peers) fabric.writeBatch(id, this.#ranges, ranges, Lane.Data);
    this.#latency?.pushed(this.#pushedIndex); // (the worker engine's worker may have pushed them: then too)
    return ranges;
  }

  /**
   * Stages this step's data-lane push: stores `index` in our row and returns how many ranges (slots
   * written since the last push, one or two as they wrap around the ring, then index) are in `ranges`.
   */
  stageWrites(): number {
    this.#rangeCount = 0;
    const written = this.#nextIndex - this.#pushedIndex;
    if (written <= 0) return 0;
    const t = this.#t, W = t.W, slotBytes = t.slotBytes;
    t.writeI64(t.indexAt, this.#nextIndex);
    const column = t.slotsAt[this.rank]!;
    const first = this.#pushedIndex % W;
    const count = Math.min(written, W);
    const end = first + count;
    if (count === W) this.#range(column, W * slotBytes);
    else if (end <= W) this.#range(column + first * slotBytes, count * slotBytes);
    else {
      this.#range(column + first * slotBytes, (W - first) * slotBytes);
      this.#range(column, (end - W) * slotBytes);
    }
    this.#range(t.indexAt, 8); // behind its slots on the same lane: a receiver that sees it has them
    this.#pushedIndex = this.#nextIndex;
    return this.#rangeCount;
  }

  /**
   * Our messages from index `from` on, as they are in our slots (LARGE ones from `bodies`, the copies kept
   * for delivery here), to send again in the next view. Nulls are dropped: the next view numbers anew.
   * `from` comes from a trim a peer published: it is clamped to the messages our slots still hold (the last
   * W, from nextIndex − W) and to those we committed, so no trim makes us read outside our slot column.
   */
  unsentFrom(from: number, bodies: Uint8Array[]): Outgoing[] {
    const out: Outgoing[] = [];
    const t = this.#t;
    const first = Math.min(Math.max(from, this.#nextIndex - t.W, 0), this.#nextIndex);
    for (let index = first; index < this.#nextIndex; index++) {
      const at = t.slotAt(this.rank, index);
      const kind = slotKind(t.arena, at);
      if (kind === SlotKind.NULL) continue;
      const bytes = kind === SlotKind.LARGE ? bodies.shift()! : copySlotPayload(t.arena, at);
      out.push({ bytes, large: kind === SlotKind.LARGE, carried: false, resolve: () => {}, reject: () => {} });
    }
    return out;
  }

  /**
   * Throws when the send side is inconsistent: pushed ≤ committed; our slots hold the last W messages we
   * committed; the last message we committed passed the window against the minimum we saw.
   */
  invariants(): void {
    const t = this.#t;
    assert(this.#pushedIndex <= this.#nextIndex, 'pushedIndex ≤ nextIndex');
    if (this.rank < 0) {
      assertEqual(this.#nextIndex, 0, 'messages committed by a member that does not send');
      return;
    }
    for (let index = Math.max(0, this.#nextIndex - t.W); index < this.#nextIndex; index++) {
      assertEqual(slotIndex(t.arena, t.slotAt(this.rank, index)), index, 'the index a slot of ours holds');
    }
    const last = this.#nextIndex - 1;
    if (last >= t.W) {
      const needed = this.#raw ? last - t.W : (last - t.W) * t.S + this.rank;
      assert(this.minDeliveredSeen >= needed, 'our last message was committed inside the window');
    }
  }

  /** Starts RDMC on a large message at the head of the queue. */
  #carry(m: Outgoing): void {
    if (this.#rdmcBusy) return;
    const group = this.#p.rdmc;
    assert(group, 'a large message without an RDMC group');
    this.#rdmcBusy = true;
    group.send(m.bytes).then(() => {
      this.#rdmcBusy = false;
      if (this.#p.closed()) return; // the view ended meanwhile: the message went to the next one
      m.carried = true;
      this.#p.schedule();
    }, () => {
      // A member failed: the view change that follows wedges this shard and sends the message again in the
      // next view; until then the next step tries again.
      this.#rdmcBusy = false;
    });
  }

  #range(offset: number, length: number): void {
    this.#ranges[2 * this.#rangeCount] = offset;
    this.#ranges[2 * this.#rangeCount + 1] = length;
    this.#rangeCount++;
  }

  #slotReused(index: number, held: number): never {
    const slot = index % this.#t.W;
    fail(`slot ${slot} of sender rank ${this.rank} held index ${held} when index ${index} took it`);
  }
}
