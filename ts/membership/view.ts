// A view (DESIGN.md §6): one numbered membership of the group. Every member that installs view `vid` holds
// the same member list, in rank order: the next view keeps the old order without the removed members and
// appends the joiners in join order (ts/membership/view-change.ts, nextView). The group's `view` event and
// the contact channel's offers (ts/group/contact-wire.ts) carry it.

export interface View {
  /** The view's number: 0 for the first, one more for each change. */
  vid: number;
  /** Member ids in rank order (the leader is the lowest-ranked member nobody suspects). */
  members: readonly number[];
}
