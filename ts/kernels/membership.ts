// The view-change kernels' interface (assembly/membership.ts; twin: membership-reference.ts). The module
// ships them with the other kernels, so kernels.ts loads them; the view-change protocol
// (ts/membership/table.ts) takes an object of this interface — the WebAssembly exports or the twin — and
// evaluates every predicate it has over the table through it.
//
// Calling convention as for Kernels (kernels.ts): a table is `nRows` rows of `rowStride` bytes from
// `tableBase`; columns are byte offsets inside a row; a row takes part while its u8 at `liveBase + row` is
// non-zero. i32 cells are read atomically (4-aligned), i64 cells too (8-aligned).

/** removalFlags' bits, per member column. */
export const RemovalFlag = {
  /** Some row suspects the member. */
  SUSPECTED: 1,
  /** The member's own row asks to leave. */
  LEAVING: 2,
  /** Some row holding a proposal removes the member in its `changes`. */
  PROPOSED: 4,
} as const;

export interface MembershipKernels {
  /**
   * Writes, per member column j < nRows, one u8 at `outBase + j`: RemovalFlag.SUSPECTED when some live row's
   * `suspected[j]` is non-zero, LEAVING when row j is live and its `leaving` is non-zero, PROPOSED when some
   * live row whose i32 `proposal` > 0 has `changes[j]` non-zero. Returns how many j have a flag.
   */
  removalFlags(
    tableBase: number, rowStride: number, nRows: number, liveBase: number,
    suspectedCol: number, leavingCol: number, changesCol: number, proposalCol: number, outBase: number,
  ): number;
  /** Largest i32 in column `col` over live rows; −Infinity when none is live. */
  highestI32(tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number): number;
  /** How many live rows hold exactly `value` (an i32) in column `col`. */
  countEqualI32(
    tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number, value: number,
  ): number;
  /** How many live rows have a non-zero u8 in column `col`. */
  countFlagged(tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number): number;
  /**
   * Live rows whose i32 `proposal` equals `proposal` (low 16 bits), and of those the rows whose u8 `wedged`
   * is zero (high 16 bits).
   */
  acknowledgements(
    tableBase: number, rowStride: number, nRows: number, liveBase: number, proposalCol: number, wedgedCol: number,
    proposal: number,
  ): number;
  /** The first live row whose i32 in column `col` is ≥ `least`, or −1. */
  firstAtLeastI32(
    tableBase: number, rowStride: number, nRows: number, col: number, liveBase: number, least: number,
  ): number;
  /**
   * 1 when some live row's i32 `proposal` is above `proposal`, or equal to it with an i32 `proposer` other
   * than `proposer`; else 0.
   */
  outnumbered(
    tableBase: number, rowStride: number, nRows: number, liveBase: number, proposalCol: number, proposerCol: number,
    proposal: number, proposer: number,
  ): number;
  /**
   * For each rank < `senders`: the minimum over live rows of the i64 at `col + 8·rank`, written as an f64 at
   * `outBase + 8·rank` (+Infinity when no row is live). Returns how many rows are live.
   */
  raggedTrimMin(
    tableBase: number, rowStride: number, nRows: number, col: number, senders: number, liveBase: number,
    outBase: number,
  ): number;
}

/** The view-change kernels the module must export. */
export const MEMBERSHIP_KERNEL_NAMES = [
  'removalFlags', 'highestI32', 'countEqualI32', 'countFlagged', 'acknowledgements', 'firstAtLeastI32',
  'outnumbered', 'raggedTrimMin',
] as const satisfies readonly (keyof MembershipKernels)[];
