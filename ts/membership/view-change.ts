// The rules of a view change (DESIGN.md §6) as pure functions of numbers, as ordering.ts is for §4: the
// membership layer reads SST columns and calls these; the simulation in test/view-change.test.ts drives
// them directly, with crashes, ragged receipt and leaders failing mid-change.
//
// The protocol, for one change: a suspicion (heartbeat stalled or connection broken, OR-ed across rows)
// wedges every member — it sends nothing new, while what was sent still arrives; the leader (the lowest
// ranked member nobody suspects) proposes the changes; members acknowledge by copying them; the leader
// commits; per shard, the shard leader publishes the ragged trim — per sender, the minimum over live shard
// members of numReceived — and every member delivers exactly the messages inside it; the next view
// (vid + 1) is installed, joiners appended, and each sender sends again its messages beyond the trim.

import { seqOf } from '../multicast/ordering.js';

export interface ViewSpec {
  vid: number;
  /** Member ids in rank order. */
  members: readonly number[];
}

/** The leader: the lowest-ranked member nobody suspects; null when everyone is suspected. */
export function leaderOf(members: readonly number[], suspected: ReadonlySet<number>): number | null {
  for (const m of members) if (!suspected.has(m)) return m;
  return null;
}

/**
 * Partition safety: a view may change only when the members left are a majority of the current view.
 * A member that finds itself in a minority must stop: the other side may be the majority and go on.
 */
export function hasMajority(viewSize: number, survivors: number): boolean {
  return survivors * 2 > viewSize;
}

/**
 * The members of `staying` whose majority a change needs: those that did not join into this view, unless
 * all did (ViewChangeProtocol.votersAmong says why). The predicate worker's quorum gate counts the same set.
 */
export function votersOf(staying: readonly number[], joined: readonly number[]): number[] {
  const old = staying.filter((m) => !joined.includes(m));
  return old.length > 0 ? old : [...staying];
}

/**
 * The ragged trim of a shard: for each sender rank, the minimum over the live members of numReceived —
 * the highest index every live member holds, so every one of them can deliver exactly these.
 */
export function raggedTrim(numReceivedOfLive: ReadonlyArray<ArrayLike<number>>): number[] {
  if (numReceivedOfLive.length === 0) return [];
  const senders = numReceivedOfLive[0]!.length;
  const trim = new Array<number>(senders).fill(Infinity);
  for (const row of numReceivedOfLive) for (let r = 0; r < senders; r++) trim[r] = Math.min(trim[r]!, row[r]!);
  return trim;
}

/**
 * The trim a new leader publishes: the one a failed leader already published, if any member copied it
 * (members copy the trim into their own row before they deliver by it, so some may have delivered by it
 * already) — otherwise the one it computed. All published copies are the same trim: one leader publishes
 * one trim per change.
 */
export function adoptTrim(
  copies: ReadonlyArray<readonly number[] | null>, computed: readonly number[],
): readonly number[] {
  for (const c of copies) if (c) return c;
  return computed;
}

/**
 * The sequence numbers a member delivers at the end of a view, in order: every seq above `deliveredNum`
 * whose message index is inside the trim of its sender. The set is the same at every member (it depends
 * on the trim alone), and it contains everything any member delivered before the change: a delivered
 * message was stable, so every member, the live ones included, had received it. A generator: nothing is
 * built but the next number, and a trim the protocol accepted (row-checks.ts: at most this member's
 * numReceived, or a window above it) yields at most S·(W + 1) of them.
 */
export function* trimDeliveries(deliveredNum: number, trim: readonly number[]): Generator<number, void, undefined> {
  const S = trim.length;
  let last = -1;
  for (let r = 0; r < S; r++) last = Math.max(last, seqOf(trim[r]!, r, S));
  for (let seq = deliveredNum + 1; seq <= last; seq++) {
    const r = seq % S, index = Math.floor(seq / S);
    if (index <= trim[r]!) yield seq;
  }
}

/** The first index of its own messages a sender sends again in the next view: those beyond the trim. */
export function resendFrom(trim: readonly number[], rank: number): number {
  return trim[rank]! + 1;
}

/** The next view: the removed members gone, the joiners appended in join order. */
export function nextView(view: ViewSpec, removed: ReadonlySet<number>, joined: readonly number[]): ViewSpec {
  const members = view.members.filter((m) => !removed.has(m));
  for (const j of joined) if (!members.includes(j)) members.push(j);
  return { vid: view.vid + 1, members };
}
