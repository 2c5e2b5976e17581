// The events a Group member emits (Group extends EventEmitter<GroupEvents>).

import { RemovedError, SquallError, type PartitionedError } from '../errors.js';
import type { Change, ProtocolNote } from '../membership/protocol.js';
import type { View } from '../membership/view.js';

export interface GroupEvents {
  /** A member of the current view failed or was suspected; a view change that removes it follows. */
  memberFailed: [member: number, reason: string];
  /** A new view is installed here: `removed` left it (failed, or left cleanly), `joined` entered it. */
  view: [view: View, removed: number[], joined: number[]];
  /** This member lost a majority of its view: it has stopped (partition safety). */
  partitioned: [error: PartitionedError];
  /**
   * The group went on without this member (the others suspected it): it has stopped. With `rejoin` it
   * joins again by itself (`rejoining` true) and emits `rejoined` once it is back, or `rejoinFailed`.
   */
  removed: [error: RemovedError, rejoining: boolean];
  /** This member was removed or partitioned, and is a member of the group again, its state restored. */
  rejoined: [view: View];
  /** Rejoining did not succeed within connectTimeoutMs: the member has closed. */
  rejoinFailed: [error: Error];
  /**
   * Something is wrong but this member goes on: a peer sent a message that cannot be decoded, or the
   * contact port refused an attempt (an AuthError for a joiner without the group's key, a JoinError for a
   * malformed line, a connection over the limits, a handshake past its deadline; at most 5 per 10 s, the
   * rest counted in the next), or the fabric port refused a connection that could not prove the group's
   * key (an AuthError; at most 5 per 10 s too). Without a listener it becomes a process warning (never an
   * uncaught exception).
   */
  warning: [error: Error];
  /**
   * This member cannot go on because of a fault here: a worker died, its state did not arrive, a view it
   * cannot build, the class's snapshot() threw. A peer's failure is never an `error` (see memberFailed).
   */
  error: [error: Error];
  /**
   * A persistent subgroup's shard has every update up to `version` durable at every one of its members
   * (its persistence frontier moved; docs/persistence-group.md).
   */
  persisted: [event: { subgroup: string; shard: number; version: bigint }];
  /**
   * A step of the membership protocol at this member, as data: what `logger` writes (docs/operations.md).
   * Emitted whether or not anyone listens; listeners must not throw.
   */
  protocol: [event: ProtocolEvent];
}

/** The steps of the membership protocol a member reports (the `protocol` event). */
export type ProtocolEvent =
  /** This member suspects `member` (its connection broke, its heartbeat stalled, a peer suspects it): the
   *  current view wedges and a change that removes it follows. */
  | { event: 'suspected'; vid: number; member: number; reason: string }
  /** A view change committed here: the proposal, who it removes and adds, and the ragged trim (per
   *  subgroup, per shard, the highest index delivered of each sender rank). */
  | { event: 'committed'; vid: number; proposal: number; proposer: number; removed: number[]; left: number[];
    joined: number[]; trims: number[][][] }
  /** The next view passed its start barrier: installed, with the milliseconds from the commit to each phase. */
  | { event: 'installed'; vid: number; members: number[]; removed: number[]; joined: number[];
    phasesMs: Record<string, number> }
  /** This member stopped in view `vid`: it left (leave()), or was partitioned, removed, or could not build a view. */
  | { event: 'stopped'; vid: number; code: string; message: string; left: boolean }
  /** A refused connection, frame or request, or a message that could not be decoded (the `warning` event). */
  | { event: 'refused'; code: string; message: string }
  /** View `vid`'s fabric connected to `peer`, or lost its connection (`reason`: a FailReason name such as CLOSED).
   *  At most one of each per peer and view; none once the view's change is applied (its connections end with it). */
  | { event: 'connection'; vid: number; peer: number; state: 'connected' | 'lost'; reason?: string }
  /** A total restart's first view (this member's logs end in view `vid` − 1) waits for `missing` to connect;
   *  `short`: how many more it needs for a majority of the last view (0: it has one, and waits out
   *  connectTimeoutMs for the rest). Every few seconds (docs/persistence-group.md). */
  | { event: 'restartWaiting'; vid: number; missing: number[]; short: number }
  /** With `rejoin` on, this member's attempt to get back in failed (`message` says why: its state was cut off
   *  by a view change, no contact answered, …); it asks again in `retryInMs`, until connectTimeoutMs. */
  | { event: 'rejoinRetry'; attempt: number; code: string; message: string; retryInMs: number }
  /** A total restart reconciled a shard: `source`'s log was the longest (it ends at `version`, a decimal
   *  string) and `recipients` catch up from it (none: every log agreed). */
  | { event: 'reconciled'; vid: number; subgroup: string; shard: number; source: number; recipients: number[];
    version: string }
  /** This member's view `vid` wedged (and why), or its row took a proposal (its own, as leader, or the leader's
   *  it acknowledged): ts/membership/protocol.ts, ProtocolNote. */
  | (ProtocolNote & { vid: number })
  /** A state transfer of a view change ended here: this member (the source) sent a shard's state `to` a member
   *  entering the shard, or (the recipient) received it `from` its source and restored it; `kind`: a snapshot,
   *  or the records after the recipient's log (a persistent subgroup's catch-up); `ms`: at the source from its
   *  first record to its last, at the recipient from the moment it awaited the state to its restore;
   *  `streamMs` (recipient): from the source's first record arriving to its last — the bytes on the way. */
  | { event: 'stateSent'; vid: number; subgroup: string; shard: number; to: number; bytes: number; ms: number;
    kind: 'snapshot' | 'log' }
  | { event: 'stateReceived'; vid: number; subgroup: string; shard: number; from: number; bytes: number; ms: number;
    streamMs: number; kind: 'snapshot' | 'log' };


/** The `committed` protocol event of `change`, made in view `vid`. */
export function committedEvent(vid: number, change: Change): ProtocolEvent {
  const { proposal, proposer, removed, left, trims } = change;
  return { event: 'committed', vid, proposal, proposer, removed, left, joined: change.joined.map((j) => j.id), trims };
}

/** The `installed` protocol event of `view`, entered by `change`. */
export function installedEvent(view: View, change: Change, phasesMs: Record<string, number>): ProtocolEvent {
  const joined = change.joined.map((j) => j.id);
  return { event: 'installed', vid: view.vid, members: [...view.members], removed: change.removed, joined, phasesMs };
}

/** The `stopped` protocol event: `error` stopped this member in view `vid`. */
export function stoppedEvent(error: Error, vid: number): ProtocolEvent {
  const left = error instanceof RemovedError && error.left;
  return { event: 'stopped', vid, code: codeOf(error), message: error.message, left };
}

/** The `connection` protocol event: view `vid`'s fabric connected to `peer`, or lost it for `reason`. */
export function connectionEvent(vid: number, peer: number, state: 'connected' | 'lost', reason?: string):
  ProtocolEvent {
  return { event: 'connection', vid, peer, state, ...(reason === undefined ? {} : { reason }) };
}

/** The `rejoinRetry` protocol event: rejoin attempt `attempt` failed with `error`; the next in `retryInMs`. */
export function rejoinRetryEvent(error: Error, attempt: number, retryInMs: number): ProtocolEvent {
  return { event: 'rejoinRetry', attempt, code: codeOf(error), message: error.message, retryInMs };
}

/** The `refused` protocol event of a `warning`. */
export function refusedEvent(error: Error): ProtocolEvent {
  return { event: 'refused', code: codeOf(error), message: error.message };
}

const codeOf = (error: Error): string => (error instanceof SquallError ? error.code : error.name);
