// The control step of one shard at one member (DESIGN.md §4): the decisions the shard takes from its
// counters, evaluated by the WebAssembly shard kernels (assembly/shard.ts, receivePrefix in reduce.ts) over
// the table in the arena — receipt (numReceived from the senders' `index`, with the checks below), the null
// target, the receive prefix (seqNum), stability (the least seqNum of the shard) and the window's minimum (the
// least deliveredNum, or in raw mode the least numReceived of our messages).
//
// This is the one copy of that decision code: the member's shard (shard.ts, through receiver.ts and
// sender.ts) calls it on the thread that steps the shard, and the simulator (ts/sim) runs the same
// ShardControl over its own arenas — the kernels, not a model of them. The kernels hold no state; what
// ShardControl keeps is which peers it reported (below) and the geometry, written once: the shard's rows as a
// list in SHARD_ROWS (the senders' rows by rank, then the other members' rows), each sender's slot base, and
// the receipt kernel's bad-sender flags (zeroed for each view), which the kernels read.
//
// Who writes what: receipt stores numReceived straight into this member's row (its only writer is the
// thread stepping the shard) and its flags in SHARD_ROWS; everything else is read.
//
// What a peer wrote is input, checked where it is read (DESIGN.md §11; docs/security.md): a peer writes its
// own row of our table whenever it likes, and nothing it writes may crash, stall or grow this member.
//   - receipt: a sender's `index` may not go back, nor run further ahead than the window lets it — it used
//     index i only once every member, we too, delivered the message one window back, so index_r − 1 ≤
//     ⌊(our deliveredNum − r)/S⌋ + W (raw: ≤ our numReceived[r] + W) — and every slot it newly names must
//     hold its index with a header the rules allow (slots.ts, slotHeaderAllowed; the kernel applies the same
//     rules, and the receiver checks them again at delivery). numReceived never counts past a bad value: the
//     sender keeps its last good count, is flagged, and is counted no further in this view.
//   - stability and the window: a minimum of the peers' seqNum or window counters that went back below one
//     already used means a peer's counter went back; the minimum used stays the last good one.
// Either way the peer is reported (takeMisbehaved: rows, read by the thread that steps the shard, which
// suspects them) and the step goes on. The numbers are bounds derived from what this member itself published,
// so an honest peer, however slow, never trips them: a late value is an old value, never a smaller one.
// What this member computes itself — its own numReceived, seqNum, the minima it uses — only grows: those are
// assertions (a bug here), checked where they leave (receiver.ts) and by invariants().

import type { Arena } from '../arena.js';
import { assertMonotonic } from '../assert.js';
import { ConfigError } from '../errors.js';
import { SHARD_ROWS_BYTES, SHARD_ROWS_OFFSET } from '../generated/memory-map.js';
import { loadKernels, type Kernels, type ShardKernels } from '../kernels/kernels.js';
import { referenceKernels, referenceShardKernels } from '../kernels/reference.js';
import type { ShardTable } from './shard-table.js';

/** The kernels the control step calls: the shard kernels and the receive prefix. */
export type ControlKernels = ShardKernels & Pick<Kernels, 'receivePrefix'>;

/** The WebAssembly kernels over each arena, instantiated once per arena and thread. */
const kernelsByMemory = new WeakMap<WebAssembly.Memory, ControlKernels>();

/**
 * The kernels over `arena`: the WebAssembly ones (one instance per arena in this thread), or with
 * 'reference' their plain-TypeScript twins (the simulator may run either).
 */
export function controlKernels(arena: Arena, choice: 'wasm' | 'reference' = 'wasm'): ControlKernels {
  if (choice === 'reference') {
    return { ...referenceShardKernels(arena.memory), receivePrefix: referenceKernels(arena.memory).receivePrefix };
  }
  let k = kernelsByMemory.get(arena.memory);
  if (!k) {
    k = loadKernels(arena.memory);
    kernelsByMemory.set(arena.memory, k);
  }
  return k;
}

/** Hands out SHARD_ROWS to the shards of one view over one arena, in order. */
export class ShardRows {
  #next = SHARD_ROWS_OFFSET;
  #taken = 0;

  /** Shards handed rows so far: the next one's slot in SHARD_WORDS (ts/multicast/shard-words.ts). */
  get taken(): number { return this.#taken; }

  /**
   * Where a shard of `senders` senders and `peers` other members keeps its lists (ShardControl): its rows
   * (u32 × senders + peers), receipt's slot bases (u32 × senders) and bad-sender flags (u8 × senders, rounded
   * up to a 4-byte multiple).
   */
  take(senders: number, peers: number): number {
    const at = this.#next;
    const bytes = shardRowsBytes(senders, peers);
    if (at + bytes > SHARD_ROWS_OFFSET + SHARD_ROWS_BYTES) {
      throw new ConfigError(`this member's shards list more than SHARD_ROWS holds (${SHARD_ROWS_BYTES} bytes); ` +
        'use fewer or smaller shards per member');
    }
    this.#next = at + bytes;
    this.#taken++;
    return at;
  }
}

/** The bytes of SHARD_ROWS a shard of `senders` senders and `peers` other members takes (ShardRows.take). */
export function shardRowsBytes(senders: number, peers: number): number {
  return 4 * (senders + peers) + 4 * senders + Math.ceil(senders / 4) * 4;
}

export class ShardControl {
  readonly S: number;
  readonly rank: number;
  /** The least numReceived of our messages over the shard (raw) or deliveredNum (ordered), as last computed. */
  windowMinSeen = -1;
  /** The stable frontier as last computed: the least seqNum of the shard. */
  stableSeen = -1;
  readonly #k: ControlKernels;
  readonly #t: ShardTable;
  readonly #i64: BigInt64Array;
  readonly #raw: boolean;
  /**
   * SHARD_ROWS: the senders' rows by rank, then the other members' rows; then receipt's slot base per sender
   * rank (u32) and its flags (u8 per sender rank: 1 once it wrote a bad `index` or slot, then counted no
   * further in this view).
   */
  readonly #sendersAt: number;
  readonly #peersAt: number;
  readonly #slotsListAt: number;
  readonly #badAt: number;
  readonly #peers: number;
  /** The other members' seqNum and window counters as invariants() last read them: they only grow. */
  readonly #peerSeen: Float64Array;
  /** Our rank as the kernels take it: 2^32 − 1 for a member that does not send. */
  readonly #selfRank: number;
  /** Rows of peers found misbehaving and not taken yet by takeMisbehaved, and every row ever found. */
  #misbehaved: number[] = [];
  readonly #reported = new Set<number>();
  /** The window's column: deliveredNum, or (raw) numReceived[our rank]. */
  readonly #windowCol: number;

  constructor(table: ShardTable, mode: 'ordered' | 'raw', rank: number, rowsAt: number, kernels: ControlKernels) {
    this.#t = table;
    this.#k = kernels;
    this.#i64 = table.arena.i64;
    this.#raw = mode === 'raw';
    this.S = table.S;
    this.rank = rank;
    this.#selfRank = rank < 0 ? 0xffffffff : rank;
    this.#peers = table.peerRows.length;
    this.#sendersAt = rowsAt;
    this.#peersAt = rowsAt + 4 * table.S;
    this.#slotsListAt = this.#peersAt + 4 * this.#peers;
    this.#badAt = this.#slotsListAt + 4 * table.S;
    const u32 = table.arena.u32;
    table.senderRows.forEach((row, r) => { u32[(this.#sendersAt >> 2) + r] = row; });
    table.peerRows.forEach((row, i) => { u32[(this.#peersAt >> 2) + i] = row; });
    table.slotsAt.forEach((at, r) => { u32[(this.#slotsListAt >> 2) + r] = at; });
    table.arena.u8.fill(0, this.#badAt, this.#badAt + table.S);
    this.#peerSeen = new Float64Array(2 * this.#peers).fill(-1);
    this.#windowCol = this.#raw ? table.numReceivedCol + 8 * Math.max(0, rank) : table.deliveredCol;
  }

  /**
   * Receipt, by the shardReceipt kernel: numReceived[r] = index_r − 1 into our row for every sender whose
   * index and slots pass the checks at the top of this file (one that fails keeps its last good count and is
   * reported); ours from `nextIndex` (what we committed: our messages are here). True when an entry changed.
   */
  receipt(nextIndex: number): boolean {
    const t = this.#t;
    // The most an honest sender of rank r can have used: ⌊(deliveredNum − r)/S⌋ + W (raw: counted per sender).
    const delivered = this.#raw ? 0 : t.readI64(t.deliveredAt);
    const result = this.#k.shardReceipt(t.tableBase, t.rowStride, t.indexCol, this.#sendersAt, t.S, this.#selfRank,
      nextIndex, t.numReceivedAt, this.#slotsListAt, t.slotBytes, t.W, this.#raw ? 1 : 0, delivered, t.maxPayload,
      t.maxLargeBytes, this.#badAt);
    if (result >>> 16 !== 0) { // senders newly flagged: report them
      const u8 = t.arena.u8;
      for (let r = 0; r < this.S; r++) if (u8[this.#badAt + r] !== 0) this.misbehaved(t.senderRows[r]!);
    }
    return (result & 0xffff) !== 0;
  }

  /** Sender r wrote a bad `index` or slot: counted no further in this view, and reported. */
  #senderMisbehaved(r: number): void {
    this.#t.arena.u8[this.#badAt + r] = 1;
    this.misbehaved(this.#t.senderRows[r]!);
  }

  /** Sender r's slot for message `index` was rewritten after it was counted (receiver.ts): it is reported. */
  slotMisbehaved(r: number): void {
    if (r !== this.rank) this.#senderMisbehaved(r);
  }

  /** Reports the peer of table row `row` (once): takeMisbehaved hands it to the thread that suspects it. */
  misbehaved(row: number): void {
    if (this.#reported.has(row)) return;
    this.#reported.add(row);
    this.#misbehaved.push(row);
  }

  /** The rows of peers found misbehaving since the last call (each once in the view); [] when none. */
  takeMisbehaved(): number[] {
    if (this.#misbehaved.length === 0) return NONE;
    const rows = this.#misbehaved;
    this.#misbehaved = [];
    return rows;
  }

  /** numReceived[r] in our row (as receipt left it). */
  numReceived(r: number): number {
    return Number(Atomics.load(this.#i64, (this.#t.numReceivedAt >> 3) + r));
  }

  /** Our own messages up to `nextIndex` are received (after nulls). */
  receivedOwn(nextIndex: number): void {
    Atomics.store(this.#i64, (this.#t.numReceivedAt >> 3) + this.rank, BigInt(nextIndex - 1));
  }

  /** The index this sender must reach not to stall the round robin (0: nothing received). */
  nullTarget(): number {
    return this.#k.shardNullTarget(this.#t.numReceivedAt, this.S, this.#selfRank);
  }

  /** The receive prefix of our numReceived: our seqNum. */
  prefix(): number {
    return this.#k.receivePrefix(this.#t.numReceivedAt, this.S);
  }

  /**
   * Stability: the least of our `seqNum` and the other members' seqNum. It only grows: a peer whose seqNum
   * went back below it is reported, and the frontier stays.
   */
  stable(seqNum: number): number {
    const t = this.#t;
    let stable = this.#k.shardMinI64(t.tableBase, t.rowStride, t.seqNumCol, this.#peersAt, this.#peers, seqNum);
    if (stable < this.stableSeen) stable = this.#wentBack(t.seqNumCol, this.stableSeen, seqNum, 'seqNum');
    this.stableSeen = stable;
    return stable;
  }

  /**
   * The persistence frontier: the least persistedNum of the shard (ours and the other members'), exact in
   * i64, stored at `outAt` (the shard's PERSISTED word, shard-words.ts); true when it changed. It only grows.
   */
  persistedFrontier(outAt: number): boolean {
    const t = this.#t;
    return this.#k.shardMinVersion(t.tableBase, t.rowStride, t.persistedCol, this.#peersAt, this.#peers,
      t.persistedAt, outAt) !== 0;
  }

  /**
   * The window's minimum: the least of `own` (our deliveredNum, or raw our numReceived of our own) and the
   * other members' deliveredNum (raw: their numReceived of our messages). It only grows: a peer whose counter
   * went back below it is reported, and the minimum stays.
   */
  windowMin(own: number): number {
    if (this.rank < 0 && this.#raw) return -1; // raw counts our messages: a member that does not send has none
    const t = this.#t;
    let min = this.#k.shardMinI64(t.tableBase, t.rowStride, this.#windowCol, this.#peersAt, this.#peers, own);
    if (min < this.windowMinSeen) min = this.#wentBack(this.#windowCol, this.windowMinSeen, own, 'window counter');
    this.windowMinSeen = min;
    return min;
  }

  /**
   * A minimum over column `col` fell below `seen`, the one used last: every peer whose counter there is below
   * it went back, and is reported; `own`, ours, may not have (an assertion). Returns `seen`, the minimum kept.
   */
  #wentBack(col: number, seen: number, own: number, what: string): number {
    assertMonotonic(seen, own, `our own ${what} (a minimum of the shard's)`);
    const t = this.#t;
    for (let p = 0; p < this.#peers; p++) {
      if (t.readI64(t.peerRowAt[p]! + col) < seen) this.misbehaved(t.peerRows[p]!);
    }
    return seen;
  }

  /**
   * Reports every other member whose seqNum or window counter (deliveredNum, raw numReceived of ours) went
   * back since the last call (the hot path sees only the minima, which it keeps from going back; what this
   * member computes is checked in receiver.ts). The simulator calls this after every step. O(members).
   */
  invariants(): void {
    const t = this.#t, seen = this.#peerSeen;
    for (let p = 0; p < this.#peers; p++) {
      const row = t.peerRowAt[p]!;
      const seqNum = t.readI64(row + t.seqNumCol);
      if (seqNum < seen[2 * p]!) this.misbehaved(t.peerRows[p]!);
      seen[2 * p] = Math.max(seen[2 * p]!, seqNum);
      if (this.rank < 0 && this.#raw) continue;
      const counter = t.readI64(row + this.#windowCol);
      if (counter < seen[2 * p + 1]!) this.misbehaved(t.peerRows[p]!);
      seen[2 * p + 1] = Math.max(seen[2 * p + 1]!, counter);
    }
  }
}

const NONE: number[] = [];
