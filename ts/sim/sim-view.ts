// One member's view over the simulated fabric (ts/sim/group-sim.ts): the DriverView the member driver
// (ts/group/driver.ts) steps in the simulator, as it steps a ViewEngine in a Group. The protocol pieces are
// built by the same function (ts/group/view-parts.ts) over an arena and an SST layout of their own; what is
// simulated is only what a ViewEngine gets from the native fabric and the SST's failure detector:
//
//   writes       copied out of the writer's arena when they are made, and queued on the link to the peer
//                (SimWorld.send); the scheduler decides when each lands
//   connecting   done once every addressed member has built the view (or is lost for good: crashed, on the
//                other side of a partition, stopped, or given up on by the driver), or after the timeout;
//                the members it cannot reach then are reported unreachable
//   detection    the scheduler's suspicion timers, as the SST's heartbeat check would (detect)

import { Arena } from '../arena.js';
import * as map from '../generated/memory-map.js';
import { Lane, WriteStatus, type TableFabric } from '../fabric/fabric.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { GroupConfig } from '../group/config.js';
import { planView } from '../membership/plans.js';
import { CUT_OFF, type Connection, type DriverView } from '../group/driver-parts.js';
import { hasMajority } from '../membership/view-change.js';
import {
  buildViewParts, type KernelChoice, type PreviousView, type ProtocolRules, type ViewParts,
} from '../group/view-parts.js';
import type { View } from '../membership/view.js';
import { multicastColumns } from '../multicast/layout.js';
import { SstLayout } from '../sst/layout.js';

const MAILBOX_BYTES = 4096;
const ARENA_BYTES = 2 << 20;
/**
 * Arenas of finished runs, zeroed for the next: each is a shared WebAssembly.Memory, and thousands of runs
 * allocating fresh ones exhaust the address space (each reserves guard pages) before the collector runs.
 */
const freeArenas: Arena[] = [];

/**
 * Which view's fabric: its number and its layout's tag. A real fabric's handshake carries the tag (members and
 * columns), so two views that share a number but not their members — the one a partitioned leader committed
 * and the one the others went on to — never connect, and no write of one lands in the other's tables.
 */
export interface ViewAt {
  readonly vid: number;
  readonly tag: number;
}

/** A link's key: which view's fabric (number and layout tag), from which member to which, on which lane. */
export function linkKey(at: ViewAt, from: number, to: number, lane: Lane): string {
  return `${at.vid}:${at.tag}:${from}:${to}:${lane}`;
}

/** What linkKey put in a key. */
export function linkOf(key: string): { vid: number; tag: number; from: number; to: number } {
  const [vid, tag, from, to] = key.split(':').map(Number) as [number, number, number, number];
  return { vid, tag, from, to };
}

/** What a simulated view reaches of the simulation around it. */
export interface SimWorld {
  readonly tick: number;
  /** A write from `from` to `to` in view `at` on `lane`: the bytes as they were when written, and where. */
  send(from: number, to: number, at: ViewAt, lane: Lane, offset: number, bytes: Uint8Array): void;
  /** `a` and `b` are connected in view `at`: both alive, not cut apart in it, both with the view's tables open. */
  reachable(a: number, b: number, at: ViewAt): boolean;
  /** `a` and `b` both have view `at` open, but a held cut lies between them: writes wait for its heal. */
  held(a: number, b: number, at: ViewAt): boolean;
  /** Failure detectors apply the quorum gate (detect); false only under mutation 'no-quorum-gate'. */
  readonly quorumGate: boolean;
  /** `p` has the tables of view `at` open. */
  built(p: number, at: ViewAt): boolean;
  /** Member `self` will never reach `p` again: it crashed, is across a partition not healed, or stopped. */
  lost(self: number, p: number): boolean;
  /** `self` started `view`: it announced itself connected (the checks' bookkeeping). */
  started(self: number, view: View): void;
  /** `view` passed its start barrier at member `self`: installed (a joiner is in: its Group.join resolves). */
  installed(self: number, view: View): void;
  /** The arenas the run used, zeroed for the next run when it ends. */
  readonly arenas: Arena[];
}

export interface SimViewInput {
  world: SimWorld;
  selfId: number;
  config: GroupConfig;
  view: View;
  previous?: PreviousView | undefined;
  rules: ProtocolRules;
  schedule: () => void;
  /** The view-change kernels of the protocol (buildViewParts' choice; default the WebAssembly ones). */
  kernels?: KernelChoice;
}

export class SimView implements DriverView {
  readonly view: View;
  readonly plans: ViewParts['plans'];
  readonly mailboxes: ViewParts['mailboxes'];
  readonly pushes: ViewParts['pushes'];
  readonly protocol: ViewParts['protocol'];
  readonly channels: ViewParts['channels'];
  readonly byTag: ViewParts['byTag'];
  readonly arena: Arena;
  readonly layout: SstLayout;
  /** This view's fabric, as a peer's handshake names it (fixed: taken once, not per write). */
  readonly at: ViewAt;
  /** Any port will do: the simulated fabric routes by member id. */
  readonly port = 1;
  started = false;
  ready = false;
  closed = false;
  /** Members this view's failure detector found failed (as the SST's `suspected`). */
  readonly detected = new Set<number>();
  readonly #world: SimWorld;
  readonly #selfId: number;
  /** This member's failure detector found it cut off in this view (detect). */
  #cutOff = false;
  #connecting: { members: number[]; since: number; timeout: number; isGone: (peer: number) => boolean } | null = null;

  constructor(p: SimViewInput) {
    this.#world = p.world;
    this.#selfId = p.selfId;
    this.view = p.view;
    const plans = planView(p.config, p.view.members);
    const layout = new SstLayout(multicastColumns(plans, p.view.members.length, MAILBOX_BYTES), p.view.members);
    this.layout = layout;
    this.at = { vid: p.view.vid, tag: layout.tag };
    this.arena = freeArenas.pop() ?? Arena.create({ memberId: p.selfId, bytes: ARENA_BYTES });
    p.world.arenas.push(this.arena);
    const parts = buildViewParts({
      arena: this.arena, layout, fabric: this.#fabric(), selfId: p.selfId, view: p.view, plans,
      mailboxBytes: MAILBOX_BYTES, previous: p.previous, rules: p.rules, rdmcOf: () => null, schedule: p.schedule,
      kernels: p.kernels,
    });
    ({ plans: this.plans, mailboxes: this.mailboxes, pushes: this.pushes, protocol: this.protocol } = parts);
    ({ channels: this.channels, byTag: this.byTag } = parts);
  }

  /** This member has `at`'s tables open here. */
  isAt(at: ViewAt): boolean { return !this.closed && this.view.vid === at.vid && this.layout.tag === at.tag; }

  gone(): Set<number> {
    const out = this.protocol.suspects();
    for (const id of this.detected) out.add(id);
    return out;
  }

  /** The simulated detector tells the driver at once (it never writes this member's row first). */
  ownSuspicion(): string | null { return null; }

  /** Looked at on the member's steps (`connection`): the scheduler decides when those come. */
  connect(members: readonly MemberAddress[], timeout: number, isGone: (peer: number) => boolean): void {
    this.#connecting = { members: members.map((m) => m.id), since: this.#world.tick, timeout, isGone };
  }

  get connection(): Connection | null {
    const c = this.#connecting;
    if (!c) return null;
    const world = this.#world, self = this.#selfId, at = this.at;
    const waiting = c.members.some((p) => p !== self && !world.lost(self, p) && !c.isGone(p) && !world.built(p, at));
    if (waiting && world.tick - c.since < c.timeout) return null;
    return { unreachable: c.members.filter((p) => p !== self && !world.reachable(self, p, at)) };
  }

  start(): void {
    this.started = true;
    this.protocol.announceInstalled();
    this.#world.started(this.#selfId, this.view);
  }

  markReady(): void {
    this.ready = true;
    this.#world.installed(this.#selfId, this.view);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /**
   * The found failure of `member` (a suspicion timer fired): it counts as gone from now on. What this member's
   * failure detector reports, as the predicate worker's does: null when it had found it already; CUT_OFF once
   * the view started if this member hears from no majority of the view's voters, itself included (quorum gate,
   * sticky; heard: a peer it has not found gone, reachable in this view and still running); else SUSPECTED.
   */
  detect(member: number): string | null {
    if (this.detected.has(member)) return null;
    this.detected.add(member);
    if (this.started && !this.#cutOff && this.#world.quorumGate) {
      const world = this.#world, self = this.#selfId, voters = this.protocol.votersAmong(this.view.members);
      const heard = voters.filter((p) => p === self || (!this.detected.has(p)
        && world.reachable(self, p, this.at) && !world.lost(self, p))).length;
      this.#cutOff = !hasMajority(voters.length, heard);
    }
    return this.#cutOff ? CUT_OFF : 'SUSPECTED';
  }

  /**
   * The simulated fabric of this view: one FIFO link per (view, sender, receiver, lane); the scheduler
   * delivers from the links in a random order, so writes on one lane land in order and the two lanes of a
   * pair overtake each other freely.
   */
  #fabric(): TableFabric {
    const peers = this.view.members.filter((p) => p !== this.#selfId);
    const send = (peer: number, offset: number, length: number, lane: Lane) => {
      const world = this.#world, at = this.at;
      if (this.closed || !(world.reachable(this.#selfId, peer, at) || world.held(this.#selfId, peer, at))) return;
      world.send(this.#selfId, peer, at, lane, offset, this.arena.u8.slice(offset, offset + length));
    };
    return {
      write: (peer, offset, length, lane = Lane.Data) => { send(peer, offset, length, lane); return WriteStatus.Ok; },
      writeBatch: (peer, ranges, count, lane = Lane.Data) => {
        for (let i = 0; i < count; i++) send(peer, ranges[2 * i]!, ranges[2 * i + 1]!, lane);
        return WriteStatus.Ok;
      },
      writeAll: (offset, length, lane = Lane.Data) => {
        if (this.closed) return 0;
        for (const p of peers) send(p, offset, length, lane);
        return peers.length;
      },
    };
  }
}

/** Returns a run's arenas, zeroed, for the next runs. */
export function recycleArenas(arenas: Arena[]): void {
  for (const a of arenas.splice(0)) {
    a.u8.fill(0, map.DYNAMIC_BASE);
    freeArenas.push(a);
  }
}
