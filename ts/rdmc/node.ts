// RDMC on its own (DESIGN.md §5), as Derecho exposes it: a member of one or more static multicast groups,
// each with a sender (rank 0) and a message buffer at the same arena offset in every member.
//
//   const node = await RdmcNode.start({
//     id, members, groups: [{ id: 1, members: [0, 1, 2], maxMessageBytes: 64 << 20 }],
//   });
//   const group = node.group(1);
//   group.on('message', (bytes, info) => { /* bytes: a view of the buffer, valid during the call */ });
//   await group.send(payload);   // at the sender; resolves once every receiver has the message
//
// Starting is three steps, as for the SST: listen(), expect(members), connect(); start() runs them.
// The main thread never touches a block: the rdmc worker moves them, and this thread hears of each
// message once, when it is complete here.

import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { MAX_ARENA_BYTES, type Arena } from '../arena.js';
import { ArenaError, ClosedError, ConfigError, PeerFailedError, assert } from '../errors.js';
import type { NativeFabric } from '../fabric/native.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { FabricChoice } from '../fabric/choice.js';
import { MemberRuntime } from '../member/runtime.js';
import { startWorker, type Spare } from '../member/spare-workers.js';
import * as map from '../generated/memory-map.js';
import { fnv1a } from '../hash.js';
import { RDMC_CHANNEL, RdmcLayout, type RdmcGroupLayout, type RdmcGroupSpec } from './layout.js';
import { rdmcFailReasonName, type RdmcCommand, type RdmcReport, type RdmcWorkerData } from './worker-protocol.js';

export interface RdmcListenOptions {
  id: number;
  /** 'host:port' to accept connections on (port 0 picks one). */
  listen: string;
  groups: RdmcGroupSpec[];
  /** How long connect() waits for every peer. Default 10 s. */
  connectTimeoutMs?: number;
  /** How often the rdmc worker looks for connection news when idle. Default 20 ms. */
  failurePollMs?: number;
  /** Native backend (default: SQUALL_FABRIC, else tcp; see RuntimeOptions.fabric). */
  fabric?: FabricChoice;
}

export interface RdmcStartOptions extends Omit<RdmcListenOptions, 'listen'> {
  /** Every member, this one included. */
  members: MemberAddress[];
  listen?: string;
}

export interface RdmcMessageInfo {
  seq: number;
  size: number;
  /** Member id of the sender. */
  sender: number;
}

export interface RdmcGroupEvents {
  /** A whole message is here (also at the sender). `bytes` is a view of the group's buffer: copy what you keep. */
  message: [bytes: Uint8Array, info: RdmcMessageInfo];
  /** A member of the group failed; the group can carry no more messages. */
  failed: [error: PeerFailedError];
}

export class RdmcGroup extends EventEmitter<RdmcGroupEvents> {
  readonly id: number;
  readonly members: readonly number[];
  /** This member's rank (0 = the sender). */
  readonly rank: number;
  readonly blockBytes: number;
  readonly maxMessageBytes: number;
  /** The message buffer: the sender may fill it and call send(size) to send without a copy. */
  readonly buffer: Uint8Array;
  private readonly node: RdmcNode;
  private readonly layout: RdmcGroupLayout;
  private sending: { seq: number; size: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  private seq = 0;
  private failure: PeerFailedError | null = null;

  /** @internal */
  constructor(node: RdmcNode, layout: RdmcGroupLayout, self: number, arena: Arena) {
    super();
    this.node = node;
    this.layout = layout;
    this.id = layout.id;
    this.members = layout.members;
    this.rank = layout.members.indexOf(self);
    this.blockBytes = layout.blockBytes;
    this.maxMessageBytes = layout.maxMessageBytes;
    this.buffer = arena.u8.subarray(layout.buffer, layout.buffer + layout.maxMessageBytes);
  }

  /**
   * Sends a message to every member of the group (the sender is rank 0). With bytes, they are copied into
   * the buffer first; with a size, the first `size` bytes already in `buffer` are sent. Resolves once every
   * receiver has delivered it; one message at a time per group.
   */
  send(data: Uint8Array | number): Promise<void> {
    const size = typeof data === 'number' ? data : data.byteLength;
    if (this.rank !== 0) {
      return Promise.reject(new ConfigError(`member ${this.members[this.rank] ?? '?'} is not the sender ` +
        `of RDMC group ${this.id} (member ${this.members[0]} is)`));
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.sending) {
      return Promise.reject(new ConfigError(
        `RDMC group ${this.id} is still sending message ${this.sending.seq}; await it before the next send`));
    }
    if (!Number.isInteger(size) || size < 1 || size > this.maxMessageBytes) {
      return Promise.reject(new ConfigError(
        `an RDMC message must be 1 to ${this.maxMessageBytes} bytes (the group's maxMessageBytes), got ${size}`));
    }
    if (typeof data !== 'number') this.buffer.set(data);
    return new Promise<void>((resolve, reject) => {
      this.sending = { seq: ++this.seq, size, resolve, reject };
      this.node.command({ type: 'send', group: this.layout.index, size });
    });
  }

  /** @internal */
  onReport(r: RdmcReport): void {
    switch (r.type) {
      case 'delivered':
        this.emit('message', this.buffer.subarray(0, r.size), { seq: r.seq, size: r.size, sender: this.members[0]! });
        if (this.rank > 0) this.node.ack(this.layout, this.rank, r.seq);
        return;
      case 'acked': {
        const s = this.sending;
        this.sending = null;
        s?.resolve();
        return;
      }
      case 'failed': {
        const reason = rdmcFailReasonName(r.reason, map.FailReasonName);
        this.failure = new PeerFailedError(r.peer, reason,
          `RDMC group ${this.id}: member ${r.peer} failed (${reason}) during message ${r.seq}; the group can carry ` +
            `no more messages — create the groups anew without it`);
        this.sending?.reject(this.failure);
        this.sending = null;
        this.emit('failed', this.failure);
        return;
      }
    }
  }
}

/** What a node emits: its connections to the other members, and errors of its own. */
export interface RdmcNodeEvents {
  connected: [peer: number];
  peerFailed: [peer: number, reason: string];
  /** `peer` wrote a block or ack that breaks RDMC's rules (`what` says how): every group it shares with
   *  this member failed here ('failed', reason BAD_RDMC), and nothing more it writes is looked at. */
  misbehaved: [peer: number, what: string];
  error: [err: Error];
}

export class RdmcNode extends EventEmitter<RdmcNodeEvents> {
  readonly id: number;
  readonly arena: Arena;
  readonly fabric: NativeFabric;
  readonly layout: RdmcLayout;
  private readonly runtime: MemberRuntime;
  private readonly options: RdmcListenOptions;
  private readonly groups = new Map<number, RdmcGroup>();
  private worker: Worker | null = null;
  private closing = false;
  /** False on a runtime shared with an SST (a group member's): the SST's worker hears connection news. */
  private readonly ownsRuntime: boolean;

  private constructor(options: RdmcListenOptions, shared?: { runtime: MemberRuntime; base: number }) {
    super();
    this.options = options;
    this.layout = new RdmcLayout(options.groups, shared?.base);
    if (this.layout.end > MAX_ARENA_BYTES) {
      throw new ArenaError(
        `the RDMC groups need ${this.layout.end} bytes of arena, over the 4 GiB a wasm32 memory can hold: ` +
          `lower maxMessageBytes`);
    }
    this.ownsRuntime = !shared;
    this.runtime = shared?.runtime ?? new MemberRuntime({
      id: options.id, listen: options.listen, what: 'this RDMC node',
      arenaBytes: Math.max(this.layout.end, map.DYNAMIC_BASE + map.WASM_PAGE_BYTES),
      ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.fabric ? { fabric: options.fabric } : {}),
    });
    this.id = this.runtime.id;
    this.arena = this.runtime.arena;
    this.fabric = this.runtime.fabric;
    if (shared) {
      this.arena.checkDynamicRange(shared.base, this.layout.end - shared.base, `${options.groups.length} RDMC groups`);
    }
    for (const g of this.layout.groups) {
      if (g.members.includes(this.id)) this.groups.set(g.id, new RdmcGroup(this, g, this.id, this.arena));
    }
  }

  /**
   * RDMC groups on a runtime shared with an SST, laid out from `base`, with the worker started. The owner
   * grants each peer `layout.grantsFor(runtime.id, peer)` with its other ranges and connects the runtime.
   */
  static onRuntime(runtime: MemberRuntime, groups: RdmcGroupSpec[], base: number, spare?: Spare | null): RdmcNode {
    const node = new RdmcNode({ id: runtime.id, listen: runtime.address, groups }, { runtime, base });
    node.startWorker(spare);
    return node;
  }

  static async start(options: RdmcStartOptions): Promise<RdmcNode> {
    const self = options.members.find((m) => m.id === options.id);
    if (!self) throw new ConfigError(`member ${options.id} is not in the members list`);
    const node = new RdmcNode({ ...options, listen: options.listen ?? self.address });
    node.expect(options.members);
    node.runtime.listen();
    await node.connect();
    return node;
  }

  /** Step 1: binds the listening socket. */
  static listen(options: RdmcListenOptions): RdmcNode {
    const node = new RdmcNode(options);
    node.runtime.listen();
    return node;
  }

  get address(): string { return this.runtime.address; }

  /** Step 2: grants each peer the ranges of the groups it shares with this member; starts the worker. */
  expect(members: MemberAddress[]): void {
    if (this.worker) throw new ConfigError('expect() was already called for this member');
    const ids = new Set(members.map((m) => m.id));
    for (const id of this.layout.memberIds) {
      if (!ids.has(id)) throw new ConfigError(`an RDMC group names member ${id}, which is not in the members list`);
    }
    const tag = tagOf(this.options.groups, members.map((m) => m.id));
    this.runtime.expect(members, tag, (peer) => this.layout.grantsFor(this.id, peer));
    this.startWorker();
  }

  private startWorker(spare?: Spare | null): void {
    const data: RdmcWorkerData = {
      memory: this.arena.memory, fabricHandle: this.fabric.handle, self: this.id,
      groups: this.layout.groups.map((g) => ({ ...g, members: [...g.members] })),
      ownsRing0: this.ownsRuntime, ring0PollMs: this.options.failurePollMs ?? 20,
    };
    this.worker = startWorker('rdmc', data, spare);
    this.worker.on('message', (r: RdmcReport) => this.onReport(r));
    this.worker.on('error', (err) => this.emit('error', err));
  }

  /** Step 3: dials the members with higher ids and waits until every member is connected. */
  async connect(): Promise<void> {
    if (!this.worker) throw new ConfigError('call expect(members) before connect()');
    await this.runtime.connect();
  }

  group(id: number): RdmcGroup {
    const g = this.groups.get(id);
    if (!g) throw new ConfigError(`member ${this.id} is not in RDMC group ${id}`);
    return g;
  }

  /** @internal */
  command(cmd: RdmcCommand): void {
    if (this.closing && cmd.type !== 'stop') throw new ClosedError('this RDMC node');
    assert(this.worker, 'rdmc worker not started');
    this.runtime.command(this.worker, RDMC_CHANNEL, cmd);
  }

  /** @internal A receiver delivered message `seq`: write it into our ack slot and on to the sender's. */
  ack(g: RdmcGroupLayout, rank: number, seq: number): void {
    const at = g.acks + rank * 8;
    Atomics.store(this.arena.i64, at >> 3, BigInt(seq));
    this.fabric.writeImm(g.members[0]!, at, 8, seq);
  }

  private onReport(r: RdmcReport): void {
    if (r.type === 'peer') {
      const reason = map.FailReasonName[r.reason] ?? `reason ${r.reason}`;
      if (r.kind === map.CompletionKind.PEER_CONNECTED) {
        this.runtime.peers.onConnected(r.peer);
        this.emit('connected', r.peer);
      }
      if (r.kind === map.CompletionKind.PEER_FAILED) {
        this.runtime.peers.onFailed(r.peer, reason);
        this.emit('peerFailed', r.peer, reason);
      }
      return;
    }
    if (r.type === 'stopped') return;
    if (r.type === 'misbehaved') {
      const g = this.layout.groups[r.group];
      this.emit('misbehaved', r.peer, `RDMC group ${g?.id ?? r.group}: ${r.what}`);
      return;
    }
    const g = this.layout.groups[r.group];
    if (g) this.groups.get(g.id)?.onReport(r);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.worker) await this.runtime.stopWorker(this.worker, RDMC_CHANNEL);
    if (this.ownsRuntime) this.runtime.close();
  }
}

/** A tag of the configuration, so differently configured members refuse each other's handshake. */
function tagOf(groups: readonly RdmcGroupSpec[], members: readonly number[]): number {
  const g = groups.map((x) => [x.id, x.members, x.maxMessageBytes, x.blockBytes ?? null, x.algorithm ?? null]);
  return fnv1a(JSON.stringify({ g, m: members }));
}
