// SST predicates (DESIGN.md §3): a reduction over the table, a test of its value, and a trigger.
//
// The hot ones are evaluated by the predicate worker with the WebAssembly kernels; `compilePredicate` turns
// a user's description into plain numbers on the main thread, and `PredicateEngine` evaluates them in the
// worker (or inside the simulator) without making objects per evaluation.
//
// Kinds:
//   one-time    fires the first time the test holds, then is removed
//   recurrent   fires at every evaluation while the test holds (evaluations follow table changes and
//               heartbeat ticks)
//   transition  fires each time the test goes from false to true

import { ConfigError } from '../errors.js';
import type { Kernels } from '../kernels/kernels.js';
import { type SstLayout } from './layout.js';

export type Reduction =
  /** Minimum of an i64 column (one element of an array column) over live rows. */
  | 'min'
  /** Maximum of an i64 column over live rows. */
  | 'max'
  /** Number of live rows whose i64 column is ≥ `atLeast`. */
  | 'countAtLeast'
  /** OR of a u8 column over live rows (1 or 0). */
  | 'or'
  /** DESIGN.md §4: seq_num from one row's i64 array column of per-sender received counts. */
  | 'receivePrefix';

export type Test = '>=' | '>' | '<=' | '<' | '==' | '!=' | 'changed';
export type PredicateKind = 'one-time' | 'recurrent' | 'transition';

export interface PredicateSpec {
  reduce: Reduction;
  column: string;
  /** Element of an array column (default 0). */
  index?: number;
  /** countAtLeast: the threshold each row is compared with. */
  atLeast?: number;
  /** receivePrefix: the member whose row is read (default: this member). */
  member?: number;
  /** How the reduction's value is tested; 'changed' fires whenever it differs from the last value fired. */
  test: Test;
  /** The value the test compares with (not needed for 'changed'). */
  value?: number;
  kind: PredicateKind;
}

const REDUCTIONS: readonly Reduction[] = ['min', 'max', 'countAtLeast', 'or', 'receivePrefix'];
const TESTS: readonly Test[] = ['>=', '>', '<=', '<', '==', '!=', 'changed'];
const KINDS: readonly PredicateKind[] = ['one-time', 'recurrent', 'transition'];

/** A predicate as numbers, ready to cross to the worker with postMessage. */
export interface CompiledPredicate {
  id: number;
  reduce: number;
  test: number;
  kind: number;
  /** Column offset inside a row (min, max, countAtLeast, or) or arena address of the array (receivePrefix). */
  at: number;
  /** countAtLeast threshold, or receivePrefix sender count. */
  arg: number;
  value: number;
}

export function compilePredicate(
  id: number, spec: PredicateSpec, layout: SstLayout, selfRow: number
): CompiledPredicate {
  const reduce = REDUCTIONS.indexOf(spec.reduce);
  const test = TESTS.indexOf(spec.test);
  const kind = KINDS.indexOf(spec.kind);
  if (reduce < 0) {
    throw new ConfigError(`predicate reduce '${spec.reduce}' is unknown; use one of ${REDUCTIONS.join(', ')}`);
  }
  if (test < 0) throw new ConfigError(`predicate test '${spec.test}' is unknown; use one of ${TESTS.join(', ')}`);
  if (kind < 0) throw new ConfigError(`predicate kind '${spec.kind}' is unknown; use one of ${KINDS.join(', ')}`);
  if (spec.test !== 'changed' && typeof spec.value !== 'number') {
    throw new ConfigError(`predicate test '${spec.test}' needs a numeric value`);
  }
  const column = layout.column(spec.column);
  const index = spec.index ?? 0;
  const wanted = spec.reduce === 'or' ? 'u8' : 'i64';
  if (column.type !== wanted) {
    throw new ConfigError(`predicate '${spec.reduce}' needs an ${wanted} column; '${spec.column}' is ${column.type}`);
  }
  let at: number, arg = 0;
  if (spec.reduce === 'receivePrefix') {
    const row = spec.member === undefined ? selfRow : layout.rowOf(spec.member);
    if (row < 0) throw new ConfigError(`predicate names member ${spec.member}, which is not in the table`);
    at = layout.offsetOf(row, column, 0);
    arg = column.count;
  } else {
    if (!Number.isInteger(index) || index < 0 || index >= column.count) {
      throw new ConfigError(`index ${index} is outside column '${spec.column}' (count ${column.count})`);
    }
    at = column.offset + index * column.elementBytes;
    if (spec.reduce === 'countAtLeast') {
      if (typeof spec.atLeast !== 'number') throw new ConfigError(`predicate 'countAtLeast' needs atLeast`);
      arg = spec.atLeast;
    }
  }
  return { id, reduce, test, kind, at, arg, value: spec.value ?? 0 };
}

/** Where the engine finds the table and the live-row flags. */
export interface TableView {
  base: number;
  rowStride: number;
  rows: number;
  liveBase: number;
}

const ONE_TIME = 0, TRANSITION = 2;
const REDUCE_MIN = 0, REDUCE_MAX = 1, REDUCE_COUNT = 2, REDUCE_OR = 3, REDUCE_PREFIX = 4;
const TEST_CHANGED = 6;

/**
 * Evaluates compiled predicates. Holds them in parallel arrays; `evaluate` reports fired ones through
 * `emit(id, value)`, which returns false when the event could not be queued (the ring is full): a one-time
 * or transition predicate whose event was refused stays armed and fires again at the next evaluation.
 */
export class PredicateEngine {
  private list: CompiledPredicate[] = [];
  private lastHeld: boolean[] = [];
  private lastFired: number[] = [];

  get size(): number { return this.list.length; }

  add(p: CompiledPredicate): void {
    this.list.push(p);
    this.lastHeld.push(false);
    this.lastFired.push(NaN);
  }

  remove(id: number): void {
    const i = this.list.findIndex((p) => p.id === id);
    if (i < 0) return;
    this.list.splice(i, 1);
    this.lastHeld.splice(i, 1);
    this.lastFired.splice(i, 1);
  }

  setValue(id: number, value: number): void {
    const p = this.list.find((q) => q.id === id);
    if (p) p.value = value;
  }

  evaluate(k: Kernels, t: TableView, emit: (id: number, value: number) => boolean): void {
    for (let i = 0; i < this.list.length; i++) {
      const p = this.list[i]!;
      let v: number;
      switch (p.reduce) {
        case REDUCE_MIN: v = k.minI64(t.base, t.rowStride, t.rows, p.at, t.liveBase); break;
        case REDUCE_MAX: v = k.maxI64(t.base, t.rowStride, t.rows, p.at, t.liveBase); break;
        case REDUCE_COUNT: v = k.countAtLeastI64(t.base, t.rowStride, t.rows, p.at, t.liveBase, p.arg); break;
        case REDUCE_OR: v = k.orU8(t.base, t.rowStride, t.rows, p.at, t.liveBase); break;
        case REDUCE_PREFIX: v = k.receivePrefix(p.at, p.arg); break;
        default: continue;
      }
      const holds = passes(p.test, v, p.value, this.lastFired[i]!);
      const was = this.lastHeld[i]!;
      if (!holds) { this.lastHeld[i] = false; continue; }
      if (p.kind === TRANSITION && was) continue;
      if (!emit(p.id, v)) continue; // refused: stays armed, tried again next time
      this.lastHeld[i] = true;
      this.lastFired[i] = v;
      if (p.kind === ONE_TIME) { this.remove(p.id); i--; }
    }
  }
}

function passes(test: number, v: number, value: number, lastFired: number): boolean {
  switch (test) {
    case 0: return v >= value;
    case 1: return v > value;
    case 2: return v <= value;
    case 3: return v < value;
    case 4: return v === value;
    case 5: return v !== value;
    case TEST_CHANGED: return v !== lastFired && !(Number.isNaN(v) && Number.isNaN(lastFired));
    default: return false;
  }
}
