// Push and delivery latency of this member's own messages in one shard, by sampling: one send in
// SAMPLE_EVERY (at most one a millisecond, one at a time) is timed from send() to the push of its slot to
// the shard's peers, and to its delivery here. Both ends are this member's clock, so no clock is compared
// across members. The shard calls three hooks that cost a comparison when nothing is timed:
//
//   take()              per send: true for the one send that is timed (reads the clock then, only then)
//   committed(index)    the timed send took its slot `index` (at once, or when the window let it out of the
//                       queue: `waiting` is its queue entry meanwhile)
//   pushed(next)        our slots below `next` went out to the peers (ShardSender.pushWrites)
//   delivered()         the receiver delivers our message at `index` here (ShardReceiver)
//
// Nothing is timed until someone listens (`sink`: the metrics' histograms, ts/group/metrics.ts). A sample
// whose message moves to the next view (a view change) is dropped with this view's shard.

/** Where samples go: seconds from send() to the push (`push`) or to the delivery here (`delivery`). */
export type LatencySink = (kind: 'push' | 'delivery', seconds: number) => void;

/** One send in this many is a candidate for timing. */
const SAMPLE_EVERY = 64;
/** At most one sample started per this many milliseconds (a bound on the clock reads and observations). */
const MIN_SAMPLE_GAP_MS = 1;

export class LatencySampler {
  sink: LatencySink | null = null;
  /** The slot index of the message being timed, once committed (−1: none). */
  index = -1;
  /** The timed send's entry in the send queue while it waits there (its index comes when it takes a slot). */
  waiting: object | null = null;
  #countdown = SAMPLE_EVERY;
  #sentAt = -Infinity;
  #pushed = false;

  /** A send: true when this one is timed (then `committed` follows, with its index). */
  take(): boolean {
    if (--this.#countdown > 0) return false;
    this.#countdown = SAMPLE_EVERY;
    if (this.sink === null || this.index >= 0 || this.waiting !== null) return false;
    const now = performance.now();
    if (now - this.#sentAt < MIN_SAMPLE_GAP_MS) return false;
    this.#sentAt = now;
    return true;
  }

  /** The timed send took slot `index`. */
  committed(index: number): void {
    this.index = index;
    this.waiting = null;
    this.#pushed = false;
  }

  /** Our slots below `next` were pushed to the peers. */
  pushed(next: number): void {
    if (this.#pushed || this.index < 0 || this.index >= next) return;
    this.#pushed = true;
    this.sink?.('push', (performance.now() - this.#sentAt) / 1000);
  }

  /** Our message at `index` was delivered here: the sample ends. */
  delivered(): void {
    this.index = -1;
    this.sink?.('delivery', (performance.now() - this.#sentAt) / 1000);
  }
}
