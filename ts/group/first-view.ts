// The first view by joins (DESIGN.md §6): when the configuration's members are too few for some shard's
// minimum, the first of them takes joiners through its contact port, in join order, until every shard can
// reach its minimum, then forms view 0 of itself and them — it offers each the view, takes the port its
// engine listens on, and hands out the addresses (Group connects them like any view's).

import { ClosedError, ConfigError } from '../errors.js';
import type { Joiner } from '../membership/protocol.js';
import type { View } from '../membership/view.js';
import { firstViewPlans } from '../membership/plans.js';
import type { GroupConfig } from './config.js';
import { offerView, type ContactSession, type JoinOffer } from './contact.js';

export interface FirstViewParts {
  selfId: number;
  config: GroupConfig;
  /** The host of every member known: the joiners' are added as they are offered the view. */
  hosts: Map<number, string>;
  /** How long a joiner may take to answer the offer (one suspicion timeout: see gather). */
  answerMs: number;
  /** This member closed: a view still forming gives up. */
  closed(): boolean;
}

export interface FirstViewJoiner { session: ContactSession; joiner: Joiner }

export class FirstViewGathering {
  readonly #p: FirstViewParts;
  /** Who asked, in join order. */
  #waiting: FirstViewJoiner[] = [];
  /** Woken when the joiners are enough (or the member closes). */
  #adequate: (() => void) | null = null;
  #formed = false;

  constructor(parts: FirstViewParts) {
    this.#p = parts;
  }

  /**
   * The gathering of a member whose configuration's members are too few for some shard's minimum: it must be
   * the first of them, and have a contact address (`hasContact`) the joiners can know.
   */
  static byJoins(parts: FirstViewParts, hasContact: boolean): FirstViewGathering {
    const first = parts.config.members[0]!.id;
    if (first !== parts.selfId) {
      throw new ConfigError(`the configuration's members are too few for its subgroups, so the first view forms `
        + `by joins: start member ${first} first, then the others with contact: '<member ${first}'s contact `
        + 'address>\'');
    }
    if (!hasContact) {
      throw new ConfigError(`the first view forms by joins, so member ${parts.selfId} needs a contact address the `
        + 'others can know: add "contact": "host:port" to its entry in the configuration');
    }
    return new FirstViewGathering(parts);
  }

  /** The first view has not formed yet: join requests come here. */
  get forming(): boolean { return !this.#formed; }

  /** A joiner while the first view forms: taken in join order; the view forms once they are enough. */
  take(session: ContactSession, joiner: Joiner): void {
    const waiting = this.#waiting;
    if (joiner.id === this.#p.selfId || waiting.some((w) => w.joiner.id === joiner.id)) {
      session.send({ refused: `member ${joiner.id} has asked to join already (or is the member forming the first `
        + 'view); give each member its own id' });
      session.close();
      return;
    }
    const entry = { session, joiner };
    waiting.push(entry);
    session.onClose(() => {
      const i = this.#waiting.indexOf(entry);
      if (i >= 0) this.#waiting.splice(i, 1);
    });
    session.send({ accepted: true });
    if (this.#enough()) this.#adequate?.();
  }

  /**
   * Waits until the joiners are enough for a first view, offers it to them and takes their ports. A joiner
   * that does not answer within one suspicion timeout must not be in view 0 — it would count toward its
   * majority, and enough vanished joiners would stop the rest — so the ones that answered are told to ask
   * again (they do, at once) and the first view is gathered anew without it.
   */
  async gather(): Promise<{ view: View; joined: FirstViewJoiner[]; ports: number[] }> {
    const { selfId, hosts } = this.#p;
    for (;;) {
      // (those that asked during a failed offer may be enough)
      if (!this.#enough()) await new Promise<void>((resolve) => { this.#adequate = resolve; });
      this.#adequate = null;
      if (this.#p.closed()) throw new ClosedError('this group member');
      const joined = this.#waiting.splice(0);
      const view: View = { vid: 0, members: [selfId, ...joined.map(({ joiner }) => joiner.id)] };
      for (const { joiner } of joined) hosts.set(joiner.id, joiner.host);
      const offer: JoinOffer = {
        view, previous: [], previousSize: view.members.length, joined: [],
        hosts: Object.fromEntries(view.members.map((id) => [id, hosts.get(id)!])),
      };
      const ports = await Promise.all(joined.map(({ session }) => offerView(session, offer, this.#p.answerMs)));
      if (this.#p.closed()) throw new ClosedError('this group member');
      if (ports.every((p) => p > 0)) {
        // Those that asked meanwhile join the running group instead.
        this.#formed = true;
        this.close('the first view has formed; ask again');
        return { view, joined, ports };
      }
      const silent = joined.filter((_, k) => ports[k] === 0).map(({ joiner }) => joiner.id);
      for (const { session } of joined) {
        session.send({ retry: `member ${silent.join(', ')} did not answer the first view's offer; forming it again `
          + 'without' });
        session.close();
      }
    }
  }

  /** Tells the joiners waiting to ask again (`retry`), or just closes them; a gathering still waiting gives up. */
  close(retry?: string): void {
    for (const { session } of this.#waiting.splice(0)) {
      if (retry) session.send({ retry });
      session.close();
    }
    this.#adequate?.();
  }

  #enough(): boolean {
    return firstViewPlans(this.#p.config, [this.#p.selfId, ...this.#waiting.map((w) => w.joiner.id)]) !== null;
  }
}
