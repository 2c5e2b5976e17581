// Group.join's options, checked before anything binds or connects: every option has a check in one table
// (typed by JoinOptions' keys, so an option added without a check does not compile), unknown options are
// refused, and a value that is present is valid or refused — never replaced by a default.

import { MIN_SECRET_BYTES } from './credential.js';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import { checkFabricChoice, type FabricChoice } from '../fabric/choice.js';
import { checkBoolean, checkInteger, checkName, checkObject, checkString, shown } from '../validate.js';
import { MAX_MEMBER_ID, MAX_TIMEOUT_MS, SEND_QUEUE_LIMITS } from './config.js';
import type { JoinOptions } from './group.js';

/** The smallest and largest point-to-point mailbox (mailboxBytes), a multiple of 8. */
export const MAILBOX_BYTES_RANGE = { min: 4096, max: 1 << 30 } as const;
/** setTimeout's longest delay: a longer call time limit would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const address = (example: string) => (value: unknown, name: string): void => {
  parseAddress(checkString(value, name, example, 300), name);
};
const ms = (min: number, max: number) => (value: unknown, name: string): void => { checkInteger(value, `${name} (milliseconds)`, min, max); };

const CHECKS: { readonly [K in keyof Required<JoinOptions>]: (value: unknown, name: string) => void } = {
  id: (v, name) => { checkInteger(v, name, 0, MAX_MEMBER_ID); },
  config: (v, name) => {
    if (typeof v === 'string') checkString(v, name, "'cluster.json'");
    else checkObject(v, name, "a group configuration ({ members, subgroups }) or the path of its JSON file"); // validateGroupConfig checks the rest
  },
  listen: address("'127.0.0.1:7000'"),
  contact: (v, name) => {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || list.length > 1024) throw new ConfigError(`${name} must name at least one member's contact address (at most 1024), e.g. contact: '10.0.0.1:7400'`);
    list.forEach((c, i) => address("'10.0.0.1:7400'")(c, Array.isArray(v) ? `${name}[${i}]` : name));
  },
  contactListen: address("'127.0.0.1:7400'"),
  types: (v, name) => {
    const types = checkObject(v, name, '{ tickets: TicketBook }');
    for (const key of Reflect.ownKeys(types)) {
      checkName(key, `${name}: the subgroup name`, 'tickets');
      const cls = types[key as string];
      if (typeof cls !== 'function' || cls.prototype === undefined) {
        throw new ConfigError(`${name}.${String(key)} must be a class (constructed with no arguments at every member), got ${shown(cls)}`);
      }
    }
  },
  heartbeatIntervalMs: ms(1, MAX_TIMEOUT_MS),
  suspicionTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  rejoin: (v, name) => { checkBoolean(v, name); },
  leaveTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  connectTimeoutMs: ms(1, MAX_TIMEOUT_MS),
  mailboxBytes: (v, name) => {
    checkInteger(v, name, MAILBOX_BYTES_RANGE.min, MAILBOX_BYTES_RANGE.max, ', a multiple of 8');
    if ((v as number) % 8 !== 0) throw new ConfigError(`${name} must be a multiple of 8 from ${MAILBOX_BYTES_RANGE.min} to ${MAILBOX_BYTES_RANGE.max}, got ${v as number}`);
  },
  callTimeoutMs: ms(1, MAX_TIMER_MS),
  fabric: (v, name) => { checkFabricChoice(v as FabricChoice, name); },
  maxQueuedMessages: (v, name) => { checkInteger(v, name, 1, SEND_QUEUE_LIMITS.messages); },
  maxQueuedBytes: (v, name) => { checkInteger(v, name, 1, SEND_QUEUE_LIMITS.bytes); },
  secret: (v, name) => {
    const bytes = typeof v === 'string' ? Buffer.byteLength(v) : v instanceof Uint8Array ? v.byteLength : -1;
    if (bytes < 0) throw new ConfigError(`${name} must be a string or a Uint8Array holding the group's secret key (make one with \`squall keygen\`), got ${shown(v)}`);
    if (bytes < MIN_SECRET_BYTES) throw new ConfigError(`${name} must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes}); make one with \`squall keygen\``);
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
      throw new ConfigError(`Group.join: unknown option '${String(key)}'; the options are ${JOIN_OPTION_NAMES.join(', ')}`);
    }
  }
  if (o.id === undefined) throw new ConfigError("Group.join needs id: this member's id (an integer), e.g. { id: 0, config: 'cluster.json' }");
  if (o.config === undefined) throw new ConfigError("Group.join needs config: the group configuration or the path of its JSON file, e.g. { id: 0, config: 'cluster.json' }");
  for (const key of JOIN_OPTION_NAMES) {
    if (o[key] !== undefined) CHECKS[key as keyof JoinOptions](o[key], key);
  }
  return o as unknown as JoinOptions;
}
