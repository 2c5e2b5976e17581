// A member of a squall group (DESIGN.md §8): one process's share of every subgroup it serves. Each view
// runs on its own ViewEngine (ts/group/view-engine.ts) — one arena with the view's SST and RDMC groups, one
// fabric, the workers, the shard channels — and the handles users hold (group.channel, group.subgroup)
// carry over from view to view.
//
//   const group = await Group.join({ id: 1, config: 'cluster.json', types: { tickets: TicketBook } });
//   const tickets = group.subgroup('tickets', TicketBook);       // typed from the class: its queries too
//   const replies = await tickets.ordered.book('t-17', 'alice');   // one reply per member of the shard
//   const holder = await tickets.query(0).holder('t-17');           // ask one member
//   group.on('view', (view) => console.log('view', view.vid, view.members));
//
// Membership (DESIGN.md §6): the configuration's members form view 0 — or, when they are too few for some
// shard's minimum, the first of them forms it from joiners in join order. When a member fails (its heartbeat
// stalls or its connection breaks) or leaves, the view-change protocol (ts/membership/protocol.ts) wedges
// every member, agrees on the removals, delivers up to the ragged trim, and installs view vid + 1 with the
// failed members gone; each sender sends again what the old view did not deliver. A member left with a
// minority of its view stops with PartitionedError. A new member joins through any member's contact
// address (ts/group/contact.ts): the leader puts it in the next view, and it receives each replicated
// subgroup's state before its first delivery (ts/group/state-transfer.ts).
//
//   const joiner = await Group.join({ id: 7, config, contact: '10.0.0.1:7400', listen: '10.0.0.7:0', types });
//
// The class is the API (join, subgroup, channel, leave, close, status) and the member's lifecycle (joining,
// stopping, rejoining). The work is elsewhere, one module per protocol step: stepping the member and
// installing each next view in the member driver (ts/group/driver.ts, ts/group/install.ts), which the
// simulator runs too; admission in ts/group/admission.ts and ts/group/first-view.ts; state transfer in
// ts/group/state-sync.ts.

import { EventEmitter } from 'node:events';
import { formatAddress } from '../address.js';
import {
  ClosedError, ConfigError, PartitionedError, RemovedError, StateTransferError, TimeoutError,
} from '../errors.js';
import type { View } from '../membership/view.js';
import { fabricStatus, type FabricStatus } from '../fabric/connections.js';
import { SpareWorkers } from '../member/spare-workers.js';
import { ReplicatedObject, type QueryName } from '../objects/replicated-object.js';
import { DEFAULT_SUSPICION_TIMEOUT_MS } from '../sst/config.js';
import { GroupAdmission } from './admission.js';
import {
  checkTimingPair, loadGroupConfig, validateGroupConfig, type GroupConfig,
} from './config.js';
import { firstViewPlans, type SubgroupPlan } from '../membership/plans.js';
import { fabricKeyOf, resolveSecret } from './credential.js';
import { MemberDriver } from './driver.js';
import type { DriverHost } from './driver-parts.js';
import { MemberEngines, formatHost, placeOf } from './engines.js';
import { enter, formFirstView, isRetryableJoin, rejoin, type EntryParts } from './entry.js';
import { logGroup } from './logging.js';
import { committedEvent, connectionEvent, installedEvent, refusedEvent, stoppedEvent } from './events.js';
import type { GroupEvents } from './events.js';
import { FirstViewGathering } from './first-view.js';
import {
  checkAgainstConfig, contactList, validateJoinOptions, withQueueLimits, type JoinOptions, type ReplicatedClass,
} from './join-options.js';
import { GroupPersistence } from './persistence.js';
import { RejoinContacts } from './rejoin-contacts.js';
import { startFirstView } from './total-restart.js';
import { StateSync } from './state-sync.js';
import type { SubgroupChannel } from './subgroup-channel.js';
import type { MembershipRow, ViewEngine } from './view-engine.js';

export type { JoinOptions, ReplicatedClass } from './join-options.js';
export type { GroupEvents } from './events.js';
export type { View } from '../membership/view.js';

const DEFAULT_MAILBOX_BYTES = 1 << 20;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_LEAVE_TIMEOUT_MS = 5_000;

export class Group extends EventEmitter<GroupEvents> {
  readonly id: number;
  readonly config: GroupConfig;
  readonly #options: JoinOptions;
  /**
   * The group's secret key (ts/group/credential.ts), null in an open group. The contact port proves it
   * both ways; every fabric connection proves the key derived from it (EngineBase.authKey).
   */
  readonly #key: Buffer | null;
  /** Makes each view's engine; knows where this member binds and where its peers are reached. */
  readonly #engines: MemberEngines;
  /** The contact addresses read in this member's views, for a rejoin. */
  readonly #contacts: RejoinContacts;
  /** Where the first view's engine listens: `listen`, else the configured address. */
  readonly #firstListen: string;
  /** Steps this member and installs its views; a new one for each stretch of membership (rejoin). */
  #driver: MemberDriver<ViewEngine>;
  readonly #driverHost: DriverHost<ViewEngine>;
  readonly #admission: GroupAdmission;
  readonly #states: StateSync;
  readonly #handles = new Map<string, SubgroupChannel>();
  readonly #objects = new Map<string, ReplicatedObject<object>>();
  readonly #types: Record<string, ReplicatedClass>;
  /** connectTimeoutMs: how long connecting, a start barrier, a join or a transfer's silence may take. */
  readonly #timeoutMs: number;
  /**
   * The suspicion timeout in force: also how long installing a view may wait for a member's port and
   * connection before taking it for failed (a member slower than that would be suspected anyway).
   */
  readonly #suspicionTimeoutMs: number;
  /** Why this member can go no further (partitioned, removed, a view it cannot build); null while it runs. */
  #stopped: Error | null = null;
  /** Group.join has resolved: the owner has the group and its events. */
  #running = false;
  #leaving: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> } | null = null;
  /** A rejoin is under way (the member was removed or partitioned and asks to enter again). */
  #rejoining = false;
  #stepScheduled = false;
  #closed = false;
  /** Milliseconds from the commit to each phase of the last install here (status()). */
  #lastInstall: Record<string, number> | null = null;
  /** Warm workers for the next view's engine, started once the current view runs. */
  readonly #spares = new SpareWorkers();
  /** The persistent subgroups' logs under dataDir (ts/group/persistence.ts); null without any. */
  readonly #persistence: GroupPersistence | null;

  /**
   * Joins the group. A member of the configuration binds, lays out the arena, connects to every member and
   * starts the protocol (the first view); with `contact`, a new member asks to enter the running group's
   * next view and resolves once it is installed and its subgroups' state restored.
   */
  static async join(options: JoinOptions): Promise<Group> {
    validateJoinOptions(options);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (options.contact === undefined) return Group.#joinOnce(options, timeoutMs);
    // A new member whose attempt failed in a way asking again may mend (isRetryableJoin) joins again: the
    // group removes the attempt that failed meanwhile.
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await Group.#joinOnce(options, Math.max(1, deadline - performance.now()), attempt > 0);
      } catch (error) {
        if (!isRetryableJoin(error) || performance.now() >= deadline) throw error;
      }
    }
  }

  static async #joinOnce(options: JoinOptions, timeoutMs: number, rejoining = false): Promise<Group> {
    const group = new Group(options);
    try {
      const lastVid = await group.#persistence?.open(); // a whole group restarted goes on after its last view
      const restartVid = (lastVid ?? -1) + 1, only = options.forceRestart;
      if (lastVid !== undefined && options.contact === undefined) group.#openFirstView(restartVid, only);
      if (options.contact !== undefined) {
        await enter(group.#entryParts(), contactList(options.contact), timeoutMs, rejoining);
      } else if (group.#admission.firstView) {
        await group.#admission.open();
        await formFirstView(group.#entryParts(), group.#admission.firstView, group.#firstListen, timeoutMs);
      } else {
        await startFirstView({ // logs reconciled too
          driver: group.#driver, persistence: group.#persistence, states: group.#states, timeoutMs,
          restartWaitMs: options.restartWaitMs ?? Infinity, forced: only !== undefined,
          reopen: () => group.#openFirstView(restartVid, only)!,
        });
      }
      await group.#admission.open();
    } catch (error) {
      await group.close();
      throw error;
    }
    await group.#persistence?.ready();
    group.#running = true;
    group.#persistence?.installed(group.view.vid, group.view.members);
    group.#engines.fillSpares();
    return group;
  }

  private constructor(options: JoinOptions) {
    super();
    validateJoinOptions(options);
    const config = withQueueLimits(typeof options.config === 'string' ? loadGroupConfig(options.config)
      : validateGroupConfig(options.config), options);
    const suspicionTimeoutMs = options.suspicionTimeoutMs ?? config.suspicionTimeoutMs ?? DEFAULT_SUSPICION_TIMEOUT_MS;
    checkTimingPair(options.heartbeatIntervalMs ?? config.heartbeatIntervalMs, suspicionTimeoutMs, 'Group.join');
    this.#key = resolveSecret({ secret: options.secret, secretFile: config.secretFile })?.key ?? null;
    const self = checkAgainstConfig(options, config, this.#key);
    const entering = options.contact !== undefined;
    this.id = options.id;
    this.config = config;
    this.#options = options;
    if (options.logger) logGroup(this, this.id, options.logger);
    this.#types = options.types ?? {};
    this.#timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#suspicionTimeoutMs = suspicionTimeoutMs;
    const { listen, host, bindHost, hosts } = placeOf(config, options, self);
    this.#firstListen = listen;
    this.#engines = new MemberEngines(this.id, config, {
      mailboxBytes: options.mailboxBytes ?? DEFAULT_MAILBOX_BYTES, connectTimeoutMs: this.#timeoutMs,
      spares: this.#spares,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? config.heartbeatIntervalMs,
      suspicionTimeoutMs: options.suspicionTimeoutMs ?? config.suspicionTimeoutMs,
      shardEngine: options.shardEngine, fabric: options.fabric, fabricKey: this.#key ? fabricKeyOf(this.#key) : null,
    }, {
      schedule: () => this.#schedule(),
      memberFailed: (engine, member, reason, step) => this.#driver.memberFailed(engine, member, reason, step),
      connection: (vid, peer, state, reason) => this.emit('protocol', connectionEvent(vid, peer, state, reason)),
      warn: (error) => this.#warn(error), error: (error) => this.emit('error', error),
    }, { host, bindHost, hosts });
    this.#contacts = new RejoinContacts(this.id, (member, port) => this.#engines.addressOf(member, port));
    this.#persistence = GroupPersistence.of(options.dataDir, config, this.id, this.#types, {
      persisted: (subgroup, shard, version) => this.emit('persisted', { subgroup, shard, version }),
      failed: (error) => this.#fail(error), protocol: (event) => this.emit('protocol', event),
    });
    this.#states = this.#stateSync();
    this.#admission = this.#newAdmission(self?.contact ?? `${formatHost(bindHost)}:0`);
    this.#driverHost = this.#newDriverHost();
    this.#driver = this.#newDriver();
    // A joiner's first engine waits for the leader's offer; with persistent logs, the first view waits for them.
    if (!entering && !this.#persistence) this.#openFirstView(0);
  }

  /**
   * The configuration's members (or those forceRestart names) form the first view; when they are too few for
   * some shard's minimum, the first of them forms it from joiners, in join order (#formFirstView).
   */
  #openFirstView(vid: number, only?: readonly number[]): ViewEngine | null {
    const config = this.config;
    const self = config.members.find((m) => m.id === this.id)!;
    const members = only ? config.members.filter((m) => only.includes(m.id)) : config.members;
    const ids = members.map((m) => m.id);
    const plans = firstViewPlans(config, ids);
    if (plans === null) { // too few members for some shard: the first of them forms the first view by joins
      this.#admission.firstView = FirstViewGathering.byJoins({
        selfId: this.id, config, hosts: this.#engines.hosts,
        answerMs: Math.min(this.#timeoutMs, this.#suspicionTimeoutMs),
        closed: () => this.#closed,
      }, self.contact !== undefined || this.#options.contactListen !== undefined);
      return null;
    }
    const engine = this.#engines.create({ vid, members: ids }, plans, this.#firstListen);
    engine.listen(members);
    this.#driver.open(engine);
    return engine;
  }

  /** What the member driver is given: the native engines, the real clock and timers, and the events. */
  #newDriverHost(): DriverHost<ViewEngine> {
    return {
      ...this.#engines.driverParts(this.#suspicionTimeoutMs),
      schedule: () => this.#schedule(),
      adopted: (name) => {
        if (Object.hasOwn(this.#types, name)) this.subgroup(name);
        else this.#persistence?.attach(name, this.#handles.get(name)!, null); // a persistent channel's log
      },
      dropped: (name, handle, view) => {
        // Out of the subgroup: the handle the owner holds stops; a later view that puts this member back in a
        // shard makes a new one, with a fresh object that receives the shard's state.
        handle.stop(new ConfigError(`member ${this.id} serves no shard of subgroup '${name}' in view ${view.view.vid}: `
          + `call group.channel('${name}') or group.subgroup('${name}') again once a view has it in one`));
        this.#objects.get(name)?.close();
        this.#objects.delete(name);
      },
      memberFailed: (member, reason) => {
        this.emit('protocol', { event: 'suspected', vid: this.view.vid, member, reason });
        this.emit('memberFailed', member, reason);
      },
      noted: (vid, note) => this.emit('protocol', { ...note, vid }),
      committed: (old, change) => {
        this.#contacts.learn(old); // the view ran: its members published their contact ports
        this.emit('protocol', committedEvent(old.view.vid, change));
      },
      stopped: (error, view) => this.#onStopped(error, view),
      installed: (view, change, phasesMs) => {
        this.#lastInstall = phasesMs;
        this.emit('protocol', installedEvent(view.view, change, phasesMs));
        this.#engines.fillSpares(); // now, not once the old view closed: a change that follows at once finds them warm
        this.#persistence?.installed(view.view.vid, view.view.members);
        this.emit('view', view.view, change.removed, change.joined.map((j) => j.id));
      },
      installEnded: () => this.#engines.fillSpares(),
    };
  }

  #newDriver(): MemberDriver<ViewEngine> {
    const parts = { handles: this.#handles, admission: this.#admission, states: this.#states };
    return new MemberDriver({ host: this.#driverHost, ...parts });
  }

  #newAdmission(contact: string): GroupAdmission {
    return new GroupAdmission({
      selfId: this.id, config: this.config, hosts: this.#engines.hosts, host: this.#engines.host, key: this.#key,
      contactListen: this.#options.contactListen ?? contact,
      suspicionTimeoutMs: this.#suspicionTimeoutMs,
      driver: () => this.#driver, closed: () => this.#closed,
      refusing: () => this.#closed || this.#stopped !== null || this.#leaving !== null,
      warn: (error) => this.#warn(error),
      ...(this.#options.onContactOpen ? { opened: this.#options.onContactOpen } : {}),
    });
  }

  #stateSync(): StateSync {
    return new StateSync({
      selfId: this.id, config: this.config, types: this.#types, objects: this.#objects, handles: this.#handles,
      idleTimeoutMs: this.#timeoutMs,
      halted: () => this.#stopped ?? (this.#closed ? new ClosedError('this group member') : null),
      isCurrent: (view) => !this.#closed && this.#driver.view === view,
      schedule: () => this.#schedule(),
      error: (error) => this.emit('error', error),
      fail: (error) => this.#fail(error), protocol: (event) => this.emit('protocol', event),
      logs: this.#persistence, restart: this.#persistence?.restart ?? null,
      stream: this.#engines.streams(this.#timeoutMs),
    });
  }

  /** What entering the group by joins needs (ts/group/entry.ts), for this stretch's driver. */
  #entryParts(): EntryParts {
    return {
      selfId: this.id, config: this.config, key: this.#key, engines: this.#engines, states: this.#states,
      driver: this.#driver, stopped: () => this.#stopped, fillSpares: () => this.#engines.fillSpares(),
    };
  }

  /** The current view's engine. */
  get #engine(): ViewEngine { return this.#driver.view!; }

  /** The current view. */
  get view(): View { return this.#engine.view; }

  /** The current view's plan: which member is in which shard of each subgroup. */
  get plans(): readonly SubgroupPlan[] { return this.#engine.plans; }

  /** Members of the current view this member has found failed. */
  get failed(): number[] { return [...this.#driver.failed].filter((m) => this.view.members.includes(m)); }

  /** Set once this member finds itself in a minority of its view; it delivers nothing more then. */
  get partitioned(): PartitionedError | null {
    return this.#stopped instanceof PartitionedError ? this.#stopped : null;
  }

  /** The address this member accepts connections on in the current view. */
  get address(): string { return this.#engine.runtime.address; }

  /** Where this member takes join requests (give it to new members as `contact`). */
  get contactAddress(): string { return formatAddress({ host: this.#engines.host, port: this.#admission.port }); }

  /** Names of the subgroups this member serves. */
  get subgroups(): string[] { return [...this.#handles.keys()]; }

  /**
   * This member's shard of subgroup `name` as a replicated object of the class given in `types` (or
   * `type`): ordered calls, queries, replies. Typed from the class C — pass it, or name it
   * (`group.subgroup<typeof TicketBook>('tickets')`) — so `query()` offers its declared queries.
   */
  subgroup<C extends ReplicatedClass = ReplicatedClass>(name: string,
    type?: C): ReplicatedObject<InstanceType<C>, QueryName<C>> {
    type Handle = ReplicatedObject<InstanceType<C>, QueryName<C>>;
    this.#checkOpen();
    const existing = this.#objects.get(name);
    if (existing) return existing as unknown as Handle;
    const channel = this.channel(name);
    const named = Object.hasOwn(this.#types, name) ? this.#types[name] : undefined;
    const cls = (type ?? named) as ReplicatedClass<InstanceType<C>> | undefined;
    if (!cls) {
      throw new ConfigError(`subgroup '${name}' has no class: pass types: { ${name}: YourClass } to Group.join, `
        + `or group.subgroup('${name}', YourClass)`);
    }
    const recovered = this.#persistence?.takeRecovered(name) ?? null; // read back from this member's log
    const object = ReplicatedObject.attach((recovered?.state ?? new cls()) as InstanceType<C>, channel, {
      type: cls, maxMessageBytes: channel.maxMessageBytes, maxCallsInFlight: channel.maxQueuedMessages,
      ...(this.#options.callTimeoutMs ? { timeoutMs: this.#options.callTimeoutMs } : {}),
      onError: (error) => this.#warn(error),
    });
    if (recovered) object.reset(recovered.state as InstanceType<C>, recovered.version);
    this.#objects.set(name, object as unknown as ReplicatedObject<object>);
    this.#persistence?.attach(name, channel, object as unknown as ReplicatedObject<object>);
    return object as unknown as Handle;
  }

  /** This member's shard of subgroup `name` as a channel of bytes: send(), onDeliver(), sendTo(), onDirect(). */
  channel(name: string): SubgroupChannel {
    this.#checkOpen();
    const channel = this.#handles.get(name);
    if (channel) return channel;
    if (!Object.hasOwn(this.config.subgroups, name)) {
      const names = Object.keys(this.config.subgroups).join(', ');
      throw new ConfigError(`no subgroup '${name}'; the configuration has: ${names}`);
    }
    throw new ConfigError(`member ${this.id} is in no shard of subgroup '${name}'`);
  }

  /**
   * Leaves the group cleanly (DESIGN.md §6): sends from now on reject with RemovedError; once every message
   * this member sent is delivered, the others install a view without it, every message of the current view
   * is delivered here first, and this member closes. Resolves once it has; when the last members leave
   * together, each resolves once it has seen the others leave too.
   *
   * It always settles within `leaveTimeoutMs` (default 5 s), closing the member in every case:
   * - a member that is partitioned (or becomes so while leaving) rejects with its PartitionedError;
   * - a member that is rejoining (it was removed) stops trying, and resolves: it is out of the group;
   * - past the time limit (a change that cannot finish, e.g. too few members left) it rejects with
   *   TimeoutError, and the others remove it as a failed member.
   * close() instead stops at once: the others find this member failed through its broken connections.
   */
  leave(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('this group member'));
    if (this.#leaving) return this.#leaving.promise;
    let resolve!: () => void, reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    const limitMs = this.#options.leaveTimeoutMs ?? DEFAULT_LEAVE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      reject(new TimeoutError(`member ${this.id} could not leave cleanly within leaveTimeoutMs = ${limitMs} ms (view `
        + `${this.view.vid} could not change: are enough members alive?); it has closed, and the others remove it as `
        + 'failed'));
      void this.close();
    }, limitMs);
    this.#leaving = { resolve, reject, promise };
    promise.then(() => clearTimeout(timer), () => clearTimeout(timer));
    if (this.#stopped || this.#rejoining) { // partitioned: no change can take it out; rejoining: it is out
      const partitioned = this.#rejoining ? null : this.partitioned;
      if (partitioned) reject(partitioned); else resolve(); // first: close() rejects a leave still pending
      void this.close();
      return promise;
    }
    this.#driver.leave(new RemovedError(this.id, this.view.vid + 1, true));
    return promise;
  }

  /**
   * Stops every shard, the workers and the fabric at once, without a clean leave: the others find this
   * member failed through its broken connections and remove it. Calls in flight reject with ClosedError
   * (or with the RemovedError / PartitionedError that stopped this member). A leave() still pending rejects
   * with ClosedError.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = this.#stopped ?? new ClosedError('this group member');
    this.#admission.close();
    this.#admission.firstView?.close(); // a first view still forming gives up (gather sees the member closed)
    this.#states.failAll(this.#stopped ?? new ClosedError('this group'));
    for (const o of this.#objects.values()) o.close(reason);
    for (const h of this.#handles.values()) h.stop(reason);
    await this.#driver.close();
    await this.#spares.close();
    await this.#persistence?.close().catch((error: Error) => this.#warn(error));
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
  status(): {
    vid: number; members: readonly number[]; installing: boolean; stopped: string | null;
    lastInstall: Record<string, number> | null; previous: MembershipRow[] | null; subgroups: Record<string, unknown>;
    fabric: FabricStatus;
  } {
    const previous = this.#driver.previous;
    return {
      vid: this.view.vid, members: this.view.members, installing: this.#driver.installing,
      stopped: this.#stopped?.message ?? null, lastInstall: this.#lastInstall,
      previous: previous && !previous.closed ? previous.membership() : null,
      subgroups: Object.fromEntries([...this.#handles].map(([name, h]) => [name, h.state()])),
      // the current view's fabric (each view has its own): its counters, its connection to each other member
      fabric: fabricStatus(this.#engine.runtime.fabric, this.view.members.filter((m) => m !== this.id)),
    };
  }

  /** A step soon: after the current turn, once however many ask. */
  #schedule(): void {
    if (this.#stepScheduled || this.#closed) return;
    this.#stepScheduled = true;
    setImmediate(() => {
      this.#stepScheduled = false;
      this.#driver.step();
    });
  }

  // ---- stopping -----------------------------------------------------------------------------------------

  /** The driver found this member can go no further in `view`. */
  #onStopped(error: Error, view: ViewEngine): void {
    this.emit('protocol', stoppedEvent(error, view.view.vid));
    if (error instanceof PartitionedError) this.#partition(error, view);
    else if (error instanceof RemovedError) void this.#removed(error, view);
    else { // the next view cannot be built here
      this.#stop(error);
      this.emit('error', error);
    }
  }

  #partition(error: PartitionedError, view: ViewEngine): void {
    const contacts = this.#rejoinContacts(view);
    this.#stop(error);
    this.emit('partitioned', error);
    if (this.#leaving) {
      this.#leaving.reject(error);
      void this.close();
      return;
    }
    if (this.#rejoinOn) void this.#rejoin(contacts, error);
    else void this.#closeDriver(); // a member still counting on this one (it saw a leave we did not) finds it gone
  }

  /**
   * The next view has no place for this member: it left, or the others went on without it (the error's
   * suspectedBy says who suspected it, when it learnt of its removal from their rows rather than the commit).
   */
  async #removed(error: RemovedError, view: ViewEngine): Promise<void> {
    const contacts = this.#rejoinContacts(view);
    this.#stop(error); // first: sends reject with this, not with close()'s ClosedError
    if (this.#leaving) {
      this.#leaving.resolve(); // first: close() rejects a leave still pending
      await this.close();
      return;
    }
    const rejoining = this.#rejoinOn;
    this.emit('removed', error, rejoining);
    if (rejoining) await this.#rejoin(contacts, error);
    else await this.close();
  }

  /** This member can go no further in its view: sends and calls in flight reject with `error`. */
  #stop(error: Error): void {
    this.#stopped = error;
    this.#admission.close();
    this.#driver.stop(error);
    for (const o of this.#objects.values()) o.failCalls(error);
  }

  /** A peer sent something this member cannot use, and it goes on: a `warning`, or a process warning. */
  #warn(error: Error): void {
    this.emit('protocol', refusedEvent(error));
    if (this.listenerCount('warning') > 0) this.emit('warning', error);
    else process.emitWarning(error);
  }

  /**
   * This member cannot go on in the group (its state did not arrive): it stops, says so on the `error` event
   * (a joiner whose Group.join is still pending learns it from the rejection instead), and closes, so that
   * the others remove it — unless it is rejoining and may ask again.
   */
  #fail(error: Error): void {
    if (this.#closed || this.#stopped) return;
    // A rejoin whose state a change cut off: its wait fails with it (StateSync.failAll), and it asks again.
    if (this.#rejoining && error instanceof StateTransferError && error.retryable) return;
    this.#stop(error);
    if (this.#running) this.emit('error', error);
    void this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('this group member');
  }

  // ---- joining ------------------------------------------------------------------------------------------

  /** JoinOptions.rejoin, else the configuration's `rejoin`. */
  get #rejoinOn(): boolean { return this.#options.rejoin ?? this.config.rejoin ?? false; }

  /** Where a member that is out of the group asks to enter it again: every other member's contact address. */
  #rejoinContacts(at: ViewEngine | null): string[] { return this.#contacts.list(at, this.config, this.#options); }

  /**
   * Rejoin (JoinOptions.rejoin; ts/group/entry.ts): the old view's engine closes, and this member asks to be
   * let in again, with a fresh driver each attempt; the owner's handles (channel, subgroup) go on in the new view.
   */
  async #rejoin(contacts: readonly string[], cause: Error): Promise<void> {
    if (this.#rejoining || this.#closed) return;
    this.#rejoining = true;
    try {
      await this.#closeDriver();
      const failed = await rejoin({
        selfId: this.id, timeoutMs: this.#timeoutMs, closed: () => this.#closed,
        attempt: () => {
          this.#stopped = null; // the new view's protocol steps
          this.#driver = this.#newDriver();
          return this.#entryParts();
        },
        entered: () => this.#admission.open(),
        abandon: () => {
          this.#stopped = cause;
          return this.#closeDriver();
        },
        protocol: (event) => this.emit('protocol', event),
      }, contacts, cause);
      if (this.#closed) return;
      if (failed) {
        this.emit('rejoinFailed', failed);
        await this.close();
        return;
      }
      this.#engines.fillSpares();
      this.emit('rejoined', this.view);
    } finally {
      this.#rejoining = false;
    }
  }

  /** Closes this member's driver and its engines (a rejoin starts from none). */
  async #closeDriver(): Promise<void> {
    this.#states.failAll(this.#stopped ?? new ClosedError('this group'));
    await this.#driver.close();
  }
}
