// The sends a shard accepted that wait for a slot of the sender's window (or, LARGE ones, for RDMC), in
// send order, with their bytes counted: the bound of DESIGN.md §9 (maxQueuedMessages, maxQueuedBytes) is
// checked against this count, so a caller that never awaits its sends cannot grow a member's memory.

import { OverloadedError } from '../errors.js';

/** A message waiting to be sent: its bytes, and the send() it answers (none for one sent again). */
export interface Outgoing {
  bytes: Uint8Array;
  large: boolean;
  /** For LARGE: RDMC has delivered the bytes at every member. */
  carried: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface QueueLimits {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
}

/**
 * Why a send of `size` bytes may not join a queue holding `count` sends of `bytes` bytes, or null when it
 * may: the queue is at maxQueuedMessages, or (when it is not empty: one message alone always fits) the
 * bytes would pass maxQueuedBytes. Shared by the shard's queue and the handle's, which holds sends during
 * a view change.
 */
export function queueRefusal(where: string, count: number, bytes: number, size: number,
  limits: QueueLimits): OverloadedError | null {
  if (count >= limits.maxQueuedMessages) return new OverloadedError(where, 'messages', count, limits.maxQueuedMessages);
  if (count > 0 && bytes + size > limits.maxQueuedBytes) {
    return new OverloadedError(where, 'bytes', bytes, limits.maxQueuedBytes);
  }
  return null;
}

export class SendQueue {
  readonly #items: Outgoing[] = [];
  /** Bytes of the messages queued. */
  #bytes = 0;

  get length(): number { return this.#items.length; }
  get bytes(): number { return this.#bytes; }
  /** The next message to send, or undefined. */
  get head(): Outgoing | undefined { return this.#items[0]; }

  push(m: Outgoing): void {
    this.#items.push(m);
    this.#bytes += m.bytes.byteLength;
  }

  /** Takes the head (it is there). */
  shift(): Outgoing {
    const m = this.#items.shift()!;
    this.#bytes -= m.bytes.byteLength;
    return m;
  }

  /** Puts messages before the others, in their order (those the previous view did not deliver). */
  unshift(messages: readonly Outgoing[]): void {
    this.#items.unshift(...messages);
    for (const m of messages) this.#bytes += m.bytes.byteLength;
  }

  /** Empties the queue; returns what it held, in order. */
  takeAll(): Outgoing[] {
    this.#bytes = 0;
    return this.#items.splice(0);
  }

  /** Large messages queued (for diagnostics). */
  countLarge(): number { return this.#items.filter((m) => m.large).length; }

  /** The counted bytes are the bytes queued (O(queue): for invariants). */
  bytesQueued(): number {
    let sum = 0;
    for (const m of this.#items) sum += m.bytes.byteLength;
    return sum;
  }
}
