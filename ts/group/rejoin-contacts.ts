// Where a member that is out of the group asks to enter it again (rejoin, ts/group/group.ts): every other
// member's contact address. Each view's table holds the contact port each member published in it; a member
// that stops in a view it never connected (cut off as it installed it) reads no port there, so the addresses
// it read in earlier views are kept and used for the members of the view it stops in. Configured contact
// addresses and the ones it joined through are added.

import type { GroupConfig } from './config.js';
import { contactList, type JoinOptions } from './join-options.js';
import type { ViewEngine } from './view-engine.js';

export class RejoinContacts {
  readonly #selfId: number;
  readonly #addressOf: (member: number, port: number) => string;
  /** The contact address each other member last published in a view this member read, by id. */
  readonly #seen = new Map<number, string>();

  constructor(selfId: number, addressOf: (member: number, port: number) => string) {
    this.#selfId = selfId;
    this.#addressOf = addressOf;
  }

  /** Notes the contact ports the members of `engine`'s view published in its table. */
  learn(engine: ViewEngine): void {
    for (const m of engine.view.members) {
      const port = m === this.#selfId ? null : engine.protocol.contactPortOf(m);
      if (port !== null) this.#seen.set(m, this.#addressOf(m, port));
    }
  }

  /** The addresses to ask, for a member that stopped in `engine`'s view (all it knows without one). */
  list(engine: ViewEngine | null, config: GroupConfig, options: Pick<JoinOptions, 'contact'>): string[] {
    if (engine) this.learn(engine);
    const out = new Set<string>();
    for (const m of engine?.view.members ?? [...this.#seen.keys()]) {
      const address = this.#seen.get(m);
      if (address !== undefined) out.add(address);
    }
    for (const m of config.members) if (m.id !== this.#selfId && m.contact) out.add(m.contact);
    for (const c of options.contact === undefined ? [] : contactList(options.contact)) out.add(c);
    return [...out];
  }
}
