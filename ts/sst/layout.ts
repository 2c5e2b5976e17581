// The SST's row layout: a pure function of (columns, member list), so every member computes the same
// offsets and a remote write can name a local offset (DESIGN.md §1, §3).
//
// A row is laid out as
//
//   +---------------------------- control part -----------------------------+------ data part ------+
//   | heartbeat i64 | user counters (i64, i32, u8 arrays; each 8-aligned)   | bytes columns         |
//   +-----------------------------------------------------------------------+-----------------------+
//   0                                                          controlBytes             rowStride (64-aligned)
//
// The control part is granted to its owner as control ranges (applied with 8-byte atomic stores, so a
// reader never sees a torn counter); the data part as a data range (plain copies). The heartbeat has a
// range of its own, granted quiet: its writes do not wake the receiver's predicate worker, which scans
// heartbeats on its own timer. Only the owner's predicate worker pushes the heartbeat; a push from the
// main thread sends the data part of its range before its control part, so a counter that announces data
// arrives after the data.

import { ConfigError } from '../errors.js';
import { GrantKind, type Grant } from '../fabric/fabric.js';
import * as map from '../generated/memory-map.js';
import { fnv1a } from '../hash.js';

export type ColumnSpec =
  /** Signed 64-bit counters (read and written as JS numbers; exact below 2^53). */
  | { type: 'i64'; count?: number }
  /** Signed 32-bit values. */
  | { type: 'i32'; count?: number }
  /** Flags or small values, one byte each. */
  | { type: 'u8'; count?: number }
  /** Opaque bytes (message slots, payloads), copied but never read as counters. */
  | { type: 'bytes'; bytes: number };

export type ColumnSpecs = Readonly<Record<string, ColumnSpec>>;

export interface Column {
  readonly name: string;
  readonly type: ColumnSpec['type'];
  /** Number of elements (1 for scalars; the byte count for 'bytes'). */
  readonly count: number;
  /** Bytes per element. */
  readonly elementBytes: number;
  /** Offset of the column inside a row. */
  readonly offset: number;
  /** Bytes the column occupies (before padding). */
  readonly bytes: number;
  readonly kind: GrantKind;
}

/** The heartbeat column every table has; advanced by the predicate worker of the row's owner. */
export const HEARTBEAT_COLUMN = 'heartbeat';
/** The heartbeat is the row's first 8 bytes. */
const HEARTBEAT_BYTES = 8;

const ELEMENT_BYTES = { i64: 8, i32: 4, u8: 1, bytes: 1 } as const;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const align = (n: number, to: number) => Math.ceil(n / to) * to;

export class SstLayout {
  readonly columns: ReadonlyMap<string, Column>;
  /** Member ids in row order. */
  readonly members: readonly number[];
  readonly rows: number;
  readonly rowStride: number;
  /** Bytes at the start of each row that form its control part. */
  readonly controlBytes: number;
  /** Whether rows have a data part (bytes columns); padding alone is never granted or pushed. */
  readonly hasData: boolean;
  /** Arena offset of row 0. */
  readonly base: number;
  /** A 32-bit tag of (columns, members); members with different layouts refuse each other's handshake. */
  readonly tag: number;

  constructor(specs: ColumnSpecs, members: readonly number[], base: number = map.DYNAMIC_BASE) {
    if (members.length < 1 || members.length > map.MAX_MEMBERS) {
      throw new ConfigError(`an SST needs between 1 and ${map.MAX_MEMBERS} members, got ${members.length}`);
    }
    const seen = new Set<number>();
    for (const id of members) {
      if (!Number.isInteger(id) || id < 0 || id >= 0xffff) {
        throw new ConfigError(`member id ${id} must be an integer in [0, 65534]`);
      }
      if (seen.has(id)) throw new ConfigError(`member id ${id} appears twice in the member list`);
      seen.add(id);
    }
    const columns = new Map<string, Column>();
    let at = 0;
    const place = (name: string, type: ColumnSpec['type'], count: number, kind: GrantKind) => {
      const elementBytes = ELEMENT_BYTES[type];
      at = align(at, 8);
      columns.set(name, { name, type, count, elementBytes, offset: at, bytes: count * elementBytes, kind });
      at += count * elementBytes;
    };
    place(HEARTBEAT_COLUMN, 'i64', 1, GrantKind.Control);
    const entries = Object.entries(specs);
    for (const [name, spec] of entries) {
      if (name === HEARTBEAT_COLUMN) {
        throw new ConfigError(`column name '${HEARTBEAT_COLUMN}' is reserved; pick another name`);
      }
      if (!NAME.test(name)) throw new ConfigError(`column name '${name}' must be an identifier (letters, digits, _)`);
      if (spec.type === 'bytes') continue;
      if (!(spec.type in ELEMENT_BYTES)) {
        throw new ConfigError(
          `column '${name}' has unknown type '${(spec as { type: string }).type}'; use i64, i32, u8 or bytes`);
      }
      const count = spec.count ?? 1;
      if (!Number.isInteger(count) || count < 1 || count > 1 << 20) {
        throw new ConfigError(`column '${name}': count must be an integer in [1, 2^20]`);
      }
      place(name, spec.type, count, GrantKind.Control);
    }
    this.controlBytes = align(at, 8);
    at = this.controlBytes;
    for (const [name, spec] of entries) {
      if (spec.type !== 'bytes') continue;
      if (!Number.isInteger(spec.bytes) || spec.bytes < 1 || spec.bytes > 1 << 30) {
        throw new ConfigError(`column '${name}': bytes must be an integer in [1, 2^30]`);
      }
      place(name, 'bytes', spec.bytes, GrantKind.Data);
    }
    this.hasData = at > this.controlBytes;
    this.rowStride = align(Math.max(at, 8), map.CACHE_LINE_BYTES);
    this.columns = columns;
    this.members = [...members];
    this.rows = members.length;
    this.base = base;
    this.tag = layoutTag(this.columns, this.members);
  }

  /** Bytes the table occupies in the arena. */
  get tableBytes(): number { return this.rows * this.rowStride; }

  column(name: string): Column {
    const c = this.columns.get(name);
    if (!c) throw new ConfigError(`unknown SST column '${name}'; known: ${[...this.columns.keys()].join(', ')}`);
    return c;
  }

  /** Row of a member id, or -1. */
  rowOf(memberId: number): number { return this.members.indexOf(memberId); }

  rowOffset(row: number): number { return this.base + row * this.rowStride; }

  /** Arena offset of element `index` of `column` in `row`. */
  offsetOf(row: number, column: Column, index = 0): number {
    return this.base + row * this.rowStride + column.offset + index * column.elementBytes;
  }

  /**
   * The ranges the owner of `row` may write in every other member's copy: its own row, as the heartbeat
   * (quiet), the other counters, and the bytes columns.
   */
  grantsFor(row: number): Grant[] {
    const start = this.rowOffset(row);
    const grants: Grant[] = [{ offset: start, length: HEARTBEAT_BYTES, kind: GrantKind.Control, ring: 0, quiet: true }];
    if (this.controlBytes > HEARTBEAT_BYTES) {
      grants.push({
        offset: start + HEARTBEAT_BYTES, length: this.controlBytes - HEARTBEAT_BYTES, kind: GrantKind.Control, ring: 0,
      });
    }
    if (this.hasData) {
      grants.push({
        offset: start + this.controlBytes, length: this.rowStride - this.controlBytes, kind: GrantKind.Data, ring: 0,
      });
    }
    return grants;
  }

  /**
   * The writes that push `columns` of `row` (all but the heartbeat when empty): at most one data range
   * then at most one control range, each the smallest contiguous span covering the named columns of its
   * kind, with the control span widened to 8-byte alignment. Returned as [offset, length] pairs in send
   * order. The heartbeat is pushed by the predicate worker alone.
   */
  pushRanges(row: number, columns: readonly Column[]): Array<[number, number]> {
    const rowStart = this.rowOffset(row);
    if (columns.length === 0) {
      const all: Array<[number, number]> = [];
      if (this.hasData) all.push([rowStart + this.controlBytes, this.rowStride - this.controlBytes]);
      if (this.controlBytes > HEARTBEAT_BYTES) {
        all.push([rowStart + HEARTBEAT_BYTES, this.controlBytes - HEARTBEAT_BYTES]);
      }
      return all;
    }
    if (columns.some((c) => c.name === HEARTBEAT_COLUMN)) {
      throw new ConfigError(
        `the '${HEARTBEAT_COLUMN}' column is advanced and pushed by the predicate worker; push other columns`);
    }
    const span = (kind: GrantKind): [number, number] | null => {
      let lo = Infinity, hi = -Infinity;
      for (const c of columns) {
        if (c.kind !== kind) continue;
        lo = Math.min(lo, c.offset);
        hi = Math.max(hi, c.offset + c.bytes);
      }
      if (lo === Infinity) return null;
      if (kind === GrantKind.Control) { lo = Math.floor(lo / 8) * 8; hi = align(hi, 8); }
      return [rowStart + lo, hi - lo];
    };
    const out: Array<[number, number]> = [];
    const data = span(GrantKind.Data);
    const control = span(GrantKind.Control);
    if (data) out.push(data);
    if (control) out.push(control);
    return out;
  }
}

function layoutTag(columns: ReadonlyMap<string, Column>, members: readonly number[]): number {
  const c = [...columns.values()].map((x) => [x.name, x.type, x.count, x.offset]);
  return fnv1a(JSON.stringify({ c, m: members }));
}
