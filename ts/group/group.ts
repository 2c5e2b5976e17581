// A member of a squall group (DESIGN.md §8): one process's share of every subgroup it serves. Each view
// runs on its own ViewEngine (ts/group/view-engine.ts) — one arena with the view's SST and RDMC groups, one
// fabric, the workers, the shard channels — and the handles users hold (group.channel, group.subgroup)
// carry over from view to view.
//
//   const group = await Group.join({ id: 1, config: 'cluster.json', types: { tickets: TicketBook } });
//   const tickets = group.subgroup<TicketBook>('tickets');
//   const replies = await tickets.ordered.book('t-17', 'alice');   // one reply per member of the shard
//   const holder = await tickets.query(0).holder('t-17');           // ask one member
//   group.on('view', (view) => console.log('view', view.vid, view.members));
//
// Membership (DESIGN.md §6): the configuration's members form view 0. When a member fails (its heartbeat
// stalls or its connection breaks) or leaves, the view-change protocol (ts/membership/protocol.ts) wedges
// every member, agrees on the removals, delivers up to the ragged trim, and installs view vid + 1 with the
// failed members gone; each sender sends again what the old view did not deliver. A member left with a
// minority of its view stops with PartitionedError.

import { EventEmitter } from 'node:events';
import { parseAddress, formatAddress } from '../address.js';
import { ClosedError, ConfigError, PartitionedError, RemovedError } from '../errors.js';
import type { FabricChoice } from '../fabric/choice.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { Change } from '../membership/protocol.js';
import { ReplicatedObject, type ReplicatedType } from '../objects/replicated-object.js';
import { loadGroupConfig, planView, validateGroupConfig, type GroupConfig, type SubgroupPlan } from './config.js';
import { SpareWorkers } from '../member/spare-workers.js';
import { SubgroupChannel } from './subgroup-channel.js';
import { ViewEngine, type MembershipRow } from './view-engine.js';

/** A class whose instances a subgroup replicates: constructed with no arguments at every member. */
export type ReplicatedClass<T extends object = object> = (new () => T) & ReplicatedType<T>;

export interface JoinOptions {
  /** This member's id (one of the configuration's members). */
  id: number;
  /** The configuration, or the path of a JSON file holding it. */
  config: GroupConfig | string;
  /** Overrides this member's configured address for binding (e.g. '0.0.0.0:7000'). */
  listen?: string;
  /** The class each subgroup replicates, by subgroup name; subgroups without one are channels only. */
  types?: Record<string, ReplicatedClass>;
  /** Heartbeat interval and suspicion timeout (DESIGN.md §9). Defaults 10 ms / 100 ms. */
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  /** How long join waits for every member to be connected, and a new view for its members. Default 30 s. */
  connectTimeoutMs?: number;
  /** Bytes of each point-to-point mailbox (queries, replies); a message may take half. Default 1 MiB. */
  mailboxBytes?: number;
  /** Time limit of each replicated-object call in ms; default no limit. */
  callTimeoutMs?: number;
  /** Native backend (default: SQUALL_FABRIC, else tcp; see RuntimeOptions.fabric); the same at every member. */
  fabric?: FabricChoice;
}

export interface View {
  vid: number;
  members: readonly number[];
}

export interface GroupEvents {
  /** A member of the current view failed or was suspected; a view change that removes it follows. */
  memberFailed: [member: number, reason: string];
  /** A new view is installed here: `removed` left it (failed, or left cleanly). */
  view: [view: View, removed: number[]];
  /** This member lost a majority of its view: it has stopped (partition safety). */
  partitioned: [error: PartitionedError];
  /** The group went on without this member (it was suspected by the others): it has stopped. */
  removed: [error: RemovedError];
  /** A worker died, or a message could not be decoded. */
  error: [error: Error];
}

const DEFAULT_MAILBOX_BYTES = 1 << 20;

export class Group extends EventEmitter<GroupEvents> {
  readonly id: number;
  readonly config: GroupConfig;
  readonly #options: JoinOptions;
  readonly #host: string;
  #engine: ViewEngine;
  /** The previous view's engine while the next one connects (its mailboxes still carry replies). */
  #previous: ViewEngine | null = null;
  readonly #handles = new Map<string, SubgroupChannel>();
  readonly #objects = new Map<string, ReplicatedObject<object>>();
  readonly #types: Record<string, ReplicatedClass>;
  readonly #mailboxBytes: number;
  readonly #failed = new Set<number>();
  /** Why this member can go no further (partitioned, removed, a view it cannot build); null while it runs. */
  #stopped: Error | null = null;
  #installing = false;
  #leaving: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void>; asked: boolean } | null = null;
  #stepScheduled = false;
  #closed = false;
  /** Milliseconds from the commit to each phase of the last install here (status()). */
  #lastInstall: Record<string, number> | null = null;
  /** Warm workers for the next view's engine, started once the current view runs. */
  readonly #spares = new SpareWorkers();
  /** Waiting for the next view's ports to appear in the old table (#nextAddresses); woken by each step. */
  readonly #portWaiters: Array<() => void> = [];

  /** Joins the group: binds, lays out the arena, connects to every member, starts the protocol. */
  static async join(options: JoinOptions): Promise<Group> {
    const group = new Group(options);
    try {
      await group.#engine.connectAll();
      group.#engine.start(() => group.#stepAll());
      group.#stepAll();
      await group.#engine.whenReady(options.connectTimeoutMs ?? 30_000);
    } catch (error) {
      await group.close();
      throw error;
    }
    group.#fillSpares();
    return group;
  }

  private constructor(options: JoinOptions) {
    super();
    const config = typeof options.config === 'string' ? loadGroupConfig(options.config) : validateGroupConfig(options.config);
    const self = config.members.find((m) => m.id === options.id);
    if (!self) throw new ConfigError(`member ${options.id} is not in the configuration's members (${config.members.map((m) => m.id).join(', ')}); pass one of those ids`);
    this.id = options.id;
    this.config = config;
    this.#options = options;
    this.#types = options.types ?? {};
    for (const name of Object.keys(this.#types)) if (!(name in config.subgroups)) throw new ConfigError(`types names subgroup '${name}', which the configuration does not have (subgroups: ${Object.keys(config.subgroups).join(', ')})`);
    this.#mailboxBytes = options.mailboxBytes ?? DEFAULT_MAILBOX_BYTES;
    if (!Number.isInteger(this.#mailboxBytes) || this.#mailboxBytes < 4096 || this.#mailboxBytes % 8 !== 0) throw new ConfigError(`mailboxBytes must be a multiple of 8 and at least 4096, got ${this.#mailboxBytes}`);
    const listen = options.listen ?? self.address;
    this.#host = parseAddress(listen, 'listen').host;
    const ids = config.members.map((m) => m.id);
    this.#engine = this.#newEngine({ vid: 0, members: ids }, planView(config, ids), listen);
    this.#engine.listen(config.members);
    for (const [name, channel] of this.#engine.channels) this.#handles.set(name, new SubgroupChannel(name, this.id, channel));
    // Objects exist before the first delivery, so no command finds a shard without its replica.
    for (const name of Object.keys(this.#types)) if (this.#handles.has(name)) this.subgroup(name);
  }

  /** Starts warm workers for the next view: a predicate worker, and an rdmc worker if messages can be large. */
  #fillSpares(): void {
    const large = this.plans.some((p) => p.maxMessageBytes > p.maxSmcPayload);
    this.#spares.fill(large ? ['predicate', 'rdmc'] : ['predicate']);
  }

  #newEngine(view: View, plans: readonly SubgroupPlan[], listen: string, previousSize?: number): ViewEngine {
    const o = this.#options;
    return new ViewEngine({
      selfId: this.id, view, plans, listen, ...(previousSize ? { previousSize } : {}), mailboxBytes: this.#mailboxBytes, spares: this.#spares,
      connectTimeoutMs: o.connectTimeoutMs ?? 30_000,
      ...(o.heartbeatIntervalMs ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}),
      ...(o.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs } : {}),
      ...(o.fabric ? { fabric: o.fabric } : {}),
      schedule: () => this.#schedule(),
      memberFailed: (engine, member, reason) => this.#memberFailed(engine, member, reason),
      error: (error) => this.emit('error', error),
    });
  }

  /** The current view. */
  get view(): View { return this.#engine.view; }

  /** The current view's plan: which member is in which shard of each subgroup. */
  get plans(): readonly SubgroupPlan[] { return this.#engine.plans; }

  /** Members of the current view this member has found failed. */
  get failed(): number[] { return [...this.#failed].filter((m) => this.view.members.includes(m)); }

  /** Set once this member finds itself in a minority of its view; it delivers nothing more then. */
  get partitioned(): PartitionedError | null { return this.#stopped instanceof PartitionedError ? this.#stopped : null; }

  /** The address this member accepts connections on in the current view. */
  get address(): string { return this.#engine.runtime.address; }

  /** Names of the subgroups this member serves. */
  get subgroups(): string[] { return [...this.#handles.keys()]; }

  /**
   * This member's shard of subgroup `name` as a replicated object of the class given in `types` (or
   * `type`): ordered calls, queries, replies.
   */
  subgroup<T extends object>(name: string, type?: ReplicatedClass<T>): ReplicatedObject<T> {
    this.#checkOpen();
    const existing = this.#objects.get(name);
    if (existing) return existing as ReplicatedObject<T>;
    const channel = this.channel(name);
    const cls = (type ?? this.#types[name]) as ReplicatedClass<T> | undefined;
    if (!cls) throw new ConfigError(`subgroup '${name}' has no class: pass types: { ${name}: YourClass } to Group.join, or group.subgroup('${name}', YourClass)`);
    const object = ReplicatedObject.attach(new cls(), channel, {
      type: cls, maxMessageBytes: channel.maxMessageBytes,
      ...(this.#options.callTimeoutMs ? { timeoutMs: this.#options.callTimeoutMs } : {}),
      onError: (error) => this.emit('error', error),
    });
    this.#objects.set(name, object as ReplicatedObject<object>);
    return object;
  }

  /** This member's shard of subgroup `name` as a channel of bytes: send(), onDeliver(), sendTo(), onDirect(). */
  channel(name: string): SubgroupChannel {
    this.#checkOpen();
    const channel = this.#handles.get(name);
    if (channel) return channel;
    if (!(name in this.config.subgroups)) throw new ConfigError(`no subgroup '${name}'; the configuration has: ${Object.keys(this.config.subgroups).join(', ')}`);
    throw new ConfigError(`member ${this.id} is in no shard of subgroup '${name}'`);
  }

  /**
   * Leaves the group cleanly (DESIGN.md §6): sends from now on reject with RemovedError; once every message
   * this member sent is delivered, the others install a view without it, every message of the current view
   * is delivered here first, and this member closes. Resolves once it has.
   */
  leave(): Promise<void> {
    this.#checkOpen();
    if (this.#leaving) return this.#leaving.promise;
    let resolve!: () => void, reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    this.#leaving = { resolve, reject, promise, asked: false };
    const refused = new RemovedError(this.id, this.view.vid + 1, true);
    for (const h of this.#handles.values()) h.refuseSends(refused);
    this.#schedule();
    return promise;
  }

  /** A leaving member asks to be removed once what it sent is delivered (nothing of it is left behind). */
  #askToLeave(engine: ViewEngine): void {
    if (!this.#leaving || this.#leaving.asked || this.#installing) return;
    for (const h of this.#handles.values()) if (!h.settled) return; // the next arrivals step again
    this.#leaving.asked = true;
    engine.protocol.leave();
  }

  /** Stops every shard, the workers and the fabric. Calls in flight reject with ClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const o of this.#objects.values()) o.close();
    for (const h of this.#handles.values()) h.stop(new ClosedError('this group'));
    await this.#previous?.close();
    await this.#engine.close();
    await this.#spares.close();
    this.#leaving?.reject(new ClosedError('this group'));
  }

  /**
   * This member's copy of every row's membership columns in the current view, by member id: whom that
   * member suspects and whether it is wedged. (A row of a failed member holds what last arrived from it.)
   */
  membership(): MembershipRow[] {
    return this.#engine.membership();
  }

  /** Where this member is: the view, whether a change is being installed, and the previous view's rows. */
  status(): { vid: number; members: readonly number[]; installing: boolean; stopped: string | null; lastInstall: Record<string, number> | null; previous: MembershipRow[] | null; subgroups: Record<string, unknown> } {
    return {
      vid: this.view.vid, members: this.view.members, installing: this.#installing, stopped: this.#stopped?.message ?? null,
      lastInstall: this.#lastInstall,
      previous: this.#previous && !this.#previous.closed ? this.#previous.membership() : null,
      subgroups: Object.fromEntries([...this.#handles].map(([name, h]) => [name, h.state()])),
    };
  }

  #schedule(): void {
    if (this.#stepScheduled || this.#closed) return;
    this.#stepScheduled = true;
    setImmediate(() => {
      this.#stepScheduled = false;
      this.#stepAll();
    });
  }

  #stepAll(): void {
    if (this.#closed) return;
    const previous = this.#previous;
    if (previous && !previous.closed) {
      previous.mailboxes.poll((from, tag, bytes) => this.#directTo(previous, tag, from, bytes));
      for (const w of this.#portWaiters.splice(0)) w(); // the old table carries the next view's ports
    }
    const engine = this.#engine;
    if (engine.closed) return;
    // Shards and mailboxes write to peers: only once every member is connected to every other.
    if (engine.checkReady()) {
      engine.mailboxes.poll((from, tag, bytes) => this.#directTo(engine, tag, from, bytes));
      for (const channel of engine.channels.values()) channel.step();
    }
    if (this.#installing || this.#stopped) return;
    if (this.#leaving) this.#askToLeave(engine);
    if (engine.protocol.wedged) {
      // Others' suspicions count as this member's (they are OR-ed): report each once, as if detected here.
      for (const m of engine.protocol.suspects()) if (m !== this.id) this.#memberFailed(engine, m, 'SUSPECTED_BY_PEER', false);
    }
    const result = engine.protocol.step();
    if (!result) return;
    if (result.type === 'partitioned') this.#partition(engine, result.unreachable);
    else void this.#install(engine, result.change);
  }

  #directTo(engine: ViewEngine, tag: number, from: number, bytes: Uint8Array): void {
    const channel = engine.byTag.get(tag);
    if (channel) this.#handles.get(channel.subgroup)?.direct(from, bytes);
  }

  #memberFailed(engine: ViewEngine, member: number, reason: string, step = true): void {
    if (this.#closed || engine !== this.#engine || engine.protocol.applied) return;
    if (!engine.view.members.includes(member) || this.#failed.has(member)) return;
    this.#failed.add(member);
    engine.mailboxes.fail(member, reason);
    engine.protocol.suspect(member);
    this.emit('memberFailed', member, reason);
    if (step) this.#stepAll();
  }

  #partition(engine: ViewEngine, unreachable: number[]): void {
    const error = new PartitionedError(this.id, engine.view.vid, engine.view.members.length, unreachable);
    this.#stop(error);
    this.emit('partitioned', error);
  }

  #stop(error: Error): void {
    this.#stopped = error;
    for (const h of this.#handles.values()) h.stop(error);
  }

  // ---- installing the next view -----------------------------------------------------------------------

  /**
   * A change was committed: deliver exactly the old view's messages inside the trim, then build the next
   * view's engine, publish its port in the old table, learn the others' ports there, connect, and hand the
   * handles the new channels with what the old view did not deliver.
   */
  async #install(old: ViewEngine, change: Change): Promise<void> {
    this.#installing = true;
    const T: Array<[string, number]> = [['commit', performance.now()]]; // phases, for status().lastInstall
    for (const [name, handle] of this.#handles) {
      const end = old.channels.get(name)?.finishView(change.trims);
      handle.detach(end?.unsent ?? [], end?.deliveredBeyond);
    }
    T.push(['trimmed', performance.now()]);
    const next = change.next;
    if (!next.members.includes(this.id)) return this.#removed(next.vid);

    let engine: ViewEngine;
    try {
      engine = this.#newEngine(next, planView(this.config, next.members), `${formatHost(this.#host)}:0`, old.view.members.length - change.left.length);
    } catch (error) {
      this.#stop(error as Error);
      this.emit('error', error as Error);
      return;
    }
    T.push(['engine', performance.now()]);
    this.#previous = old;
    // Peers' ports are not known yet: the grants and the layout are, and those are what expect() needs.
    engine.listen(next.members.map((id) => ({ id, address: id === this.id ? engine.runtime.address : `${formatHost(this.#host)}:1` })));
    old.protocol.publishNextPort(change.proposal, engine.port);
    T.push(['published', performance.now()]);
    const timeoutMs = this.#options.connectTimeoutMs ?? 30_000;
    const addresses = await this.#nextAddresses(old, engine, change, timeoutMs);
    T.push(['ports', performance.now()]);
    if (this.#closed) { await engine.close(); return; }
    // A member that dies after publishing its port is not waited for either (it may be the one to dial).
    const unreachable = await engine.connectReachable(addresses, timeoutMs, (peer) => old.gone().has(peer))
      .catch(() => next.members.filter((m) => m !== this.id));
    T.push(['connected', performance.now()]);
    if (this.#closed) { await engine.close(); return; }
    this.#engine = engine;
    for (const [name, handle] of this.#handles) {
      const channel = engine.channels.get(name);
      if (channel) handle.attach(channel);
      else handle.stop(new ConfigError(`member ${this.id} serves no shard of subgroup '${name}' in view ${next.vid}`));
    }
    this.#installing = false;
    engine.start(() => this.#stepAll());
    for (const m of next.members) if (m !== this.id && !addresses.some((a) => a.id === m)) unreachable.push(m);
    for (const m of new Set(unreachable)) this.#memberFailed(engine, m, 'UNREACHABLE');
    this.#stepAll();
    for (const handle of this.#handles.values()) for (const m of change.removed) handle.memberGone(m);
    // Installed once the start barrier passes (more than half of the old view connected in the new one).
    // The old view closes once the new one passed its barrier: until then a member still connecting must not
    // see this one's old connections break, which would look like a failure (see connectReachable above).
    const passed = await engine.whenReady(timeoutMs).then(() => true, () => false);
    if (passed && this.#engine === engine && !this.#closed) {
      T.push(['ready', performance.now()]);
      this.#lastInstall = Object.fromEntries(T.map(([phase, t]) => [phase, Math.round((t - T[0]![1]) * 100) / 100]));
      this.emit('view', next, change.removed);
    }
    if (this.#previous === old) this.#previous = null;
    await old.close();
    this.#fillSpares();
  }

  /**
   * The next view's members with the ports they published in the old table; a member the old view
   * suspects (it failed after the commit) is left out, and the new view removes it.
   */
  async #nextAddresses(old: ViewEngine, engine: ViewEngine, change: Change, timeoutMs: number): Promise<MemberAddress[]> {
    const deadline = performance.now() + timeoutMs;
    const host = (id: number) => parseAddress(this.config.members.find((m) => m.id === id)?.address ?? `${this.#host}:1`).host;
    for (;;) {
      // Gone: suspected in the old table, or failed since this member applied the commit (its connection
      // broke, or its heartbeat stalled) — a member that died after the commit never publishes a port.
      const suspects = old.gone();
      const out: MemberAddress[] = [];
      let missing = false;
      for (const id of change.next.members) {
        if (id === this.id) { out.push({ id, address: engine.runtime.address }); continue; }
        const port = old.protocol.nextPortOf(id, change.proposal);
        if (port !== null) out.push({ id, address: `${formatHost(host(id))}:${port}` });
        else if (!suspects.has(id)) missing = true;
      }
      if (!missing || performance.now() > deadline || this.#closed) return out;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        this.#portWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** The next view has no place for this member: it left, or the others went on without it. */
  async #removed(vid: number): Promise<void> {
    const error = new RemovedError(this.id, vid, this.#leaving !== null);
    this.#stop(error); // first: sends reject with this, not with close()'s ClosedError
    if (this.#leaving) this.#leaving.resolve();
    else this.emit('removed', error);
    await this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('this group member');
  }
}

/** An IPv6 host goes inside brackets in 'host:port'. */
function formatHost(host: string): string {
  return formatAddress({ host, port: 0 }).replace(/:0$/, '');
}
