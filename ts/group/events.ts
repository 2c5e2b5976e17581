// The events a Group member emits (Group extends EventEmitter<GroupEvents>).

import type { PartitionedError, RemovedError } from '../errors.js';
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
}
