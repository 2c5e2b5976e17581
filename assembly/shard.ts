// The control predicates of one subgroup shard (DESIGN.md §4), over the member's SST table in the arena:
// receipt, the null target and the gathered minima behind stability and the window. The receive prefix is
// reduce.ts's receivePrefix. Receipt reads what peers wrote — each sender's `index` and the slot headers it
// names — so it checks them before it counts them (ts/multicast/control.ts says which rules, and why an honest
// sender never breaks them). ts/multicast/control.ts calls these (with their plain-TypeScript twins in
// ts/kernels/reference.ts where no WebAssembly is loaded); test/shard-kernels.test.ts compares the two.
//
// A shard's rows are not a contiguous run of the table, so the kernels take them as a list: `rowsBase`
// holds `count` u32 row numbers (ShardControl writes them once per view in SHARD_ROWS, memory-map), and
// receipt's slot bases (u32 per sender rank) and bad-sender flags (u8 per sender rank) sit there too.
// Counters are i64 cells read and written with atomic.load / atomic.store (8-byte aligned: the SST layout
// guarantees it), and come back as f64 — exact below 2^53.

/** The i64 cell of row `row` at column `col`. */
// @ts-ignore: decorator
@inline function cell(tableBase: u32, rowStride: u32, row: u32, col: u32): usize {
  return <usize>tableBase + <usize>row * <usize>rowStride + <usize>col;
}

// A slot's header (ts/multicast/slots.ts): u32 index + 1 lo, u32 hi, u32 length, u32 kind.
const SLOT_DATA: u32 = 0;
const SLOT_NULL: u32 = 1;
const SLOT_LARGE: u32 = 2;

/**
 * Whether the slot at `at` holds message `index` with a header the rules allow: a DATA payload of at most
 * `maxPayload` bytes, a NULL of none, a LARGE body of more than `maxPayload` and at most `maxLargeBytes`.
 */
function slotHolds(at: usize, index: i64, maxPayload: u32, maxLargeBytes: u32): bool {
  const stored = (<u64>load<u32>(at + 4) << 32) | <u64>load<u32>(at);
  if (stored != <u64>(index + 1)) return false;
  const bytes = load<u32>(at + 8);
  const kind = load<u32>(at + 12);
  if (kind == SLOT_DATA) return bytes <= maxPayload;
  if (kind == SLOT_NULL) return bytes == 0;
  if (kind == SLOT_LARGE) return bytes > maxPayload && bytes <= maxLargeBytes;
  return false;
}

/**
 * What sender r's `received` (its index − 1) lets us count, `before` counted and `limit` the most the window
 * lets it have used: `received` when every slot it newly names, from `slotsAt` (W slots of `slotBytes`),
 * holds what it should; else less — `before` for an index that went back or ran ahead (compared before any
 * walk, so no huge index is walked or overflows), up to the slot before the first bad one.
 */
function received(
  before: i64, received: i64, limit: i64, slotsAt: usize, slotBytes: u32, W: u32, maxPayload: u32,
  maxLargeBytes: u32,
): i64 {
  if (received < before || received > limit) return before;
  let index = before;
  while (index < received) {
    index++;
    const at = slotsAt + <usize>(<u64>(index % <i64>W) * <u64>slotBytes);
    if (!slotHolds(at, index, maxPayload, maxLargeBytes)) return index - 1;
  }
  return received;
}

/**
 * Receipt: numReceived[r] (i64 × `senders` at `numReceivedBase`) = index_r − 1 for every sender rank r whose
 * index and slots pass the checks, index_r the i64 at column `indexCol` of the row listed at rowsBase + 4r;
 * this member's own rank `selfRank` (2^32 − 1: none) takes `ownIndex` − 1, unchecked. A sender is checked
 * only while its flag (u8 at badBase + r) is 0: its index may not go back below numReceived[r], nor pass
 * ⌊(`delivered` − r)/S⌋ + W (`raw`: numReceived[r] + W), and each slot it newly names, at
 * slotsList[r] (u32 at slotsListBase + 4r) + (index mod W)·slotBytes, must hold that index with an allowed
 * header. A sender that breaks one is flagged and keeps what passed. Returns the entries changed, plus the
 * senders newly flagged << 16.
 */
export function shardReceipt(
  tableBase: u32, rowStride: u32, indexCol: u32, rowsBase: u32, senders: u32, selfRank: u32, ownIndex: f64,
  numReceivedBase: u32, slotsListBase: u32, slotBytes: u32, W: u32, raw: u32, delivered: f64, maxPayload: u32,
  maxLargeBytes: u32, badBase: u32,
): u32 {
  let changed: u32 = 0;
  let flagged: u32 = 0;
  for (let r: u32 = 0; r < senders; r++) {
    const at = <usize>numReceivedBase + (<usize>r << 3);
    const before = atomic.load<i64>(at);
    let now: i64;
    if (r == selfRank) {
      now = <i64>ownIndex - 1;
    } else {
      if (load<u8>(<usize>badBase + <usize>r) != 0) continue;
      const row = load<u32>(<usize>rowsBase + (<usize>r << 2));
      const index = atomic.load<i64>(cell(tableBase, rowStride, row, indexCol));
      if (index - 1 == before) continue;
      const limit = (raw != 0 ? before : <i64>Math.floor((delivered - <f64>r) / <f64>senders)) + <i64>W;
      now = received(before, index - 1, limit, <usize>load<u32>(<usize>slotsListBase + (<usize>r << 2)),
        slotBytes, W, maxPayload, maxLargeBytes);
      if (now != index - 1) { // a rule broken: the sender keeps what passed, and is counted no further
        store<u8>(<usize>badBase + <usize>r, 1);
        flagged++;
      }
    }
    if (now != before) {
      atomic.store<i64>(at, now);
      changed++;
    }
  }
  return changed + (flagged << 16);
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
