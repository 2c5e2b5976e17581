// The control predicates of one subgroup shard (DESIGN.md §4), over the member's SST table in the arena:
// the null target and the gathered minima behind stability and the window. The receive prefix is reduce.ts's
// receivePrefix. Receipt is not here: it checks each sender's index and slot headers, peer input, before it
// counts them (ts/multicast/control.ts). ts/multicast/control.ts calls them (with their plain-TypeScript twins in
// ts/kernels/reference.ts where no WebAssembly is loaded); test/kernels.test.ts compares the two.
//
// A shard's rows are not a contiguous run of the table, so the kernels take them as a list: `rowsBase`
// holds `count` u32 row numbers (ShardControl writes them once per view in SHARD_ROWS, memory-map).
// Counters are i64 cells read and written with atomic.load / atomic.store (8-byte aligned: the SST layout
// guarantees it), and come back as f64 — exact below 2^53.

/** The i64 cell of row `row` at column `col`. */
// @ts-ignore: decorator
@inline function cell(tableBase: u32, rowStride: u32, row: u32, col: u32): usize {
  return <usize>tableBase + <usize>row * <usize>rowStride + <usize>col;
}

/**
 * The null target: the index this sender (rank `selfRank`) must reach so that it does not stall the
 * round robin — past numReceived[r] for a sender of higher rank r, up to it for a lower one, over every
 * other sender that received anything. 0 when nothing was received.
 */
export function shardNullTarget(numReceivedBase: u32, senders: u32, selfRank: u32): f64 {
  let target: i64 = 0;
  for (let r: u32 = 0; r < senders; r++) {
    if (r == selfRank) continue;
    const v = atomic.load<i64>(<usize>numReceivedBase + (<usize>r << 3));
    if (v < 0) continue;
    const needed = selfRank < r ? v + 1 : v;
    if (needed > target) target = needed;
  }
  return <f64>target;
}

/**
 * The smallest i64 at column `col` over the `count` rows listed at `rowsBase`, and `own` (this member's
 * value, kept apart: it may not be stored yet); +Infinity for no rows and own = +Infinity. Stability is
 * this over the shard's other members' seqNum with own = our seqNum; the window's minimum the same over
 * deliveredNum (ordered) or numReceived[our rank] (raw).
 */
export function shardMinI64(tableBase: u32, rowStride: u32, col: u32, rowsBase: u32, count: u32, own: f64): f64 {
  let lowest = own;
  for (let i: u32 = 0; i < count; i++) {
    const row = load<u32>(<usize>rowsBase + (<usize>i << 2));
    const v = <f64>atomic.load<i64>(cell(tableBase, rowStride, row, col));
    if (v < lowest) lowest = v;
  }
  return lowest;
}

/**
 * The persistence frontier, exact: the smallest i64 at column `col` over the `count` rows listed at
 * `rowsBase` and the i64 at `ownAt` (this member's own cell), stored at `outAt`; returns 1 when that changed
 * what `outAt` held, else 0. Versions are (vid << 32) | seq and pass 2^53 once vid reaches 2^21, so unlike
 * shardMinI64 nothing goes through f64: the inputs and the result stay i64 in the arena.
 */
export function shardMinVersion(
  tableBase: u32, rowStride: u32, col: u32, rowsBase: u32, count: u32, ownAt: u32, outAt: u32,
): u32 {
  let lowest = atomic.load<i64>(<usize>ownAt);
  for (let i: u32 = 0; i < count; i++) {
    const row = load<u32>(<usize>rowsBase + (<usize>i << 2));
    const v = atomic.load<i64>(cell(tableBase, rowStride, row, col));
    if (v < lowest) lowest = v;
  }
  if (atomic.load<i64>(<usize>outAt) == lowest) return 0;
  atomic.store<i64>(<usize>outAt, lowest);
  return 1;
}
