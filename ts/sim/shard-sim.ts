// One shard of ordered multicast under a seeded scheduler (DESIGN.md §4), for the ordering and the
// view-change simulations: senders commit messages into W slots, every SST value a member reads is a copy
// that arrives late and in order, and delivery, nulls and the window follow ts/multicast/ordering.ts.
// Sender rank r is member r. A broken property throws SimulationViolation, naming the seed.

import { indexOf, nullTarget, rankOf, receivePrefix, stableFrontier, windowAllows } from '../multicast/ordering.js';

/** A property of the protocol failed in a simulated run; the message names the seed that replays it. */
export class SimulationViolation extends Error {}

/** Throws SimulationViolation with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new SimulationViolation(message);
}

/** mulberry32: the simulations' seeded randomness (small, fast, reproducible). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Slot { index: number; payload: string | null }

export class ShardSim {
  readonly where: string;
  readonly total: number;
  /** Messages each sender has committed (its index column). */
  readonly committed: number[];
  readonly slots: Slot[][];
  readonly pending: string[][];
  // each member's own row
  readonly numReceived: number[][];
  readonly received: Array<Array<Array<string | null>>>;
  readonly seqNum: number[];
  readonly deliveredNum: number[];
  readonly delivered: Array<Array<[number, string]>>;
  // what member m last saw of the others' columns (pushes arrive late)
  readonly seenCommitted: number[][];
  readonly seenSeqNum: number[][];
  readonly seenDelivered: number[][];
  /** Members that stopped: they take no more steps, and nothing more of theirs arrives anywhere. */
  readonly crashed = new Set<number>();
  /** No new messages or nulls (a wedged view). */
  wedged = false;

  constructor(readonly seed: number, readonly members: number, readonly senders: number, readonly window: number,
    toSend: number[]) {
    this.where = `seed ${seed} (n=${members}, S=${senders}, W=${window}, messages ${toSend.join('/')})`;
    this.total = toSend.reduce((a, b) => a + b, 0);
    this.committed = new Array(senders).fill(0);
    const emptySlot = (): Slot => ({ index: -1, payload: null });
    this.slots = Array.from({ length: senders }, () => Array.from({ length: window }, emptySlot));
    this.pending = toSend.map((n, r) => Array.from({ length: n }, (_, i) => `s${r}m${i}`));
    this.numReceived = Array.from({ length: members }, () => new Array(senders).fill(-1));
    this.received = Array.from({ length: members },
      () => Array.from({ length: senders }, () => [] as Array<string | null>));
    this.seqNum = new Array(members).fill(-1);
    this.deliveredNum = new Array(members).fill(-1);
    this.delivered = Array.from({ length: members }, () => []);
    this.seenCommitted = Array.from({ length: members }, () => new Array(senders).fill(0));
    this.seenSeqNum = Array.from({ length: members }, () => new Array(members).fill(-1));
    this.seenDelivered = Array.from({ length: members }, () => new Array(members).fill(-1));
  }

  /** Member m takes in the slots its copies of the senders' index columns name. */
  receive(m: number): void {
    for (let r = 0; r < this.senders; r++) {
      const got = this.received[m]![r]!;
      while (got.length < this.seenCommitted[m]![r]!) {
        const i = got.length;
        const slot = this.slots[r]![i % this.window]!;
        check(slot.index === i, `${this.where}: member ${m} found sender ${r}'s slot for index ${i} overwritten by `
          + `index ${slot.index} (window broken)`);
        got.push(slot.payload);
      }
      this.numReceived[m]![r] = got.length - 1;
    }
    this.seqNum[m] = receivePrefix(this.numReceived[m]!);
  }

  /** Member m delivers up to the stability frontier of its copies of everyone's seqNum. */
  deliver(m: number): void {
    const view = this.seenSeqNum[m]!.map((v, k) => (k === m ? this.seqNum[m]! : v));
    const stable = stableFrontier(view);
    for (let seq = this.deliveredNum[m]! + 1; seq <= stable; seq++) this.deliverSeq(m, seq);
    if (stable > this.deliveredNum[m]!) this.deliveredNum[m] = stable;
  }

  /** Member m delivers `seq` (nulls are skipped), which it must have received. */
  deliverSeq(m: number, seq: number): void {
    const payload = this.received[m]![rankOf(seq, this.senders)]![indexOf(seq, this.senders)];
    check(payload !== undefined, `${this.where}: member ${m} delivers seq ${seq} it never received`);
    if (payload !== null) this.delivered[m]!.push([seq, payload]);
  }

  /** Sender r commits its next message, or a null when idle and others moved on — if its window allows. */
  commit(r: number): void {
    const m = r;
    if (this.wedged) return;
    const deliveredView = this.seenDelivered[m]!.map((v, k) => (k === m ? this.deliveredNum[m]! : v));
    const index = this.committed[r]!;
    if (!windowAllows(index, r, this.senders, this.window, deliveredView)) return;
    let payload: string | null;
    if (this.pending[r]!.length > 0) payload = this.pending[r]!.shift()!;
    else if (index < nullTarget(r, this.numReceived[m]!)) payload = null;
    else return;
    this.slots[r]![index % this.window] = { index, payload };
    this.committed[r] = index + 1;
    this.seenCommitted[m]![r] = index + 1; // a sender receives its own message at once
    this.receive(m);
  }

  /** One random step: a commit, a copy of some column reaching some member, or a delivery. */
  step(pick: (n: number) => number): void {
    const m = pick(this.members), k = pick(this.members), r = pick(this.senders);
    if (this.crashed.has(m)) return;
    switch (pick(5)) {
      case 0: if (!this.crashed.has(r)) this.commit(r); break;
      case 1: // r's row (slots, then index) reaches m
        if (!this.crashed.has(r)) {
          this.seenCommitted[m]![r] = this.committed[r]!;
          this.receive(m);
        }
        break;
      case 2: if (!this.crashed.has(k)) this.seenSeqNum[m]![k] = this.seqNum[k]!; break;
      case 3: if (!this.crashed.has(k)) this.seenDelivered[m]![k] = this.deliveredNum[k]!; break;
      case 4: this.deliver(m); break;
    }
  }
}
