// What the replicated-object layer needs from the multicast engine, for one subgroup shard at one member
// (DESIGN.md §4, §8). The engine implements it over the SST slots and RDMC; `LoopbackShard` implements it
// in one process for tests and single-process use.

/** What the multicast engine offers one subgroup shard at one member. */
export interface OrderedChannel {
  /** This member's id. */
  readonly memberId: number;
  /** Member ids of the shard in the current view, in rank order. Read at each call, so it follows view changes. */
  readonly members: readonly number[];
  /**
   * Sends bytes to every member of the shard, this one included, in the shard's total order (ordered mode).
   * Resolves when queued; the caller may reuse `bytes` after that.
   */
  send(bytes: Uint8Array): Promise<void>;
  /**
   * Sets the handler called for every delivered message, in the same order at every member. `version` is
   * vid · 2^32 + seq (DESIGN.md §4). `bytes` is valid during the call only.
   */
  onDeliver(handler: (sender: number, version: bigint, bytes: Uint8Array) => void): void;
  /**
   * Point-to-point, unordered, reliable while both ends live: used for queries and for replies. `member` may
   * be this member: the message comes back through onDirect, later (never within the call), by the same
   * route as others' — so it waits wherever theirs would (a shard receiving its state holds them).
   */
  sendTo(member: number, bytes: Uint8Array): Promise<void>;
  /**
   * Optional: sendTo for a reply to a call, which a channel that bounds sendTo must never refuse for room
   * (the caller bounds its calls waiting for replies). Without it, replies go by sendTo.
   */
  reply?(member: number, bytes: Uint8Array): Promise<void>;
  /** Sets the handler for point-to-point messages. `bytes` is valid during the call only. */
  onDirect(handler: (from: number, bytes: Uint8Array) => void): void;
  /**
   * Optional: sets the handler called when a member leaves the shard (failed or removed by a view change),
   * after which nothing more is delivered from it. Without it, the owner calls `memberFailed` itself.
   */
  onMemberFailed?(handler: (member: number) => void): void;
}

/**
 * What send and sendTo return when the message was written at once: one settled promise shared by every such
 * call, so the common path allocates none, and a caller may skip handling a promise that cannot reject.
 */
export const WRITTEN: Promise<void> = Promise.resolve();

/**
 * sendTo for a message to this member itself: `deliver` gets a copy (the caller may reuse `bytes` once the
 * send resolves) on a later microtask, as if it had arrived.
 */
export function loopBack(bytes: Uint8Array, deliver: (copy: Uint8Array) => void): Promise<void> {
  const copy = bytes.slice();
  queueMicrotask(() => deliver(copy));
  return WRITTEN;
}
