// What a view's ViewChangeProtocol (./protocol.ts) is built from: its table, its fabric, its view and the
// previous one's voters, the rules and kernels it evaluates with, and the hooks its owner gives it.

import type { Arena } from '../arena.js';
import type { TableFabric } from '../fabric/fabric.js';
import type { MembershipKernels } from '../kernels/membership.js';
import type { SstLayout } from '../sst/layout.js';
import type { SubgroupPlan } from './plans.js';
import type { Scratch, TrimRule } from './table.js';
import type { ViewSpec } from './view-change.js';

export interface ProtocolParts {
  arena: Arena;
  layout: SstLayout;
  fabric: Pick<TableFabric, 'writeAll'>;
  selfId: number;
  view: ViewSpec;
  plans: readonly SubgroupPlan[];
  /**
   * Members of the view this one came from, less those that left it cleanly (the start barrier needs more
   * than half of them); default this view's size.
   */
  previousSize?: number;
  /**
   * The members of the previous view that counted toward its majority (votersAmong), less those that left
   * it cleanly: the start barrier needs more than half of them, and counts only them. When given, it
   * replaces previousSize. A view after one with joiners needs it: those joiners may have vanished, and
   * must not make the barrier unreachable (nor count toward it, having counted toward nothing before).
   */
  previousVoters?: readonly number[];
  /** Members that joined into this view: the start barrier waits for them but counts the previous view's. */
  joined?: readonly number[];
  /**
   * The ragged trim rule, over the rows' numReceived; by default the raggedTrim rule of view-change.ts as the
   * raggedTrimMin kernel computes it. The simulator swaps in wrong ones to show its checks fail.
   */
  trim?: TrimRule;
  /** Called once, when this member wedges: every shard stops sending and freezes its counters. */
  wedge: () => void;
  /**
   * The view-change kernels over `arena` that evaluate the protocol's predicates (table.ts): the WebAssembly
   * exports (ts/kernels/kernels.ts) or their plain-JS twins (ts/kernels/membership-reference.ts).
   */
  kernels: MembershipKernels;
  /** Where the kernels keep their outputs: Scratch.Reader for a copy that only reads (table.ts). */
  scratch?: Scratch;
  /**
   * Called when a note must reach the owner before the row change it explains: a bad row's, before its
   * member's suspicion is written into this member's row (the predicate worker posts its notes then, so the
   * main thread never sees the suspicion without the reason; workers/view-change-host.ts).
   */
  noteNow?: () => void;
}
