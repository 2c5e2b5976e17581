// The deliberate bugs of the group simulation (ts/sim/group-sim.ts), for showing that its checks can fail:
// most are wrong protocol rules the member driver takes as parameters (ProtocolRules, ts/group/view-parts.ts),
// as the protocol takes its trim rule; the last is a fault the simulator injects.

import type { ProtocolRules } from '../group/view-parts.js';
import { MEMBERSHIP_COLUMNS } from '../membership/columns.js';
import { raggedTrim } from '../membership/view-change.js';
import type { SimMember } from './sim-member.js';

/**
 * Deliberate bugs for showing that the checks can fail (each but the last is a ProtocolRules swap the driver
 * takes):
 *   short-trim        the trim stops one message short of what every survivor received (an off-by-one)
 *   no-resend         a sender forgets what the old view did not deliver instead of sending it again
 *   max-trim          the trim is the most any member received rather than the least
 *   barrier-own-view  a new view's start barrier needs a majority of its own members, not of the
 *                     previous view's (a minority that applied a commit could install its view)
 *   joiners-vote      members that joined into a view count toward its majority at once (the rule before
 *                     issue 13: a swarm of joiners that vanish outvotes the members, who stop)
 *   stray-wedge       a stray write sets a member's wedged flag in its row behind its protocol's back, once
 *                     (tick 300): invariants() catches it after the member's next step
 *   no-quorum-gate    a failure detector suspects whoever it stops hearing, even while it hears from no majority
 *                     (the quorum gate off): after a held cut, the member that was cut off removes the rest
 */
export type Mutation = 'short-trim' | 'no-resend' | 'max-trim' | 'barrier-own-view' | 'joiners-vote' | 'stray-wedge'
  | 'no-quorum-gate';

/** The rules a mutation swaps for a wrong one; none for a correct run. */
export function rulesOf(mutation: Mutation | undefined): ProtocolRules {
  switch (mutation) {
    case 'max-trim': return { trim: maxTrim };
    case 'short-trim': return { trim: shortTrim };
    case 'no-resend': return { resendUnsent: false };
    case 'barrier-own-view': return { barrier: 'own-view' };
    case 'joiners-vote': return { joinersVote: true };
    default: return {};
  }
}

/** The wrong trim of mutation 'max-trim': per sender, the most any live member received. */
function maxTrim(rows: ReadonlyArray<ArrayLike<number>>): number[] {
  return Array.from({ length: rows[0]?.length ?? 0 }, (_, r) => Math.max(...rows.map((row) => row[r]!)));
}

/** The wrong trim of mutation 'short-trim': one message short of the ragged trim. */
function shortTrim(rows: ReadonlyArray<ArrayLike<number>>): number[] {
  return raggedTrim(rows).map((t) => Math.max(-1, t - 1));
}

/** When mutation 'stray-wedge' strikes (ticks). */
export const STRAY_WRITE_TICK = 300;

/** Mutation 'stray-wedge': a live member whose view runs unwedged finds its wedged flag set in its row. */
export function strayWedge(members: readonly SimMember[], trace: (line: string) => void): void {
  const m = members.find((x) => x.alive && x.stopped === null && x.driver.view?.ready
    && !x.driver.installing && !x.driver.view.protocol.wedged);
  const view = m?.driver.view;
  if (!m || !view) return;
  trace(`a stray write sets member ${m.id}'s wedged flag in view ${view.view.vid}`);
  const { layout, arena } = view;
  Atomics.store(arena.u8, layout.offsetOf(layout.rowOf(m.id), layout.column(MEMBERSHIP_COLUMNS.wedged)), 1);
}
