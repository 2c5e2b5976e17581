// The worker engine of the ordered multicast (DESIGN.md §4, issue 15): the control step of this member's
// ordered shards, run by the predicate worker (workers/predicate-worker.ts) each time the poller applied
// writes or the main thread rang — no main-thread turn between a message landing and its acknowledgement
// leaving. Per shard and wake-up, with the same ShardControl (the WebAssembly shard kernels) the main
// thread and the simulator run — once the main thread opened the shard at its first step (the view passed
// its start barrier: before it, a push to a peer not yet connected would be lost):
//
//   1. receipt   numReceived[r] = index_r − 1 into our row (ours from NEXT_INDEX: what we committed)
//   2. nulls     an idle sender (the main thread is not sending) fills the round robin up to where the
//                others are, holding the shard's LOCK, and pushes the slots and `index` on the data lane
//   3. prefix    seqNum into our row
//   4. stable    the least seqNum of the shard into STABLE; the main thread is woken (the fabric's arrival
//                function) to deliver up to it, and stores deliveredNum in our row. The poller woke the
//                main thread too when the others' seqNum landed: it reads the same minimum itself then,
//                and delivers without waiting for this round (ShardChannel's step beside the worker)
//   5. persisted the least persistedNum of the shard (exact, in i64) into PERSISTED; the main thread is woken
//                when it moved and reports it to the persistent subgroup
//   6. push      our acknowledgements (numReceived … persistedNum) on the control lane, when they moved
//
// A view change: the view-change protocol, stepped in this worker too with the worker engine
// (workers/view-change-host.ts), wedges the shards at once — or the main thread sets WEDGE and the next round
// does — pushing what moved, answering, and never touching the shard again (ts/multicast/shard-words.ts says
// who writes which word).

import type { Arena } from '../ts/arena.js';
import { assertAtMost, assertMonotonic } from '../ts/assert.js';
import { Lane } from '../ts/fabric/fabric.js';
import type { AttachedFabric } from '../ts/fabric/native.js';
import { ShardControl, controlKernels } from '../ts/multicast/control.js';
import { ShardSender } from '../ts/multicast/sender.js';
import type { WorkerShardSpec } from '../ts/multicast/shard.js';
import { ShardTable } from '../ts/multicast/shard-table.js';
import { LockHolder, ShardWords, WedgeState } from '../ts/multicast/shard-words.js';

class WorkerShard {
  readonly #t: ShardTable;
  readonly #c: ShardControl;
  readonly #w: ShardWords;
  readonly #sender: ShardSender;
  readonly #fabric: AttachedFabric;
  readonly #peers: readonly number[];
  readonly #rank: number;
  /** numReceived (S), seqNum and deliveredNum as last pushed: a push goes out only when one moved. */
  readonly #pushed: Float64Array;
  #seqNum = -1;
  #stopped = false;

  constructor(arena: Arena, fabric: AttachedFabric, spec: WorkerShardSpec) {
    this.#t = new ShardTable(arena, spec.geometry);
    this.#c = new ShardControl(this.#t, 'ordered', spec.rank, spec.rowsAt, controlKernels(arena));
    this.#w = new ShardWords(arena, spec.wordsSlot);
    this.#fabric = fabric;
    this.#peers = spec.peers;
    this.#rank = spec.rank;
    this.#pushed = new Float64Array(this.#t.S + 2).fill(-2);
    this.#sender = new ShardSender({
      table: this.#t, mode: 'ordered', rank: spec.rank, rdmc: null, control: this.#c,
      ownWindowCounter: () => this.#t.readI64(this.#t.deliveredAt),
      keepLargeBody: () => {}, schedule: () => {}, closed: () => this.#stopped,
    });
  }

  /** This worker is going away: the shard is the main thread's (wedge() finds it stopped). */
  fail(): void {
    this.#stopped = true;
    this.#w.stopped();
  }

  /**
   * The view-change protocol in this worker wedged (workers/view-change-host.ts): the same as the main thread
   * asking — our last counters are pushed, and the shard is the main thread's from now on.
   */
  wedge(): void {
    this.#w.askWedge();
    this.round();
  }

  /**
   * One round of the control step; true when the stable frontier moved (the main thread has deliveries) or
   * the persistence frontier did.
   */
  round(): boolean {
    if (this.#stopped) return false;
    const words = this.#w;
    if (words.wedge !== WedgeState.Running) {
      this.#pushAcks();
      this.#stopped = true;
      words.stopped();
      return false;
    }
    if (!words.isOpen) return false; // before the start barrier: a push now could be lost (shard-words.ts, OPEN)
    const c = this.#c;
    const sending = words.takeSending();
    c.receipt(words.nextIndex);
    if (this.#rank >= 0) this.#pushOwn(!sending);
    const seqNum = c.prefix();
    if (seqNum !== this.#seqNum) {
      assertMonotonic(this.#seqNum, seqNum, 'seqNum (the receive prefix, the worker engine)');
      this.#seqNum = seqNum;
      this.#t.writeI64(this.#t.seqNumAt, seqNum);
    }
    const stable = c.stable(seqNum);
    const moved = stable > words.stable;
    if (moved) words.stable = stable;
    const persisted = c.persistedFrontier(words.persistedAt);
    this.#pushAcks();
    return moved || persisted;
  }

  /**
   * Holding the slots: with `nulls` (the main thread did not send since the last round) nulls up to where
   * the others are, as far as the window allows; and the push of whatever is committed and not pushed — a
   * message the main thread committed just before its event loop stalled goes out all the same. When the
   * main thread holds the slots, RETRY asks it to ring us once it lets go.
   */
  #pushOwn(nulls: boolean): void {
    const c = this.#c, words = this.#w, sender = this.#sender;
    const target = nulls ? c.nullTarget() : 0;
    if (words.nextIndex >= target && words.pushedIndex >= words.nextIndex) return;
    if (!words.take(LockHolder.Worker, sender)) {
      words.markRetry();
      if (!words.take(LockHolder.Worker, sender)) return; // released before RETRY was seen: take it now
    }
    try {
      if (nulls) sender.fillNulls(target);
      sender.pushWrites(this.#fabric, this.#peers);
      words.workerNulls = sender.nullsSent;
    } finally {
      words.release(sender);
    }
    c.receivedOwn(sender.nextIndex);
  }

  /** Rows of the peers this shard found misbehaving since the last call (ShardControl, control.ts). */
  takeMisbehaved(): number[] { return this.#c.takeMisbehaved(); }

  /** Our acknowledgements to the shard's other members on the control lane, when one moved since the last. */
  #pushAcks(): void {
    const t = this.#t, pushed = this.#pushed, S = t.S;
    let moved = false;
    for (let r = 0; r < S; r++) {
      const v = this.#c.numReceived(r);
      if (v !== pushed[r]) { moved = true; pushed[r] = v; }
    }
    const delivered = t.readI64(t.deliveredAt);
    if (this.#seqNum !== pushed[S] || delivered !== pushed[S + 1]) moved = true;
    if (!moved) return;
    assertAtMost(delivered, this.#seqNum, 'deliveredNum ≤ seqNum (where they leave, the worker engine)');
    pushed[S] = this.#seqNum;
    pushed[S + 1] = delivered;
    const [ackAt, ackBytes] = t.ackSpan;
    for (const id of this.#peers) this.#fabric.write(id, ackAt, ackBytes, Lane.Control);
  }
}

/** The ordered shards this member's predicate worker steps; replaced as a whole by each 'shards' command. */
export class ShardEngine {
  #shards: WorkerShard[] = [];
  readonly #arena: Arena;
  readonly #fabric: AttachedFabric;
  readonly #suspect: (row: number) => void;

  /**
   * `suspect` is told the table row of a peer that wrote a shard value breaking the protocol's rules
   * (control.ts), after the round that found it: the predicate worker suspects it (BAD_SHARD).
   */
  constructor(arena: Arena, fabric: AttachedFabric, suspect: (row: number) => void) {
    this.#arena = arena;
    this.#fabric = fabric;
    this.#suspect = suspect;
  }

  get active(): boolean { return this.#shards.length > 0; }

  set(specs: readonly WorkerShardSpec[]): void {
    this.#shards = specs.map((spec) => new WorkerShard(this.#arena, this.#fabric, spec));
  }

  /** Every shard stops, its last counters pushed (a view change wedged this member: WorkerShard.wedge). */
  wedge(): void {
    for (const shard of this.#shards) shard.wedge();
  }

  /**
   * Steps every shard; wakes the main thread once when any stable frontier moved; then reports the peers
   * found misbehaving (after the loop: a suspicion may wedge the shards). A peer's bad value never throws
   * (control.ts); a step that throws (a broken invariant of ours) marks every shard stopped before the
   * error ends this worker, so a view change's wedge() does not wait for an answer that cannot come.
   */
  round(): void {
    let moved = false;
    const shards = this.#shards;
    try {
      for (const shard of shards) if (shard.round()) moved = true;
    } catch (error) {
      for (const shard of shards) shard.fail();
      throw error;
    }
    if (moved) this.#fabric.arrive(0);
    for (const shard of shards) for (const row of shard.takeMisbehaved()) this.#suspect(row);
  }
}
