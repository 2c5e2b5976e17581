// Group.join's options, and their checks, made before anything binds or connects: every option has a check
// in one table (typed by JoinOptions' keys, so an option added without a check does not compile), unknown
// options are refused, and a value that is present is valid or refused — never replaced by a default.

import { MIN_SECRET_BYTES } from './credential.js';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import { checkFabricChoice, type FabricChoice } from '../fabric/choice.js';
import { MAX_MEMBERS } from '../generated/memory-map.js';
import { firstViewPlans } from '../membership/plans.js';
import { checkBoolean, checkInteger, checkName, checkObject, checkString, shown } from '../validate.js';
import {
  MAX_MEMBER_ID, MAX_TIMEOUT_MS, persistentSubgroups, SEND_QUEUE_LIMITS, type GroupConfig, type GroupMember,
} from './config.js';
import type { ReplicatedType } from '../objects/replicated-object.js';
import { checkLogger, type Logger } from './logging.js';

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
  /**
   * Called each time this member's contact port starts taking join requests, with its address (the real port
   * when contactListen asked for port 0). Where the first view forms by joins this comes before join resolves:
   * the moment to tell the others where to ask.
   */
  onContactOpen?: (address: string) => void;
  /**
   * Where this member logs its protocol steps (suspicions, commits, installs, stops, refusals): a pino logger,
   * or anything with its methods (ts/group/logging.ts). Default: none — squall logs nothing unless given one.
   */
  logger?: Logger;
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
   * Which thread runs the control step of this member's ordered shards (receipt, nulls, the receive prefix,
   * stability, pushing the acknowledgements): 'main' (the event loop, between your code) or 'worker' (the
   * predicate worker, woken by the fabric: a member whose event loop is busy — a long task, a GC pause —
   * still acknowledges and takes part in view changes, so the others go on delivering; see
   * docs/architecture.md). Raw shards always run on the main thread. Default: SQUALL_SHARD_ENGINE, else
   * 'worker'.
   */
  shardEngine?: 'main' | 'worker';
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
  /**
   * The directory where this member keeps its persistent subgroups' logs (one directory per shard,
   * `<dataDir>/<subgroup>.<shard>`; docs/persistence-group.md). Needed when the configuration has a
   * subgroup with `persistent: true`; a member started again with the same directory restores its
   * objects from it before it serves. Created when missing.
   */
  dataDir?: string;
  /**
   * A total restart (every member stopped, started again with its dataDir, without contact) rebuilds the last
   * view from the logs of a majority of it: with fewer of its members connected, the first view waits for
   * more, says whom it waits for every 2 s (the `restartWaiting` protocol event), and gives up with a
   * TimeoutError after this long. Default: no limit (an operator starts the others).
   */
  restartWaitMs?: number;
  /**
   * The override for a total restart from a minority of the last view: these members (this one among them)
   * form the first view by themselves, from their own logs — give every one of them the same list. Updates
   * made durable at every member are in each of their logs; what only the members left out had logged is
   * lost, and were those members still running elsewhere, there would be two groups: use it only when the
   * others are gone for good. They come back later by joining through a contact address.
   */
  forceRestart?: number[];
}

/** The smallest and largest point-to-point mailbox (mailboxBytes), a multiple of 8. */
export const MAILBOX_BYTES_RANGE = { min: 4096, max: 1 << 30 } as const;
/** setTimeout's longest delay: a longer call time limit would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const address = (example: string) => (value: unknown, name: string): void => {
  parseAddress(checkString(value, name, example, 300), name);
};
const ms = (min: number, max: number) => (value: unknown, name: string): void => {
  checkInteger(value, `${name} (milliseconds)`, min, max);
};

const CHECKS: { readonly [K in keyof Required<JoinOptions>]: (value: unknown, name: string) => void } = {
  id: (v, name) => { checkInteger(v, name, 0, MAX_MEMBER_ID); },
  config: (v, name) => {
    if (typeof v === 'string') checkString(v, name, "'cluster.json'");
    // validateGroupConfig checks the rest
    else checkObject(v, name, 'a group configuration ({ members, subgroups }) or the path of its JSON file');
  },
  listen: address("'127.0.0.1:7000'"),
  contact: (v, name) => {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || list.length > 1024) {
      throw new ConfigError(`${name} must name at least one member's contact address (at most 1024), `
        + 'e.g. contact: \'10.0.0.1:7400\'');
    }
    list.forEach((c, i) => address("'10.0.0.1:7400'")(c, Array.isArray(v) ? `${name}[${i}]` : name));
  },
  contactListen: address("'127.0.0.1:7400'"),
  onContactOpen: (v, name) => {
    if (typeof v !== 'function') throw new ConfigError(`${name} must be a function (address) => void, got ${shown(v)}`);
  },
  logger: checkLogger,
  types: (v, name) => {
    const types = checkObject(v, name, '{ tickets: TicketBook }');
    for (const key of Reflect.ownKeys(types)) {
      checkName(key, `${name}: the subgroup name`, 'tickets');
      const cls = types[key as string];
      if (typeof cls !== 'function' || cls.prototype === undefined) {
        throw new ConfigError(`${name}.${String(key)} must be a class (constructed with no arguments at every member), `
          + `got ${shown(cls)}`);
      }
    }
  },
  heartbeatIntervalMs: ms(1, MAX_TIMEOUT_MS),
  suspicionTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  shardEngine: (v, name) => { checkShardEngine(v, name); },
  rejoin: (v, name) => { checkBoolean(v, name); },
  leaveTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  connectTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  mailboxBytes: (v, name) => {
    checkInteger(v, name, MAILBOX_BYTES_RANGE.min, MAILBOX_BYTES_RANGE.max, ', a multiple of 8');
    if ((v as number) % 8 !== 0) {
      const { min, max } = MAILBOX_BYTES_RANGE;
      throw new ConfigError(`${name} must be a multiple of 8 from ${min} to ${max}, got ${v as number}`);
    }
  },
  callTimeoutMs: ms(1, MAX_TIMER_MS),
  fabric: (v, name) => { checkFabricChoice(v as FabricChoice, name); },
  maxQueuedMessages: (v, name) => { checkInteger(v, name, 1, SEND_QUEUE_LIMITS.messages); },
  maxQueuedBytes: (v, name) => { checkInteger(v, name, 1, SEND_QUEUE_LIMITS.bytes); },
  secret: (v, name) => {
    const bytes = typeof v === 'string' ? Buffer.byteLength(v) : v instanceof Uint8Array ? v.byteLength : -1;
    if (bytes < 0) {
      throw new ConfigError(`${name} must be a string or a Uint8Array holding the group's secret key (make one with `
        + `\`squall keygen\`), got ${shown(v)}`);
    }
    if (bytes < MIN_SECRET_BYTES) {
      throw new ConfigError(`${name} must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes}); `
        + 'make one with `squall keygen`');
    }
  },
  restartWaitMs: ms(1, MAX_TIMER_MS),
  forceRestart: (v, name) => {
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_MEMBERS) {
      throw new ConfigError(`${name} must list the member ids that form the first view, e.g. [0, 1]`);
    }
    for (const [k, id] of v.entries()) checkInteger(id, `${name}[${k}]`, 0, MAX_MEMBER_ID);
    if (new Set(v).size !== v.length) throw new ConfigError(`${name} names a member twice: ${v.join(', ')}`);
  },
  dataDir: (v, name) => {
    if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) {
      throw new ConfigError(`${name} must be the path of a directory for this member's persistent logs, e.g. `
        + `dataDir: './data/member-0', got ${shown(v)}`);
    }
  },
};

/** The names of Group.join's options. */
export const JOIN_OPTION_NAMES: readonly string[] = Object.keys(CHECKS);

/**
 * Checks Group.join's options: an object, no unknown option, `id` and `config` given, every given value
 * valid. Options left undefined take their documented defaults; the configuration itself is checked by
 * validateGroupConfig.
 */
export function validateJoinOptions(value: unknown): JoinOptions {
  const o = checkObject(value, 'Group.join options', "{ id: 0, config: 'cluster.json' }");
  for (const key of Reflect.ownKeys(o)) {
    if (typeof key !== 'string' || !Object.hasOwn(CHECKS, key)) {
      const names = JOIN_OPTION_NAMES.join(', ');
      throw new ConfigError(`Group.join: unknown option '${String(key)}'; the options are ${names}`);
    }
  }
  if (o.id === undefined) {
    throw new ConfigError("Group.join needs id: this member's id (an integer), e.g. { id: 0, config: 'cluster.json' }");
  }
  if (o.config === undefined) {
    throw new ConfigError('Group.join needs config: the group configuration or the path of its JSON file, '
      + "e.g. { id: 0, config: 'cluster.json' }");
  }
  for (const key of JOIN_OPTION_NAMES) {
    if (o[key] !== undefined) CHECKS[key as keyof JoinOptions](o[key], key);
  }
  return o as unknown as JoinOptions;
}

/**
 * The configuration with Group.join's maxQueuedMessages / maxQueuedBytes in every subgroup (they win over
 * the configured ones); the configuration itself when neither is given.
 */
export function withQueueLimits(config: GroupConfig, options: JoinOptions): GroupConfig {
  const { maxQueuedMessages, maxQueuedBytes } = options;
  if (maxQueuedMessages === undefined && maxQueuedBytes === undefined) return config;
  const subgroups = Object.fromEntries(Object.entries(config.subgroups).map(([name, sg]) => [name, {
    ...sg, ...(maxQueuedMessages !== undefined ? { maxQueuedMessages } : {}),
    ...(maxQueuedBytes !== undefined ? { maxQueuedBytes } : {}),
  }]));
  return { ...config, subgroups };
}

/** The contact addresses of JoinOptions.contact, checked. */
export function contactList(contact: string | string[]): string[] {
  const list = Array.isArray(contact) ? contact : [contact];
  if (list.length === 0) {
    throw new ConfigError('contact must name at least one member\'s contact address, e.g. contact: \'10.0.0.1:7400\'');
  }
  for (const c of list) parseAddress(c, 'contact');
  return list;
}

/**
 * The options checked against the configuration they join: the id is a configured member's (or the member
 * enters through a contact), contactTls has the group's key, a persistent subgroup has a dataDir, and every
 * class names a configured subgroup.
 * Returns this member's configured entry, when it has one.
 */
export function checkAgainstConfig(options: JoinOptions, config: GroupConfig,
  key: Buffer | null): GroupMember | undefined {
  const self = config.members.find((m) => m.id === options.id);
  const entering = options.contact !== undefined;
  if (entering) contactList(options.contact!);
  if (!self && !entering) {
    const ids = config.members.map((m) => m.id).join(', ');
    throw new ConfigError(`member ${options.id} is not in the configuration's members (${ids}); pass one of those ids, `
      + 'or contact: \'host:port\' to join the running group as a new member');
  }
  if (config.contactTls && !key) {
    throw new ConfigError('the configuration sets contactTls, which needs the group\'s secret key (the TLS key is '
      + 'derived from it): pass secret to Group.join, or set SQUALL_SECRET, SQUALL_SECRET_FILE or the '
      + 'configuration\'s "secretFile" (`squall keygen` makes a key)');
  }
  const persistent = persistentSubgroups(config);
  if (persistent.length > 0 && options.dataDir === undefined) {
    throw new ConfigError(`subgroup '${persistent[0]}' is persistent, so member ${options.id} needs a directory for `
      + `its logs: pass dataDir: './data/member-${options.id}' to Group.join (squall node: --data DIR), or drop `
      + '"persistent": true from the configuration');
  }
  if (options.forceRestart) checkForceRestart(options.forceRestart, options, config);
  for (const name of Object.keys(options.types ?? {})) {
    if (!Object.hasOwn(config.subgroups, name)) {
      throw new ConfigError(`types names subgroup '${name}', which the configuration does not have `
        + `(subgroups: ${Object.keys(config.subgroups).join(', ')})`);
    }
  }
  return self;
}

/** forceRestart: a total restart (a dataDir, no contact) from configured members, this one among them. */
function checkForceRestart(ids: readonly number[], options: JoinOptions, config: GroupConfig): void {
  if (options.contact !== undefined || options.dataDir === undefined) {
    throw new ConfigError('forceRestart is for a total restart: a member started with its dataDir and without '
      + 'contact (a member that joins a running group through contact needs no override)');
  }
  const configured = new Set(config.members.map((m) => m.id));
  const stranger = ids.find((id) => !configured.has(id));
  if (stranger !== undefined) {
    throw new ConfigError(`forceRestart names member ${stranger}, which is not in the configuration's members `
      + `(${[...configured].join(', ')})`);
  }
  if (!ids.includes(options.id)) {
    throw new ConfigError(`forceRestart lists the members that form the first view, this one (${options.id}) `
      + `among them; got ${ids.join(', ')}`);
  }
  if (firstViewPlans(config, ids) === null) {
    throw new ConfigError(`forceRestart's members (${ids.join(', ')}) are too few for the subgroups' shards (their `
      + '"members": { "min" }): name more of them');
  }
}

/** A shardEngine value (an option, SQUALL_SHARD_ENGINE, `--engine`): 'main' or 'worker', else a ConfigError. */
export function checkShardEngine(v: unknown, name: string): asserts v is 'main' | 'worker' {
  if (v !== 'main' && v !== 'worker') throw new ConfigError(`${name} must be 'main' or 'worker', got ${shown(v)}`);
}

/** The engine a member uses when `shardEngine` is not given: SQUALL_SHARD_ENGINE, else 'worker'. */
export function shardEngineFromEnv(): 'main' | 'worker' {
  const v = process.env['SQUALL_SHARD_ENGINE'];
  if (v === undefined || v === '') return 'worker';
  checkShardEngine(v, 'SQUALL_SHARD_ENGINE');
  return v;
}
