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

import { EventEmitter } from 'node:events';
import { parseAddress, formatAddress } from '../address.js';
import { AuthError, ClosedError, ConfigError, JoinError, PartitionedError, PeerFailedError, RemovedError, StateTransferError, TimeoutError } from '../errors.js';
import type { FabricChoice } from '../fabric/choice.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { Change, Joiner } from '../membership/protocol.js';
import { JOIN_HOST_BYTES, MAX_JOINS_PER_CHANGE } from '../membership/columns.js';
import { ReplicatedObject, type QueryName, type ReplicatedType } from '../objects/replicated-object.js';
import { checkTimingPair, loadGroupConfig, validateGroupConfig, type GroupConfig } from './config.js';
import { firstViewPlans, MULTICAST_DEFAULTS, planView, type SubgroupPlan } from '../membership/plans.js';
import { validateJoinOptions } from './join-options.js';
import { SpareWorkers } from '../member/spare-workers.js';
import { SubgroupChannel } from './subgroup-channel.js';
import { CONTACT_LIMITS, ContactServer, requestJoin, WarningGate, type ContactSession, type JoinOffer } from './contact.js';
import { Checksums, isStateTag, sendState, stateTag, stateTransfers, StateReceiver, type Transfer } from './state-transfer.js';
import { ViewEngine, type MembershipRow } from './view-engine.js';
import { DEFAULT_SUSPICION_TIMEOUT_MS } from '../sst/config.js';
import { fabricKeyOf, resolveSecret } from './credential.js';

/** A class whose instances a subgroup replicates: constructed with no arguments at every member. */
export type ReplicatedClass<T extends object = object> = (new () => T) & ReplicatedType<T>;

export interface JoinOptions {
  /** This member's id: one of the configuration's members, or (with `contact`) any id not in the view. */
  id: number;
  /** The configuration, or the path of a JSON file holding it. */
  config: GroupConfig | string;
  /**
   * Where this member accepts connections: overrides its configured address (e.g. '0.0.0.0:7000'). A new
   * member gives its host here (the port is ignored: each view picks one); default 127.0.0.1.
   */
  listen?: string;
  /**
   * Join a running group as a new member through any member's contact address (or several, tried in
   * turn): it enters the next view and receives each subgroup's state first. Without it, the
   * configuration's members form the first view.
   */
  contact?: string | string[];
  /** Where this member takes join requests (default: its configured "contact", else a free port on its host). */
  contactListen?: string;
  /** The class each subgroup replicates, by subgroup name; subgroups without one are channels only. */
  types?: Record<string, ReplicatedClass>;
  /** How often this member's heartbeat advances. Default: the configuration's, else 10 ms. */
  heartbeatIntervalMs?: number;
  /**
   * How long a member's heartbeat may stand still before it is suspected (a hung or cut-off member; a
   * crash is found at once through its broken connections). Default 1 s: see DEFAULT_SUSPICION_TIMEOUT_MS
   * in ts/sst/config.ts for why. The configuration file's `suspicionTimeoutMs` is used when this is not given.
   */
  suspicionTimeoutMs?: number;
  /**
   * When the others remove this member while it is alive (they suspected it: it hung, or was cut off) or it
   * finds itself in a minority of its view, it joins the group again by itself through the members' contact
   * addresses, receives the replicated state, and emits `rejoined`. Default false (`squall node`: on).
   */
  rejoin?: boolean;
  /**
   * The longest leave() takes: past it the member closes without a clean leave (the others then remove it
   * as failed) and leave() rejects with TimeoutError. Default 5 s.
   */
  leaveTimeoutMs?: number;
  /** How long join waits for every member to be connected, and a new view for its members. Default 30 s. */
  connectTimeoutMs?: number;
  /** Bytes of each point-to-point mailbox (queries, replies); a message may take half. Default 1 MiB. */
  mailboxBytes?: number;
  /** Time limit of each replicated-object call in ms; default no limit. */
  callTimeoutMs?: number;
  /** Native backend (default: SQUALL_FABRIC, else tcp; see RuntimeOptions.fabric); the same at every member. */
  fabric?: FabricChoice;
  /**
   * Sends this member may have queued per shard it sends in (accepted, not yet in its window), and
   * replicated-object calls waiting for replies, before the next one rejects at once with
   * OverloadedError. Wins over every subgroup's configured maxQueuedMessages; default the
   * configuration's, else 1024 (MULTICAST_DEFAULTS).
   */
  maxQueuedMessages?: number;
  /** The bytes of those queued sends; wins over the configuration's maxQueuedBytes; default 64 MiB. */
  maxQueuedBytes?: number;
  /**
   * The group's secret key (at least 16 bytes; a string counts as its UTF-8 bytes; `squall keygen` makes
   * one): a joiner and the member it asks prove it to each other (docs/membership.md, "The credential"). Default: the
   * environment's SQUALL_SECRET, else the file named by SQUALL_SECRET_FILE, else the configuration's
   * "secretFile". Without any, the group is open — anyone who reaches its ports can join: for trusted
   * networks only.
   */
  secret?: string | Uint8Array;
}

export interface View {
  vid: number;
  members: readonly number[];
}

export interface GroupEvents {
  /** A member of the current view failed or was suspected; a view change that removes it follows. */
  memberFailed: [member: number, reason: string];
  /** A new view is installed here: `removed` left it (failed, or left cleanly), `joined` entered it. */
  view: [view: View, removed: number[], joined: number[]];
  /** This member lost a majority of its view: it has stopped (partition safety). */
  partitioned: [error: PartitionedError];
  /**
   * The group went on without this member (the others suspected it): it has stopped. With `rejoin` it
   * joins again by itself (`rejoining` true) and emits `rejoined` once it is back, or `rejoinFailed`.
   */
  removed: [error: RemovedError, rejoining: boolean];
  /** This member was removed or partitioned, and is a member of the group again, its state restored. */
  rejoined: [view: View];
  /** Rejoining did not succeed within connectTimeoutMs: the member has closed. */
  rejoinFailed: [error: Error];
  /**
   * Something is wrong but this member goes on: a peer sent a message that cannot be decoded, or the
   * contact port refused an attempt (an AuthError for a joiner without the group's key, a JoinError for a
   * malformed line, a connection over the limits, a handshake past its deadline; at most 5 per 10 s, the
   * rest counted in the next), or the fabric port refused a connection that could not prove the group's
   * key (an AuthError; at most 5 per 10 s too). Without a listener it becomes a process warning (never an uncaught exception).
   */
  warning: [error: Error];
  /**
   * This member cannot go on because of a fault here: a worker died, its state did not arrive, a view it
   * cannot build, the class's snapshot() threw. A peer's failure is never an `error` (see memberFailed).
   */
  error: [error: Error];
}

const DEFAULT_MAILBOX_BYTES = 1 << 20;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_LEAVE_TIMEOUT_MS = 5_000;
/** Pause between a rejoin's attempts, growing to the most; the attempts end after connectTimeoutMs. */
const REJOIN_PAUSE_MS = { first: 50, most: 1_000 };
/** Join requests this close together go into one view change. */
const JOIN_BATCH_MS = 20;
/**
 * Joins that failed in a way asking again can mend (the leader gave up on this joiner after its offer, or
 * the group removed it before it was connected): Group.join asks again by itself, until connectTimeoutMs.
 */
const RETRYABLE_JOINS = new WeakSet<Error>();
function retryableJoin(message: string): JoinError {
  const error = new JoinError(message);
  RETRYABLE_JOINS.add(error);
  return error;
}

export class Group extends EventEmitter<GroupEvents> {
  readonly id: number;
  readonly config: GroupConfig;
  readonly #options: JoinOptions;
  /**
   * The group's secret key (ts/group/credential.ts), null in an open group. The contact port proves it
   * both ways; every fabric connection proves the key derived from it (#fabricKey).
   */
  readonly #key: Buffer | null;
  readonly #fabricKey: Buffer | null;
  /** Refused fabric connections, reported on `warning` at most as often as the contact port's refusals. */
  readonly #fabricRefusals = new WarningGate((error) => this.#warn(error), CONTACT_LIMITS.warningsPerWindow, CONTACT_LIMITS.warningWindowMs, 'refused fabric connections');
  /** The host the others reach this member at (its configured address's, when it binds a wildcard). */
  readonly #host: string;
  /** The host it binds: `listen`'s (0.0.0.0 and :: bind every interface). */
  readonly #bindHost: string;
  #engine!: ViewEngine;
  /** The host of every member this one has known (the configuration's, and joiners'): peers' addresses. */
  readonly #hosts = new Map<number, string>();
  #contact: ContactServer | null = null;
  /** Join requests that arrived within JOIN_BATCH_MS of each other: one change takes them together. */
  #joinBatch: Array<{ session: ContactSession; joiner: Joiner }> = [];
  #joinBatchTimer: NodeJS.Timeout | null = null;
  /** Joiners this member (as leader) proposed, by id: told the view once it commits. */
  readonly #joinSessions = new Map<number, ContactSession>();
  /**
   * While the first view forms by joins (the configuration alone is too few for some shard): who asked,
   * in join order; null otherwise. `#firstViewAdequate` is woken when they are enough.
   */
  #firstJoiners: Array<{ session: ContactSession; joiner: Joiner }> | null = null;
  #firstViewAdequate: (() => void) | null = null;
  /**
   * Subgroups whose state this member awaits (it entered their shard): their shards do not step until then,
   * and their handles hold point-to-point messages (queries), answered once the state is restored.
   */
  readonly #receivers = new Map<string, StateReceiver>();
  /** The previous view's engine while the next one connects (its mailboxes still carry replies). */
  #previous: ViewEngine | null = null;
  readonly #handles = new Map<string, SubgroupChannel>();
  readonly #objects = new Map<string, ReplicatedObject<object>>();
  readonly #types: Record<string, ReplicatedClass>;
  readonly #mailboxBytes: number;
  /** connectTimeoutMs: how long connecting, a start barrier, a join or a transfer's silence may take. */
  readonly #timeoutMs: number;
  /**
   * The suspicion timeout in force: also how long installing a view may wait for a member's port and
   * connection before taking it for failed (a member slower than that would be suspected anyway).
   */
  readonly #suspicionTimeoutMs: number;
  readonly #failed = new Set<number>();
  /** Why this member can go no further (partitioned, removed, a view it cannot build); null while it runs. */
  #stopped: Error | null = null;
  #installing = false;
  /** Group.join has resolved: the owner has the group and its events. */
  #running = false;
  #leaving: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void>; asked: boolean; timer: NodeJS.Timeout } | null = null;
  /** JoinOptions.rejoin, else the configuration's `rejoin`. */
  get #rejoinOn(): boolean { return this.#options.rejoin ?? this.config.rejoin ?? false; }
  /** A rejoin is under way (the member was removed or partitioned and asks to enter again). */
  #rejoining = false;
  #stepScheduled = false;
  #closed = false;
  /** Milliseconds from the commit to each phase of the last install here (status()). */
  #lastInstall: Record<string, number> | null = null;
  /** Warm workers for the next view's engine, started once the current view runs. */
  readonly #spares = new SpareWorkers();
  /** Waiting for the next view's ports to appear in the old table (#nextAddresses); woken by each step. */
  readonly #portWaiters: Array<() => void> = [];

  /**
   * Joins the group. A member of the configuration binds, lays out the arena, connects to every member and
   * starts the protocol (the first view); with `contact`, a new member asks to enter the running group's
   * next view and resolves once it is installed and its subgroups' state restored.
   */
  static async join(options: JoinOptions): Promise<Group> {
    validateJoinOptions(options);
    if (options.contact === undefined) return Group.#joinOnce(options, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    // A new member whose state transfer a view change cut off (its source failed, or the view changed
    // before the source could send) joins again: the group removes the attempt that failed meanwhile.
    const deadline = performance.now() + (options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    for (let attempt = 0; ; attempt++) {
      try {
        return await Group.#joinOnce(options, Math.max(1, deadline - performance.now()), attempt > 0);
      } catch (error) {
        const retryable = (error instanceof StateTransferError && error.retryable) || RETRYABLE_JOINS.has(error as Error);
        if (!retryable || performance.now() >= deadline) throw error;
      }
    }
  }

  static async #joinOnce(options: JoinOptions, timeoutMs: number, rejoining = false): Promise<Group> {
    const group = new Group(options);
    try {
      if (options.contact !== undefined) {
        await group.#enter(contactList(options.contact), timeoutMs, rejoining);
      } else if (group.#firstJoiners) {
        await group.#formFirstView(timeoutMs);
      } else {
        await group.#engine.connectAll();
        group.#engine.start(() => group.#stepAll());
        group.#stepAll();
        await group.#engine.whenReady(timeoutMs);
      }
      await group.#openContact();
    } catch (error) {
      await group.close();
      throw error;
    }
    group.#running = true;
    group.#fillSpares();
    return group;
  }

  private constructor(options: JoinOptions) {
    super();
    validateJoinOptions(options);
    const config = withQueueLimits(typeof options.config === 'string' ? loadGroupConfig(options.config) : validateGroupConfig(options.config), options);
    checkTimingPair(options.heartbeatIntervalMs ?? config.heartbeatIntervalMs, options.suspicionTimeoutMs ?? config.suspicionTimeoutMs ?? DEFAULT_SUSPICION_TIMEOUT_MS, 'Group.join');
    const self = config.members.find((m) => m.id === options.id);
    const entering = options.contact !== undefined;
    if (entering) contactList(options.contact!);
    if (!self && !entering) throw new ConfigError(`member ${options.id} is not in the configuration's members (${config.members.map((m) => m.id).join(', ')}); pass one of those ids, or contact: 'host:port' to join the running group as a new member`);
    this.id = options.id;
    this.config = config;
    this.#options = options;
    this.#key = resolveSecret({ secret: options.secret, secretFile: config.secretFile })?.key ?? null;
    this.#fabricKey = this.#key ? fabricKeyOf(this.#key) : null;
    if (config.contactTls && !this.#key) throw new ConfigError(`the configuration sets contactTls, which needs the group's secret key (the TLS key is derived from it): pass secret to Group.join, or set SQUALL_SECRET, SQUALL_SECRET_FILE or the configuration's "secretFile" (\`squall keygen\` makes a key)`);
    this.#types = options.types ?? {};
    for (const name of Object.keys(this.#types)) if (!Object.hasOwn(config.subgroups, name)) throw new ConfigError(`types names subgroup '${name}', which the configuration does not have (subgroups: ${Object.keys(config.subgroups).join(', ')})`);
    this.#mailboxBytes = options.mailboxBytes ?? DEFAULT_MAILBOX_BYTES;
    this.#timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#suspicionTimeoutMs = options.suspicionTimeoutMs ?? config.suspicionTimeoutMs ?? DEFAULT_SUSPICION_TIMEOUT_MS;
    const listen = options.listen ?? self?.address ?? '127.0.0.1:0';
    this.#bindHost = parseAddress(listen, 'listen').host;
    const wildcard = this.#bindHost === '0.0.0.0' || this.#bindHost === '::';
    if (wildcard && !self) throw new ConfigError(`a new member must listen on the address the others reach it at, not ${this.#bindHost}: give listen: '<its IP address>:0'`);
    this.#host = wildcard ? parseAddress(self!.address, 'address').host : this.#bindHost;
    if (new TextEncoder().encode(this.#host).byteLength > JOIN_HOST_BYTES) throw new ConfigError(`listen host '${this.#host}' is longer than ${JOIN_HOST_BYTES} bytes; give an IP address`);
    for (const m of config.members) this.#hosts.set(m.id, parseAddress(m.address, 'address').host);
    this.#hosts.set(this.id, this.#host);
    if (entering) return; // #enter builds the first engine, once the leader tells it the view
    const ids = config.members.map((m) => m.id);
    const plans = firstViewPlans(config, ids);
    if (plans === null) { // too few members for some shard: the first of them forms the first view by joins
      if (ids[0] !== this.id) {
        throw new ConfigError(`the configuration's members are too few for its subgroups, so the first view forms by joins: start member ${ids[0]} first, then the others with contact: '<member ${ids[0]}'s contact address>'`);
      }
      if (!self!.contact && !options.contactListen) {
        throw new ConfigError(`the first view forms by joins, so member ${this.id} needs a contact address the others can know: add "contact": "host:port" to its entry in the configuration`);
      }
      this.#firstJoiners = [];
      return;
    }
    this.#engine = this.#newEngine({ vid: 0, members: ids }, plans, listen);
    this.#engine.listen(config.members);
    this.#adoptChannels(this.#engine);
  }

  /**
   * Hands the handles the owner holds their shard's channel in `engine`, the next view's (a rejoining
   * member's handles start afresh there), and makes handles for shards it did not serve before.
   */
  #takeChannels(engine: ViewEngine, rejoined = false): void {
    for (const [name, handle] of this.#handles) {
      const channel = engine.channels.get(name);
      if (channel) {
        if (rejoined) handle.resume(channel);
        else handle.attach(channel);
        continue;
      }
      // Out of the subgroup: the handle the owner holds stops; a later view that puts this member back in a
      // shard makes a new one (#adoptChannels), with a fresh object that receives the shard's state.
      handle.stop(new ConfigError(`member ${this.id} serves no shard of subgroup '${name}' in view ${engine.view.vid}: call group.channel('${name}') or group.subgroup('${name}') again once a view has it in one`));
      this.#handles.delete(name);
      this.#objects.get(name)?.close();
      this.#objects.delete(name);
    }
    this.#adoptChannels(engine);
  }

  /**
   * Handles for the shards of `engine` this member did not serve before; objects exist before the first
   * delivery, so no command finds a shard without its replica.
   */
  #adoptChannels(engine: ViewEngine): void {
    for (const [name, channel] of engine.channels) {
      if (this.#handles.has(name)) continue;
      this.#handles.set(name, new SubgroupChannel(name, this.id, channel));
      if (Object.hasOwn(this.#types, name)) this.subgroup(name);
    }
  }

  /** Starts warm workers for the next view: a predicate worker, and an rdmc worker if messages can be large. */
  #fillSpares(): void {
    const large = Object.values(this.config.subgroups).some((sg) =>
      (sg.maxMessageBytes ?? MULTICAST_DEFAULTS.maxMessageBytes) > (sg.maxSmcPayload ?? MULTICAST_DEFAULTS.maxSmcPayload));
    this.#spares.fill(large ? ['predicate', 'rdmc'] : ['predicate']);
  }

  #newEngine(view: View, plans: readonly SubgroupPlan[], listen: string, previous?: { size: number; voters?: readonly number[]; joined: readonly number[] }): ViewEngine {
    const o = this.#options;
    return new ViewEngine({
      selfId: this.id, view, plans, listen, ...(previous?.size ? { previousSize: previous.size } : {}), ...(previous?.joined.length ? { joined: previous.joined } : {}),
      ...(previous?.voters ? { previousVoters: previous.voters } : {}),
      mailboxBytes: this.#mailboxBytes, spares: this.#spares,
      connectTimeoutMs: this.#timeoutMs,
      // The options' timing, else the configuration's, else the SST's defaults.
      ...(o.heartbeatIntervalMs ?? this.config.heartbeatIntervalMs ? { heartbeatIntervalMs: o.heartbeatIntervalMs ?? this.config.heartbeatIntervalMs } : {}),
      ...(o.suspicionTimeoutMs ?? this.config.suspicionTimeoutMs ? { suspicionTimeoutMs: o.suspicionTimeoutMs ?? this.config.suspicionTimeoutMs } : {}),
      ...(o.fabric ? { fabric: o.fabric } : {}),
      ...(this.#fabricKey ? { authKey: this.#fabricKey } : {}),
      schedule: () => this.#schedule(),
      memberFailed: (engine, member, reason) => {
        if (reason === 'AUTH_FAILED') { // the member this one dialled could not prove the key
          this.#fabricRefusals.report(new AuthError(`member ${this.id} refused member ${member}'s fabric port: it could not prove the group's key; give every member the same secret`, String(member)));
        }
        this.#memberFailed(engine, member, reason);
      },
      rejected: (reason) => {
        // Only a failed proof: the other refusals (an id the view does not expect yet, a second connection
        // for a lane) also happen among members while views change, and are no one's attempt to get in.
        if (reason === 'AUTH_FAILED') {
          this.#fabricRefusals.report(new AuthError(`member ${this.id} refused a connection to its fabric port: the caller could not prove the group's key (a process without it, or with another, tried to connect as a member); give every member the same secret`));
        }
      },
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

  /** Where this member takes join requests (give it to new members as `contact`). */
  get contactAddress(): string { return formatAddress({ host: this.#host, port: this.#contact?.port ?? 0 }); }

  /** Names of the subgroups this member serves. */
  get subgroups(): string[] { return [...this.#handles.keys()]; }

  /**
   * This member's shard of subgroup `name` as a replicated object of the class given in `types` (or
   * `type`): ordered calls, queries, replies. Typed from the class C — pass it, or name it
   * (`group.subgroup<typeof TicketBook>('tickets')`) — so `query()` offers its declared queries.
   */
  subgroup<C extends ReplicatedClass = ReplicatedClass>(name: string, type?: C): ReplicatedObject<InstanceType<C>, QueryName<C>> {
    type Handle = ReplicatedObject<InstanceType<C>, QueryName<C>>;
    this.#checkOpen();
    const existing = this.#objects.get(name);
    if (existing) return existing as unknown as Handle;
    const channel = this.channel(name);
    const cls = (type ?? (Object.hasOwn(this.#types, name) ? this.#types[name] : undefined)) as ReplicatedClass<InstanceType<C>> | undefined;
    if (!cls) throw new ConfigError(`subgroup '${name}' has no class: pass types: { ${name}: YourClass } to Group.join, or group.subgroup('${name}', YourClass)`);
    const object = ReplicatedObject.attach(new cls(), channel, {
      type: cls, maxMessageBytes: channel.maxMessageBytes, maxCallsInFlight: channel.maxQueuedMessages,
      ...(this.#options.callTimeoutMs ? { timeoutMs: this.#options.callTimeoutMs } : {}),
      onError: (error) => this.#warn(error),
    });
    this.#objects.set(name, object as unknown as ReplicatedObject<object>);
    return object as unknown as Handle;
  }

  /** This member's shard of subgroup `name` as a channel of bytes: send(), onDeliver(), sendTo(), onDirect(). */
  channel(name: string): SubgroupChannel {
    this.#checkOpen();
    const channel = this.#handles.get(name);
    if (channel) return channel;
    if (!Object.hasOwn(this.config.subgroups, name)) throw new ConfigError(`no subgroup '${name}'; the configuration has: ${Object.keys(this.config.subgroups).join(', ')}`);
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
      reject(new TimeoutError(`member ${this.id} could not leave cleanly within leaveTimeoutMs = ${limitMs} ms (view ${this.view.vid} could not change: are enough members alive?); it has closed, and the others remove it as failed`));
      void this.close();
    }, limitMs);
    this.#leaving = { resolve, reject, promise, asked: false, timer };
    promise.then(() => clearTimeout(timer), () => clearTimeout(timer));
    if (this.#stopped || this.#rejoining) { // partitioned: no change can take it out; rejoining: it is out
      const partitioned = this.#rejoining ? null : this.partitioned;
      if (partitioned) reject(partitioned); else resolve(); // first: close() rejects a leave still pending
      void this.close();
      return promise;
    }
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
    this.#closeContact();
    for (const { session } of this.#firstJoiners ?? []) session.close();
    this.#firstViewAdequate?.(); // a first view still forming gives up (#formFirstView sees #closed)
    for (const receiver of this.#receivers.values()) receiver.fail(new ClosedError('this group'));
    for (const o of this.#objects.values()) o.close(reason);
    for (const h of this.#handles.values()) h.stop(reason);
    await this.#previous?.close();
    await this.#engine?.close();
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
      for (const [name, channel] of engine.channels) if (!this.#receivers.has(name)) channel.step();
    }
    if (this.#installing || this.#stopped) return;
    if (this.#leaving) this.#askToLeave(engine);
    if (engine.protocol.wedged) {
      // Others' suspicions count as this member's (they are OR-ed): report each once, as if detected here.
      for (const m of engine.protocol.suspects()) if (m !== this.id) this.#memberFailed(engine, m, 'SUSPECTED_BY_PEER', false);
    }
    const result = engine.protocol.step();
    if (!result) return;
    switch (result.type) {
      case 'commit': void this.#install(engine, result.change); break;
      case 'partitioned': this.#partition(engine, result.unreachable); break;
      case 'suspected': void this.#removed(engine.view.vid + 1, result.by); break;
      case 'dissolved': void this.#removed(engine.view.vid + 1); break;
    }
  }

  #directTo(engine: ViewEngine, tag: number, from: number, bytes: Uint8Array): void {
    if (isStateTag(tag)) {
      for (const receiver of this.#receivers.values()) if (stateTag(receiver.transfer) === tag) receiver.accept(from, bytes);
      return;
    }
    const channel = engine.byTag.get(tag);
    if (!channel) return;
    this.#handles.get(channel.subgroup)?.direct(from, bytes); // held there while the shard's state is on its way
  }

  #memberFailed(engine: ViewEngine, member: number, reason: string, step = true): void {
    if (this.#closed || engine !== this.#engine || engine.closed || engine.protocol.applied) return;
    if (!engine.view.members.includes(member) || this.#failed.has(member)) return;
    this.#failed.add(member);
    engine.mailboxes.fail(member, reason);
    engine.protocol.suspect(member);
    this.emit('memberFailed', member, reason);
    if (step) this.#stepAll();
  }

  #partition(engine: ViewEngine, unreachable: number[]): void {
    const error = new PartitionedError(this.id, engine.view.vid, engine.view.members.length, unreachable);
    const contacts = this.#rejoinContacts(engine);
    this.#stop(error);
    this.emit('partitioned', error);
    if (this.#leaving) { this.#leaving.reject(error); void this.close(); return; }
    if (this.#rejoinOn) void this.#rejoin(contacts, error);
  }

  /** This member can go no further in its view: sends and calls in flight reject with `error`. */
  #stop(error: Error): void {
    this.#stopped = error;
    this.#closeContact();
    for (const h of this.#handles.values()) h.stop(error);
    for (const o of this.#objects.values()) o.failCalls(error);
  }

  /** A peer sent something this member cannot use, and it goes on: a `warning`, or a process warning. */
  #warn(error: Error): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', error);
    else process.emitWarning(error);
  }

  /**
   * This member cannot go on in the group (its state did not arrive): it stops, says so on the `error` event
   * (a joiner whose Group.join is still pending learns it from the rejection instead), and closes, so that
   * the others remove it.
   */
  #fail(error: Error): void {
    if (this.#closed || this.#stopped) return;
    this.#stop(error);
    if (this.#running) this.emit('error', error);
    void this.close();
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
    // State this member was still waiting for cannot come now (its source is in the old view's mailboxes),
    // and without it this member can neither serve its shard nor hand the state on: it stops and leaves,
    // and the next change removes it.
    if (this.#receivers.size > 0) {
      const [subgroup] = this.#receivers.keys();
      const error = new StateTransferError(`the state of subgroup '${subgroup}' did not arrive before view ${change.next.vid}: its sender failed or the view changed; start the member again to rejoin`);
      for (const receiver of this.#receivers.values()) receiver.fail(error);
      this.#fail(error);
      return;
    }
    const goesOn = change.next.members.includes(this.id);
    for (const [name, handle] of this.#handles) {
      const end = old.channels.get(name)?.finishView(change.trims, goesOn);
      handle.detach(end?.unsent ?? [], end?.deliveredBeyond);
    }
    T.push(['trimmed', performance.now()]);
    const next = change.next;
    for (const j of change.joined) this.#hosts.set(j.id, j.host);
    this.#retryJoinersOutside(change);
    if (!next.members.includes(this.id)) return this.#removed(next.vid);
    // A next view the configuration cannot be planned on (too few members for a shard's minimum) stops this
    // member with the ConfigError on the 'error' event: both the transfers and the engine plan it.
    let transfers: Transfer[];
    let engine: ViewEngine;
    try {
      transfers = stateTransfers(this.config, old.view.members, next.members);
      engine = this.#newEngine(next, planView(this.config, next.members), `${formatHost(this.#bindHost)}:0`, previousOf(old, change));
    } catch (error) {
      this.#stop(error as Error);
      this.emit('error', error as Error);
      return;
    }
    T.push(['engine', performance.now()]);
    this.#previous = old;
    this.#listenFor(engine);
    old.protocol.publishNextPort(change.proposal, engine.port);
    const timeoutMs = this.#timeoutMs;
    // Waiting for the members' ports is bounded by the suspicion timeout, not connectTimeoutMs, and for
    // their connections by the old view finding them gone (below): a member that died after the commit
    // must cost the group no more than a suspicion would; whoever is missing then is taken for failed in
    // the new view, and the next change removes it.
    const installLimitMs = Math.min(timeoutMs, this.#suspicionTimeoutMs);
    // Admission: each wait on a joiner — for its answer to the offer (#admit), for its connection (below) —
    // lasts one suspicion timeout at most: one that vanished at any step (or never meant to join) costs the
    // group that much, and it counts toward no majority of the view it entered (ts/membership/protocol.ts).
    if (change.proposer === this.id) void this.#admit(old, change, installLimitMs);
    T.push(['published', performance.now()]);
    // The old view's state, exactly to the trim, for the members that enter a shard of this one's: no
    // shard delivers until its handle is attached below, so it is taken here, after the port is out and
    // off the others' path.
    const snapshots = transfers.filter((t) => t.source === this.id).map((t) => ({ t, crc: new Checksums(), ...this.#snapshotOf(t.subgroup) }));
    for (const { crc, bytes } of snapshots) crc.warm(bytes.byteLength); // boots while the view installs
    // A joiner's port is its proposer's to publish (0 when the joiner did not answer its offer in time, or
    // left): that wait ends when the proposer publishes — within a suspicion timeout of offering — or is
    // found gone; it is a wait on the proposer, not on the joiner.
    const addresses = await this.#nextAddresses(old, engine, change, { memberMs: installLimitMs, joinerMs: timeoutMs });
    const joinerDeadline = performance.now() + installLimitMs;
    for (const j of change.joined) this.#joinSessions.get(j.id)?.send({ addresses });
    this.#closeJoinSessions();
    T.push(['ports', performance.now()]);
    const dropSnapshots = () => { for (const { crc } of snapshots) void crc.close(); };
    if (this.#closed) { dropSnapshots(); await engine.close(); return; }
    // A member that dies after publishing its port is not waited for either (it may be the one to dial):
    // the old view finds it gone — its connection broke, or its heartbeat stalled for a suspicion timeout
    // — and that ends the wait; one that is alive there but slow here (its workers start cold when two
    // changes follow each other on a busy machine) is waited for, up to connectTimeoutMs. A joiner has no
    // old view to show it alive: it is waited for until its deadline only.
    const joiners = new Set(change.joined.map((j) => j.id));
    const unreachable = await engine.connectReachable(addresses, timeoutMs, (peer) => old.gone().has(peer) || (joiners.has(peer) && performance.now() > joinerDeadline))
      .catch(() => next.members.filter((m) => m !== this.id));
    T.push(['connected', performance.now()]);
    if (this.#closed) { dropSnapshots(); await engine.close(); return; }
    // Failures are per view: a removed member's id may come back as a joiner, which starts unsuspected.
    for (const id of [...this.#failed]) if (!next.members.includes(id) || change.joined.some((j) => j.id === id)) this.#failed.delete(id);
    this.#engine = engine;
    this.#takeChannels(engine);
    const restored = this.#awaitState(transfers);
    this.#installing = false;
    engine.start(() => this.#stepAll());
    if (this.#contact) engine.protocol.publishContactPort(this.#contact.port);
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
      this.#fillSpares(); // now, not once the old view closed: a change that follows at once finds them warm
      this.emit('view', next, change.removed, change.joined.map((j) => j.id));
      for (const snapshot of snapshots) this.#sendState(engine, snapshot);
    } else {
      dropSnapshots();
    }
    if (this.#previous === old) this.#previous = null;
    await old.close();
    restored.catch((error: Error) => this.#fail(error));
    this.#fillSpares();
  }

  /**
   * The next view's members with the ports they published in the old table (a joiner's, in its proposer's
   * row); a member the old view suspects (it failed after the commit) is left out, and so is a joiner whose
   * proposer failed or that never answered: the new view removes them.
   */
  async #nextAddresses(old: ViewEngine, engine: ViewEngine, change: Change, limits: { memberMs: number; joinerMs: number }): Promise<MemberAddress[]> {
    const memberDeadline = performance.now() + limits.memberMs;
    const joinerDeadline = performance.now() + limits.joinerMs;
    for (;;) {
      // Gone: suspected in the old table, or failed since this member applied the commit (its connection
      // broke, or its heartbeat stalled) — a member that died after the commit never publishes a port.
      const suspects = old.gone();
      const out: MemberAddress[] = [];
      let missingMember = false, missingJoiner = false;
      for (const id of change.next.members) {
        if (id === this.id) { out.push({ id, address: formatAddress({ host: this.#host, port: engine.port }) }); continue; }
        const k = change.joined.findIndex((j) => j.id === id);
        const port = k >= 0 ? old.protocol.joinPortOf(change, k) : old.protocol.nextPortOf(id, change.proposal);
        const gone = suspects.has(k >= 0 ? change.proposer : id);
        if (port !== null && port > 0) out.push({ id, address: formatAddress({ host: this.#hosts.get(id) ?? this.#host, port }) });
        else if (port === null && !gone) { if (k >= 0) missingJoiner = true; else missingMember = true; }
      }
      const now = performance.now();
      if (this.#closed || ((!missingMember || now > memberDeadline) && (!missingJoiner || now > joinerDeadline))) return out;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        this.#portWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  // ---- joins ------------------------------------------------------------------------------------------

  /** Starts this member's contact server and publishes its port in the view's table. */
  async #openContact(): Promise<void> {
    if (!this.#contact) {
      const configured = this.config.members.find((m) => m.id === this.id)?.contact;
      const listen = this.#options.contactListen ?? configured ?? `${formatHost(this.#bindHost)}:0`;
      this.#contact = await ContactServer.listen(listen, (session, joiner) => this.#onJoinRequest(session, joiner), {
        key: this.#key, tls: this.config.contactTls === true, warn: (error) => this.#warn(error), // refused attempts, rate-limited by the server
      });
    }
    if (this.#closed) { this.#closeContact(); return; }
    this.#engine?.protocol.publishContactPort(this.#contact.port);
  }

  /**
   * Waits until the joiners are enough for a first view, offers it to them and takes their ports. A joiner
   * that does not answer within one suspicion timeout must not be in view 0 — it would count toward its
   * majority, and enough vanished joiners would stop the rest — so the ones that answered are told to ask
   * again (they do, at once) and the first view is gathered anew without it.
   */
  async #gatherFirstView(timeoutMs: number): Promise<{ view: View; joined: Array<{ session: ContactSession; joiner: Joiner }>; ports: number[] }> {
    for (;;) {
      const enough = () => firstViewPlans(this.config, [this.id, ...this.#firstJoiners!.map((w) => w.joiner.id)]);
      if (!enough()) await new Promise<void>((resolve) => { this.#firstViewAdequate = resolve; }); // (those that asked during a failed offer may be enough)
      this.#firstViewAdequate = null;
      if (this.#closed) throw new ClosedError('this group member');
      const joined = this.#firstJoiners!.splice(0);
      const view: View = { vid: 0, members: [this.id, ...joined.map(({ joiner }) => joiner.id)] };
      for (const { joiner } of joined) this.#hosts.set(joiner.id, joiner.host);
      const offer: JoinOffer = {
        view, previous: [], previousSize: view.members.length, joined: [],
        hosts: Object.fromEntries(view.members.map((id) => [id, this.#hosts.get(id)!])),
      };
      const ports = await Promise.all(joined.map(({ session }) => answerTo(session, offer, Math.min(timeoutMs, this.#suspicionTimeoutMs))));
      if (this.#closed) throw new ClosedError('this group member');
      if (ports.every((p) => p > 0)) {
        // Those that asked meanwhile join the running group instead.
        for (const { session } of this.#firstJoiners!.splice(0)) { session.send({ retry: 'the first view has formed; ask again' }); session.close(); }
        this.#firstJoiners = null;
        return { view, joined, ports };
      }
      const silent = joined.filter((_, k) => ports[k] === 0).map(({ joiner }) => joiner.id);
      for (const { session } of joined) { session.send({ retry: `member ${silent.join(', ')} did not answer the first view's offer; forming it again without` }); session.close(); }
    }
  }

  /**
   * The first view by joins (DESIGN.md §6): this member takes joiners in join order until every shard
   * can reach its minimum, then forms view 0 of itself and them — it offers each the view, takes its port,
   * hands out the addresses — and connects like any member.
   */
  async #formFirstView(timeoutMs: number): Promise<void> {
    await this.#openContact();
    const { view, joined, ports } = await this.#gatherFirstView(timeoutMs);
    const self = this.config.members.find((m) => m.id === this.id)!;
    const engine = this.#newEngine(view, planView(this.config, view.members), this.#options.listen ?? self.address);
    this.#engine = engine;
    this.#listenFor(engine);
    this.#adoptChannels(engine);
    const addresses: MemberAddress[] = [{ id: this.id, address: formatAddress({ host: this.#host, port: engine.port }) }];
    joined.forEach(({ joiner }, k) => addresses.push({ id: joiner.id, address: formatAddress({ host: joiner.host, port: ports[k]! }) }));
    for (const { session } of joined) { session.send({ addresses }); session.close(); }
    const unreachable = await engine.connectReachable(addresses, timeoutMs, (peer) => engine.gone().has(peer));
    engine.start(() => this.#stepAll());
    for (const m of new Set(unreachable)) this.#memberFailed(engine, m, 'UNREACHABLE');
    this.#stepAll();
    await engine.whenReady(timeoutMs);
  }

  /**
   * Binds the engine of a view whose peers' ports are not known yet: the grants and the layout are, and
   * those are what expect() needs (the addresses come later, to connectReachable).
   */
  #listenFor(engine: ViewEngine): void {
    engine.listen(engine.view.members.map((id) => ({ id, address: id === this.id ? engine.runtime.address : `${formatHost(this.#host)}:1` })));
  }

  /** A joiner while the first view forms: taken in join order; the view forms once they are enough. */
  #takeFirstJoiner(session: ContactSession, joiner: Joiner): void {
    const waiting = this.#firstJoiners!;
    if (joiner.id === this.id || waiting.some((w) => w.joiner.id === joiner.id)) {
      session.send({ refused: `member ${joiner.id} has asked to join already (or is the member forming the first view); give each member its own id` });
      session.close();
      return;
    }
    const entry = { session, joiner };
    waiting.push(entry);
    session.onClose(() => { const i = this.#firstJoiners?.indexOf(entry) ?? -1; if (i >= 0) this.#firstJoiners!.splice(i, 1); });
    session.send({ accepted: true });
    if (firstViewPlans(this.config, [this.id, ...waiting.map((w) => w.joiner.id)])) this.#firstViewAdequate?.();
  }

  #closeContact(): void {
    this.#contact?.close();
    this.#contact = null;
    if (this.#joinBatchTimer) clearTimeout(this.#joinBatchTimer);
    this.#joinBatchTimer = null;
    for (const { session } of this.#joinBatch.splice(0)) { session.send({ retry: 'this member is stopping' }); session.close(); }
    this.#closeJoinSessions();
  }

  #closeJoinSessions(): void {
    for (const session of this.#joinSessions.values()) session.close();
    this.#joinSessions.clear();
  }

  /**
   * A join request: refused if the id is taken, sent to the leader's contact address if this member does
   * not lead, asked to retry while a change is under way; otherwise batched for the leader's next proposal.
   */
  #onJoinRequest(session: ContactSession, joiner: Joiner): void {
    const engine = this.#engine;
    const answer = (message: Parameters<ContactSession['send']>[0]) => { session.send(message); session.close(); };
    if (this.#closed || this.#stopped || this.#leaving) return answer({ retry: `member ${this.id} is stopping or leaving; ask another member` });
    if (this.#firstJoiners) return this.#takeFirstJoiner(session, joiner);
    if (!engine) return answer({ retry: 'the first view is forming' });
    if (engine.view.members.includes(joiner.id)) {
      // A joiner the view took whose leader failed before it could connect: the group is removing it.
      if (engine.gone().has(joiner.id)) return answer({ retry: `member ${joiner.id} is in view ${engine.view.vid} but failed; the group is removing it` });
      return answer({ inView: true, refused: `member ${joiner.id} is in view ${engine.view.vid} already; give the new member an id the view does not have (${engine.view.members.join(', ')}), or wait until the group removed the old one` });
    }
    if (new TextEncoder().encode(joiner.host).byteLength > JOIN_HOST_BYTES) return answer({ refused: `host '${joiner.host}' is longer than ${JOIN_HOST_BYTES} bytes; give an IP address` });
    const leader = engine.protocol.leader();
    if (leader !== this.id) {
      const port = leader === null ? null : engine.protocol.contactPortOf(leader);
      if (port === null) return answer({ retry: 'the leader has not published its contact address yet' });
      return answer({ redirect: formatAddress({ host: this.#hosts.get(leader!) ?? this.#host, port }) });
    }
    if (this.#installing || !engine.ready || engine.protocol.wedged) return answer({ retry: 'a view change is under way' });
    if (engine.protocol.anyReceiving()) return answer({ retry: 'a member that joined is still receiving state' });
    this.#joinBatch.push({ session, joiner });
    this.#joinBatchTimer ??= setTimeout(() => this.#flushJoins(), JOIN_BATCH_MS);
  }

  /** The batched joiners (distinct ids, at most MAX_JOINS_PER_CHANGE) go into the leader's next proposal. */
  #flushJoins(): void {
    this.#joinBatchTimer = null;
    const batch = this.#joinBatch.splice(0).filter(({ session }) => !session.closed);
    const taken: typeof batch = [];
    for (const entry of batch) {
      if (taken.length < MAX_JOINS_PER_CHANGE && !taken.some((t) => t.joiner.id === entry.joiner.id)) taken.push(entry);
      else { entry.session.send({ retry: 'too many joiners at once, or the same id twice' }); entry.session.close(); }
    }
    if (taken.length === 0) return;
    const engine = this.#engine;
    if (this.#closed || this.#installing || this.#stopped || !engine.protocol.join(taken.map((t) => t.joiner))) {
      for (const { session } of taken) { session.send({ retry: 'a view change is under way, or a member that joined is still receiving state' }); session.close(); }
      return;
    }
    for (const { session, joiner } of taken) {
      session.send({ accepted: true });
      this.#joinSessions.set(joiner.id, session);
    }
    this.#stepAll();
  }

  /** Joiners this member was asked to take that the committed change does not have ask again. */
  #retryJoinersOutside(change: Change): void {
    const inChange = new Set(change.proposer === this.id ? change.joined.map((j) => j.id) : []);
    for (const [id, session] of this.#joinSessions) {
      if (inChange.has(id)) continue;
      session.send({ retry: 'the change that would have taken it ended another way' });
      session.close();
      this.#joinSessions.delete(id);
    }
  }

  /**
   * As the proposer of `change`: tells each joiner the view it enters, takes the port its new engine
   * listens on, and publishes the ports in the old table (0 for a joiner that did not answer: the new view
   * removes it).
   */
  async #admit(old: ViewEngine, change: Change, answerMs: number): Promise<void> {
    const next = change.next;
    const { size: previousSize, voters: previousVoters } = previousOf(old, change);
    const offer: JoinOffer = {
      view: next, previous: old.view.members, previousSize, previousVoters: [...previousVoters],
      joined: change.joined.map((j) => j.id),
      hosts: Object.fromEntries(next.members.map((id) => [id, this.#hosts.get(id) ?? this.#host])),
    };
    const ports = await Promise.all(change.joined.map((j) => answerTo(this.#joinSessions.get(j.id), offer, answerMs)));
    // A joiner that did not answer in time is out of this view (the others leave it out and suspect it):
    // told so, it asks again once the group has removed it, instead of connecting to a view without it.
    change.joined.forEach((j, k) => {
      if (ports[k]! > 0) return;
      const session = this.#joinSessions.get(j.id);
      this.#joinSessions.delete(j.id);
      session?.send({ retry: `member ${j.id} did not answer its offer of view ${next.vid} within the suspicion timeout (${this.#suspicionTimeoutMs} ms); the group removes it, then it may join again` });
      session?.close();
    });
    if (!old.closed) old.protocol.publishJoinPorts(change.proposal, ports);
  }

  /**
   * A new member: asks the contacts to let it in, builds the view the leader offers, gives the leader its
   * port, connects to the members it is told, and waits for the start barrier and its subgroups' state.
   */
  async #enter(contacts: string[], timeoutMs: number, rejoining: boolean): Promise<void> {
    this.#fillSpares(); // the workers of its first view boot while the leader takes it in
    const { session, offer } = await requestJoin(contacts, { id: this.id, host: this.#host }, timeoutMs, { rejoining, key: this.#key, tls: this.config.contactTls === true });
    try {
      for (const [id, host] of Object.entries(offer.hosts)) this.#hosts.set(Number(id), host);
      const view = offer.view;
      const engine = this.#newEngine(view, planView(this.config, view.members), `${formatHost(this.#bindHost)}:0`, { size: offer.previousSize, joined: offer.joined, ...(isIdList(offer.previousVoters) ? { voters: offer.previousVoters } : {}) });
      this.#engine = engine;
      this.#listenFor(engine);
      this.#takeChannels(engine, true);
      const restored = this.#awaitState(stateTransfers(this.config, offer.previous, view.members));
      session.send({ port: engine.port });
      const reply = await session.next(timeoutMs);
      if ('retry' in reply) throw retryableJoin(`member ${this.id} was offered view ${view.vid} but the leader went on without it (${reply.retry})`);
      if (!('addresses' in reply)) throw new JoinError(`member ${this.id} was offered view ${view.vid} but the leader answered ${JSON.stringify(reply)} instead of the members' addresses; join again`);
      session.close();
      // A member that died meanwhile is not waited for: the others, connected here, mark it in their rows.
      const unreachable = await engine.connectReachable(reply.addresses, timeoutMs, (peer) => engine.gone().has(peer));
      engine.start(() => this.#stepAll());
      for (const m of unreachable) this.#memberFailed(engine, m, 'UNREACHABLE');
      this.#stepAll();
      await engine.whenReady(timeoutMs).catch((error: Error) => {
        // The others went on without it (it was slower than the suspicion timeout, or the view changed
        // before it was connected): it stopped and closed (#removed); it may ask again.
        if (this.#stopped instanceof RemovedError) throw retryableJoin(`member ${this.id} entered view ${view.vid} but was removed before every member was connected (${this.#stopped.message})`);
        throw error;
      });
      await restored;
    } finally {
      session.close();
    }
  }

  /**
   * What `subgroup` holds here, to send to a member entering its shard (empty without a replicated object);
   * `failed` says why there is none when the class's snapshot() threw (the recipients are told).
   */
  #snapshotOf(subgroup: string): { bytes: Uint8Array; version: bigint; failed?: string } {
    const object = this.#objects.get(subgroup);
    if (!object) return { bytes: new Uint8Array(0), version: -1n };
    try {
      return { bytes: object.snapshot(), version: object.appliedVersion };
    } catch (error) {
      this.emit('error', error as Error);
      return { bytes: new Uint8Array(0), version: -1n, failed: (error as Error).message };
    }
  }

  /** Sends one shard's snapshot to the members entering it, over the new view's mailboxes. */
  #sendState(engine: ViewEngine, { t, crc, ...snapshot }: { t: Transfer; crc: Checksums; bytes: Uint8Array; version: bigint; failed?: string }): void {
    const tag = stateTag(t);
    const send = (to: number, record: Uint8Array) => engine.mailboxes.send(to, tag, record);
    sendState(send, t.recipients, snapshot, engine.mailboxes.maxPayload, crc).catch((error: Error) => {
      // A recipient that failed meanwhile is the view change's business (it removes it), not an error here.
      if (error instanceof PeerFailedError || this.#closed || this.#engine !== engine) return;
      this.emit('error', error);
      // The recipients must not wait for the rest: they are told why, and stop.
      sendState(send, t.recipients, { bytes: new Uint8Array(0), version: -1n, failed: error.message }, engine.mailboxes.maxPayload, new Checksums()).catch(() => {});
    });
  }

  /**
   * Waits for the state of every shard this member enters (its shards hold their deliveries until then),
   * restores each subgroup's object from it, and lets the shard step.
   */
  #awaitState(transfers: readonly Transfer[]): Promise<void> {
    const done = this.#receiveStates(transfers);
    done.catch(() => {}); // its caller awaits it later: a failure meanwhile must not count as unhandled
    return done;
  }

  async #receiveStates(transfers: readonly Transfer[]): Promise<void> {
    const mine = transfers.filter((t) => t.recipients.includes(this.id));
    if (mine.some((t) => t.source !== null)) this.#engine.protocol.setReceiving(true);
    for (const t of mine) {
      if (t.source !== null) continue;
      const cls = this.#types[t.subgroup];
      if (cls) this.#objects.get(t.subgroup)?.reset(new cls());
    }
    await Promise.all(mine.filter((t) => t.source !== null).map(async (t) => {
      const receiver = new StateReceiver(t, this.#timeoutMs);
      this.#receivers.set(t.subgroup, receiver);
      // Point-to-point messages (queries) for the shard, this member's own too, wait in its handle until the
      // state is restored.
      const handle = this.#handles.get(t.subgroup);
      handle?.holdDirect();
      let restored = false;
      try {
        const { bytes, version } = await receiver.done;
        // Stopped meanwhile (another transfer failed, a change cut this one off): that is the reason.
        if (this.#stopped || this.#closed) throw this.#stopped ?? new ClosedError('this group member');
        const object = this.#objects.get(t.subgroup);
        if (object && bytes.byteLength > 0) object.restore(bytes, version);
        restored = true;
      } finally {
        if (this.#receivers.get(t.subgroup) === receiver) this.#receivers.delete(t.subgroup);
        if (this.#receivers.size === 0 && !this.#engine.closed) this.#engine.protocol.setReceiving(false);
        this.#schedule();
        handle?.releaseDirect(restored); // last: a handler that throws fails the member, nothing above is skipped
      }
    }));
  }

  /**
   * The next view has no place for this member: it left, or the others went on without it (`suspectedBy`
   * says who suspected it, when it learnt of its removal from their rows rather than from the commit).
   */
  async #removed(vid: number, suspectedBy?: readonly number[]): Promise<void> {
    const error = new RemovedError(this.id, vid, this.#leaving !== null, suspectedBy);
    const contacts = this.#rejoinContacts(this.#engine);
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

  /** Where a member that is out of the group asks to enter it again: every other member's contact address. */
  #rejoinContacts(engine: ViewEngine | undefined): string[] {
    const out = new Set<string>();
    for (const m of engine?.view.members ?? []) {
      const port = m === this.id ? null : engine!.protocol.contactPortOf(m);
      if (port !== null) out.add(formatAddress({ host: this.#hosts.get(m) ?? this.#host, port }));
    }
    for (const m of this.config.members) if (m.id !== this.id && m.contact) out.add(m.contact);
    for (const c of this.#options.contact === undefined ? [] : contactList(this.#options.contact)) out.add(c);
    return [...out];
  }

  /**
   * Rejoin (JoinOptions.rejoin): the old view's engine closes, and this member asks the others' contact
   * addresses to let it into the next view as a joiner — the same id, a fresh engine, its subgroups' state
   * received from a member of each shard — until it is in, closed, or connectTimeoutMs has passed. The
   * handles the owner holds (group.channel, group.subgroup) carry on in the new view.
   */
  async #rejoin(contacts: readonly string[], cause: Error): Promise<void> {
    if (this.#rejoining || this.#closed) return;
    this.#rejoining = true;
    const deadline = performance.now() + this.#timeoutMs;
    let pauseMs = REJOIN_PAUSE_MS.first;
    let last: Error = cause;
    try {
      await this.#closeEngines();
      while (!this.#closed) {
        if (contacts.length === 0) { last = new JoinError(`member ${this.id} knows no other member's contact address to rejoin through; give the members "contact" addresses in the configuration`); break; }
        try {
          this.#failed.clear();
          this.#stopped = null; // the new view's protocol steps
          this.#installing = false; // a removal found while installing ended that install
          await this.#enter([...contacts], Math.max(1, deadline - performance.now()), true);
          if (this.#closed) return;
          await this.#openContact();
          this.#fillSpares();
          this.emit('rejoined', this.view);
          return;
        } catch (error) {
          last = error as Error;
          this.#stopped = cause;
          await this.#closeEngines();
        }
        if (performance.now() + pauseMs >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        pauseMs = Math.min(pauseMs * 2, REJOIN_PAUSE_MS.most);
      }
      if (this.#closed) return;
      const error = new JoinError(`member ${this.id} could not rejoin the group within connectTimeoutMs = ${this.#timeoutMs} ms: ${last.message}`, { cause: last });
      this.emit('rejoinFailed', error);
      await this.close();
    } finally {
      this.#rejoining = false;
    }
  }

  /** Closes this member's engines (a rejoin starts from none). */
  async #closeEngines(): Promise<void> {
    for (const receiver of this.#receivers.values()) receiver.fail(this.#stopped ?? new ClosedError('this group'));
    const previous = this.#previous;
    this.#previous = null;
    await previous?.close();
    await this.#engine?.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('this group member');
  }
}

/**
 * The configuration with Group.join's maxQueuedMessages / maxQueuedBytes in every subgroup (they win over
 * the configured ones); the configuration itself when neither is given.
 */
function withQueueLimits(config: GroupConfig, options: JoinOptions): GroupConfig {
  const { maxQueuedMessages, maxQueuedBytes } = options;
  if (maxQueuedMessages === undefined && maxQueuedBytes === undefined) return config;
  const subgroups = Object.fromEntries(Object.entries(config.subgroups).map(([name, sg]) => [name, {
    ...sg, ...(maxQueuedMessages !== undefined ? { maxQueuedMessages } : {}), ...(maxQueuedBytes !== undefined ? { maxQueuedBytes } : {}),
  }]));
  return { ...config, subgroups };
}

/**
 * What the start barrier of `change`'s next view counts (ts/membership/protocol.ts, allInstalled): the old
 * view's members that counted toward its majority — not its own joiners, which may have vanished — less
 * those that left cleanly.
 */
function previousOf(old: ViewEngine, change: Change): { size: number; voters: number[]; joined: number[] } {
  const voters = old.protocol.votersAmong(old.view.members.filter((m) => !change.left.includes(m)));
  return { size: voters.length, voters, joined: change.joined.map((j) => j.id) };
}

/**
 * Sends a joiner its offer and resolves with the port it answers, or 0 when it closes, answers something
 * else, or takes longer than `answerMs`. Time this member's own event loop stood still (the proposer takes
 * its snapshot of the state right after offering, which can block it for a second or more with 100 MiB)
 * is not the joiner's: the deadline moves by it, as the failure detector discounts its own lateness.
 */
async function answerTo(session: ContactSession | undefined, offer: JoinOffer, answerMs: number): Promise<number> {
  if (!session) return 0;
  session.send({ offer });
  const SLICE_MS = 50;
  let deadline = performance.now() + answerMs;
  for (;;) {
    const sliceMs = Math.min(SLICE_MS, deadline - performance.now());
    if (sliceMs <= 0) return 0;
    const before = performance.now();
    const reply = await session.next(sliceMs).catch((error: Error) => (error instanceof TimeoutError ? undefined : null));
    if (reply === null) return 0; // it closed
    if (reply) return 'port' in reply && Number.isInteger(reply.port) && reply.port > 0 && reply.port < 65536 ? reply.port : 0;
    const stalledMs = performance.now() - before - sliceMs;
    if (stalledMs > SLICE_MS) deadline += stalledMs;
  }
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((id) => Number.isInteger(id) && id >= 0);
}

/** The contact addresses of JoinOptions.contact, checked. */
function contactList(contact: string | string[]): string[] {
  const list = Array.isArray(contact) ? contact : [contact];
  if (list.length === 0) throw new ConfigError('contact must name at least one member\'s contact address, e.g. contact: \'10.0.0.1:7400\'');
  for (const c of list) parseAddress(c, 'contact');
  return list;
}

/** An IPv6 host goes inside brackets in 'host:port'. */
function formatHost(host: string): string {
  return formatAddress({ host, port: 0 }).replace(/:0$/, '');
}
