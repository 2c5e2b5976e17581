// What the view-change protocol (protocol.ts) hands its owner: the change it applied, the outcome of a step,
// and the notes of the steps it took for the owner's logs.

import type { Joiner } from './table.js';
import type { ViewSpec } from './view-change.js';

/** A committed change, as applied at this member. */
export interface Change {
  proposal: number;
  /** The member that made the proposal: it tells its joiners the view and publishes their ports. */
  proposer: number;
  removed: number[];
  /** Members entering the next view, in join order (appended to it). */
  joined: Joiner[];
  /** Of the removed, those that asked to leave: they will be in no view, so the start barrier of the next
   *  view counts the previous view without them (see allInstalled). */
  left: number[];
  next: ViewSpec;
  /** Per subgroup index, per shard: the trim (highest index delivered) of each sender rank. */
  trims: number[][][];
}

export type StepResult =
  | { type: 'commit'; change: Change }
  | { type: 'partitioned'; unreachable: number[] }
  /** Another member suspects this one: every proposal removes it, so it stops now (and may rejoin). */
  | { type: 'suspected'; by: number[] }
  /** Every member of the view asked to leave: the group ends, and each member is done. */
  | { type: 'dissolved' }
  | null;

/** Why this member's view wedged: whom it or a peer suspects, who leaves, who joins (at the leader that takes
 *  them), or `peer`: another member wedged first for a reason its row does not show yet (a leader's joiners). */
export type WedgeCause = 'suspected' | 'leaving' | 'joining' | 'peer';

/**
 * The steps this member took in a change, for its logs (takeNotes): a handful per change, none per message.
 * `wedged`: its shards stopped (`members`: the suspects, the leavers, the joiners, or the wedged rows).
 * `proposed`: its row holds a proposal — its own as leader (proposer = this member), or the leader's it acked.
 */
export type ProtocolNote =
  | { event: 'wedged'; cause: WedgeCause; members: number[] }
  | { event: 'proposed'; proposal: number; proposer: number; removes: number[]; adds: number[] }
  /** `member`'s row failed the checks of row-checks.ts (`reason`): this member suspects it (reason BAD_ROW). */
  | { event: 'badRow'; member: number; reason: string };
