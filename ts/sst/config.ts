// The configuration of a static SST as a plain object or a JSON file:
//
//   { "members": [{ "id": 0, "address": "127.0.0.1:7000" }, …],
//     "columns": { "counter": { "type": "i64" } },
//     "heartbeatIntervalMs": 10, "suspicionTimeoutMs": 100, "connectTimeoutMs": 10000, "arenaBytes": 67108864 }

import { readFileSync } from 'node:fs';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import { checkInteger, checkKeys, checkName, checkObject, checkString } from '../validate.js';
import type { ColumnSpecs } from './layout.js';
import type { MemberAddress } from './member.js';

/**
 * How long a member's heartbeat may stand still before it is suspected, by default: 1 s. A crash is found
 * at once without it (the dead process's connections break), so the timeout only has to catch members that
 * hang or are cut off, and must never catch a live member on a busy machine. On the 2-core development
 * machine with a busy process on each core beside a group, the predicate worker's heartbeat still advanced
 * at least every few tens of milliseconds; 1 s leaves a wide margin over that, is what etcd chose for its
 * election timeout, and is long next to a garbage-collection pause. The detector also discounts its own
 * lateness (workers/predicate-worker.ts), so a checker that was itself descheduled blames nobody. Lower it
 * (suspicionTimeoutMs) on dedicated machines to find hung members sooner.
 */
export const DEFAULT_SUSPICION_TIMEOUT_MS = 1000;

export interface SstConfig {
  members: MemberAddress[];
  columns: ColumnSpecs;
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  connectTimeoutMs?: number;
  arenaBytes?: number;
}

const KNOWN = new Set([
  'members', 'columns', 'heartbeatIntervalMs', 'suspicionTimeoutMs', 'connectTimeoutMs', 'arenaBytes',
]);

/** Checks the shape of a configuration object; throws ConfigError naming the field at fault. */
export function validateSstConfig(value: unknown, source = 'configuration'): SstConfig {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${source} must be a JSON object such as ` +
      '{ "members": [{ "id": 0, "address": "127.0.0.1:7000" }], "columns": { … } }');
  }
  const o = value as Record<string, unknown>;
  checkKeys(o, [...KNOWN], source);
  if (!Array.isArray(o.members) || o.members.length === 0) {
    throw new ConfigError(`${source}: 'members' must be a non-empty array of { id, address }`);
  }
  o.members.forEach((m: unknown, i: number) => {
    const where = `${source}: members[${i}]`;
    const mm = checkObject(m, where, '{ "id": 0, "address": "127.0.0.1:7000" }');
    checkKeys(mm, ['id', 'address'], where);
    checkInteger(mm.id, `${where}.id`, 0, 0xfffe);
    parseAddress(checkString(mm.address, `${where}.address`, '"127.0.0.1:7000"', 300), `${where}.address`);
  });
  if (o.columns !== undefined) {
    const columns = checkObject(o.columns, `${source}: 'columns'`, '{ "counter": { "type": "i64" } }');
    for (const name of Reflect.ownKeys(columns)) checkName(name, `${source}: the column name`, '"counter"');
  }
  for (const key of ['heartbeatIntervalMs', 'suspicionTimeoutMs', 'connectTimeoutMs'] as const) {
    if (o[key] !== undefined) {
      checkInteger(o[key], `${source}: '${key}'`, 1, 3_600_000, ' (a positive number of milliseconds)');
    }
  }
  if (o.arenaBytes !== undefined) {
    checkInteger(o.arenaBytes, `${source}: 'arenaBytes'`, 1, 2 ** 32, ' (a positive number of bytes)');
  }
  return { ...(o as unknown as SstConfig), columns: (o.columns ?? {}) as ColumnSpecs };
}

export function loadSstConfig(path: string): SstConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read the configuration file '${path}': ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`'${path}' is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return validateSstConfig(json, path);
}
