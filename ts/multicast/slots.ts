// A sender's small-message slot, inside its own SST row (DESIGN.md §4). The sender writes the slot, then
// bumps its index column and pushes the slot range before the index, so a receiver that sees index i
// finds message i complete in slot i mod W of the sender's row in its own copy of the table.
//
//   +0   u32  index lo  the sender's message index this slot holds, plus one: an i64, little-endian, written
//   +4   u32  index hi  as two u32 halves so no BigInt is made per message; 0 before the slot's first message,
//                       so a slot never written (a zeroed arena) reads as index −1, never as message 0
//   +8   u32  bytes     payload length (LARGE: the length of the body RDMC carries)
//   +12  u32  kind      SlotKind
//   +16  payload        up to maxSmcPayload bytes (a LARGE slot carries none: the bytes travel by RDMC)
//
// This is the one codec of a slot: the shard writes and reads every slot through it (ts/multicast/sender.ts,
// receiver.ts). Each function takes the arena and the slot's offset (8-aligned) and makes no object, except
// readSlot, which is for tests and diagnostics. The receiver checks the index a slot holds against the one
// it expects (the pair of the sender's write): a wrong slot offset or a slot reused too early shows at once.
//
// A peer's slots are written by that peer, so their headers are input, checked before a slot is counted as
// received (the shardReceipt kernel, assembly/shard.ts, applies these same rules) and again before it is
// delivered (ShardReceiver, by slotHeaderAllowed): the index expected, a known kind, and a length the kind
// allows — DATA at most maxSmcPayload, NULL none, LARGE more than maxSmcPayload and at most maxMessageBytes,
// and only where large messages are allowed.

import type { Arena } from '../arena.js';

export const SLOT_HEADER_BYTES = 16;

export const SlotKind = {
  /** A message whose payload is in the slot. */
  DATA: 0,
  /** A null: takes a sequence number so an idle sender does not stall the round robin; never delivered. */
  NULL: 1,
  /** A message whose payload travels by RDMC in the (shard, sender) group; the slot orders it. */
  LARGE: 2,
} as const;
export type SlotKind = (typeof SlotKind)[keyof typeof SlotKind];

const TWO_32 = 2 ** 32;

/** Bytes of a slot for payloads up to `maxSmcPayload`, 8-aligned so slots keep their headers aligned. */
export function slotBytes(maxSmcPayload: number): number {
  return Math.ceil((SLOT_HEADER_BYTES + maxSmcPayload) / 8) * 8;
}

/**
 * Writes message `index` into the slot at `at`: the payload (DATA), then the header. `largeBytes` is the
 * length of a LARGE message's body, which RDMC carries.
 */
export function writeSlot(arena: Arena, at: number, index: number, kind: SlotKind, payload?: Uint8Array,
  largeBytes = 0): void {
  let bytes = 0;
  if (kind === SlotKind.DATA) {
    arena.u8.set(payload!, at + SLOT_HEADER_BYTES);
    bytes = payload!.byteLength;
  } else if (kind === SlotKind.LARGE) {
    bytes = largeBytes;
  }
  const u32 = arena.u32, w = at >> 2, stored = index + 1;
  u32[w] = stored >>> 0;
  u32[w + 1] = Math.floor(stored / TWO_32);
  u32[w + 2] = bytes;
  u32[w + 3] = kind;
}

/** The message index the slot at `at` holds (−1: none yet). */
export function slotIndex(arena: Arena, at: number): number {
  const u32 = arena.u32, w = at >> 2;
  return u32[w]! + u32[w + 1]! * TWO_32 - 1;
}

/** The payload length of the slot at `at` (of the RDMC body, for LARGE). */
export function slotLength(arena: Arena, at: number): number {
  return arena.u32[(at >> 2) + 2]!;
}

export function slotKind(arena: Arena, at: number): SlotKind {
  return arena.u32[(at >> 2) + 3]! as SlotKind;
}

/**
 * Whether a slot of `kind` may say `bytes`, by the rules above: a DATA payload of at most `maxPayload`
 * bytes, a NULL of none, a LARGE body of more than `maxPayload` and at most `maxLargeBytes` (0: none allowed).
 */
export function slotHeaderAllowed(kind: number, bytes: number, maxPayload: number, maxLargeBytes: number): boolean {
  switch (kind) {
    case SlotKind.DATA: return bytes <= maxPayload;
    case SlotKind.NULL: return bytes === 0;
    case SlotKind.LARGE: return bytes > maxPayload && bytes <= maxLargeBytes;
    default: return false;
  }
}

/**
 * A view of a DATA slot's payload in the arena: valid until the sender reuses the slot. `bytes` is its
 * length, when the caller read it already.
 */
export function slotPayload(arena: Arena, at: number, bytes = slotLength(arena, at)): Uint8Array {
  const start = at + SLOT_HEADER_BYTES;
  return arena.u8.subarray(start, start + bytes);
}

/** A copy of a DATA slot's payload, for a message that outlives its slot. */
export function copySlotPayload(arena: Arena, at: number): Uint8Array {
  const start = at + SLOT_HEADER_BYTES;
  return arena.u8.slice(start, start + slotLength(arena, at));
}

export interface SlotView {
  index: number;
  bytes: number;
  kind: SlotKind;
  /** A view of the payload in the arena (empty unless DATA): valid until the sender reuses the slot. */
  payload: Uint8Array;
}

/** The whole slot as one object (it allocates: for tests and diagnostics, not the message path). */
export function readSlot(arena: Arena, at: number): SlotView {
  const kind = slotKind(arena, at);
  const payload = kind === SlotKind.DATA ? slotPayload(arena, at) : arena.u8.subarray(0, 0);
  return { index: slotIndex(arena, at), bytes: slotLength(arena, at), kind, payload };
}
