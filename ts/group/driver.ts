// The member driver: the one piece of code that steps a group member and installs its views, run by a Group
// over the native fabric and by the simulator (ts/sim/group-sim.ts) over a simulated one. Everything it
// touches outside the protocol pieces is a parameter (ts/group/driver-parts.ts): the views' fabric, the
// clock, the timers, admission and state transfer. As TigerBeetle's replica runs unchanged in its VOPR, the
// seeds the simulator runs test this code, not a copy of it.
//
// A step (after every batch of table changes, and whenever asked):
//   1. the previous view's mailboxes, while the next one connects (they still carry replies)
//   2. the start barrier; once passed, the current view's mailboxes and every shard not awaiting state
//   3. unless installing or stopped: a leaving member asks to leave once what it sent is stable; peers'
//      suspicions count as its own; the view-change protocol steps (ts/membership/protocol.ts), and its
//      outcome is acted on — a commit starts an install (ts/group/install.ts), a partition or removal stops
//      the member (the host decides what then)
//   4. the coroutines waiting on something (installs, first connections) look again
//
// Steps do not nest: one asked for during a step runs right after it. A driver serves one stretch of
// membership: a member that rejoins after it was removed gets a new one (the handles carry over).

import { PartitionedError, RemovedError } from '../errors.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { Change, Joiner, StepResult } from '../membership/protocol.js';
import {
  CUT_OFF, type Admission, type DriverHost, type DriverView, type ShardStates, type Task,
} from './driver-parts.js';
import { connecting, unaddressed, ViewInstall, type InstallSite } from './install.js';
import { SubgroupChannel } from './subgroup-channel.js';

export interface DriverParts<V extends DriverView> {
  host: DriverHost<V>;
  /** The handles the owner holds, by subgroup name: they carry over from view to view (and driver to driver). */
  handles: Map<string, SubgroupChannel>;
  admission?: Admission | null;
  states?: ShardStates | null;
}

export class MemberDriver<V extends DriverView> {
  readonly selfId: number;
  readonly #host: DriverHost<V>;
  readonly #handles: Map<string, SubgroupChannel>;
  readonly #admission: Admission | null;
  readonly #states: ShardStates | null;
  #current: V | null = null;
  /** The old view while the next one connects and until it passed its barrier. */
  #previous: V | null = null;
  /** The view being installed, built and not yet current. */
  #next: V | null = null;
  #installing = false;
  readonly #failed = new Set<number>();
  #stopped: Error | null = null;
  /** leave() was called; `askedIn`: the view whose row carries the request (null: none yet). */
  #leaving: { askedIn: V | null } | null = null;
  #closed = false;
  readonly #tasks: Task[] = [];
  /** The coroutine whose segment runs now (it cannot be resumed or ended from inside itself). */
  #running: Task | null = null;
  #stepping = false;
  #stepAgain = false;
  #wakeAt = Infinity;
  #cancelWake: (() => void) | null = null;
  /** The view whose mailboxes are being polled (#direct routes by its tags). */
  #polled: V | null = null;
  readonly #site: InstallSite<V>;

  constructor(parts: DriverParts<V>) {
    this.#host = parts.host;
    this.selfId = parts.host.selfId;
    this.#handles = parts.handles;
    this.#admission = parts.admission ?? null;
    this.#states = parts.states ?? null;
    this.#site = this.#installSite();
  }

  /** The current view, once this member has one. */
  get view(): V | null { return this.#current; }
  get previous(): V | null { return this.#previous; }
  /** The view being installed, built and not yet current. */
  get next(): V | null { return this.#next; }
  /** A committed change is being installed (until the next view is current). */
  get installing(): boolean { return this.#installing; }
  /** Why this member stopped, or null. */
  get stopped(): Error | null { return this.#stopped; }
  get closed(): boolean { return this.#closed; }
  /** Members of the current view this member has found failed. */
  get failed(): ReadonlySet<number> { return this.#failed; }
  /** Coroutines still waiting (an install until its old view closes, a first view until it started). */
  get busy(): boolean { return this.#tasks.length > 0; }

  /** The open view numbered `vid` here (previous, current or being installed), or null. */
  viewOf(vid: number): V | null {
    const current = this.#current, next = this.#next, previous = this.#previous;
    if (current && current.view.vid === vid && !current.closed) return current;
    if (next && next.view.vid === vid && !next.closed) return next;
    return previous && previous.view.vid === vid && !previous.closed ? previous : null;
  }

  /**
   * This member's first view (of the group, or after a rejoin): it becomes the current one, and the handles
   * move to its shards (a handle of an earlier stretch starts afresh there).
   */
  open(view: V): void {
    this.#current = view;
    this.#take(view, true);
  }

  /**
   * Connects the first view to `members`, then starts it (see begin): the view's members it could not reach,
   * or was given no address for, are suspected. A failure to connect ends there.
   */
  connect(view: V, members: readonly MemberAddress[], timeout: number, isGone: (peer: number) => boolean): void {
    const driver = this;
    this.#run((function* connectThenBegin(): Task {
      const outcome = yield* connecting(view, members, timeout, isGone, driver.#stepNow);
      if ('error' in outcome || view !== driver.#current || view.closed) return;
      driver.begin(view, [...outcome.unreachable, ...unaddressed(view.view, members, driver.selfId)]);
    })());
  }

  /** Starts `view`: failure detection, the start barrier; the members it could not reach are suspected. */
  begin(view: V, unreachable: Iterable<number> = []): void {
    view.start(this.#stepNow);
    this.#admission?.started(view);
    for (const m of new Set(unreachable)) this.memberFailed(view, m, 'UNREACHABLE');
    this.step();
  }

  readonly #stepNow = (): void => this.step();

  step(): void {
    if (this.#closed) return;
    if (this.#stepping) {
      this.#stepAgain = true;
      return;
    }
    this.#stepping = true;
    try {
      do {
        this.#stepAgain = false;
        const held = this.#holdPushes();
        try {
          this.#stepOnce();
        } finally {
          this.#releasePushes(held);
        }
      } while (this.#stepAgain && !this.#closed);
    } finally {
      this.#stepping = false;
    }
  }

  /**
   * A step's writes to a peer leave together (ts/fabric/staged-pushes.ts): the open views' pushes are held
   * while it runs, and released — with the mailboxes' records of the step, such as the replies its
   * deliveries produced — when it ends.
   */
  #holdPushes(): V[] {
    const held: V[] = [];
    for (const view of [this.#previous, this.#current]) {
      if (view && !view.closed) {
        view.pushes.hold();
        held.push(view);
      }
    }
    return held;
  }

  /** Every held view is released, even when flushing an earlier one throws (the error still surfaces). */
  #releasePushes(held: readonly V[], from = 0): void {
    const view = held[from];
    if (view === undefined) return;
    try {
      try {
        if (!view.closed) view.mailboxes.flush();
      } finally {
        view.pushes.release();
      }
    } finally {
      this.#releasePushes(held, from + 1);
    }
  }

  #stepOnce(): void {
    const waiting = this.#tasks.length > 0 ? [...this.#tasks] : null;
    const previous = this.#previous;
    if (previous && !previous.closed) this.#poll(previous);
    const view = this.#current;
    if (view && !view.closed) {
      if (this.#passBarrier(view)) {
        this.#poll(view);
        for (const [name, channel] of view.channels) if (!this.#states?.awaiting(name)) channel.step();
      }
      if (!this.#installing && !this.#stopped) this.#stepProtocol(view);
    }
    if (waiting) for (const task of waiting) if (this.#tasks.includes(task)) this.#advance(task);
  }

  /**
   * The start barrier (ViewChangeProtocol.allInstalled), once this member announced itself: shards and
   * mailboxes write to peers only once every member is connected to every other.
   */
  #passBarrier(view: V): boolean {
    if (!view.ready && view.started && view.protocol.allInstalled()) view.markReady();
    return view.ready;
  }

  #poll(view: V): void {
    this.#polled = view;
    view.mailboxes.poll(this.#direct);
  }

  /** A point-to-point record: state for a shard this member enters, or a message for a handle. */
  readonly #direct = (from: number, tag: number, bytes: Uint8Array): void => {
    if (this.#states?.accept(tag, from, bytes)) return;
    const channel = this.#polled?.byTag.get(tag);
    if (channel) this.#handles.get(channel.subgroup)?.direct(from, bytes); // held there while state is due
  };

  #stepProtocol(view: V): void {
    if (this.#leaving) this.#askToLeave(view);
    this.#catchUp(view); // what the predicate worker's protocol did since the last step
    const result = view.protocol.step();
    this.#catchUp(view);
    if (result) this.#onOutcome(view, result);
  }

  /**
   * The protocol's notes since the last look, and the suspicions they explain: bad rows reported failed
   * (BAD_ROW: the worker posts a bad row's note before the suspicion reaches the row), then the others'
   * suspicions, and only then every note to the logs, so a suspicion is logged before the wedge it caused.
   */
  #catchUp(view: V): void {
    const notes = view.protocol.takeNotes();
    for (const note of notes ?? []) if (note.event === 'badRow') this.memberFailed(view, note.member, 'BAD_ROW', false);
    this.#peersSuspicions(view);
    for (const note of notes ?? []) this.#host.noted?.(view.view.vid, note);
  }

  /**
   * Once wedged, others' suspicions count as this member's (they are OR-ed): each reported once, as if found
   * here. One this member's own predicate worker found (its row may show it before this thread read the
   * worker's event) is reported with the worker's reason instead.
   */
  #peersSuspicions(view: V): void {
    if (!view.protocol.wedged) return;
    for (const m of view.protocol.suspects()) {
      if (m !== this.selfId) this.memberFailed(view, m, this.#suspicionReason(view, m), false);
    }
  }

  #suspicionReason(view: V, member: number): string {
    return view.ownSuspicion(member) ?? 'SUSPECTED_BY_PEER';
  }

  /** Hands the protocol's steps since the last report (wedged, proposed) to the host's logs. */
  #report(view: V): void {
    const notes = view.protocol.takeNotes();
    if (notes) for (const note of notes) this.#host.noted?.(view.view.vid, note);
  }

  #onOutcome(view: V, result: NonNullable<StepResult>): void {
    const { vid, members } = view.view;
    switch (result.type) {
      case 'commit':
        this.#reportRemoved(view, result.change);
        this.#run(new ViewInstall(this.#site, view, result.change).run());
        break;
      case 'partitioned': {
        const connection = view.connection; // an error: connecting failed here, and every member counted unreachable
        const failure = connection && 'error' in connection ? connection.error : undefined;
        this.#halt(new PartitionedError(this.selfId, vid, members.length, result.unreachable, failure), view);
        break;
      }
      case 'suspected': this.#removed(vid + 1, result.by); break;
      case 'dissolved': this.#removed(vid + 1); break;
    }
  }

  /**
   * The members a commit removes that this member never reported failed, reported now as found by a peer.
   * With the worker engine the change can commit while this thread is busy (the predicate worker steps the
   * protocol), before it heard of the failure; with the main engine every one was reported when it wedged.
   */
  #reportRemoved(view: V, change: Change): void {
    for (const m of change.removed) {
      if (m === this.selfId || change.left.includes(m) || this.#failed.has(m)) continue;
      this.#failed.add(m);
      const reason = this.#suspicionReason(view, m);
      view.mailboxes.fail(m, reason);
      this.#host.memberFailed(m, reason);
    }
  }

  /**
   * A leaving member asks to be removed once what it sent is delivered (nothing of it is left behind), in
   * each view it is still a member of: a request made in a view whose change had been proposed already is
   * not in that change, and the next view's rows start without it — it is asked again there.
   */
  #askToLeave(view: V): void {
    if (!this.#leaving || this.#leaving.askedIn === view) return;
    for (const h of this.#handles.values()) if (!h.settled) return; // the next arrivals step again
    this.#leaving.askedIn = view;
    view.protocol.leave();
  }

  /**
   * A member of `view` failed: its heartbeat stalled, its connection broke, a peer suspects it, or it could
   * not be reached. Reported once per view, and only while the view is current and no change is applied.
   */
  memberFailed(view: V, member: number, reason: string, step = true): void {
    if (this.#closed || view !== this.#current || view.closed || view.protocol.applied) return;
    if (reason === CUT_OFF) { // this member is the one cut off: it suspects nobody, and its next step stops it
      view.protocol.cutOff(member);
      if (step) this.step();
      return;
    }
    if (!view.view.members.includes(member) || this.#failed.has(member)) return;
    this.#failed.add(member);
    view.mailboxes.fail(member, reason);
    view.protocol.suspect(member);
    this.#host.memberFailed(member, reason);
    this.#report(view); // after the suspicion: it is why the view wedged
    if (step) this.step();
  }

  /**
   * Joiners the leader takes into its next proposal (admission, as a contact server batches them): false
   * (ask again later) while a change is under way, or when the protocol refuses (see ViewChangeProtocol.join).
   */
  join(joiners: readonly Joiner[]): boolean {
    const view = this.#current;
    if (this.#closed || this.#installing || this.#stopped || !view || view.closed) return false;
    const taken = view.protocol.join(joiners);
    this.#report(view);
    return taken;
  }

  /** This member leaves cleanly: sends reject with `refusal` from now on; it asks once what it sent is stable. */
  leave(refusal: Error): void {
    if (this.#leaving) return;
    this.#leaving = { askedIn: null };
    for (const h of this.#handles.values()) h.refuseSends(refusal);
    this.#host.schedule();
  }

  /** This member can go no further: its protocol no longer steps, and sends and calls reject with `error`. */
  stop(error: Error): void {
    this.#stopped ??= error;
    for (const h of this.#handles.values()) h.stop(error);
  }

  /** Ends every coroutine (a next view not yet current closes) and closes the views. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelWake?.();
    for (const task of this.#tasks.splice(0)) if (task !== this.#running) task.return();
    const previous = this.#previous;
    this.#previous = null;
    await previous?.close();
    await this.#current?.close();
  }

  #removed(vid: number, suspectedBy?: readonly number[]): void {
    this.#halt(new RemovedError(this.selfId, vid, this.#leaving !== null, suspectedBy), this.#current!);
  }

  #halt(error: Error, view: V): void {
    this.#stopped ??= error;
    this.#host.stopped(error, view);
  }

  /** The handles move to `view`'s shards (`resume`: afresh, after a rejoin); new shards get handles. */
  #take(view: V, resume: boolean): void {
    for (const [name, handle] of this.#handles) {
      const channel = view.channels.get(name);
      if (channel) {
        if (resume) handle.resume(channel);
        else handle.attach(channel);
        continue;
      }
      this.#handles.delete(name);
      this.#host.dropped(name, handle, view);
    }
    // Handles (and the host's objects) exist before the first delivery: no command finds a shard without them.
    for (const [name, channel] of view.channels) {
      if (this.#handles.has(name)) continue;
      const handle = new SubgroupChannel(name, this.selfId, channel);
      this.#handles.set(name, handle);
      this.#host.adopted(name, handle);
    }
  }

  // ---- coroutines ---------------------------------------------------------------------------------------

  /** Starts a coroutine: at once inside a step, else with a step now. */
  #run(task: Task): void {
    this.#tasks.push(task);
    if (this.#stepping) this.#advance(task);
    else this.step();
  }

  #advance(task: Task): void {
    let result: IteratorResult<number, void>;
    this.#running = task;
    try {
      result = task.next();
    } catch (error) {
      this.#forget(task);
      throw error;
    } finally {
      this.#running = null;
    }
    if (result.done) this.#forget(task);
    else if (this.#closed) task.return(); // closed from inside its own segment
    else this.#wakeIn(result.value);
  }

  #forget(task: Task): void {
    const i = this.#tasks.indexOf(task);
    if (i >= 0) this.#tasks.splice(i, 1);
  }

  /** A step no later than `delay` from now (the earliest of the waits asked for wins). */
  #wakeIn(delay: number): void {
    if (!Number.isFinite(delay)) return;
    const at = this.#host.clock.now() + Math.max(0, delay);
    if (at >= this.#wakeAt) return;
    this.#cancelWake?.();
    this.#wakeAt = at;
    this.#cancelWake = this.#host.timers.after(Math.max(0, delay), () => {
      this.#wakeAt = Infinity;
      this.#cancelWake = null;
      this.#host.schedule();
    });
  }

  #installSite(): InstallSite<V> {
    const driver = this;
    return {
      host: this.#host, admission: this.#admission, states: this.#states, handles: this.#handles, failed: this.#failed,
      get previous() { return driver.#previous; },
      get current() { return driver.#current; },
      setNext: (view) => { this.#next = view; },
      setPrevious: (view) => { this.#previous = view; },
      setInstalling: (installing) => { this.#installing = installing; },
      removed: (vid) => this.#removed(vid),
      halt: (error, view) => this.#halt(error, view),
      switchTo: (view) => {
        this.#current = view;
        this.#next = null;
        this.#take(view, false);
      },
      begin: (view, unreachable) => this.begin(view, unreachable),
      step: this.#stepNow,
    };
  }
}
