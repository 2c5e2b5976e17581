// The persistent log's in-memory index: for each record, its version, where it is (segment id, offset, length)
// and the running maximum of the hlcs up to it. Built at open from the segments, grown by append, cut by
// truncateAfter and by dropping covered segments. Parallel typed arrays: appending makes no objects.

const INITIAL_CAPACITY = 1024;

/** In entries [0, count) of a non-decreasing array, the index of the first above `v` (count when none). */
function firstAbove(sorted: BigInt64Array | BigUint64Array, count: number, v: bigint): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! > v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export class IndexTable {
  /** Records held: entries [0, count). */
  count = 0;
  #versions = new BigInt64Array(INITIAL_CAPACITY);
  /** max(hlc of records 0..i): non-decreasing, so versionAt is a binary search over a prefix of the log. */
  #hlcMax = new BigUint64Array(INITIAL_CAPACITY);
  #segment = new Uint32Array(INITIAL_CAPACITY);
  #offset = new Float64Array(INITIAL_CAPACITY);
  #bytes = new Uint32Array(INITIAL_CAPACITY);

  add(version: bigint, hlc: bigint, segment: number, offset: number, bytes: number): void {
    if (this.count === this.#versions.length) this.#grow();
    const i = this.count++;
    this.#versions[i] = version;
    const previous = i > 0 ? this.#hlcMax[i - 1]! : 0n;
    this.#hlcMax[i] = hlc > previous ? hlc : previous;
    this.#segment[i] = segment;
    this.#offset[i] = offset;
    this.#bytes[i] = bytes;
  }

  version(i: number): bigint { return this.#versions[i]!; }
  segment(i: number): number { return this.#segment[i]!; }
  offset(i: number): number { return this.#offset[i]!; }
  bytes(i: number): number { return this.#bytes[i]!; }

  /** The index of the first record with version > v (count when none). */
  firstAfter(v: bigint): number { return firstAbove(this.#versions, this.count, v); }

  /** The index of the record with version v, or -1. */
  find(v: bigint): number {
    const i = this.firstAfter(v) - 1;
    return i >= 0 && this.#versions[i] === v ? i : -1;
  }

  /** The index of the last record whose hlc, and every earlier record's, is ≤ t; -1 when none. */
  lastAtOrBefore(t: bigint): number { return firstAbove(this.#hlcMax, this.count, t) - 1; }

  /** Keeps entries [0, n). */
  truncate(n: number): void { this.count = Math.min(this.count, n); }

  /** Drops entries [0, n): the records of dropped segments. */
  dropFront(n: number): void {
    if (n <= 0) return;
    this.#versions.copyWithin(0, n, this.count);
    this.#hlcMax.copyWithin(0, n, this.count);
    this.#segment.copyWithin(0, n, this.count);
    this.#offset.copyWithin(0, n, this.count);
    this.#bytes.copyWithin(0, n, this.count);
    this.count -= n;
  }

  #grow(): void {
    const n = this.#versions.length * 2;
    const versions = new BigInt64Array(n); versions.set(this.#versions); this.#versions = versions;
    const hlcMax = new BigUint64Array(n); hlcMax.set(this.#hlcMax); this.#hlcMax = hlcMax;
    const segment = new Uint32Array(n); segment.set(this.#segment); this.#segment = segment;
    const offset = new Float64Array(n); offset.set(this.#offset); this.#offset = offset;
    const bytes = new Uint32Array(n); bytes.set(this.#bytes); this.#bytes = bytes;
  }
}
