// One member of a standalone Shared State Table (DESIGN.md §3), usable across processes as Derecho's SST
// is: define columns, write your own row, push it to every peer, and register predicates whose triggers run
// on this (main) thread. The predicate worker evaluates them next to the data; this thread only hears of
// what fired, in batches.
//
//   const sst = await SstMember.start({
//     id: 0, members: [{ id: 0, address: '127.0.0.1:7000' }, { id: 1, address: '127.0.0.1:7001' }],
//     columns: { counter: { type: 'i64' } },
//   });
//   sst.predicate({ reduce: 'min', column: 'counter', test: '>=', value: 10, kind: 'one-time' },
//                 (v) => console.log('every row reached', v));
//   sst.set('counter', 10); sst.push('counter');
//
// Starting is three steps, which start() runs in order: listen() (bind, learn the port), expect(members)
// (lay out the table, grant each peer its row, start the worker), connect() (dial the members with higher
// ids, wait until every peer is connected). Harnesses that bind to port 0 run them one by one and tell
// every process the ports in between; grants always precede the moment a peer could dial in.

import { EventEmitter } from 'node:events';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Arena } from '../arena.js';
import { ClosedError, ConfigError, assert } from '../errors.js';
import type { FabricChoice } from '../fabric/choice.js';
import type { MemberAddress } from '../fabric/peers.js';
import { MemberRuntime } from '../member/runtime.js';
import { startWorker, type Spare } from '../member/spare-workers.js';
import { MAX_WAIT_SPIN_US, type NativeFabric } from '../fabric/native.js';
import { Lane } from '../fabric/fabric.js';
import * as map from '../generated/memory-map.js';
import { EventRingReader } from './event-ring.js';
import { DEFAULT_SUSPICION_TIMEOUT_MS } from './config.js';
import { SstLayout, HEARTBEAT_COLUMN, type Column, type ColumnSpecs } from './layout.js';
import { compilePredicate, type PredicateKind, type PredicateSpec } from './predicates.js';
import type { PredicateWorkerData, WorkerCommand } from './worker-protocol.js';
import type { ViewChangeOp, ViewChangeSpec } from '../membership/worker-view-change.js';
import type { WorkerShardSpec } from '../multicast/shard.js';

export type { MemberAddress };

export interface SstListenOptions {
  /** This member's id. */
  id: number;
  /** Where to accept connections, 'host:port' (port 0 picks a free port). */
  listen: string;
  columns: ColumnSpecs;
  /** How often this member's heartbeat advances. Default 10 ms (DESIGN.md §9). */
  heartbeatIntervalMs?: number;
  /**
   * A member whose heartbeat has not advanced for this long is suspected.
   * Default 1 s (DEFAULT_SUSPICION_TIMEOUT_MS).
   */
  suspicionTimeoutMs?: number;
  /**
   * The quorum gate: a member about to suspect a peer (its heartbeat stalled, its connection broke) while it
   * heard from fewer than a majority of `quorumVoters`, counting itself — no other voter's heartbeat advanced
   * within half the suspicion timeout — is cut off itself: it pushes no suspicion (a stale one, landing late over a
   * connection that outlived the cut, would remove the majority that stayed), and emits `cutOff` instead of
   * `suspected`. Groups turn it on (their member then stops as partitioned). Default false.
   */
  quorumGate?: boolean;
  /**
   * The members whose majority the quorum gate asks for (a group leaves out those that joined into this view:
   * ViewChangeProtocol.votersAmong). Default every member.
   */
  quorumVoters?: readonly number[];
  /**
   * After a wake-up that found the table changed, the predicate worker watches for the next change this
   * many µs, yielding its core as it goes, before it sleeps: a change inside the window reaches the
   * predicates without a futex wake-up (docs/benchmarks.md, SST push latency). It costs at most this much
   * CPU per change, and stops as soon as another thread wants its core; an idle member never spins. 0 turns
   * it off. Default 50, at most 1000.
   */
  predicateSpinUs?: number;
  /** How long connect() waits for every peer. Default 10 s. */
  connectTimeoutMs?: number;
  /** Arena size in bytes. Default 64 MiB. */
  arenaBytes?: number;
  /** Native backend (default: SQUALL_FABRIC, else tcp; see RuntimeOptions.fabric). */
  fabric?: FabricChoice;
}

export interface SstStartOptions extends Omit<SstListenOptions, 'listen'> {
  /** Every member of the table, this one included, in row order. */
  members: MemberAddress[];
  /** Overrides this member's address from `members` for binding (e.g. '0.0.0.0:7000'). */
  listen?: string;
}

export type TableTrigger = (value: number) => void;

export interface SstEvents {
  connected: [memberId: number];
  /** The connection to a member broke or it misbehaved; reason is a FailReason name. */
  peerFailed: [memberId: number, reason: string];
  /** A member is suspected (its connection failed, or its heartbeat stalled for the suspicion timeout). */
  suspected: [memberId: number, staleMs: number];
  /**
   * With the quorum gate (SstListenOptions.quorumGate): this member would have suspected `memberId` while it
   * heard from no majority of the table, so it suspected nobody and is cut off itself.
   */
  cutOff: [memberId: number, staleMs: number];
  /** An incoming connection was refused before it identified itself; reason is a FailReason name. */
  rejected: [reason: string];
  /** The predicate worker died; the member can no longer evaluate predicates or detect failures. */
  error: [err: Error];
}


const DEFAULTS = {
  heartbeatIntervalMs: 10, suspicionTimeoutMs: DEFAULT_SUSPICION_TIMEOUT_MS, connectTimeoutMs: 10_000,
  predicateSpinUs: 50,
};

export class SstMember extends EventEmitter<SstEvents> {
  readonly id: number;
  readonly arena: Arena;
  /** The native fabric: the predicate worker sleeps in its wait and pushes heartbeats through it. */
  readonly fabric: NativeFabric;
  private readonly runtime: MemberRuntime;
  private readonly options: Required<Omit<SstListenOptions, 'arenaBytes' | 'listen' | 'connectTimeoutMs' | 'fabric'>>;
  private layoutOrNull: SstLayout | null = null;
  private worker: Worker | null = null;
  private reader: EventRingReader | null = null;
  private readerDone: Promise<void> | null = null;
  private triggers = new Map<number, { trigger: TableTrigger; kind: PredicateKind }>();
  private tsPredicates = new Map<number, {
    test: (sst: SstMember) => boolean; trigger: () => void; kind: PredicateKind; held: boolean;
  }>();
  private nextPredicateId = 1;
  /** Members the predicate worker suspected, with the value it reported (SUSPECTED events read so far). */
  private suspectedPeers = new Map<number, number>();
  /** Members the quorum gate reported this member cut off from (CUT_OFF events read so far). */
  private readonly cutOffPeers = new Set<number>();
  private closing = false;
  private wholeRow: Array<[number, number]> = [];
  /** The lane pushes travel on: control for a table of counters only, data for one with bytes columns. */
  private pushLane: Lane = Lane.Control;
  private workerReady: Promise<void> = Promise.resolve();
  /** False when the member runs on a runtime it shares (a group member's): the owner closes it. */
  private readonly ownsRuntime: boolean;

  private constructor(options: SstListenOptions, shared?: MemberRuntime) {
    super();
    if (!options.columns || typeof options.columns !== 'object') {
      throw new ConfigError('columns must be an object of column specs, e.g. { counter: { type: "i64" } }');
    }
    this.options = {
      id: options.id,
      columns: options.columns,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
      suspicionTimeoutMs: options.suspicionTimeoutMs ?? DEFAULTS.suspicionTimeoutMs,
      predicateSpinUs: options.predicateSpinUs ?? DEFAULTS.predicateSpinUs,
      quorumGate: options.quorumGate === true,
      quorumVoters: options.quorumVoters ?? [],
    };
    const spin = this.options.predicateSpinUs;
    if (!Number.isInteger(spin) || spin < 0 || spin > MAX_WAIT_SPIN_US) {
      throw new ConfigError(`predicateSpinUs must be an integer from 0 to ${MAX_WAIT_SPIN_US} (µs), got ${spin}`);
    }
    for (const key of ['heartbeatIntervalMs', 'suspicionTimeoutMs'] as const) {
      const v = this.options[key];
      if (!Number.isFinite(v) || v <= 0) {
        throw new ConfigError(`${key} must be a positive number of milliseconds, got ${v}`);
      }
    }
    if (this.options.suspicionTimeoutMs <= this.options.heartbeatIntervalMs) {
      throw new ConfigError(
        `suspicionTimeoutMs (${this.options.suspicionTimeoutMs}) must exceed heartbeatIntervalMs ` +
          `(${this.options.heartbeatIntervalMs}), or every member is suspected`);
    }
    this.ownsRuntime = !shared;
    this.runtime = shared ?? new MemberRuntime({
      id: options.id, listen: options.listen, what: 'this SST member',
      ...(options.arenaBytes ? { arenaBytes: options.arenaBytes } : {}),
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      ...(options.fabric ? { fabric: options.fabric } : {}),
    });
    this.id = this.runtime.id;
    this.arena = this.runtime.arena;
    this.fabric = this.runtime.fabric;
  }

  /** Starts a member of a static table: listen, expect the members, connect to all of them. */
  static async start(options: SstStartOptions): Promise<SstMember> {
    const self = options.members.find((m) => m.id === options.id);
    if (!self) {
      throw new ConfigError(
        `member ${options.id} is not in the members list; add { id: ${options.id}, address } to it`);
    }
    const member = new SstMember({ ...options, listen: options.listen ?? self.address });
    member.expect(options.members);
    member.runtime.listen();
    await member.connect();
    return member;
  }

  /** Step 1: binds the listening socket. Peers cannot join until expect() grants them their rows. */
  static listen(options: SstListenOptions): SstMember {
    const member = new SstMember(options);
    member.runtime.listen();
    return member;
  }

  /**
   * A table on a runtime shared with other parts of a member (the ordered multicast's SST beside its RDMC
   * groups), laid out at `base`, with its worker started. The owner grants each peer `layout.grantsFor`
   * together with its other ranges in runtime.expect(), connects the runtime, then calls `watch()`.
   */
  static onRuntime(
    runtime: MemberRuntime,
    options: Omit<SstListenOptions, 'id' | 'listen' | 'arenaBytes' | 'connectTimeoutMs' | 'fabric'>,
    memberIds: readonly number[], base: number, spare?: Spare | null
  ): SstMember {
    const member = new SstMember({ ...options, id: runtime.id, listen: runtime.address }, runtime);
    const layout = member.plan(memberIds, base);
    member.startWorker(layout, layout.rowOf(runtime.id), spare);
    return member;
  }

  /** The address this member accepts connections on (with the real port once listening). */
  get address(): string { return this.runtime.address; }

  get layout(): SstLayout {
    if (!this.layoutOrNull) {
      throw new ConfigError('the table has no layout yet: call expect(members) (or use SstMember.start)');
    }
    return this.layoutOrNull;
  }

  /** Row of this member. */
  get row(): number { return this.layout.rowOf(this.id); }

  /** Step 2: lays out the table for `members` (row order), grants each peer its row, starts the worker. */
  expect(members: MemberAddress[]): void {
    const layout = this.plan(members.map((m) => m.id), map.DYNAMIC_BASE);
    this.runtime.expect(members, layout.tag, (peer) => layout.grantsFor(layout.rowOf(peer)));
    this.startWorker(layout, layout.rowOf(this.id));
  }

  private plan(memberIds: readonly number[], base: number): SstLayout {
    this.runtime.assertOpen();
    if (this.layoutOrNull) throw new ConfigError('expect() was already called for this member');
    const layout = new SstLayout(this.options.columns, memberIds, base);
    this.arena.checkDynamicRange(
      layout.base, layout.tableBytes, `an SST of ${layout.rows} rows × ${layout.rowStride} bytes`);
    this.layoutOrNull = layout;
    this.wholeRow = layout.pushRanges(layout.rowOf(this.id), []);
    // A table of counters pushes on the control lane: a push never waits behind bulk data on the way to
    // its readers. A table with bytes columns pushes everything on the data lane: a push sends its bytes
    // before its counters, and a counter that announces bytes must not overtake them — nor may one counter
    // travel on both lanes, where a later value could land before an earlier one.
    this.pushLane = layout.hasData ? Lane.Data : Lane.Control;
    return layout;
  }

  private startWorker(layout: SstLayout, selfRow: number, spare?: Spare | null): void {
    const data: PredicateWorkerData = {
      memory: this.arena.memory,
      fabricHandle: this.fabric.handle,
      base: layout.base,
      rowStride: layout.rowStride,
      rows: layout.rows,
      selfRow,
      members: [...layout.members],
      heartbeatColumn: layout.column(HEARTBEAT_COLUMN).offset,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      suspicionTimeoutMs: this.options.suspicionTimeoutMs,
      quorumGate: this.options.quorumGate,
      voterRows: layout.members.flatMap((id, row) => (this.options.quorumVoters.length === 0
        || this.options.quorumVoters.includes(id) ? [row] : [])),
      spinUs: this.options.predicateSpinUs,
    };
    const worker = startWorker('predicate', data, spare);
    this.worker = worker;
    worker.on('error', (err) => this.emit('error', err));
    this.workerReady = new Promise((resolve, reject) => {
      const onMessage = (m: { type?: string }) => {
        if (m.type === 'ready') { worker.off('message', onMessage); resolve(); }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', () => resolve()); // close() before the worker got going
    });
    this.reader = new EventRingReader(this.arena);
    this.readerDone = this.reader.run((kind, id, value) => this.onEvent(kind, id, value), () => this.runTsPredicates());
  }

  /** Step 3: dials every member with a higher id, then waits until every peer is connected. */
  async connect(): Promise<void> {
    this.layout; // throws a clear error when expect() was not called
    await this.ready();
    await this.runtime.connect();
    this.watch();
  }

  /**
   * Resolves once the predicate worker runs and this member's heartbeat advances: connect only then, or
   * peers that start watching at once may find this member's heartbeat stalled while its worker boots.
   */
  ready(): Promise<void> {
    return this.workerReady;
  }

  /** Starts failure detection: call once every peer is connected (connect() does). */
  watch(): void {
    this.command({ type: 'watch' });
  }

  // ---- the table ------------------------------------------------------------------------------------

  /** Reads element `index` of `column` in `memberId`'s row. i64 values come back as numbers (exact below 2^53). */
  get(memberId: number, column: string, index = 0): number {
    const c = this.columnAt(column, index);
    return this.readAt(this.layout.offsetOf(this.rowChecked(memberId), c, index), c);
  }

  /** Reads i64 element `index` of `column` in `memberId`'s row as a bigint. */
  getBig(memberId: number, column: string, index = 0): bigint {
    const layout = this.layout;
    const c = this.columnAt(column, index);
    if (c.type !== 'i64') throw new ConfigError(`getBig reads i64 columns; '${column}' is ${c.type}`);
    return Atomics.load(this.arena.i64, layout.offsetOf(this.rowChecked(memberId), c, index) >> 3);
  }

  /** Writes element `index` of `column` in this member's own row (locally; push() sends it). */
  set(column: string, value: number | bigint, index = 0): void {
    const layout = this.layout;
    const c = this.columnAt(column, index);
    const at = layout.offsetOf(this.row, c, index);
    switch (c.type) {
      case 'i64': Atomics.store(this.arena.i64, at >> 3, BigInt(value)); break;
      case 'i32': Atomics.store(this.arena.i32, at >> 2, Number(value)); break;
      case 'u8': Atomics.store(this.arena.u8, at, Number(value)); break;
      default: throw new ConfigError(`'${column}' is a bytes column; write into bytes('${column}') instead`);
    }
  }

  /** Adds `delta` to an i64 element of this member's row; returns the new value. */
  add(column: string, delta = 1, index = 0): number {
    const c = this.columnAt(column, index);
    if (c.type !== 'i64') throw new ConfigError(`add() works on i64 columns; '${column}' is ${c.type}`);
    const at = this.layout.offsetOf(this.row, c, index) >> 3;
    return Number(Atomics.add(this.arena.i64, at, BigInt(delta))) + delta;
  }

  /** A view of a bytes column of `memberId`'s row (this member's own row to write into). */
  bytes(column: string, memberId = this.id): Uint8Array {
    const c = this.layout.column(column);
    if (c.type !== 'bytes') throw new ConfigError(`'${column}' is not a bytes column`);
    const at = this.layout.offsetOf(this.rowChecked(memberId), c);
    return this.arena.u8.subarray(at, at + c.bytes);
  }

  /**
   * Sends the named columns (all when none are named) of this member's row to every connected peer: on the
   * control lane for a table of counters only, else on the data lane (ts/fabric/fabric.ts, Lane).
   */
  push(...columns: string[]): void {
    this.pushRanges(columns.length === 0
      ? this.wholeRow
      : this.layout.pushRanges(this.row, columns.map((c) => this.layout.column(c))));
  }

  /** A push of fixed columns with the ranges worked out once, for hot loops. */
  pusher(...columns: string[]): () => void {
    const ranges = columns.length === 0 ? this.wholeRow
      : this.layout.pushRanges(this.row, columns.map((c) => this.layout.column(c)));
    return () => this.pushRanges(ranges);
  }

  private pushRanges(ranges: Array<[number, number]>): void {
    this.assertOpen();
    for (let i = 0; i < ranges.length; i++) this.fabric.writeAll(ranges[i]![0], ranges[i]![1], this.pushLane);
    this.fabric.wake(); // predicates over this member's own row see the change too
  }

  // ---- predicates -----------------------------------------------------------------------------------

  /** Registers a predicate evaluated by the worker with the WebAssembly kernels; returns its id. */
  predicate(spec: PredicateSpec, trigger: TableTrigger): number {
    this.assertOpen();
    const id = this.nextPredicateId++;
    const compiled = compilePredicate(id, spec, this.layout, this.row);
    this.triggers.set(id, { trigger, kind: spec.kind });
    this.command({ type: 'add', predicate: compiled });
    return id;
  }

  /** Changes the value a predicate's test compares with (for moving thresholds). */
  setPredicateValue(id: number, value: number): void {
    this.command({ type: 'setValue', id, value });
  }

  removePredicate(id: number): void {
    this.triggers.delete(id);
    if (this.tsPredicates.delete(id)) { this.updateWantsChanges(); return; }
    this.command({ type: 'remove', id });
  }

  /**
   * Registers a TypeScript predicate, for rare checks the kernels do not cover. It is evaluated on this
   * thread after every batch of table changes.
   */
  when(test: (sst: SstMember) => boolean, trigger: () => void, kind: PredicateKind = 'one-time'): number {
    this.assertOpen();
    const id = this.nextPredicateId++;
    this.tsPredicates.set(id, { test, trigger, kind, held: false });
    this.updateWantsChanges();
    this.fabric.wake();
    return id;
  }

  private updateWantsChanges(): void {
    const wantsChanges = this.tsPredicates.size > 0 ? 1 : 0;
    Atomics.store(this.arena.i32, (map.MAIN_BELL_OFFSET + map.MAIN_BELL_WANTS_CHANGES) >> 2, wantsChanges);
  }

  private runTsPredicates(): void {
    if (this.closing) return;
    if (this.tsPredicates.size === 0 || !this.layoutOrNull) return;
    for (const [id, p] of this.tsPredicates) {
      const holds = p.test(this);
      const fire = holds && !(p.kind === 'transition' && p.held);
      p.held = holds;
      if (!fire) continue;
      if (p.kind === 'one-time') this.tsPredicates.delete(id);
      p.trigger();
    }
    this.updateWantsChanges();
  }

  // ---- membership news ------------------------------------------------------------------------------

  /** Members currently connected. */
  get connected(): number[] { return [...this.runtime.peers.connected]; }

  /**
   * Handles the events the worker has published and this thread has not read yet, now rather than at the
   * reader's next turn: for a deadline that passed while this thread was starved (connectReachable).
   */
  catchUp(): void {
    if (!this.closing) this.reader?.drain((kind, id, value) => this.onEvent(kind, id, value));
  }

  /**
   * The view is closing: the connections the worker reported failed and this thread has not read yet, read
   * now (everything else it published is moot once the view closes), so their loss is still told.
   */
  takeLateFailures(): Array<[member: number, reason: string]> {
    const failed: Array<[number, string]> = [];
    if (this.closing) return failed;
    this.reader?.drain((kind, id, value) => {
      if (kind === map.EventKind.PEER_FAILED) failed.push([id, failReason(value)]);
    });
    return failed;
  }

  /** Members suspected so far (suspicion is permanent). */
  get suspected(): number[] { return [...this.suspectedPeers.keys()]; }
  /** Members this one did not hear when its quorum gate found it cut off (CUT_OFF events read so far). */
  get cutOffFrom(): number[] { return [...this.cutOffPeers]; }

  /**
   * The value of the predicate worker's suspicion of `member` (a SUSPECTED event), whether this thread has
   * read it already or not yet; undefined when the worker did not suspect it. Reads nothing off the ring.
   */
  suspicionOf(member: number): number | undefined {
    let value = this.suspectedPeers.get(member);
    if (value === undefined && !this.closing) {
      this.reader?.peek((kind, id, v) => {
        if (value === undefined && kind === map.EventKind.SUSPECTED && id === member) value = v;
      });
    }
    return value;
  }

  private onEvent(kind: number, id: number, value: number): void {
    switch (kind) {
      case map.EventKind.PREDICATE_FIRED: {
        const t = this.triggers.get(id);
        if (!t) return;
        if (t.kind === 'one-time') this.triggers.delete(id);
        t.trigger(value);
        return;
      }
      case map.EventKind.PEER_CONNECTED:
        this.runtime.peers.onConnected(id);
        this.emit('connected', id);
        return;
      case map.EventKind.PEER_FAILED: {
        const reason = failReason(value);
        this.runtime.peers.onFailed(id, reason);
        this.emit('peerFailed', id, reason);
        return;
      }
      case map.EventKind.SUSPECTED:
        if (!this.suspectedPeers.has(id)) this.suspectedPeers.set(id, value);
        this.emit('suspected', id, value);
        return;
      case map.EventKind.CUT_OFF:
        // The gate reports every member it does not hear at once: those not read yet are taken with this one,
        // so that a listener that stops this member on the first (cutOffFrom) names them all.
        this.cutOffPeers.add(id);
        this.reader?.peek((k, other) => { if (k === map.EventKind.CUT_OFF) this.cutOffPeers.add(other); });
        this.emit('cutOff', id, value);
        return;
      case map.EventKind.CONNECTION_REJECTED:
        this.emit('rejected', failReason(value));
        return;
      case map.EventKind.TABLE_CHANGED:
        return; // runTsPredicates runs at the end of the batch
    }
  }

  /** The worker engine: hands the predicate worker the ordered shards it steps (workers/shard-engine.ts). */
  stepShards(shards: WorkerShardSpec[]): void {
    this.command({ type: 'shards', shards });
  }

  /** The worker engine: the predicate worker steps the view's protocol (ts/membership/worker-view-change.ts). */
  hostViewChange(spec: ViewChangeSpec): void {
    this.command({ type: 'viewChange', spec }, [spec.port]);
  }

  /** A request to the protocol the worker steps. */
  requestViewChange(op: ViewChangeOp): void {
    this.command({ type: 'viewChangeOp', op });
  }

  private command(cmd: WorkerCommand, transfer?: readonly TransferListItem[]): void {
    assert(this.worker, 'worker not started');
    this.runtime.command(this.worker, 0, cmd, transfer);
  }

  private columnAt(column: string, index: number): Column {
    const c = this.layout.column(column);
    if (!Number.isInteger(index) || index < 0 || index >= c.count) {
      throw new ConfigError(`index ${index} is outside column '${column}' (count ${c.count})`);
    }
    return c;
  }

  private rowChecked(memberId: number): number {
    const row = this.layout.rowOf(memberId);
    if (row < 0) throw new ConfigError(`member ${memberId} is not in the table`);
    return row;
  }

  private readAt(at: number, c: Column): number {
    switch (c.type) {
      case 'i64': return Number(Atomics.load(this.arena.i64, at >> 3));
      case 'i32': return Atomics.load(this.arena.i32, at >> 2);
      case 'u8': return Atomics.load(this.arena.u8, at);
      default: throw new ConfigError(`'${c.name}' is a bytes column; read it with bytes('${c.name}', member)`);
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError('this SST member');
    this.runtime.assertOpen();
  }

  /** Stops the worker, closes every connection, and releases the arena. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.worker) await this.runtime.stopWorker(this.worker, 0);
    this.reader?.close();
    await this.readerDone;
    if (this.ownsRuntime) this.runtime.close();
  }
}

/** The name of a FailReason code from the event ring (the code itself when this build does not know it). */
function failReason(value: number): string {
  return map.FailReasonName[value] ?? `reason ${value}`;
}
