// The options of a group simulation run (ts/sim/group-sim.ts): the seed, the group's size and load, and the
// scenario — random faults (ts/sim/sim-faults.ts), or one of the scenarios that replace them.

import type { KernelChoice } from '../group/view-parts.js';
import type { Mutation } from './mutations.js';

export interface GroupSimOptions {
  seed: number;
  /** Members of view 0: 3–9. Default from the seed. */
  members?: number;
  /** Messages each member sends in each subgroup. Default 40. */
  messages?: number;
  /** Called with a line for each step of a view change (squall sim --trace). */
  trace?: (line: string) => void;
  /** Deliberate bugs, to show the checks catch them (see Mutation). */
  mutation?: Mutation;
  /**
   * Admission (issue 13): instead of random faults, `joiners` (at most MAX_JOINS_PER_CHANGE) ask to join
   * at once and each vanishes (crashes) where `vanish` says: 'proposed' once the leader took it, 'entered'
   * once it built the view it enters (before connecting), 'mixed' either, at random. One honest joiner
   * asks afterwards. Extra checks: no member of view 0 stops, the honest joiner gets in, and the final view
   * holds no vanished joiner. Members and joiners together at most 12 (the tables must fit the arena).
   */
  swarm?: { joiners: number; vanish: 'proposed' | 'entered' | 'mixed' };
  /**
   * Instead of random faults, one joiner asks, and the moment its proposer commits the change that takes it
   * in, a partition cuts the proposer off alone. Extra check: the joiner gets in (asking again where
   * Group.join does).
   */
  cutAtJoin?: boolean;
  /**
   * Instead of random faults, one joiner asks; when it reaches a stage of its join the seed picks (asking,
   * proposed, entering or connecting), a partition cuts it off with a minority of the members, and it heals
   * after a random delay. Extra check: the joiner gets in.
   */
  healingCut?: boolean;
  /** With the random faults: a partition heals 100–2,100 ticks after it struck (ts/sim/sim-partition.ts). */
  heal?: boolean;
  /**
   * Instead of random faults, a held cut (ts/sim/sim-faults.ts): a minority is cut off, writes across wait
   * and land once it heals. Extra check: the members never cut off still run.
   */
  heldCut?: boolean;
  /**
   * Which kernels the members' view-change protocols and shards evaluate their predicates with: 'wasm'
   * (default, as a member process does) or 'reference' (the plain-JS twins, ts/kernels/membership-reference.ts
   * and ts/kernels/reference.ts).
   */
  kernels?: KernelChoice;
}
