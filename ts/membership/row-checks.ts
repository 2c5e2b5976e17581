// What a peer's row must look like before this member acts on it. A peer writes its own row of our table
// (one-sided writes), so nothing in it is checked by anyone but the reader, and the project's rule is that
// nothing a peer sends may crash, stall or grow a member. Every member of the view reads every row; a row
// that fails here gets its member suspected (reason BAD_ROW) and is not read again for a decision
// (protocol.ts, #screen): no commit, trim or proposal is adopted from it, and its number does not raise the
// next proposal. This member's own row is not checked here: its invariants are assertions (protocol.ts).
//
// Every check is one an honest row meets at every instant a reader can see it — a slow member's row as much
// as a fast one's, and a row caught half pushed (a push lands in ascending address order: the wedged flag
// before the proposal, the proposal before trimFor and committed; see columns.ts):
//
//   counters     0 ≤ committed ≤ trimFor ≤ proposal ≤ maxProposal(n): each row raises them in that order,
//                and an honest leader numbers a proposal one above the largest number it sees (below)
//   wedged       a row holding a proposal is wedged: a member acknowledges or proposes only once wedged
//   proposal     its proposer is a member of the view; each `changes` byte is 0 or 1; its joiners are ids
//                of no member, within MEMBER_ID_MAX, with a host of printable text
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
import { MAX_JOINS_PER_CHANGE } from './columns.js';
import type { SubgroupPlan } from './plans.js';
import type { MembershipTable } from './table.js';


/** A port a peer published, if it is one (1..65535), else 0: the caller treats that member as gone. */
export function portOrZero(port: number): number {
  return port >= 1 && port <= 65535 ? port : 0;
}

/** The largest proposal number an honest row of a view of `n` members can hold (see the top of this file). */
export function maxProposal(n: number): number {
  return 8 * n * n + 64;
}

/** Why row r (not this member's) cannot be an honest member's, or null when it can. */
export function badRow(t: MembershipTable, r: number, plans: readonly SubgroupPlan[], selfId: number): string | null {
  const c = t.c;
  const proposal = t.i32(r, c.proposal), trimFor = t.i32(r, c.trimFor), committed = t.i32(r, c.committed);
  if (!(committed >= 0 && committed <= trimFor && trimFor <= proposal)) {
    return `committed ${committed}, trimFor ${trimFor}, proposal ${proposal}: not 0 ≤ committed ≤ trimFor ≤ proposal`;
  }
  if (proposal > maxProposal(t.n)) return `proposal ${proposal} above ${maxProposal(t.n)}, the most a view holds`;
  if (proposal === 0) return null;
  if (t.u8(r, c.wedged) !== 1) return `proposal ${proposal} without the wedged flag`;
  const proposer = t.i32(r, c.proposer) - 1;
  if (!t.members.includes(proposer)) return `proposer ${proposer} is not a member`;
  for (let j = 0; j < t.n; j++) {
    const flag = t.u8(r, c.changes, j);
    if (flag > 1) return `changes[${j}] = ${flag}`;
  }
  const joins = badJoins(t, r);
  if (joins) return joins;
  return trimFor >= 1 ? badTrim(t, r, plans, selfId) : null;
}

/** The joiners of row r's proposal: each a new id, once, with a host, as the contact port takes them. */
function badJoins(t: MembershipTable, r: number): string | null {
  const ids = new Set<number>();
  let ended = false;
  for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
    const id = t.i32(r, t.c.joins, k) - 1;
    if (id === -1) { ended = true; continue; }
    if (ended || !isId(id) || t.members.includes(id) || ids.has(id)) return `joiner ${k}: id ${id}`;
    ids.add(id);
  }
  for (const j of t.readJoins(r)) {
    if (!isHost(j.host)) return `joiner ${j.id}: host ${JSON.stringify(j.host)}`;
  }
  return null;
}

/** Row r's trims, against what this member received (see the top of this file). */
function badTrim(t: MembershipTable, r: number, plans: readonly SubgroupPlan[], selfId: number): string | null {
  const removesSelf = t.u8(r, t.c.changes, t.self) !== 0;
  for (let g = 0; g < plans.length; g++) {
    const plan = plans[g]!, trim = t.readTrim(r, g);
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
