// Where one shard's columns are in a view's table (ts/multicast/layout.ts), seen from one member: every
// offset the shard's send and receive sides use, computed once when the view is built, so the message path
// adds numbers and never looks a column up by name.

import type { Arena } from '../arena.js';
import type { ShardPlan, SubgroupPlan } from '../membership/plans.js';
import type { SstLayout } from '../sst/layout.js';
import { subgroupColumns } from './layout.js';

export class ShardTable {
  readonly arena: Arena;
  /** Senders of the shard, slots per sender (the window), and bytes of one slot. */
  readonly S: number;
  readonly W: number;
  readonly slotBytes: number;
  /** Row offsets of the shard's members other than this one. */
  readonly peerRowAt: number[];
  /** The same rows as row numbers, and the senders' rows by rank (the lists the shard kernels read). */
  readonly peerRows: number[];
  readonly senderRows: number[];
  /** Arena offset of the table and bytes per row. */
  readonly tableBase: number;
  readonly rowStride: number;
  /** Row offsets of the senders, by sender rank. */
  readonly senderRowAt: number[];
  /** Offsets of the shard's columns within a row. */
  readonly indexCol: number;
  readonly numReceivedCol: number;
  readonly seqNumCol: number;
  readonly deliveredCol: number;
  /** Arena offsets of this member's counters. */
  readonly indexAt: number;
  readonly numReceivedAt: number;
  readonly seqNumAt: number;
  readonly deliveredAt: number;
  /** [offset, length] of this member's acknowledgements (numReceived … persistedNum): the control lane's push. */
  readonly ackSpan: [number, number];
  /** Arena offset of each sender's slot column (by rank) in this member's copy of its row. */
  readonly slotsAt: number[];

  constructor(arena: Arena, layout: SstLayout, plan: SubgroupPlan, shard: ShardPlan, selfId: number) {
    this.arena = arena;
    const cols = subgroupColumns(plan);
    this.S = shard.senders.length;
    this.W = plan.window;
    this.slotBytes = cols.slotBytes;
    const selfRow = layout.rowOf(selfId);
    this.peerRows = shard.members.map((id) => layout.rowOf(id)).filter((row) => row !== selfRow);
    this.peerRowAt = this.peerRows.map((row) => layout.rowOffset(row));
    this.senderRows = shard.senders.map((id) => layout.rowOf(id));
    this.tableBase = layout.base;
    this.rowStride = layout.rowStride;
    this.senderRowAt = shard.senders.map((id) => layout.rowOffset(layout.rowOf(id)));
    const col = (name: string) => layout.column(name);
    this.indexCol = col(cols.index).offset;
    this.numReceivedCol = col(cols.numReceived).offset;
    this.seqNumCol = col(cols.seqNum).offset;
    this.deliveredCol = col(cols.deliveredNum).offset;
    const own = layout.rowOffset(selfRow);
    this.indexAt = own + this.indexCol;
    this.numReceivedAt = own + this.numReceivedCol;
    this.seqNumAt = own + this.seqNumCol;
    this.deliveredAt = own + this.deliveredCol;
    this.ackSpan = [this.numReceivedAt, col(cols.persistedNum).offset + 8 - this.numReceivedCol];
    this.slotsAt = shard.senders.map((id) => layout.offsetOf(layout.rowOf(id), col(cols.slots)));
  }

  /** Arena offset of the slot that message `index` of sender `rank` uses. */
  slotAt(rank: number, index: number): number {
    return this.slotsAt[rank]! + (index % this.W) * this.slotBytes;
  }

  /** A counter at arena offset `at` (an aligned i64, stored whole by whoever writes it). */
  readI64(at: number): number {
    return Number(Atomics.load(this.arena.i64, at >> 3));
  }

  writeI64(at: number, value: number): void {
    Atomics.store(this.arena.i64, at >> 3, BigInt(value));
  }
}
