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
// counter stored only grows and deliveredNum ≤ seqNum when it leaves; every index and seqNum read from a
// peer's row only grows where it lands; a slot holds the index its reader expects.

import { assert, assertAtMost, assertEqual, assertMonotonic, fail } from '../assert.js';
import type { RdmcGroup } from '../rdmc/node.js';
import { trimDeliveries } from '../membership/view-change.js';
import type { ShardControl } from './control.js';
import type { LatencySampler } from './latency.js';
import { receivePrefix } from './ordering.js';
import type { ShardTable } from './shard-table.js';
import { SLOT_HEADER_BYTES, SlotKind, slotIndex, slotKind, slotLength, slotPayload } from './slots.js';

export type DeliverHandler = (sender: number, version: bigint, bytes: Uint8Array) => void;

export class ShardReceiver {
  /** Messages delivered here (nulls not counted; for tests and benchmarks). */
  delivered = 0;
  /** Told when our own timed message is delivered (latency.ts); set by the shard. */
  latency: LatencySampler | null = null;
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
      // comes after RDMC acknowledged it everywhere, so the body is always here first.
      group.on('message', (bytes) => { this.largeBodies[r]!.push(bytes.slice()); });
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

  /** Ordered: delivers every message up to `stable` not delivered yet; true when it delivered any. */
  deliverThrough(stable: number): boolean {
    if (stable <= this.#deliveredNum || !this.#onDeliver) return false;
    const S = this.#t.S;
    for (let seq = this.#deliveredNum + 1; seq <= stable; seq++) {
      this.#deliveredNum = seq; // before the upcall: an upcall that throws does not see its message again
      this.#deliverSlot(seq % S, Math.floor(seq / S), seq);
    }
    return true;
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
        this.#deliverSlot(r, index, index * S + r);
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
        for (let index = this.numReceived[r]! + 1; index <= last; index++) this.#deliverSlot(r, index, index * S + r);
      }
      return;
    }
    for (const seq of trimDeliveries(this.#deliveredNum, trim)) {
      const r = seq % S, index = Math.floor(seq / S);
      if (!goesOn && index > this.numReceived[r]!) return;
      this.#deliveredNum = seq;
      this.#deliverSlot(r, index, seq);
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

  /** The slot reader: checks the slot holds the index it expects (the pair of the sender's write). */
  #deliverSlot(rank: number, index: number, seq: number): void {
    const t = this.#t, arena = t.arena;
    const at = t.slotAt(rank, index);
    const held = slotIndex(arena, at);
    if (held !== index) this.#wrongSlot(rank, index, held);
    const kind = slotKind(arena, at);
    if (kind === SlotKind.NULL) return;
    const bytes = slotLength(arena, at);
    let payload: Uint8Array;
    if (kind === SlotKind.LARGE) {
      const body = this.largeBodies[rank]!.shift();
      if (!body || body.byteLength !== bytes) this.#wrongBody(rank, index);
      payload = body;
    } else {
      assertEqual(kind, SlotKind.DATA, 'the kind of a slot');
      assertAtMost(bytes, t.slotBytes - SLOT_HEADER_BYTES, 'the payload length of a slot');
      payload = slotPayload(arena, at, bytes);
    }
    this.delivered++;
    const latency = this.latency;
    if (latency !== null && index === latency.index && rank === this.#rank) latency.delivered();
    this.#onDeliver!(this.#senderIds[rank]!, this.#vidBase + BigInt(seq), payload);
  }

  #wrongSlot(rank: number, index: number, held: number): never {
    const slot = index % this.#t.W;
    fail(`slot ${slot} of sender ${this.#senderIds[rank]} holds index ${held}, expected ${index}`);
  }

  #wrongBody(rank: number, index: number): never {
    fail(`large message ${index} of sender ${this.#senderIds[rank]}: RDMC body missing or of the wrong size`);
  }
}
