// The in-process OrderedChannel: one shard's members in one process, for tests and single-process use.
//
// A shared total-order log stands in for the multicast engine. A seeded scheduler runs one event per
// macrotask, picked at random among those ready:
//   - order: a sent message not yet ordered takes the next sequence number (so two members that send "at
//     the same moment" are ordered either way, depending on the seed);
//   - deliver: the next log entry reaches one member (members run at their own pace, same order);
//   - direct: one point-to-point message, in any order (point-to-point is unordered).
// The same seed and the same program give the same interleaving. Delivered bytes are a fresh copy that is
// overwritten after the handler returns, so code that keeps a reference to them fails loudly in tests.
//
// fail(m) removes m as a view change would (survivors hear of it through onMemberFailed); hold(m) makes m
// hang silently (nothing reaches it, nobody is told), as a member whose failure is not yet detected.

import { PeerFailedError } from '../errors.js';
import { versionOf } from '../multicast/ordering.js';
import type { OrderedChannel } from './channel.js';

export interface LoopbackShardOptions {
  /** Member ids in rank order. */
  members: readonly number[];
  /** Seed of the scheduler (default 1). */
  seed?: number;
  /** View id used in delivered versions (default 1). */
  vid?: number;
}

interface Endpoint {
  deliver?: (sender: number, version: bigint, bytes: Uint8Array) => void;
  direct?: (from: number, bytes: Uint8Array) => void;
  failed?: (member: number) => void;
  /** Log entries delivered here. */
  cursor: number;
  held: boolean;
}

interface LogEntry { sender: number; version: bigint; bytes: Uint8Array }
interface DirectMessage { from: number; to: number; bytes: Uint8Array }

const POISON = 0xee;

/** A small, fast, seeded PRNG (mulberry32): uniform integers in [0, n). */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

export class LoopbackShard {
  readonly seed: number;
  readonly #vid: number;
  readonly #random: (n: number) => number;
  #members: number[];
  readonly #endpoints = new Map<number, Endpoint>();
  /** Sent, not yet ordered. */
  readonly #unordered: Array<{ sender: number; bytes: Uint8Array }> = [];
  readonly #log: LogEntry[] = [];
  readonly #directs: DirectMessage[] = [];
  #scheduled = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: LoopbackShardOptions) {
    this.seed = options.seed ?? 1;
    this.#vid = options.vid ?? 1;
    this.#random = rng(this.seed);
    this.#members = [...options.members];
    for (const m of this.#members) this.#endpoints.set(m, { cursor: 0, held: false });
  }

  /** Live members, in rank order. */
  get members(): readonly number[] { return this.#members; }

  /** Senders of the ordered log so far, in order (for checks). */
  get orderedSenders(): number[] { return this.#log.map((e) => e.sender); }

  /** The channel of one member. */
  channel(memberId: number): OrderedChannel {
    const endpoint = this.#endpoints.get(memberId);
    if (endpoint === undefined) throw new RangeError(`member ${memberId} is not in this loopback shard`);
    const shard = this;
    return {
      memberId,
      get members() { return shard.#members; },
      send: async (bytes) => {
        shard.#checkLive(memberId, memberId);
        shard.#unordered.push({ sender: memberId, bytes: Uint8Array.from(bytes) });
        shard.#schedule();
      },
      sendTo: async (to, bytes) => {
        shard.#checkLive(memberId, memberId);
        shard.#checkLive(to, memberId);
        shard.#directs.push({ from: memberId, to, bytes: Uint8Array.from(bytes) });
        shard.#schedule();
      },
      onDeliver: (handler) => { endpoint.deliver = handler; },
      onDirect: (handler) => { endpoint.direct = handler; },
      onMemberFailed: (handler) => { endpoint.failed = handler; },
    };
  }

  /** Removes a member as a view change would: what it sent but was not ordered is lost, survivors are told. */
  fail(member: number): void {
    if (!this.#members.includes(member)) return;
    this.#members = this.#members.filter((m) => m !== member);
    for (let i = this.#unordered.length - 1; i >= 0; i--) {
      if (this.#unordered[i]!.sender === member) this.#unordered.splice(i, 1);
    }
    for (let i = this.#directs.length - 1; i >= 0; i--) {
      const d = this.#directs[i]!;
      if (d.from === member || d.to === member) this.#directs.splice(i, 1);
    }
    for (const m of this.#members) this.#endpoints.get(m)!.failed?.(member);
    this.#schedule();
  }

  /** Makes a member hang: nothing is delivered to it until release(); nobody is told. */
  hold(member: number): void { this.#endpoints.get(member)!.held = true; }

  release(member: number): void {
    this.#endpoints.get(member)!.held = false;
    this.#schedule();
  }

  /** Resolves once no event is ready (everything sent has been delivered, except to held members). */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#schedule();
    });
  }

  #checkLive(member: number, asking: number): void {
    if (!this.#members.includes(member)) {
      throw new PeerFailedError(
        member, 'failed', `member ${member} has left the loopback shard (asked by member ${asking})`);
    }
  }

  #ready(member: number): Endpoint | undefined {
    const e = this.#endpoints.get(member);
    return e !== undefined && !e.held && this.#members.includes(member) ? e : undefined;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#step());
  }

  #step(): void {
    this.#scheduled = false;
    const choices: Array<() => void> = [];
    if (this.#unordered.length > 0) choices.push(() => this.#order());
    for (const m of this.#members) {
      const e = this.#ready(m);
      if (e !== undefined && e.cursor < this.#log.length) choices.push(() => this.#deliver(m, e));
    }
    for (let i = 0; i < this.#directs.length; i++) {
      if (this.#ready(this.#directs[i]!.to) !== undefined) choices.push(() => this.#direct(i));
    }
    if (choices.length === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    choices[this.#random(choices.length)]!();
    this.#schedule();
  }

  #order(): void {
    const [message] = this.#unordered.splice(this.#random(this.#unordered.length), 1);
    this.#log.push({ sender: message!.sender, version: versionOf(this.#vid, this.#log.length), bytes: message!.bytes });
  }

  #deliver(member: number, endpoint: Endpoint): void {
    const entry = this.#log[endpoint.cursor++]!;
    const bytes = Uint8Array.from(entry.bytes);
    try {
      endpoint.deliver?.(entry.sender, entry.version, bytes);
    } finally {
      bytes.fill(POISON);
    }
  }

  #direct(index: number): void {
    const [message] = this.#directs.splice(index, 1);
    const bytes = message!.bytes;
    try {
      this.#endpoints.get(message!.to)!.direct?.(message!.from, bytes);
    } finally {
      bytes.fill(POISON);
    }
  }
}
