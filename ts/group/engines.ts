// How a Group member makes each view's engine (ts/group/view-engine.ts): the options every engine shares
// (timing, fabric, key, warm workers, and where its events go), where it binds, and the addresses its peers
// are reached at. The member driver asks for the next view's engine through DriverHost.buildView.

import { formatAddress, parseAddress } from '../address.js';
import { AuthError, ConfigError } from '../errors.js';
import { JOIN_HOST_BYTES } from '../membership/columns.js';
import type { FabricChoice } from '../fabric/choice.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { ShardEngine } from '../multicast/shard.js';
import type { View } from '../membership/view.js';
import type { SpareWorkers } from '../member/spare-workers.js';
import { MULTICAST_DEFAULTS, planView, type SubgroupPlan } from '../membership/plans.js';
import type { GroupConfig } from './config.js';
import type { JoinOptions } from './join-options.js';
import { CONTACT_LIMITS, WarningGate } from './contact.js';
import type { DriverHost, Timers } from './driver-parts.js';
import { ViewEngine, type EngineOptions } from './view-engine.js';
import type { PreviousView } from './view-parts.js';

/** How often an install looks again for the next view's ports when no step comes (a step looks at once). */
const PORT_POLL_MS = 20;

/** Node's timers, for the member driver: one that is pending never keeps a closing member alive. */
const TIMERS: Timers = {
  after: (delayMs, wake) => {
    const t = setTimeout(wake, delayMs);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** What a Group's member driver gets from its engines (the rest of DriverHost is the Group's events). */
type DriverFabric = Pick<DriverHost<ViewEngine>, 'selfId' | 'clock' | 'timers' | 'limits' | 'buildView' | 'addressOf'>;

/** What every view's engine is made with, apart from the view itself. */
type EngineBase = Omit<EngineOptions, 'selfId' | 'view' | 'plans' | 'listen' | 'previous'>;

/** The settings every engine shares: the options' timing, else the configuration's, else the SST's. */
export interface EngineSettings {
  mailboxBytes: number;
  connectTimeoutMs: number;
  heartbeatIntervalMs?: number | undefined;
  suspicionTimeoutMs?: number | undefined;
  shardEngine?: ShardEngine | undefined;
  fabric?: FabricChoice | undefined;
  /** The key every fabric connection proves (derived from the group's secret), or null in an open group. */
  fabricKey: Uint8Array | null;
  spares: SpareWorkers;
}

/** Where the engines' events go. */
export interface EngineEvents {
  schedule(): void;
  /** `step` false: more follow, and the last steps (EngineOptions.memberFailed). */
  memberFailed(engine: ViewEngine, member: number, reason: string, step?: boolean): void;
  /** View `vid`'s fabric connected to a member or lost it (EngineOptions.connection), while that view is news. */
  connection?(vid: number, member: number, state: 'connected' | 'lost', reason?: string): void;
  /** A refused fabric connection (rate-limited like the contact port's refusals). */
  warn(error: Error): void;
  error(error: Error): void;
}

/** Where this member binds and where its peers are reached. */
export interface EngineHosts { host: string; bindHost: string; hosts: Map<number, string> }

export class MemberEngines {
  readonly selfId: number;
  readonly #config: GroupConfig;
  readonly #base: EngineBase;
  readonly #spares: SpareWorkers;
  readonly #connectTimeoutMs: number;
  /** Refused fabric connections, reported at most as often as the contact port's refusals. */
  readonly #refusals: WarningGate;
  /** The host the others reach this member at (its configured address's, when it binds a wildcard). */
  readonly host: string;
  /** The host it binds: `listen`'s (0.0.0.0 and :: bind every interface). */
  readonly bindHost: string;
  /** The host of every member this one has known (the configuration's, and joiners'): peers' addresses. */
  readonly hosts: Map<number, string>;

  constructor(selfId: number, config: GroupConfig, settings: EngineSettings, events: EngineEvents, where: EngineHosts) {
    this.selfId = selfId;
    this.#config = config;
    const { warningsPerWindow, warningWindowMs } = CONTACT_LIMITS;
    this.#refusals = new WarningGate(events.warn, warningsPerWindow, warningWindowMs, 'refused fabric connections');
    this.#base = this.#baseOf(settings, events);
    this.#spares = settings.spares;
    this.#connectTimeoutMs = settings.connectTimeoutMs;
    this.host = where.host;
    this.bindHost = where.bindHost;
    this.hosts = where.hosts;
  }

  #baseOf(s: EngineSettings, events: EngineEvents): EngineBase {
    const { heartbeatIntervalMs, suspicionTimeoutMs, shardEngine, fabric, fabricKey } = s;
    return {
      ...(shardEngine ? { shardEngine } : {}),
      mailboxBytes: s.mailboxBytes, spares: s.spares, connectTimeoutMs: s.connectTimeoutMs,
      ...(heartbeatIntervalMs ? { heartbeatIntervalMs } : {}),
      ...(suspicionTimeoutMs ? { suspicionTimeoutMs } : {}),
      ...(fabric ? { fabric } : {}),
      ...(fabricKey ? { authKey: fabricKey } : {}),
      schedule: () => events.schedule(),
      memberFailed: (engine, member, reason, step) => {
        if (reason === 'AUTH_FAILED') { // the member this one dialled could not prove the key
          this.#refusals.report(new AuthError(`member ${this.selfId} refused member ${member}'s fabric port: it could `
            + 'not prove the group\'s key; give every member the same secret', String(member)));
        }
        events.memberFailed(engine, member, reason, step);
      },
      rejected: (reason) => {
        // Only a failed proof: the other refusals (an id the view does not expect yet, a second connection
        // for a lane) also happen among members while views change, and are no one's attempt to get in.
        if (reason === 'AUTH_FAILED') {
          this.#refusals.report(new AuthError(`member ${this.selfId} refused a connection to its fabric port: the `
            + 'caller could not prove the group\'s key (a process without it, or with another, tried to connect as a '
            + 'member); give every member the same secret'));
        }
      },
      connection: (engine, member, state, reason) => {
        // A view's connections end with it once changed: not news — but for a member the change removed, whose
        // loss can reach this thread after the others' suspicions changed the view.
        const applied = engine.protocol.applied;
        const news = !applied || (state === 'lost' && applied.removed.includes(member));
        if (!engine.closed && news) events.connection?.(engine.view.vid, member, state, reason);
      },
      error: (error) => events.error(error),
    };
  }

  /** An engine for `view`, bound to `listen`, not yet listening. */
  create(view: View, plans: readonly SubgroupPlan[], listen: string, previous?: PreviousView): ViewEngine {
    return new ViewEngine({ ...this.#base, selfId: this.selfId, view, plans, listen, previous });
  }

  /**
   * The engine of a view this member enters after the group has run (an install, or a joiner's first view):
   * it listens on a fresh port of its host, the others learn (through the old table, or the joiner's offer).
   */
  forNextView(view: View, previous: PreviousView): ViewEngine {
    const engine = this.create(view, planView(this.#config, view.members), `${formatHost(this.bindHost)}:0`, previous);
    try {
      this.listenFor(engine);
    } catch (error) {
      void engine.close();
      throw error;
    }
    return engine;
  }

  /**
   * Binds the engine of a view whose peers' ports are not known yet: the grants and the layout are, and
   * those are what expect() needs (the addresses come later, to connect).
   */
  listenFor(engine: ViewEngine): void {
    const placeholder = `${formatHost(this.host)}:1`;
    const address = (id: number) => (id === this.selfId ? engine.runtime.address : placeholder);
    engine.listen(engine.view.members.map((id) => ({ id, address: address(id) })));
  }

  /**
   * The member driver's side of the fabric in a Group (DriverHost): the real clock and timers, the limits
   * (`suspicionTimeoutMs`: the one in force), and each next view's engine.
   */
  driverParts(suspicionTimeoutMs: number): DriverFabric {
    return {
      selfId: this.selfId, clock: performance, timers: TIMERS,
      limits: { connectTimeout: this.#connectTimeoutMs, suspicionTimeout: suspicionTimeoutMs, portPoll: PORT_POLL_MS },
      buildView: (view, previous) => this.forNextView(view, previous),
      addressOf: (member, port) => this.addressOf(member, port),
    };
  }

  /**
   * Starts warm workers for the next view's engine (ts/member/spare-workers.ts): a predicate worker, and an
   * rdmc worker if messages can be large.
   */
  fillSpares(): void {
    const { maxMessageBytes, maxSmcPayload } = MULTICAST_DEFAULTS;
    const large = Object.values(this.#config.subgroups)
      .some((sg) => (sg.maxMessageBytes ?? maxMessageBytes) > (sg.maxSmcPayload ?? maxSmcPayload));
    this.#spares.fill(large ? ['predicate', 'rdmc'] : ['predicate']);
  }

  /** Where `member` accepts connections at `port`. */
  addressOf(member: number, port: number): string {
    return formatAddress({ host: this.hosts.get(member) ?? this.host, port });
  }

  /**
   * Where state streams go (StateSyncParts.stream): this member offers them on the host it binds, for
   * `timeoutMs`; another member's are at its host.
   */
  streams(timeoutMs: number): { place: { host: string; timeoutMs: number }; hostOf(member: number): string } {
    return { place: { host: this.bindHost, timeoutMs }, hostOf: (member) => this.hosts.get(member) ?? this.host };
  }

  /** This member's address at `port`, and each joiner's at the port it answered: a first view by joins. */
  addresses(port: number, joiners: ReadonlyArray<{ id: number; host: string; port: number }>): MemberAddress[] {
    return [
      { id: this.selfId, address: formatAddress({ host: this.host, port }) },
      ...joiners.map((j) => ({ id: j.id, address: formatAddress({ host: j.host, port: j.port }) })),
    ];
  }
}

/** An IPv6 host goes inside brackets in 'host:port'. */
export function formatHost(host: string): string {
  return formatAddress({ host, port: 0 }).replace(/:0$/, '');
}

/**
 * Where a member binds (`listen`, else its configured address), and the host the others reach it at: its
 * configured address's when it binds a wildcard (0.0.0.0 and :: bind every interface); `hosts` holds every
 * configured member's.
 */
export function placeOf(config: GroupConfig, options: JoinOptions, self: GroupConfig['members'][number] | undefined) {
  const listen = options.listen ?? self?.address ?? '127.0.0.1:0';
  const bindHost = parseAddress(listen, 'listen').host;
  const wildcard = bindHost === '0.0.0.0' || bindHost === '::';
  if (wildcard && !self) {
    throw new ConfigError(`a new member must listen on the address the others reach it at, not ${bindHost}: `
      + 'give listen: \'<its IP address>:0\'');
  }
  const host = wildcard ? parseAddress(self!.address, 'address').host : bindHost;
  if (new TextEncoder().encode(host).byteLength > JOIN_HOST_BYTES) {
    throw new ConfigError(`listen host '${host}' is longer than ${JOIN_HOST_BYTES} bytes; give an IP address`);
  }
  const hosts = new Map(config.members.map((m) => [m.id, parseAddress(m.address, 'address').host]));
  hosts.set(options.id, host);
  return { listen, host, bindHost, hosts };
}
