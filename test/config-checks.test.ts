// Every value of every Group.join option, every group-configuration key and the command line's numeric
// flags is checked (issue 13): a bad value — wrong type, out of range, NaN, a string of digits, a name
// every JavaScript object already has — is refused with a ConfigError naming the option or key, never
// replaced by a default; good values are still accepted. Table-driven: one row per bad value.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../ts/errors.js';
import { validateGroupConfig, type GroupConfig } from '../ts/group/config.js';
import { Group, type JoinOptions } from '../ts/group/group.js';
import { JOIN_OPTION_NAMES, shardEngineFromEnv, validateJoinOptions } from '../ts/group/join-options.js';
import { createLogger } from '../ts/group/logging.js';
import { validateSstConfig } from '../ts/sst/config.js';
import { parseNonNegative, parsePositiveInt } from '../ts/cli/units.js';
import { KeyValueStore } from '../ts/examples/key-value-store.js';
import { startCli } from './support/cli-runs.js';

const members = [
  { id: 0, address: '127.0.0.1:7000' }, { id: 1, address: '127.0.0.1:7001' }, { id: 2, address: '127.0.0.1:7002' },
];
const kv = { shards: 1, members: { min: 3, max: 3 } };
const good = (): Record<string, unknown> => structuredClone({ members, subgroups: { kv } });

/** The JS-internal names no subgroup, class or `types` key may take. */
const INTERNAL = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
/** Numbers and look-alikes every positive integer setting refuses. */
const NOT_POSITIVE_INT: unknown[] = [-5, 0, 1.5, NaN, Infinity, '1000', null, true, [3]];

function refused(what: string, run: () => unknown, names: string): void {
  try {
    run();
  } catch (error) {
    assert.instance(error, ConfigError, `${what}: a ConfigError, got ${String(error)}`);
    assert.ok(
      (error as Error).message.includes(names), `${what}: the message names ${names}: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`${what} was accepted`);
}

test('group configuration: every key with a bad value is refused, naming the key', () => {
  const rows: Array<[string, (c: Record<string, any>) => void, string]> = [];
  for (const key of ['heartbeatIntervalMs', 'suspicionTimeoutMs']) {
    for (const bad of NOT_POSITIVE_INT) rows.push([`${key}: ${String(bad)}`, (c) => { c[key] = bad; }, key]);
  }
  rows.push([
    'suspicion below heartbeat', (c) => { c.heartbeatIntervalMs = 100; c.suspicionTimeoutMs = 50; },
    'suspicionTimeoutMs',
  ]);
  rows.push(['rejoin: "yes"', (c) => { c.rejoin = 'yes'; }, 'rejoin']);
  rows.push(['rejoin: 1', (c) => { c.rejoin = 1; }, 'rejoin']);
  rows.push(['an unknown top-level key', (c) => { c.suspicionTimeout = 100; }, 'suspicionTimeout']);
  for (const bad of [-1, 65535, '1', 1.5, null]) {
    rows.push([`members[1].id: ${String(bad)}`, (c) => { c.members[1].id = bad; }, 'members[1].id']);
  }
  rows.push(['members[0].address: 5', (c) => { c.members[0].address = 5; }, 'members[0].address']);
  rows.push(['members[0].address: "nohost"', (c) => { c.members[0].address = 'nohost'; }, 'members[0].address']);
  rows.push(['members[0].contact: 7', (c) => { c.members[0].contact = 7; }, 'members[0].contact']);
  rows.push(['members[0] with an unknown key', (c) => { c.members[0].port = 7; }, 'port']);
  rows.push(['members[0]: "x"', (c) => { c.members[0] = 'x'; }, 'members[0]']);
  rows.push(['subgroups: []', (c) => { c.subgroups = []; }, 'subgroups']);
  const positiveKeys = [
    'window', 'maxSmcPayload', 'blockBytes', 'maxMessageBytes', 'maxQueuedMessages', 'maxQueuedBytes',
  ];
  for (const key of positiveKeys) {
    for (const bad of NOT_POSITIVE_INT) {
      rows.push([`subgroup ${key}: ${String(bad)}`, (c) => { c.subgroups.kv[key] = bad; }, key]);
    }
  }
  rows.push([
    'maxQueuedMessages past its limit', (c) => { c.subgroups.kv.maxQueuedMessages = 2 ** 30; }, 'maxQueuedMessages',
  ]);
  rows.push(['mode: "fast"', (c) => { c.subgroups.kv.mode = 'fast'; }, 'mode']);
  rows.push(['shards: -1', (c) => { c.subgroups.kv.shards = -1; }, 'shards']);
  rows.push(['shards: "1"', (c) => { c.subgroups.kv.shards = '1'; }, 'shards']);
  rows.push(['members.min: "3"', (c) => { c.subgroups.kv.members.min = '3'; }, 'members.min']);
  rows.push(['members.max: NaN', (c) => { c.subgroups.kv.members.max = NaN; }, 'members.max']);
  rows.push(['members with an unknown key', (c) => { c.subgroups.kv.members.mid = 2; }, 'mid']);
  rows.push(['senders: "some"', (c) => { c.subgroups.kv.senders = 'some'; }, 'senders']);
  rows.push(['an unknown subgroup key', (c) => { c.subgroups.kv.windowSize = 4; }, 'windowSize']);
  rows.push([
    'explicit shard with an unknown key', (c) => { c.subgroups.kv = { shards: [{ members: [0, 1], leader: 0 }] }; },
    'leader',
  ]);
  rows.push([
    'explicit shard naming member "0"', (c) => { c.subgroups.kv = { shards: [{ members: ['0', 1] }] }; }, 'shards[0]',
  ]);
  rows.push([
    'explicit shard sender twice', (c) => { c.subgroups.kv = { shards: [{ members: [0, 1], senders: [0, 0] }] }; },
    'sender 0',
  ]);
  for (const name of INTERNAL) {
    rows.push([
      `subgroup named ${name}`,
      (c) => { c.subgroups = JSON.parse(`{ ${JSON.stringify(name)}: ${JSON.stringify(kv)} }`); }, name,
    ]);
    rows.push([`type ${name}`, (c) => { c.subgroups.kv.type = name; }, name]);
  }
  rows.push(['subgroup named "my-log"', (c) => { c.subgroups = { 'my-log': kv }; }, 'my-log']);
  rows.push(['persistent: "yes"', (c) => { c.subgroups.kv.persistent = 'yes'; }, 'persistent']);
  rows.push(['persistent in raw mode', (c) => { c.subgroups.kv.persistent = true; c.subgroups.kv.mode = 'raw'; },
    'persistent']);
  for (const bad of NOT_POSITIVE_INT) {
    const persistent = (c: Record<string, any>) => {
      c.subgroups.kv.persistent = true;
      c.subgroups.kv.snapshotEvery = bad;
    };
    rows.push([`snapshotEvery: ${String(bad)}`, persistent, 'snapshotEvery']);
  }
  rows.push(['snapshotEvery without persistent', (c) => { c.subgroups.kv.snapshotEvery = 10; }, 'persistent']);
  for (const bad of [0, -1, 1.5, '64MiB', 2 ** 51]) {
    rows.push([`snapshotEveryBytes: ${String(bad)}`, (c) => {
      c.subgroups.kv.persistent = true;
      c.subgroups.kv.snapshotEveryBytes = bad;
    }, 'snapshotEveryBytes']);
  }
  rows.push(['snapshotEveryBytes without persistent', (c) => { c.subgroups.kv.snapshotEveryBytes = 10; },
    'persistent']);
  rows.push(['name: "my group"', (c) => { c.name = 'my group'; }, 'name']);
  rows.push(['name: 5', (c) => { c.name = 5; }, 'name']);
  for (const [what, change, names] of rows) {
    const config = good();
    change(config);
    refused(what, () => validateGroupConfig(config, 'cluster.json'), names);
  }
  assert.ok(rows.length > 90, `${rows.length} rows`);
});

test('group configuration: good values are accepted as given', () => {
  const config = validateGroupConfig({
    members: [{ id: 0, address: '127.0.0.1:7000', contact: '127.0.0.1:7400' }, { id: 65534, address: '[::1]:7001' }],
    heartbeatIntervalMs: 5, suspicionTimeoutMs: 3_600_000, rejoin: false, name: 'tickets_eu',
    subgroups: {
      kv: {
        type: 'KeyValueStore', shards: 1, members: { min: 1, max: 2 }, senders: 'all', mode: 'raw', window: 4,
        maxSmcPayload: 64, blockBytes: 4096, maxMessageBytes: 1 << 20, maxQueuedMessages: 1, maxQueuedBytes: 1,
      },
      log: { shards: [{ members: [65534, 0], senders: [0] }] },
      Proto_2: { shards: 2, members: { min: 1, max: 1 }, senders: 1 },
      ledger: {
        shards: 1, members: { min: 1, max: 2 }, persistent: true, snapshotEvery: 1000, snapshotEveryBytes: 1 << 26,
      },
    },
  });
  assert.is(config.subgroups.ledger!.snapshotEvery, 1000);
  assert.is(config.subgroups.ledger!.snapshotEveryBytes, 1 << 26);
  assert.is(config.subgroups.kv!.maxQueuedBytes, 1);
  assert.equal(
    validateSstConfig({ members, columns: { counter: { type: 'i64' } }, arenaBytes: 1 << 20 }).arenaBytes, 1 << 20);
});

test('sst configuration: bad values and JS-internal column names are refused, naming the key', () => {
  const rows: Array<[string, Record<string, unknown>, string]> = [
    ['heartbeatIntervalMs: NaN', { members, heartbeatIntervalMs: NaN }, 'heartbeatIntervalMs'],
    ['suspicionTimeoutMs: "100"', { members, suspicionTimeoutMs: '100' }, 'suspicionTimeoutMs'],
    ['connectTimeoutMs: -5', { members, connectTimeoutMs: -5 }, 'connectTimeoutMs'],
    ['arenaBytes: 1.5', { members, arenaBytes: 1.5 }, 'arenaBytes'],
    ['members[0].id: "0"', { members: [{ id: '0', address: '127.0.0.1:1' }] }, 'members[0].id'],
    ['column __proto__', { members, columns: JSON.parse('{ "__proto__": { "type": "i64" } }') }, '__proto__'],
    ['column toString', { members, columns: { toString: { type: 'i64' } } }, 'toString'],
  ];
  for (const [what, config, names] of rows) refused(what, () => validateSstConfig(config, 'sst.json'), names);
});

/** A class to pass in `types`. */
class Store extends KeyValueStore {}

test('Group.join options: every option with a bad value is refused before anything binds, naming the option',
  async () => {
  const config = good() as unknown as GroupConfig;
  const rows: Array<[string, Record<string, unknown>, string]> = [];
  const ms = [
    'heartbeatIntervalMs', 'suspicionTimeoutMs', 'leaveTimeoutMs', 'connectTimeoutMs', 'callTimeoutMs',
    'maxQueuedMessages', 'maxQueuedBytes',
  ];
  for (const key of ms) for (const bad of NOT_POSITIVE_INT) rows.push([`${key}: ${String(bad)}`, { [key]: bad }, key]);
  for (const bad of [-1, 'a', 1.5, NaN, 65535]) rows.push([`id: ${String(bad)}`, { id: bad }, 'id']);
  rows.push(['no id', { id: undefined }, 'id']);
  rows.push(['config: 5', { config: 5 }, 'config']);
  rows.push(['config: null', { config: null }, 'config']);
  rows.push(['config: ""', { config: '' }, 'config']);
  rows.push(['listen: 5', { listen: 5 }, 'listen']);
  rows.push(['listen: "nohost"', { listen: 'nohost' }, 'listen']);
  rows.push(['contact: []', { contact: [] }, 'contact']);
  rows.push(['contact: [5]', { contact: [5] }, 'contact[0]']);
  rows.push(['contactListen: "x:y"', { contactListen: 'x:y' }, 'contactListen']);
  rows.push(['onContactOpen: "print"', { onContactOpen: 'print' }, 'onContactOpen']);
  rows.push(['logger: console', { logger: { info: console.info, warn: console.warn } }, 'logger']);
  rows.push(['types: 5', { types: 5 }, 'types']);
  rows.push(['types.kv: 5', { types: { kv: 5 } }, 'types.kv']);
  rows.push(['types.kv: an arrow function', { types: { kv: () => ({}) } }, 'types.kv']);
  for (const name of INTERNAL) {
    rows.push([`types key ${name}`, { types: JSON.parse(`{ ${JSON.stringify(name)}: 1 }`) }, name]);
  }
  rows.push(['types naming a subgroup the configuration lacks', { types: { tickets: Store } }, 'tickets']);
  rows.push(['rejoin: "yes"', { rejoin: 'yes' }, 'rejoin']);
  rows.push(['shardEngine: "wasm"', { shardEngine: 'wasm' }, 'shardEngine']);
  rows.push(['secret: 5', { secret: 5 }, 'secret']);
  rows.push(['secret: too short', { secret: 'short' }, 'secret']);
  for (const bad of [100, 4097, 4100, 2 ** 31, '65536', NaN]) {
    rows.push([`mailboxBytes: ${String(bad)}`, { mailboxBytes: bad }, 'mailboxBytes']);
  }
  rows.push(['callTimeoutMs past setTimeout\'s range', { callTimeoutMs: 2 ** 31 }, 'callTimeoutMs']);
  rows.push(['fabric: "tcp"', { fabric: 'tcp' }, 'fabric']);
  rows.push(['fabric.backend: "udp"', { fabric: { backend: 'udp' } }, 'fabric']);
  rows.push([
    'suspicion below the heartbeat', { heartbeatIntervalMs: 200, suspicionTimeoutMs: 100 }, 'suspicionTimeoutMs',
  ]);
  rows.push([
    'suspicion below the configuration\'s heartbeat',
    { config: { ...config, heartbeatIntervalMs: 500 }, suspicionTimeoutMs: 400 }, 'suspicionTimeoutMs',
  ]);
  rows.push(['an unknown option', { suspicionTimeout: 100 }, 'suspicionTimeout']);
  rows.push(['a bad configuration', { config: { ...config, window: 4 } }, 'window']);
  rows.push(['dataDir: 5', { dataDir: 5 }, 'dataDir']);
  rows.push(['dataDir: ""', { dataDir: '' }, 'dataDir']);
  rows.push(['restartWaitMs: 0', { restartWaitMs: 0 }, 'restartWaitMs']);
  rows.push(['forceRestart: []', { forceRestart: [] }, 'forceRestart']);
  rows.push(['forceRestart: [0, 0]', { forceRestart: [0, 0] }, 'forceRestart']);
  rows.push(['forceRestart: [-1]', { forceRestart: [-1] }, 'forceRestart']);
  const persistentConfig = { ...config, subgroups: { kv: { ...kv, persistent: true } } };
  rows.push(['forceRestart with contact', {
    config: persistentConfig, dataDir: '/nonexistent/x', contact: '127.0.0.1:1', forceRestart: [0],
  }, 'forceRestart']);
  rows.push(['forceRestart naming a stranger', {
    config: persistentConfig, dataDir: '/nonexistent/x', forceRestart: [0, 99],
  }, 'forceRestart names member 99']);
  rows.push(['forceRestart without this member', {
    config: persistentConfig, dataDir: '/nonexistent/x', forceRestart: [1],
  }, 'this one (0) among them']);
  rows.push([
    'a persistent subgroup without dataDir',
    { config: { ...config, subgroups: { kv: { ...kv, persistent: true } } } }, 'dataDir',
  ]);
  for (const [what, change, names] of rows) {
    const options = { id: 0, config, ...change } as unknown as JoinOptions;
    for (const key of Object.keys(change)) {
      if (change[key] === undefined) delete (options as unknown as Record<string, unknown>)[key];
    }
    let error: unknown = null;
    await Group.join(options).then((g) => g.close(), (e: unknown) => { error = e; });
    refused(what, () => { if (error) throw error; }, names);
  }
  // Each option has a row (the table covers them all).
  for (const name of JOIN_OPTION_NAMES) {
    assert.ok(rows.some(([, change]) => name in change), `a bad value of ${name} is tried`);
  }
});

test('Group.join options: good values of every option pass the checks', () => {
  const options: Required<JoinOptions> = {
    id: 0, config: 'cluster.json', listen: '0.0.0.0:7000', contact: ['127.0.0.1:7400', '[::1]:7401'],
    contactListen: '127.0.0.1:0', onContactOpen: () => {}, logger: createLogger('silent'),
    types: { kv: Store }, heartbeatIntervalMs: 10, suspicionTimeoutMs: 1000, shardEngine: 'worker', rejoin: true,
    leaveTimeoutMs: 5000,
    connectTimeoutMs: 30_000,
    mailboxBytes: 1 << 20, callTimeoutMs: 2 ** 31 - 1, fabric: { backend: 'tcp' }, maxQueuedMessages: 1,
    maxQueuedBytes: 2 ** 40,
    secret: 'a secret of at least sixteen bytes', dataDir: './data/member-0', restartWaitMs: 60_000,
    forceRestart: [0, 1],
  };
  assert.is(validateJoinOptions(options), options);
  assert.is(validateJoinOptions({ id: 3, config: good(), contact: '127.0.0.1:7400' }).id, 3);
});

test('shardEngine unset: SQUALL_SHARD_ENGINE, else the worker engine; a bad value names the variable', () => {
  const saved = process.env['SQUALL_SHARD_ENGINE'];
  try {
    delete process.env['SQUALL_SHARD_ENGINE'];
    assert.is(shardEngineFromEnv(), 'worker');
    process.env['SQUALL_SHARD_ENGINE'] = '';
    assert.is(shardEngineFromEnv(), 'worker');
    process.env['SQUALL_SHARD_ENGINE'] = 'main';
    assert.is(shardEngineFromEnv(), 'main');
    process.env['SQUALL_SHARD_ENGINE'] = 'wasm';
    refused('SQUALL_SHARD_ENGINE=wasm', () => shardEngineFromEnv(), 'SQUALL_SHARD_ENGINE');
  } finally {
    if (saved === undefined) delete process.env['SQUALL_SHARD_ENGINE'];
    else process.env['SQUALL_SHARD_ENGINE'] = saved;
  }
});

test('command-line numeric flags: digits only, in range; anything else names the flag', async () => {
  for (const bad of ['0', '-1', '1.5', '0x10', '1e3', '', ' ', 'NaN', 'Infinity', '9'.repeat(20)]) {
    refused(`--members ${JSON.stringify(bad)}`, () => parsePositiveInt(bad, 'members', 3), '--members');
  }
  for (const bad of ['-1', 'NaN', 'Infinity', '', '1,5', '2e10']) {
    refused(`--latency-us ${JSON.stringify(bad)}`, () => parseNonNegative(bad, 'latency-us', 5), '--latency-us');
  }
  assert.is(parsePositiveInt(' 12 ', 'members', 3), 12);
  assert.is(parsePositiveInt(undefined, 'members', 3), 3);
  assert.is(parseNonNegative('2.5', 'latency-us', 5), 2.5);
  // Through the real CLI: a configuration error is one line naming the flag, exit 1.
  const runs = [
    ['sim', '--runs', '0x10'], ['sst', '--config', 'x.json', '--id=-1'], ['node', '--config', 'x.json', '--id', '1.5'],
  ];
  for (const args of runs) {
    const run = startCli(args);
    const code = await run.exit;
    assert.is(code, 1, `squall ${args.join(' ')} exits 1`);
    const flag = args.find((a) => /^--(runs|id)/.test(a))!.replace(/=.*/, '');
    assert.match(
      run.err, new RegExp(`${flag} must be (a positive integer|an integer)`), `squall ${args.join(' ')}: ${run.err}`);
  }
});

test.run();
