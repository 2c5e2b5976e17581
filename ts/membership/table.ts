// The membership columns of a view's SST (drawn in columns.ts) as one member reads and writes
// them: any row may be read, only this member's row is written, and what it wrote reaches the others by a
// push of its spans on the control lane. The view-change protocol (protocol.ts) speaks in these terms and
// never computes an offset itself.

import type { Arena } from '../arena.js';
import { Lane, type TableFabric } from '../fabric/fabric.js';
import { subgroupColumns } from '../multicast/layout.js';
import { JOIN_HOST_BYTES, MAX_JOINS_PER_CHANGE, MEMBERSHIP_COLUMNS } from './columns.js';
import type { Column, SstLayout } from '../sst/layout.js';
import type { SubgroupPlan } from './plans.js';

/** A new member asking to enter the next view: its id and the host it accepts connections on. */
export interface Joiner {
  id: number;
  host: string;
}

export type MembershipColumns = Record<keyof typeof MEMBERSHIP_COLUMNS, Column>;

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
  readonly #trimCols: Column[];
  readonly #numReceivedCols: Column[];
  /** [offset, length] of this member's membership span, and of each subgroup's frozen counters. */
  readonly #span: [number, number];
  readonly #counterSpans: Array<[number, number]>;
  readonly #utf8 = new TextEncoder();
  readonly #fromUtf8 = new TextDecoder();

  constructor(arena: Arena, layout: SstLayout, fabric: Pick<TableFabric, 'writeAll'>, selfId: number,
    plans: readonly SubgroupPlan[]) {
    this.#arena = arena;
    this.#layout = layout;
    this.#fabric = fabric;
    this.self = layout.rowOf(selfId);
    this.n = layout.rows;
    this.members = layout.members;
    const entries = Object.entries(MEMBERSHIP_COLUMNS).map(([k, name]) => [k, layout.column(name)]);
    this.c = Object.fromEntries(entries) as MembershipColumns;
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
    const out: Joiner[] = [];
    for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
      const id = this.i32(r, this.c.joins, k) - 1;
      if (id < 0) break;
      const at = this.#layout.offsetOf(r, this.c.joinHosts, k * JOIN_HOST_BYTES);
      const bytes = this.#arena.u8.slice(at, at + JOIN_HOST_BYTES);
      const end = bytes.indexOf(0);
      out.push({ id, host: this.#fromUtf8.decode(end < 0 ? bytes : bytes.subarray(0, end)) });
    }
    return out;
  }

  writeJoins(joiners: readonly Joiner[]): void {
    for (let k = 0; k < MAX_JOINS_PER_CHANGE; k++) {
      const joiner = joiners[k];
      this.setI32(this.c.joins, joiner ? joiner.id + 1 : 0, k);
      const host = this.#utf8.encode(joiner?.host ?? '');
      for (let b = 0; b < JOIN_HOST_BYTES; b++) this.setU8(this.c.joinHosts, k * JOIN_HOST_BYTES + b, host[b] ?? 0);
    }
  }

  /** Copies row r's proposal (removals, joiners, proposer) into this member's row; the caller sets `proposal`. */
  copyProposal(r: number): void {
    const c = this.c;
    for (let j = 0; j < this.n; j++) this.setU8(c.changes, j, this.u8(r, c.changes, j));
    this.writeJoins(this.readJoins(r));
    this.setI32(c.proposer, this.i32(r, c.proposer));
  }

  /** Row r's `changes` are exactly `removals`. */
  sameChanges(r: number, removals: ReadonlySet<number>): boolean {
    for (let j = 0; j < this.n; j++) {
      if ((this.u8(r, this.c.changes, j) === 1) !== removals.has(this.members[j]!)) return false;
    }
    return true;
  }

  /** Some row says its member has wedged. */
  anyWedged(): boolean {
    for (let r = 0; r < this.n; r++) if (this.u8(r, this.c.wedged) === 1) return true;
    return false;
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
