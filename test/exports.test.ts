// The package entry ('squall', resolved through package.json's "exports" as a user's import is) exports
// every error class the README's error table lists, each a SquallError with the table's code, and the
// table lists every error class the entry exports.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
// The public types, from the entry's source: this file does not compile if one is not exported.
import type {
  Reply, JoinOptions, View, GroupEvents, ReplicatedClass, GroupConfig, SubgroupConfig, SubgroupChannel, MembershipRow,
  FabricChoice,
  QueryMethods, QueryName, OrderedMethods, ReplicatedObjectOptions, SquallErrorCode, SstStartOptions, RdmcStartOptions,
} from '../ts/index.js';

/** Uses each public type once, so a missing export is a compile error here. */
export type PublicTypes = [
  Reply<number>, JoinOptions, View, GroupEvents, ReplicatedClass, GroupConfig, SubgroupConfig, SubgroupChannel,
  MembershipRow, FabricChoice, QueryMethods<object>, QueryName<object>, OrderedMethods<object>,
  ReplicatedObjectOptions<object>,
  SquallErrorCode, SstStartOptions, RdmcStartOptions];

const README = new URL('../../README.md', import.meta.url);
/** The package's own name: a self-reference, resolved like a user's `import … from 'squall'`. */
const ENTRY = 'squall';

/** Constructor arguments for the classes whose constructor takes more than a message. */
const ARGS: Record<string, unknown[]> = {
  PeerFailedError: [3, 'CLOSED', 'member 3 failed'],
  TimeoutError: ['no reply within 10 ms'],
  ClosedError: ['the fabric'],
  PartitionedError: [0, 4, 5, [3, 4, 2]],
  RemovedError: [2, 7, false],
  MessageTooLargeError: ['a call of put', 2048, 1024],
  UnknownMethodError: ['nope', 'TicketBook', ['book']],
  NotAQueryError: ['book', 'TicketBook', ['holder']],
  RemoteMethodError: [1, 'book', 'RangeError', 'bad seat', undefined],
  StateTransferError: ['chunk 3 failed its CRC', true],
  OverloadedError: ['subgroup \'log\' at member 1', 'messages', 1024, 1024],
};

/** [code, class] of each row of the README's "## Errors" table. */
function errorTable(): Array<[code: string, name: string]> {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('\n## Errors'), text.indexOf('\n## ', text.indexOf('\n## Errors') + 1));
  return [...section.matchAll(/^\| `(ERR_SQUALL_\w+)` \| `(\w+)` \|/gm)].map((m) => [m[1]!, m[2]!]);
}

test('every error class of the README table is exported by the package entry, a SquallError with its code',
  async () => {
  const entry = await import(ENTRY) as Record<string, unknown>;
  const SquallError = entry.SquallError as new (...args: unknown[]) => Error;
  assert.type(SquallError, 'function', 'SquallError is exported');
  const rows = errorTable();
  assert.ok(rows.length >= 17, `the README's error table has ${rows.length} rows`);
  for (const [code, name] of rows) {
    const Class = entry[name] as (new (...args: unknown[]) => Error) | undefined;
    assert.type(Class, 'function', `${name} is exported from the package entry`);
    const error = new Class!(...(ARGS[name] ?? ['what went wrong, and what to do']));
    assert.instance(error, SquallError, `${name} is a SquallError`);
    assert.instance(error, Error);
    assert.is((error as { code?: string }).code, code, `${name}'s code`);
    assert.is(error.name, name);
  }
  assert.equal(new Set(rows.map(([code]) => code)).size, rows.length, 'each code appears once');
});

test('every SquallError class the package entry exports is in the README table', async () => {
  const entry = await import(ENTRY) as Record<string, unknown>;
  const SquallError = entry.SquallError as abstract new (...args: never[]) => Error;
  const listed = new Set(errorTable().map(([, name]) => name));
  const exported = Object.entries(entry)
    .filter(([name, value]) =>
      typeof value === 'function' && name !== 'SquallError' &&
      (value as { prototype?: unknown }).prototype instanceof SquallError)
    .map(([name]) => name);
  assert.ok(exported.length >= 17);
  for (const name of exported) {
    assert.ok(listed.has(name), `${name} is exported but missing from the README's error table`);
  }
});

test('the public API: Group, replicated objects, version helpers and the examples are exported', async () => {
  const entry = await import(ENTRY) as Record<string, unknown>;
  const names = ['Group', 'ReplicatedObject', 'LoopbackShard', 'SstMember', 'RdmcNode', 'TicketBook', 'KeyValueStore',
    'formatVersion', 'parseVersion', 'versionParts', 'validateGroupConfig', 'loadGroupConfig', 'MULTICAST_DEFAULTS'];
  for (const name of names) {
    assert.ok(entry[name] !== undefined, `${name} is exported`);
  }
  assert.is((entry.formatVersion as (v: bigint) => string)((5n << 32n) | 9n), '5.9');
});

test('test-only code is not part of the public API: no emulated network, harness or simulator export', async () => {
  const entry = await import(ENTRY) as Record<string, unknown>;
  for (const name of ['EmulatedNetwork', 'netnsSupport', 'GroupCluster', 'ChildCluster', 'GroupSim', 'ShardSim']) {
    assert.is(entry[name], undefined, `${name} is not exported`);
  }
});

test.run();
