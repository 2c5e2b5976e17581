// The view-change protocol of DESIGN.md §6 at one member, over the membership columns of its view's SST
// (columns.ts). `step()` runs after every batch of table changes; it reads every row, takes at
// most one action, pushes this member's membership span to every peer, and says when the change is done.
//
//   suspect      a member's heartbeat stalled or its connection broke (or it asked to leave): this member
//                marks it in its row, and wedges — its shards send nothing new and freeze their receive
//                counters (numReceived, seqNum) and deliveries; what was sent still lands in the slots
//   propose      the leader (lowest-ranked member nobody suspects) writes the removals — everything suspected
//                or leaving in any row, and everything any row already holds as a change — the joiners that
//                contacted it (ts/group/contact.ts), and a proposal number above every number in the table
//   acknowledge  every member of the next view copies the leader's proposal into its row, once wedged
//   trim         with every ack in, the leader computes each shard's ragged trim from the frozen numReceived
//                of the shard's members in the next view — or adopts a trim some member already copied — and
//                publishes it with trimFor = its proposal; members copy it (a second ack)
//   commit       with every copy in, the leader sets committed; a member that sees a commit in any row (and
//                holds no later proposal that can still commit) copies the committing row whole into its own,
//                pushes it, and applies it: delivers exactly the messages inside the trim, installs the next view.
//
// Why no member delivers a message that another survivor lacks: a member freezes its counters when it
// wedges and acks after (one connection is FIFO), so the leader computes the trim from final values; a
// message delivered before the change was stable, so every frozen numReceived covers it. Why one trim per
// change: a trim is committed only once every member of the next view holds a copy, so a new leader finds
// a committed trim in its own row and adopts it; a member that acked a later proposal ignores an older
// commit unless its proposal keeps a row that applied it (#olderCommit), and a leader cannot collect that
// member's ack while any member its proposal keeps applied an older commit.
// Why no split brain: a change needs a majority of the current view (hasMajority); a minority stops. The
// members that joined into the view count from the next one on (#voters): a swarm of joiners that vanish
// can never outvote the members, and every member counts the same set (the next view's start barrier too).
//
// Lanes (ts/fabric/fabric.ts, Lane). Every push here — the membership span, and the frozen numReceived,
// seqNum and deliveredNum pushed when this member wedges — goes on the control lane, so a view change is
// never stuck behind the data lane's slots and RDMC blocks. What that relies on, and why it holds:
//   - "acks after the frozen counters": the counters are written just before the wedged flag and the ack
//     (proposal) that follow, all on the control lane, so the leader reads final counters once it has
//     every ack (one lane is FIFO, as one connection was).
//   - The trim is min numReceived over the next view's members; each of them holds the slots up to its
//     own numReceived (it counted them from indexes that came behind their slots on the data lane), so
//     delivering up to the trim reads only slots it holds, whatever the data lane still carries.
//   - The shards' `index` is never pushed here: it announces slots, and travels behind them on the data
//     lane only (ts/multicast/shard.ts). Pushed on the control lane it could overtake them.
//   - The start barrier (`installed`) says a member is connected to every member, which for the fabric
//     means both lanes (PEER_CONNECTED needs both), so shards start sending on a data lane that is up.
//   - Point-to-point mailboxes (the control lane up to 1 MiB, else the data lane) are ordered with nothing
//     here: their counters name only their own records.
//
// Every predicate over the table is evaluated by a view-change kernel (assembly/membership.ts, through table.ts,
// which also reads the table into a Round): the WebAssembly exports or their plain-JS twins, as given in
// ProtocolParts.kernels — one decision code for a member process and the simulator.
//
// The code follows the stages: adopting a commit seen in any row comes first in every step; then step()
// reads the table once into a Round, runs the suspect stage, and hands the round to the leader's path
// (propose, wait for every acknowledgement, trim, wait for every copy, commit) or to a follower's (acknowledge,
// copy the trim), the role decided once per step, from the table, since a leader that fails hands the role to
// the next member. Every stage that writes this member's row pushes it.
//
// A peer's row is checked before it is read (row-checks.ts, RowScreen): a peer writes its own row with
// one-sided writes, so a row no honest member could write — numbers out of order or out of range, an ack
// without the wedged flag, a trim beyond what this member received — is left out of every decision and its
// member suspected (BAD_ROW). What is adopted from a row is the copy that was checked, never the live row.
// The assertions below are therefore about this member's own row only.
//
// Assertions (ts/assert.ts) pair the values this member writes with the rows it reads: its proposal,
// trimFor and committed only grow (but for an older commit adopted, #apply), committed ≤ trimFor ≤ proposal,
// and it acknowledges only once wedged. invariants() checks them all at once.

import { assert, assertAtMost, assertEqual, assertMonotonic } from '../assert.js';
import { MAX_JOINS_PER_CHANGE } from './columns.js';
import type { Change, ProtocolNote, StepResult, WedgeCause } from './outcomes.js';
import type { ProtocolParts } from './protocol-parts.js';
import { maxProposal, portOrZero, RowScreen } from './row-checks.js';
import { MembershipTable, type Joiner, type Round, type RowCopy } from './table.js';
import { adoptTrim, hasMajority, leaderOf, votersOf, type ViewSpec } from './view-change.js';

export type { Joiner } from './table.js';
export type { Change, ProtocolNote, StepResult, WedgeCause } from './outcomes.js';
export type { ProtocolParts } from './protocol-parts.js';

/** A view's protocol as a member uses it: this, or WorkerViewChange (the predicate worker steps one). */
export type MembershipProtocol = Pick<ViewChangeProtocol,
  | 'view' | 'wedged' | 'applied' | 'takeNotes' | 'step' | 'invariants'
  | 'suspect' | 'cutOff' | 'leave' | 'join' | 'leader' | 'suspects' | 'anyReceiving' | 'votersAmong'
  | 'announceInstalled' | 'allInstalled' | 'publishNextPort' | 'nextPortOf' | 'publishJoinPorts' | 'joinPortOf'
  | 'publishContactPort' | 'contactPortOf' | 'setReceiving'>;

export class ViewChangeProtocol {
  readonly view: ViewSpec;
  readonly #p: ProtocolParts;
  readonly #t: MembershipTable;
  #wedged = false;
  #stopped = false;
  /** Joiners this member (as leader) will propose; fixed once it wedged for them. */
  #joins: Joiner[] = [];
  #applied: Change | null = null;
  /** Steps taken since the owner last took them (takeNotes); null: none. */
  #notes: ProtocolNote[] | null = null;
  /** Peers' rows, checked before they are read (row-checks.ts). */
  readonly #rows: RowScreen;
  /** Members this member would have suspected while cut off itself (cutOff): never written to the table. */
  readonly #cutOffFrom = new Set<number>();

  constructor(parts: ProtocolParts) {
    this.#p = parts;
    this.view = parts.view;
    this.#t = new MembershipTable(parts.arena, parts.layout, parts.fabric, parts.selfId, parts.plans, parts.kernels,
      parts.scratch);
    this.#rows = new RowScreen(this.#t, parts.plans, parts.selfId, (member, reason) => {
      this.#note({ event: 'badRow', member, reason });
      this.#p.noteNow?.();
      this.suspect(member);
    });
  }

  get wedged(): boolean { return this.#wedged; }
  /** The change this member applied, once it did. */
  get applied(): Change | null { return this.#applied; }

  /** The steps this member took since the last call (wedged, proposed), for its logs; null when none. */
  takeNotes(): ProtocolNote[] | null {
    const notes = this.#notes;
    this.#notes = null;
    return notes;
  }

  /** This member suspects `member` (heartbeat stalled, connection broke): marks it and wedges. */
  suspect(member: number): void {
    const t = this.#t;
    const j = t.rowOf(member);
    if (j < 0 || t.u8(t.self, t.c.suspected, j) === 1) return;
    t.setU8(t.c.suspected, j, 1);
    this.#wedge('suspected', [member]);
    t.push();
  }

  /**
   * This member's failure detector found it cut off (the predicate worker's quorum gate): it would have
   * suspected `member` while hearing from no majority of the view. Nothing is written or pushed — a
   * suspicion that lands after the cut ends would remove members that stayed — and the next step stops this
   * member (#cutOffStage).
   */
  cutOff(member: number): void {
    if (this.#t.rowOf(member) >= 0) this.#cutOffFrom.add(member);
  }

  /** This member asks to leave: the leader removes it like a failed member, without suspicion. */
  leave(): void {
    this.#t.setU8(this.#t.c.leaving, 0, 1);
    this.#wedge('leaving', [this.#p.selfId]);
    this.#t.push();
  }

  /**
   * Joiners that contacted this member while it leads an unchanging view: it wedges, and its next proposal
   * takes them. False (ask again later) when it is not the leader, a change is under way, a member still
   * receives state from the last join, or there are more than MAX_JOINS_PER_CHANGE.
   */
  join(joiners: readonly Joiner[]): boolean {
    if (this.#wedged || this.#applied || this.#stopped || !this.mayJoin(joiners.length)) return false;
    this.#joins = [...joiners];
    this.#wedge('joining', joiners.map((j) => j.id));
    this.#t.push(true);
    return true;
  }

  /** The table lets this member take `count` joiners now (join(), less this member's own state). */
  mayJoin(count: number): boolean {
    if (count === 0 || count > MAX_JOINS_PER_CHANGE) return false;
    return this.leader() === this.#p.selfId && !this.#t.anyWedged() && !this.anyReceiving();
  }

  /** The lowest-ranked member nobody suspects (the one joiners are sent to), or null. */
  leader(): number | null {
    return leaderOf(this.#t.members, this.suspects());
  }

  /** Members suspected in any row (suspicions are OR-ed across rows). */
  suspects(): Set<number> {
    return this.#t.suspects();
  }

  /** This member is connected to every member of the view: says so in its row (the start barrier). */
  announceInstalled(): void {
    this.#t.setI32(this.#t.c.installed, this.view.vid + 1);
    this.#t.push();
  }

  /**
   * The start barrier: every member of the view nobody suspects is connected to every other — only then
   * may shards send, for a write to a member whose connection is still being made would be lost — and
   * they are more than half of the view this one came from, not counting members that left it cleanly. A
   * view that passes it is installed. Each member applies one change per view, and a member that asked to
   * leave is removed by every proposal, so two views with one vid can never both pass: each would need
   * more than half of the same previous view's remaining members.
   */
  allInstalled(): boolean {
    const t = this.#t, vid = this.view.vid;
    const suspects = this.suspects();
    const joined = new Set(this.#p.joined ?? []);
    const voters = this.#p.previousVoters ? new Set(this.#p.previousVoters) : null;
    const awaited: number[] = [], counted: number[] = [];
    t.members.forEach((member, r) => {
      if (!suspects.has(member)) awaited.push(r);
      if (voters ? voters.has(member) : !joined.has(member)) counted.push(r);
    });
    if (t.countEqual(t.c.installed, awaited, vid + 1) !== awaited.length) return false;
    const installed = t.countEqual(t.c.installed, counted, vid + 1);
    return hasMajority(voters ? voters.size : (this.#p.previousSize ?? t.n), installed);
  }

  /** Publishes where this member accepts connections in the view that proposal `proposal` makes. */
  publishNextPort(proposal: number, port: number): void {
    this.#t.setI32(this.#t.c.nextPort, port);
    this.#t.setI32(this.#t.c.nextPortFor, proposal);
    this.#t.push();
  }

  /**
   * The port `member` published for the view of `proposal`, or null (not yet); 0 when what it published is
   * no port (1..65535): the next view leaves it out, as a member that never answered.
   */
  nextPortOf(member: number, proposal: number): number | null {
    const t = this.#t;
    const r = t.rowOf(member);
    if (r < 0) return 0;
    return t.i32(r, t.c.nextPortFor) === proposal ? portOrZero(t.i32(r, t.c.nextPort)) : null;
  }

  /** The proposer of `change` publishes where each of its joiners accepts connections in the next view. */
  publishJoinPorts(proposal: number, ports: readonly number[]): void {
    ports.forEach((port, k) => this.#t.setI32(this.#t.c.joinPorts, port, k));
    this.#t.setI32(this.#t.c.joinPortsFor, proposal);
    this.#t.push();
  }

  /** The port the proposer of `change` published for its k-th joiner, or null (not yet, or never); 0: no port. */
  joinPortOf(change: Change, k: number): number | null {
    const t = this.#t;
    const r = t.rowOf(change.proposer);
    if (r < 0 || k < 0 || k >= MAX_JOINS_PER_CHANGE) return 0;
    return t.i32(r, t.c.joinPortsFor) === change.proposal ? portOrZero(t.i32(r, t.c.joinPorts, k)) : null;
  }

  /** Publishes the port of this member's contact server, so members can send joiners to the leader's. */
  publishContactPort(port: number): void {
    this.#t.setI32(this.#t.c.contactPort, port);
    this.#t.push();
  }

  /** Says in this member's row whether it still awaits a subgroup's state (see join()). */
  setReceiving(receiving: boolean): void {
    const t = this.#t;
    if ((t.u8(t.self, t.c.receiving) === 1) === receiving) return;
    t.setU8(t.c.receiving, 0, receiving ? 1 : 0);
    t.push();
  }

  /** Some member of the view still awaits state: a change now would cut its transfer off. */
  anyReceiving(): boolean {
    return this.#t.anyReceiving();
  }

  /** The contact port `member` published, or null. */
  contactPortOf(member: number): number | null {
    const r = this.#t.rowOf(member);
    const port = r < 0 ? 0 : portOrZero(this.#t.i32(r, this.#t.c.contactPort));
    return port > 0 ? port : null;
  }

  /**
   * The members whose majority a change of this view needs: those of `staying` that were in the previous
   * view too. A member that joined into this view has not shown yet that it is alive — it may have vanished
   * at any point of its join, or be a stranger that asked and went — so it counts neither for nor against
   * the majority here; it counts from the next view on, which it can enter only by acking that view's
   * proposal in this one's table (alive, and connected to the leader). Every member of this view computes
   * the same set (the joiners are part of the committed change), so two sides of a split need a majority of
   * one set, and cannot both have it: no split brain, however many joiners vanish. When no member of the
   * previous view stays (they all left), the joiners are all there is, and they count.
   */
  votersAmong(staying: readonly number[]): number[] {
    return votersOf(staying, this.#p.joined ?? []);
  }

  // ---- the protocol step ------------------------------------------------------------------------------

  /** One evaluation of the protocol over the current table: at most one stage acts. */
  step(): StepResult {
    if (this.#applied || this.#stopped) return null;
    if (this.#cutOffFrom.size > 0) return this.#cutOffStage();
    // Every step of a change is taken by a wedged member (suspecting, leaving, proposing, acking and
    // committing all wedge first), so while no row is wedged there is nothing to do: the common case, on
    // every step of the group, costs one kernel call (countFlagged over the wedged column).
    if (!this.#wedged && !this.#t.anyWedged()) return null;
    this.#rows.screen();
    const mine = this.#t.i32(this.#t.self, this.#t.c.proposal);
    // commit (any member): a commit in any row is applied, unless this member holds a later proposal that
    // can still commit (#olderCommit).
    const least = Math.max(1, mine);
    const committing = this.#t.firstCommitting(least);
    if (committing === this.#t.self) return { type: 'commit', change: this.#apply(null) };
    const copy = committing >= 0 ? this.#rows.checked(committing) : null;
    if (copy && copy.committed >= least) return { type: 'commit', change: this.#apply(copy) };
    const older = committing < 0 ? this.#olderCommit(mine) : null;
    if (older) return { type: 'commit', change: this.#apply(older) };
    const round = this.#t.gather(mine, this.#joins.length > 0);
    if (!round) return null;
    const end = this.#suspectStage(round);
    if (end) return end;
    return round.leader === this.#p.selfId ? this.#lead(round) : this.#follow(round);
  }

  /**
   * An older commit to apply although this member holds a later proposal: a row its proposal keeps applied
   * it, so it never acknowledges that proposal, which can then never commit (seed 31002354: a late member
   * suspected a leaver that had applied a change and closed, proposed as the leader, and waited for ever). A
   * proposal that removes every such row can still commit: this member waits for it. One trim per change.
   */
  #olderCommit(mine: number): RowCopy | null {
    const t = this.#t;
    if (mine <= 1) return null;
    const kept: number[] = [];
    for (let r = 0; r < t.n; r++) if (r !== t.self && t.u8(t.self, t.c.changes, r) === 0) kept.push(r);
    const r = t.firstAtLeast(t.c.committed, kept, 1);
    const copy = r >= 0 ? this.#rows.checked(r) : null;
    return copy && copy.committed >= 1 && copy.committed < mine ? copy : null;
  }

  /** The leader's path: propose, wait for every acknowledgement, trim, wait for every copy, commit. */
  #lead(round: Round): StepResult {
    if (this.#proposeStage(round)) return null;
    if (!this.#allAcknowledged(round)) return null;
    if (this.#trimStage(round)) return null;
    const t = this.#t;
    if (t.countEqual(t.c.trimFor, round.nextRows, round.mine) !== round.nextRows.length) return null;
    return this.#commitStage(round);
  }

  /** A follower's path: acknowledge the leader's proposal, then copy its trim. */
  #follow(round: Round): StepResult {
    if (round.leader === null) return null;
    const leaders = this.#rows.checked(this.#t.rowOf(round.leader));
    if (!leaders) return null;
    if (leaders.proposal > round.mine) this.#acknowledgeStage(leaders);
    else if (leaders.proposal === round.mine && round.mine > 0) this.#copyTrimStage(leaders, round.mine);
    return null;
  }

  /**
   * This member found itself cut off (cutOff): it stops, as removed when the rows that reached it suspect it
   * (a member stopped for a while reads them once it runs again: the others went on without it), else as
   * partitioned. Nothing is written.
   */
  #cutOffStage(): StepResult {
    const t = this.#t, self = this.#p.selfId;
    this.#stopped = true;
    const by = t.members.filter((_, r) => t.u8(r, t.c.suspected, t.self) !== 0);
    if (by.length > 0) return { type: 'suspected', by };
    const unreachable = new Set([...this.#cutOffFrom, ...this.suspects()]);
    unreachable.delete(self);
    return { type: 'partitioned', unreachable: [...unreachable] };
  }

  /**
   * suspect: a change is under way, so this member wedges (pushing its frozen counters first), and stops
   * when it cannot take part: suspected by another, every member leaving, or no majority. Null: go on.
   */
  #suspectStage(round: Round): StepResult {
    const t = this.#t;
    if (!this.#wedged) { this.#wedgeFor(round); t.push(true); }
    // A member never suspects itself, and never counts itself unreachable: suspected by another, it is in
    // every proposal's removals, so it can take no part in the next view and stops here instead.
    if (round.suspects.has(this.#p.selfId)) {
      this.#stopped = true;
      return { type: 'suspected', by: t.members.filter((_, r) => t.u8(r, t.c.suspected, t.self) !== 0) };
    }
    // Partition safety: a majority of the members that stay (leavers consent, and are in no next view) —
    // of those that stay and did not join into this view (see votersAmong: admission).
    const staying = t.members.filter((m) => !round.leavers.has(m));
    if (staying.length === 0) { // every member asked to leave: nobody is left to install a view
      this.#stopped = true;
      return { type: 'dissolved' };
    }
    const voters = this.votersAmong(staying);
    if (!hasMajority(voters.length, voters.filter((m) => !round.suspects.has(m)).length)) {
      this.#stopped = true;
      return { type: 'partitioned', unreachable: [...round.suspects] };
    }
    return null;
  }

  /**
   * propose (leader): writes a new proposal unless this leader's own stands — numbered by it, with today's
   * removals, and outnumbered by no row. A proposal numbered at or above this leader's, made by a leader
   * that failed before this one saw it (the table is ragged), holds the acks of the members that copied it:
   * they take only a larger number. True when it wrote one (the acknowledgements come later).
   */
  #proposeStage(round: Round): boolean {
    const t = this.#t, c = t.c, selfId = this.#p.selfId, mine = round.mine;
    const standing = mine !== 0 && !t.outnumbered(mine, selfId) && t.sameChanges(t.self, round.removals)
      && t.i32(t.self, c.proposer) === selfId + 1;
    if (standing) return false;
    const top = Math.max(0, t.highestI32(c.proposal), t.highestI32(c.trimFor), t.highestI32(c.committed));
    // No honest row comes near maxProposal (row-checks.ts). Above it, a row was rewritten since this step's
    // screen: screened again, it is ignored from then on. At it, the number left would be refused: the leader
    // waits, as for any member that holds a change back (docs/security.md).
    if (top >= maxProposal(t.n)) {
      this.#rows.screen();
      return true;
    }
    for (let j = 0; j < t.n; j++) t.setU8(c.changes, j, round.removals.has(t.members[j]!) ? 1 : 0);
    // Only this leader's own joiners: those of a failed leader were talking to it, and ask again.
    t.writeJoins(this.#joins);
    t.setI32(c.proposer, selfId + 1);
    this.#setProposal(top + 1);
    t.push();
    this.#noteProposal();
    return true;
  }

  /** Every member of the next view holds this leader's proposal: its acknowledgement, made once wedged. */
  #allAcknowledged(round: Round): boolean {
    const { acked, unwedged } = this.#t.acknowledgements(round.nextRows, round.mine);
    // An ack without the wedged flag is no honest row's: the screen suspects its member on the next step (it may
    // have been written since this step's screen ran), and the change waits for it until then.
    return unwedged === 0 && acked === round.nextRows.length;
  }

  /** acknowledge (follower): copies the leader's proposal into this member's row. */
  #acknowledgeStage(leaders: RowCopy): void {
    assert(this.#wedged, 'a member acknowledges a proposal only once wedged (its counters are final)');
    this.#t.copyProposal(leaders);
    this.#setProposal(leaders.proposal);
    this.#t.push();
    this.#noteProposal();
  }

  /**
   * trim (leader): with every acknowledgement in, publishes each shard's ragged trim for its proposal —
   * the one a member of the next view already copied, if any, else the one it computes from the frozen
   * counters. True when it published (the copies come later).
   */
  #trimStage(round: Round): boolean {
    const t = this.#t;
    if (t.i32(t.self, t.c.trimFor) === round.mine) return false;
    const copy = this.#trimCopy(round.nextRows);
    this.#p.plans.forEach((plan, g) => {
      const computed = t.raggedTrim(plan, g, round.removals, this.#p.trim);
      t.writeTrim(g, adoptTrim(copy ? [copy[g]!] : [], computed));
    });
    this.#setTrimFor(round.mine);
    t.push();
    return true;
  }

  /** The trims a member of the next view copied already (for any proposal), or null: the leader computes them. */
  #trimCopy(nextRows: readonly number[]): ReadonlyArray<readonly number[]> | null {
    const t = this.#t;
    const r = t.firstAtLeast(t.c.trimFor, nextRows, 1);
    if (r < 0) return null;
    if (r === t.self) return this.#p.plans.map((_, g) => t.readTrim(r, g));
    const copy = this.#rows.checked(r);
    return copy && copy.trimFor >= 1 ? copy.trims : null;
  }

  /** trim (follower): copies the leader's published trim for the proposal this member acknowledged. */
  #copyTrimStage(leaders: RowCopy, mine: number): void {
    const t = this.#t;
    if (leaders.trimFor !== mine || t.i32(t.self, t.c.trimFor) === mine) return;
    this.#p.plans.forEach((_, g) => t.writeTrim(g, leaders.trims[g]!));
    this.#setTrimFor(mine);
    t.push();
  }

  /** commit (leader): every member of the next view holds its trim; it commits, and applies. */
  #commitStage(round: Round): StepResult {
    this.#setCommitted(round.mine);
    return { type: 'commit', change: this.#apply(null) };
  }

  /**
   * Copies a peer's committed row (a copy that passed the checks; null: this member's own commit) into this
   * member's row, pushes it, and describes the change.
   */
  #apply(from: RowCopy | null): Change {
    const t = this.#t;
    if (from) {
      t.copyProposal(from);
      this.#p.plans.forEach((_, g) => t.writeTrim(g, from.trims[g]!));
      if (from.proposal < t.i32(t.self, t.c.proposal)) {
        // An older commit over this member's later proposal (#olderCommit): its counters go back to the
        // commit's, trimFor first, so that committed ≤ trimFor ≤ proposal holds after each write.
        for (const col of [t.c.trimFor, t.c.committed, t.c.proposal]) t.setI32(col, from.committed);
      } else {
        this.#setProposal(from.proposal);
        this.#setTrimFor(from.trimFor);
        this.#setCommitted(from.committed);
      }
    }
    if (!this.#wedged) this.#wedge('peer', [t.members[from?.row ?? t.self]!]);
    t.push();
    this.#applied = this.#t.committedChange(this.view);
    return this.#applied;
  }

  #wedge(cause: WedgeCause, members: number[]): void {
    if (this.#wedged) return;
    this.#wedged = true;
    this.#p.wedge();
    this.#t.setU8(this.#t.c.wedged, 0, 1);
    this.#note({ event: 'wedged', cause, members });
  }

  /** Wedges because a peer did: for the suspicions or leaves the rows show, else for the wedged rows. */
  #wedgeFor(round: Round): void {
    const t = this.#t;
    if (round.suspects.size > 0) this.#wedge('suspected', [...round.suspects]);
    else if (round.leavers.size > 0) this.#wedge('leaving', [...round.leavers]);
    else this.#wedge('peer', t.members.filter((_, r) => t.u8(r, t.c.wedged) !== 0));
  }

  /** The proposal this member's row now holds: what it removes and adds, and whose it is. */
  #noteProposal(): void {
    const t = this.#t, c = t.c;
    this.#note({ event: 'proposed', proposal: t.i32(t.self, c.proposal), proposer: t.i32(t.self, c.proposer) - 1,
      removes: t.members.filter((_, j) => t.u8(t.self, c.changes, j) !== 0),
      adds: t.readJoins(t.self).map((j) => j.id) });
  }

  #note(note: ProtocolNote): void {
    (this.#notes ??= []).push(note);
  }

  // Where this member's proposal, trimFor and committed leave: each only grows, and none passes proposal.

  #setProposal(proposal: number): void {
    const t = this.#t;
    assertMonotonic(t.i32(t.self, t.c.proposal), proposal, 'this member\'s proposal');
    t.setI32(t.c.proposal, proposal);
  }

  #setTrimFor(proposal: number): void {
    const t = this.#t;
    assertMonotonic(t.i32(t.self, t.c.trimFor), proposal, 'this member\'s trimFor');
    assertAtMost(proposal, t.i32(t.self, t.c.proposal), 'trimFor ≤ proposal in this member\'s row');
    t.setI32(t.c.trimFor, proposal);
  }

  #setCommitted(proposal: number): void {
    const t = this.#t;
    assertMonotonic(t.i32(t.self, t.c.committed), proposal, 'this member\'s committed');
    assertAtMost(proposal, t.i32(t.self, t.c.trimFor), 'committed ≤ trimFor in this member\'s row');
    t.setI32(t.c.committed, proposal);
  }

  // ---- invariants -------------------------------------------------------------------------------------

  /**
   * Throws (an assertion) when this member's protocol state is inconsistent: in every row not found bad
   * committed ≤ trimFor ≤ proposal (each row writes them in that order of growth); in this member's row, the wedged
   * flag says what this member did, a proposal is held only once wedged and names its proposer, an applied
   * change is the committed one. For the simulator, after every step; it reads the table, n rows.
   */
  invariants(): void {
    const t = this.#t, c = t.c;
    for (let r = 0; r < t.n; r++) {
      if (this.#rows.isBad(r)) continue; // a peer's row found bad: ignored and its member suspected
      const proposal = t.i32(r, c.proposal), trimFor = t.i32(r, c.trimFor), committed = t.i32(r, c.committed);
      assertAtMost(trimFor, proposal, 'trimFor ≤ proposal in a row');
      assertAtMost(committed, trimFor, 'committed ≤ trimFor in a row');
    }
    const proposal = t.i32(t.self, c.proposal);
    assertEqual(t.u8(t.self, c.wedged), this.#wedged ? 1 : 0, 'this member\'s wedged flag (1: it wedged)');
    if (proposal > 0) {
      assert(this.#wedged, 'a member that holds a proposal has wedged');
      assert(t.i32(t.self, c.proposer) > 0, 'a proposal this member holds names its proposer');
    }
    assert(!(this.#applied && this.#stopped), 'a member that applied a change did not also stop');
    if (this.#applied) assertEqual(t.i32(t.self, c.committed), this.#applied.proposal, 'the applied proposal');
    assertAtMost(this.#joins.length, MAX_JOINS_PER_CHANGE, 'joiners held for the next proposal');
  }
}
