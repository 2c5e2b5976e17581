// The ordering rules of atomic multicast within one shard (DESIGN.md §4), as pure functions of numbers.
// The multicast engine reads the SST columns and calls these; the simulation test drives them directly.
//
// Notation: S senders, ranks 0..S−1; sender r numbers its messages 0, 1, 2, …; message i of sender r
// has sequence number seq = i·S + r — the round robin: first message of sender 0, of sender 1, …, then the
// second of each. num_received[r] is the highest index received from sender r with every lower one
// received too (−1 before the first). W is the window: slots per sender.

/** Sequence number of message `index` of sender `rank`. */
export function seqOf(index: number, rank: number, senders: number): number {
  return index * senders + rank;
}

/** Sender rank of a sequence number. */
export function rankOf(seq: number, senders: number): number {
  return seq % senders;
}

/** Index (within its sender) of a sequence number. */
export function indexOf(seq: number, senders: number): number {
  return Math.floor(seq / senders);
}

/**
 * The receive prefix: the highest seq such that every lower one was received. With m = min over senders
 * of num_received and a = the smallest rank with num_received = m, seq_num = (m+1)·S + a − 1.
 */
export function receivePrefix(numReceived: ArrayLike<number>): number {
  const s = numReceived.length;
  let m = Infinity, a = 0;
  for (let r = 0; r < s; r++) if (numReceived[r]! < m) { m = numReceived[r]!; a = r; }
  return (m + 1) * s + a - 1;
}

/** Stability: every message with seq ≤ the minimum over live members of seq_num was received by all. */
export function stableFrontier(seqNums: ArrayLike<number>, live?: ArrayLike<boolean>): number {
  let min = Infinity;
  for (let i = 0; i < seqNums.length; i++) if (!live || live[i]) min = Math.min(min, seqNums[i]!);
  return min;
}

/**
 * The index this sender's next message must reach so that it does not stall the round robin: after
 * receiving index i from sender r, a sender of lower rank must go past i, one of higher rank must reach i.
 * An idle sender fills the gap with nulls. Returns 0 when nothing was received.
 */
export function nullTarget(myRank: number, numReceived: ArrayLike<number>): number {
  let target = 0;
  for (let r = 0; r < numReceived.length; r++) {
    if (r === myRank || numReceived[r]! < 0) continue;
    target = Math.max(target, myRank < r ? numReceived[r]! + 1 : numReceived[r]!);
  }
  return target;
}

/**
 * The window: sender `rank` may use index i (slot i mod W) only once every member delivered the message
 * that used the slot before, i.e. delivered_num ≥ (i − W)·S + rank at every member.
 */
export function windowAllows(index: number, rank: number, senders: number, window: number,
  deliveredNums: ArrayLike<number>): boolean {
  if (index < window) return true;
  const needed = seqOf(index - window, rank, senders);
  for (let i = 0; i < deliveredNums.length; i++) if (deliveredNums[i]! < needed) return false;
  return true;
}

/** A delivered message's version: vid · 2^32 + seq, monotonic across views. */
export function versionOf(vid: number, seq: number): bigint {
  return (BigInt(vid) << 32n) | BigInt(seq);
}
