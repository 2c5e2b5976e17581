// The receive and deliver side of one shard at one member (DESIGN.md §4): it reads each sender's `index`
// (numReceived[r] = index_r − 1: a slot arrives before the index that names it), computes the receive
// prefix (seqNum), the stability frontier (min seqNum over the shard) and delivers every message up to it
// straight from the sender's slot in the local table; raw mode delivers each message as it arrives, in its
// sender's order. At the end of a view it delivers exactly up to the ragged trim (deliverTrim). The numbers
// — receipt, the prefix, stability — come from the shard kernels through control.ts (ShardControl); this
// side keeps a copy of numReceived and does what needs the upcall.
//
// Its counters leave in this member's row (storeAcks; ts/multicast/shard.ts pushes them on the control lane)
// and land in the others' copies, where their send sides read them for the window. Paired assertions: every
// counter stored only grows and deliveredNum ≤ seqNum when it leaves, and grows where it is read back; our own
// slots hold the index we expect. A peer's slot is the peer's input: counted only once its header passed
// (control.ts, receipt), it is checked again before it is delivered — the peer may rewrite it meanwhile — and
// a slot that no longer holds its message, or a LARGE one whose RDMC body is missing, stops delivery before
// it and reports the sender (ShardControl.slotMisbehaved); so do more RDMC bodies waiting from one sender than
// its window lets it have in flight (W + 1).

import { assert, assertAtMost, assertEqual, assertMonotonic, fail } from '../assert.js';
import type { RdmcGroup } from '../rdmc/node.js';
import { trimDeliveries } from '../membership/view-change.js';
import type { ShardControl } from './control.js';
import type { LatencySampler } from './latency.js';
import { receivePrefix } from './ordering.js';
import type { ShardTable } from './shard-table.js';
import { SlotKind, slotHeaderAllowed, slotIndex, slotKind, slotLength, slotPayload } from './slots.js';

export type DeliverHandler = (sender: number, version: bigint, bytes: Uint8Array) => void;

export class ShardReceiver {
  /** Messages delivered here (nulls not counted; for tests and benchmarks). */
  delivered = 0;
  /** Told when our own timed message is delivered (latency.ts); set by the shard. */
  latency: LatencySampler | null = null;
  /** Told when a sender is found misbehaving outside a step (an RDMC body too many): the shard steps soon. */
  nudge: (() => void) | null = null;
  /** Per sender rank: the highest index received, every lower one too (−1 before the first). */
  readonly numReceived: number[];
  /** The bodies of LARGE messages, per sender rank, in index order, waiting for their slot's delivery. */
  readonly largeBodies: Uint8Array[][];
  readonly #t: ShardTable;
  /** The decisions (receipt, prefix, stability) by the shard kernels: control.ts. */
  readonly #c: ShardControl;
  readonly #mode: 'ordered' | 'raw';
  readonly #rank: number;
  readonly #senderIds: readonly number[];
  readonly #vidBase: bigint;
  #seqNum = -1;
  #deliveredNum = -1;
  /** Our counters changed since they were last stored in our row (and pushed). */
  #controlDirty = true;
  #onDeliver: DeliverHandler | null = null;
  /** Raw mode: numReceived before this step's reads. */
  readonly #before: number[];
  /** numReceived (S), seqNum, deliveredNum as last stored in our row: they only grow. */
  readonly #stored: Float64Array;

  constructor(table: ShardTable, control: ShardControl, mode: 'ordered' | 'raw', rank: number,
    senderIds: readonly number[], vid: number, rdmc: ReadonlyArray<RdmcGroup | null>) {
    this.#t = table;
    this.#c = control;
    this.#mode = mode;
    this.#rank = rank;
    this.#senderIds = senderIds;
    this.#vidBase = BigInt(vid) << 32n;
    this.numReceived = new Array<number>(table.S).fill(-1);
    this.#before = new Array<number>(table.S).fill(-1);
    this.#stored = new Float64Array(table.S + 2).fill(-1);
    this.largeBodies = senderIds.map(() => []);
    rdmc.forEach((group, r) => {
      if (!group || r === rank) return;
      // The bytes of a sender's LARGE messages arrive here in its index order; the slot that orders each
      // comes after RDMC acknowledged it everywhere, so the body is always here first. An honest sender has
      // at most W + 1 waiting here: W committed and not delivered here (the window), and one carried that
      // waits for the window to take its slot. More is the sender misbehaving: dropped, and it is reported.
      group.on('message', (bytes) => {
        const bodies = this.largeBodies[r]!;
        if (bodies.length <= table.W) {
          bodies.push(bytes.slice());
        } else {
          this.#c.slotMisbehaved(r);
          this.nudge?.(); // outside a step: the next one reports it
        }
      });
    });
  }

  get seqNum(): number { return this.#seqNum; }
  get deliveredNum(): number { return this.#deliveredNum; }
  get hasUpcall(): boolean { return this.#onDeliver !== null; }
  set onDeliver(handler: DeliverHandler) { this.#onDeliver = handler; }

  /**
   * numReceived[r] = index_r − 1 for every sender; our own from `nextIndex` (our messages are here): the
   * receipt kernel stores them in our row, and they are read back here.
   */
  readIndexes(nextIndex: number): void {
    const c = this.#c;
    c.receipt(nextIndex);
    for (let r = 0; r < c.S; r++) {
      const received = c.numReceived(r);
      assertMonotonic(this.numReceived[r]!, received, 'numReceived (a sender\'s index, where it lands)');
      this.numReceived[r] = received;
    }
  }

  /** Our own messages up to `nextIndex` are received (after nulls: see ShardChannel#receiveOrdered). */
  receivedOwn(nextIndex: number): void {
    this.numReceived[this.#rank] = nextIndex - 1;
    this.#c.receivedOwn(nextIndex);
  }

  /** Ordered: the receive prefix, the stability frontier, and delivery of every message up to it. */
  deliverOrdered(): void {
    const t = this.#t, c = this.#c;
    const seqNum = c.prefix();
    if (seqNum !== this.#seqNum) {
      assertMonotonic(this.#seqNum, seqNum, 'seqNum (the receive prefix)');
      this.#seqNum = seqNum;
      this.#controlDirty = true;
    }
    if (this.deliverThrough(c.stable(seqNum))) this.#controlDirty = true;
  }

  /**
   * Ordered: delivers every message up to `stable` not delivered yet, stopping before a peer's slot that no
   * longer holds its message (see the top); true when it delivered any.
   */
  deliverThrough(stable: number): boolean {
    const before = this.#deliveredNum;
    if (stable <= before || !this.#onDeliver) return false;
    const S = this.#t.S;
    for (let seq = before + 1; seq <= stable; seq++) {
      if (!this.#deliverSlot(seq % S, Math.floor(seq / S), seq)) break;
    }
    return this.#deliveredNum > before;
  }

  /**
   * The worker engine: numReceived and seqNum as the predicate worker left them in our row (it is their
   * writer there), and deliveredNum stored in our row (this thread is its writer; the worker pushes it).
   */
  readFromRow(): void {
    const t = this.#t, c = this.#c;
    for (let r = 0; r < t.S; r++) {
      const received = c.numReceived(r);
      assertMonotonic(this.numReceived[r]!, received, 'numReceived (as the worker stored it)');
      this.numReceived[r] = received;
    }
    const seqNum = t.readI64(t.seqNumAt);
    assertMonotonic(this.#seqNum, seqNum, 'seqNum (as the worker stored it)');
    this.#seqNum = seqNum;
  }

  /** The worker engine: stores deliveredNum in our row (the worker pushes it with its acknowledgements). */
  storeDelivered(): void {
    const t = this.#t, stored = this.#stored, S = t.S;
    assertMonotonic(stored[S + 1]!, this.#deliveredNum, 'deliveredNum (where it leaves)');
    stored[S + 1] = this.#deliveredNum;
    t.writeI64(t.deliveredAt, this.#deliveredNum);
  }

  /** Raw: reads the indexes and delivers what arrived, in each sender's order. */
  receiveRaw(nextIndex: number): void {
    if (!this.#onDeliver) return; // hold everything (and so the window) until there is an upcall
    const S = this.#t.S, before = this.#before;
    for (let r = 0; r < S; r++) before[r] = this.numReceived[r]!;
    this.readIndexes(nextIndex);
    for (let r = 0; r < S; r++) {
      for (let index = before[r]! + 1; index <= this.numReceived[r]!; index++) {
        if (!this.#deliverSlot(r, index, index * S + r)) break; // the sender is reported: no more of it
      }
      if (this.numReceived[r] !== before[r]) this.#controlDirty = true;
    }
  }

  /** Our index moved, and our numReceived with it: the acknowledgements go out with the next push. */
  markDirty(): void { this.#controlDirty = true; }

  /**
   * Stores numReceived, seqNum and deliveredNum in our row when they changed; true when it did (then they
   * are pushed). Where our counters leave: each only grows, and deliveredNum ≤ seqNum.
   */
  storeAcks(): boolean {
    if (!this.#controlDirty) return false;
    const t = this.#t, S = t.S, stored = this.#stored;
    for (let r = 0; r < S; r++) {
      const v = this.numReceived[r]!;
      assertMonotonic(stored[r]!, v, 'numReceived (where it leaves)');
      stored[r] = v;
      t.writeI64(t.numReceivedAt + 8 * r, v);
    }
    assertMonotonic(stored[S]!, this.#seqNum, 'seqNum (where it leaves)');
    assertMonotonic(stored[S + 1]!, this.#deliveredNum, 'deliveredNum (where it leaves)');
    assertAtMost(this.#deliveredNum, this.#seqNum, 'deliveredNum ≤ seqNum (where they leave)');
    stored[S] = this.#seqNum;
    stored[S + 1] = this.#deliveredNum;
    t.writeI64(t.seqNumAt, this.#seqNum);
    t.writeI64(t.deliveredAt, this.#deliveredNum);
    this.#controlDirty = false;
    return true;
  }

  /**
   * Delivers up to `trim` (per sender rank, the highest index every member of the next view received)
   * what was not delivered yet, in order. A member that goes on to the next view holds every message
   * inside it (the trim is the least any of them received); one that does not (it leaves, or was removed)
   * may lack some — the trim was not computed from its counters — and delivers only the prefix it holds.
   */
  deliverTrim(trim: readonly number[], goesOn: boolean): void {
    if (!this.#onDeliver) return;
    const S = this.#t.S;
    if (this.#mode === 'raw') {
      for (let r = 0; r < S; r++) {
        const last = goesOn ? trim[r]! : Math.min(trim[r]!, this.numReceived[r]!);
        for (let index = this.numReceived[r]! + 1; index <= last; index++) {
          if (!this.#deliverSlot(r, index, index * S + r)) break;
        }
      }
      return;
    }
    for (const seq of trimDeliveries(this.#deliveredNum, trim)) {
      const r = seq % S, index = Math.floor(seq / S);
      if (!goesOn && index > this.numReceived[r]!) return;
      if (!this.#deliverSlot(r, index, seq)) return;
    }
  }

  /**
   * Raw mode, at the end of a view: per sender id, how many of its messages beyond the trim this member
   * delivered already (raw delivers on receipt; its own too). The sender sends them again in the next view.
   */
  deliveredBeyond(trim: readonly number[]): Map<number, number> {
    const out = new Map<number, number>();
    this.#senderIds.forEach((id, r) => {
      const beyond = this.numReceived[r]! - trim[r]!;
      if (beyond > 0) out.set(id, beyond);
    });
    return out;
  }

  /**
   * Throws when the receive side is inconsistent: every numReceived ≥ −1; ordered, while the view runs
   * (`open`), deliveredNum ≤ seqNum ≤ the receive prefix of numReceived; raw numbers no sequence.
   */
  invariants(open: boolean): void {
    for (const n of this.numReceived) assert(Number.isInteger(n) && n >= -1, 'numReceived is an index or −1');
    if (this.#mode === 'raw') {
      assertEqual(this.#seqNum, -1, 'seqNum in raw mode');
      assertEqual(this.#deliveredNum, -1, 'deliveredNum in raw mode');
      return;
    }
    assert(this.#deliveredNum >= -1 && this.#seqNum >= -1, 'deliveredNum and seqNum are sequence numbers or −1');
    if (!open) return; // the end of a view delivers up to the trim, past the frozen seqNum
    assertAtMost(this.#deliveredNum, this.#seqNum, 'deliveredNum ≤ seqNum');
    assertAtMost(this.#seqNum, receivePrefix(this.numReceived), 'seqNum ≤ the receive prefix of numReceived');
  }

  /**
   * The slot reader: delivers message `index` of sender `rank` (ordered: deliveredNum = seq first, so an
   * upcall that throws does not see its message again), nulls skipped. The header is read once and checked:
   * false, nothing delivered, when a peer's slot does not hold the message (the sender is reported); our own
   * slots always do (an assertion, the pair of the sender's write).
   */
  #deliverSlot(rank: number, index: number, seq: number): boolean {
    const t = this.#t, arena = t.arena;
    const at = t.slotAt(rank, index);
    const held = slotIndex(arena, at), kind = slotKind(arena, at), bytes = slotLength(arena, at);
    if (held !== index || !slotHeaderAllowed(kind, bytes, t.maxPayload, t.maxLargeBytes)) {
      return this.#badSlot(rank, `slot ${index % t.W} holds index ${held}, kind ${kind}, ${bytes} bytes; ` +
        `expected index ${index}`);
    }
    let payload: Uint8Array | null = null;
    if (kind === SlotKind.LARGE) {
      const bodies = this.largeBodies[rank]!;
      if (bodies.length === 0 || bodies[0]!.byteLength !== bytes) {
        return this.#badSlot(rank, `large message ${index}: RDMC body missing or of the wrong size`);
      }
      payload = bodies.shift()!;
    } else if (kind === SlotKind.DATA) {
      payload = slotPayload(arena, at, bytes);
    }
    if (this.#mode === 'ordered') this.#deliveredNum = seq;
    if (payload === null) return true; // a null: takes its sequence number, never delivered
    this.delivered++;
    const latency = this.latency;
    if (latency !== null && index === latency.index && rank === this.#rank) latency.delivered();
    this.#onDeliver!(this.#senderIds[rank]!, this.#vidBase + BigInt(seq), payload);
    return true;
  }

  /** A slot that does not hold what it should: a peer's is reported (false); ours is a bug here. */
  #badSlot(rank: number, what: string): false {
    if (rank === this.#rank) fail(`our own ${what}`);
    this.#c.slotMisbehaved(rank); // reported at the end of this step (no nudge: a step that nudged itself would spin)
    return false;
  }
}
