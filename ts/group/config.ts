// A group's configuration (DESIGN.md §4, §8): the members, and the subgroups that replicate objects among
// them. A subgroup is split into shards; a shard is one replica set; some of a shard's members send.
//
//   {
//     "members": [{ "id": 0, "address": "127.0.0.1:7000", "contact": "127.0.0.1:7400" }, …],
//     "suspicionTimeoutMs": 500,                 (optional, with heartbeatIntervalMs and rejoin: see GroupConfig)
//     "subgroups": {
//       "tickets": { "type": "TicketBook", "shards": 1, "members": { "min": 3, "max": 5 }, "senders": "all" },
//       "log":     { "shards": [{ "members": [0, 1, 2], "senders": [0] }], "mode": "raw" },
//       "ledger":  { "shards": 1, "members": { "min": 3, "max": 3 }, "persistent": true }   (needs dataDir)
//     }
//   }
//
// This file checks a configuration's shape and loads it. What a view makes of the subgroups — which member
// is in which shard, and which of them send — is ts/membership/plans.ts (planView), with the subgroups'
// shape (SubgroupConfig) and defaults (MULTICAST_DEFAULTS).

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { SubgroupConfig } from '../membership/plans.js';
import { checkBoolean, checkInteger, checkKeys, checkName, checkObject, checkString, shown } from '../validate.js';

/** The largest maxQueuedMessages and maxQueuedBytes a configuration or Group.join may set. */
export const SEND_QUEUE_LIMITS = { messages: 1 << 24, bytes: 2 ** 40 } as const;

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
   * options win over these; without either, 10 ms and 1000 ms. The heartbeat is advanced off the main
   * thread, so a busy event loop does not stall it; a member whose process is stopped or starved past the
   * timeout is removed from the group (and, with rejoin, joins again).
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
  /**
   * Encrypt the contact port's connections with TLS 1.3, keyed by the group's secret (default false;
   * needs a key; every member and joiner must agree). The fabric is never encrypted: docs/security.md.
   */
  contactTls?: boolean;
  /**
   * The group's name, written into the identity of every persistent log (docs/persistence-group.md): a
   * member refuses a data directory whose logs belong to another group. Default "squall": give distinct
   * groups distinct names when their members could share a data directory.
   */
  name?: string;
}

/** The configuration's top-level keys. */
const KNOWN_TOP = [
  'members', 'subgroups', 'heartbeatIntervalMs', 'suspicionTimeoutMs', 'rejoin', 'secretFile', 'contactTls', 'name',
];

const KNOWN_SUBGROUP = [
  'type', 'shards', 'members', 'senders', 'mode', 'maxSmcPayload', 'window', 'blockBytes', 'maxMessageBytes',
  'maxQueuedMessages', 'maxQueuedBytes', 'persistent', 'snapshotEvery', 'snapshotEveryBytes',
];
const KNOWN_MEMBER = ['id', 'address', 'contact'];
const KNOWN_SHARD = ['members', 'senders'];
/** The highest member id (0xffff marks "no member" in the tables). */
export const MAX_MEMBER_ID = 0xfffe;
/** The longest and shortest timing values, in ms (heartbeat, suspicion and the other time limits). */
export const MAX_TIMEOUT_MS = 3_600_000;
const SUBGROUP_EXAMPLE = '{ "tickets": { "shards": 1, "members": { "min": 3, "max": 5 } } }';

function positiveInt(v: unknown, where: string, max = 2 ** 31): number {
  return checkInteger(v, where, 1, max);
}

/** The limits a subgroup may set: each with its range. */
const SUBGROUP_LIMITS: ReadonlyArray<readonly [key: string, max: number]> = [
  ['maxSmcPayload', 2 ** 31], ['window', 2 ** 31], ['blockBytes', 2 ** 31], ['maxMessageBytes', 2 ** 31],
  ['maxQueuedMessages', SEND_QUEUE_LIMITS.messages], ['maxQueuedBytes', SEND_QUEUE_LIMITS.bytes],
];

/** Checks a group configuration's shape; every error names the field at fault and what to write. */
export function validateGroupConfig(value: unknown, source = 'group configuration'): GroupConfig {
  const example = `{ "members": [{ "id": 0, "address": "127.0.0.1:7000" }], "subgroups": { … } }`;
  const o = checkObject(value, source, example);
  checkKeys(o, KNOWN_TOP, source);
  validateTiming(o, source);
  if (!Array.isArray(o.members) || o.members.length === 0) {
    throw new ConfigError(`${source}: 'members' must be a non-empty array of { id, address }`);
  }
  const ids = new Set<number>();
  o.members.forEach((m: unknown, i: number) => {
    const where = `${source}: members[${i}]`;
    const mm = checkObject(m, where, '{ "id": 0, "address": "127.0.0.1:7000", "contact"?: "127.0.0.1:7400" }');
    checkKeys(mm, KNOWN_MEMBER, where);
    const id = checkInteger(mm.id, `${where}.id`, 0, MAX_MEMBER_ID);
    parseAddress(checkString(mm.address, `${where}.address`, '"127.0.0.1:7000"', 300), `${where}.address`);
    if (mm.contact !== undefined) {
      parseAddress(checkString(mm.contact, `${where}.contact`, '"127.0.0.1:7400"', 300), `${where}.contact`);
    }
    if (ids.has(id)) throw new ConfigError(`${source}: member id ${id} appears twice`);
    ids.add(id);
  });
  const subgroups = checkObject(o.subgroups, `${source}: 'subgroups'`, SUBGROUP_EXAMPLE);
  if (Reflect.ownKeys(subgroups).length === 0) {
    throw new ConfigError(
      `${source}: 'subgroups' must be an object with at least one subgroup, e.g. ${SUBGROUP_EXAMPLE}`);
  }
  if (o.name !== undefined) checkName(o.name, `${source}: name`, '"tickets_eu"');
  for (const name of Reflect.ownKeys(subgroups)) {
    checkName(name, `${source}: the subgroup name`, '"tickets"');
    validateSubgroup(name as string, subgroups[name as string], ids, source);
  }
  return o as unknown as GroupConfig;
}

/**
 * heartbeatIntervalMs and suspicionTimeoutMs (whole ms, the suspicion longer than the heartbeat), rejoin,
 * secretFile and contactTls.
 */
function validateTiming(o: Record<string, unknown>, source: string): void {
  for (const key of ['heartbeatIntervalMs', 'suspicionTimeoutMs'] as const) {
    if (o[key] !== undefined) checkInteger(o[key], `${source}: ${key} (milliseconds)`, 1, MAX_TIMEOUT_MS);
  }
  checkTimingPair(o.heartbeatIntervalMs as number | undefined, o.suspicionTimeoutMs as number | undefined, source);
  if (o.rejoin !== undefined) checkBoolean(o.rejoin, `${source}: rejoin`);
  if (o.contactTls !== undefined) checkBoolean(o.contactTls, `${source}: contactTls`);
  const file = o.secretFile;
  if (file !== undefined && (typeof file !== 'string' || file.length === 0 || file.includes('\0'))) {
    throw new ConfigError(`${source}: secretFile must be the path of a file holding the group's secret key `
      + `(make one with \`squall keygen > group.key\`), got ${JSON.stringify(file)}`);
  }
}

/** The suspicion timeout must exceed the heartbeat interval, or every member is suspected. */
export function checkTimingPair(heartbeat: number | undefined, suspicion: number | undefined, source: string): void {
  if (heartbeat !== undefined && suspicion !== undefined && suspicion <= heartbeat) {
    throw new ConfigError(`${source}: suspicionTimeoutMs (${suspicion}) must exceed heartbeatIntervalMs `
      + `(${heartbeat}), or every member is suspected`);
  }
}

function validateSubgroup(name: string, value: unknown, ids: Set<number>, source: string): void {
  const where = `${source}: subgroup '${name}'`;
  const s = checkObject(value, where, '{ "shards": 1, "members": { "min": 3, "max": 5 } }');
  checkKeys(s, KNOWN_SUBGROUP, where);
  if (s.type !== undefined) {
    if (typeof s.type !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.type)) {
      throw new ConfigError(`${where}: type must name a class, e.g. "TicketBook", got ${shown(s.type)}`);
    }
    checkName(s.type, `${where}: type`, '"TicketBook"');
  }
  if (s.mode !== undefined && s.mode !== 'ordered' && s.mode !== 'raw') {
    throw new ConfigError(`${where}: mode must be 'ordered' or 'raw', got ${shown(s.mode)}`);
  }
  for (const [key, max] of SUBGROUP_LIMITS) if (s[key] !== undefined) positiveInt(s[key], `${where}: ${key}`, max);
  validatePersistence(s, where);
  if (typeof s.shards === 'number') {
    validateCountedShards(s, where);
  } else if (Array.isArray(s.shards) && s.shards.length > 0 && s.shards.length <= 1024) {
    if (s.members !== undefined || s.senders !== undefined) {
      throw new ConfigError(`${where}: with the shards spelled out, give members and senders inside each shard`);
    }
    s.shards.forEach((shard: unknown, i: number) => validateShard(shard, `${where}: shards[${i}]`, ids));
  } else {
    throw new ConfigError(
      `${where}: shards must be a number, or an array of 1 to 1024 { "members": [ids…] }, got ${shown(s.shards)}`);
  }
}

/** persistent (a boolean; ordered mode only), snapshotEvery (records) and snapshotEveryBytes (with persistent). */
function validatePersistence(s: Record<string, unknown>, where: string): void {
  if (s.persistent !== undefined) checkBoolean(s.persistent, `${where}: persistent`);
  const limits = [['snapshotEvery', 'records', 2 ** 31], ['snapshotEveryBytes', 'bytes', 2 ** 50]] as const;
  for (const [key, unit, max] of limits) {
    if (s[key] === undefined) continue;
    positiveInt(s[key], `${where}: ${key} (${unit})`, max);
    if (s.persistent !== true) {
      throw new ConfigError(`${where}: ${key} applies to a persistent subgroup: add "persistent": true`);
    }
  }
  if (s.persistent === true && s.mode === 'raw') {
    throw new ConfigError(`${where}: a persistent subgroup keeps the ordered log of its updates, so its mode `
      + `must be 'ordered' (the default): drop "mode": "raw" or "persistent": true`);
  }
}

/** The names of the configuration's persistent subgroups. */
export function persistentSubgroups(config: GroupConfig): string[] {
  return Object.entries(config.subgroups).filter(([, sg]) => sg.persistent === true).map(([name]) => name);
}

/** A number of shards: members { min, max } per shard, and senders 'all' or a count up to min. */
function validateCountedShards(s: Record<string, unknown>, where: string): void {
  positiveInt(s.shards, `${where}: shards`, 1024);
  const m = s.members as { min?: unknown; max?: unknown } | undefined;
  if (!m || typeof m !== 'object' || Array.isArray(m)) {
    throw new ConfigError(
      `${where}: with "shards": ${s.shards}, give "members": { "min": N, "max": M } (members per shard)`);
  }
  checkKeys(m, ['min', 'max'], `${where}: members`);
  const min = positiveInt(m.min, `${where}: members.min`, 1024);
  const max = positiveInt(m.max, `${where}: members.max`, 1024);
  if (max < min) throw new ConfigError(`${where}: members.max (${max}) is below members.min (${min})`);
  if (s.senders !== undefined && s.senders !== 'all') {
    const n = positiveInt(s.senders, `${where}: senders ('all' or a count)`, 1024);
    if (n > min) {
      throw new ConfigError(
        `${where}: senders (${n}) exceeds members.min (${min}): a shard could have fewer members than senders`);
    }
  }
}

/** A shard spelled out: distinct members of the group, and senders (optional) among them. */
function validateShard(shard: unknown, w: string, ids: Set<number>): void {
  const sh = checkObject(shard, w, '{ "members": [0, 1, 2], "senders"?: [0] }');
  checkKeys(sh, KNOWN_SHARD, w);
  if (!Array.isArray(sh.members) || sh.members.length === 0) {
    throw new ConfigError(`${w} must be { "members": [ids…], "senders"?: [ids…] }`);
  }
  const own = new Set<number>();
  for (const id of sh.members as unknown[]) {
    if (typeof id !== 'number' || !ids.has(id)) {
      throw new ConfigError(`${w}: member ${shown(id)} is not in the group's members`);
    }
    if (own.has(id)) throw new ConfigError(`${w}: member ${id} appears twice`);
    own.add(id);
  }
  if (sh.senders === undefined) return;
  if (!Array.isArray(sh.senders) || sh.senders.length === 0) {
    throw new ConfigError(`${w}: senders must be a non-empty array of member ids`);
  }
  const senders = new Set<number>();
  for (const id of sh.senders as unknown[]) {
    if (typeof id !== 'number' || !own.has(id)) {
      throw new ConfigError(`${w}: sender ${shown(id)} is not a member of the shard`);
    }
    if (senders.has(id)) throw new ConfigError(`${w}: sender ${id} appears twice`);
    senders.add(id);
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
  if (config.secretFile !== undefined && !isAbsolute(config.secretFile)) {
    config.secretFile = resolve(dirname(path), config.secretFile);
  }
  return config;
}

