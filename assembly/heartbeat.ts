// Failure detection, first half (DESIGN.md §6): a member is suspected when its `heartbeat` column stops
// advancing for the suspicion timeout. The predicate worker calls heartbeatScan every heartbeat interval;
// it owns the three per-row arrays it keeps between calls (fixed regions of the memory map):
//
//   seen[r]       u64 at HEARTBEAT_SEEN        the heartbeat value last seen in row r
//   changedMs[r]  f64 at HEARTBEAT_CHANGED_MS  `nowMs` of the call that saw it change (the caller sets
//                                              every entry to the start time before the first scan)
//   stale[r]      u8  at STALE_ROWS            1 while row r's heartbeat has been still for > timeoutMs
//
// The heartbeat is read with atomic.load (a remote member's counter arrives as one aligned 8-byte store),
// so `tableBase + hbCol` and `rowStride` must be multiples of 8.

/**
 * For every live row r other than `selfRow`: if its heartbeat differs from seen[r], records it
 * (seen[r] = heartbeat, changedMs[r] = nowMs, stale[r] = 0); otherwise, once nowMs − changedMs[r] >
 * timeoutMs, sets stale[r] = 1. A member never suspects itself: stale[selfRow] is cleared (pass a
 * selfRow ≥ nRows to scan every row). Dead rows are left untouched. Returns how many live rows are stale.
 */
export function heartbeatScan(
  tableBase: u32, rowStride: u32, nRows: u32, hbCol: u32, liveBase: u32,
  seenBase: u32, changedMsBase: u32, staleBase: u32, selfRow: u32, nowMs: f64, timeoutMs: f64,
): u32 {
  let cell = <usize>(tableBase + hbCol);
  let staleCount: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++, cell += rowStride) {
    if (load<u8>(liveBase + r) == 0) continue;
    const staleAt = <usize>(staleBase + r);
    if (r == selfRow) {
      store<u8>(staleAt, 0);
      continue;
    }
    const heartbeat = atomic.load<u64>(cell);
    const seenAt = <usize>seenBase + (<usize>r << 3);
    const changedAt = <usize>changedMsBase + (<usize>r << 3);
    if (heartbeat != load<u64>(seenAt)) {
      store<u64>(seenAt, heartbeat);
      store<f64>(changedAt, nowMs);
      store<u8>(staleAt, 0);
    } else if (nowMs - load<f64>(changedAt) > timeoutMs) {
      store<u8>(staleAt, 1);
    }
    staleCount += <u32>(load<u8>(staleAt) != 0);
  }
  return staleCount;
}

/**
 * How many live voter rows other than `selfRow` this member heard from lately: those whose heartbeat last
 * changed (changedMs[r], as heartbeatScan keeps it) at most `windowMs` before `nowMs`. The predicate worker
 * asks it before it suspects a member: a member that hears from no majority of its view's voters is cut off
 * itself, and its suspicions would be stale (workers/predicate-worker.ts, quorum gate). Rows that are dead
 * (u8 at `liveBase` 0) or not voters (u8 at `voterBase` 0) are not counted.
 */
export function heardWithin(
  nRows: u32, liveBase: u32, voterBase: u32, changedMsBase: u32, selfRow: u32, nowMs: f64, windowMs: f64,
): u32 {
  let heard: u32 = 0;
  for (let r: u32 = 0; r < nRows; r++) {
    if (r == selfRow || load<u8>(liveBase + r) == 0 || load<u8>(voterBase + r) == 0) continue;
    heard += <u32>(nowMs - load<f64>(<usize>changedMsBase + (<usize>r << 3)) <= windowMs);
  }
  return heard;
}
