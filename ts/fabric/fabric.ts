// The fabric: what moves bytes between members (DESIGN.md §2). It offers RDMA semantics whatever the wire:
// one-sided writes of arena ranges that land at the same offsets in the peer's arena, writes with an
// immediate that raise a completion at the receiver, and completions in SPSC rings inside the arena.
//
// The SST and every protocol above it talk to this interface, never to sockets, so the same code runs over
// the native TCP fabric, the libfabric backend, and the in-process simulated fabric of the simulator.

import type { FabricConnection } from './connections.js';

/** How the receiver applies writes into a granted range. */
export const GrantKind = {
  /** Bulk bytes (message slots, RDMC buffers): copied as they arrive. */
  Data: 0,
  /** Counters: offset and length 8-byte aligned, applied with 8-byte atomic stores in ascending order. */
  Control: 1,
} as const;
export type GrantKind = (typeof GrantKind)[keyof typeof GrantKind];

/** A range of the receiver's arena a peer may write into. */
export interface Grant {
  offset: number;
  length: number;
  kind: GrantKind;
  /** Completion ring that write-with-immediate into this range reports to (0 or 1). */
  ring: number;
  /**
   * Writes here are applied without ringing the doorbell, for values whose reader runs on its own timer
   * (the SST heartbeat): a sleeping worker is not woken for each. Writes with an immediate always ring.
   */
  quiet?: boolean;
}

/**
 * Which of a peer's two connections a write travels on (native/frame.h, Lane). Writes on one lane are
 * applied in the order made, each whole; writes on different lanes are not ordered with each other. The
 * control lane is for small writes that must not wait: heartbeats, counters that acknowledge (SST pushes,
 * the multicast's receive and delivery counters, the view-change columns). It never queues behind the data
 * lane (its own socket, send queue and lock, served first at the receiver). The data lane carries the bulk
 * bytes and every counter that announces them (a slot's `index`): a reader may rely on data arriving before
 * a later write on the same lane only. The point-to-point mailboxes, bounded (1 MiB by default), travel on
 * the control lane with their counters, so that a step's replies leave with its acknowledgements
 * (Mailboxes.lane; larger mailboxes use the data lane).
 */
export const Lane = {
  Data: 0,
  Control: 1,
} as const;
export type Lane = (typeof Lane)[keyof typeof Lane];

/** Result of a write; negative values mean the bytes were not queued. */
export const WriteStatus = {
  Ok: 0,
  /** No connection to that peer yet (or the peer was never expected). */
  NotConnected: -1,
  /** The connection to that peer failed or was closed. */
  Failed: -2,
  /** The range lies outside the arena. */
  BadRange: -3,
} as const;
export type WriteStatus = (typeof WriteStatus)[keyof typeof WriteStatus];

export interface FabricOptions {
  /** This member's id (0 ≤ id < 65535). */
  memberId: number;
  /** Any 32-bit tag that members of one configuration share; a handshake with another tag is refused. */
  layoutTag: number;
  /** Largest frame payload in bytes; longer writes are split by the sender. Default 16 MiB. */
  maxFrameBytes?: number;
  /** How long connect() keeps retrying a refused connection before reporting CONNECT_TIMEOUT. Default 10 s. */
  connectTimeoutMs?: number;
  /** How long an accepted connection may take to identify itself. Default 5 s. */
  handshakeTimeoutMs?: number;
  /**
   * Which native backend moves the bytes (NativeFabric only). 'tcp' (default): kernel sockets.
   * 'libfabric': libfabric endpoints of `provider` (docs/rdma.md); needs an addon built with libfabric's
   * headers (Debian: libfabric-dev), else NativeFabric.create throws NativeUnavailableError.
   * Both backends have the same semantics; members of one group must all use the same backend and provider.
   */
  backend?: 'tcp' | 'libfabric';
  /**
   * libfabric provider for backend 'libfabric': 'verbs' on RDMA hardware, 'tcp' (default), 'shm' (one
   * machine); 'sockets' fails with 3 or more members (docs/rdma.md). The name alone picks the first mode
   * the provider offers: one-sided writes on connected endpoints ('rma'), else messages on connected
   * endpoints ('msg'), else messages on reliable-datagram endpoints ('rdm', shm). 'P+msg' asks for
   * messages, 'P+rma' requires one-sided writes. NativeFabric.mode says which it got; check a provider with
   * `fi_info -p <provider> -v`.
   */
  provider?: string;
  /**
   * The group's fabric key: 16 to 64 random bytes every member holds (NativeFabric only; docs/rdma.md
   * "Authenticated connections"). With a key, every connection — each lane, both directions — proves it by
   * a challenge-response with fresh nonces (HMAC-SHA256) before anything it sends reaches the arena; a
   * connection that cannot is closed with AUTH_FAILED. Members of one group must all have the key or all
   * lack it: a key on one side only is refused (AUTH_FAILED). Both backends, every libfabric mode.
   * Default: none (connections are not authenticated).
   */
  authKey?: Uint8Array;
}

export interface FabricStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  sendCalls: number;
  recvCalls: number;
  wakeups: number;
  /** Plain writes merged into the newest queued, unsent frame of the same range (see write()). */
  framesCoalesced: number;
  /** One-sided writes posted (libfabric RMA mode: fi_write and fi_writedata); 0 on other fabrics. */
  rmaWrites: number;
}

/** Every counter at zero (a fabric closed before it could be read). */
export function zeroFabricStats(): FabricStats {
  return {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, sendCalls: 0, recvCalls: 0, wakeups: 0, framesCoalesced: 0,
    rmaWrites: 0,
  };
}

/**
 * The operations every fabric offers. Events (connected, failed, rejected, write-with-immediate) are not
 * callbacks: they arrive as entries in the arena's completion rings, read by a worker.
 */
export interface Fabric {
  readonly backend: 'tcp' | 'libfabric' | 'sim';
  /** Starts accepting connections; returns the bound port (useful with port 0). */
  listen(host: string, port: number): number;
  /** Sets the tag handshakes must carry (before any connection; see FabricOptions.layoutTag). */
  setLayoutTag(tag: number): void;
  /** Grants `peer` a range it may write; the first grant makes `peer` an expected member. */
  grant(peer: number, grant: Grant): void;
  /** Connects to `peer` (retrying refused connections up to the connect timeout). Completes in ring 0. */
  connect(peer: number, host: string, port: number): void;
  /**
   * One-sided write: the bytes at [offset, offset+length) here land at the same offset at `peer`. Writes
   * to one peer are applied in the order made. A write of exactly the range of the newest write still
   * queued unsent for that peer refreshes it instead of queuing another (the receiver gets the current
   * bytes once, never out of order) — a push carries state, so a backlog never builds up behind a busy link.
   * `lane` (default Lane.Data) picks the connection; order holds per lane.
   */
  write(peer: number, offset: number, length: number, lane?: Lane): WriteStatus;
  /** The same, plus a WRITE_IMM completion carrying `imm` (u32) at the receiver once the bytes are applied. */
  writeImm(peer: number, offset: number, length: number, imm: number, lane?: Lane): WriteStatus;
  /** Writes the range to every connected peer on `lane` (default data); returns how many peers it was queued for. */
  writeAll(offset: number, length: number, lane?: Lane): number;
  /**
   * Rings a channel's doorbell (default 0) so the worker sleeping on it sees a change. A channel is a
   * completion ring; writes into a range ring the doorbell of the channel its grant names (Grant.ring).
   */
  wake(channel?: number): void;
  /** Closes the connection to one peer (it becomes PEER_FAILED with LOCAL_CLOSE). */
  disconnect(peer: number): void;
  /** Counters for benchmarks and diagnostics. */
  stats(): FabricStats;
  /** Every peer this fabric knows, with its connection's state and send queue (connections.ts). */
  connections(): FabricConnection[];
  /** Stops the poller and closes every connection. Idempotent. */
  close(): void;
}

/**
 * What the protocols over a table write through: one-sided writes of this member's own ranges to one peer,
 * a batch of ranges to one peer, or a range to every connected peer. The native fabric offers it; so does
 * the simulated fabric of ts/sim/sim-view.ts, under which the simulator runs the member driver a Group runs.
 */
export type TableFabric = Pick<Fabric, 'write' | 'writeAll'> & {
  writeBatch(peer: number, ranges: Float64Array, count: number, lane?: Lane): WriteStatus;
};
