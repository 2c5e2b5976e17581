// The view-change protocol of DESIGN.md §6 at one member, over the membership columns of its view's SST
// (ts/multicast/layout.ts). `step()` runs after every batch of table changes; it reads every row, takes at
// most one action, pushes this member's membership span to every peer, and says when the change is done.
//
//   suspect    a member's heartbeat stalled or its connection broke (or it asked to leave): this member
//              marks it in its row, and wedges — its shards send nothing new and freeze their receive
//              counters (numReceived, seqNum) and deliveries; what was sent still lands in the slots
//   propose    the leader (lowest-ranked member nobody suspects) writes the removals — everything suspected
//              or leaving in any row, and everything any row already holds as a change — the joiners that
//              contacted it (ts/group/contact.ts), and a proposal number above every number in the table
//   ack        every member of the next view copies the leader's proposal into its row, once wedged
//   trim       with every ack in, the leader computes each shard's ragged trim from the frozen numReceived
//              of the shard's members in the next view — or adopts a trim some member already copied — and
//              publishes it with trimFor = its proposal; members copy it (a second ack)
//   commit     with every copy in, the leader sets committed; a member that sees a commit in any row (and
//              has not acked a later proposal) copies the committing row whole into its own, pushes it, and
//              applies it: delivers exactly the messages inside the trim and installs the next view.
//
// Why no member delivers a message that another survivor lacks: a member freezes its counters when it
// wedges and acks after (one connection is FIFO), so the leader computes the trim from final values; a
// message delivered before the change was stable, so every frozen numReceived covers it. Why one trim per
// change: a trim is committed only once every member of the next view holds a copy, so a new leader finds
// a committed trim in its own row and adopts it; a member that acked a later proposal ignores older
// commits, and a leader cannot collect that member's ack while any live member applied an older commit.
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
//   - Point-to-point mailboxes (the data lane) are ordered with nothing here.

import type { Arena } from '../arena.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import type { SubgroupPlan } from './plans.js';
import { JOIN_HOST_BYTES, MAX_JOINS_PER_CHANGE, MEMBERSHIP_COLUMNS, subgroupColumns } from '../multicast/layout.js';
import type { Column, SstLayout } from '../sst/layout.js';
import { adoptTrim, hasMajority, leaderOf, nextView, raggedTrim, type ViewSpec } from './view-change.js';

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
  /** The ragged trim rule (default raggedTrim); the simulator swaps in wrong ones to show its checks fail. */
  trim?: (numReceivedOfLive: ReadonlyArray<ArrayLike<number>>) => number[];
  /** Called once, when this member wedges: every shard stops sending and freezes its counters. */
  wedge: () => void;
}

/** A new member asking to enter the next view: its id and the host it accepts connections on. */
export interface Joiner {
  id: number;
  host: string;
}

/** A committed change, as applied at this member. */
export interface Change {
  proposal: number;
  /** The member that made the proposal: it tells its joiners the view and publishes their ports. */
  proposer: number;
  removed: number[];
  /** Members entering the next view, in join order (appended to it). */
  joined: Joiner[];
  /** Of the removed, those that asked to leave: they will be in no view, so the start barrier of the next
   *  view counts the previous view without them (see allInstalled). */
  left: number[];
  next: ViewSpec;
  /** Per subgroup index, per shard: the trim (highest index delivered) of each sender rank. */
  trims: number[][][];
}

export type StepResult =
  | { type: 'commit'; change: Change }
  | { type: 'partitioned'; unreachable: number[] }
  /** Another member suspects this one: every proposal removes it, so it stops now (and may rejoin). */
  | { type: 'suspected'; by: number[] }
  /** Every member of the view asked to leave: the group ends, and each member is done. */
  | { type: 'dissolved' }
  | null;

export class ViewChangeProtocol {
  readonly view: ViewSpec;
  readonly #p: ProtocolParts;
  readonly #row: number;
  readonly #n: number;
  readonly #c: Record<keyof typeof MEMBERSHIP_COLUMNS, Column>;
  readonly #trimCols: Column[];
  readonly #numReceivedCols: Column[];
  /** [offset, length] of this member's membership span, and of each subgroup's frozen counters (the push that wedges). */
  readonly #span: [number, number];
  readonly #counterSpans: Array<[number, number]>;
  #wedged = false;
  #stopped = false;
  /** Joiners this member (as leader) will propose; fixed once it wedged for them. */
  #joins: Joiner[] = [];
  readonly #utf8 = new TextEncoder();
  readonly #fromUtf8 = new TextDecoder();
  #applied: Change | null = null;

  constructor(parts: ProtocolParts) {
    this.#p = parts;
    this.view = parts.view;
    const { layout } = parts;
    this.#row = layout.rowOf(parts.selfId);
    this.#n = layout.rows;
    const M = MEMBERSHIP_COLUMNS;
    this.#c = Object.fromEntries(Object.entries(M).map(([k, name]) => [k, layout.column(name)])) as Record<keyof typeof M, Column>;
    this.#trimCols = parts.plans.map((plan) => layout.column(subgroupColumns(plan).trim));
    this.#numReceivedCols = parts.plans.map((plan) => layout.column(subgroupColumns(plan).numReceived));
    const membership = [...Object.values(this.#c), ...this.#trimCols];
    this.#span = layout.pushRanges(this.#row, membership)[0]!;
    // numReceived, seqNum, deliveredNum of each subgroup: one span each, without `index` (see Lanes above).
    this.#counterSpans = parts.plans.map((plan) => {
      const c = subgroupColumns(plan);
      return layout.pushRanges(this.#row, [c.numReceived, c.seqNum, c.deliveredNum].map((name) => layout.column(name)))[0]!;
    });
  }

  get wedged(): boolean { return this.#wedged; }
  /** The change this member applied, once it did. */
  get applied(): Change | null { return this.#applied; }

  /** This member suspects `member` (heartbeat stalled, connection broke): marks it and wedges. */
  suspect(member: number): void {
    const j = this.#p.layout.rowOf(member);
    if (j < 0 || this.#u8(this.#row, this.#c.suspected, j) === 1) return;
    this.#setU8(this.#c.suspected, j, 1);
    this.#wedge();
    this.#push();
  }

  /** This member asks to leave: the leader removes it like a failed member, without suspicion. */
  leave(): void {
    this.#setU8(this.#c.leaving, 0, 1);
    this.#wedge();
    this.#push();
  }

  /**
   * Joiners that contacted this member while it leads an unchanging view: it wedges, and its next proposal
   * takes them. False (ask again later) when it is not the leader, a change is under way, a member still
   * receives state from the last join, or there are more than MAX_JOINS_PER_CHANGE.
   */
  join(joiners: readonly Joiner[]): boolean {
    if (this.#wedged || this.#applied || this.#stopped || joiners.length === 0 || joiners.length > MAX_JOINS_PER_CHANGE) return false;
    if (this.leader() !== this.#p.selfId || this.#anyWedged() || this.anyReceiving()) return false;
    this.#joins = [...joiners];
    this.#wedge();
    this.#push(true);
    return true;
  }

  /** The lowest-ranked member nobody suspects (the one joiners are sent to), or null. */
  leader(): number | null {
    return leaderOf(this.#p.layout.members, this.suspects());
  }

  /** Members suspected in any row (suspicions are OR-ed across rows). */
  suspects(): Set<number> {
    const out = new Set<number>();
    const { members } = this.#p.layout;
    for (let r = 0; r < this.#n; r++) for (let j = 0; j < this.#n; j++) if (this.#u8(r, this.#c.suspected, j) === 1) out.add(members[j]!);
    return out;
  }

  /** This member is connected to every member of the view: says so in its row (the start barrier). */
  announceInstalled(): void {
    this.#setI32(this.#c.installed, this.view.vid + 1);
    this.#push();
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
    const suspects = this.suspects();
    const { members } = this.#p.layout;
    let installed = 0;
    const joined = new Set(this.#p.joined ?? []);
    const voters = this.#p.previousVoters ? new Set(this.#p.previousVoters) : null;
    for (let r = 0; r < this.#n; r++) {
      const done = this.#i32(r, this.#c.installed) === this.view.vid + 1;
      if (!done && !suspects.has(members[r]!)) return false;
      if (done && (voters ? voters.has(members[r]!) : !joined.has(members[r]!))) installed++;
    }
    return hasMajority(voters ? voters.size : (this.#p.previousSize ?? this.#n), installed);
  }

  /** Publishes where this member accepts connections in the view that proposal `proposal` makes. */
  publishNextPort(proposal: number, port: number): void {
    this.#setI32(this.#c.nextPort, port);
    this.#setI32(this.#c.nextPortFor, proposal);
    this.#push();
  }

  /** The port `member` published for the view of `proposal`, or null. */
  nextPortOf(member: number, proposal: number): number | null {
    const r = this.#p.layout.rowOf(member);
    return this.#i32(r, this.#c.nextPortFor) === proposal ? this.#i32(r, this.#c.nextPort) : null;
  }

  /** The proposer of `change` publishes where each of its joiners accepts connections in the next view. */
  publishJoinPorts(proposal: number, ports: readonly number[]): void {
    ports.forEach((port, k) => this.#setI32(this.#c.joinPorts, port, k));
    this.#setI32(this.#c.joinPortsFor, proposal);
    this.#push();
  }

  /** The port the proposer of `change` published for its k-th joiner, or null (not yet, or never). */
  joinPortOf(change: Change, k: number): number | null {
    const r = this.#p.layout.rowOf(change.proposer);
    return this.#i32(r, this.#c.joinPortsFor) === change.proposal ? this.#i32(r, this.#c.joinPorts, k) : null;
  }

  /** Publishes the port of this member's contact server, so members can send joiners to the leader's. */
  publishContactPort(port: number): void {
    this.#setI32(this.#c.contactPort, port);
    this.#push();
  }

  /** Says in this member's row whether it still awaits a subgroup's state (see join()). */
  setReceiving(receiving: boolean): void {
    if ((this.#u8(this.#row, this.#c.receiving) === 1) === receiving) return;
    this.#setU8(this.#c.receiving, 0, receiving ? 1 : 0);
    this.#push();
  }

  /** Some member of the view still awaits state: a change now would cut its transfer off. */
  anyReceiving(): boolean {
    for (let r = 0; r < this.#n; r++) if (this.#u8(r, this.#c.receiving) === 1) return true;
    return false;
  }

  /** The contact port `member` published, or null. */
  contactPortOf(member: number): number | null {
    const r = this.#p.layout.rowOf(member);
    const port = r < 0 ? 0 : this.#i32(r, this.#c.contactPort);
    return port > 0 ? port : null;
  }

  /** One evaluation of the protocol over the current table. */
  step(): StepResult {
    if (this.#applied || this.#stopped) return null;
    const { layout, selfId } = this.#p;
    const members = layout.members;
    const c = this.#c;
    // Every step of a change is taken by a wedged member (suspecting, leaving, proposing, acking and
    // committing all wedge first), so while no row is wedged there is nothing to do: the common case, on
    // every step of the group, costs one read per row.
    if (!this.#wedged && !this.#anyWedged()) return null;
    const mine = this.#i32(this.#row, c.proposal);

    // A commit anywhere, unless this member acked a later proposal: copy it whole, echo it, apply it.
    for (let r = 0; r < this.#n; r++) {
      const committed = this.#i32(r, c.committed);
      if (committed > 0 && committed >= mine) return { type: 'commit', change: this.#apply(r) };
    }

    const suspects = this.suspects();
    const removals = new Set(suspects);
    const leavers = new Set<number>();
    let anyProposal = false;
    for (let r = 0; r < this.#n; r++) {
      if (this.#u8(r, c.leaving) === 1) { removals.add(members[r]!); leavers.add(members[r]!); }
      if (this.#i32(r, c.proposal) > 0) {
        anyProposal = true;
        for (let j = 0; j < this.#n; j++) if (this.#u8(r, c.changes, j) === 1) removals.add(members[j]!);
      }
    }
    if (removals.size === 0 && !anyProposal && this.#joins.length === 0) return null;
    if (!this.#wedged) { this.#wedge(); this.#push(true); }
    // A member never suspects itself, and never counts itself unreachable: suspected by another, it is in
    // every proposal's removals, so it can take no part in the next view and stops here instead.
    if (suspects.has(selfId)) {
      this.#stopped = true;
      return { type: 'suspected', by: members.filter((_, r) => this.#u8(r, c.suspected, this.#row) === 1) };
    }
    // Partition safety: a majority of the members that stay (leavers consent, and are in no next view) —
    // of those that stay and did not join into this view (see votersAmong: admission).
    const staying = members.filter((m) => !leavers.has(m));
    if (staying.length === 0) { // every member asked to leave: nobody is left to install a view
      this.#stopped = true;
      return { type: 'dissolved' };
    }
    const voters = this.votersAmong(staying);
    if (!hasMajority(voters.length, voters.filter((m) => !suspects.has(m)).length)) {
      this.#stopped = true;
      return { type: 'partitioned', unreachable: [...suspects] };
    }
    const leader = leaderOf(members, suspects);
    const next = members.filter((m) => !removals.has(m));
    const nextRows = next.map((m) => layout.rowOf(m));

    if (leader === selfId) {
      // A proposal numbered at or above this leader's, made by a leader that failed before this one saw it
      // (the table is ragged), holds the acks of the members that copied it: they take only a larger number.
      if (mine === 0 || this.#outnumbered(mine) || !this.#sameChanges(this.#row, removals) || this.#i32(this.#row, c.proposer) !== selfId + 1) {
        let top = 0;
        for (let r = 0; r < this.#n; r++) top = Math.max(top, this.#i32(r, c.proposal), this.#i32(r, c.trimFor), this.#i32(r, c.committed));
        for (let j = 0; j < this.#n; j++) this.#setU8(c.changes, j, removals.has(members[j]!) ? 1 : 0);
        // Only this leader's own joiners: those of a failed leader were talking to it, and ask again.
        this.#writeJoins(this.#joins);
        this.#setI32(c.proposer, selfId + 1);
        this.#setI32(c.proposal, top + 1);
        this.#push();
        return null;
      }
      if (!nextRows.every((r) => this.#i32(r, c.proposal) === mine && this.#u8(r, c.wedged) === 1)) return null;
      if (this.#i32(this.#row, c.trimFor) !== mine) {
        const copy = nextRows.find((r) => this.#i32(r, c.trimFor) > 0);
        this.#p.plans.forEach((plan, g) => {
          const computed = this.#computeTrim(plan, g, removals);
          const adopted = adoptTrim(copy === undefined ? [] : [this.#readTrim(copy, g)], computed);
          this.#writeTrim(g, adopted);
        });
        this.#setI32(c.trimFor, mine);
        this.#push();
        return null;
      }
      if (!nextRows.every((r) => this.#i32(r, c.trimFor) === mine)) return null;
      this.#setI32(c.committed, mine);
      return { type: 'commit', change: this.#apply(this.#row) };
    }

    // Not the leader: ack its proposal once wedged, then copy its trim.
    if (leader === null) return null;
    const lr = layout.rowOf(leader);
    const theirs = this.#i32(lr, c.proposal);
    if (theirs > mine) {
      this.#copyProposal(lr);
      this.#setI32(c.proposal, theirs);
      this.#push();
      return null;
    }
    if (theirs === mine && mine > 0 && this.#i32(lr, c.trimFor) === mine && this.#i32(this.#row, c.trimFor) !== mine) {
      this.#p.plans.forEach((_, g) => this.#writeTrim(g, this.#readTrim(lr, g)));
      this.#setI32(c.trimFor, mine);
      this.#push();
    }
    return null;
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
    const joined = this.#p.joined;
    if (!joined || joined.length === 0) return [...staying];
    const old = staying.filter((m) => !joined.includes(m));
    return old.length > 0 ? old : [...staying];
  }

  #anyWedged(): boolean {
    for (let r = 0; r < this.#n; r++) if (this.#u8(r, this.#c.wedged) === 1) return true;
    return false;
  }

  /** Copies row `r`'s proposal, trim and commit into this member's row, pushes it, and describes the change. */
  #apply(r: number): Change {
    const c = this.#c;
    const { layout } = this.#p;
    const members = layout.members;
    if (r !== this.#row) {
      this.#copyProposal(r);
      this.#p.plans.forEach((_, g) => this.#writeTrim(g, this.#readTrim(r, g)));
      for (const col of [c.proposal, c.trimFor, c.committed]) this.#setI32(col, this.#i32(r, col));
    }
    if (!this.#wedged) this.#wedge();
    this.#push();
    const removed = members.filter((_, j) => this.#u8(this.#row, c.changes, j) === 1);
    const left = removed.filter((m) => this.#u8(layout.rowOf(m), c.leaving) === 1);
    const proposal = this.#i32(this.#row, c.committed);
    const joined = this.#readJoins(this.#row);
    const proposer = this.#i32(this.#row, c.proposer) - 1;
    const trims = this.#p.plans.map((plan, g) => {
      const flat = this.#readTrim(this.#row, g);
      const S = subgroupColumns(plan).senders;
      return plan.shards.map((shard, s) => flat.slice(s * S, s * S + shard.senders.length));
    });
    this.#applied = { proposal, proposer, removed, joined, left, next: nextView(this.view, new Set(removed), joined.map((j) => j.id)), trims };
    return this.#applied;
  }

  /** Per shard of subgroup g, per sender rank: the minimum numReceived over the shard's members that stay. */
  #computeTrim(plan: SubgroupPlan, g: number, removals: ReadonlySet<number>): number[] {
    const S = subgroupColumns(plan).senders;
    const out = new Array<number>(plan.shards.length * S).fill(-1);
    plan.shards.forEach((shard, s) => {
      const live = shard.members.filter((m) => !removals.has(m));
      if (live.length === 0) return;
      const rows = live.map((m) => {
        const r = this.#p.layout.rowOf(m);
        return shard.senders.map((_, rank) => this.#i64(r, this.#numReceivedCols[g]!, rank));
      });
      (this.#p.trim ?? raggedTrim)(rows).forEach((t, rank) => { out[s * S + rank] = t; });
    });
    return out;
  }

  /** Some row holds a proposal numbered above `mine`, or numbered `mine` by another proposer. */
  #outnumbered(mine: number): boolean {
    if (mine === 0) return false;
    const c = this.#c;
    for (let r = 0; r < this.#n; r++) {
      const theirs = this.#i32(r, c.proposal);
      if (theirs > mine || (theirs === mine && this.#i32(r, c.proposer) !== this.#p.selfId + 1)) return true;
    }
    return false;
  }

  /** Copies row r's proposal (removals, joiners, proposer) into this member's row; the caller sets `proposal`. */
  #copyProposal(r: number): void {
    const c = this.#c;
    for (let j = 0; j < this.#n; j++) this.#setU8(c.changes, j, this.#u8(r, c.changes, j));
    this.#writeJoins(this.#readJoins(r));
    this.#setI32(c.proposer, this.#i32(r, c.proposer));
  }

  #readJoins(r: number): Joiner[] {
    const out: Joiner[] = [];
    for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
      const id = this.#i32(r, this.#c.joins, k) - 1;
      if (id < 0) break;
      const at = this.#p.layout.offsetOf(r, this.#c.joinHosts, k * JOIN_HOST_BYTES);
      const bytes = this.#p.arena.u8.slice(at, at + JOIN_HOST_BYTES);
      const end = bytes.indexOf(0);
      out.push({ id, host: this.#fromUtf8.decode(end < 0 ? bytes : bytes.subarray(0, end)) });
    }
    return out;
  }

  #writeJoins(joiners: readonly Joiner[]): void {
    for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
      const joiner = joiners[k];
      this.#setI32(this.#c.joins, joiner ? joiner.id + 1 : 0, k);
      const host = this.#utf8.encode(joiner?.host ?? '');
      for (let b = 0; b < JOIN_HOST_BYTES; b++) this.#setU8(this.#c.joinHosts, k * JOIN_HOST_BYTES + b, host[b] ?? 0);
    }
  }

  #sameChanges(r: number, removals: ReadonlySet<number>): boolean {
    const members = this.#p.layout.members;
    for (let j = 0; j < this.#n; j++) if ((this.#u8(r, this.#c.changes, j) === 1) !== removals.has(members[j]!)) return false;
    return true;
  }

  #wedge(): void {
    if (this.#wedged) return;
    this.#wedged = true;
    this.#p.wedge();
    this.#setU8(this.#c.wedged, 0, 1);
  }

  /** Pushes this member's membership span (after its frozen counters, when it wedges) to every peer, on the control lane. */
  #push(withCounters = false): void {
    if (withCounters) for (const [offset, length] of this.#counterSpans) this.#p.fabric.writeAll(offset, length, Lane.Control);
    const [offset, length] = this.#span;
    this.#p.fabric.writeAll(offset, length, Lane.Control);
  }

  #readTrim(r: number, g: number): number[] {
    const col = this.#trimCols[g]!;
    return Array.from({ length: col.count }, (_, i) => this.#i64(r, col, i));
  }

  #writeTrim(g: number, trim: readonly number[]): void {
    const col = this.#trimCols[g]!;
    trim.forEach((t, i) => Atomics.store(this.#p.arena.i64, this.#p.layout.offsetOf(this.#row, col, i) >> 3, BigInt(t)));
  }

  #u8(r: number, col: Column, i = 0): number { return Atomics.load(this.#p.arena.u8, this.#p.layout.offsetOf(r, col, i)); }
  #i32(r: number, col: Column, i = 0): number { return Atomics.load(this.#p.arena.i32, this.#p.layout.offsetOf(r, col, i) >> 2); }
  #i64(r: number, col: Column, i = 0): number { return Number(Atomics.load(this.#p.arena.i64, this.#p.layout.offsetOf(r, col, i) >> 3)); }
  #setU8(col: Column, i: number, v: number): void { Atomics.store(this.#p.arena.u8, this.#p.layout.offsetOf(this.#row, col, i), v); }
  #setI32(col: Column, v: number, i = 0): void { Atomics.store(this.#p.arena.i32, this.#p.layout.offsetOf(this.#row, col, i) >> 2, v); }
}
