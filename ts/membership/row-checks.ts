// What a peer's row must look like before this member acts on it. A peer writes its own row of our table
// (one-sided writes), so nothing in it is checked by anyone but the reader, and the project's rule is that
// nothing a peer sends may crash, stall or grow a member. Every member of the view reads every row; a row
// that fails here gets its member suspected (reason BAD_ROW) and is not read again for a decision
// (RowScreen, below): no commit, trim or proposal is adopted from it, and its number does not raise the
// next proposal. This member's own row is not checked here: its invariants are assertions (protocol.ts).
//
// The checks run on a copy of the row (MembershipTable.readRow), and the protocol adopts from that copy,
// never from the live row: the fabric may rewrite a row at any moment, so a row good when checked and bad
// when copied would otherwise slip through. Every check is one an honest row meets in any copy a reader can
// take — a slow member's row as much as a fast one's, and a row caught mid-push: readRow reads committed,
// trimFor, then proposal (each only grows, so their order holds however a push lands), and the wedged flag
// after the proposal. A copy that fails is taken once more before the member is suspected: a push that lands
// while an honest row is copied can mix its old and new joiners, but not twice in a row.
//
//   counters     0 ≤ committed ≤ trimFor ≤ proposal ≤ maxProposal(n): each row raises them in that order,
//                and an honest leader numbers a proposal one above the largest number it sees (below)
//   wedged       a row holding a proposal is wedged: a member acknowledges or proposes only once wedged
//   proposal     its proposer is a member of the view; each `changes` byte is 0 or 1; its joiners are ids
//                of no member, within contact-wire.ts's id bound, with a host the contact port takes
//   trim         once trimFor ≥ 1, each shard's trim holds −1 ≤ trim[rank]; in a shard of this member's,
//                trim[rank] ≤ this member's numReceived of that rank — the trim is the minimum of the
//                frozen numReceived of the shard's members in the next view, this member's among them —
//                or, when the row's proposal removes this member, ≤ numReceived + W: no sender gets more
//                than a window ahead of any member's counter (ts/multicast/sender.ts, windowOpen)
//
// maxProposal: a view's table starts at zero, a leader proposes top + 1 (top: the largest number it sees)
// only when its standing proposal is outnumbered or its removals grew, and a leader is replaced only by one
// that suspects it. Removals only grow (at most n of them), and each of at most n leaders is outnumbered
// at most once per leader before it: fewer than 2·n² proposals in any view. maxProposal allows four times
// that and more, and stays far below 2^31, so a number never wraps in its i32 column.

import { isHost, isId } from '../group/contact-wire.js';
import { subgroupColumns } from '../multicast/layout.js';
import type { SubgroupPlan } from './plans.js';
import type { MembershipTable, RowCopy } from './table.js';


/** A port a peer published, if it is one (1..65535), else 0: the caller treats that member as gone. */
export function portOrZero(port: number): number {
  return port >= 1 && port <= 65535 ? port : 0;
}

/** The largest proposal number an honest row of a view of `n` members can hold (see the top of this file). */
export function maxProposal(n: number): number {
  return 8 * n * n + 64;
}

/** Why a copy of a row (not this member's) cannot be an honest member's, or null when it can. */
export function badRow(
  t: MembershipTable, row: RowCopy, plans: readonly SubgroupPlan[], selfId: number,
): string | null {
  const { proposal, trimFor, committed } = row;
  if (!(committed >= 0 && committed <= trimFor && trimFor <= proposal)) {
    return `committed ${committed}, trimFor ${trimFor}, proposal ${proposal}: not 0 ≤ committed ≤ trimFor ≤ proposal`;
  }
  if (proposal > maxProposal(t.n)) return `proposal ${proposal} above ${maxProposal(t.n)}, the most a view holds`;
  if (proposal === 0) return null;
  if (row.wedged !== 1) return `proposal ${proposal} without the wedged flag`;
  const proposer = row.proposer - 1;
  if (!t.members.includes(proposer)) return `proposer ${proposer} is not a member`;
  const flag = row.changes.findIndex((b) => b > 1);
  if (flag >= 0) return `changes[${flag}] = ${row.changes[flag]}`;
  const joins = badJoins(t, row);
  if (joins) return joins;
  return trimFor >= 1 ? badTrim(t, row, plans, selfId) : null;
}

/** The row's joiners: each a new id, once, with a host, as the contact port takes them. */
function badJoins(t: MembershipTable, row: RowCopy): string | null {
  const ids = new Set<number>();
  let ended = false;
  for (const [k, id] of row.joinIds.entries()) {
    if (id === -1) { ended = true; continue; }
    if (ended || !isId(id) || t.members.includes(id) || ids.has(id)) return `joiner ${k}: id ${id}`;
    ids.add(id);
  }
  for (const j of row.joins) {
    if (!isHost(j.host)) return `joiner ${j.id}: host ${JSON.stringify(j.host)}`;
  }
  return null;
}

/** The row's trims, against what this member received (see the top of this file). */
function badTrim(t: MembershipTable, row: RowCopy, plans: readonly SubgroupPlan[], selfId: number): string | null {
  const removesSelf = row.changes[t.self] !== 0;
  for (let g = 0; g < plans.length; g++) {
    const plan = plans[g]!, trim = row.trims[g]!;
    const S = subgroupColumns(plan).senders;
    for (let s = 0; s < plan.shards.length; s++) {
      const shard = plan.shards[s]!, mine = shard.members.includes(selfId);
      for (let rank = 0; rank < shard.senders.length; rank++) {
        const v = trim[s * S + rank]!;
        const most = mine ? t.numReceived(t.self, g, rank) + (removesSelf ? plan.window : 0) : Number.MAX_SAFE_INTEGER;
        if (!(v >= -1 && v <= most)) return `subgroup ${g} shard ${s} rank ${rank}: trim ${v}, at most ${most}`;
      }
    }
  }
  return null;
}

/**
 * Peers' rows as the protocol reads them: checked (badRow) on every look during a change, for a peer rewrites
 * its row. A row that fails is left out of every decision from then on (MembershipTable.ignore) and `onBad`
 * is told (the protocol notes it as 'badRow' and suspects the member: reason BAD_ROW).
 */
export class RowScreen {
  readonly #t: MembershipTable;
  readonly #plans: readonly SubgroupPlan[];
  readonly #selfId: number;
  readonly #onBad: (member: number, reason: string) => void;
  /** Rows found bad. */
  readonly #bad = new Set<number>();

  constructor(t: MembershipTable, plans: readonly SubgroupPlan[], selfId: number,
    onBad: (member: number, reason: string) => void) {
    this.#t = t;
    this.#plans = plans;
    this.#selfId = selfId;
    this.#onBad = onBad;
  }

  isBad(r: number): boolean { return this.#bad.has(r); }

  /** Checks every peer's row not yet found bad. */
  screen(): void {
    for (let r = 0; r < this.#t.n; r++) if (r !== this.#t.self) this.checked(r);
  }

  /**
   * A copy of peer row r that passes the checks, for the caller to adopt from; null when the row fails them
   * (or failed them before). A copy that fails is read once more before the member is suspected: a push that
   * lands while a row is read can mix an honest row's old and new joiners, but not twice in a row. What is
   * adopted is always a copy that passed.
   */
  checked(r: number): RowCopy | null {
    const t = this.#t;
    if (this.#bad.has(r)) return null;
    const first = t.readRow(r);
    if (badRow(t, first, this.#plans, this.#selfId) === null) return first;
    const again = t.readRow(r);
    const reason = badRow(t, again, this.#plans, this.#selfId);
    if (reason === null) return again;
    this.#bad.add(r);
    t.ignore(r);
    this.#onBad(t.members[r]!, reason);
    return null;
  }
}
