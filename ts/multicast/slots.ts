// A sender's small-message slot, inside its own SST row (DESIGN.md §4). The sender writes the slot, then
// bumps its index column and pushes the slot range before the index, so a receiver that sees index i
// finds message i complete in slot i mod W of the sender's row in its own copy of the table.
//
//   +0   i64  index     the sender's message index this slot holds (−1 before the first)
//   +8   u32  bytes     payload length
//   +12  u32  kind      SlotKind
//   +16  payload        up to maxSmcPayload bytes (a LARGE slot carries none: the bytes travel by RDMC)

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

/** Bytes of a slot for payloads up to `maxSmcPayload`, 8-aligned so slots keep their headers aligned. */
export function slotBytes(maxSmcPayload: number): number {
  return Math.ceil((SLOT_HEADER_BYTES + maxSmcPayload) / 8) * 8;
}

/** Writes message `index` into the slot at `at`: the payload (for DATA), then the header. */
export function writeSlot(arena: Arena, at: number, index: number, kind: SlotKind, payload?: Uint8Array, largeBytes = 0): void {
  const bytes = kind === SlotKind.DATA ? payload!.byteLength : kind === SlotKind.LARGE ? largeBytes : 0;
  if (kind === SlotKind.DATA) arena.u8.set(payload!, at + SLOT_HEADER_BYTES);
  arena.u32[(at + 8) >> 2] = bytes;
  arena.u32[(at + 12) >> 2] = kind;
  Atomics.store(arena.i64, at >> 3, BigInt(index));
}

export interface SlotView {
  index: number;
  bytes: number;
  kind: SlotKind;
  /** A view of the payload in the arena (empty unless DATA): valid until the sender reuses the slot. */
  payload: Uint8Array;
}

export function readSlot(arena: Arena, at: number): SlotView {
  const index = Number(Atomics.load(arena.i64, at >> 3));
  const bytes = arena.u32[(at + 8) >> 2]!;
  const kind = arena.u32[(at + 12) >> 2]! as SlotKind;
  const payload = kind === SlotKind.DATA ? arena.u8.subarray(at + SLOT_HEADER_BYTES, at + SLOT_HEADER_BYTES + bytes) : arena.u8.subarray(0, 0);
  return { index, bytes, kind, payload };
}
