// Consumer side of a completion ring (memory_map: COMPLETION_RINGS_*, COMPLETION_*). The native poller is
// the only producer; exactly one thread consumes each ring (ring 0: the predicate worker, ring 1: the
// rdmc worker).
//
//   HEAD  u32 at +0    entries produced (wrapping), written by the poller with release after the entry
//   TAIL  u32 at +64   entries consumed (wrapping), written only here
//   entry i at +128 + (i mod COMPLETION_RING_ENTRIES) × COMPLETION_BYTES:
//     +0 kind u16 · +2 peer u16 · +4 imm u32 · +8 offset u64 · +16 length u64 · +24 timeNs u64
//
// Atomics.load of HEAD orders the entry reads after it; Atomics.store of TAIL hands the slots back. The
// poller stops reading sockets while a ring is full, so a slow consumer slows its peers but loses nothing.

import type { Arena } from '../arena.js';
import { ConfigError } from '../errors.js';
import * as map from '../generated/memory-map.js';

export type CompletionHandler =
  (kind: number, peer: number, imm: number, offset: number, length: number, timeNs: number) => void;

const MASK = map.COMPLETION_RING_ENTRIES - 1;
const TWO_32 = 2 ** 32;

export class CompletionRing {
  readonly ring: number;
  readonly #u32: Uint32Array;
  readonly #head: number; // u32 index of HEAD
  readonly #tail: number; // u32 index of TAIL
  readonly #entries: number; // u32 index of entry 0

  constructor(arena: Arena, ring: number) {
    if (!Number.isInteger(ring) || ring < 0 || ring >= map.COMPLETION_RINGS) {
      throw new ConfigError(`completion ring must be an integer in [0, ${map.COMPLETION_RINGS}), got ${ring}`);
    }
    this.ring = ring;
    this.#u32 = arena.u32;
    const base = map.COMPLETION_RINGS_OFFSET + ring * map.COMPLETION_RINGS_STRIDE;
    this.#head = (base + map.COMPLETION_RINGS_HEAD) >> 2;
    this.#tail = (base + map.COMPLETION_RINGS_TAIL) >> 2;
    this.#entries = (base + map.COMPLETION_RINGS_ENTRIES) >> 2;
  }

  /** Entries produced and not yet drained. */
  get pending(): number {
    return (Atomics.load(this.#u32, this.#head) - this.#u32[this.#tail]!) >>> 0;
  }

  /**
   * Calls onEntry for every entry between TAIL and HEAD, oldest first, then publishes the new TAIL.
   * Offsets, lengths and times are u64 in the ring and exact as numbers up to 2^53. Returns the count.
   * If onEntry throws, the entries before it (and the one that threw) count as consumed.
   */
  drain(onEntry: CompletionHandler): number {
    const u32 = this.#u32;
    const head = Atomics.load(u32, this.#head);
    const start = u32[this.#tail]!;
    let tail = start;
    try {
      while (tail !== head) {
        const e = this.#entries + (tail & MASK) * (map.COMPLETION_BYTES >> 2);
        tail = (tail + 1) >>> 0;
        const word0 = u32[e]!;
        onEntry(
          word0 & 0xffff,
          word0 >>> 16,
          u32[e + 1]!,
          u32[e + 2]! + u32[e + 3]! * TWO_32,
          u32[e + 4]! + u32[e + 5]! * TWO_32,
          u32[e + 6]! + u32[e + 7]! * TWO_32,
        );
      }
    } finally {
      Atomics.store(u32, this.#tail, tail);
    }
    return (tail - start) >>> 0;
  }
}
