// What the member driver (ts/group/driver.ts) is given: the contracts between the one piece of code that
// steps a member and installs its views, and the two places it runs — a Group over the native fabric, and
// the simulator (ts/sim) over a simulated one. Every side effect the driver has goes through these:
//
//   DriverView     one view's tables at this member: the protocol pieces (ts/group/view-parts.ts) and the
//                  fabric under them — its port, its connections, its failure detector, closing it
//   DriverHost     the clock, the timers, building the next view's DriverView, the addresses peers reach it
//                  at, and what the driver reports (a member failed, the member stopped, a view installed)
//   Admission      the leader's side of joins: offering the next view to its joiners and telling them the
//                  members' addresses (a Group: its contact server; the simulator: simulated joiners)
//   ShardStates    state transfer: which shards wait for state, the snapshots a change sends (a Group only)
//
// Times are in the clock's unit: milliseconds in a Group, scheduler ticks in the simulator.

import type { MemberAddress } from '../fabric/peers.js';
import type { Change, ProtocolNote } from '../membership/protocol.js';
import type { View } from '../membership/view.js';
import type { SubgroupChannel } from './subgroup-channel.js';
import type { PreviousView, ProtocolRules, ViewParts } from './view-parts.js';

/** A coroutine of the driver: it yields the longest it may wait (clock units; Infinity: until a step). */
export type Task = Generator<number, void, undefined>;

/** How connecting to a view's members ended: who could not be reached, or why it could not go on. */
export type Connection = { unreachable: readonly number[] } | { error: Error };

export interface DriverView extends ViewParts {
  /** Where this member accepts connections in this view (published in the old view's table). */
  readonly port: number;
  /** start() was called: this member announced itself connected. */
  readonly started: boolean;
  /** The start barrier passed here (markReady): shards and mailboxes may write. */
  readonly ready: boolean;
  readonly closed: boolean;
  /** Members this view has seen fail: suspected in its table, or found by its failure detector. */
  gone(): Set<number>;
  /**
   * The reason this member's own failure detector gave for suspecting `member` (its suspicion may be in
   * this member's row before the driver heard of it), or null when it did not suspect it.
   */
  ownSuspicion(member: number): string | null;
  /**
   * Starts connecting to `members`; `connection` says when it is done. `isGone(peer)` ends a peer's wait.
   * `done` is called once it is, when that happens apart from a step (a Group's engine: the driver steps at
   * once); a view whose connecting is only looked at on steps (the simulator's) need not call it.
   */
  connect(members: readonly MemberAddress[], timeout: number, isGone: (peer: number) => boolean,
    done: () => void): void;
  /** null while connecting (or before connect()). */
  readonly connection: Connection | null;
  /** Starts failure detection and announces this member connected to every member (the start barrier). */
  start(step: () => void): void;
  /** The start barrier passed (the driver decides when). */
  markReady(): void;
  close(): Promise<void>;
}

export interface Clock { now(): number }

export interface Timers {
  /** Calls `wake` once after `delay`; returns a function that cancels it. */
  after(delay: number, wake: () => void): () => void;
}

export interface InstallLimits {
  /** How long connecting a view, and its start barrier, may take (JoinOptions.connectTimeoutMs). */
  connectTimeout: number;
  /** The suspicion timeout: also the longest an install waits for a joiner's answer or connection. */
  suspicionTimeout: number;
  /** How often an install looks again for the next view's ports while no step comes. */
  portPoll: number;
}

/**
 * The reason a member's failure detector gives when it found itself cut off (the quorum gate,
 * workers/predicate-worker.ts): it would have suspected that member while hearing from no majority of its
 * view. MemberDriver.memberFailed then suspects nobody, and the protocol's next step stops this member.
 */
export const CUT_OFF = 'CUT_OFF';

export interface DriverHost<V extends DriverView> {
  readonly selfId: number;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly limits: InstallLimits;
  /** Default: the right rules; the simulator swaps wrong ones in to show that its checks catch them. */
  readonly rules?: ProtocolRules | undefined;
  /** The next view's tables, bound and listening; throws when the view cannot be built (e.g. planned). */
  buildView(view: View, previous: PreviousView): V;
  /** Where `member` accepts connections at `port` ('host:port'). */
  addressOf(member: number, port: number): string;
  /** A step soon (after the current turn). */
  schedule(): void;
  /** A handle for a shard this member did not serve before (the driver holds it from now on). */
  adopted(name: string, handle: SubgroupChannel): void;
  /** This member serves no shard of `name` in `view`: the driver let go of `handle`, the host stops it. */
  dropped(name: string, handle: SubgroupChannel, view: V): void;
  /** A member of the current view failed, or was suspected (`reason`: a FailReason name or UNREACHABLE). */
  memberFailed(member: number, reason: string): void;
  /** A step this member took in a change of view `vid` (it wedged, it proposed or acked a proposal): logs. */
  noted?(vid: number, note: ProtocolNote): void;
  /** A change committed here and the old view's shards ended at its trim; `unsent` per subgroup (traces). */
  committed(old: V, change: Change, unsent: ReadonlyMap<string, number>): void;
  /**
   * This member can go no further in `view`: a PartitionedError, a RemovedError (it left, or the others
   * suspected it), or why the next view could not be built. The host stops it (MemberDriver.stop).
   */
  stopped(error: Error, view: V): void;
  /** The next view passed its start barrier in time: installed. `phasesMs`: from the commit to each phase. */
  installed(view: V, change: Change, phasesMs: Record<string, number>): void;
  /** An install is over and its old view closed. */
  installEnded(): void;
}

/** What a proposer tells its joiners: the next view, and what they need to build it like the members. */
export interface ViewOffer {
  change: Change;
  /** The old view's members (the state-transfer plan). */
  previousMembers: readonly number[];
  /** What the next view's start barrier counts. */
  previous: PreviousView;
}

export interface Admission {
  /** A change committed here: joiners this member was asked to take that it does not have ask again. */
  committed(change: Change): void;
  /**
   * This member proposed `offer.change`: it offers each joiner the next view and calls `publish` with the
   * port each answered, in join order (0: it did not answer within `answer`, and the next view removes it).
   */
  offer(offer: ViewOffer, answer: number, publish: (ports: readonly number[]) => void): void;
  /** The next view's members and addresses are known: its joiners are told them. */
  addressed(change: Change, addresses: readonly MemberAddress[]): void;
  /** A view started here: joiners may be sent to this member's contact port in it. */
  started(view: DriverView): void;
}

/** The state one change transfers at this member (ts/group/state-sync.ts). */
export interface StatePlan {
  /** The old view ended at the trim: takes the snapshots this member sends. */
  snapshot(): void;
  /** The next view is this member's: awaits the state it receives in it (its shards wait until then). */
  receive(view: DriverView): void;
  /** The next view passed its barrier: sends the snapshots over its mailboxes. */
  send(view: DriverView): void;
  /** The install ended without sending: drops the snapshots. */
  drop(): void;
  /** The old view closed: from now on a failed restore stops this member. */
  settle(): void;
}

export interface ShardStates {
  /** The shard of `subgroup` awaits its state here: it does not step until it is restored. */
  awaiting(subgroup: string): boolean;
  /** A point-to-point record: true when it carries state (it is taken then). */
  accept(tag: number, from: number, bytes: Uint8Array): boolean;
  /** A change commits while state is awaited, which cannot come now: true when this member stops for it. */
  cutOff(change: Change): boolean;
  /** The transfers of a change from `previous` to `next` (throws when `next` cannot be planned). */
  plan(previous: readonly number[], next: readonly number[]): StatePlan;
}
