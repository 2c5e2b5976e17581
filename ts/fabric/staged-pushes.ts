// One protocol step's pushes, gathered and sent together (DESIGN.md §4: "pushes are batched per step").
//
// A step at a member writes to each peer from several places: the shard's slots and `index` (data lane), its
// acknowledgements (control lane), the mailboxes' records and counters (replies to calls, queries), the
// persistence column. Sent as made, each is a `sendmsg` of its own — and on a busy machine each send costs
// more than the bytes it carries (the kernel's TCP path, and on loopback the receiver's too). While held, a
// StagedPushes keeps every write and batch to a peer in a list per peer and lane, and when the outermost
// hold is released sends each list as one writeBatch: one send per peer and lane per step, whatever wrote.
//
// What a lane promises is kept: writes on one lane leave in the order made, so a counter still follows the
// data it names. Two rules make that hold when the bytes are read at the release rather than at the write:
//   - a range staged again replaces its earlier place (it moves to the end): a counter pushed twice in one
//     step leaves once, after everything staged before its last push — never ahead of data it now names;
//   - writeAll (the membership table's pushes: rare, and ordered after the shards' frozen counters when the
//     member wedges) first sends everything staged on that lane, then goes out at once.
// Bytes staged are read when they leave, so they must stay as they are until then: slots and mailbox
// records are not rewritten before their reader's counter comes back, which needs them to have left.
// Outside a hold every call goes straight through.

import type { Lane, TableFabric } from './fabric.js';
import { WriteStatus } from './fabric.js';

/** A peer and lane's staged ranges (offset, length pairs). */
interface Staged { peer: number; lane: Lane; ranges: Float64Array; count: number }

const FIRST_RANGES = 8;

export class StagedPushes implements TableFabric {
  readonly #inner: TableFabric;
  readonly #staged = new Map<number, Staged>();
  /** Staged lists that hold ranges, in the order they were first used this hold. */
  readonly #pending: Staged[] = [];
  #depth = 0;
  /** Told of a batch the fabric refused at release (the peer is gone), as a direct write's caller would be. */
  onRefused: ((peer: number, status: WriteStatus) => void) | null = null;

  constructor(inner: TableFabric) {
    this.#inner = inner;
  }

  /** Writes from now on wait for the matching release(). Holds nest. */
  hold(): void {
    this.#depth++;
  }

  /** Ends one hold; the outermost sends what was staged, one writeBatch per peer and lane. */
  release(): void {
    if (this.#depth === 0) return;
    if (--this.#depth === 0) this.flush();
  }

  get held(): boolean { return this.#depth > 0; }

  /** Sends everything staged now (on `lane` only, when given), held or not. */
  flush(lane?: Lane): void {
    const pending = this.#pending;
    let kept = 0;
    let i = 0;
    try {
      for (; i < pending.length; i++) {
        const s = pending[i]!;
        if (lane !== undefined && s.lane !== lane) {
          pending[kept++] = s;
          continue;
        }
        const count = s.count;
        s.count = 0;
        if (count === 0) continue;
        const status = this.#inner.writeBatch(s.peer, s.ranges, count, s.lane);
        if (status !== WriteStatus.Ok) this.onRefused?.(s.peer, status);
      }
    } finally { // a throw (from the fabric or onRefused) keeps the lists not yet sent, in their order
      for (i++; i < pending.length; i++) pending[kept++] = pending[i]!;
      pending.length = kept;
    }
  }

  write(peer: number, offset: number, length: number, lane?: Lane): WriteStatus {
    if (this.#depth === 0) return this.#inner.write(peer, offset, length, lane);
    this.#stage(this.#list(peer, lane ?? 0), offset, length);
    return WriteStatus.Ok;
  }

  writeBatch(peer: number, ranges: Float64Array, count: number, lane?: Lane): WriteStatus {
    if (this.#depth === 0) return this.#inner.writeBatch(peer, ranges, count, lane);
    if (count === 0) return WriteStatus.Ok;
    const list = this.#list(peer, lane ?? 0);
    for (let i = 0; i < count; i++) this.#stage(list, ranges[2 * i]!, ranges[2 * i + 1]!);
    return WriteStatus.Ok;
  }

  writeAll(offset: number, length: number, lane?: Lane): number {
    if (this.#depth > 0) this.flush(lane ?? 0);
    return this.#inner.writeAll(offset, length, lane);
  }

  #list(peer: number, lane: Lane): Staged {
    const key = peer * 2 + lane;
    let s = this.#staged.get(key);
    if (s === undefined) {
      s = { peer, lane, ranges: new Float64Array(2 * FIRST_RANGES), count: 0 };
      this.#staged.set(key, s);
    }
    if (s.count === 0) this.#pending.push(s);
    return s;
  }

  #stage(s: Staged, offset: number, length: number): void {
    let ranges = s.ranges;
    const n = s.count;
    for (let i = 0; i < n; i++) {
      if (ranges[2 * i] === offset && ranges[2 * i + 1] === length) { // staged before: it moves to the end
        ranges.copyWithin(2 * i, 2 * i + 2, 2 * n);
        ranges[2 * n - 2] = offset;
        ranges[2 * n - 1] = length;
        return;
      }
    }
    if (2 * n + 2 > ranges.length) {
      const grown = new Float64Array(ranges.length * 2);
      grown.set(ranges);
      s.ranges = ranges = grown;
    }
    ranges[2 * n] = offset;
    ranges[2 * n + 1] = length;
    s.count = n + 1;
  }
}
