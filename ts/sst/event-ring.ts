// The event ring: fired predicates and connection news from the predicate worker (the only producer) to
// the main thread (the only consumer), in the arena's EVENT_RING. Entries are 16 bytes (memory-map.ts:
// EVENT_KIND u32, EVENT_ID u32, EVENT_VALUE f64). The producer fills entries, then publishes HEAD once per
// batch and rings MAIN_BELL; the main thread, parked in Atomics.waitAsync on MAIN_BELL, drains up to HEAD
// and publishes TAIL. One wake-up carries a whole batch, never one message per event.

import type { Arena } from '../arena.js';
import * as map from '../generated/memory-map.js';

const RING = map.EVENT_RING_OFFSET;
const HEAD = (RING + map.EVENT_RING_HEAD) >> 2;
const TAIL = (RING + map.EVENT_RING_TAIL) >> 2;
const ENTRIES = RING + map.EVENT_RING_ENTRIES;
const MASK = map.EVENT_RING_CAPACITY - 1;
const BELL = (map.MAIN_BELL_OFFSET + map.MAIN_BELL_SEQ) >> 2;

/** Worker side. */
export class EventRingWriter {
  private head: number;
  /** `head` as of the last ring of the bell: entries after it are queued or exposed, not yet rung for. */
  private rung: number;
  private readonly arena: Arena;

  constructor(arena: Arena) {
    this.arena = arena;
    this.head = Atomics.load(arena.u32, HEAD);
    this.rung = this.head;
  }

  /** Queues one event; returns false when the ring is full (the caller keeps it and retries). */
  push(kind: number, id: number, value: number): boolean {
    const tail = Atomics.load(this.arena.u32, TAIL);
    if (((this.head - tail) >>> 0) >= map.EVENT_RING_CAPACITY) return false;
    const at = ENTRIES + (this.head & MASK) * map.EVENT_ENTRY_BYTES;
    this.arena.u32[(at + map.EVENT_KIND) >> 2] = kind;
    this.arena.u32[(at + map.EVENT_ID) >> 2] = id;
    this.arena.f64[(at + map.EVENT_VALUE) >> 3] = value;
    this.head = (this.head + 1) >>> 0;
    return true;
  }

  /** Entries queued (or only exposed) since the last publish. */
  get unpublished(): number {
    return (this.head - this.rung) >>> 0;
  }

  /** Makes queued entries visible and wakes the main thread; no-op when nothing is queued. */
  publish(): void {
    if (this.unpublished === 0) return;
    this.expose();
    this.rung = this.head;
    Atomics.add(this.arena.i32, BELL, 1);
    Atomics.notify(this.arena.i32, BELL);
  }

  /**
   * Makes queued entries visible to a reader that looks (EventRingReader.peek, drain) without waking the
   * main thread: the next publish() rings for them.
   */
  expose(): void {
    Atomics.store(this.arena.u32, HEAD, this.head);
  }
}

/** Main-thread side. */
export class EventRingReader {
  private readonly arena: Arena;
  private closed = false;
  private seq: number;

  constructor(arena: Arena) {
    this.arena = arena;
    this.seq = Atomics.load(arena.i32, BELL);
  }

  /** Calls onEvent for every published entry, then frees them. Returns how many were read. */
  drain(onEvent: (kind: number, id: number, value: number) => void): number {
    const n = this.peek(onEvent);
    Atomics.store(this.arena.u32, TAIL, (Atomics.load(this.arena.u32, TAIL) + n) >>> 0);
    return n;
  }

  /** Calls onEvent for every published entry, in order, and leaves them for the next drain. */
  peek(onEvent: (kind: number, id: number, value: number) => void): number {
    const u32 = this.arena.u32;
    const head = Atomics.load(u32, HEAD);
    let tail = Atomics.load(u32, TAIL);
    let n = 0;
    while (tail !== head) {
      const at = ENTRIES + (tail & MASK) * map.EVENT_ENTRY_BYTES;
      const kind = u32[(at + map.EVENT_KIND) >> 2]!, id = u32[(at + map.EVENT_ID) >> 2]!;
      onEvent(kind, id, this.arena.f64[(at + map.EVENT_VALUE) >> 3]!);
      tail = (tail + 1) >>> 0;
      n++;
    }
    return n;
  }

  /**
   * Drains batches as the worker rings the bell, until close(). Runs on the event loop: Atomics.waitAsync
   * resolves as a task, so triggers run as ordinary JS on the main thread.
   */
  async run(onEvent: (kind: number, id: number, value: number) => void, onBatchEnd?: () => void): Promise<void> {
    while (!this.closed) {
      this.drain(onEvent);
      onBatchEnd?.();
      const waited = Atomics.waitAsync(this.arena.i32, BELL, this.seq);
      if (waited.async) await waited.value;
      this.seq = Atomics.load(this.arena.i32, BELL);
    }
    this.drain(onEvent);
  }

  /** Stops run() after its current wait. */
  close(): void {
    this.closed = true;
    Atomics.add(this.arena.i32, BELL, 1);
    Atomics.notify(this.arena.i32, BELL);
  }
}
