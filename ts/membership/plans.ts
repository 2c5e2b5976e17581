// The plan of a view (DESIGN.md §4, §6): which member is in which shard of each subgroup, and which of a
// shard's members send. `planView` computes it as a pure function of (the subgroups' configuration, the
// view's members in order), so every member of a view computes the same plan, and the table layout, the
// multicast and the view-change protocol all read it. A subgroup's configuration is validated by
// ts/group/config.ts; its shape and defaults live here, beside the plan they turn into.
//
//   "subgroups": {
//     "tickets": { "shards": 1, "members": { "min": 3, "max": 5 }, "senders": "all" },   counted shards
//     "log":     { "shards": [{ "members": [0, 1, 2], "senders": [0] }], "mode": "raw" } shards spelled out
//   }

import { ConfigError } from '../errors.js';

/** Limits and defaults of DESIGN.md §9. */
export const MULTICAST_DEFAULTS = {
  /** Largest payload sent through the sender's SST slots; larger messages go by RDMC. */
  maxSmcPayload: 10 * 1024,
  /** Messages a sender may have in flight (slots per sender). */
  window: 16,
  /** RDMC block size for large messages. */
  blockBytes: 1 << 20,
  /** Largest message a subgroup carries. */
  maxMessageBytes: 64 << 20,
  /**
   * Sends a member may have accepted but not yet written into a slot of its window, per shard it sends
   * in (and ordered calls or queries of a replicated object waiting for their replies). Past it a send
   * rejects at once with OverloadedError: a caller that awaits its sends never meets it, and one that
   * does not (a fire-and-forget loop) cannot grow the member's memory without limit. 1024 covers
   * every burst of the window's size (default 16, benchmarks up to 256) many times over.
   */
  maxQueuedMessages: 1024,
  /**
   * Bytes of those queued sends. A send to an empty queue is always accepted (up to maxMessageBytes), so
   * this bounds the bursts of large messages, not the size of one.
   */
  maxQueuedBytes: 64 << 20,
} as const;

export type DeliveryMode = 'ordered' | 'raw';

export interface ExplicitShard {
  /** Member ids, in rank order. */
  members: number[];
  /** Member ids that send (a subset of members); default all. */
  senders?: number[];
}

export interface SubgroupConfig {
  /**
   * The name of the class the subgroup replicates, for programs that start members from a configuration
   * file (`squall node` resolves it against the built-in examples and its --module). Group.join ignores
   * it: there the classes come from its `types` option.
   */
  type?: string;
  /** A number of shards filled from the view's members in order, or the shards spelled out. */
  shards: number | ExplicitShard[];
  /** With a number of shards: how many members each shard takes from the view. */
  members?: { min: number; max: number };
  /** With a number of shards: 'all', or how many of each shard's first members send. Default 'all'. */
  senders?: 'all' | number;
  mode?: DeliveryMode;
  maxSmcPayload?: number;
  window?: number;
  blockBytes?: number;
  maxMessageBytes?: number;
  /**
   * Sends queued per sender before send() rejects with OverloadedError, and sendTo()s per destination
   * (MULTICAST_DEFAULTS.maxQueuedMessages).
   */
  maxQueuedMessages?: number;
  /** Bytes of those queued sends (MULTICAST_DEFAULTS.maxQueuedBytes). */
  maxQueuedBytes?: number;
  /**
   * Keep every delivered update on disk at every member (docs/persistence-group.md): each member appends
   * it to its shard's log under Group.join's dataDir, and restores its object from there when it starts
   * again. Ordered mode only. Default false.
   */
  persistent?: boolean;
  /**
   * A persistent subgroup with a class that has snapshot(): write a snapshot of the object after this many
   * records, then drop the log segments it covers (PERSIST_DEFAULTS.snapshotEvery).
   */
  snapshotEvery?: number;
  /**
   * The same after this many payload bytes logged since the last snapshot, whichever comes first: large
   * updates do not let the log (and a restart's replay) grow without bound (PERSIST_DEFAULTS).
   */
  snapshotEveryBytes?: number;
}

/** What a plan is computed from: the subgroups of a group's configuration (GroupConfig has them). */
export interface SubgroupsConfig {
  subgroups: Record<string, SubgroupConfig>;
}

export interface ShardPlan {
  /** Member ids in rank order. */
  members: number[];
  /** Member ids that send, in sender-rank order (sender rank r sends sequence numbers ≡ r mod S). */
  senders: number[];
}

export interface SubgroupPlan {
  name: string;
  /** Index of the subgroup, in configuration order. */
  index: number;
  mode: DeliveryMode;
  maxSmcPayload: number;
  window: number;
  blockBytes: number;
  maxMessageBytes: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  shards: ShardPlan[];
}

/**
 * The subgroups and shards of a view whose members are `view` (ids, in view order). Counted shards take
 * members from the view in order — shard 0 its first `max`, then shard 1, … — each subgroup starting again
 * from the front, so a member can serve several subgroups. Throws ConfigError when a shard cannot reach its
 * minimum (the view is not yet adequate).
 */
export function planView(config: SubgroupsConfig, view: readonly number[]): SubgroupPlan[] {
  return Object.entries(config.subgroups).map(([name, sg], index) => {
    const common = {
      name, index, mode: sg.mode ?? 'ordered',
      maxSmcPayload: sg.maxSmcPayload ?? MULTICAST_DEFAULTS.maxSmcPayload,
      window: sg.window ?? MULTICAST_DEFAULTS.window,
      blockBytes: sg.blockBytes ?? MULTICAST_DEFAULTS.blockBytes,
      maxMessageBytes: sg.maxMessageBytes ?? MULTICAST_DEFAULTS.maxMessageBytes,
      maxQueuedMessages: sg.maxQueuedMessages ?? MULTICAST_DEFAULTS.maxQueuedMessages,
      maxQueuedBytes: sg.maxQueuedBytes ?? MULTICAST_DEFAULTS.maxQueuedBytes,
    } as const;
    const shards = Array.isArray(sg.shards) ? explicitShards(sg.shards, view) : countedShards(name, sg, view);
    return { ...common, shards };
  });
}

/** Shards spelled out: each keeps those of its members (and senders) that are in the view. */
function explicitShards(shards: readonly ExplicitShard[], view: readonly number[]): ShardPlan[] {
  const inView = new Set(view);
  return shards.map((sh) => ({
    members: sh.members.filter((id) => inView.has(id)),
    senders: (sh.senders ?? sh.members).filter((id) => inView.has(id)),
  }));
}

/** A number of shards: each takes the next members of the view, as many as it may (see planView). */
function countedShards(name: string, sg: SubgroupConfig, view: readonly number[]): ShardPlan[] {
  const count = sg.shards as number;
  const { min, max } = sg.members!;
  const perShard = Math.min(max, Math.floor(view.length / count));
  if (perShard < min) {
    throw new ConfigError(
      `subgroup '${name}' needs ${count} shard(s) of at least ${min} members; the view has ${view.length} members`);
  }
  const shards: ShardPlan[] = [];
  for (let s = 0; s < count; s++) {
    const members = view.slice(s * perShard, (s + 1) * perShard);
    const senders = sg.senders === undefined || sg.senders === 'all' ? members : members.slice(0, sg.senders);
    shards.push({ members: [...members], senders: [...senders] });
  }
  return shards;
}

/** The plans of a view of `members`, or null when some shard cannot reach its minimum with them yet. */
export function firstViewPlans(config: SubgroupsConfig, members: readonly number[]): SubgroupPlan[] | null {
  try {
    return planView(config, members);
  } catch (error) {
    if (error instanceof ConfigError) return null;
    throw error;
  }
}
