// For `squall bench persist --members N` (bench/persist-group.ts): at one member, when each message it
// delivered became durable at every member of its shard. The shard's persistence frontier (the group's
// `persisted` event: every update up to a version is in every member's log) passes the messages in version
// order, which is delivery order, so a queue of delivered versions is enough: each frontier pops what it covers.
// Of this member's own messages it keeps the time from send() to that frontier — the persistence latency.

/** What the tracker reports (over IPC: plain numbers). */
export interface PersistFigures {
  /** Messages delivered here that are durable at every member. */
  persisted: number;
  /** Monotonic ms of the first and the last frontier that covered any. */
  firstMs: number;
  lastMs: number;
  /** Of this member's own messages: ms from send() to the frontier that covered it. */
  latencyMs: number[];
}

export class PersistTracker {
  /** Versions delivered here and not yet covered, from `#head` on (Number(version): vid·2^32 + seq < 2^53). */
  #versions: number[] = [];
  /** Each one's send time (monotonic ms) when this member sent it, else NaN. */
  #sentMs: number[] = [];
  #head = 0;
  readonly #figures: PersistFigures = { persisted: 0, firstMs: 0, lastMs: 0, latencyMs: [] };
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A delivery: `sentMs` is its send time when this member sent it (NaN otherwise). */
  delivered(version: bigint, sentMs: number): void {
    this.#versions.push(Number(version));
    this.#sentMs.push(sentMs);
  }

  /** The shard's frontier moved to `version`: every delivery up to it is durable everywhere. */
  frontier(version: bigint): void {
    const upTo = Number(version);
    const versions = this.#versions;
    const start = this.#head;
    let i = start;
    if (i >= versions.length || versions[i]! > upTo) return;
    const now = this.#now();
    const f = this.#figures;
    for (; i < versions.length && versions[i]! <= upTo; i++) {
      const sent = this.#sentMs[i]!;
      if (!Number.isNaN(sent)) f.latencyMs.push(now - sent);
    }
    if (f.persisted === 0) f.firstMs = now;
    f.lastMs = now;
    f.persisted += i - start;
    this.#head = i;
    if (i > 65_536 && i * 2 > versions.length) { // drop the covered front now and then
      this.#versions = versions.slice(i);
      this.#sentMs = this.#sentMs.slice(i);
      this.#head = 0;
    }
  }

  /** Deliveries durable at every member so far. */
  get persisted(): number { return this.#figures.persisted; }

  figures(): PersistFigures {
    return { ...this.#figures };
  }
}
