// A discrete-event model of one RDMC transfer (DESIGN.md §5): how long each schedule takes to deliver a
// message to every member when each member has one uplink and one downlink of a given rate, run over the
// real WebAssembly schedules (ts/rdmc/schedule.ts). `squall model rdmc` sweeps it over group sizes.
//
// The model, as the rdmc worker behaves (no global lock step):
//   - every rank walks its own sends in step order. It starts the send of its next step as soon as it
//     holds that block and its uplink is free, and the receiver's downlink is free for it;
//   - a receiver's downlink takes its transfers in the order of its own receive steps, one at a time, as
//     RDMC's receivers do (a sender writes a block once the receiver is ready for it). Serving whichever
//     sender is ready first instead lets a rank's early send take a downlink that an earlier step needs,
//     and on twin pairs the delay ripples until every transfer is serialised (n = 3 runs 2× slower);
//   - a block transfer holds the sender's uplink and the receiver's downlink for blockBytes / rate (the
//     last block may be short) and arrives `latencySec` after it ends;
//   - completion is when the last rank holds every block.
// So a transfer waits only for the steps before it at its two ends, never for a global step: with no
// latency, every transfer of step s starts by s · blockTime, and a run takes at most steps · blockTime.
//
// Cost: O(k·n·log n) — one transfer per (receiver, block), a binary heap of pending transfer ends. About
// a second for 4096 members × 256 blocks.

import { ConfigError } from '../ts/errors.js';
import {
  algorithmName, blockCount, decodeBlock, decodePeer, loadSchedules, parseAlgorithm, validateGroup,
  type AlgorithmName, type Schedules,
} from '../ts/rdmc/schedule.js';

export interface TransferModelOptions {
  /** Algorithm number (Algorithm.*) or name ('binomial', 'tree', …). */
  algorithm: number | string;
  /** Group size, sender included (2..4096). */
  members: number;
  /** Message size. */
  bytes: number;
  /** Block size; the message is cut into ⌈bytes / blockBytes⌉ blocks. */
  blockBytes: number;
  /** Rate of every member's uplink and of every downlink. */
  linkBytesPerSec: number;
  /** Delay from the end of a block's transmission to its arrival. */
  latencySec: number;
}

export interface TransferModelResult {
  /** When the last rank holds every block. */
  seconds: number;
  /** The schedule's step count. */
  steps: number;
}

/** Largest k·(n−1) (block transfers) one model run takes: about a minute and 16 MiB of holdings. */
export const MAX_MODEL_TRANSFERS = 2 ** 27;

let schedules: Schedules | undefined;

/** Completion time of one message under the model above. */
export function modelTransfer(options: TransferModelOptions): TransferModelResult {
  const algorithm = typeof options.algorithm === 'number' ? options.algorithm : parseAlgorithm(options.algorithm);
  algorithmName(algorithm); // a bad number is a ConfigError
  const { members: n, bytes, blockBytes, linkBytesPerSec, latencySec } = options;
  if (!(bytes > 0) || !Number.isFinite(bytes)) throw new ConfigError(`the message size must be positive, got ${bytes}`);
  if (!(blockBytes > 0) || !Number.isFinite(blockBytes)) {
    throw new ConfigError(`the block size must be positive, got ${blockBytes}`);
  }
  if (!(linkBytesPerSec > 0) || !Number.isFinite(linkBytesPerSec)) {
    throw new ConfigError(`the link rate must be positive, got ${linkBytesPerSec}`);
  }
  if (!(latencySec >= 0) || !Number.isFinite(latencySec)) {
    throw new ConfigError(`the latency must be 0 or more, got ${latencySec}`);
  }
  const k = blockCount(bytes, blockBytes);
  validateGroup(n, k);
  if (k * (n - 1) > MAX_MODEL_TRANSFERS) {
    throw new ConfigError(
      `modelling ${n} members × ${k} blocks is ${k * (n - 1)} block transfers, more than ${MAX_MODEL_TRANSFERS}: use ` +
        `larger blocks or fewer members`);
  }
  schedules ??= loadSchedules();
  return new TransferSimulation(schedules, algorithm, n, k, bytes, blockBytes, linkBytesPerSec, latencySec).run();
}

/** Pending events in time order (ties in insertion order), in typed arrays: time, then a payload. */
class EventHeap {
  private time = new Float64Array(64);
  private order = new Float64Array(64);
  private payload = new Int32Array(64);
  private block = new Int32Array(64);
  private inserted = 0;
  size = 0;

  push(time: number, payload: number, block: number): void {
    if (this.size === this.time.length) this.grow();
    let i = this.size++;
    const order = this.inserted++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(time, order, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.time[i] = time; this.order[i] = order; this.payload[i] = payload; this.block[i] = block;
  }

  /** Removes the earliest event; read it with topTime/topPayload/topBlock before calling. */
  pop(): void {
    const last = --this.size;
    if (last === 0) return;
    const time = this.time[last]!, order = this.order[last]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (child + 1 < last && this.before(this.time[child + 1]!, this.order[child + 1]!, child)) child++;
      if (this.before(time, order, child)) break;
      this.move(child, i);
      i = child;
    }
    this.move(last, i);
  }

  get topTime(): number { return this.time[0]!; }
  get topPayload(): number { return this.payload[0]!; }
  get topBlock(): number { return this.block[0]!; }

  private before(time: number, order: number, slot: number): boolean {
    const t = this.time[slot]!;
    return time < t || (time === t && order < this.order[slot]!);
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!; this.order[to] = this.order[from]!;
    this.payload[to] = this.payload[from]!; this.block[to] = this.block[from]!;
  }

  private grow(): void {
    const size = this.time.length * 2;
    const time = new Float64Array(size); time.set(this.time); this.time = time;
    const order = new Float64Array(size); order.set(this.order); this.order = order;
    const payload = new Int32Array(size); payload.set(this.payload); this.payload = payload;
    const block = new Int32Array(size); block.set(this.block); this.block = block;
  }
}

/** Event payloads: a transfer end names its sender; an arrival names its receiver (block apart). */
const END = 0;
const ARRIVE = 1;

class TransferSimulation {
  private readonly steps: number;
  /** Per rank: the step, block and receiver of its next send (step −1 when it has none left). */
  private readonly sendStep: Int32Array;
  private readonly sendBlock: Int32Array;
  private readonly sendTo: Int32Array;
  private readonly uplinkBusy: Uint8Array;
  private readonly downlinkBusy: Uint8Array;
  /** Per rank: the step of its next receive (−1 when none is left); its downlink serves only that one. */
  private readonly recvStep: Int32Array;
  /** Bit r·k + b: rank r holds block b. */
  private readonly held: Uint32Array;
  private readonly heldCount: Int32Array;
  private readonly events = new EventHeap();
  private now = 0;
  private lastArrival = 0;
  private arrivals = 0;

  constructor(
    private readonly s: Schedules, private readonly algorithm: number,
    private readonly n: number, private readonly k: number,
    private readonly bytes: number, private readonly blockBytes: number,
    private readonly rate: number, private readonly latency: number,
  ) {
    this.steps = s.steps(algorithm, n, k);
    this.sendStep = new Int32Array(n);
    this.sendBlock = new Int32Array(n);
    this.sendTo = new Int32Array(n);
    this.uplinkBusy = new Uint8Array(n);
    this.downlinkBusy = new Uint8Array(n);
    this.recvStep = new Int32Array(n);
    this.held = new Uint32Array(Math.ceil((n * k) / 32));
    this.heldCount = new Int32Array(n);
    for (let b = 0; b < k; b++) this.hold(0, b);
  }

  run(): TransferModelResult {
    for (let r = 0; r < this.n; r++) {
      this.loadSend(r, this.s.nextSend(this.algorithm, this.n, r, this.k, 0));
      this.recvStep[r] = this.s.nextRecv(this.algorithm, this.n, r, this.k, 0);
    }
    for (let r = 0; r < this.n; r++) this.tryStart(r);
    const { events } = this;
    while (events.size > 0) {
      this.now = events.topTime;
      const payload = events.topPayload, block = events.topBlock;
      events.pop();
      if ((payload & 1) === END) this.onTransferEnd(payload >> 1);
      else this.onArrival(payload >> 1, block);
    }
    const expected = this.k * (this.n - 1);
    if (this.arrivals !== expected) {
      throw new Error(
        `squall internal error: the model of ${algorithmName(this.algorithm)} stalled ` +
          `after ${this.arrivals} of ${expected} block arrivals`);
    }
    return { seconds: this.lastArrival, steps: this.steps };
  }

  private loadSend(r: number, step: number): void {
    this.sendStep[r] = step;
    if (step < 0) return;
    const packed = this.s.send(this.algorithm, this.n, r, this.k, step);
    this.sendBlock[r] = decodeBlock(packed);
    this.sendTo[r] = decodePeer(packed);
  }

  private holds(r: number, b: number): boolean {
    const bit = r * this.k + b;
    return (this.held[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  private hold(r: number, b: number): void {
    const bit = r * this.k + b;
    this.held[bit >>> 5]! |= 1 << (bit & 31);
    this.heldCount[r]!++;
  }

  /**
   * Starts r's next send if it can. Otherwise it is retried when what it waits for comes: the block
   * (onArrival), its uplink (the end of its previous send) or the receiver's downlink (the end of the
   * receiver's previous receive).
   */
  private tryStart(r: number): void {
    if (this.sendStep[r]! < 0 || this.uplinkBusy[r]) return;
    const block = this.sendBlock[r]!;
    if (!this.holds(r, block)) return;
    const to = this.sendTo[r]!;
    if (this.downlinkBusy[to] || this.recvStep[to] !== this.sendStep[r]) return;
    this.uplinkBusy[r] = 1;
    this.downlinkBusy[to] = 1;
    const blockBytes = block === this.k - 1 ? this.bytes - (this.k - 1) * this.blockBytes : this.blockBytes;
    this.events.push(this.now + blockBytes / this.rate, (r << 1) | END, block);
  }

  private onTransferEnd(r: number): void {
    const to = this.sendTo[r]!, block = this.sendBlock[r]!;
    this.uplinkBusy[r] = 0;
    this.downlinkBusy[to] = 0;
    const step = this.sendStep[r]!;
    if (this.latency === 0) this.onArrival(to, block);
    else this.events.push(this.now + this.latency, (to << 1) | ARRIVE, block);
    // the receiver's downlink moves on to its next receive step, whose sender may be waiting for it
    const next = this.s.nextRecv(this.algorithm, this.n, to, this.k, step + 1);
    this.recvStep[to] = next;
    if (next >= 0) this.tryStart(decodePeer(this.s.recv(this.algorithm, this.n, to, this.k, next)));
    this.loadSend(r, this.s.nextSend(this.algorithm, this.n, r, this.k, step + 1));
    this.tryStart(r);
  }

  private onArrival(r: number, block: number): void {
    if (this.holds(r, block)) throw new Error(`squall internal error: rank ${r} received block ${block} twice`);
    this.hold(r, block);
    this.arrivals++;
    this.lastArrival = this.now;
    if (this.sendStep[r]! >= 0 && this.sendBlock[r] === block) this.tryStart(r);
  }
}

export interface ModelSweepOptions {
  /** Algorithm numbers or names. */
  algorithms: readonly (number | string)[];
  /** Group sizes to model. */
  membersList: readonly number[];
  bytes: number;
  blockBytes: number;
  /** Link rate, bytes per second. */
  rate: number;
  latencyUs: number;
  onProgress?: (message: string) => void;
}

export interface ModelRow {
  algorithm: AlgorithmName;
  members: number;
  blocks: number;
  steps: number;
  /** Until every receiver holds the whole message. */
  seconds: number;
  /** Message bytes delivered to each receiver per second, in 10^9 bytes. */
  gbytesPerSec: number;
}

/** modelTransfer over every (algorithm, members) pair, yielding to the event loop between runs. */
export async function runModel(options: ModelSweepOptions): Promise<ModelRow[]> {
  const progress = options.onProgress ?? (() => {});
  const algorithms = options.algorithms.map((a) => (typeof a === 'number' ? a : parseAlgorithm(a)));
  const rows: ModelRow[] = [];
  const blocks = blockCount(options.bytes, options.blockBytes);
  let lastLineAt = 0;
  const line = (message: string) => { progress(message); lastLineAt = Date.now(); };
  for (const [i, members] of options.membersList.entries()) {
    line(`${members} members, ${blocks} blocks (${i + 1} of ${options.membersList.length})`);
    for (const [k, algorithm] of algorithms.entries()) {
      const name = algorithmName(algorithm);
      // A model runs on this thread, no timer fires during it: when the last took over a second, say which is next.
      if (k > 0 && Date.now() - lastLineAt > 1000) line(`${members} members, ${blocks} blocks: ${name}`);
      await new Promise((resolve) => setImmediate(resolve));
      const { seconds, steps } = modelTransfer({
        algorithm, members, bytes: options.bytes, blockBytes: options.blockBytes,
        linkBytesPerSec: options.rate, latencySec: options.latencyUs * 1e-6,
      });
      rows.push({ algorithm: name, members, blocks, steps, seconds, gbytesPerSec: options.bytes / seconds / 1e9 });
    }
  }
  return rows;
}
