// The SST columns ordered multicast needs (DESIGN.md §3, §4), laid out from a view's plan. Every member's
// row has the columns of every subgroup (a member writes only those of the subgroups it belongs to), so
// the table layout — and so every offset — is the same at every member.
//
// Per subgroup g (S = the most senders any of its shards has, W = its window):
//   mc<g>_index         i64        messages this member has committed to its slots (as a sender)
//   mc<g>_numReceived   i64 × S    highest index received from each sender rank, every lower one too (−1)
//   mc<g>_seqNum        i64        receive prefix: every seq ≤ it was received here (−1)
//   mc<g>_deliveredNum  i64        highest seq delivered here (nulls count as delivered) (−1)
//   mc<g>_persistedNum  i64        persistent subgroups: the version (vid << 32 | seq) durable in this member's
//                                  log of the shard, written by the main thread only (−1: none, or not
//                                  persistent). A version, not a seq, so that what became durable of an
//                                  earlier view counts in a new one before anything is delivered there.
//   mc<g>_slots         bytes      W slots of SLOT_HEADER_BYTES + maxSmcPayload (8-aligned), see slots.ts
//   mc<g>_trim          i64 × shards·S  the ragged trim of a view change, per shard and sender rank (§6)
// and once per row:
//   vid                 i32        the view this row belongs to
//   (membership)                   the columns of a view change: ts/membership/columns.ts draws them
//   p2p_written         i64 × n    bytes this member has written into its mailbox for member row d (mailboxes.ts)
//   p2p_read            i64 × n    bytes this member has consumed of member row s's mailbox for it
//   p2p_box             bytes      n mailboxes of `mailboxBytes`: the one for row d is written to member d only

import { membershipColumns } from '../membership/columns.js';
import type { SubgroupPlan } from '../membership/plans.js';
import type { ColumnSpecs } from '../sst/layout.js';
import { slotBytes } from './slots.js';

export interface SubgroupColumns {
  index: string;
  numReceived: string;
  trim: string;
  seqNum: string;
  deliveredNum: string;
  persistedNum: string;
  slots: string;
  /** Senders per shard at most (the length of numReceived). */
  senders: number;
  /** Bytes of one slot. */
  slotBytes: number;
}

export function subgroupColumns(plan: SubgroupPlan): SubgroupColumns {
  const g = plan.index;
  return {
    index: `mc${g}_index`, numReceived: `mc${g}_numReceived`, trim: `mc${g}_trim`, seqNum: `mc${g}_seqNum`,
    deliveredNum: `mc${g}_deliveredNum`, persistedNum: `mc${g}_persistedNum`, slots: `mc${g}_slots`,
    senders: Math.max(1, ...plan.shards.map((s) => s.senders.length)),
    slotBytes: slotBytes(plan.maxSmcPayload),
  };
}

/** Names of the point-to-point mailbox columns. */
export const MAILBOX_COLUMNS = { written: 'p2p_written', read: 'p2p_read', box: 'p2p_box' } as const;

/**
 * The column specs of a view's table: feed them to SstLayout with the view's members. `members` and
 * `mailboxBytes` size the point-to-point mailboxes (none when mailboxBytes is 0).
 */
export function multicastColumns(plans: readonly SubgroupPlan[], members = 0, mailboxBytes = 0): ColumnSpecs {
  const specs: Record<string, ColumnSpecs[string]> = { vid: { type: 'i32' } };
  // Order matters: the membership columns, the trims and the counters form one span (pushed whole when a
  // member wedges), and the mailbox counters come after it.
  if (members > 0) {
    Object.assign(specs, membershipColumns(members));
    for (const plan of plans) {
      const c = subgroupColumns(plan);
      specs[c.trim] = { type: 'i64', count: plan.shards.length * c.senders };
    }
  }
  for (const plan of plans) {
    const c = subgroupColumns(plan);
    specs[c.index] = { type: 'i64' };
    specs[c.numReceived] = { type: 'i64', count: c.senders };
    specs[c.seqNum] = { type: 'i64' };
    specs[c.deliveredNum] = { type: 'i64' };
    specs[c.persistedNum] = { type: 'i64' };
    specs[c.slots] = { type: 'bytes', bytes: plan.window * c.slotBytes };
  }
  if (members > 0 && mailboxBytes > 0) {
    specs[MAILBOX_COLUMNS.written] = { type: 'i64', count: members };
    specs[MAILBOX_COLUMNS.read] = { type: 'i64', count: members };
    specs[MAILBOX_COLUMNS.box] = { type: 'bytes', bytes: members * mailboxBytes };
  }
  return specs;
}
