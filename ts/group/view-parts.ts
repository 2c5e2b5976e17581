// The protocol pieces of one view at one member, over that view's tables (DESIGN.md §6, "install view
// vid+1 with fresh tables"): the point-to-point mailboxes, the view-change protocol, and this member's
// shard channel of every subgroup it serves. ViewEngine (ts/group/view-engine.ts) builds them over a native
// arena and fabric, the simulator (ts/sim/sim-view.ts) over its own arena and a simulated fabric: one
// function, so that the pieces the simulator checks are the ones a member process runs.
//
// The protocol rules a simulation swaps for wrong ones (to show that its checks catch them) are parameters
// here and in the driver, as the trim rule is a parameter of the protocol: ProtocolRules.

import type { Arena } from '../arena.js';
import type { TableFabric } from '../fabric/fabric.js';
import { StagedPushes } from '../fabric/staged-pushes.js';
import { loadKernels } from '../kernels/kernels.js';
import type { MembershipKernels } from '../kernels/membership.js';
import { membershipReferenceKernels } from '../kernels/membership-reference.js';
import {
  ViewChangeProtocol, type Change, type MembershipProtocol, type ProtocolParts,
} from '../membership/protocol.js';
import { WorkerViewChange, type WorkerViewChangeParts } from '../membership/worker-view-change.js';
import type { View } from '../membership/view.js';
import { Mailboxes } from '../multicast/mailboxes.js';
import { controlKernels, ShardRows } from '../multicast/control.js';
import { ShardChannel, type ShardEngine } from '../multicast/shard.js';
import type { RdmcGroup } from '../rdmc/node.js';
import type { SstLayout } from '../sst/layout.js';
import type { SubgroupPlan } from '../membership/plans.js';

/**
 * What the start barrier of a view counts of the view it came from (ViewChangeProtocol.allInstalled):
 * `voters`, its members that counted toward its majority less those that left cleanly, or — without them —
 * `size` members; `joined` are the members that joined into this view (waited for, not counted).
 */
export interface PreviousView {
  size: number;
  voters?: readonly number[];
  joined: readonly number[];
}

/**
 * The rules of a view change that a simulation may replace, each defaulting to the right one:
 *   trim           the ragged trim (ViewChangeProtocol's `trim`)
 *   resendUnsent   a sender sends again in the next view what the old view did not deliver
 *   barrier        'previous-voters': the start barrier counts the old view's voters (previousOf);
 *                  'own-view': a majority of the new view's own members (wrong: a minority that applied a
 *                  commit could install its view)
 *   joinersVote    members that joined into a view count toward its majority at once (wrong since issue 13:
 *                  a swarm of joiners that vanish would outvote the members)
 */
export interface ProtocolRules {
  trim?: ProtocolParts['trim'];
  resendUnsent?: boolean;
  barrier?: 'previous-voters' | 'own-view';
  joinersVote?: boolean;
}

/** One view's protocol pieces at one member. */
export interface ViewParts {
  readonly view: View;
  readonly plans: readonly SubgroupPlan[];
  readonly mailboxes: Mailboxes;
  /**
   * What every piece below writes through: the driver holds it for a step, so each peer gets the step's
   * pushes in one send per lane (ts/fabric/staged-pushes.ts).
   */
  readonly pushes: StagedPushes;
  /** Stepped on this thread (ViewChangeProtocol), or by the predicate worker with the worker engine. */
  readonly protocol: MembershipProtocol;
  /** This member's shard channel of each subgroup it serves, by subgroup name. */
  readonly channels: Map<string, ShardChannel>;
  /** The same, by point-to-point tag. */
  readonly byTag: Map<number, ShardChannel>;
}

export interface PartsInput {
  arena: Arena;
  layout: SstLayout;
  fabric: TableFabric;
  selfId: number;
  view: View;
  plans: readonly SubgroupPlan[];
  /** Bytes of each point-to-point mailbox. */
  mailboxBytes: number;
  /** None for a first view (its own members count). */
  previous?: PreviousView | undefined;
  rules?: ProtocolRules | undefined;
  /** The RDMC group a sender rank of a shard sends large messages through, or null. */
  rdmcOf: (plan: SubgroupPlan, shardIndex: number, rank: number) => RdmcGroup | null;
  /** Asks the member's driver for a step soon. */
  schedule: () => void;
  /**
   * Which kernels evaluate the view-change protocol's and the shards' predicates: 'wasm' (default; the
   * WebAssembly module, instantiated once per arena on this thread) or 'reference' (their plain-JS twins;
   * the simulator may).
   */
  kernels?: KernelChoice | undefined;
  /** Who runs the ordered shards' control step (ShardParts.engine); default 'main'. */
  shardEngine?: ShardEngine | undefined;
  /** The worker engine: rings this view's predicate worker. */
  wakeWorker?: (() => void) | undefined;
  /**
   * The worker engine: the view's predicate worker steps its view-change protocol too — how to hand it over
   * and ask it things (ts/membership/worker-view-change.ts). Without it, or when this member serves a raw
   * shard (its counters are this thread's), this thread steps the protocol.
   */
  viewChangeWorker?: Pick<WorkerViewChangeParts, 'host' | 'request' | 'columns'> | undefined;
}

export type KernelChoice = 'wasm' | 'reference';

/** The WebAssembly kernels of each arena on this thread (an arena outlives many views in the simulator). */
const wasmKernels = new WeakMap<WebAssembly.Memory, MembershipKernels>();

/** The view-change kernels over `arena`, as `choice` says. */
export function membershipKernelsOver(arena: Arena, choice: KernelChoice = 'wasm'): MembershipKernels {
  if (choice === 'reference') return membershipReferenceKernels(arena.memory);
  let kernels = wasmKernels.get(arena.memory);
  if (!kernels) {
    kernels = loadKernels(arena.memory);
    wasmKernels.set(arena.memory, kernels);
  }
  return kernels;
}

/** Builds one view's mailboxes, protocol and shard channels over tables laid out for it. */
export function buildViewParts(p: PartsInput): ViewParts {
  const { arena, layout, selfId, view, plans } = p;
  Atomics.store(arena.i32, layout.offsetOf(layout.rowOf(selfId), layout.column('vid')) >> 2, view.vid);
  const fabric = new StagedPushes(p.fabric);
  const mailboxes = new Mailboxes(arena, fabric, layout, selfId, p.mailboxBytes);
  fabric.onRefused = (peer, status) => mailboxes.refused(peer, status);
  const channels = new Map<string, ShardChannel>();
  const byTag = new Map<number, ShardChannel>();
  const joined = p.rules?.joinersVote ? [] : p.previous?.joined ?? [];
  const parts = {
    arena, layout, selfId, view, plans, previousSize: p.previous?.size || view.members.length,
    ...(joined.length > 0 ? { joined } : {}),
    ...(p.previous?.voters ? { previousVoters: p.previous.voters } : {}),
    kernels: membershipKernelsOver(arena, p.kernels),
  };
  const wedge = () => { for (const c of channels.values()) c.wedge(); };
  // A raw shard's counters are this thread's (raw shards stay on it): they must freeze before the
  // acknowledgement leaves, so a member that serves one steps the protocol here, as the main engine does.
  const servesRaw = plans.some((plan) => plan.mode === 'raw' && plan.shards.some((s) => s.members.includes(selfId)));
  const protocol: MembershipProtocol = p.viewChangeWorker && p.shardEngine === 'worker' && !servesRaw
    ? new WorkerViewChange({ protocol: parts, ...p.viewChangeWorker, wedge })
    : new ViewChangeProtocol({ ...parts, fabric, wedge, ...(p.rules?.trim ? { trim: p.rules.trim } : {}) });
  const rows = new ShardRows();
  const shardKernels = controlKernels(arena, p.kernels);
  // The worker engine's shards write straight through: their worker pushes slots and `index` from its own
  // thread at once, so a slot push of this thread held until the step ends could arrive behind an `index`
  // that names it (and its `index`, read when it leaves, could name the worker's nulls).
  const shardFabric = p.shardEngine === 'worker' ? p.fabric : fabric;
  for (const plan of plans) {
    ShardChannel.initialize(arena, layout, plan);
    plan.shards.forEach((shard, shardIndex) => {
      if (!shard.members.includes(selfId)) return;
      const channel = new ShardChannel({
        arena, fabric: shardFabric, layout, selfId, plan, shardIndex, mailboxes, vid: view.vid, schedule: p.schedule,
        wordsSlot: rows.taken, engine: p.shardEngine ?? 'main', ...(p.wakeWorker ? { wakeWorker: p.wakeWorker } : {}),
        rowsAt: rows.take(shard.senders.length, shard.members.length - 1), kernels: shardKernels,
        rdmc: shard.senders.map((_, rank) => p.rdmcOf(plan, shardIndex, rank)),
      });
      channels.set(plan.name, channel);
      byTag.set(channel.tag, channel);
    });
  }
  return { view, plans, mailboxes, pushes: fabric, protocol, channels, byTag };
}

/**
 * What the start barrier of `change`'s next view counts (ViewChangeProtocol.allInstalled): the old view's
 * members that counted toward its majority — not its own joiners, which may have vanished — less those that
 * left cleanly.
 */
export function previousOf(old: ViewParts, change: Change, rules?: ProtocolRules): PreviousView {
  const joined = change.joined.map((j) => j.id);
  if (rules?.barrier === 'own-view') return { size: change.next.members.length, joined };
  const voters = old.protocol.votersAmong(old.view.members.filter((m) => !change.left.includes(m)));
  return { size: voters.length, voters, joined };
}
