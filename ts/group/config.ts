// A group's configuration (DESIGN.md §4, §8): the members, and the subgroups that replicate objects among
// them. A subgroup is split into shards; a shard is one replica set; some of a shard's members send.
//
//   {
//     "members": [{ "id": 0, "address": "127.0.0.1:7000", "contact": "127.0.0.1:7400" }, …],
//     "suspicionTimeoutMs": 500,                 (optional, with heartbeatIntervalMs and rejoin: see GroupConfig)
//     "subgroups": {
//       "tickets": { "type": "TicketBook", "shards": 1, "members": { "min": 3, "max": 5 }, "senders": "all" },
//       "log":     { "shards": [{ "members": [0, 1, 2], "senders": [0] }], "mode": "raw" }
//     }
//   }
//
// `planView` turns it into the shards of a view — which member is in which shard, and which of them send —
// as a pure function of (configuration, the view's members in order), so every member computes the same.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import type { MemberAddress } from '../fabric/peers.js';

/** Limits and defaults of DESIGN.md §9. */
export const MULTICAST_DEFAULTS = {
  /** Largest payload sent through the sender's SST slots; larger messages go by RDMC. */
  maxSmcPayload: 10 * 1024,
  /** Messages a sender may have in flight (slots per sender). */
  window: 16,
  /** RDMC block size for large messages. */
  blockBytes: 1 << 20,
  /** Largest message a subgroup carries. */
  maxMessageBytes: 64 << 20,
} as const;

export type DeliveryMode = 'ordered' | 'raw';

export interface ExplicitShard {
  /** Member ids, in rank order. */
  members: number[];
  /** Member ids that send (a subset of members); default all. */
  senders?: number[];
}

export interface SubgroupConfig {
  /**
   * The name of the class the subgroup replicates, for programs that start members from a configuration
   * file (`squall node` resolves it against the built-in examples and its --module). Group.join ignores
   * it: there the classes come from its `types` option.
   */
  type?: string;
  /** A number of shards filled from the view's members in order, or the shards spelled out. */
  shards: number | ExplicitShard[];
  /** With a number of shards: how many members each shard takes from the view. */
  members?: { min: number; max: number };
  /** With a number of shards: 'all', or how many of each shard's first members send. Default 'all'. */
  senders?: 'all' | number;
  mode?: DeliveryMode;
  maxSmcPayload?: number;
  window?: number;
  blockBytes?: number;
  maxMessageBytes?: number;
}

/** A member of the first view: where it accepts connections, and where it takes join requests (optional). */
export interface GroupMember extends MemberAddress {
  /** Where this member's contact server listens for new members (default: a free port on its host). */
  contact?: string;
}

export interface GroupConfig {
  /** The members of the first view, in rank order. New members join later through a contact address. */
  members: GroupMember[];
  subgroups: Record<string, SubgroupConfig>;
  /**
   * Failure detection for every member started from this configuration: each member's heartbeat interval,
   * and how long a heartbeat may stall before the others suspect it (DESIGN.md §6). Group.join's own
   * options win over these; without either, 10 ms and 100 ms. Raise suspicionTimeoutMs where event loops
   * are often busy for longer (a loaded machine): a member busy past it is removed from the group.
   */
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  /**
   * Whether a member removed by the others (suspected) joins again by itself. `squall node` reads it
   * (default true; --rejoin / --no-rejoin win) and passes it to Group.join as `rejoin`.
   */
  rejoin?: boolean;
  /**
   * A file holding the group's secret key (ts/group/credential.ts; `squall keygen` makes one). A relative
   * path is relative to the configuration file when loaded from one (loadGroupConfig), else to the working
   * directory. Group.join's `secret`, SQUALL_SECRET and SQUALL_SECRET_FILE win over it. Never the key itself:
   * configurations get copied around, keys must not.
   */
  secretFile?: string;
}

/** The configuration's top-level keys. */
const KNOWN_TOP = ['members', 'subgroups', 'heartbeatIntervalMs', 'suspicionTimeoutMs', 'rejoin', 'secretFile'];

export interface ShardPlan {
  /** Member ids in rank order. */
  members: number[];
  /** Member ids that send, in sender-rank order (sender rank r sends sequence numbers ≡ r mod S). */
  senders: number[];
}

export interface SubgroupPlan {
  name: string;
  /** Index of the subgroup, in configuration order. */
  index: number;
  mode: DeliveryMode;
  maxSmcPayload: number;
  window: number;
  blockBytes: number;
  maxMessageBytes: number;
  shards: ShardPlan[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KNOWN_SUBGROUP = new Set(['type', 'shards', 'members', 'senders', 'mode', 'maxSmcPayload', 'window', 'blockBytes', 'maxMessageBytes']);

function positiveInt(v: unknown, where: string, max = 2 ** 31): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new ConfigError(`${where} must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Checks a group configuration's shape; every error names the field at fault and what to write. */
export function validateGroupConfig(value: unknown, source = 'group configuration'): GroupConfig {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${source} must be an object with 'members' and 'subgroups'`);
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN_TOP.includes(key)) throw new ConfigError(`${source}: unknown field '${key}'; known: ${KNOWN_TOP.join(', ')}`);
  validateTiming(o, source);
  if (!Array.isArray(o.members) || o.members.length === 0) throw new ConfigError(`${source}: 'members' must be a non-empty array of { id, address }`);
  const ids = new Set<number>();
  o.members.forEach((m: unknown, i: number) => {
    const mm = m as Record<string, unknown>;
    if (!mm || typeof mm !== 'object' || !Number.isInteger(mm.id) || (mm.id as number) < 0 || (mm.id as number) >= 0xffff || typeof mm.address !== 'string') {
      throw new ConfigError(`${source}: members[${i}] must be { "id": integer 0..65534, "address": "host:port", "contact"?: "host:port" }`);
    }
    if (mm.contact !== undefined) {
      if (typeof mm.contact !== 'string') throw new ConfigError(`${source}: members[${i}].contact must be "host:port"`);
      parseAddress(mm.contact, `${source}: members[${i}].contact`);
    }
    if (ids.has(mm.id as number)) throw new ConfigError(`${source}: member id ${mm.id} appears twice`);
    ids.add(mm.id as number);
    parseAddress(mm.address, `${source}: members[${i}].address`);
  });
  if (!o.subgroups || typeof o.subgroups !== 'object' || Array.isArray(o.subgroups) || Object.keys(o.subgroups).length === 0) {
    throw new ConfigError(`${source}: 'subgroups' must be an object with at least one subgroup, e.g. { "tickets": { "shards": 1, "members": { "min": 3, "max": 5 } } }`);
  }
  for (const [name, sg] of Object.entries(o.subgroups as Record<string, unknown>)) validateSubgroup(name, sg, ids, source);
  return o as unknown as GroupConfig;
}

/** heartbeatIntervalMs and suspicionTimeoutMs (whole ms, the suspicion longer than the heartbeat) and rejoin. */
function validateTiming(o: Record<string, unknown>, source: string): void {
  for (const key of ['heartbeatIntervalMs', 'suspicionTimeoutMs'] as const) {
    if (o[key] !== undefined) positiveInt(o[key], `${source}: ${key} (milliseconds)`, 3_600_000);
  }
  const heartbeat = o.heartbeatIntervalMs as number | undefined, suspicion = o.suspicionTimeoutMs as number | undefined;
  if (heartbeat !== undefined && suspicion !== undefined && suspicion <= heartbeat) {
    throw new ConfigError(`${source}: suspicionTimeoutMs (${suspicion}) must exceed heartbeatIntervalMs (${heartbeat}), or every member is suspected`);
  }
  if (o.rejoin !== undefined && typeof o.rejoin !== 'boolean') throw new ConfigError(`${source}: rejoin must be true or false, got ${JSON.stringify(o.rejoin)}`);
  if (o.secretFile !== undefined && (typeof o.secretFile !== 'string' || o.secretFile.length === 0 || o.secretFile.includes('\0'))) {
    throw new ConfigError(`${source}: secretFile must be the path of a file holding the group's secret key (make one with \`squall keygen > group.key\`), got ${JSON.stringify(o.secretFile)}`);
  }
}

function validateSubgroup(name: string, value: unknown, ids: Set<number>, source: string): void {
  const where = `${source}: subgroup '${name}'`;
  if (!NAME.test(name)) throw new ConfigError(`${where}: the name must be an identifier (letters, digits, _)`);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${where} must be an object`);
  const s = value as Record<string, unknown>;
  for (const key of Object.keys(s)) if (!KNOWN_SUBGROUP.has(key)) throw new ConfigError(`${where}: unknown field '${key}'; known: ${[...KNOWN_SUBGROUP].join(', ')}`);
  if (s.type !== undefined && (typeof s.type !== 'string' || !NAME.test(s.type))) {
    throw new ConfigError(`${where}: type must name a class, e.g. "TicketBook", got ${JSON.stringify(s.type)}`);
  }
  if (s.mode !== undefined && s.mode !== 'ordered' && s.mode !== 'raw') throw new ConfigError(`${where}: mode must be 'ordered' or 'raw'`);
  for (const key of ['maxSmcPayload', 'window', 'blockBytes', 'maxMessageBytes'] as const) if (s[key] !== undefined) positiveInt(s[key], `${where}: ${key}`);
  if (typeof s.shards === 'number') {
    positiveInt(s.shards, `${where}: shards`, 1024);
    const m = s.members as { min?: unknown; max?: unknown } | undefined;
    if (!m || typeof m !== 'object') throw new ConfigError(`${where}: with "shards": ${s.shards}, give "members": { "min": N, "max": M } (members per shard)`);
    const min = positiveInt(m.min, `${where}: members.min`, 1024);
    const max = positiveInt(m.max, `${where}: members.max`, 1024);
    if (max < min) throw new ConfigError(`${where}: members.max (${max}) is below members.min (${min})`);
    if (s.senders !== undefined && s.senders !== 'all') {
      const n = positiveInt(s.senders, `${where}: senders ('all' or a count)`, 1024);
      if (n > min) throw new ConfigError(`${where}: senders (${n}) exceeds members.min (${min}): a shard could have fewer members than senders`);
    }
  } else if (Array.isArray(s.shards) && s.shards.length > 0) {
    if (s.members !== undefined || s.senders !== undefined) {
      throw new ConfigError(`${where}: with the shards spelled out, give members and senders inside each shard`);
    }
    s.shards.forEach((shard: unknown, i: number) => {
      const sh = shard as Record<string, unknown>;
      const w = `${where}: shards[${i}]`;
      if (!sh || !Array.isArray(sh.members) || sh.members.length === 0) throw new ConfigError(`${w} must be { "members": [ids…], "senders"?: [ids…] }`);
      const own = new Set<number>();
      for (const id of sh.members as unknown[]) {
        if (!ids.has(id as number)) throw new ConfigError(`${w}: member ${JSON.stringify(id)} is not in the group's members`);
        if (own.has(id as number)) throw new ConfigError(`${w}: member ${id} appears twice`);
        own.add(id as number);
      }
      if (sh.senders !== undefined) {
        if (!Array.isArray(sh.senders) || sh.senders.length === 0) throw new ConfigError(`${w}: senders must be a non-empty array of member ids`);
        for (const id of sh.senders as unknown[]) if (!own.has(id as number)) throw new ConfigError(`${w}: sender ${JSON.stringify(id)} is not a member of the shard`);
      }
    });
  } else {
    throw new ConfigError(`${where}: shards must be a number, or an array of { "members": [ids…] }`);
  }
}

export function loadGroupConfig(path: string): GroupConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`cannot read the group configuration '${path}': ${(cause as Error).message}`, { cause });
  }
  const config = validateGroupConfig(json, path);
  // The key file sits beside the configuration, wherever the process was started from.
  if (config.secretFile !== undefined && !isAbsolute(config.secretFile)) config.secretFile = resolve(dirname(path), config.secretFile);
  return config;
}

/**
 * The subgroups and shards of a view whose members are `view` (ids, in view order). Counted shards take
 * members from the view in order — shard 0 its first `max`, then shard 1, … — each subgroup starting again
 * from the front, so a member can serve several subgroups. Throws ConfigError when a shard cannot reach its
 * minimum (the view is not yet adequate).
 */
export function planView(config: GroupConfig, view: readonly number[]): SubgroupPlan[] {
  return Object.entries(config.subgroups).map(([name, sg], index) => {
    const common = {
      name, index, mode: sg.mode ?? 'ordered',
      maxSmcPayload: sg.maxSmcPayload ?? MULTICAST_DEFAULTS.maxSmcPayload,
      window: sg.window ?? MULTICAST_DEFAULTS.window,
      blockBytes: sg.blockBytes ?? MULTICAST_DEFAULTS.blockBytes,
      maxMessageBytes: sg.maxMessageBytes ?? MULTICAST_DEFAULTS.maxMessageBytes,
    } as const;
    if (Array.isArray(sg.shards)) {
      const inView = new Set(view);
      return { ...common, shards: sg.shards.map((sh) => {
        const members = sh.members.filter((id) => inView.has(id));
        return { members, senders: (sh.senders ?? sh.members).filter((id) => inView.has(id)) };
      }) };
    }
    const { min, max } = sg.members!;
    const shards: ShardPlan[] = [];
    const perShard = Math.min(max, Math.floor(view.length / sg.shards));
    if (perShard < min) {
      throw new ConfigError(`subgroup '${name}' needs ${sg.shards} shard(s) of at least ${min} members; the view has ${view.length} members`);
    }
    for (let s = 0; s < sg.shards; s++) {
      const members = view.slice(s * perShard, (s + 1) * perShard);
      const senders = sg.senders === undefined || sg.senders === 'all' ? members : members.slice(0, sg.senders);
      shards.push({ members: [...members], senders: [...senders] });
    }
    return { ...common, shards };
  });
}

/** The plans of a view of `members`, or null when some shard cannot reach its minimum with them yet. */
export function firstViewPlans(config: GroupConfig, members: readonly number[]): SubgroupPlan[] | null {
  try {
    return planView(config, members);
  } catch (error) {
    if (error instanceof ConfigError) return null;
    throw error;
  }
}
