// The membership columns of a view's SST (DESIGN.md §3, §6): once per row, what the view-change protocol
// (protocol.ts, through table.ts) reads and writes. ts/multicast/layout.ts lays them out in every view's
// table, followed by each subgroup's `mc<g>_trim` (the ragged trim, per shard and sender rank) and the
// multicast counters: one span, pushed whole when a member wedges.
//
//   suspected     u8 × n     this member suspects the member of row j (suspicions are OR-ed across rows)
//   wedged        u8         this member sends nothing new in this view (a view change has begun)
//   leaving       u8         this member asked to leave
//   receiving     u8         this member still awaits a subgroup's state (the leader takes no joiner meanwhile)
//   changes       u8 × n     the removals of proposal `proposal` (the leader's, or this member's copy: its ack)
//   proposal      i32        which proposal `changes` holds (0: none); numbered across leaders; only grows
//   trimFor       i32        the proposal whose ragged trim the trim columns hold (the leader's, or a copy);
//                            only grows, ≤ proposal
//   committed     i32        the proposal whose trim every member of the next view copied (echoed by all);
//                            only grows, ≤ trimFor
//   nextPort      i32        where this member accepts connections in the next view…
//   nextPortFor   i32        …of proposal nextPortFor
//   installed     i32        vid + 1 once this member is connected to every member of the view
//   proposer      i32        the member (id + 1) that made proposal `proposal`: it speaks for its joiners
//   joinPortsFor  i32        the proposal whose joiners' ports joinPorts holds
//   contactPort   i32        where this member's contact server takes join requests (host: the member's)
//   joins         i32 × J    the joiners of proposal `proposal`, id + 1 each (0: none), in join order
//   joinHosts     u8 × J·48  each joiner's host (UTF-8, zero-padded)
//   joinPorts     i32 × J    where each joiner accepts connections in the next view (written by the proposer)

import type { ColumnSpecs } from '../sst/layout.js';

/** Names of the membership columns, as the protocol names them. */
export const MEMBERSHIP_COLUMNS = {
  suspected: 'suspected', wedged: 'wedged', leaving: 'leaving', changes: 'changes', proposal: 'proposal',
  trimFor: 'trimFor', committed: 'committed', nextPort: 'nextPort', nextPortFor: 'nextPortFor',
  installed: 'installed', proposer: 'proposer', joins: 'joins', joinHosts: 'joinHosts', joinPorts: 'joinPorts',
  joinPortsFor: 'joinPortsFor', contactPort: 'contactPort', receiving: 'receiving',
} as const;

/** Joiners one view change takes at most (the `joins` column); more wait for the next change. */
export const MAX_JOINS_PER_CHANGE = 8;
/** Bytes of a joiner's host in the `joinHosts` column (an IPv6 address in text fits). */
export const JOIN_HOST_BYTES = 48;

/** The specs of the membership columns of a view of `members` members, in table order. */
export function membershipColumns(members: number): ColumnSpecs {
  const M = MEMBERSHIP_COLUMNS;
  const specs: Record<string, ColumnSpecs[string]> = {};
  specs[M.suspected] = { type: 'u8', count: members };
  specs[M.wedged] = { type: 'u8' };
  specs[M.leaving] = { type: 'u8' };
  specs[M.receiving] = { type: 'u8' };
  specs[M.changes] = { type: 'u8', count: members };
  const counters = [M.proposal, M.trimFor, M.committed, M.nextPort, M.nextPortFor, M.installed, M.proposer,
    M.joinPortsFor, M.contactPort];
  for (const name of counters) specs[name] = { type: 'i32' };
  specs[M.joins] = { type: 'i32', count: MAX_JOINS_PER_CHANGE };
  specs[M.joinHosts] = { type: 'u8', count: MAX_JOINS_PER_CHANGE * JOIN_HOST_BYTES };
  specs[M.joinPorts] = { type: 'i32', count: MAX_JOINS_PER_CHANGE };
  return specs;
}
