// The group simulation's partition (ts/sim/group-sim.ts): who is cut off from whom, and, once it heals, what
// stays cut. Members on different sides (SimMember.side) lose every write between them, and the contact network
// does not carry a joiner across. A heal does not mend the views' links: a connection the cut broke stays
// broken, as a TCP connection that failed or was given up on does, so the views built before the heal (vid at
// most the highest any member had built by then) stay cut; views built after it connect across the former cut,
// and the contact network reaches every side again. A held cut (hold(): a bridge that stops forwarding while
// the links keep their carrier) breaks no connection: writes across it wait, and land once it heals, in every
// view — TCP delivers late what it held.

import type { SimMember } from './sim-member.js';

export class SimPartition {
  /** The highest vid any member built so far. */
  #highestBuilt = -1;
  /** Once healed: the highest vid built before the heal (views up to it stay cut); null until then. */
  #cutUpTo: number | null = null;
  /** The cut is a held one (hold()). */
  #holds = false;

  /** A member built view `vid` (called for every view the simulation builds). */
  built(vid: number): void {
    if (vid > this.#highestBuilt) this.#highestBuilt = vid;
  }

  get healed(): boolean { return this.#cutUpTo !== null; }
  get holds(): boolean { return this.#holds; }

  /** The next cut is a held one: its connections survive, and writes across it wait for the heal. */
  hold(): void {
    this.#holds = true;
  }

  /** A write between `a` and `b` waits: a held cut lies between them, not healed yet. */
  holding(a: SimMember, b: SimMember): boolean {
    return this.#holds && a.side !== b.side && this.#cutUpTo === null;
  }

  /** The partition heals: from now on, the contact network and views built from here on reach across it. */
  heal(): void {
    this.#cutUpTo = this.#highestBuilt;
  }

  /**
   * `a` and `b` are cut off from each other: in view `vid`'s links when `vid` is given, else now, through the
   * contact network (and for good, as a connecting member judges a peer it waits for).
   */
  apart(a: SimMember, b: SimMember, vid?: number): boolean {
    if (a.side === b.side) return false;
    if (this.#cutUpTo === null) return true;
    if (this.#holds) return false;
    return vid !== undefined && vid <= this.#cutUpTo;
  }
}

/** The ids of `k` of `members`, picked at random (who a partition cuts off). */
export function anyOf(members: readonly SimMember[], k: number, rand: () => number): number[] {
  return members.slice().sort(() => rand() - 0.5).slice(0, k).map((m) => m.id);
}
