// The membership columns of a view's SST (drawn in columns.ts) as one member reads and writes
// them: any row may be read, only this member's row is written, and what it wrote reaches the others by a
// push of its spans on the control lane. The view-change protocol (protocol.ts) speaks in these terms and
// never computes an offset itself.
//
// Every predicate the protocol evaluates over the table — who is suspected or leaving or proposed for removal,
// whether any row is wedged, the highest proposal number, a commit to adopt, whether a proposal is
// outnumbered, how many members acknowledged it or copied its trim, the start barrier, the ragged trim — is
// a view-change kernel (assembly/membership.ts) called here: the WebAssembly exports, or their plain-JS twins
// (ts/kernels/membership-reference.ts), whichever the protocol was given. The kernels take row masks and
// write their wider outputs in the arena's MEMBERSHIP_SCRATCH region (the memory map): ALL_ROWS, written
// once here, marks every row (the protocol reads every row: a suspected member's suspicions still count)
// but those found bad (row-checks.ts: ignore); SOME_ROWS is rewritten before each call that counts a subset
// (the next view's members, a shard's). Only
// the thread stepping this view's protocol touches them, within one call: the main thread, or the predicate
// worker with the worker engine — the main thread then reads with a scratch of its own (Scratch.Reader).

import type { Arena } from '../arena.js';
import { assertEqual } from '../assert.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import * as map from '../generated/memory-map.js';
import { RemovalFlag, type MembershipKernels } from '../kernels/membership.js';
import { subgroupColumns } from '../multicast/layout.js';
import { JOIN_HOST_BYTES, MAX_JOINS_PER_CHANGE, MEMBERSHIP_COLUMNS } from './columns.js';
import type { Column, SstLayout } from '../sst/layout.js';
import type { SubgroupPlan } from './plans.js';
import type { Change } from './outcomes.js';
import { leaderOf, nextView, type ViewSpec } from './view-change.js';

/**
 * Where a table's kernels keep their row masks and outputs: MEMBERSHIP_SCRATCH for the thread that steps the
 * protocol, MEMBERSHIP_READER_SCRATCH (the same fields) for the main thread when the predicate worker steps it
 * and this thread only reads (ts/membership/worker-view-change.ts).
 */
export const enum Scratch { Stepper = map.MEMBERSHIP_SCRATCH_OFFSET, Reader = map.MEMBERSHIP_READER_SCRATCH_OFFSET }

/** A new member asking to enter the next view: its id and the host it accepts connections on. */
export interface Joiner {
  id: number;
  host: string;
}

/** How a ragged trim is computed from the rows' numReceived (the kernel's minimum unless a test gives another). */
export type TrimRule = (numReceivedOfLive: ReadonlyArray<ArrayLike<number>>) => number[];

export type MembershipColumns = Record<keyof typeof MEMBERSHIP_COLUMNS, Column>;

/**
 * A peer's row as one step read it (MembershipTable.readRow). The protocol checks this copy (row-checks.ts)
 * and adopts from it, never from the live row: the fabric may rewrite that between the check and the use.
 */
export interface RowCopy {
  readonly row: number;
  readonly committed: number;
  readonly trimFor: number;
  readonly proposal: number;
  readonly wedged: number;
  /** The proposer's id + 1, as written (0: none). */
  readonly proposer: number;
  /** The `changes` bytes, one per row. */
  readonly changes: readonly number[];
  /** Per `joins` slot, the column's value − 1 (−1: an empty slot). */
  readonly joinIds: readonly number[];
  /** The joiners, up to the first empty slot, with their hosts. */
  readonly joins: readonly Joiner[];
  /** Per subgroup, the trim columns (per shard, per sender rank). */
  readonly trims: ReadonlyArray<readonly number[]>;
}

/** What one step of the protocol reads from the table once a change is under way (MembershipTable.gather). */
export interface Round {
  /** The proposal this member's row holds (0: none). */
  mine: number;
  /** Members suspected in any row (suspicions are OR-ed across rows). */
  suspects: Set<number>;
  /** What a proposal now removes: every suspect, every leaver, every removal some row already proposes. */
  removals: Set<number>;
  /** Members that asked to leave. */
  leavers: Set<number>;
  /** The lowest-ranked member nobody suspects, or null. */
  leader: number | null;
  /** Rows of the members of the next view (this member's among them while it goes on). */
  nextRows: number[];
}

export class MembershipTable {
  /** Rows of the table (members of the view), and this member's row. */
  readonly n: number;
  readonly self: number;
  /** Member ids in row order. */
  readonly members: readonly number[];
  readonly c: MembershipColumns;
  readonly #arena: Arena;
  readonly #layout: SstLayout;
  readonly #fabric: Pick<TableFabric, 'writeAll'>;
  readonly #plans: readonly SubgroupPlan[];
  readonly #trimCols: Column[];
  readonly #numReceivedCols: Column[];
  /** [offset, length] of this member's membership span, and of each subgroup's frozen counters. */
  readonly #span: [number, number];
  readonly #counterSpans: Array<[number, number]>;
  readonly #utf8 = new TextEncoder();
  readonly #fromUtf8 = new TextDecoder();
  readonly #k: MembershipKernels;
  /** The table's base and row stride, as every kernel call takes them. */
  readonly #base: number;
  readonly #stride: number;
  /** The kernels' row masks and outputs, in this table's scratch (Scratch). */
  readonly #allRows: number;
  readonly #someRowsAt: number;
  readonly #flagsOut: number;
  readonly #trimOut: number;

  constructor(arena: Arena, layout: SstLayout, fabric: Pick<TableFabric, 'writeAll'>, selfId: number,
    plans: readonly SubgroupPlan[], kernels: MembershipKernels, scratch: Scratch = Scratch.Stepper) {
    this.#arena = arena;
    this.#allRows = scratch + map.MEMBERSHIP_SCRATCH_ALL_ROWS;
    this.#someRowsAt = scratch + map.MEMBERSHIP_SCRATCH_SOME_ROWS;
    this.#flagsOut = scratch + map.MEMBERSHIP_SCRATCH_REMOVAL_FLAGS;
    this.#trimOut = scratch + map.MEMBERSHIP_SCRATCH_TRIM;
    this.#layout = layout;
    this.#fabric = fabric;
    this.#k = kernels;
    this.#base = layout.base;
    this.#stride = layout.rowStride;
    this.self = layout.rowOf(selfId);
    this.n = layout.rows;
    this.members = layout.members;
    arena.u8.fill(1, this.#allRows, this.#allRows + this.n);
    const entries = Object.entries(MEMBERSHIP_COLUMNS).map(([k, name]) => [k, layout.column(name)]);
    this.c = Object.fromEntries(entries) as MembershipColumns;
    this.#plans = plans;
    this.#trimCols = plans.map((plan) => layout.column(subgroupColumns(plan).trim));
    this.#numReceivedCols = plans.map((plan) => layout.column(subgroupColumns(plan).numReceived));
    this.#span = layout.pushRanges(this.self, [...Object.values(this.c), ...this.#trimCols])[0]!;
    // numReceived, seqNum, deliveredNum of each subgroup: one span each, without `index` (protocol.ts, Lanes).
    this.#counterSpans = plans.map((plan) => {
      const c = subgroupColumns(plan);
      const columns = [c.numReceived, c.seqNum, c.deliveredNum].map((name) => layout.column(name));
      return layout.pushRanges(this.self, columns)[0]!;
    });
  }

  rowOf(member: number): number { return this.#layout.rowOf(member); }

  /**
   * Row r is not read again for any decision: every predicate over "all rows" leaves it out (its member's
   * row failed the checks of row-checks.ts; the protocol suspects it). Only the stepping thread's scratch.
   */
  ignore(r: number): void {
    this.#arena.u8[this.#allRows + r] = 0;
  }

  u8(r: number, col: Column, i = 0): number {
    return Atomics.load(this.#arena.u8, this.#layout.offsetOf(r, col, i));
  }

  i32(r: number, col: Column, i = 0): number {
    return Atomics.load(this.#arena.i32, this.#layout.offsetOf(r, col, i) >> 2);
  }

  i64(r: number, col: Column, i = 0): number {
    return Number(Atomics.load(this.#arena.i64, this.#layout.offsetOf(r, col, i) >> 3));
  }

  /** Writes this member's row. */
  setU8(col: Column, i: number, v: number): void {
    Atomics.store(this.#arena.u8, this.#layout.offsetOf(this.self, col, i), v);
  }

  setI32(col: Column, v: number, i = 0): void {
    Atomics.store(this.#arena.i32, this.#layout.offsetOf(this.self, col, i) >> 2, v);
  }

  /** numReceived of sender `rank` in subgroup g, as row r last pushed it (frozen once r wedged). */
  numReceived(r: number, g: number, rank: number): number {
    return this.i64(r, this.#numReceivedCols[g]!, rank);
  }

  /** The trim columns of subgroup g in row r: per shard, per sender rank, the highest index delivered. */
  readTrim(r: number, g: number): number[] {
    const col = this.#trimCols[g]!;
    return Array.from({ length: col.count }, (_, i) => this.i64(r, col, i));
  }

  writeTrim(g: number, trim: readonly number[]): void {
    const col = this.#trimCols[g]!;
    const i64 = this.#arena.i64;
    trim.forEach((t, i) => Atomics.store(i64, this.#layout.offsetOf(this.self, col, i) >> 3, BigInt(t)));
  }

  /** The joiners of the proposal row r holds, in join order. */
  readJoins(r: number): Joiner[] {
    return this.#joinersOf(r, this.#joinIds(r));
  }

  /** Row r's `joins` slots, each the column's value − 1 (−1: an empty slot). */
  #joinIds(r: number): number[] {
    return Array.from({ length: MAX_JOINS_PER_CHANGE }, (_, k) => this.i32(r, this.c.joins, k) - 1);
  }

  /** Row r's joiners of slots `ids` (column value − 1 each), up to the first empty one, with their hosts. */
  #joinersOf(r: number, ids: readonly number[]): Joiner[] {
    const out: Joiner[] = [];
    for (let k = 0; k < ids.length && ids[k]! >= 0; k++) {
      const at = this.#layout.offsetOf(r, this.c.joinHosts, k * JOIN_HOST_BYTES);
      const bytes = this.#arena.u8.slice(at, at + JOIN_HOST_BYTES);
      const end = bytes.indexOf(0);
      out.push({ id: ids[k]!, host: this.#fromUtf8.decode(end < 0 ? bytes : bytes.subarray(0, end)) });
    }
    return out;
  }

  /**
   * Reads row r's change columns once. The counters come first, smallest first: each only grows, and
   * committed ≤ trimFor ≤ proposal holds in an honest row at every instant, so read in this order they keep
   * that order however a push lands meanwhile. The wedged flag comes after the proposal (an honest row is
   * wedged before it holds one, and stays so).
   */
  readRow(r: number): RowCopy {
    const c = this.c;
    const committed = this.i32(r, c.committed), trimFor = this.i32(r, c.trimFor), proposal = this.i32(r, c.proposal);
    const joinIds = this.#joinIds(r);
    return {
      row: r, committed, trimFor, proposal, wedged: this.u8(r, c.wedged), proposer: this.i32(r, c.proposer),
      changes: Array.from({ length: this.n }, (_, j) => this.u8(r, c.changes, j)),
      joinIds, joins: this.#joinersOf(r, joinIds), trims: this.#trimCols.map((_, g) => this.readTrim(r, g)),
    };
  }

  writeJoins(joiners: readonly Joiner[]): void {
    for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
      const joiner = joiners[k];
      this.setI32(this.c.joins, joiner ? joiner.id + 1 : 0, k);
      const host = this.#utf8.encode(joiner?.host ?? '');
      for (let b = 0; b < JOIN_HOST_BYTES; b++) this.setU8(this.c.joinHosts, k * JOIN_HOST_BYTES + b, host[b] ?? 0);
    }
  }

  /** Copies a row's proposal (removals, joiners, proposer) into this member's row; the caller sets `proposal`. */
  copyProposal(from: RowCopy): void {
    const c = this.c;
    for (let j = 0; j < this.n; j++) this.setU8(c.changes, j, from.changes[j]!);
    this.writeJoins(from.joins);
    this.setI32(c.proposer, from.proposer);
  }

  /** Row r's `changes` are exactly `removals`. */
  sameChanges(r: number, removals: ReadonlySet<number>): boolean {
    for (let j = 0; j < this.n; j++) {
      if ((this.u8(r, this.c.changes, j) !== 0) !== removals.has(this.members[j]!)) return false;
    }
    return true;
  }

  // ---- predicates over the table (the view-change kernels) ---------------------------------------------

  /** Some row says its member has wedged. */
  anyWedged(): boolean {
    return this.#k.countFlagged(this.#base, this.#stride, this.n, this.c.wedged.offset, this.#allRows) > 0;
  }

  /** Some row says its member still awaits a subgroup's state. */
  anyReceiving(): boolean {
    return this.#k.countFlagged(this.#base, this.#stride, this.n, this.c.receiving.offset, this.#allRows) > 0;
  }

  /** Members suspected in any row (suspicions are OR-ed across rows). */
  suspects(): Set<number> {
    this.#removalFlags();
    return this.#membersFlagged(RemovalFlag.SUSPECTED);
  }

  /**
   * Reads what a change needs from every row: who is suspected, who leaves, what any row proposes to
   * remove. Null when there is nothing to change (no removal, no proposal anywhere, and no joiner waiting
   * for this member to propose: `joinersWaiting`).
   */
  gather(mine: number, joinersWaiting: boolean): Round | null {
    const removed = this.#removalFlags();
    const anyProposal = this.highestI32(this.c.proposal) > 0;
    if (removed === 0 && !anyProposal && !joinersWaiting) return null;
    const suspects = this.#membersFlagged(RemovalFlag.SUSPECTED);
    const removals = this.#membersFlagged(RemovalFlag.SUSPECTED | RemovalFlag.LEAVING | RemovalFlag.PROPOSED);
    const leavers = this.#membersFlagged(RemovalFlag.LEAVING);
    const nextRows: number[] = [];
    for (let r = 0; r < this.n; r++) if (!removals.has(this.members[r]!)) nextRows.push(r);
    return { mine, suspects, removals, leavers, leader: leaderOf(this.members, suspects), nextRows };
  }

  /** The largest value of i32 column `col` in any row (−Infinity for a table of no rows). */
  highestI32(col: Column): number {
    return this.#k.highestI32(this.#base, this.#stride, this.n, col.offset, this.#allRows);
  }

  /** The first row that commits a proposal numbered `least` or above, or −1. */
  firstCommitting(least: number): number {
    return this.#k.firstAtLeastI32(this.#base, this.#stride, this.n, this.c.committed.offset, this.#allRows, least);
  }

  /** Some row holds a proposal numbered above `proposal`, or numbered `proposal` by another proposer. */
  outnumbered(proposal: number, proposerId: number): boolean {
    const c = this.c;
    return this.#k.outnumbered(this.#base, this.#stride, this.n, this.#allRows, c.proposal.offset, c.proposer.offset,
      proposal, proposerId + 1) === 1;
  }

  /**
   * Of `rows`, how many acknowledged `proposal` (their row holds it), and how many of those are not wedged
   * (a row acknowledges only once wedged: the caller asserts there are none).
   */
  acknowledgements(rows: readonly number[], proposal: number): { acked: number; unwedged: number } {
    const c = this.c;
    const both = this.#k.acknowledgements(this.#base, this.#stride, this.n, this.#someRows(rows), c.proposal.offset,
      c.wedged.offset, proposal);
    return { acked: both & 0xffff, unwedged: both >>> 16 };
  }

  /** Of `rows`, how many hold exactly `value` in i32 column `col`. */
  countEqual(col: Column, rows: readonly number[], value: number): number {
    return this.#k.countEqualI32(this.#base, this.#stride, this.n, col.offset, this.#someRows(rows), value);
  }

  /** The first of `rows` (in row order) whose i32 column `col` is ≥ `least`, or −1. */
  firstAtLeast(col: Column, rows: readonly number[], least: number): number {
    return this.#k.firstAtLeastI32(this.#base, this.#stride, this.n, col.offset, this.#someRows(rows), least);
  }

  /**
   * The ragged trim of one shard of subgroup g: per sender rank < `senders`, the minimum of numReceived over
   * `rows` (the shard's members in the next view; at least one).
   */
  minNumReceived(g: number, rows: readonly number[], senders: number): number[] {
    const counted = this.#k.raggedTrimMin(this.#base, this.#stride, this.n, this.#numReceivedCols[g]!.offset,
      senders, this.#someRows(rows), this.#trimOut);
    assertEqual(counted, rows.length, 'rows the ragged trim counted');
    const f64 = this.#arena.f64, at = this.#trimOut >> 3;
    return Array.from({ length: senders }, (_, rank) => f64[at + rank]!);
  }

  /**
   * The ragged trim of subgroup g for a change that removes `removals`: per shard, per sender rank, the
   * minimum numReceived over the shard's members that stay (−1 for a shard none of whose members stays).
   * The kernel computes it; a rule given instead (the simulator's wrong ones) reads the rows.
   */
  raggedTrim(plan: SubgroupPlan, g: number, removals: ReadonlySet<number>, rule?: TrimRule): number[] {
    const S = subgroupColumns(plan).senders;
    const out = new Array<number>(plan.shards.length * S).fill(-1);
    plan.shards.forEach((shard, s) => {
      const live = shard.members.filter((m) => !removals.has(m)).map((m) => this.rowOf(m));
      if (live.length === 0) return;
      const trim = rule
        ? rule(live.map((r) => shard.senders.map((_, rank) => this.numReceived(r, g, rank))))
        : this.minNumReceived(g, live, shard.senders.length);
      // Never below −1 (nothing received): a peer's counter below that would make this member's row one its
      // peers refuse (row-checks.ts).
      trim.forEach((t, rank) => { out[s * S + rank] = Math.max(-1, t); });
    });
    return out;
  }

  /** The change this member's row holds committed, as `view`'s next. */
  committedChange(view: ViewSpec): Change {
    const c = this.c, self = this.self;
    const removed = this.members.filter((_, j) => this.u8(self, c.changes, j) !== 0);
    const left = removed.filter((m) => this.u8(this.rowOf(m), c.leaving) !== 0);
    const joined = this.readJoins(self);
    const trims = this.#plans.map((plan, g) => {
      const flat = this.readTrim(self, g);
      const S = subgroupColumns(plan).senders;
      return plan.shards.map((shard, s) => flat.slice(s * S, s * S + shard.senders.length));
    });
    const next = nextView(view, new Set(removed), joined.map((j) => j.id));
    return { proposal: this.i32(self, c.committed), proposer: this.i32(self, c.proposer) - 1, removed, joined, left,
      next, trims };
  }

  /** Runs removalFlags over every row; returns how many members some flag names. */
  #removalFlags(): number {
    const c = this.c;
    return this.#k.removalFlags(this.#base, this.#stride, this.n, this.#allRows, c.suspected.offset, c.leaving.offset,
      c.changes.offset, c.proposal.offset, this.#flagsOut);
  }

  /** The members whose removal flags (the last removalFlags run) include any of `flags`. */
  #membersFlagged(flags: number): Set<number> {
    const u8 = this.#arena.u8, out = new Set<number>();
    for (let j = 0; j < this.n; j++) if ((u8[this.#flagsOut + j]! & flags) !== 0) out.add(this.members[j]!);
    return out;
  }

  /** Marks `rows` (and no other) in SOME_ROWS; returns its offset. */
  #someRows(rows: readonly number[]): number {
    const u8 = this.#arena.u8;
    const at = this.#someRowsAt;
    u8.fill(0, at, at + this.n);
    for (const r of rows) u8[at + r] = 1;
    return at;
  }

  /**
   * Pushes this member's membership span to every peer on the control lane — after its frozen counters
   * (`withCounters`, when it wedges), so a peer that sees the wedge holds the final counters.
   */
  push(withCounters = false): void {
    if (withCounters) {
      for (const [offset, length] of this.#counterSpans) this.#fabric.writeAll(offset, length, Lane.Control);
    }
    const [offset, length] = this.#span;
    this.#fabric.writeAll(offset, length, Lane.Control);
  }
}
