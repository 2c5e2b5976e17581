// Installing the next view at one member (DESIGN.md §6), once a change is committed: one coroutine of the
// member driver (ts/group/driver.ts), in the phases status().lastInstall times:
//
//   trimmed     every shard of the old view delivers exactly the messages inside the trim; each handle
//               takes the messages the old view did not deliver, to send first in the next
//   engine      the next view's tables are built (fresh, DESIGN.md §6), bound, and listening
//   published   its port is published in the old table; the proposer offers the view to its joiners
//   ports       the others' ports are read from the old table (a joiner's from its proposer's row)
//   connected   every member of the next view that is reachable is connected
//   (switch)    the next view becomes the current one: its shards take the handles, failure detection
//               starts, and this member announces itself connected; the unreachable are suspected there
//   ready       the start barrier passed: the view is installed, and the old one closes
//
// The coroutine yields where it waits, and the driver resumes it at its next step (a Group steps when its
// tables change, the simulator when its scheduler picks the member) or once the longest wait it yielded
// has passed. A wait on a member that failed after the commit ends when the old view finds it gone; a wait
// on a joiner lasts one suspicion timeout at most: a joiner that vanished costs the group that much.

import type { MemberAddress } from '../fabric/peers.js';
import type { Change } from '../membership/protocol.js';
import type { View } from '../membership/view.js';
import type { Admission, Connection, DriverHost, DriverView, ShardStates, StatePlan, Task } from './driver-parts.js';
import type { SubgroupChannel } from './subgroup-channel.js';
import { previousOf } from './view-parts.js';

/** What an install reaches of its driver. */
export interface InstallSite<V extends DriverView> {
  readonly host: DriverHost<V>;
  readonly admission: Admission | null;
  readonly states: ShardStates | null;
  readonly handles: ReadonlyMap<string, SubgroupChannel>;
  /** Members found failed in the current view: failures are per view (see #switch). */
  readonly failed: Set<number>;
  /** The view being installed (its tables take writes), or null. */
  setNext(view: V | null): void;
  /** The old view, kept open while the next one connects (its mailboxes still carry replies). */
  setPrevious(view: V | null): void;
  readonly previous: V | null;
  readonly current: V | null;
  /** While installing, the old view's protocol does not step, and this member does not ask to leave. */
  setInstalling(installing: boolean): void;
  /** The next view has no place for this member. */
  removed(vid: number): void;
  /** This member can go no further (the next view cannot be built). */
  halt(error: Error, view: V): void;
  /** `view` becomes the current one: the handles move to its shards. */
  switchTo(view: V): void;
  /** Starts `view` (announces this member connected) and suspects the members it could not reach. */
  begin(view: V, unreachable: Iterable<number>): void;
  /** A step now (or right after the one under way). */
  step(): void;
}

/**
 * The members of `view` other than `selfId` that `addresses` leaves out: the member that handed them out
 * found them gone, or they never published a port. They are unreachable from the start, as the ones that
 * do not answer: without this a joiner told fewer addresses than its view has would wait on members it
 * never dials, and begin a view whose majority it cannot reach as if it could.
 */
export function unaddressed(view: View, addresses: readonly MemberAddress[], selfId: number): number[] {
  return view.members.filter((m) => m !== selfId && !addresses.some((a) => a.id === m));
}

/** Waits until `view` has connected to `members` (or could not); `step` steps the driver at once. */
export function* connecting(view: DriverView, members: readonly MemberAddress[], timeout: number,
  isGone: (peer: number) => boolean, step: () => void): Generator<number, Connection, undefined> {
  view.connect(members, timeout, isGone, step);
  for (;;) {
    const outcome = view.connection;
    if (outcome) return outcome;
    yield Infinity; // resumed by the step the view asks for once it is done
  }
}

/** One committed change being installed here. */
export class ViewInstall<V extends DriverView> {
  readonly #site: InstallSite<V>;
  readonly #old: V;
  readonly #change: Change;
  readonly #selfId: number;
  /** Each phase's clock reading, the commit's first. */
  readonly #phases: Array<[string, number]> = [];
  #next: V | null = null;
  #plan: StatePlan | null = null;
  #switched = false;
  #sent = false;
  /** A wait on a joiner's answer or connection lasts at most this long (on a member: until it is found gone). */
  readonly #installLimit: number;
  /** Past this, the next view stops waiting for its joiners to connect. */
  #joinerDeadline = Infinity;

  constructor(site: InstallSite<V>, old: V, change: Change) {
    this.#site = site;
    this.#old = old;
    this.#change = change;
    this.#selfId = site.host.selfId;
    const { connectTimeout, suspicionTimeout } = site.host.limits;
    this.#installLimit = Math.min(connectTimeout, suspicionTimeout);
  }

  *run(): Task {
    try {
      if (!this.#end() || !this.#build()) return;
      const addresses = yield* this.#ports();
      const unreachable = yield* this.#connect(addresses);
      this.#switch(addresses, unreachable);
      yield* this.#barrier();
    } finally {
      // Cut off (the member closed) or over: snapshots not sent are dropped, a next view not switched to closes.
      if (!this.#sent) this.#plan?.drop();
      if (this.#next && !this.#switched) {
        this.#site.setNext(null);
        void this.#next.close();
      }
    }
    this.#closeOld();
  }

  #mark(phase: string): void {
    this.#phases.push([phase, this.#site.host.clock.now()]);
  }

  /** The old view ends at the trim; false when this member goes no further. */
  #end(): boolean {
    const site = this.#site, change = this.#change;
    site.setInstalling(true);
    this.#mark('commit');
    // State this member still waits for cannot come now (its source is in the old view's mailboxes), and
    // without it this member can neither serve its shard nor hand the state on: it stops (ShardStates).
    if (site.states?.cutOff(change)) return false;
    const goesOn = change.next.members.includes(this.#selfId);
    const resend = site.host.rules?.resendUnsent !== false;
    const unsent = new Map<string, number>();
    for (const [name, handle] of site.handles) {
      const end = this.#old.channels.get(name)?.finishView(change.trims, goesOn);
      handle.detach(resend ? end?.unsent ?? [] : [], end?.deliveredBeyond);
      unsent.set(name, end?.unsent.length ?? 0);
    }
    this.#mark('trimmed');
    site.admission?.committed(change);
    site.host.committed(this.#old, change, unsent);
    if (!goesOn) {
      site.removed(change.next.vid);
      return false;
    }
    return true;
  }

  /** Builds the next view, publishes its port, and offers it to the joiners (as their proposer). */
  #build(): boolean {
    const site = this.#site, old = this.#old, change = this.#change;
    const previous = previousOf(old, change, site.host.rules);
    // A next view the configuration cannot be planned on (too few members for a shard's minimum) stops
    // this member: both the transfers and the tables plan it.
    try {
      this.#plan = site.states?.plan(old.view.members, change.next.members) ?? null;
      this.#next = site.host.buildView(change.next, previous);
    } catch (error) {
      site.halt(error as Error, old);
      return false;
    }
    this.#mark('engine');
    site.setNext(this.#next);
    site.setPrevious(old);
    old.protocol.publishNextPort(change.proposal, this.#next.port);
    if (change.proposer === this.#selfId) {
      const offer = { change, previousMembers: old.view.members, previous };
      site.admission?.offer(offer, this.#installLimit, (ports) => {
        if (!old.closed) old.protocol.publishJoinPorts(change.proposal, ports);
      });
    }
    this.#mark('published');
    // The old view's state, exactly to the trim, for the members that enter a shard of this one's: no shard
    // delivers until its handle moves to the next view, so it is taken here, after the port is out.
    this.#plan?.snapshot();
    return true;
  }

  /**
   * Waits for the next view's ports in the old table. A member's port is waited for until the old view
   * finds it gone — its connection broke, or its heartbeat stalled for the suspicion timeout — so one that
   * died after the commit costs the group no more than a suspicion would; one that is alive there (its
   * heartbeat advances) but slow to apply the commit and build the view (its main thread starved on a busy
   * machine) is waited for up to connectTimeout, as #connect waits for it: a fixed suspicion timeout here
   * took a live member that applied the commit a second after the others for a failed one. A joiner's port
   * is its proposer's to publish (within a suspicion timeout of offering), so that wait is one on the
   * proposer, bounded the same way.
   */
  *#ports(): Generator<number, MemberAddress[], undefined> {
    const { clock, limits } = this.#site.host;
    const deadline = clock.now() + limits.connectTimeout;
    let addresses: MemberAddress[] | null;
    while ((addresses = this.#addresses(deadline)) === null) yield limits.portPoll;
    this.#joinerDeadline = clock.now() + this.#installLimit;
    this.#site.admission?.addressed(this.#change, addresses);
    this.#mark('ports');
    return addresses;
  }

  /**
   * The next view's members with the ports they published in the old table, or null while some are still
   * missing (until `deadline`); a member the old view finds gone is left out, and so is a joiner whose
   * proposer failed or that never answered (port 0): the next view removes them.
   */
  #addresses(deadline: number): MemberAddress[] | null {
    const { host } = this.#site;
    const old = this.#old, change = this.#change;
    // Gone: suspected in the old table, or failed since this member applied the commit (its connection
    // broke, or its heartbeat stalled) — a member that died after the commit never publishes a port.
    const gone = old.gone();
    const out: MemberAddress[] = [];
    let missing = false;
    for (const id of change.next.members) {
      if (id === this.#selfId) {
        out.push({ id, address: host.addressOf(id, this.#next!.port) });
        continue;
      }
      const k = change.joined.findIndex((j) => j.id === id);
      const port = k >= 0 ? old.protocol.joinPortOf(change, k) : old.protocol.nextPortOf(id, change.proposal);
      if (port !== null && port > 0) out.push({ id, address: host.addressOf(id, port) });
      else if (port === null && !gone.has(k >= 0 ? change.proposer : id)) {
        missing = true;
      }
    }
    return !missing || host.clock.now() > deadline ? out : null;
  }

  /**
   * Connects to the next view's members. One that dies after publishing its port is not waited for (it
   * may be the one to dial): the old view finds it gone; one that is alive there but slow here (its workers
   * start cold when two changes follow each other on a busy machine) is waited for, up to connectTimeout. A
   * joiner has no old view to show it alive: it is waited for until its deadline only.
   */
  *#connect(addresses: readonly MemberAddress[]): Generator<number, number[], undefined> {
    const { clock, limits } = this.#site.host;
    const joiners = new Set(this.#change.joined.map((j) => j.id));
    const isGone = (peer: number) => this.#old.gone().has(peer)
      || (joiners.has(peer) && clock.now() > this.#joinerDeadline);
    const outcome = yield* connecting(this.#next!, addresses, limits.connectTimeout, isGone, this.#site.step);
    this.#mark('connected');
    return 'error' in outcome ? this.#change.next.members.filter((m) => m !== this.#selfId) : [...outcome.unreachable];
  }

  /** The next view becomes the current one. */
  #switch(addresses: readonly MemberAddress[], unreachable: number[]): void {
    const site = this.#site, change = this.#change, next = this.#next!;
    // Failures are per view: a removed member's id may come back as a joiner, which starts unsuspected, and a
    // member that failed after the proposal was fixed is in the next view, where it must be suspected again
    // (below, as unreachable, or by the view's failure detector): were it still counted as reported, this
    // member would never mark it in the next view's table, and would wait on it (as leader, or at the start
    // barrier) whenever the members that did mark it are cut off before their rows arrive here.
    site.failed.clear();
    site.switchTo(next);
    this.#switched = true;
    this.#plan?.receive(next);
    site.setInstalling(false);
    site.begin(next, [...unreachable, ...unaddressed(change.next, addresses, this.#selfId)]);
    for (const handle of site.handles.values()) for (const m of change.removed) handle.memberGone(m);
  }

  /**
   * Installed once the start barrier passes (more than half of the old view connected in the new one). The
   * old view closes once the new one passed it — until then a member still connecting must not see this
   * one's old connections break, which would look like a failure — or once connectTimeout has passed.
   */
  *#barrier(): Task {
    const site = this.#site, next = this.#next!;
    const { clock, limits } = site.host;
    const deadline = clock.now() + limits.connectTimeout;
    while (!next.ready && !next.closed && clock.now() < deadline) yield deadline - clock.now();
    if (!next.ready || site.current !== next) return;
    this.#mark('ready');
    const start = this.#phases[0]![1];
    const phasesMs = Object.fromEntries(this.#phases.map(([phase, t]) => [phase, Math.round((t - start) * 100) / 100]));
    site.host.installed(next, this.#change, phasesMs);
    this.#plan?.send(next);
    this.#sent = true;
  }

  #closeOld(): void {
    const site = this.#site, old = this.#old;
    if (site.previous === old) site.setPrevious(null);
    const plan = this.#plan;
    void old.close().finally(() => {
      plan?.settle();
      site.host.installEnded();
    });
  }
}
