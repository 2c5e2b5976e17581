// The words one shard's two threads share (SHARD_WORDS in the memory map, one cache line per shard).
//
// With the main-thread engine one thread steps the shard and these words are only its own counters. With
// the worker engine (ts/multicast/shard.ts, workers/shard-engine.ts) the predicate worker runs the shard's
// control step — receipt, the receive prefix, stability, nulls, the acknowledgements' push — and the main
// thread sends and delivers. Who writes what:
//
//   LOCK          either thread, by compare-and-swap: whoever holds it commits slots and pushes them (the
//                 main thread its messages, the worker nulls); `index` and the slots it names go out in
//                 commit order because only the holder pushes them
//   WEDGE         the main thread asks (1) — or the worker, when the view-change protocol it steps wedges —
//                 and the worker answers (2) once it stopped touching the shard
//   NEXT_INDEX    the holder of LOCK;  PUSHED_INDEX  the holder of LOCK
//   STABLE        the worker (the least seqNum of the shard); the main thread delivers up to it
//   SENDING       set by the main thread (it sent, or sends wait); taken by the worker each round
//   RETRY         set by the worker (it found LOCK held); taken by the main thread when it releases LOCK
//   PERSISTED     the persistence frontier: the worker while the view runs, else (the main engine, or once
//                 the worker stopped) the main thread
//   OPEN          set by the main thread at its first step of the shard (the view passed its start barrier):
//                 the worker steps and pushes nothing before — a push to a peer not yet connected is lost, and
//                 a later `index` would name the slots it carried

import type { Arena } from '../arena.js';
import { ConfigError } from '../errors.js';
import * as map from '../generated/memory-map.js';

/** The longest a send waits for LOCK (ShardWords.takeToSend). */
const SEND_SPIN_MS = 2;

/** What take() and release() move the indexes in and out of (ShardSender, on either thread). */
export interface IndexHolder {
  readonly nextIndex: number;
  readonly pushedIndex: number;
  adopt(nextIndex: number, pushedIndex: number): void;
}

/** Byte offset of the PERSISTED word of shard `slot`: the persistence frontier, on either engine. */
export function persistedWordAt(slot: number): number {
  return map.SHARD_WORDS_OFFSET + slot * map.SHARD_WORDS_STRIDE + map.SHARD_WORDS_PERSISTED;
}

export const enum LockHolder { Free = 0, Main = 1, Worker = 2 }
export const enum WedgeState { Running = 0, Asked = 1, Stopped = 2 }

export class ShardWords {
  readonly #i32: Int32Array;
  readonly #i64: BigInt64Array;
  readonly #lock: number;
  readonly #wedge: number;
  readonly #sending: number;
  readonly #retry: number;
  readonly #next: number;
  readonly #pushed: number;
  readonly #stable: number;
  readonly #nulls: number;
  readonly #open: number;
  /** Byte offset of PERSISTED (the kernel writes it: ShardControl.persistedFrontier). */
  readonly persistedAt: number;

  constructor(arena: Arena, slot: number) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= map.MAX_SHARDS) {
      throw new ConfigError(
        `a member serves at most ${map.MAX_SHARDS} shards in one view; use fewer subgroups or shards`);
    }
    const at = map.SHARD_WORDS_OFFSET + slot * map.SHARD_WORDS_STRIDE;
    this.#i32 = arena.i32;
    this.#i64 = arena.i64;
    this.#lock = (at + map.SHARD_WORDS_LOCK) >> 2;
    this.#wedge = (at + map.SHARD_WORDS_WEDGE) >> 2;
    this.#sending = (at + map.SHARD_WORDS_SENDING) >> 2;
    this.#retry = (at + map.SHARD_WORDS_RETRY) >> 2;
    this.#next = (at + map.SHARD_WORDS_NEXT_INDEX) >> 3;
    this.#pushed = (at + map.SHARD_WORDS_PUSHED_INDEX) >> 3;
    this.#stable = (at + map.SHARD_WORDS_STABLE) >> 3;
    this.#nulls = (at + map.SHARD_WORDS_WORKER_NULLS) >> 3;
    this.#open = (at + map.SHARD_WORDS_OPEN) >> 2;
    this.persistedAt = persistedWordAt(slot);
  }

  /** Sets every word to its start: free, running, not open, nothing committed or pushed, nothing stable. */
  reset(): void {
    Atomics.store(this.#i32, this.#open, 0);
    Atomics.store(this.#i32, this.#lock, LockHolder.Free);
    Atomics.store(this.#i32, this.#wedge, WedgeState.Running);
    Atomics.store(this.#i32, this.#sending, 0);
    Atomics.store(this.#i32, this.#retry, 0);
    Atomics.store(this.#i64, this.#next, 0n);
    Atomics.store(this.#i64, this.#pushed, 0n);
    Atomics.store(this.#i64, this.#stable, -1n);
    Atomics.store(this.#i64, this.#nulls, 0n);
    Atomics.store(this.#i64, this.persistedAt >> 3, -1n);
  }

  tryLock(holder: LockHolder): boolean {
    return Atomics.compareExchange(this.#i32, this.#lock, LockHolder.Free, holder) === LockHolder.Free;
  }

  unlock(): void { Atomics.store(this.#i32, this.#lock, LockHolder.Free); }

  /** Takes LOCK for `holder` and hands `sender` the indexes the other thread left; false when it is held. */
  take(holder: LockHolder, sender: IndexHolder): boolean {
    if (!this.tryLock(holder)) return false;
    sender.adopt(this.nextIndex, this.pushedIndex);
    return true;
  }

  /**
   * take() for the main thread's send: the worker holds LOCK for microseconds at a time (writing nulls), so a
   * send waits up to SEND_SPIN_MS — a hold, and a preemption's slice on a busy machine — rather than leave
   * its message for the main thread's next step, which a long task started right after the send holds off
   * (the worker cannot push a message that only the main thread holds).
   */
  takeToSend(sender: IndexHolder): boolean {
    const until = performance.now() + SEND_SPIN_MS;
    while (!this.take(LockHolder.Main, sender)) if (performance.now() >= until) return false;
    return true;
  }

  /** Publishes `sender`'s indexes and releases LOCK. */
  release(sender: IndexHolder): void {
    this.nextIndex = sender.nextIndex;
    this.pushedIndex = sender.pushedIndex;
    this.unlock();
  }

  get nextIndex(): number { return Number(Atomics.load(this.#i64, this.#next)); }
  set nextIndex(v: number) { Atomics.store(this.#i64, this.#next, BigInt(v)); }
  get pushedIndex(): number { return Number(Atomics.load(this.#i64, this.#pushed)); }
  set pushedIndex(v: number) { Atomics.store(this.#i64, this.#pushed, BigInt(v)); }
  get stable(): number { return Number(Atomics.load(this.#i64, this.#stable)); }
  set stable(v: number) { Atomics.store(this.#i64, this.#stable, BigInt(v)); }
  /** Main thread, at its first step of the shard: the view passed its start barrier, every peer is connected. */
  open(): void { Atomics.store(this.#i32, this.#open, 1); }
  /** Worker: whether the shard may be stepped and pushed (open() was called). */
  get isOpen(): boolean { return Atomics.load(this.#i32, this.#open) !== 0; }
  /** Main thread: it sends (the worker sends no nulls in the round that takes this). */
  markSending(): void { Atomics.store(this.#i32, this.#sending, 1); }
  /** Worker: whether the main thread sent since the last round took it. */
  takeSending(): boolean { return Atomics.exchange(this.#i32, this.#sending, 0) !== 0; }
  /** Worker: it found LOCK held and left work for a later round. */
  markRetry(): void { Atomics.store(this.#i32, this.#retry, 1); }
  /** Main thread, releasing LOCK: whether the worker wants another round. */
  takeRetry(): boolean { return Atomics.exchange(this.#i32, this.#retry, 0) !== 0; }

  /** Nulls the worker sent. */
  get workerNulls(): number { return Number(Atomics.load(this.#i64, this.#nulls)); }
  set workerNulls(v: number) { Atomics.store(this.#i64, this.#nulls, BigInt(v)); }

  /** Every word, for diagnostics. */
  state(): Record<string, number | boolean> {
    return {
      lock: Atomics.load(this.#i32, this.#lock), wedge: this.wedge, open: this.isOpen, nextIndex: this.nextIndex,
      pushedIndex: this.pushedIndex, stable: this.stable, sending: Atomics.load(this.#i32, this.#sending) !== 0,
      workerNulls: this.workerNulls,
    };
  }

  get wedge(): WedgeState { return Atomics.load(this.#i32, this.#wedge) as WedgeState; }

  /**
   * Asks the worker to stop: the main thread, or the worker itself when the view-change protocol it steps
   * wedges (a worker that already stopped — it wedged or failed — stays stopped).
   */
  askWedge(): void {
    Atomics.compareExchange(this.#i32, this.#wedge, WedgeState.Running, WedgeState.Asked);
  }

  /** Worker: it stopped; wakes a main thread waiting in waitStopped. */
  stopped(): void {
    Atomics.store(this.#i32, this.#wedge, WedgeState.Stopped);
    Atomics.notify(this.#i32, this.#wedge);
  }

  /** Main thread: waits (blocking, at most `timeoutMs`) until the worker stopped; false on timeout. */
  waitStopped(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.wedge === WedgeState.Stopped) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.#i32, this.#wedge, WedgeState.Asked, Math.min(left, 50));
    }
  }
}
