// The predicates of a view change (DESIGN.md §6) over the membership columns of a view's SST
// (ts/membership/columns.ts draws them), evaluated by the view-change protocol's step (ts/membership/table.ts
// reads the table once per step into a Round through these). ts/kernels/membership-reference.ts is their
// plain-TypeScript twin; test/membership-kernels.test.ts compares the two on random tables.
//
// Same calling convention as reduce.ts: a table is `nRows` rows of `rowStride` bytes from `tableBase`; a
// column is a byte offset inside a row; a row takes part only while its u8 at `liveBase + row` is non-zero.
// The protocol passes MEMBERSHIP_SCRATCH.ALL_ROWS (every row: a suspected member's row still counts) or
// SOME_ROWS (e.g. the rows of the next view's members). Numbers only: u32 offsets and counts, i32 values,
// u32 / i32 / f64 results.
//
// The membership columns a kernel reads:
//   suspected  u8 × n   row r suspects the member of row j          (flags: any non-zero byte is set)
//   wedged, leaving     u8                                           (flags)
//   changes    u8 × n   the removals of the proposal the row holds   (flags)
//   proposal, trimFor, committed, proposer, installed   i32, read with atomic.load (4-aligned: the SST
//                       layout puts every column at a multiple of 8 and rowStride at a multiple of 64)
//   numReceived i64 × S  of a subgroup (ts/multicast/layout.ts), read with atomic.load (8-aligned)
//
// The fabric applies a peer's row with aligned atomic stores in ascending address order (DESIGN.md §2), so
// a cell is never torn; a scan over several rows is not one snapshot, and the protocol relies on nothing
// more than the TypeScript reads it replaces did (each column only grows, or is a flag set once).

/** removalFlags' bits, per member column j. */
const SUSPECTED: u8 = 1; // some row suspects member j
const LEAVING: u8 = 2; // member j's own row asks to leave
const PROPOSED: u8 = 4; // some row holding a proposal (proposal > 0) removes member j in its `changes`

const LOW7: u64 = 0x7f7f7f7f7f7f7f7f;
const HIGH1: u64 = 0x8080808080808080;

/** Per byte of `x`: 1 where the byte is non-zero, else 0 (no carry crosses bytes: 0x7f + 0x7f < 0x100). */
// @ts-ignore: decorator
@inline function nonZeroOnes(x: u64): u64 {
  return ((((x & LOW7) + LOW7) | x) & HIGH1) >> 7;
}

/**
 * What a proposal must now remove, per member column j < nRows (written as one u8 per j at `outBase`):
 * SUSPECTED when some live row's `suspected[j]` is set (suspicions are OR-ed across rows), LEAVING when row
 * j is live and its `leaving` is set, PROPOSED when some live row with proposal > 0 has `changes[j]` set.
 * Returns how many j have any flag: the size of the removal set.
 */
export function removalFlags(
  tableBase: u32, rowStride: u32, nRows: u32, liveBase: u32,
  suspectedCol: u32, leavingCol: u32, changesCol: u32, proposalCol: u32, outBase: u32,
): u32 {
  const out = <usize>outBase;
  memory.fill(out, 0, nRows);
  let row = <usize>tableBase;
  for (let r: u32 = 0; r < nRows; r++, row += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    if (load<u8>(row + leavingCol) != 0) store<u8>(out + r, load<u8>(out + r) | LEAVING);
    const proposing = atomic.load<i32>(row + proposalCol) > 0;
    const suspected = row + suspectedCol, changes = row + changesCol;
    let j: u32 = 0;
    // Eight members at a time: each byte of a flag word becomes 0 or 1, then the bit of its kind.
    for (; j + 8 <= nRows; j += 8) {
      let flags = nonZeroOnes(load<u64>(suspected + j));
      if (proposing) flags |= nonZeroOnes(load<u64>(changes + j)) << 2;
      store<u64>(out + j, load<u64>(out + j) | flags);
    }
    for (; j < nRows; j++) {
      let flags = <u8>(load<u8>(suspected + j) != 0);
      if (proposing && load<u8>(changes + j) != 0) flags |= PROPOSED;
      store<u8>(out + j, load<u8>(out + j) | flags);
    }
  }
  let count: u32 = 0;
  for (let j: u32 = 0; j < nRows; j++) count += <u32>(load<u8>(out + j) != 0);
  return count;
}

/** Largest i32 of column `col` over live rows (e.g. the highest proposal or commit), as f64; −Infinity if none. */
export function highestI32(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32): f64 {
  let cell = <usize>(tableBase + col);
  let highest = i32.MIN_VALUE;
  let anyLive = false;
  for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    const v = atomic.load<i32>(cell);
    if (v > highest) highest = v;
    anyLive = true;
  }
  return anyLive ? <f64>highest : -Infinity;
}

/** How many live rows hold exactly `value` in i32 column `col` (e.g. trimFor = this proposal, installed = vid + 1). */
export function countEqualI32(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32, value: i32): u32 {
  let cell = <usize>(tableBase + col);
  let count: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
    count += <u32>((load<u8>(liveBase + r) != 0) & (atomic.load<i32>(cell) == value));
  }
  return count;
}

/** How many live rows have their u8 flag `col` set (wedge detection: any row wedged, or every row of a set). */
export function countFlagged(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32): u32 {
  let cell = <usize>(tableBase + col);
  let count: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
    count += <u32>((load<u8>(liveBase + r) != 0) & (load<u8>(cell) != 0));
  }
  return count;
}

/**
 * The acknowledgements of proposal `proposal` among the live rows: acked = rows whose `proposal` column
 * holds exactly it, in the low 16 bits, and of those the rows whose `wedged` flag is clear (a row acks only
 * once wedged: the protocol asserts this is 0) in the high 16 bits. Both are ≤ MAX_MEMBERS < 2^16.
 */
export function acknowledgements(
  tableBase: u32, rowStride: u32, nRows: u32, liveBase: u32, proposalCol: u32, wedgedCol: u32, proposal: i32,
): u32 {
  let row = <usize>tableBase;
  let acked: u32 = 0, unwedged: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++, row += rowStride) {
    const ack = (load<u8>(liveBase + r) != 0) & (atomic.load<i32>(row + proposalCol) == proposal);
    acked += <u32>ack;
    unwedged += <u32>(ack & (load<u8>(row + wedgedCol) == 0));
  }
  return acked | (unwedged << 16);
}

/** The first live row whose i32 column `col` is ≥ `least` (e.g. a commit to adopt), or −1. */
export function firstAtLeastI32(tableBase: u32, rowStride: u32, nRows: u32, col: u32, liveBase: u32, least: i32): i32 {
  let cell = <usize>(tableBase + col);
  for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
    if (load<u8>(liveBase + r) != 0 && atomic.load<i32>(cell) >= least) return <i32>r;
  }
  return -1;
}

/**
 * 1 when some live row holds a proposal numbered above `proposal`, or numbered `proposal` by another
 * proposer than `proposer` (id + 1); else 0. A leader whose proposal is outnumbered proposes again.
 */
export function outnumbered(
  tableBase: u32, rowStride: u32, nRows: u32, liveBase: u32, proposalCol: u32, proposerCol: u32,
  proposal: i32, proposer: i32,
): u32 {
  let row = <usize>tableBase;
  for (let r: u32 = 0; r < nRows; r++, row += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    const theirs = atomic.load<i32>(row + proposalCol);
    if (theirs > proposal || (theirs == proposal && atomic.load<i32>(row + proposerCol) != proposer)) return 1;
  }
  return 0;
}

/**
 * The ragged trim of one shard (DESIGN.md §6): for each sender rank < `senders`, the minimum over the live
 * rows (the shard's members in the next view) of their i64 numReceived[rank] — the array column at `col` —
 * written as f64 at `outBase` (exact below 2^53; +Infinity when no row is live). Returns the live rows.
 */
export function raggedTrimMin(
  tableBase: u32, rowStride: u32, nRows: u32, col: u32, senders: u32, liveBase: u32, outBase: u32,
): u32 {
  let rows: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++) rows += <u32>(load<u8>(liveBase + r) != 0);
  const first = <usize>(tableBase + col);
  for (let rank: u32 = 0; rank < senders; rank++) {
    let cell = first + (<usize>rank << 3);
    let lowest = i64.MAX_VALUE;
    for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
      if (load<u8>(liveBase + r) == 0) continue;
      const v = atomic.load<i64>(cell);
      if (v < lowest) lowest = v;
    }
    store<f64>(<usize>outBase + (<usize>rank << 3), rows == 0 ? Infinity : <f64>lowest);
  }
  return rows;
}
