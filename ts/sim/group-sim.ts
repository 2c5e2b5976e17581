// A group of members in one process over a simulated fabric (issue 5): each member runs the member driver
// of a Group (ts/group/driver.ts) — the code that steps a member and installs its views — over the real
// ShardChannel, Mailboxes, SubgroupChannel and ViewChangeProtocol in an arena and SST layout of its own;
// only the fabric, the clock and the failure detector are simulated (ts/sim/sim-view.ts). Two subgroups,
// one shard of every member each: 'log' ordered, 'feed' raw. A write is copied out of the writer's arena
// when it is made and queued on the link to its peer; links are FIFO, and a seeded scheduler decides when
// each queued write lands, when each member steps, who sends, and which faults strike (ts/sim/sim-faults.ts).
//
// Time is the scheduler's tick: the drivers' clock, their timers, and the connect and suspicion timeouts
// are in ticks. The checks (ts/sim/group-checks.ts) run after every run; "one view per vid" and "no
// delivery after exclusion" as it goes, and after every step of a member the invariants() of its open
// views' protocol and shards (a paired assertion failing inside a step counts the same). A violation
// throws SimulationViolation naming the seed.

import type { Lane } from '../fabric/fabric.js';
import { validateGroupConfig, type GroupConfig } from '../group/config.js';
import { MemberDriver } from '../group/driver.js';
import { CUT_OFF, type DriverHost } from '../group/driver-parts.js';
import type { KernelChoice, PreviousView, ProtocolRules } from '../group/view-parts.js';
import type { Change } from '../membership/protocol.js';
import type { View } from '../membership/view.js';
import { MAX_JOINS_PER_CHANGE } from '../membership/columns.js';
import type { Arena } from '../arena.js';
import { checkJoinerIn, checkStayed, checkSubgroup, checkSwarm, type RunRecord } from './group-checks.js';
import { rulesOf, STRAY_WRITE_TICK, strayWedge, type Mutation } from './mutations.js';
import { check, prng, SimulationViolation } from './shard-sim.js';
import { SimJoins } from './sim-joins.js';
import { reasonOf, SUBGROUPS, viewAt, type SimMember } from './sim-member.js';
import { planFaults, type FaultPlan } from './sim-faults.js';
import type { GroupSimOptions } from './sim-options.js';
import { anyOf, SimPartition } from './sim-partition.js';
import { linkKey, linkOf, recycleArenas, SimView, type SimWorld } from './sim-view.js';

export type { GroupSimOptions } from './sim-options.js';
export type { Mutation } from './mutations.js';

export interface GroupSimResult {
  seed: number;
  members: number;
  faults: string[];
  /** Views installed (the highest vid any member reached). */
  views: number;
  delivered: number;
  /** Joiners that entered a view. */
  joined: number;
  steps: number;
}

const RAW = new Set<string>(['feed']);
/** How long a member waits for the others to build a new view before it goes on without them (ticks). */
const CONNECT_TIMEOUT_TICKS = 5000;
/**
 * The longest an install waits for a joiner's answer or connection (ticks; a member's port is waited for until
 * its failure is found, or CONNECT_TIMEOUT_TICKS): longer than any suspicion timer the faults set (at most 420
 * ticks).
 */
const SUSPICION_TIMEOUT_TICKS = 1000;
/** How often an install looks again for the next view's ports while its member is not stepped (ticks). */
const PORT_POLL_TICKS = 20;

export class GroupSim {
  readonly seed: number;
  readonly n: number;
  readonly #rand: () => number;
  readonly #config: GroupConfig;
  readonly #members: SimMember[] = [];
  /** Queued writes per link `vid:from:to:lane`; a link whose queue empties leaves the map. */
  readonly #links = new Map<string, Array<{ offset: number; bytes: Uint8Array }>>();
  /** Suspicions to raise later: at step `at`, member `who`'s failure detector finds `whom` in view `vid`. */
  #timers: Array<{ at: number; who: number; whom: number; vid: number }> = [];
  /** The drivers' timers: at step `at`, `wake`. */
  #wakes: Array<{ at: number; wake: () => void }> = [];
  readonly #installed = new Map<number, string>();
  readonly #faults: string[] = [];
  readonly #messages: number;
  readonly #trace: (line: string) => void;
  readonly #rules: ProtocolRules;
  readonly #mutation: Mutation | undefined;
  readonly #world: SimWorld;
  #tick = 0;
  readonly #joins: SimJoins;
  readonly #swarm: GroupSimOptions['swarm'];
  /** cutAtJoin: the proposer to cut off at its commit (−1: not yet; null: not this run). */
  #cutAtJoin: number | null;
  readonly #healingCut: boolean;
  readonly #heal: boolean;
  readonly #heldCut: boolean;
  readonly #partitioned = new SimPartition();
  readonly #kernels: KernelChoice;

  constructor(options: GroupSimOptions) {
    this.seed = options.seed;
    this.#rand = prng(options.seed);
    this.n = options.members ?? 3 + Math.floor(this.#rand() * 7);
    this.#messages = options.messages ?? 40;
    this.#trace = options.trace ?? (() => {});
    this.#rules = rulesOf(options.mutation);
    this.#mutation = options.mutation;
    this.#swarm = options.swarm;
    this.#cutAtJoin = options.cutAtJoin ? -1 : null;
    this.#healingCut = options.healingCut ?? false;
    this.#heal = options.heal ?? false;
    this.#heldCut = options.heldCut ?? false;
    this.#kernels = options.kernels ?? 'wasm';
    const joiners = this.#swarm?.joiners ?? 1;
    if (joiners < 1 || joiners > MAX_JOINS_PER_CHANGE || (this.#swarm && this.n + joiners > 12)) {
      throw new RangeError(`swarm: 1 to ${MAX_JOINS_PER_CHANGE} joiners, and at most 12 with the members (got `
        + `${joiners} and ${this.n})`);
    }
    const ids = Array.from({ length: this.n }, (_, i) => i);
    this.#config = validateGroupConfig({
      members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })),
      subgroups: {
        log: { shards: 1, members: { min: 1, max: 16 }, maxSmcPayload: 16, maxMessageBytes: 16, window: 3 },
        feed: {
          shards: 1, members: { min: 1, max: 16 }, maxSmcPayload: 16, maxMessageBytes: 16, window: 4, mode: 'raw',
        },
      },
    });
    this.#world = this.#newWorld();
    this.#joins = this.#newJoins();
    for (const id of ids) this.#members.push(this.#newMember(id));
    const view: View = { vid: 0, members: ids };
    const first = this.#members.map((m) => this.#buildView(m, view));
    this.#members.forEach((m, i) => m.driver.open(first[i]!));
    const addresses = ids.map((id) => ({ id, address: `sim:${id}` }));
    this.#members.forEach((m, i) => m.driver.connect(first[i]!, addresses, CONNECT_TIMEOUT_TICKS, () => false));
  }

  #newMember(id: number): SimMember {
    const m: SimMember = {
      id, alive: true, side: 0, joining: null, driver: null!, handles: new Map(), stopped: null, leaving: false,
      delivered: Object.fromEntries(SUBGROUPS.map((g) => [g, []])),
      sent: Object.fromEntries(SUBGROUPS.map((g) => [g, 0])),
      dirty: true, views: new Set(),
    };
    this.#renew(m);
    return m;
  }

  /** A fresh driver (and handles) for `m`. */
  #renew(m: SimMember): void {
    m.handles = new Map();
    if (m.driver) void m.driver.close();
    m.driver = new MemberDriver({ host: this.#hostFor(m), handles: m.handles, admission: this.#joins.admissionFor(m) });
  }

  #newJoins(): SimJoins {
    const sim = this;
    return new SimJoins({
      get tick() { return sim.#tick; },
      members: this.#members, connectTimeout: CONNECT_TIMEOUT_TICKS,
      rand: () => this.#rand(), trace: (line) => this.#trace(line),
      add: () => {
        const j = this.#newMember(this.#members.length);
        this.#members.push(j);
        this.#faults.push(`join ${j.id} at ${this.#tick}`);
        return j;
      },
      apart: (a, b) => this.#partitioned.apart(a, b),
      stop: (m, why) => this.#stop(m, why), crash: (m) => this.#crash(m), closed: (m) => this.#closed(m),
      buildView: (m, view, previous) => this.#buildView(m, view, previous),
      renew: (m) => this.#renew(m),
      joinCommitted: (m) => {
        if (this.#cutAtJoin === -1) this.#cut(new Set([this.#cutAtJoin = m.id]));
      },
    }, this.#swarm !== undefined);
  }

  #buildView(m: SimMember, view: View, previous?: PreviousView): SimView {
    this.#partitioned.built(view.vid);
    const built = new SimView({
      world: this.#world, selfId: m.id, config: this.#config, view, previous, rules: this.#rules,
      schedule: () => { m.dirty = true; }, kernels: this.#kernels,
    });
    // A peer whose shard values break the rules is suspected as the group does it (ViewEngine: BAD_SHARD).
    for (const channel of built.channels.values()) {
      channel.onMisbehaved = (member) => m.driver.memberFailed(built, member, 'BAD_SHARD');
    }
    return built;
  }

  /** Runs the scenario: load, faults for a while, then quiet until every live member settles. */
  run(): GroupSimResult {
    try {
      return this.#run();
    } finally {
      recycleArenas(this.#world.arenas);
    }
  }

  #run(): GroupSimResult {
    const plan = planFaults(this.#rand, this.n, {
      swarm: this.#swarm !== undefined, cutAtJoin: this.#cutAtJoin !== null, healingCut: this.#healingCut,
      heal: this.#heal, heldCut: this.#heldCut,
    });
    const limit = 400_000;
    for (this.#tick = 0; this.#tick < limit; this.#tick++) {
      this.#strike(plan);
      this.#joins.ask();
      if (this.#timers.some((x) => x.at <= this.#tick)) {
        for (const t of this.#timers.filter((x) => x.at <= this.#tick)) this.#suspect(t.who, t.whom, t.vid);
        this.#timers = this.#timers.filter((x) => x.at > this.#tick);
      }
      if (this.#wakes.some((x) => x.at <= this.#tick)) {
        for (const w of this.#wakes.filter((x) => x.at <= this.#tick)) w.wake();
        this.#wakes = this.#wakes.filter((x) => x.at > this.#tick);
      }
      const x = this.#rand();
      if (x < 0.45) this.#deliverOne();
      else if (x < 0.85) this.#stepOne();
      else this.#sendOne();
      if (this.#tick > 3000 && this.#tick % 500 === 0 && this.#settled()) break;
    }
    this.#checkAll();
    const vids = [...this.#installed.keys()];
    return {
      seed: this.seed, members: this.n, faults: this.#faults, views: Math.max(...vids),
      delivered: Math.max(...this.#members.map((m) => SUBGROUPS.reduce((n, g) => n + m.delivered[g]!.length, 0))),
      joined: this.#members.filter((m) => m.joining?.state === 'in').length, steps: this.#tick,
    };
  }

  #strike(plan: FaultPlan): void {
    const t = this.#tick;
    if (plan.crashes.includes(t)) this.#crashOne();
    if (t === plan.partitionAt) this.#partition();
    if (t === plan.leaveAt) this.#leaveOne();
    for (const _ of plan.joins.filter((at) => at === t)) this.#joins.arrive();
    if (t === plan.swarmAt) {
      const { joiners, vanish } = this.#swarm!;
      for (let i = 0; i < joiners; i++) {
        this.#joins.arrive(vanish === 'mixed' ? (this.#rand() < 0.5 ? 'proposed' : 'entered') : vanish);
      }
    }
    if (t === plan.honestAt) this.#joins.arrive();
    if (plan.cut) this.#cutJoiner(plan);
    if (t === plan.healAt && this.#members.some((m) => m.side !== 0)) {
      this.#partitioned.heal();
      this.#fault('heal');
    }
    if (t === STRAY_WRITE_TICK && this.#mutation === 'stray-wedge') {
      strayWedge(this.#members, (line) => this.#trace(`t=${t} ${line}`));
    }
  }

  // ---- what the drivers are given ------------------------------------------------------------------------

  /** The simulation as the views see it: links, reachability, and the checks' bookkeeping. */
  #newWorld(): SimWorld {
    const sim = this;
    const members = this.#members;
    return {
      get tick() { return sim.#tick; },
      arenas: [] as Arena[],
      send: (from, to, at, lane: Lane, offset, bytes) => {
        const key = linkKey(at, from, to, lane);
        let q = this.#links.get(key);
        if (!q) this.#links.set(key, q = []);
        q.push({ offset, bytes });
      },
      held: (a, b, at) => {
        const A = members[a]!, B = members[b]!;
        return A.alive && B.alive && this.#partitioned.holding(A, B) && viewAt(A, at) !== null
          && viewAt(B, at) !== null;
      },
      quorumGate: this.#mutation !== 'no-quorum-gate',
      built: (p, at) => viewAt(members[p]!, at) !== null,
      reachable: (a, b, at) => {
        const A = members[a]!, B = members[b]!;
        return A.alive && B.alive && !this.#partitioned.apart(A, B, at.vid) && viewAt(A, at) !== null
          && viewAt(B, at) !== null;
      },
      lost: (self, p) => {
        const P = members[p]!;
        return !P.alive || this.#partitioned.apart(P, members[self]!) || P.stopped !== null;
      },
      started: (self, view) => { members[self]!.views.add(view.vid); },
      installed: (self, view) => {
        const joining = members[self]!.joining;
        if (joining) joining.state = 'in';
        this.#viewInstalled(view);
      },
    };
  }

  /** Member `m`'s driver host: the scheduler's clock and timers, its views, and its stops. */
  #hostFor(m: SimMember): DriverHost<SimView> {
    return {
      selfId: m.id,
      clock: { now: () => this.#tick },
      timers: {
        after: (delay, wake) => {
          const entry = { at: this.#tick + Math.ceil(delay), wake };
          this.#wakes.push(entry);
          return () => { this.#wakes = this.#wakes.filter((w) => w !== entry); };
        },
      },
      limits: {
        connectTimeout: CONNECT_TIMEOUT_TICKS, suspicionTimeout: SUSPICION_TIMEOUT_TICKS, portPoll: PORT_POLL_TICKS,
      },
      rules: this.#rules,
      buildView: (view, previous) => this.#buildView(m, view, previous),
      addressOf: (member, port) => `sim:${member}:${port}`,
      schedule: () => { m.dirty = true; },
      adopted: (name, handle) => {
        handle.onDeliver((sender, version, bytes) => this.#record(m, name, sender, version, bytes));
      },
      dropped: (name, handle) => handle.stop(new Error(`member ${m.id} serves no shard of ${name}`)),
      memberFailed: () => {},
      committed: (old, change, unsent) => this.#traceCommit(m, old, change, unsent),
      stopped: (error, view) => this.#joins.failed(m, error, view.view.vid) || this.#stop(m, reasonOf(error)),
      installed: () => {},
      installEnded: () => {},
    };
  }

  #traceCommit(m: SimMember, old: SimView, change: Change, unsent: ReadonlyMap<string, number>): void {
    for (const name of SUBGROUPS) {
      const trim = change.trims[SUBGROUPS.indexOf(name)]![0];
      this.#trace(`t=${this.#tick} member ${m.id} applies proposal ${change.proposal} of view ${old.view.vid}: removes `
        + `${change.removed.join(',')}; ${name}: trim ${JSON.stringify(trim)}, ${m.delivered[name]!.length} delivered `
        + `in all, sends ${unsent.get(name) ?? 0} again`);
    }
  }

  #viewInstalled(view: View): void {
    const members = view.members.join(',');
    const seen = this.#installed.get(view.vid);
    this.#trace(`t=${this.#tick} view ${view.vid} [${members}] installed`);
    check(seen === undefined || seen === members, `seed ${this.seed}: two views with vid ${view.vid}: [${seen}] and `
      + `[${members}] (faults: ${this.#faults.join('; ')}; at ${this.#tick})`);
    this.#installed.set(view.vid, members);
  }

  // ---- what happens ---------------------------------------------------------------------------------------

  #record(m: SimMember, subgroup: string, sender: number, version: bigint, bytes: Uint8Array): void {
    check(m.stopped === null, `seed ${this.seed}: member ${m.id} delivered after it stopped (${m.stopped})`);
    const k = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
    m.delivered[subgroup]!.push(`${Number(version >> 32n)}:${sender}:${k}`);
  }

  #deliverOne(): void {
    // The k-th link, k uniform (no arrays: this runs once per write).
    if (this.#links.size === 0) return;
    let k = Math.floor(this.#rand() * this.#links.size);
    let key = '';
    for (const name of this.#links.keys()) if (k-- === 0) { key = name; break; }
    const { vid, tag, from, to } = linkOf(key);
    if (this.#partitioned.holding(this.#members[from]!, this.#members[to]!)) return; // held until the cut heals
    const queue = this.#links.get(key)!;
    const w = queue.shift()!;
    if (queue.length === 0) this.#links.delete(key);
    const dst = this.#members[to]!;
    if (!dst.alive || this.#partitioned.apart(dst, this.#members[from]!, vid)) return;
    const view = viewAt(dst, { vid, tag });
    if (!view) return; // the receiver closed that view's tables (or never had them)
    view.arena.u8.set(w.bytes, w.offset);
    dst.dirty = true;
  }

  #stepOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length === 0) return;
    const dirty = live.filter((m) => m.dirty);
    const pool = dirty.length > 0 && this.#rand() < 0.8 ? dirty : live;
    const m = pool[Math.floor(this.#rand() * pool.length)]!;
    m.dirty = false;
    try {
      m.driver.step();
    } catch (error) {
      // A paired assertion of the protocol or a shard failed in the step: a violation of this seed.
      if (!(error as Error).message.startsWith('squall internal error:')) throw error;
      throw new SimulationViolation(`seed ${this.seed}: member ${m.id} at ${this.#tick}: ${(error as Error).message}`);
    }
    this.#invariants(m);
  }

  /**
   * After every step, the invariants of the member's open views (ViewChangeProtocol.invariants and each shard
   * channel's): a broken one is a violation of this seed.
   */
  #invariants(m: SimMember): void {
    for (const view of [m.driver.previous, m.driver.view, m.driver.next]) {
      if (!view || view.closed) continue;
      try {
        view.protocol.invariants();
        for (const channel of view.channels.values()) channel.invariants();
      } catch (error) {
        throw new SimulationViolation(`seed ${this.seed}: member ${m.id} in view ${view.view.vid} at ${this.#tick}: `
          + (error as Error).message);
      }
    }
  }

  // ---- faults ---------------------------------------------------------------------------------------------

  /** A member stops: its engine closes, as a Group's does, so each live member finds it failed, as a crashed one. */
  #stop(m: SimMember, why: string): void {
    m.stopped = why;
    this.#trace(`t=${this.#tick} member ${m.id} stops: ${why}`);
    m.driver.stop(new Error(why));
    this.#closed(m);
  }

  /** `m`'s engine closed: each live member finds it failed after a random delay. */
  #closed(m: SimMember): void {
    for (const o of this.#members) if (o !== m && o.alive && o.stopped === null) this.#suspectLater(o, m.id);
  }

  #sendOne(): void {
    const sending = (m: SimMember) => m.alive && m.stopped === null && !m.leaving
      && (!m.joining || m.joining.state === 'in');
    const senders = this.#members.flatMap((m) => (sending(m)
      ? SUBGROUPS.filter((g) => m.sent[g]! < this.#messages).map((g) => ({ m, g })) : []));
    if (senders.length === 0) return;
    const { m, g } = senders[Math.floor(this.#rand() * senders.length)]!;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setUint32(0, m.sent[g]!++, true);
    m.handles.get(g)!.send(bytes).catch(() => {}); // refused at a member that stopped: the checks count what was sent
    m.dirty = true;
  }

  /** Member `who`'s failure detector finds `whom` in view `vid` (its heartbeat stalled). */
  #suspect(who: number, whom: number, vid: number): void {
    const m = this.#members[who]!;
    const view = m.alive && m.stopped === null ? m.driver.viewOf(vid) : null;
    const W = this.#members[whom]!; // once a held cut healed, a running member's heartbeat is heard again
    if (this.#partitioned.holds && W.alive && W.stopped === null && !this.#partitioned.apart(m, W, vid)) return;
    const reason = view && view.view.members.includes(whom) ? view.detect(whom) : null;
    if (!view || !reason) return;
    const what = reason === CUT_OFF ? 'is cut off from' : 'suspects';
    this.#trace(`t=${this.#tick} member ${who} ${what} ${whom} in view ${vid}`);
    m.driver.memberFailed(view, whom, reason);
    m.dirty = true;
  }

  /** The views whose failure detectors run at `m`: its current view's and the one it installs. */
  #watchedVids(m: SimMember): number[] {
    const current = m.driver.view, next = m.driver.next;
    return [current, next].filter((v): v is SimView => v !== null).map((v) => v.view.vid);
  }

  /** `who` finds `whom` failed in each view it watches, after a random delay. */
  #suspectLater(who: SimMember, whom: number): void {
    for (const vid of this.#watchedVids(who)) {
      this.#timers.push({ at: this.#tick + 20 + Math.floor(this.#rand() * 400), who: who.id, whom, vid });
    }
  }

  /**
   * A live member leaves cleanly (Group.leave()): one that is in, as for sending (a joiner has no Group to call
   * leave() on until its join resolved).
   */
  #leaveOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null && !m.leaving
      && (!m.joining || m.joining.state === 'in'));
    if (live.length <= 1) return;
    const m = live[Math.floor(this.#rand() * live.length)]!;
    m.leaving = true;
    m.driver.leave(new Error('leaving'));
    this.#faults.push(`leave ${m.id} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} member ${m.id} leaves`);
  }

  #crashOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length <= 1) return;
    this.#crash(live[Math.floor(this.#rand() * live.length)]!);
  }

  /** A fault strikes now: the run's list of faults and the trace say so. */
  #fault(what: string): void {
    this.#faults.push(`${what} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} ${what}`);
  }

  #crash(victim: SimMember): void {
    victim.alive = false;
    this.#fault(`crash ${victim.id}`);
    // Each of its links keeps a random prefix of what it had queued; links to it are dead.
    for (const [key, q] of this.#links) {
      const { from, to } = linkOf(key);
      if (from === victim.id) q.splice(Math.floor(this.#rand() * (q.length + 1)));
      if (to === victim.id) q.length = 0;
      if (q.length === 0) this.#links.delete(key);
    }
    // Every live member finds it (and a later view that still has it suspects it on connecting).
    for (const m of this.#members) if (m.id !== victim.id && m.alive) this.#suspectLater(m, victim.id);
  }

  #partition(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length < 3) return;
    const minority = Math.max(1, Math.floor(this.#rand() * Math.ceil(live.length / 2)));
    if (this.#heldCut) this.#partitioned.hold();
    this.#cut(new Set(anyOf(live, minority, this.#rand)));
  }

  /** Members `cut` go to side 1: writes across the cut are lost from now on, and each side suspects the other. */
  #cut(cut: ReadonlySet<number>): void {
    for (const m of this.#members) if (cut.has(m.id)) m.side = 1;
    this.#fault(`partition {${[...cut].join(',')}}`);
    for (const [key, q] of this.#links) {
      const { from, to } = linkOf(key);
      const dropped = cut.has(from) !== cut.has(to) && !this.#partitioned.holds; // a held cut keeps them
      if (dropped) q.splice(Math.floor(this.#rand() * (q.length + 1)));
      if (q.length === 0) this.#links.delete(key);
    }
    for (const a of this.#members) {
      for (const b of this.#members) if (a.alive && b.alive && a.side !== b.side) this.#suspectLater(a, b.id);
    }
  }

  /**
   * healingCut: once the joiner reaches the planned stage of its join, a partition cuts it off with fewer than
   * half of the members (so the rest are a majority of the view with it too); it heals `lasts` ticks later.
   */
  #cutJoiner(plan: FaultPlan): void {
    const cut = plan.cut!;
    const joiner = this.#members[this.n];
    if (cut.stage === null || joiner?.joining?.state !== cut.stage) return;
    this.#trace(`t=${this.#tick} joiner ${joiner.id} is cut off while ${cut.stage}`);
    cut.stage = null;
    plan.healAt = this.#tick + cut.lasts;
    const old = this.#members.slice(0, this.n).filter((m) => m.alive && m.stopped === null);
    const others = Math.floor(this.#rand() * Math.ceil((old.length - 1) / 2));
    this.#cut(new Set([joiner.id, ...anyOf(old, others, this.#rand)]));
  }

  /** Nothing in flight, no member installing, every live unstopped member in the same view with nothing queued. */
  #settled(): boolean {
    if (this.#links.size > 0 || this.#timers.length > 0 || this.#joins.pending) return false;
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    const busy = (m: SimMember) => m.dirty || m.driver.installing
      || SUBGROUPS.some((g) => m.sent[g]! < this.#messages || m.handles.get(g)!.queued > 0);
    if (live.some(busy)) return false;
    const vid = live[0]?.driver.view?.view.vid;
    return live.every((m) => m.driver.view?.view.vid === vid && !m.driver.view?.protocol.wedged);
  }

  // ---- the checks -----------------------------------------------------------------------------------------

  #checkAll(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    const where = live.map((m) => {
      const view = m.driver.view, next = m.driver.next;
      return `${m.id}@${view?.view.vid}${next ? `→${next.view.vid}` : ''}${view?.protocol.wedged ? ' wedged' : ''}`;
    }).join(', ');
    const run: RunRecord = {
      seed: this.seed, n: this.n, messages: this.#messages, faults: this.#faults, settled: this.#settled(), where,
      members: this.#members.map((m) => ({ ...m, vid: m.driver.view?.view.vid ?? -1 })),
    };
    const cut = this.#cutAtJoin;
    if (cut !== null) checkJoinerIn(run, this.n, `its proposer ${cut} was cut off at the commit`);
    if (this.#healingCut) checkJoinerIn(run, this.n, 'a partition cut it off and healed');
    if (this.#heldCut) checkStayed(run, this.#members.filter((m) => m.side === 0).map((m) => m.id), 'a held cut');
    if (this.#swarm) {
      const { vanishAt } = this.#joins;
      const swarm = `${this.#swarm.joiners} joiners vanishing (${[...vanishAt.values()].join(',')})`;
      checkSwarm(run, swarm, new Set(vanishAt.keys()), this.#members[0]!.driver.view!.view.members);
    }
    for (const g of SUBGROUPS) checkSubgroup(run, g, RAW.has(g));
  }
}

/**
 * Await it after each run of a series: it lets the event loop turn. A run's drivers leave promise jobs queued
 * (their closing), and in a synchronous loop of runs those jobs never ran and kept every run's whole
 * simulation reachable: ~0.65 MB a run, out of heap near 6,400 runs.
 */
export function afterRun(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
