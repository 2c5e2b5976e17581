// Everything a group member runs for one view (DESIGN.md §6 "install view vid+1 with fresh tables"): one
// member runtime — an arena holding the view's SST (membership columns, multicast counters and slots,
// point-to-point mailboxes) and its RDMC groups, one fabric with one connection per member of the view,
// the predicate worker and the rdmc worker — and over them the view's protocol pieces (ts/group/view-parts.ts:
// the shard channels, the mailboxes, the view-change protocol). It is the DriverView a Group's member driver
// (ts/group/driver.ts) steps; the driver makes one per view and closes the old one once the next is ready.

import { MAX_ARENA_BYTES } from '../arena.js';
import { ArenaError, ClosedError, TimeoutError } from '../errors.js';
import type { FabricChoice } from '../fabric/choice.js';
import type { MemberAddress } from '../fabric/peers.js';
import * as map from '../generated/memory-map.js';
import { fnv1a } from '../hash.js';
import type { MembershipProtocol } from '../membership/protocol.js';
import { votersOf } from '../membership/view-change.js';
import type { ViewChangeSpec } from '../membership/worker-view-change.js';
import type { View } from '../membership/view.js';
import { MemberRuntime } from '../member/runtime.js';
import type { SpareWorkers } from '../member/spare-workers.js';
import { MEMBERSHIP_COLUMNS } from '../membership/columns.js';
import { multicastColumns } from '../multicast/layout.js';
import type { Mailboxes } from '../multicast/mailboxes.js';
import type { ShardChannel, ShardEngine } from '../multicast/shard.js';
import { RdmcLayout, type RdmcGroupSpec } from '../rdmc/layout.js';
import { RdmcNode } from '../rdmc/node.js';
import { SstLayout } from '../sst/layout.js';
import { SstMember } from '../sst/member.js';
import { SUSPECTED_BAD_SHARD } from '../sst/worker-protocol.js';
import type { SubgroupPlan } from '../membership/plans.js';
import { CUT_OFF, type Connection, type DriverView } from './driver-parts.js';
import { shardEngineFromEnv } from './join-options.js';
import { buildViewParts, type PreviousView } from './view-parts.js';
import type { StagedPushes } from '../fabric/staged-pushes.js';

/** One row's membership columns, as this member sees them (Group.membership()). */
export interface MembershipRow {
  member: number;
  wedged: boolean;
  leaving: boolean;
  suspects: number[];
  /** The removals of the proposal this row holds. */
  changes: number[];
  proposal: number;
  trimFor: number;
  committed: number;
  nextPortFor: number;
}

export interface EngineOptions {
  selfId: number;
  view: View;
  plans: readonly SubgroupPlan[];
  /** What the start barrier counts of the view this one came from; none for a first view. */
  previous?: PreviousView | undefined;
  /** Where this member accepts connections in this view ('host:0' picks a port). */
  listen: string;
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  connectTimeoutMs: number;
  mailboxBytes: number;
  fabric?: FabricChoice;
  /** The group's key: every fabric connection proves it (docs/security.md); none for an open group. */
  authKey?: Uint8Array;
  /** Warm workers to run this view's predicate and rdmc workers on (ts/member/spare-workers.ts). */
  spares?: SpareWorkers;
  /** Asks the member's driver for a step soon. */
  schedule: () => void;
  /** Who runs the ordered shards' control step; default SQUALL_SHARD_ENGINE, else 'worker'. */
  shardEngine?: ShardEngine;
  /** A member of this view failed (heartbeat stalled or connection broke; reason is a FailReason name). */
  /** `step` false: the caller steps after more of these (default true). */
  memberFailed: (engine: ViewEngine, member: number, reason: string, step?: boolean) => void;
  /** The fabric refused a connection before it was a member's (a FailReason name, e.g. AUTH_FAILED). */
  rejected?: (reason: string) => void;
  /** This view's fabric connected to a member, or its connection broke (reason: a FailReason name). */
  connection?: (engine: ViewEngine, member: number, state: 'connected' | 'lost', reason?: string) => void;
  error: (error: Error) => void;
}

const REGION_ALIGN = 65536;

const align = (n: number, to: number) => Math.ceil(n / to) * to;

export class ViewEngine implements DriverView {
  readonly view: View;
  readonly plans: readonly SubgroupPlan[];
  readonly runtime: MemberRuntime;
  readonly sst: SstMember;
  readonly rdmc: RdmcNode | null;
  readonly mailboxes: Mailboxes;
  readonly pushes: StagedPushes;
  readonly protocol: MembershipProtocol;
  /** This member's shard channel of each subgroup it serves, by subgroup name. */
  readonly channels: Map<string, ShardChannel>;
  /** The same, by point-to-point tag. */
  readonly byTag: Map<number, ShardChannel>;
  /** Every member of the view is connected to every other (the start barrier passed): shards may send. */
  ready = false;
  started = false;
  connection: Connection | null = null;
  readonly #readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  #connecting: Promise<number[]> | null = null;
  readonly #selfId: number;
  readonly #tag: number;
  #closed = false;
  readonly #connection: EngineOptions['connection'];

  /** Lays out the arena and binds; connect() then joins the view's members. */
  constructor(options: EngineOptions) {
    const { selfId, view, plans } = options;
    this.#selfId = selfId;
    this.view = view;
    this.plans = plans;
    const ids = view.members;

    // The arena: [fixed regions][SST][RDMC buffers per (shard, sender)], the same offsets at every member.
    const columns = multicastColumns(plans, ids.length, options.mailboxBytes);
    const sstBytes = new SstLayout(columns, ids).tableBytes;
    const rdmcBase = align(map.DYNAMIC_BASE + sstBytes, REGION_ALIGN);
    const { groups: rdmcGroups, groupOf } = rdmcGroupsOf(plans);
    const rdmcEnd = new RdmcLayout(rdmcGroups, rdmcBase).end;
    const arenaBytes = align(Math.max(rdmcEnd, rdmcBase) + REGION_ALIGN, REGION_ALIGN);
    if (arenaBytes > MAX_ARENA_BYTES) {
      throw new ArenaError(`this member needs ${arenaBytes} bytes of arena (SST ${sstBytes}, RDMC `
        + `${rdmcEnd - rdmcBase}), over the 4 GiB limit: lower maxMessageBytes, window or mailboxBytes`);
    }

    this.runtime = new MemberRuntime({
      id: selfId, listen: options.listen, arenaBytes, what: 'this group member',
      connectTimeoutMs: options.connectTimeoutMs,
      ...(options.fabric ? { fabric: options.fabric } : {}),
      ...(options.authKey ? { authKey: options.authKey } : {}),
    });
    try {
      this.sst = SstMember.onRuntime(this.runtime, {
        columns, quorumGate: true, quorumVoters: votersOf(ids, options.previous?.joined ?? []),
        ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
        ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
      }, ids, map.DYNAMIC_BASE, options.spares?.take('predicate'));
      this.rdmc = rdmcGroups.length > 0
        ? RdmcNode.onRuntime(this.runtime, rdmcGroups, rdmcBase, options.spares?.take('rdmc')) : null;
    } catch (error) {
      this.runtime.close();
      throw error;
    }
    const layout = this.sst.layout;
    const rdmc = this.rdmc;
    const fabric = this.runtime.fabric;
    const shardEngine = options.shardEngine ?? shardEngineFromEnv();
    let hosted = null as ViewChangeSpec | null; // posted to the worker once its shards are (below)
    const parts = buildViewParts({
      arena: this.runtime.arena, layout, fabric, selfId, view, plans, shardEngine, wakeWorker: () => fabric.wake(0),
      viewChangeWorker: {
        columns, host: (spec) => { hosted = spec; }, request: (op) => this.sst.requestViewChange(op),
      },
      mailboxBytes: options.mailboxBytes, previous: options.previous, schedule: options.schedule,
      rdmcOf: (plan, shard, rank) => {
        const id = groupOf(plan.index, shard, rank);
        return id === undefined ? null : rdmc!.group(id);
      },
    });
    const byWorker = [...parts.channels.values()].flatMap((c) => c.workerShard() ?? []);
    if (byWorker.length > 0) this.sst.stepShards(byWorker);
    // The protocol after the shards: a wedge in the worker freezes every shard it steps.
    if (hosted) this.sst.hostViewChange(hosted);
    this.mailboxes = parts.mailboxes;
    this.mailboxes.onMisbehaved = (member) => options.memberFailed(this, member, 'BAD_MAILBOX');
    for (const channel of parts.channels.values()) {
      channel.onMisbehaved = (member) => options.memberFailed(this, member, 'BAD_SHARD');
    }
    this.pushes = parts.pushes;
    this.protocol = parts.protocol;
    this.channels = parts.channels;
    this.byTag = parts.byTag;
    this.#tag = fnv1a(JSON.stringify({ sst: layout.tag, rdmc: rdmcGroups, vid: view.vid }));
    this.#connection = options.connection;
    this.#listen(options);
  }

  /** What the SST member and RDMC report goes to the owner. */
  #listen(options: EngineOptions): void {
    this.sst.on('suspected', (member, value) => options.memberFailed(this, member, suspicionReason(value)));
    this.sst.on('peerFailed', (member, reason) => options.memberFailed(this, member, reason));
    // Every member the gate reported with this one (cutOffFrom), and then one step: the stop names them all.
    this.sst.on('cutOff', () => {
      const all = this.sst.cutOffFrom;
      all.forEach((member, i) => options.memberFailed(this, member, CUT_OFF, i === all.length - 1));
    });
    this.sst.on('rejected', (reason: string) => options.rejected?.(reason));
    this.sst.on('connected', (member) => this.#connection?.(this, member, 'connected'));
    this.sst.on('peerFailed', (member, reason) => this.#connection?.(this, member, 'lost', reason));
    this.sst.on('error', (error) => options.error(error));
    this.rdmc?.on('error', (error) => options.error(error));
    this.rdmc?.on('misbehaved', (member) => options.memberFailed(this, member, 'BAD_RDMC'));
  }

  /**
   * Grants every peer its ranges and binds: `members` are the view's members with the addresses known so
   * far (for a view after the first, peers' ports come later, through the previous view's table).
   */
  listen(members: readonly MemberAddress[]): void {
    const layout = this.sst.layout;
    this.runtime.expect([...members], this.#tag, (peer) => [
      ...layout.grantsFor(layout.rowOf(peer)),
      ...(this.rdmc ? this.rdmc.layout.grantsFor(this.#selfId, peer) : []),
    ]);
    this.runtime.listen(); // only now: a peer that dials in finds its grants in place
  }

  /** The first view: waits for the worker, then for every member (throws if one cannot be reached). */
  async connectAll(): Promise<void> {
    await this.sst.ready();
    await this.runtime.connect();
  }

  /**
   * A total restart's first view (ts/group/total-restart.ts): connects to the members it can within
   * `timeoutMs` — a member another one already found gone (its row suspects it) is not waited for — and
   * returns the others.
   */
  async connectSome(timeoutMs: number): Promise<number[]> {
    await this.sst.ready();
    return this.runtime.connectReachable(this.runtime.members, timeoutMs, (peer) => this.protocol.suspects().has(peer),
      () => this.sst.catchUp());
  }

  /**
   * A view whose peers' addresses came after expect(): waits for the worker, then connects to `members`;
   * `connection` then holds the members that could not be reached within `timeoutMs` (the driver waits for
   * it), and whenConnected() says the same to an owner that awaits it.
   */
  connect(members: readonly MemberAddress[], timeoutMs: number, isGone: (peer: number) => boolean,
    done: () => void): void {
    const connecting = (async () => {
      await this.sst.ready();
      return this.runtime.connectReachable(members, timeoutMs, isGone, () => this.sst.catchUp());
    })();
    this.#connecting = connecting;
    connecting.then((unreachable) => { this.connection = { unreachable }; }, (error: Error) => {
      this.connection = { error }; // the driver goes on without the view's members; whenConnected() rejects with it
    }).finally(done); // the driver goes on at once, as the await of connecting did
  }

  /** Resolves once connect() is done; rejects with why it failed (the engine closed, the worker failed). */
  async whenConnected(): Promise<void> {
    await this.#connecting;
  }

  /**
   * Members this view has seen fail: suspected in its table, or their connection broke, or their heartbeat
   * stalled.
   */
  gone(): Set<number> {
    const out = this.protocol.suspects();
    for (const id of this.runtime.peers.failed.keys()) out.add(id);
    for (const id of this.sst.suspected) out.add(id);
    for (const id of this.sst.cutOffFrom) out.add(id); // unheard: an install waits for none of them
    return out;
  }

  /**
   * Starts failure detection, runs `step` straight after counters, slots or mailboxes land, and tells the
   * others this member is connected to every member (the start barrier: the driver passes it).
   */
  start(step: () => void): void {
    this.sst.watch();
    this.runtime.fabric.onArrival([0], step);
    this.started = true;
    this.protocol.announceInstalled();
  }

  /** The start barrier passed: whenReady() resolves. */
  markReady(): void {
    this.ready = true;
    for (const w of this.#readyWaiters.splice(0)) w.resolve();
  }

  /** Resolves once the start barrier passed; rejects after `timeoutMs` or if the engine closes first. */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.#closed) return Promise.reject(new ClosedError(`view ${this.view.vid}'s engine`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new TimeoutError(`not every member of view ${this.view.vid} reported itself `
        + `connected within ${timeoutMs} ms; check that every member runs`)), timeoutMs);
      t.unref(); // a member that closes meanwhile must not be kept alive by it
      this.#readyWaiters.push({
        resolve: () => { clearTimeout(t); resolve(); },
        reject: (error) => { clearTimeout(t); reject(error); },
      });
    });
  }

  get port(): number { return Number(/:(\d+)$/.exec(this.runtime.address)![1]); }

  /**
   * This member's copy of every row's membership columns, by member id: whom that member suspects, whether
   * it is wedged or leaving, and where it is in a view change (ts/membership/protocol.ts). A row of a
   * failed member holds what last arrived from it.
   */
  membership(): MembershipRow[] {
    const layout = this.sst.layout;
    const arena = this.runtime.arena;
    const col = (name: string) => layout.column(name);
    const M = MEMBERSHIP_COLUMNS;
    const u8 = (row: number, name: string, i = 0) => Atomics.load(arena.u8, layout.offsetOf(row, col(name), i));
    const i32 = (row: number, name: string) => Atomics.load(arena.i32, layout.offsetOf(row, col(name)) >> 2);
    return layout.members.map((member, row) => ({
      member,
      wedged: u8(row, M.wedged) === 1,
      leaving: u8(row, M.leaving) === 1,
      suspects: layout.members.filter((_, j) => u8(row, M.suspected, j) === 1),
      changes: layout.members.filter((_, j) => u8(row, M.changes, j) === 1),
      proposal: i32(row, M.proposal), trimFor: i32(row, M.trimFor), committed: i32(row, M.committed),
      nextPortFor: i32(row, M.nextPortFor),
    }));
  }

  /**
   * Why this member's own predicate worker suspected `member` (its heartbeat stalled: SUSPECTED; it wrote a
   * shard value no honest member writes: BAD_SHARD), even before this thread read the worker's event; null
   * when the worker did not suspect it. A suspicion in this member's row is then its own, not a peer's.
   */
  ownSuspicion(member: number): string | null {
    const value = this.sst.suspicionOf(member);
    return value === undefined ? null : suspicionReason(value);
  }

  get closed(): boolean { return this.#closed; }

  async close(): Promise<void> {
    if (this.#closed) return;
    // A failed connection the fabric reported and this thread had not read yet (another member's suspicion
    // can change the view first) is still told, once.
    for (const [member, reason] of this.sst.takeLateFailures()) this.#connection?.(this, member, 'lost', reason);
    this.#closed = true;
    // A member that closes (it was removed, or stops) waits no longer for the start barrier.
    for (const w of this.#readyWaiters.splice(0)) w.reject(new ClosedError(`view ${this.view.vid}'s engine`));
    for (const c of this.channels.values()) c.close();
    // Point-to-point sends still queued (a full mailbox) would never settle: they fail instead.
    for (const m of this.view.members) if (m !== this.#selfId) this.mailboxes.fail(m, 'CLOSED');
    await this.rdmc?.close();
    await this.sst.close();
    this.runtime.close();
  }
}

/** The reason a SUSPECTED event's value gives (workers/predicate-worker.ts). */
function suspicionReason(value: number): string {
  return value === SUSPECTED_BAD_SHARD ? 'BAD_SHARD' : 'SUSPECTED';
}

/**
 * One RDMC group per (subgroup, shard, sender) whose messages may exceed maxSmcPayload; rank 0 sends.
 * `groupOf(subgroup, shard, senderRank)` names the group of a sender, undefined when it has none.
 */
function rdmcGroupsOf(plans: readonly SubgroupPlan[]): {
  groups: RdmcGroupSpec[];
  groupOf: (subgroup: number, shard: number, rank: number) => number | undefined;
} {
  const groups: RdmcGroupSpec[] = [];
  const ids = new Map<string, number>();
  for (const plan of plans) {
    if (plan.maxMessageBytes <= plan.maxSmcPayload) continue;
    plan.shards.forEach((shard, shardIndex) => {
      if (shard.members.length < 2) return;
      shard.senders.forEach((sender, rank) => {
        ids.set(`${plan.index}/${shardIndex}/${rank}`, groups.length);
        groups.push({
          id: groups.length, members: [sender, ...shard.members.filter((m) => m !== sender)],
          maxMessageBytes: plan.maxMessageBytes,
          blockBytes: Math.max(1024, Math.min(plan.blockBytes, align(plan.maxMessageBytes, 8))),
        });
      });
    });
  }
  return { groups, groupOf: (subgroup, shard, rank) => ids.get(`${subgroup}/${shard}/${rank}`) };
}
