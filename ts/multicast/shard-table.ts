// Where one shard's columns are in a view's table (ts/multicast/layout.ts), seen from one member: every
// offset the shard's send and receive sides use, computed once when the view is built, so the message path
// adds numbers and never looks a column up by name.

import type { Arena } from '../arena.js';
import type { ShardPlan, SubgroupPlan } from '../membership/plans.js';
import type { SstLayout } from '../sst/layout.js';
import { subgroupColumns } from './layout.js';

/**
 * The numbers of one shard's table at one member: plain data, so the predicate worker, which runs the
 * shard's control step with the worker engine, gets the same geometry the main thread computed.
 */
export interface ShardGeometry {
  /** Senders of the shard, slots per sender (the window), and bytes of one slot. */
  S: number;
  W: number;
  slotBytes: number;
  /** The longest payload a DATA slot may hold, and a LARGE message's body (0: none is allowed): slots.ts. */
  maxPayload: number;
  maxLargeBytes: number;
  /** Row offsets of the shard's members other than this one. */
  peerRowAt: number[];
  /** The same rows as row numbers, and the senders' rows by rank (the lists the shard kernels read). */
  peerRows: number[];
  senderRows: number[];
  /** Arena offset of the table and bytes per row. */
  tableBase: number;
  rowStride: number;
  /** Row offsets of the senders, by sender rank. */
  senderRowAt: number[];
  /** Offsets of the shard's columns within a row. */
  indexCol: number;
  numReceivedCol: number;
  seqNumCol: number;
  deliveredCol: number;
  /** Offset of persistedNum within a row (the durable version of a persistent subgroup's log there). */
  persistedCol: number;
  /** Arena offsets of this member's counters. */
  indexAt: number;
  numReceivedAt: number;
  seqNumAt: number;
  deliveredAt: number;
  persistedAt: number;
  /** [offset, length] of this member's acknowledgements (numReceived … persistedNum): the control lane's push. */
  ackSpan: [number, number];
  /** Arena offset of each sender's slot column (by rank) in this member's copy of its row. */
  slotsAt: number[];
}

/** Where `shard`'s columns are in `layout`, seen from member `selfId`. */
export function shardGeometry(layout: SstLayout, plan: SubgroupPlan, shard: ShardPlan, selfId: number): ShardGeometry {
  const cols = subgroupColumns(plan);
  const selfRow = layout.rowOf(selfId);
  const peerRows = shard.members.map((id) => layout.rowOf(id)).filter((row) => row !== selfRow);
  const col = (name: string) => layout.column(name);
  const own = layout.rowOffset(selfRow);
  const numReceivedCol = col(cols.numReceived).offset;
  return {
    S: shard.senders.length,
    W: plan.window,
    slotBytes: cols.slotBytes,
    maxPayload: plan.maxSmcPayload,
    maxLargeBytes: plan.maxMessageBytes > plan.maxSmcPayload ? plan.maxMessageBytes : 0,
    peerRows,
    peerRowAt: peerRows.map((row) => layout.rowOffset(row)),
    senderRows: shard.senders.map((id) => layout.rowOf(id)),
    tableBase: layout.base,
    rowStride: layout.rowStride,
    senderRowAt: shard.senders.map((id) => layout.rowOffset(layout.rowOf(id))),
    indexCol: col(cols.index).offset,
    numReceivedCol,
    seqNumCol: col(cols.seqNum).offset,
    deliveredCol: col(cols.deliveredNum).offset,
    persistedCol: col(cols.persistedNum).offset,
    indexAt: own + col(cols.index).offset,
    numReceivedAt: own + numReceivedCol,
    seqNumAt: own + col(cols.seqNum).offset,
    deliveredAt: own + col(cols.deliveredNum).offset,
    persistedAt: own + col(cols.persistedNum).offset,
    ackSpan: [own + numReceivedCol, col(cols.persistedNum).offset + 8 - numReceivedCol],
    slotsAt: shard.senders.map((id) => layout.offsetOf(layout.rowOf(id), col(cols.slots))),
  };
}

export class ShardTable implements Readonly<ShardGeometry> {
  readonly arena: Arena;
  readonly S: number;
  readonly W: number;
  readonly slotBytes: number;
  readonly maxPayload: number;
  readonly maxLargeBytes: number;
  readonly peerRowAt: number[];
  readonly peerRows: number[];
  readonly senderRows: number[];
  readonly tableBase: number;
  readonly rowStride: number;
  readonly senderRowAt: number[];
  readonly indexCol: number;
  readonly numReceivedCol: number;
  readonly seqNumCol: number;
  readonly deliveredCol: number;
  readonly persistedCol: number;
  readonly indexAt: number;
  readonly numReceivedAt: number;
  readonly seqNumAt: number;
  readonly deliveredAt: number;
  readonly persistedAt: number;
  readonly ackSpan: [number, number];
  readonly slotsAt: number[];
  /** The plain numbers, as given (what the main thread sends the predicate worker). */
  readonly geometry: ShardGeometry;

  constructor(arena: Arena, g: ShardGeometry) {
    this.arena = arena;
    this.geometry = g;
    this.S = g.S; this.W = g.W; this.slotBytes = g.slotBytes;
    this.maxPayload = g.maxPayload; this.maxLargeBytes = g.maxLargeBytes;
    this.peerRowAt = g.peerRowAt; this.peerRows = g.peerRows; this.senderRows = g.senderRows;
    this.tableBase = g.tableBase; this.rowStride = g.rowStride; this.senderRowAt = g.senderRowAt;
    this.indexCol = g.indexCol; this.numReceivedCol = g.numReceivedCol; this.seqNumCol = g.seqNumCol;
    this.deliveredCol = g.deliveredCol; this.persistedCol = g.persistedCol;
    this.indexAt = g.indexAt; this.numReceivedAt = g.numReceivedAt; this.seqNumAt = g.seqNumAt;
    this.deliveredAt = g.deliveredAt; this.persistedAt = g.persistedAt;
    this.ackSpan = g.ackSpan; this.slotsAt = g.slotsAt;
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
