// Total restart of a persistent group (issue 16; docs/persistence-group.md "Restarting"): every member of the
// group stopped (cleanly or by a crash) and started again from its data directory, without contact. Each
// rebuilt its objects from its own log; after a crash under load the logs' tails differ. They are prefixes of
// one sequence — a member logs only what it delivered, a delivered message was stable (received by every
// member of the shard), and a view change trims every member to the same ragged trim — so the longest log
// holds everything any member delivered. In the first view formed from the configuration, before it delivers
// anything, the members of each persistent shard reconcile:
//
//   hold     the shard does not step (StateSync.awaiting): nothing of the new view runs on an old state
//   tails    each member sends every other member of the shard where its log ends, on the shard's state tag:
//            tail [u32 6][u32 0][i64 version]   (−1: an empty log)
//   source   the member with the highest tail (the lowest id on ties); every member behind it is a recipient
//   catch-up a state transfer from the source to the recipients (ts/group/state-sync.ts): each recipient says
//            where its log ends (`have`), the source ships the records after it (or its snapshot when its log
//            no longer has them); the recipient runs them on its object and logs them
//   release  the shard steps once the tails are in; a recipient's shard (and so the shard's deliveries
//            everywhere: nothing is stable without it) waits until its state has arrived
//
// A first view with nothing logged anywhere exchanges its tails too (every tail is −1: nothing moves).
//
// From a majority: the first view is the configuration's members; each member connects to those it can
// within connectTimeoutMs (TotalRestart.connect). With every one of them, or with a majority of the last view its
// logs recorded (and of the first view), it starts the view and suspects the rest — the ordinary view change
// removes them — and the shards reconcile in the view after that change. With fewer, it closes the attempt,
// says whom it waits for (`restartWaiting`) and tries again, until restartWaitMs. Enough, because an update
// persisted at every member is in every log, so in any majority's; what only the missing members had logged
// (delivered, not yet durable everywhere) is given up, and those members come back through a contact, where
// the catch-up replaces their log's divergent tail with the group's. forceRestart (the override for a
// minority) names the first view's members instead: every one of them must come, and nobody else is in it.

import { SquallError, StateTransferError, TimeoutError } from '../errors.js';
import { hasMajority } from '../membership/view-change.js';
import type { GroupConfig } from './config.js';
import type { DriverView } from './driver-parts.js';
import type { ProtocolEvent } from './events.js';
import type { MemberDriver } from './driver.js';
import type { GroupPersistence } from './persistence.js';
import type { StateSync } from './state-sync.js';
import { TransferPlan } from './state-sync.js';
import { isStateTag, stateTag, type Transfer } from './state-transfer.js';
import type { ViewEngine } from './view-engine.js';

const TAIL = 6;
const TAIL_BYTES = 16;
/** How often a first view from logs says whom it waits for. */
const RESTART_WAITING_MS = 2_000;

export function encodeTail(version: bigint): Uint8Array {
  const record = new Uint8Array(TAIL_BYTES);
  const view = new DataView(record.buffer);
  view.setUint32(0, TAIL, true);
  view.setBigInt64(8, version, true);
  return record;
}

/** A `tail` record's version, or null when `record` is not one (a hostile version below −1 is not one). */
export function decodeTail(record: Uint8Array): bigint | null {
  if (record.byteLength !== TAIL_BYTES) return null;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (view.getUint32(0, true) !== TAIL || view.getUint32(4, true) !== 0) return null;
  const version = view.getBigInt64(8, true);
  return version < -1n ? null : version;
}

/** The source and recipients of one shard, from its members' tails: the highest tail, the lowest id on ties. */
export function restartSource(tails: ReadonlyMap<number, bigint>): { source: number; recipients: number[] } | null {
  let source = -1, best = -1n;
  for (const [id, tail] of [...tails].sort(([a], [b]) => a - b)) {
    if (tail > best) { source = id; best = tail; }
  }
  if (best < 0n) return null; // nothing logged anywhere
  const recipients = [...tails].filter(([, t]) => t < best).map(([id]) => id).sort((a, b) => a - b);
  return { source, recipients };
}

/**
 * The first view of a member whose logs recorded view `lastVid` (−1: none) did not connect: the error says
 * what a total restart needs.
 */
export function restartHint(error: unknown, lastVid: number): unknown {
  if (lastVid < 0 || !(error instanceof SquallError)) return error;
  error.message += ` (a total restart: this member's logs end in view ${lastVid}, so it forms view ${lastVid + 1}; `
    + 'every member forceRestart names must come back with the directory it stopped with: '
    + 'docs/persistence-group.md)';
  return error;
}

/**
 * Whether the members `here` (connected, this one among them) may rebuild a total restart's first view
 * `members`: every one of them, or a majority of the last view the logs recorded (`last`; empty: unknown,
 * then the first view's) that is also a majority of the first view — the change that removes the others
 * needs that.
 */
export function restartQuorum(members: readonly number[], last: readonly number[], here: readonly number[]): boolean {
  return members.every((m) => here.includes(m)) || restartShortOf(members, last, here) === 0;
}

/**
 * How many more of `last` (or of `members`, for the second rule) must connect for the majorities of
 * restartQuorum; 0 when `here` has both.
 */
export function restartShortOf(members: readonly number[], last: readonly number[], here: readonly number[]): number {
  const lastView = last.length > 0 ? last : members;
  const short = (size: number, have: number) => (hasMajority(size, have) ? 0 : Math.floor(size / 2) + 1 - have);
  return Math.max(short(lastView.length, lastView.filter((m) => here.includes(m)).length),
    short(members.length, here.length));
}

export interface FirstViewStart {
  driver: MemberDriver<ViewEngine>;
  persistence: GroupPersistence | null;
  states: StateSync;
  timeoutMs: number;
  /** How long a total restart waits for a majority of the last view (Infinity: no limit). */
  restartWaitMs: number;
  /** forceRestart: the first view holds just the members named, and needs every one of them. */
  forced: boolean;
  /** The first view's engine made again (the driver opens it), for a total restart's next attempt. */
  reopen(): ViewEngine;
}

/**
 * The first view formed from the configuration (Group.join without contact): connects its members (a total
 * restart: a majority of them, see TotalRestart.connect), starts the view and, with persistent logs, reconciles
 * them (TotalRestart) before the shards deliver — in the view without the missing members, when some were.
 */
export async function startFirstView(start: FirstViewStart): Promise<void> {
  const { driver, persistence, timeoutMs } = start;
  let engine = driver.view!;
  persistence?.restart.hold(engine);
  const restarting = persistence !== null && persistence.lastVid >= 0;
  let unreachable: number[] = [];
  if (restarting && !start.forced) {
    ({ engine, unreachable } = await persistence.restart.connect(engine, persistence.lastMembers, start));
  } else {
    const waiting = restarting ? persistence.restart.waiting(engine, []) : null;
    try {
      await engine.connectAll().catch((error: unknown) => { throw restartHint(error, persistence?.lastVid ?? -1); });
    } finally {
      if (waiting) clearInterval(waiting);
    }
  }
  driver.begin(engine, unreachable);
  // A member that started later than this one waits up to timeoutMs for the missing ones before it starts.
  await engine.whenReady(unreachable.length > 0 ? 2 * timeoutMs : timeoutMs);
  const view = unreachable.length > 0 ? await viewWithout(driver, unreachable, timeoutMs) : engine;
  await persistence?.restart.reconcile(view, start.states, timeoutMs);
}

/** The driver's view once one without `gone` passed its start barrier (the change that removes them). */
async function viewWithout(driver: MemberDriver<ViewEngine>, gone: readonly number[], timeoutMs: number):
  Promise<ViewEngine> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (driver.stopped) throw driver.stopped;
    if (driver.closed) throw new StateTransferError('this member closed during a total restart');
    const view = driver.view;
    if (view && view.ready && !view.closed && !view.view.members.some((m) => gone.includes(m))) return view;
    if (performance.now() >= deadline) {
      throw new TimeoutError(`total restart: the view change that removes members ${gone.join(', ')} (they did not `
        + `come back) did not finish within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface RestartParts {
  selfId: number;
  config: GroupConfig;
  /** The subgroups with a class (a subgroup without one has no object to reconcile). */
  typed(subgroup: string): boolean;
  /** Where this member's log of `subgroup` ends (−1n: empty). */
  tail(subgroup: string): Promise<bigint>;
  /** The `protocol` event: who the first view waits for, what each shard's reconciliation decided. */
  report(event: ProtocolEvent): void;
}

/** One persistent shard this member reconciles in the first view. */
interface HeldShard { subgroup: string; index: number; shard: number; members: number[]; tag: number }

export class TotalRestart {
  readonly #p: RestartParts;
  /** The persistent subgroups held until their tails are in (in the first view and the change after it). */
  readonly #held = new Set<string>();
  /** Tails received, by `tag:from` (kept until looked at; one per peer and shard: bounded by the view). */
  readonly #tails = new Map<string, bigint>();
  #wake: (() => void) | null = null;

  constructor(parts: RestartParts) {
    this.#p = parts;
  }

  /**
   * Reports every RESTART_WAITING_MS whom `view` (a first view from logs) waits for and, when it is short of
   * a majority of `last` (the last view its logs recorded), by how many; returns the timer.
   */
  waiting(view: ViewEngine, last: readonly number[]): ReturnType<typeof setInterval> {
    const timer = setInterval(() => {
      const connected = view.runtime.peers.connected;
      const members = view.view.members;
      const missing = members.filter((m) => m !== this.#p.selfId && !connected.has(m));
      const here = members.filter((m) => m === this.#p.selfId || connected.has(m));
      const short = last.length > 0 ? restartShortOf(members, last, here) : missing.length;
      if (missing.length > 0) this.#p.report({ event: 'restartWaiting', vid: view.view.vid, missing, short });
    }, RESTART_WAITING_MS);
    timer.unref();
    return timer;
  }

  /**
   * Connects a total restart's first view to a quorum of its members (restartQuorum): each attempt waits
   * up to timeoutMs for every member, and one that ends short of a quorum is closed and made again, until
   * restartWaitMs. Returns the engine that made it and the members it could not reach.
   */
  async connect(first: ViewEngine, last: readonly number[], start: FirstViewStart):
    Promise<{ engine: ViewEngine; unreachable: number[] }> {
    const deadline = performance.now() + start.restartWaitMs;
    for (let engine = first; ;) {
      const timer = this.waiting(engine, last);
      let unreachable: number[];
      try {
        unreachable = await engine.connectSome(start.timeoutMs);
      } finally {
        clearInterval(timer);
      }
      const members = engine.view.members;
      const here = members.filter((m) => !unreachable.includes(m));
      if (restartQuorum(members, last, here)) return { engine, unreachable };
      const short = restartShortOf(members, last, here);
      this.#p.report({ event: 'restartWaiting', vid: engine.view.vid, missing: unreachable, short });
      if (performance.now() >= deadline) {
        throw new TimeoutError(`total restart: after ${start.restartWaitMs} ms members ${unreachable.join(', ')} `
          + `have not come back, and ${short} more of the last view (${last.join(', ')}) must: start them with `
          + 'their directories, or, if they are gone for good, start the others with forceRestart (squall node '
          + '--force-restart): docs/persistence-group.md');
      }
      await engine.close();
      engine = start.reopen();
    }
  }

  /** `subgroup`'s shard waits for the tails (StateSync.awaiting). */
  held(subgroup: string): boolean { return this.#held.has(subgroup); }

  /** Takes a `tail` record (true), or says it is none (false). */
  accept(tag: number, from: number, bytes: Uint8Array): boolean {
    if (!isStateTag(tag)) return false;
    const tail = decodeTail(bytes);
    if (tail === null) return false;
    const key = `${tag}:${from}`;
    if (this.#tails.size < 4096 && !this.#tails.has(key)) this.#tails.set(key, tail);
    this.#wake?.();
    return true;
  }

  /**
   * The first view `view` formed from the configuration is about to start: its persistent subgroups with a
   * class that this member serves are held until reconcile() has their tails. Call before it starts stepping.
   */
  hold(view: DriverView): void {
    for (const s of this.#shardsOf(view, (name) => this.#p.config.subgroups[name]?.persistent === true
      && this.#p.typed(name))) {
      this.#held.add(s.subgroup);
    }
  }

  /** This member's shards in `view` of the subgroups `chosen` picks. */
  #shardsOf(view: DriverView, chosen: (subgroup: string) => boolean): HeldShard[] {
    const { selfId } = this.#p;
    const out: HeldShard[] = [];
    for (const plan of view.plans) {
      if (!chosen(plan.name)) continue;
      plan.shards.forEach((s, shard) => {
        if (!s.members.includes(selfId)) return;
        const tag = stateTag({ subgroup: plan.name, index: plan.index, shard, source: null, recipients: [] });
        out.push({ subgroup: plan.name, index: plan.index, shard, members: s.members, tag });
      });
    }
    return out;
  }

  /**
   * Once `view` passed its start barrier: exchanges the tails of every held shard, lets each shard step, and
   * resolves once every shard this member is behind in has caught up (rejects if it could not).
   */
  async reconcile(view: DriverView, states: StateSync, timeoutMs: number): Promise<void> {
    const shards = this.#shardsOf(view, (name) => this.#held.has(name));
    if (shards.length === 0) {
      this.#held.clear();
      return;
    }
    try {
      const transfers: Transfer[] = [];
      for (const s of shards) {
        const tails = await this.#exchange(view, s, timeoutMs);
        const decided = restartSource(tails);
        if (!decided) continue;
        const { source, recipients } = decided, version = String(tails.get(source));
        this.#p.report({ event: 'reconciled', vid: view.view.vid, subgroup: s.subgroup, shard: s.shard, source,
          recipients, version });
        if (recipients.length === 0) continue;
        transfers.push({ subgroup: s.subgroup, index: s.index, shard: s.shard, source, recipients });
      }
      const plan = new TransferPlan(states, transfers);
      plan.snapshot(); // the source's state, before anything of this view is delivered
      plan.receive(view); // a recipient's shard is now held by its transfer
      this.#held.clear();
      plan.send(view);
      await plan.restored;
    } finally {
      this.#held.clear();
      this.#tails.clear();
    }
  }

  /** Sends this member's tail of shard `s` to its other members and waits for theirs. */
  async #exchange(view: DriverView, s: HeldShard, timeoutMs: number): Promise<Map<number, bigint>> {
    const { selfId } = this.#p;
    const mine = await this.#p.tail(s.subgroup);
    const others = s.members.filter((m) => m !== selfId);
    for (const to of others) {
      view.mailboxes.send(to, s.tag, encodeTail(mine))
        .catch(() => {}); // a peer that failed: the view change removes it, and the wait below says so
    }
    const deadline = performance.now() + timeoutMs;
    const missing = () => others.filter((m) => !this.#tails.has(`${s.tag}:${m}`));
    while (missing().length > 0) {
      if (view.closed) throw new StateTransferError(`view ${view.view.vid} closed during a total restart`);
      const gone = missing().filter((m) => view.gone().has(m));
      if (gone.length > 0) {
        throw new StateTransferError(`total restart: members ${gone.join(', ')} failed before they said where their `
          + `log of '${s.subgroup}' ends; start the group again`);
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new TimeoutError(`total restart: members ${missing().join(', ')} did not say where their log of `
          + `'${s.subgroup}' ends within ${timeoutMs} ms; start them again`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#wake = () => { clearTimeout(timer); resolve(); };
      });
      this.#wake = null;
    }
    return new Map([[selfId, mine], ...others.map((m): [number, bigint] => [m, this.#tails.get(`${s.tag}:${m}`)!])]);
  }
}
