// The control step of one shard at one member (DESIGN.md §4): the decisions the shard takes from its
// counters, evaluated by the WebAssembly shard kernels (assembly/shard.ts, receivePrefix in reduce.ts) over
// the table in the arena — receipt (numReceived from the senders' `index`), the null target, the receive
// prefix (seqNum), stability (the least seqNum of the shard) and the window's minimum (the least
// deliveredNum, or in raw mode the least numReceived of our messages).
//
// This is the one copy of that decision code: the member's shard (shard.ts, through receiver.ts and
// sender.ts) calls it on the thread that steps the shard, and the simulator (ts/sim) runs the same
// ShardControl over its own arenas — the kernels, not a model of them. The kernels hold no state; what
// ShardControl keeps is the geometry, written once: the shard's rows as a list in SHARD_ROWS (the senders'
// rows by rank, then the other members' rows), which the kernels read.
//
// Who writes what: receipt stores numReceived straight into this member's row (its only writer is the
// thread stepping the shard); everything else is read. Where the numbers are checked: every numReceived
// read back only grows (a sender's index only grows where it lands); the stable frontier and the window's
// minimum only grow (each is a minimum of counters that only grow).

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

  /** Where a shard of `senders` senders and `peers` other members keeps its row lists. */
  take(senders: number, peers: number): number {
    const at = this.#next;
    const bytes = 4 * (senders + peers);
    if (at + bytes > SHARD_ROWS_OFFSET + SHARD_ROWS_BYTES) {
      throw new ConfigError(`this member's shards list more rows than SHARD_ROWS holds (${SHARD_ROWS_BYTES / 4}); ` +
        'use fewer or smaller shards per member');
    }
    this.#next = at + bytes;
    this.#taken++;
    return at;
  }
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
  /** SHARD_ROWS: the senders' rows by rank, then the other members' rows. */
  readonly #sendersAt: number;
  readonly #peersAt: number;
  readonly #peers: number;
  /** The other members' seqNum and window counters as invariants() last read them: they only grow. */
  readonly #peerSeen: Float64Array;
  /** Our rank as the kernels take it: 2^32 − 1 for a member that does not send. */
  readonly #selfRank: number;
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
    const u32 = table.arena.u32;
    table.senderRows.forEach((row, r) => { u32[(this.#sendersAt >> 2) + r] = row; });
    table.peerRows.forEach((row, i) => { u32[(this.#peersAt >> 2) + i] = row; });
    this.#peerSeen = new Float64Array(2 * this.#peers).fill(-1);
    this.#windowCol = this.#raw ? table.numReceivedCol + 8 * Math.max(0, rank) : table.deliveredCol;
  }

  /**
   * Receipt: numReceived[r] = index_r − 1 into our row for every sender; ours from `nextIndex` (what we
   * committed: our messages are here). Returns true when an entry changed.
   */
  receipt(nextIndex: number): boolean {
    const t = this.#t;
    return this.#k.shardReceipt(t.tableBase, t.rowStride, t.indexCol, this.#sendersAt, this.S, this.#selfRank,
      nextIndex, t.numReceivedAt) > 0;
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

  /** Stability: the least of our `seqNum` and the other members' seqNum. It only grows. */
  stable(seqNum: number): number {
    const t = this.#t;
    const stable = this.#k.shardMinI64(t.tableBase, t.rowStride, t.seqNumCol, this.#peersAt, this.#peers, seqNum);
    assertMonotonic(this.stableSeen, stable, 'the stable frontier (the least seqNum of the shard)');
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
   * other members' deliveredNum (raw: their numReceived of our messages). It only grows for a sender.
   */
  windowMin(own: number): number {
    if (this.rank < 0 && this.#raw) return -1; // raw counts our messages: a member that does not send has none
    const t = this.#t;
    const min = this.#k.shardMinI64(t.tableBase, t.rowStride, this.#windowCol, this.#peersAt, this.#peers, own);
    if (this.rank >= 0) assertMonotonic(this.windowMinSeen, min, 'the lowest delivered count of the shard');
    this.windowMinSeen = min;
    return min;
  }

  /**
   * Throws when a counter the kernels read went back: every other member's seqNum and window counter
   * (deliveredNum, raw numReceived of ours) only grows where it lands, and so do our numReceived. The kernels
   * only take minima on the hot path; the simulator calls this after every step. O(S + members).
   */
  invariants(): void {
    const t = this.#t, seen = this.#peerSeen;
    for (let p = 0; p < this.#peers; p++) {
      const row = t.peerRowAt[p]!;
      const seqNum = t.readI64(row + t.seqNumCol);
      assertMonotonic(seen[2 * p]!, seqNum, 'a peer\'s seqNum (where it lands)');
      seen[2 * p] = seqNum;
      if (this.rank < 0 && this.#raw) continue;
      const counter = t.readI64(row + this.#windowCol);
      assertMonotonic(seen[2 * p + 1]!, counter, 'a peer\'s window counter (where it lands)');
      seen[2 * p + 1] = counter;
    }
  }
}
