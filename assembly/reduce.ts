// Reductions over one column of an SST table (DESIGN.md §3), run by the predicate worker.
//
// A table is `nRows` rows of `rowStride` bytes from `tableBase`; a column is the byte offset `col` inside a
// row. A row counts only while its byte in the live array is non-zero (LIVE_ROWS in the memory map).
//
// Every argument is a u32 arena byte offset or count, or an f64, and every result is an f64 or a u32, so a
// call from JavaScript never creates a BigInt. i64 counters come back as f64, exact while |v| < 2^53
// (a counter that grows by a million a second takes 285 years to get there).
//
// i64 cells are read with atomic.load: the fabric applies remote writes with aligned 8-byte stores
// (DESIGN.md §2), so an atomic load never sees half of an update, and on x86-64 and arm64 it compiles to a
// plain load. Atomic accesses must be naturally aligned, so i64 columns need 8-aligned `tableBase + col`
// and `rowStride` (the SST layout guarantees it); a misaligned one traps.
//
// Rows are taken four at a time: one u32 load reads their four live bytes, four independent loads feed
// a small tree, and only then does the result meet the running value. That keeps the loop-carried
// dependency to one step per four rows (1.3–1.5× faster than one row at a time from 16 rows up, in
// bench/scan.ts's setting); the rest (nRows mod 4) go one by one. Cells of dead rows are read but ignored:
// they are still inside the table. The running minimum only changes a handful of times per scan, so that
// test is a well-predicted branch; counts and ORs, whose outcome depends on every row, use no branch.

/** The live byte of row i (0..3) of a group, as a condition: non-zero when live. */
// @ts-ignore: decorator
@inline function liveIn(lives: u32, i: u32): u32 {
  return lives & (0xff << (i << 3));
}

/** True when all four live bytes of a group are non-zero (the usual case: dead rows are rare). */
// @ts-ignore: decorator
@inline function allLive(lives: u32): bool {
  return ((((lives & 0x7f7f7f7f) + 0x7f7f7f7f) | lives) & 0x80808080) == 0x80808080;
}

/** Smallest value of i64 column `col` over live rows, as f64; +Infinity when no row is live. */
export function minI64(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32): f64 {
  let cell = <usize>(tableBase + col);
  let lowest = i64.MAX_VALUE;
  let anyLive = false;
  const stride2 = rowStride * 2, stride3 = rowStride * 3, stride4 = rowStride * 4;
  let r: u32 = 0;
  for (; r + 4 <= nRows; r += 4, cell += stride4) {
    const lives = load<u32>(liveBase + r);
    let v0 = atomic.load<i64>(cell);
    let v1 = atomic.load<i64>(cell + rowStride);
    let v2 = atomic.load<i64>(cell + stride2);
    let v3 = atomic.load<i64>(cell + stride3);
    if (allLive(lives)) {
      anyLive = true;
    } else {
      v0 = select<i64>(v0, i64.MAX_VALUE, liveIn(lives, 0));
      v1 = select<i64>(v1, i64.MAX_VALUE, liveIn(lives, 1));
      v2 = select<i64>(v2, i64.MAX_VALUE, liveIn(lives, 2));
      v3 = select<i64>(v3, i64.MAX_VALUE, liveIn(lives, 3));
      anyLive |= lives != 0;
    }
    const v01 = select<i64>(v0, v1, v0 < v1);
    const v23 = select<i64>(v2, v3, v2 < v3);
    const v = select<i64>(v01, v23, v01 < v23);
    if (v < lowest) lowest = v;
  }
  for (; r < nRows; r++, cell += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    const v = atomic.load<i64>(cell);
    if (v < lowest) lowest = v;
    anyLive = true;
  }
  return anyLive ? <f64>lowest : Infinity;
}

/** Largest value of i64 column `col` over live rows, as f64; -Infinity when no row is live. */
export function maxI64(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32): f64 {
  let cell = <usize>(tableBase + col);
  let highest = i64.MIN_VALUE;
  let anyLive = false;
  const stride2 = rowStride * 2, stride3 = rowStride * 3, stride4 = rowStride * 4;
  let r: u32 = 0;
  for (; r + 4 <= nRows; r += 4, cell += stride4) {
    const lives = load<u32>(liveBase + r);
    let v0 = atomic.load<i64>(cell);
    let v1 = atomic.load<i64>(cell + rowStride);
    let v2 = atomic.load<i64>(cell + stride2);
    let v3 = atomic.load<i64>(cell + stride3);
    if (allLive(lives)) {
      anyLive = true;
    } else {
      v0 = select<i64>(v0, i64.MIN_VALUE, liveIn(lives, 0));
      v1 = select<i64>(v1, i64.MIN_VALUE, liveIn(lives, 1));
      v2 = select<i64>(v2, i64.MIN_VALUE, liveIn(lives, 2));
      v3 = select<i64>(v3, i64.MIN_VALUE, liveIn(lives, 3));
      anyLive |= lives != 0;
    }
    const v01 = select<i64>(v0, v1, v0 > v1);
    const v23 = select<i64>(v2, v3, v2 > v3);
    const v = select<i64>(v01, v23, v01 > v23);
    if (v > highest) highest = v;
  }
  for (; r < nRows; r++, cell += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    const v = atomic.load<i64>(cell);
    if (v > highest) highest = v;
    anyLive = true;
  }
  return anyLive ? <f64>highest : -Infinity;
}

/** 2^63 as an f64: the first value above every i64. */
const TWO_POW_63: f64 = 9223372036854775808.0;

/**
 * Number of live rows whose i64 column `col` is ≥ `threshold`, compared exactly (as integers, not after
 * rounding to f64): a non-integer threshold rounds up, NaN matches nothing, −Infinity matches every row.
 */
export function countAtLeastI64(
  tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32, threshold: f64
): u32 {
  if (isNaN(threshold) || threshold >= TWO_POW_63) return 0;
  const least = threshold <= -TWO_POW_63 ? i64.MIN_VALUE : <i64>Math.ceil(threshold);
  let cell = <usize>(tableBase + col);
  let count: u32 = 0;
  const stride2 = rowStride * 2, stride3 = rowStride * 3, stride4 = rowStride * 4;
  let r: u32 = 0;
  for (; r + 4 <= nRows; r += 4, cell += stride4) {
    const lives = load<u32>(liveBase + r);
    count += <u32>((liveIn(lives, 0) != 0) & (atomic.load<i64>(cell) >= least))
      + <u32>((liveIn(lives, 1) != 0) & (atomic.load<i64>(cell + rowStride) >= least))
      + <u32>((liveIn(lives, 2) != 0) & (atomic.load<i64>(cell + stride2) >= least))
      + <u32>((liveIn(lives, 3) != 0) & (atomic.load<i64>(cell + stride3) >= least));
  }
  for (; r < nRows; r++, cell += rowStride) {
    const live = load<u8>(liveBase + r) != 0;
    count += <u32>(live & (atomic.load<i64>(cell) >= least));
  }
  return count;
}

/** OR of the u8 column `col` over live rows (flags such as `wedged`); 0 when no row is live. */
export function orU8(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32): u32 {
  let cell = <usize>(tableBase + col);
  let flags: u32 = 0;
  const stride2 = rowStride * 2, stride3 = rowStride * 3, stride4 = rowStride * 4;
  let r: u32 = 0;
  for (; r + 4 <= nRows; r += 4, cell += stride4) {
    const lives = load<u32>(liveBase + r);
    flags |= select<u32>(load<u8>(cell), 0, liveIn(lives, 0))
      | select<u32>(load<u8>(cell + rowStride), 0, liveIn(lives, 1))
      | select<u32>(load<u8>(cell + stride2), 0, liveIn(lives, 2))
      | select<u32>(load<u8>(cell + stride3), 0, liveIn(lives, 3));
  }
  for (; r < nRows; r++, cell += rowStride) {
    flags |= select<u32>(load<u8>(cell), 0, load<u8>(liveBase + r));
  }
  return flags;
}

// orU8Array works on eight flags at once: an unaligned u64 load of eight u8 flags. Plain (non-atomic)
// loads are fine here because every flag is its own byte: a racing write changes whole bytes, and a byte
// read is never torn.
const LOW7: u64 = 0x7f7f7f7f7f7f7f7f;
const HIGH1: u64 = 0x8080808080808080;

/** How many of the eight bytes of `x` are non-zero. */
// @ts-ignore: decorator
@inline function nonZeroBytes(x: u64): u32 {
  // Per byte: (low 7 bits + 0x7f) carries into the high bit iff they are non-zero; OR in the byte's own
  // high bit. No carry crosses bytes because (0x7f + 0x7f) < 0x100.
  return <u32>popcnt<u64>((((x & LOW7) + LOW7) | x) & HIGH1);
}

/**
 * For an array column of `count` u8 flags per row starting at `col` (e.g. `suspected[n]`): writes
 * out[j] = OR over live rows of row[col + j] for j < count, at `outBase` (count bytes, e.g. in
 * KERNEL_SCRATCH), and returns how many out[j] are non-zero.
 */
export function orU8Array(
  tableBase: u32, rowStride: u32, nRows: u32, col: u32, count: u32, liveBase: u32, outBase: u32
): u32 {
  const first = <usize>(tableBase + col);
  let setCount: u32 = 0;
  let j: u32 = 0;
  // Eight flags at a time: the accumulator stays in a register across the rows.
  for (; j + 8 <= count; j += 8) {
    let cell = first + j;
    let flags: u64 = 0;
    for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
      const live = load<u8>(liveBase + r) != 0;
      flags |= select<u64>(load<u64>(cell), 0, live);
    }
    store<u64>(outBase + j, flags);
    setCount += nonZeroBytes(flags);
  }
  for (; j < count; j++) {
    let cell = first + j;
    let flags: u32 = 0;
    for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
      const live = load<u8>(liveBase + r) != 0;
      flags |= select<u32>(load<u8>(cell), 0, live);
    }
    store<u8>(outBase + j, flags);
    setCount += <u32>(flags != 0);
  }
  return setCount;
}

/**
 * DESIGN.md §4, receive prefix. `numReceivedBase` is the address of one row's `num_received` array
 * (i64 × `senders`, −1 before anything arrived). With m = the smallest entry and a = the first sender
 * holding it, every sequence number below (m+1)·S + a has arrived, so seq_num = (m+1)·S + a − 1.
 * Exact while that is below 2^53. With no senders nothing can arrive: −1.
 *
 * The entries are read one by one while the fabric may raise them. Each only grows, and the prefix only
 * grows with each entry, so the result is never ahead of what has arrived.
 */
export function receivePrefix(numReceivedBase: u32, senders: u32): f64 {
  if (senders == 0) return -1;
  const base = <usize>numReceivedBase;
  let lowest = atomic.load<i64>(base);
  let firstLowest: u32 = 0;
  for (let r: u32 = 1; r < senders; r++) {
    const v = atomic.load<i64>(base + (<usize>r << 3));
    if (v < lowest) { // strict: the first sender holding the minimum wins
      lowest = v;
      firstLowest = r;
    }
  }
  return <f64>((lowest + 1) * <i64>senders + <i64>firstLowest - 1);
}
