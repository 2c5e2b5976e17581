// One member of the group simulation (ts/sim/group-sim.ts): its driver — the code a Group runs — and what the
// simulation keeps beside it: whether it is alive and on which side of a partition, a joiner's progress,
// and what it sent and delivered, for the checks (ts/sim/group-checks.ts).

import { PartitionedError, RemovedError } from '../errors.js';
import type { MemberDriver } from '../group/driver.js';
import type { SubgroupChannel } from '../group/subgroup-channel.js';
import type { SimView, ViewAt } from './sim-view.js';

/** The subgroups every run has, one shard of every member each: ordered, and raw (each sender's order only). */
export const SUBGROUPS = ['log', 'feed'] as const;

/**
 * A joiner's progress: asking (again at tick `retryAt`), proposed by `proposer`, entering the view it was
 * offered (built, waiting for the addresses), connecting to it, or in (its first view's start barrier passed:
 * Group.join resolves); or failed: its attempt failed where Group.join asks again, and it asks again from the
 * next tick.
 */
export type JoinState = 'asking' | 'proposed' | 'entering' | 'connecting' | 'in' | 'failed';

export interface SimMember {
  id: number;
  alive: boolean;
  joining: { state: JoinState; proposer: number; retryAt: number; tries: number } | null;
  /** Side of the current partition (0 when none). */
  side: number;
  driver: MemberDriver<SimView>;
  /** The handles its driver keeps, by subgroup name. */
  handles: Map<string, SubgroupChannel>;
  stopped: string | null;
  /** Asked to leave (Group.leave): sends refused; the driver asks once what it sent is stable. */
  leaving: boolean;
  /** What this member delivered in each subgroup: `vid:sender:k` per message. */
  delivered: Record<string, string[]>;
  sent: Record<string, number>;
  /** Something changed for it since it last stepped (the scheduler steps such members more often). */
  dirty: boolean;
  /** The views this member was in (connected to): a joiner was in none before the one it entered. */
  views: Set<number>;
}

/** Member `m`'s tables of the fabric `at`, while open: the view of that number, if its layout is `at`'s. */
export function viewAt(m: SimMember, at: ViewAt): SimView | null {
  const view = m.driver.viewOf(at.vid);
  return view?.isAt(at) ? view : null;
}

/** Why a member stopped, in the checks' words: partitioned, removed (suspected), or left (cleanly). */
export function reasonOf(error: Error): string {
  if (error instanceof PartitionedError) return 'partitioned';
  if (error instanceof RemovedError) return error.left && error.suspectedBy.length === 0 ? 'left' : 'removed';
  return error.message;
}
