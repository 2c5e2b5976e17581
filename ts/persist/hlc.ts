// A hybrid logical clock (Kulkarni et al.): a 64-bit stamp, physical milliseconds << 16 | a logical counter.
// Stamps from one clock strictly increase; update(remote) moves the clock past a stamp it received, so a message's
// delivery is stamped after its sending even when the sender's wall clock runs ahead. The counter carries into the
// millisecond part when 65,536 stamps fall in one millisecond: the order stays strict, the stamp runs a little
// ahead of the wall clock until the wall clock catches up.

export const HLC_LOGICAL_BITS = 16n;

export class HybridLogicalClock {
  #last = 0n;
  readonly #nowMs: () => number;

  /** `nowMs` is the wall clock (Date.now by default; a test passes its own). */
  constructor(nowMs: () => number = Date.now) { this.#nowMs = nowMs; }

  /** A new stamp, greater than every stamp this clock gave or received. */
  now(): bigint {
    const physical = BigInt(Math.floor(this.#nowMs())) << HLC_LOGICAL_BITS;
    this.#last = physical > this.#last ? physical : this.#last + 1n;
    return this.#last;
  }

  /** Takes in a stamp received from another member; returns the stamp of the receipt (greater than both). */
  update(remote: bigint): bigint {
    if (typeof remote !== 'bigint' || remote < 0n || remote >= 1n << 64n) {
      throw new RangeError(`a hybrid logical clock stamp is a u64, not ${remote}`);
    }
    const physical = BigInt(Math.floor(this.#nowMs())) << HLC_LOGICAL_BITS;
    const next = (remote > this.#last ? remote : this.#last) + 1n;
    this.#last = physical > next ? physical : next;
    return this.#last;
  }

  /** The last stamp given or received, without making a new one. */
  get last(): bigint { return this.#last; }
}

/** The wall-clock milliseconds of a stamp. */
export function hlcMs(stamp: bigint): number { return Number(stamp >> HLC_LOGICAL_BITS); }
/** The largest stamp within a wall-clock millisecond: versionAt(hlcOf(ms)) is the version current at that time. */
export function hlcOf(ms: number): bigint { return (BigInt(Math.floor(ms)) + 1n << HLC_LOGICAL_BITS) - 1n; }
