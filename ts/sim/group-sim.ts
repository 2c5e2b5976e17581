// A group of members in one process over a simulated fabric (issue 5): each member runs the real
// ShardChannel, Mailboxes, SubgroupChannel and ViewChangeProtocol over its own arena and SST layout — the
// code a member process runs — and only the fabric is simulated. Two subgroups, one shard of every member
// each: 'log' ordered, 'feed' raw. A write is copied out of the writer's
// arena when it is made and queued on the link to its peer; links are FIFO, and a seeded scheduler
// decides when each queued write lands, when each member steps, who sends, and which faults strike:
//
//   leave       a member leaves cleanly (as Group.leave: once what it sent is stable)
//   crash       a member stops; each of its links still delivers a random prefix of what it had queued;
//               each survivor suspects it after a random delay (its heartbeat stalled)
//   partition   the members split in two; writes across the cut are lost from then on, and each side
//               suspects the other after a random delay. The minority must stop; the majority goes on
//   delay       every link runs at its own pace, so members see each other's rows late and raggedly
//   join        a new member asks the leader to let it in (as a contact server would pass it on); the
//               leader's next proposal takes it, and once the leader applies the commit the joiner builds
//               the next view's tables like everyone. A joiner whose leader fails or whose proposal is
//               replaced asks again
//   swarm       (GroupSimOptions.swarm, instead of the faults above) several joiners ask at once, the
//               leader takes them in one change, and each vanishes once taken or once it built the view
//               it enters; later one honest joiner asks. The members must never stop, and it must get in
//
// A member installs the next view as a Group does: it ends the old view by the committed trim, builds
// fresh tables for the next, "connects" once every member of the next view has built its own (or is
// unreachable, which it then suspects), passes the start barrier, and its handle sends again what the old
// view did not deliver. Checks, after every run (SimulationViolation names the seed):
//
//   total order       (ordered) members that leave view v for the same next view delivered the same
//                     sequence in v
//   prefix            anything any member delivered in v — one that crashed or stopped included — is a
//                     prefix of that sequence
//   one view per vid  no two members install different member lists under one vid
//   no delivery after exclusion  a stopped (partitioned or removed) member delivers nothing more
//   sender order      each sender's messages are delivered in its order, each once (raw mode too: a message
//                     one member delivered on receipt and another never got is sent again, and passed over
//                     where it was delivered already); a joiner's from wherever its first view begins
//   liveness          once faults stop, the live majority ends in one view and delivers every message
//                     its senders sent

import { Arena } from '../arena.js';
import * as map from '../generated/memory-map.js';
import { Lane, WriteStatus, type TableFabric } from '../fabric/fabric.js';
import { validateGroupConfig, type GroupConfig } from '../group/config.js';
import { planView, type SubgroupPlan } from '../membership/plans.js';
import { SubgroupChannel } from '../group/subgroup-channel.js';
import { ViewChangeProtocol, type Change } from '../membership/protocol.js';
import { raggedTrim, type ViewSpec } from '../membership/view-change.js';
import { MAX_JOINS_PER_CHANGE } from '../membership/columns.js';
import { multicastColumns } from '../multicast/layout.js';
import { Mailboxes } from '../multicast/mailboxes.js';
import { ShardChannel } from '../multicast/shard.js';
import { SstLayout } from '../sst/layout.js';
import { check, prng } from './shard-sim.js';

export interface GroupSimOptions {
  seed: number;
  /** Members of view 0: 3–9. Default from the seed. */
  members?: number;
  /** Messages each member sends in each subgroup. Default 40. */
  messages?: number;
  /** Called with a line for each step of a view change (squall sim --trace). */
  trace?: (line: string) => void;
  /** Deliberate bugs, to show the checks catch them (see Mutation). */
  mutation?: Mutation;
  /**
   * Admission (issue 13): instead of random faults, `joiners` (at most MAX_JOINS_PER_CHANGE) ask to join
   * at once and each vanishes (crashes) where `vanish` says: 'proposed' once the leader took it, 'entered'
   * once it built the view it enters (before connecting), 'mixed' either, at random. One honest joiner
   * asks afterwards. Extra checks: no member of view 0 stops, the honest joiner gets in, and the final view
   * holds no vanished joiner. Members and joiners together at most 12 (the tables must fit ARENA_BYTES).
   */
  swarm?: { joiners: number; vanish: 'proposed' | 'entered' | 'mixed' };
}

/**
 * Deliberate bugs for showing that the checks can fail:
 *   short-trim        the trim stops one message short of what every survivor received (an off-by-one)
 *   no-resend         a sender forgets what the old view did not deliver instead of sending it again
 *   max-trim          the trim is the most any member received rather than the least
 *   barrier-own-view  a new view's start barrier needs a majority of its own members, not of the
 *                     previous view's (a minority that applied a commit could install its view)
 *   joiners-vote      members that joined into a view count toward its majority at once (the rule before
 *                     issue 13: a swarm of joiners that vanish outvotes the members, who stop)
 */
export type Mutation = 'short-trim' | 'no-resend' | 'max-trim' | 'barrier-own-view' | 'joiners-vote';

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

const MAILBOX_BYTES = 4096;
/** The subgroups every run has, one shard of every member each: ordered, and raw (each sender's order only). */
const SUBGROUPS = ['log', 'feed'] as const;
const RAW = new Set<string>(['feed']);
/**
 * Arenas of finished runs, zeroed for the next: each is a shared WebAssembly.Memory, and thousands of runs
 * allocating fresh ones exhaust the address space (each reserves guard pages) before the collector runs.
 */
const freeArenas: Arena[] = [];
/** How long a member waits for the others to build a new view before it goes on without them. */
const CONNECT_TIMEOUT_TICKS = 5000;
const ARENA_BYTES = 1 << 20;

/** One write in flight on a link: the bytes as they were when written, and where they land. */
interface Write { offset: number; bytes: Uint8Array }

/** One member's tables, shard and protocol for one view. */
interface MemberView {
  view: ViewSpec;
  arena: Arena;
  layout: SstLayout;
  /** This member's shard of each subgroup, by name (every subgroup has one shard of every member). */
  channels: Map<string, ShardChannel>;
  mailboxes: Mailboxes;
  protocol: ViewChangeProtocol;
  /** Connected to every member of the view that is reachable (announceInstalled done). */
  connected: boolean;
  ready: boolean;
  /** The tick it was built: a member waits so long for the others to build theirs (connectTimeoutMs). */
  builtAt: number;
}

interface SimMember {
  id: number;
  alive: boolean;
  /** A joiner's progress: asking (again at tick `retryAt`), proposed by `proposer`, or in a view. */
  joining: { state: 'asking' | 'proposed' | 'in'; proposer: number; retryAt: number; tries: number } | null;
  /** Side of the current partition (0 when none). */
  side: number;
  current: MemberView | null;
  /** The view being connected, after a commit. */
  next: MemberView | null;
  handles: Map<string, SubgroupChannel>;
  stopped: string | null;
  /** Asked to leave (Group.leave): sends refused; asks the protocol once what it sent is stable. */
  leaving: 'wanted' | 'asked' | null;
  /** What this member delivered in each subgroup: `vid:sender:k` per message. */
  delivered: Record<string, string[]>;
  sent: Record<string, number>;
  dirty: boolean;
  /** Members this member has reported to its protocol as suspected, per vid. */
  suspected: Set<string>;
  /** The views this member was in (connected to): a joiner was in none before the one it entered. */
  views: Set<number>;
}

export class GroupSim {
  readonly seed: number;
  readonly n: number;
  readonly #rand: () => number;
  readonly #config: GroupConfig;
  readonly #members: SimMember[];
  /** Queued writes per link `vid:from:to`. */
  readonly #links = new Map<string, Write[]>();
  /** Suspicions to raise later: at step `at`, member `who` suspects `whom` in view `vid`. */
  #timers: Array<{ at: number; who: number; whom: number; vid: number }> = [];
  readonly #installed = new Map<number, string>();
  readonly #faults: string[] = [];
  readonly #arenas: Arena[] = [];
  readonly #messages: number;
  readonly #trace: (line: string) => void;
  readonly #mutation: GroupSimOptions['mutation'];
  #tick = 0;
  /** Joiners still asking to enter, or proposed and not yet in a view. */
  #joiners: SimMember[] = [];
  readonly #swarm: GroupSimOptions['swarm'];
  /** Swarm mode: where each swarm joiner vanishes, by id. */
  readonly #vanishAt = new Map<number, 'proposed' | 'entered'>();

  constructor(options: GroupSimOptions) {
    this.seed = options.seed;
    this.#rand = prng(options.seed);
    this.n = options.members ?? 3 + Math.floor(this.#rand() * 7);
    this.#messages = options.messages ?? 40;
    this.#trace = options.trace ?? (() => {});
    this.#mutation = options.mutation;
    this.#swarm = options.swarm;
    if (this.#swarm && (this.#swarm.joiners < 1 || this.#swarm.joiners > MAX_JOINS_PER_CHANGE || this.n + this.#swarm.joiners > 12)) {
      throw new RangeError(`swarm: 1 to ${MAX_JOINS_PER_CHANGE} joiners, and at most 12 with the members (got ${this.#swarm.joiners} and ${this.n})`);
    }
    const ids = Array.from({ length: this.n }, (_, i) => i);
    this.#config = validateGroupConfig({
      members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })),
      subgroups: {
        log: { shards: 1, members: { min: 1, max: 16 }, maxSmcPayload: 16, maxMessageBytes: 16, window: 3 },
        feed: { shards: 1, members: { min: 1, max: 16 }, maxSmcPayload: 16, maxMessageBytes: 16, window: 4, mode: 'raw' },
      },
    });
    this.#members = ids.map((id) => this.#newMember(id));
    const view: ViewSpec = { vid: 0, members: ids };
    for (const m of this.#members) {
      m.current = this.#build(m, view);
      this.#adopt(m, m.current);
    }
    for (const m of this.#members) this.#connect(m, m.current!);
  }

  #newMember(id: number): SimMember {
    return {
      id, alive: true, side: 0, joining: null, current: null, next: null, handles: new Map(), stopped: null, leaving: null,
      delivered: Object.fromEntries(SUBGROUPS.map((g) => [g, []])), sent: Object.fromEntries(SUBGROUPS.map((g) => [g, 0])),
      dirty: true, suspected: new Set(), views: new Set(),
    };
  }

  /** Handles for the channels of `mv` that `m` has none for yet (every channel, for a joiner's first view). */
  #adopt(m: SimMember, mv: MemberView): void {
    for (const [name, channel] of mv.channels) {
      if (m.handles.has(name)) continue;
      const handle = new SubgroupChannel(name, m.id, channel);
      handle.onDeliver((sender, version, bytes) => this.#record(m, name, sender, version, bytes));
      m.handles.set(name, handle);
    }
  }

  /** Runs the scenario: load, faults for a while, then quiet until every live member settles. */
  run(): GroupSimResult {
    try {
      return this.#run();
    } finally {
      for (const a of this.#arenas.splice(0)) {
        a.u8.fill(0, map.DYNAMIC_BASE);
        freeArenas.push(a);
      }
    }
  }

  #run(): GroupSimResult {
    const r = this.#rand;
    const faultSteps: number[] = [];
    const joinSteps: number[] = [];
    let partitionAt = -1, leaveAt = -1;
    if (!this.#swarm) {
      const crashes = Math.floor(r() * Math.min(3, Math.ceil(this.n / 2)));
      const partition = r() < 0.3;
      for (let i = 0; i < crashes; i++) faultSteps.push(50 + Math.floor(r() * 2500));
      partitionAt = partition ? 50 + Math.floor(r() * 2500) : -1;
      leaveAt = r() < 0.25 ? 50 + Math.floor(r() * 2500) : -1;
      if (r() < 0.4) for (let i = 1 + Math.floor(r() * 3); i > 0; i--) joinSteps.push(50 + Math.floor(r() * 2500));
    }
    const swarmAt = this.#swarm ? 50 + Math.floor(r() * 500) : -1;
    const honestAt = this.#swarm ? 2500 : -1;
    const limit = 400_000;
    for (this.#tick = 0; this.#tick < limit; this.#tick++) {
      if (faultSteps.includes(this.#tick)) this.#crashOne();
      if (this.#tick === partitionAt) this.#partition();
      if (this.#tick === leaveAt) this.#leaveOne();
      for (const _ of joinSteps.filter((t) => t === this.#tick)) this.#arrive();
      if (this.#tick === swarmAt) {
        const { joiners, vanish } = this.#swarm!;
        for (let i = 0; i < joiners; i++) this.#arrive(vanish === 'mixed' ? (r() < 0.5 ? 'proposed' : 'entered') : vanish);
      }
      if (this.#tick === honestAt) this.#arrive();
      if (this.#swarm) this.#askTogether(); else this.#askAgain();
      for (const t of this.#timers.filter((x) => x.at <= this.#tick)) this.#suspect(t.who, t.whom, t.vid);
      this.#timers = this.#timers.filter((x) => x.at > this.#tick);
      const x = r();
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

  // ---- building views ---------------------------------------------------------------------------------

  #build(m: SimMember, view: ViewSpec, previousSize = view.members.length, joined: readonly number[] = [], previousVoters?: readonly number[]): MemberView {
    const plans: SubgroupPlan[] = planView(this.#config, view.members);
    const columns = multicastColumns(plans, view.members.length, MAILBOX_BYTES);
    const layout = new SstLayout(columns, view.members);
    const arena = freeArenas.pop() ?? Arena.create({ memberId: m.id, bytes: ARENA_BYTES });
    this.#arenas.push(arena);
    const fabric = this.#fabric(m, view.vid);
    const mailboxes = new Mailboxes(arena, fabric, layout, m.id, MAILBOX_BYTES);
    Atomics.store(arena.i32, layout.offsetOf(layout.rowOf(m.id), layout.column('vid')) >> 2, view.vid);
    const channels = new Map<string, ShardChannel>();
    for (const plan of plans) {
      ShardChannel.initialize(arena, layout, plan);
      channels.set(plan.name, new ShardChannel({
        arena, fabric, layout, selfId: m.id, plan, shardIndex: 0, mailboxes, rdmc: plan.shards[0]!.senders.map(() => null),
        schedule: () => { m.dirty = true; }, vid: view.vid,
      }));
    }
    const mv: MemberView = { view, arena, layout, channels, mailboxes, connected: false, ready: false, builtAt: this.#tick, protocol: null! };
    mv.protocol = new ViewChangeProtocol({
      arena, layout, fabric, selfId: m.id, view, plans, previousSize, ...(previousVoters ? { previousVoters } : {}),
      joined: this.#mutation === 'joiners-vote' ? [] : joined,
      wedge: () => { for (const c of channels.values()) c.wedge(); },
      ...(this.#mutation === 'max-trim' ? { trim: maxTrim } : this.#mutation === 'short-trim' ? { trim: shortTrim } : {}),
    });
    return mv;
  }

  /** The simulated fabric of member `m` in view `vid`: writes are copied now and land later. */
  #fabric(m: SimMember, vid: number): TableFabric {
    const sim = this;
    const peersOf = () => {
      const mv = m.current?.view.vid === vid ? m.current : m.next?.view.vid === vid ? m.next : null;
      return mv ? mv.view.members.filter((p) => p !== m.id) : [];
    };
    const arenaOf = () => (m.current?.view.vid === vid ? m.current.arena : m.next?.view.vid === vid ? m.next.arena : null);
    // One FIFO link per (view, sender, receiver, lane): the scheduler delivers from the links in a random
    // order, so writes on one lane land in order and the two lanes of a pair overtake each other freely.
    const send = (peer: number, offset: number, length: number, lane: Lane) => {
      const arena = arenaOf();
      if (!m.alive || !arena || !sim.#reachable(m.id, peer, vid)) return;
      const key = `${vid}:${m.id}:${peer}:${lane}`;
      let q = sim.#links.get(key);
      if (!q) sim.#links.set(key, q = []);
      q.push({ offset, bytes: arena.u8.slice(offset, offset + length) });
    };
    return {
      write(peer, offset, length, lane = Lane.Data) { send(peer, offset, length, lane); return WriteStatus.Ok; },
      writeBatch(peer, ranges, count, lane = Lane.Data) {
        for (let i = 0; i < count; i++) send(peer, ranges[2 * i]!, ranges[2 * i + 1]!, lane);
        return WriteStatus.Ok;
      },
      writeAll(offset, length, lane = Lane.Data) {
        const peers = peersOf();
        for (const p of peers) send(p, offset, length, lane);
        return peers.length;
      },
    };
  }

  /** A connection exists between a and b in view vid: both built it, both alive, same side. */
  #reachable(a: number, b: number, vid: number): boolean {
    const A = this.#members[a]!, B = this.#members[b]!;
    const built = (x: SimMember) => x.current?.view.vid === vid || x.next?.view.vid === vid;
    return A.alive && B.alive && A.side === B.side && built(A) && built(B);
  }

  /** Connects when every member of the view built its tables or is unreachable for good (then suspected). */
  #connect(m: SimMember, mv: MemberView): boolean {
    const waiting = mv.view.members.some((p) => {
      if (p === m.id) return false;
      const P = this.#members[p]!;
      const gone = !P.alive || P.side !== m.side || P.stopped !== null;
      return !gone && !(P.current?.view.vid === mv.view.vid || P.next?.view.vid === mv.view.vid);
    });
    if (waiting && this.#tick - mv.builtAt < CONNECT_TIMEOUT_TICKS) return false;
    mv.connected = true;
    m.views.add(mv.view.vid);
    if (m.next === mv) {
      m.current = mv;
      m.next = null;
      for (const [name, handle] of m.handles) handle.attach(mv.channels.get(name)!);
      this.#adopt(m, mv);
      if (m.joining) m.joining.state = 'in';
    }
    mv.protocol.announceInstalled();
    for (const p of mv.view.members) if (p !== m.id && !this.#reachable(m.id, p, mv.view.vid)) this.#suspect(m.id, p, mv.view.vid);
    m.dirty = true;
    return true;
  }

  #viewInstalled(view: ViewSpec): void {
    const members = view.members.join(',');
    const seen = this.#installed.get(view.vid);
    this.#trace(`t=${this.#tick} view ${view.vid} [${members}] installed`);
    check(seen === undefined || seen === members, `seed ${this.seed}: two views with vid ${view.vid}: [${seen}] and [${members}] (faults: ${this.#faults.join("; ")}; at ${this.#tick})`);
    this.#installed.set(view.vid, members);
  }

  // ---- what happens ---------------------------------------------------------------------------------------

  #record(m: SimMember, subgroup: string, sender: number, version: bigint, bytes: Uint8Array): void {
    check(m.stopped === null, `seed ${this.seed}: member ${m.id} delivered after it stopped (${m.stopped})`);
    const k = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
    m.delivered[subgroup]!.push(`${Number(version >> 32n)}:${sender}:${k}`);
  }

  #deliverOne(): void {
    // The k-th non-empty link, k uniform (two passes over the links, no arrays: this runs once per write).
    let nonEmpty = 0;
    for (const q of this.#links.values()) if (q.length > 0) nonEmpty++;
    if (nonEmpty === 0) return;
    let k = Math.floor(this.#rand() * nonEmpty);
    let key = '';
    for (const [name, q] of this.#links) if (q.length > 0 && k-- === 0) { key = name; break; }
    const [vid, from, to] = key.split(':').map(Number) as [number, number, number];
    const w = this.#links.get(key)!.shift()!;
    const dst = this.#members[to]!;
    if (!dst.alive || dst.side !== this.#members[from]!.side) return;
    const mv = dst.current?.view.vid === vid ? dst.current : dst.next?.view.vid === vid ? dst.next : null;
    if (!mv) return; // the receiver closed that view's tables
    mv.arena.u8.set(w.bytes, w.offset);
    dst.dirty = true;
  }

  #stepOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length === 0) return;
    const dirty = live.filter((m) => m.dirty);
    const pool = dirty.length > 0 && this.#rand() < 0.8 ? dirty : live;
    const m = pool[Math.floor(this.#rand() * pool.length)]!;
    m.dirty = false;
    this.#step(m);
  }

  /** What Group.#stepAll does, for one member. */
  #step(m: SimMember): void {
    if (m.next && !m.next.connected) this.#connect(m, m.next);
    const mv = m.current;
    if (!mv) return; // a joiner before its first view
    if (mv.connected && !mv.ready && mv.protocol.allInstalled()) {
      mv.ready = true;
      this.#viewInstalled(mv.view); // installed: the start barrier passed
    }
    if (mv.ready) {
      mv.mailboxes.poll(() => {});
      for (const c of mv.channels.values()) c.step();
    }
    if (m.next) return; // installing
    if (m.leaving === 'wanted' && [...m.handles.values()].every((h) => h.settled)) {
      m.leaving = 'asked'; // as Group.#askToLeave: nothing it sent is left behind
      mv.protocol.leave();
    }
    const result = mv.protocol.step();
    if (!result) return;
    if (result.type === 'commit') this.#apply(m, mv, result.change);
    else this.#stop(m, result.type === 'suspected' ? 'removed' : result.type === 'dissolved' ? 'left' : 'partitioned');
  }

  /** A committed change, as Group.#install applies it. */
  #apply(m: SimMember, mv: MemberView, change: Change): void {
    for (const [name, handle] of m.handles) {
      const before = m.delivered[name]!.length;
      const { unsent, deliveredBeyond } = mv.channels.get(name)!.finishView(change.trims, change.next.members.includes(m.id));
      this.#trace(`t=${this.#tick} member ${m.id} applies proposal ${change.proposal} of view ${mv.view.vid}: removes ${change.removed.join(',')}; ${name}: trim ${JSON.stringify(change.trims[SUBGROUPS.indexOf(name as (typeof SUBGROUPS)[number])]![0])}, delivers ${m.delivered[name]!.length - before} more (${m.delivered[name]!.length} in all), sends ${unsent.length} again`);
      handle.detach(this.#mutation === 'no-resend' ? [] : unsent, deliveredBeyond);
    }
    // As Group.#install: the barrier counts the old view's voters (its own joiners did not count there).
    const previousVoters = this.#mutation === 'barrier-own-view' ? undefined : mv.protocol.votersAmong(mv.view.members.filter((x) => !change.left.includes(x)));
    const previousSize = previousVoters?.length ?? change.next.members.length;
    const joined = change.joined.map((j) => j.id);
    // The proposer tells its joiners the view (Group.#admit); those its change does not have ask again.
    for (const j of this.#joiners) {
      if (j.joining!.state !== 'proposed' || j.joining!.proposer !== m.id) continue;
      if (change.proposer === m.id && joined.includes(j.id) && j.alive) {
        this.#trace(`t=${this.#tick} joiner ${j.id} enters view ${change.next.vid}`);
        j.next = this.#build(j, change.next, previousSize, joined, previousVoters);
        j.dirty = true;
        if (this.#vanishAt.get(j.id) === 'entered') this.#crash(j); // built its view, never connects
      } else {
        j.joining!.state = 'asking';
      }
    }
    if (!change.next.members.includes(m.id)) { this.#stop(m, m.leaving ? 'left' : 'removed'); return; }
    m.next = this.#build(m, change.next, previousSize, joined, previousVoters);
    m.dirty = true;
    for (const p of change.next.members) this.#members[p]!.dirty = true;
  }

  // ---- joins ----------------------------------------------------------------------------------------------

  /** A new member arrives and asks to join (through a contact server, which passes it on to the leader). */
  #arrive(vanish?: 'proposed' | 'entered'): void {
    const j = this.#newMember(this.#members.length);
    if (vanish) this.#vanishAt.set(j.id, vanish);
    j.joining = { state: 'asking', proposer: -1, retryAt: this.#tick, tries: 0 };
    this.#members.push(j);
    this.#joiners.push(j);
    this.#faults.push(`join ${j.id} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} member ${j.id} asks to join`);
  }

  /** Joiners ask the leader again when due; the leader takes them unless a change is under way. */
  #askAgain(): void {
    for (const j of this.#joiners) {
      const state = j.joining!;
      if (state.state === 'proposed') {
        const proposer = this.#members[state.proposer]!;
        if (!proposer.alive || proposer.stopped !== null) state.state = 'asking'; // its connection broke
      }
      if (state.state !== 'asking' || state.retryAt > this.#tick || !j.alive || j.stopped !== null) continue;
      const leader = this.#members.find((m) => m.alive && m.stopped === null && m.side === j.side && m.current?.ready && !m.next
        && m.current.protocol.leader() === m.id);
      if (leader && leader.current!.protocol.join([{ id: j.id, host: 'sim' }])) {
        state.state = 'proposed';
        state.proposer = leader.id;
        leader.dirty = true;
        this.#trace(`t=${this.#tick} member ${leader.id} takes joiner ${j.id} into its next proposal`);
      } else if (++state.tries > 400) {
        this.#stop(j, 'join gave up');
      } else {
        state.retryAt = this.#tick + 30 + Math.floor(this.#rand() * 100);
      }
    }
    this.#joiners = this.#joiners.filter((j) => j.joining!.state !== 'in' && j.stopped === null && j.alive);
  }

  /**
   * Swarm mode: the joiners due ask together and the leader takes them in one change (as Group.#flushJoins
   * batches the requests that arrive together); one that is to vanish once taken crashes at once.
   */
  #askTogether(): void {
    for (const j of this.#joiners) {
      const state = j.joining!;
      if (state.state === 'proposed' && (!this.#members[state.proposer]!.alive || this.#members[state.proposer]!.stopped !== null)) state.state = 'asking';
    }
    const due = this.#joiners.filter((j) => j.joining!.state === 'asking' && j.joining!.retryAt <= this.#tick && j.alive && j.stopped === null).slice(0, MAX_JOINS_PER_CHANGE);
    if (due.length > 0) {
      const leader = this.#members.find((m) => m.alive && m.stopped === null && m.current?.ready && !m.next && m.current.protocol.leader() === m.id);
      if (leader && leader.current!.protocol.join(due.map((j) => ({ id: j.id, host: 'sim' })))) {
        this.#trace(`t=${this.#tick} member ${leader.id} takes joiners ${due.map((j) => j.id).join(',')} into its next proposal`);
        leader.dirty = true;
        for (const j of due) {
          j.joining = { ...j.joining!, state: 'proposed', proposer: leader.id };
          if (this.#vanishAt.get(j.id) === 'proposed') this.#crash(j);
        }
      } else {
        const retryAt = this.#tick + 30 + Math.floor(this.#rand() * 100); // together again
        for (const j of due) {
          if (++j.joining!.tries > 400) this.#stop(j, 'join gave up');
          else j.joining!.retryAt = retryAt;
        }
      }
    }
    this.#joiners = this.#joiners.filter((j) => j.joining!.state !== 'in' && j.stopped === null && j.alive);
  }

  #stop(m: SimMember, why: string): void {
    m.stopped = why;
    this.#trace(`t=${this.#tick} member ${m.id} stops: ${why}`);
    for (const h of m.handles.values()) h.stop(new Error(why));
  }

  #sendOne(): void {
    const senders = this.#members.flatMap((m) => (m.alive && m.stopped === null && !m.leaving && m.handles.size > 0 ? SUBGROUPS.filter((g) => m.sent[g]! < this.#messages).map((g) => ({ m, g })) : []));
    if (senders.length === 0) return;
    const { m, g } = senders[Math.floor(this.#rand() * senders.length)]!;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setUint32(0, m.sent[g]!++, true);
    m.handles.get(g)!.send(bytes).catch(() => {});
    m.dirty = true;
  }

  #suspect(who: number, whom: number, vid: number): void {
    const m = this.#members[who]!;
    if (!m.alive || m.stopped !== null || m.current?.view.vid !== vid || m.suspected.has(`${vid}:${whom}`)) return;
    if (!m.current.view.members.includes(whom)) return;
    m.suspected.add(`${vid}:${whom}`);
    this.#trace(`t=${this.#tick} member ${who} suspects ${whom} in view ${vid}`);
    m.current.protocol.suspect(whom);
    m.dirty = true;
  }

  /** Every live member that sees `victim` as a peer suspects it after a random delay (its heartbeat stalls). */
  #scheduleSuspicion(victim: number): void {
    for (const m of this.#members) {
      if (m.id === victim || !m.alive) continue;
      const vids = [m.current?.view.vid, m.next?.view.vid].filter((v): v is number => v !== undefined);
      for (const vid of vids) this.#timers.push({ at: this.#tick + 20 + Math.floor(this.#rand() * 400), who: m.id, whom: victim, vid });
    }
  }

  /** A live member leaves cleanly (Group.leave()). */
  #leaveOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null && !m.leaving);
    if (live.length <= 1) return;
    const m = live[Math.floor(this.#rand() * live.length)]!;
    m.leaving = 'wanted';
    for (const h of m.handles.values()) h.refuseSends(new Error('leaving'));
    m.dirty = true;
    this.#faults.push(`leave ${m.id} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} member ${m.id} leaves`);
  }

  #crashOne(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length <= 1) return;
    this.#crash(live[Math.floor(this.#rand() * live.length)]!);
  }

  #crash(victim: SimMember): void {
    victim.alive = false;
    this.#faults.push(`crash ${victim.id} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} crash ${victim.id}`);
    // Each of its links keeps a random prefix of what it had queued; links to it are dead.
    for (const [key, q] of this.#links) {
      const [, from, to] = key.split(':').map(Number);
      if (from === victim.id) q.splice(Math.floor(this.#rand() * (q.length + 1)));
      if (to === victim.id) q.length = 0;
    }
    this.#scheduleSuspicion(victim.id); // and a later view that still has it suspects it on connecting
  }

  #partition(): void {
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.length < 3) return;
    const minority = Math.max(1, Math.floor(this.#rand() * Math.ceil(live.length / 2)));
    const cut = new Set(live.slice().sort(() => this.#rand() - 0.5).slice(0, minority).map((m) => m.id));
    for (const m of this.#members) if (cut.has(m.id)) m.side = 1;
    this.#faults.push(`partition {${[...cut].join(',')}} at ${this.#tick}`);
    this.#trace(`t=${this.#tick} partition {${[...cut].join(',')}}`);
    for (const [key, q] of this.#links) {
      const [, from, to] = key.split(':').map(Number) as [number, number, number];
      if (cut.has(from) !== cut.has(to)) q.splice(Math.floor(this.#rand() * (q.length + 1)));
    }
    for (const a of this.#members) for (const b of this.#members) {
      if (a.alive && b.alive && a.side !== b.side) {
        for (const vid of [a.current?.view.vid, a.next?.view.vid].filter((v): v is number => v !== undefined)) {
          this.#timers.push({ at: this.#tick + 20 + Math.floor(this.#rand() * 400), who: a.id, whom: b.id, vid });
        }
      }
    }
  }

  /** Nothing in flight, no member installing, every live unstopped member in the same view with nothing queued. */
  #settled(): boolean {
    if ([...this.#links.values()].some((q) => q.length > 0) || this.#timers.length > 0 || this.#joiners.length > 0) return false;
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    if (live.some((m) => m.dirty || m.next !== null || SUBGROUPS.some((g) => m.sent[g]! < this.#messages || m.handles.get(g)!.queued > 0))) return false;
    const vid = live[0]?.current?.view.vid;
    return live.every((m) => m.current?.view.vid === vid && !m.current?.protocol.wedged);
  }

  // ---- the checks -----------------------------------------------------------------------------------------

  #checkAll(): void {
    if (this.#swarm) this.#checkSwarm();
    for (const g of SUBGROUPS) this.#checkSubgroup(g, RAW.has(g));
  }

  /** Swarm mode: the vanished joiners cost the members nothing but a change; the honest joiner got in. */
  #checkSwarm(): void {
    const s = this.seed;
    const swarm = `${this.#swarm!.joiners} joiners vanishing (${[...this.#vanishAt.values()].join(',')})`;
    for (const m of this.#members.slice(0, this.n)) check(m.stopped === null, `seed ${s}: member ${m.id} of view 0 stopped (${m.stopped}) after ${swarm}`);
    const honest = this.#members[this.#members.length - 1]!;
    check(!this.#vanishAt.has(honest.id) && honest.joining?.state === 'in' && honest.stopped === null, `seed ${s}: the honest joiner ${honest.id} did not get in after ${swarm} (${honest.stopped ?? honest.joining?.state})`);
    const final = this.#members[0]!.current!.view;
    check(final.members.every((id) => this.#members[id]!.alive), `seed ${s}: view ${final.vid} [${final.members.join(',')}] still holds a vanished joiner after ${swarm}`);
  }

  /**
   * The checks of one subgroup. Ordered: per view, every member's sequence is a prefix of the longest, and
   * members that went on past the view delivered all of it. Raw (delivery on receipt, each sender's order):
   * each sender's messages once each, in order, at every member — across views, since a message one member
   * delivered on receipt may reach another only when its sender sends it again in the next view — and all
   * of a live sender's everywhere in the end.
   */
  #checkSubgroup(g: string, raw: boolean): void {
    const s = this.seed;
    const parse = (d: string) => d.split(':').map(Number) as [number, number, number];
    const vids = [...new Set(this.#members.flatMap((m) => m.delivered[g]!.map((d) => parse(d)[0])))];
    const streams = (m: SimMember, vid: number): Map<string, string[]> => {
      const out = new Map<string, string[]>();
      for (const d of m.delivered[g]!) {
        const [v, sender] = parse(d);
        if (v !== vid) continue;
        const key = raw ? `sender ${sender}` : 'all';
        if (!out.has(key)) out.set(key, []);
        out.get(key)!.push(d);
      }
      return out;
    };
    for (const vid of raw ? [] : vids) {
      const per = this.#members.map((m) => streams(m, vid));
      for (const key of new Set(per.flatMap((p) => [...p.keys()]))) {
        const seqs = per.map((p) => p.get(key) ?? []);
        const longest = seqs.reduce((a, b) => (b.length > a.length ? b : a));
        for (const [i, seq] of seqs.entries()) {
          for (let k = 0; k < seq.length; k++) check(seq[k] === longest[k], `seed ${s}: ${g}: member ${i} delivered ${seq[k]} at position ${k} of view ${vid} (${key}), another member ${longest[k]}`);
          const m = this.#members[i]!;
          const wentOn = m.views.has(vid) && (m.current?.view.vid ?? -1) > vid && m.stopped === null;
          if (wentOn) check(seq.length === longest.length, `seed ${s}: ${g}: member ${i} left view ${vid} having delivered ${seq.length} of its ${longest.length} messages (${key}; virtual synchrony)`);
        }
      }
    }
    // Sender order: each member delivers each sender's messages in order, once each.
    for (const m of this.#members) {
      const next = new Map<number, number>();
      for (const d of m.delivered[g]!) {
        const [, sender, k] = parse(d);
        const want = next.get(sender) ?? (m.joining ? k : 0); // a joiner starts where its first view does
        check(k === want, `seed ${s}: ${g}: member ${m.id} delivered message ${k} of sender ${sender} where ${want} was due`);
        next.set(sender, want + 1);
      }
    }
    // Liveness: the live members that did not stop settled in one view and delivered everything they sent.
    const live = this.#members.filter((m) => m.alive && m.stopped === null);
    check(live.length > 0 || this.#faults.length > 0, `seed ${s}: every member stopped without a fault`);
    check(this.#settled(), `seed ${s}: the live members did not settle (faults: ${this.#faults.join('; ')}; views: ${live.map((m) => `${m.id}@${m.current?.view.vid}${m.next ? `→${m.next.view.vid}` : ''}${m.current?.protocol.wedged ? ' wedged' : ''}`).join(', ')})`);
    for (const m of live) {
      for (const sender of live) {
        const ks = m.delivered[g]!.filter((d) => parse(d)[1] === sender.id).map((d) => parse(d)[2]);
        const from = m.joining ? (ks[0] ?? this.#messages) : 0; // sender order (above) makes the rest consecutive
        check(ks.length === this.#messages - from, `seed ${s}: ${g}: member ${m.id} delivered ${ks.length} of live sender ${sender.id}'s ${this.#messages - from} messages from its ${from}th`);
      }
      // A member that left cleanly left nothing behind: everything it sent is delivered here.
      for (const leaver of m.joining ? [] : this.#members.filter((x) => x.stopped === 'left')) {
        const count = m.delivered[g]!.filter((d) => parse(d)[1] === leaver.id).length;
        check(count === leaver.sent[g], `seed ${s}: ${g}: member ${m.id} delivered ${count} of the ${leaver.sent[g]} messages member ${leaver.id} sent before it left`);
      }
    }
  }
}

/** The wrong trim of mutation 'max-trim': per sender, the most any live member received. */
function maxTrim(rows: ReadonlyArray<ArrayLike<number>>): number[] {
  return Array.from({ length: rows[0]?.length ?? 0 }, (_, r) => Math.max(...rows.map((row) => row[r]!)));
}

/** The wrong trim of mutation 'short-trim': one message short of the ragged trim. */
function shortTrim(rows: ReadonlyArray<ArrayLike<number>>): number[] {
  return raggedTrim(rows).map((t) => Math.max(-1, t - 1));
}

/** Runs `runs` seeds from `firstSeed`; returns the results (a violation throws, naming its seed). */
export function runGroupSims(firstSeed: number, runs: number, options: Omit<GroupSimOptions, 'seed'> = {}): GroupSimResult[] {
  const out: GroupSimResult[] = [];
  for (let seed = firstSeed; seed < firstSeed + runs; seed++) out.push(new GroupSim({ ...options, seed }).run());
  return out;
}
