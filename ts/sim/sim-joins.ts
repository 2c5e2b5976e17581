// The joiners of the group simulation (ts/sim/group-sim.ts) and the contact network they reach the group
// through. What a Group's contact server and a joining Group do over TCP is simulated here: a joiner asks
// the leader of a view that is not changing (any contact would redirect it there), and its driver takes it
// into its next proposal (MemberDriver.join); once the change commits, the proposer's driver offers the view
// (Admission.offer) and the joiner builds it at once, or answers nothing when it is gone; once the next
// view's addresses are known (Admission.addressed) it connects. A joiner whose proposer fails before it was
// told the addresses, or whose proposal the change did not take, drops what it built and asks again. So
// does one whose attempt failed where Group.join asks again (entryFailure: cut off in the view it entered, or
// removed before it started): its engine closes, the members find it failed, and it asks with the same id
// once their view no longer holds it, as a Group's contact server has a rejoining joiner wait.

import type { Admission, ViewOffer } from '../group/driver-parts.js';
import { entryFailure, isRetryableJoin } from '../group/entry.js';
import type { PreviousView } from '../group/view-parts.js';
import type { View } from '../membership/view.js';
import { MAX_JOINS_PER_CHANGE } from '../membership/columns.js';
import type { SimMember } from './sim-member.js';
import type { SimView } from './sim-view.js';

/** What the joiners reach of the simulation. */
export interface JoinSite {
  readonly tick: number;
  readonly members: readonly SimMember[];
  rand(): number;
  trace(line: string): void;
  /** A new member (joiners arrive as members with the next id). */
  add(): SimMember;
  /** `a` and `b` cannot reach each other now (a partition that has not healed). */
  apart(a: SimMember, b: SimMember): boolean;
  stop(m: SimMember, why: string): void;
  /** `m`'s engine closed (it stopped, or a joiner's attempt failed): the live members find it failed later. */
  closed(m: SimMember): void;
  crash(m: SimMember): void;
  buildView(m: SimMember, view: View, previous: PreviousView): SimView;
  /** A fresh driver and handles for `m` (what it built for an offered view is dropped). */
  renew(m: SimMember): void;
  /** Member `m` committed a change that takes in joiners it proposed. */
  joinCommitted(m: SimMember): void;
  /** How long a joiner's connecting may wait for the members (ticks). */
  readonly connectTimeout: number;
}

export class SimJoins {
  readonly #site: JoinSite;
  /** Swarm runs ask together (as a contact server batches requests that arrive together). */
  readonly #together: boolean;
  /** Joiners still asking to enter, or proposed and not yet in a view. */
  #joiners: SimMember[] = [];
  /** Swarm mode: where each swarm joiner vanishes, by id. */
  readonly vanishAt = new Map<number, 'proposed' | 'entered'>();

  constructor(site: JoinSite, together: boolean) {
    this.#site = site;
    this.#together = together;
  }

  /** Some joiner still asks, or has not entered yet. */
  get pending(): boolean { return this.#joiners.length > 0; }

  /** A new member arrives and asks to join (through a contact server, which passes it on to the leader). */
  arrive(vanish?: 'proposed' | 'entered'): SimMember {
    const j = this.#site.add();
    if (vanish) this.vanishAt.set(j.id, vanish);
    j.joining = { state: 'asking', proposer: -1, retryAt: this.#site.tick, tries: 0 };
    this.#joiners.push(j);
    this.#site.trace(`t=${this.#site.tick} member ${j.id} asks to join`);
    return j;
  }

  /** Each tick: joiners whose proposer failed ask again; those due ask the leader. */
  ask(): void {
    this.#orphans();
    if (this.#together) this.#askTogether(); else this.#askAlone();
    this.#joiners = this.#joiners.filter((j) => j.joining!.state !== 'in' && j.stopped === null && j.alive);
  }

  /**
   * A joiner's driver stopped before the joiner was in (its start barrier): where Group.join would ask again
   * (the product's own entryFailure and isRetryableJoin decide), its attempt is dropped and it asks again,
   * from the next tick; returns whether it does (else it stops, as a Group.join that throws).
   */
  failed(j: SimMember, error: Error, vid: number): boolean {
    const state = j.joining;
    if (!state || state.state === 'in' || !j.alive || j.stopped !== null) return false;
    if (!isRetryableJoin(entryFailure(error, j.id, vid))) return false;
    this.#site.trace(`t=${this.#site.tick} joiner ${j.id}'s attempt failed in view ${vid} (${error.message}); `
      + 'it asks again');
    this.#site.closed(j);
    state.state = 'failed';
    return true;
  }

  /**
   * Member `m`'s side of admission as the simulated contact network carries it: the joiners it proposed
   * are offered the view at once (a gone one answers nothing: port 0), and told the addresses.
   */
  admissionFor(m: SimMember): Admission {
    const proposedHere = (id: number) => {
      const j = this.#site.members[id];
      return j?.joining?.state === 'proposed' && j.joining.proposer === m.id ? j : null;
    };
    return {
      committed: (change) => {
        const taken = new Set(change.proposer === m.id ? change.joined.map((j) => j.id) : []);
        if (taken.size > 0) this.#site.joinCommitted(m);
        for (const j of this.#joiners) if (!taken.has(j.id) && proposedHere(j.id)) this.#askLater(j);
      },
      // The offer reaches a joiner even across a partition: one that struck as the change committed (cutAtJoin) came
      // after the offer left. A joiner cut off from the view it enters finds out on connecting, and asks again.
      offer: (offer, _answer, publish) => {
        publish(offer.change.joined.map((x) => this.#enter(proposedHere(x.id), offer)));
      },
      addressed: (change, addresses) => {
        for (const x of change.joined) {
          const j = this.#site.members[x.id]!;
          const view = j.driver.view;
          if (j.joining?.state !== 'entering' || !view) continue;
          j.joining.state = 'connecting';
          j.driver.connect(view, addresses, this.#site.connectTimeout, (peer) => view.gone().has(peer));
        }
      },
      started: () => {},
    };
  }

  /** A joiner takes the offer: it builds the view it enters and answers its port (0: it is gone). */
  #enter(j: SimMember | null, { change, previous }: ViewOffer): number {
    if (!j || !j.alive || j.stopped !== null) return 0;
    this.#site.trace(`t=${this.#site.tick} joiner ${j.id} enters view ${change.next.vid}`);
    const view = this.#site.buildView(j, change.next, previous);
    j.driver.open(view);
    j.joining!.state = 'entering';
    j.dirty = true;
    if (this.vanishAt.get(j.id) === 'entered') this.#site.crash(j); // built its view, never connects
    return view.port;
  }

  /**
   * A joiner asks again (what it built for an offered view is dropped: a Group that fails to join closes, and
   * Group.join asks with a new one).
   */
  #askLater(j: SimMember): void {
    if (j.driver.view) this.#site.renew(j);
    j.views.clear(); // what it started of a view it never got in (its start barrier did not pass) is gone too
    j.joining!.state = 'asking';
  }

  /**
   * Joiners whose proposer failed (their connection to it broke) before they were told the addresses, and
   * those whose attempt failed (failed() above): they ask again, with a fresh driver.
   */
  #orphans(): void {
    for (const j of this.#joiners) {
      const state = j.joining!;
      if (state.state === 'failed') {
        this.#askLater(j);
        state.retryAt = this.#site.tick + 30 + Math.floor(this.#site.rand() * 100);
        continue;
      }
      if (state.state !== 'proposed' && state.state !== 'entering') continue;
      const proposer = this.#site.members[state.proposer]!;
      if (!proposer.alive || proposer.stopped !== null) this.#askLater(j);
    }
  }

  /**
   * The leader joiner `j` reaches through any contact (any joiner, when null): it leads a view that is not
   * changing, and no partition lies between them.
   */
  #leaderFor(j: SimMember | null): SimMember | undefined {
    return this.#site.members.find((m) => m.alive && m.stopped === null && (j === null || !this.#site.apart(m, j))
      && m.driver.view?.ready && !m.driver.installing && m.driver.view.protocol.leader() === m.id);
  }

  /** Joiners ask the leader again when due; the leader takes them unless a change is under way. */
  #askAlone(): void {
    const site = this.#site;
    for (const j of this.#joiners) {
      const state = j.joining!;
      if (state.state !== 'asking' || state.retryAt > site.tick || !j.alive || j.stopped !== null) continue;
      const leader = this.#leaderFor(j);
      if (leader && !holds(leader, j) && leader.driver.join([{ id: j.id, host: 'sim' }])) {
        state.state = 'proposed';
        state.proposer = leader.id;
        leader.dirty = true;
        site.trace(`t=${site.tick} member ${leader.id} takes joiner ${j.id} into its next proposal`);
      } else if (++state.tries > 400) {
        site.stop(j, 'join gave up');
      } else {
        state.retryAt = site.tick + 30 + Math.floor(site.rand() * 100);
      }
    }
  }

  /** Swarm mode: the joiners due ask together; one that is to vanish once taken crashes at once. */
  #askTogether(): void {
    const site = this.#site;
    const leader = this.#leaderFor(null);
    const due = this.#joiners.filter((j) => j.joining!.state === 'asking' && j.joining!.retryAt <= site.tick
      && j.alive && j.stopped === null && !(leader && holds(leader, j))).slice(0, MAX_JOINS_PER_CHANGE);
    if (due.length === 0) return;
    if (leader && leader.driver.join(due.map((j) => ({ id: j.id, host: 'sim' })))) {
      const ids = due.map((j) => j.id).join(',');
      site.trace(`t=${site.tick} member ${leader.id} takes joiners ${ids} into its next proposal`);
      leader.dirty = true;
      for (const j of due) {
        j.joining = { ...j.joining!, state: 'proposed', proposer: leader.id };
        if (this.vanishAt.get(j.id) === 'proposed') site.crash(j);
      }
      return;
    }
    const retryAt = site.tick + 30 + Math.floor(site.rand() * 100); // together again
    for (const j of due) {
      if (++j.joining!.tries > 400) site.stop(j, 'join gave up');
      else j.joining!.retryAt = retryAt;
    }
  }
}

/**
 * The leader's view holds joiner `j`'s id (its failed attempt, not yet removed): a contact refuses the id, and a
 * rejoining joiner waits for its removal (contact.ts requestJoin).
 */
function holds(leader: SimMember, j: SimMember): boolean {
  return leader.driver.view!.view.members.includes(j.id);
}
