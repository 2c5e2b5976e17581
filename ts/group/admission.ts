// Admission at a member of a running group (DESIGN.md §6 "Join"): its contact server (ts/group/contact.ts),
// and the leader's side of a join. A join request is refused when its id is taken, sent to the leader's
// contact address when this member does not lead, asked to retry while a change is under way, and otherwise
// batched (requests within JOIN_BATCH_MS go into one change) for the leader's next proposal. Once the
// change commits, the member driver (ts/group/driver.ts) has this member, as proposer, offer each joiner
// the next view and publish the port it answers; once the next view's addresses are known, the joiners
// are told them. While the first view forms by joins, requests go to ts/group/first-view.ts instead.

import { formatAddress, parseAddress } from '../address.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { Change, Joiner } from '../membership/protocol.js';
import { JOIN_HOST_BYTES, MAX_JOINS_PER_CHANGE } from '../membership/columns.js';
import type { GroupConfig } from './config.js';
import { ContactServer, offerView, type ContactSession, type JoinOffer } from './contact.js';
import type { MemberDriver } from './driver.js';
import type { Admission, DriverView, ViewOffer } from './driver-parts.js';
import type { FirstViewGathering } from './first-view.js';
import type { ViewEngine } from './view-engine.js';

/** Join requests this close together go into one view change. */
const JOIN_BATCH_MS = 20;

export interface AdmissionParts {
  selfId: number;
  config: GroupConfig;
  /** The host of every member this one has known (the configuration's, and joiners'): peers' addresses. */
  hosts: Map<number, string>;
  /** The host the others reach this member at. */
  host: string;
  /** Where the contact server listens (JoinOptions.contactListen, else the configured contact, else this). */
  contactListen: string;
  key: Buffer | null;
  /** The driver of this member's current stretch of membership. */
  driver(): MemberDriver<ViewEngine>;
  /** The suspicion timeout in force (ms), named in what a joiner that did not answer is told. */
  suspicionTimeoutMs: number;
  /** This member closed. */
  closed(): boolean;
  /** This member is closed, stopped or leaving: joiners ask another member. */
  refusing(): boolean;
  /** A refused contact attempt (rate-limited by the server). */
  warn(error: Error): void;
  /** The contact server opened at this address (JoinOptions.onContactOpen). */
  opened?: (address: string) => void;
}

interface Asked { session: ContactSession; joiner: Joiner }

export class GroupAdmission implements Admission {
  readonly #p: AdmissionParts;
  #contact: ContactServer | null = null;
  /** Join requests that arrived within JOIN_BATCH_MS of each other: one change takes them together. */
  #batch: Asked[] = [];
  #batchTimer: NodeJS.Timeout | null = null;
  /** Joiners this member (as leader) proposed, by id: offered the view once it commits. */
  readonly #sessions = new Map<number, ContactSession>();
  /** While the first view forms by joins; null otherwise. */
  firstView: FirstViewGathering | null = null;

  constructor(parts: AdmissionParts) {
    this.#p = parts;
  }

  /** The contact server's port, once it listens. */
  get port(): number { return this.#contact?.port ?? 0; }

  /** Starts the contact server (again, after a rejoin) and publishes its port in the current view's table. */
  async open(): Promise<void> {
    const opening = !this.#contact;
    if (!this.#contact) {
      const onJoin = (session: ContactSession, joiner: Joiner) => this.#onJoinRequest(session, joiner);
      this.#contact = await ContactServer.listen(this.#p.contactListen, onJoin, {
        key: this.#p.key, tls: this.#p.config.contactTls === true, warn: (error) => this.#p.warn(error),
      });
    }
    if (this.#p.closed()) {
      this.close();
      return;
    }
    this.#p.driver().view?.protocol.publishContactPort(this.#contact.port);
    if (opening) {
      this.#p.opened?.(formatAddress({ ...parseAddress(this.#p.contactListen, 'contact address'), port: this.port }));
    }
  }

  /** Stops taking joiners: the server closes, and joiners batched or proposed are told to ask again. */
  close(): void {
    this.#contact?.close();
    this.#contact = null;
    if (this.#batchTimer) clearTimeout(this.#batchTimer);
    this.#batchTimer = null;
    for (const { session } of this.#batch.splice(0)) {
      session.send({ retry: 'this member is stopping' });
      session.close();
    }
    this.#closeSessions();
  }

  started(view: DriverView): void {
    if (this.#contact) view.protocol.publishContactPort(this.#contact.port);
  }

  committed(change: Change): void {
    for (const j of change.joined) this.#p.hosts.set(j.id, j.host);
    // Joiners this member was asked to take that the committed change does not have ask again.
    const inChange = new Set(change.proposer === this.#p.selfId ? change.joined.map((j) => j.id) : []);
    for (const [id, session] of this.#sessions) {
      if (inChange.has(id)) continue;
      session.send({ retry: 'the change that would have taken it ended another way' });
      session.close();
      this.#sessions.delete(id);
    }
  }

  /**
   * Tells each joiner the view it enters, takes the port its new engine listens on, and publishes the ports
   * (0 for a joiner that did not answer in time: the new view removes it). A joiner that did not answer is
   * out of this view (the others leave it out and suspect it): told so, it asks again once the group has
   * removed it, instead of connecting to a view without it.
   */
  offer({ change, previousMembers, previous }: ViewOffer, answerMs: number,
    publish: (ports: readonly number[]) => void): void {
    const { hosts, host } = this.#p;
    const next = change.next;
    const offer: JoinOffer = {
      view: next, previous: previousMembers, previousSize: previous.size, joined: previous.joined,
      ...(previous.voters ? { previousVoters: [...previous.voters] } : {}),
      hosts: Object.fromEntries(next.members.map((id) => [id, hosts.get(id) ?? host])),
    };
    const answers = change.joined.map((j) => offerView(this.#sessions.get(j.id), offer, answerMs));
    void Promise.all(answers).then((ports) => {
      change.joined.forEach((j, k) => {
        if (ports[k]! > 0) return;
        const session = this.#sessions.get(j.id);
        this.#sessions.delete(j.id);
        session?.send({ retry: `member ${j.id} did not answer its offer of view ${next.vid} within the suspicion `
          + `timeout (${this.#p.suspicionTimeoutMs} ms); the group removes it, then it may join again` });
        session?.close();
      });
      publish(ports);
    });
  }

  addressed(change: Change, addresses: readonly MemberAddress[]): void {
    for (const j of change.joined) this.#sessions.get(j.id)?.send({ addresses: [...addresses] });
    this.#closeSessions();
  }

  #closeSessions(): void {
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
  }

  /**
   * A join request: refused if the id is taken, sent to the leader's contact address if this member does
   * not lead, asked to retry while a change is under way; otherwise batched for the leader's next proposal.
   */
  #onJoinRequest(session: ContactSession, joiner: Joiner): void {
    const { selfId, hosts, host } = this.#p;
    const answer = (message: Parameters<ContactSession['send']>[0]) => { session.send(message); session.close(); };
    if (this.#p.refusing()) return answer({ retry: `member ${selfId} is stopping or leaving; ask another member` });
    if (this.firstView?.forming) return this.firstView.take(session, joiner);
    const driver = this.#p.driver();
    const engine = driver.view;
    if (!engine) return answer({ retry: 'the first view is forming' });
    const { vid, members } = engine.view;
    if (members.includes(joiner.id)) {
      // A joiner the view took whose leader failed before it could connect: the group is removing it.
      if (engine.gone().has(joiner.id)) {
        return answer({ retry: `member ${joiner.id} is in view ${vid} but failed; the group is removing it` });
      }
      return answer({ inView: true, refused: `member ${joiner.id} is in view ${vid} already; give the new member an id `
        + `the view does not have (${members.join(', ')}), or wait until the group removed the old one` });
    }
    if (new TextEncoder().encode(joiner.host).byteLength > JOIN_HOST_BYTES) {
      return answer({ refused: `host '${joiner.host}' is longer than ${JOIN_HOST_BYTES} bytes; give an IP address` });
    }
    const leader = engine.protocol.leader();
    if (leader !== selfId) {
      const port = leader === null ? null : engine.protocol.contactPortOf(leader);
      if (port === null) return answer({ retry: 'the leader has not published its contact address yet' });
      return answer({ redirect: formatAddress({ host: hosts.get(leader!) ?? host, port }) });
    }
    if (driver.installing || !engine.ready || engine.protocol.wedged) {
      return answer({ retry: 'a view change is under way' });
    }
    if (engine.protocol.anyReceiving()) return answer({ retry: 'a member that joined is still receiving state' });
    this.#batch.push({ session, joiner });
    this.#batchTimer ??= setTimeout(() => this.#flush(), JOIN_BATCH_MS);
  }

  /** The batched joiners (distinct ids, at most MAX_JOINS_PER_CHANGE) go into the leader's next proposal. */
  #flush(): void {
    this.#batchTimer = null;
    const batch = this.#batch.splice(0).filter(({ session }) => !session.closed);
    const taken: Asked[] = [];
    for (const entry of batch) {
      if (taken.length < MAX_JOINS_PER_CHANGE && !taken.some((t) => t.joiner.id === entry.joiner.id)) taken.push(entry);
      else {
        entry.session.send({ retry: 'too many joiners at once, or the same id twice' });
        entry.session.close();
      }
    }
    if (taken.length === 0) return;
    const driver = this.#p.driver();
    if (!driver.join(taken.map((t) => t.joiner))) {
      for (const { session } of taken) {
        session.send({ retry: 'a view change is under way, or a member that joined is still receiving state' });
        session.close();
      }
      return;
    }
    for (const { session, joiner } of taken) {
      session.send({ accepted: true });
      this.#sessions.set(joiner.id, session);
    }
    driver.step();
  }
}
