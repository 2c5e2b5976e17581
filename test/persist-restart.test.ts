// Total restart of a persistent group (docs/persistence-group.md "Restarting"): every member stopped and
// started again from its data directory; the first view reconciles the logs' tails before it delivers — the
// longest log's member ships what the others miss. Real members on loopback sockets with real files; the
// crash test kills child processes mid-load with SIGKILL.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Group } from '../ts/group/group.js';
import type { GroupConfig } from '../ts/group/config.js';
import { freePorts, GroupCluster } from '../ts/harness/cluster.js';
import { PersistentLog } from '../ts/persist/log.js';
import { KeyValueStore } from '../ts/examples/key-value-store.js';
import { decodeTail, encodeTail, restartQuorum, restartShortOf, restartSource } from '../ts/group/total-restart.js';
import { crashTest } from './support/crash.js';

const JOIN = { heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000 } as const;

async function withDirs(body: (dirs: string[]) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'squall-total-restart-'));
  try {
    await body([0, 1, 2].map((id) => join(root, `member-${id}`)));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function configOf(): Promise<GroupConfig> {
  const ports = await freePorts(3);
  return {
    members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })),
    subgroups: { kv: { shards: 1, members: { min: 3, max: 3 }, persistent: true } },
  };
}

/** What a member logged (JoinOptions.logger), by member: each line's fields. */
type Logged = Array<Record<string, unknown>>;

/** A logger that keeps every line's fields in `into`. */
function keep(into: Logged) {
  const line = (fields: object) => { into.push({ ...fields }); };
  return { error: line, warn: line, info: line, debug: line };
}

/** Joins every member from its directory, member order[0] first, the next ones `gapMs` apart. */
async function restart(config: GroupConfig, dirs: string[], order: number[], gapMs = 100,
  shardEngine: 'main' | 'worker' = 'main', logs: Logged[] = [],
  onJoined: (id: number, group: Group) => void = () => {}): Promise<Group[]> {
  const joining: Array<Promise<Group>> = [];
  for (const id of order) {
    const logger = keep(logs[id] = []);
    joining[id] = Group.join({
      id, config, dataDir: dirs[id]!, types: { kv: KeyValueStore }, ...JOIN, shardEngine, logger,
    });
    joining[id]!.then((group) => onJoined(id, group), () => {}); // a failure is awaited below
    await sleep(gapMs);
  }
  const settled = await Promise.allSettled(joining);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.close() : null)));
    throw (failed as PromiseRejectedResult).reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<Group>).value);
}

/** A log reopened (the group closed it or was killed). */
function openLog(dir: string, memberId: number): Promise<PersistentLog> {
  return PersistentLog.open(join(dir, 'kv.0'), { group: 'squall', memberId, subgroup: 'kv', shard: 0 });
}

async function versionsOf(dir: string, memberId: number): Promise<bigint[]> {
  const log = await openLog(dir, memberId);
  const out: bigint[] = [];
  try {
    for await (const r of log.read(-1n)) out.push(r.version);
  } finally {
    await log.close();
  }
  return out;
}

test('tail records and the choice of source: the highest tail, the lowest id on ties; hostile records refused', () => {
  assert.is(decodeTail(encodeTail(42n)), 42n);
  assert.is(decodeTail(encodeTail(-1n)), -1n);
  assert.is(decodeTail(encodeTail(-5n)), null, 'a version below −1');
  assert.is(decodeTail(new Uint8Array(15)), null, 'a short record');
  const bad = encodeTail(3n);
  bad[4] = 1;
  assert.is(decodeTail(bad), null, 'a non-zero reserved word');
  assert.equal(restartSource(new Map([[0, 5n], [1, 9n], [2, 9n]])), { source: 1, recipients: [0] });
  assert.equal(restartSource(new Map([[2, 9n], [0, 1n], [1, -1n]])), { source: 2, recipients: [0, 1] });
  assert.equal(restartSource(new Map([[0, 4n], [1, 4n]])), { source: 0, recipients: [] });
  assert.is(restartSource(new Map([[0, -1n], [1, -1n]])), null, 'nothing logged anywhere');
});

/**
 * Tails that differ on purpose: member 0's log emptied, member 1's cut to 15 records, member 2's whole (40);
 * restarted, member 2 ships the records member 1 misses and its snapshot to member 0.
 */
async function cutTails(shardEngine: 'main' | 'worker'): Promise<void> {
  await withDirs(async (dirs) => {
    const config = await configOf();
    let groups = await restart(config, dirs, [0, 1, 2], 0, shardEngine);
    const versions: bigint[] = [];
    try {
      const stores = groups.map((g) => g.subgroup('kv', KeyValueStore));
      for (let i = 0; i < 40; i++) {
        const replies = await stores[i % 3]!.persisted.put(`k${i}`, new Uint8Array([i]));
        versions.push(replies[0]!.version);
      }
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
    const cut = [await openLog(dirs[0]!, 0), await openLog(dirs[1]!, 1)];
    await cut[0]!.truncateAfter(-1n); // member 0: an empty log
    await cut[1]!.truncateAfter(versions[14]!); // member 1: 15 records
    await Promise.all(cut.map((l) => l.close()));
    const logs: Logged[] = [];
    // Member 2 (the source) calls as soon as its join resolves, while the others may still catch up: the
    // update is delivered after their catch-up, everywhere.
    let early: Promise<Array<{ version: bigint }>> | null = null;
    groups = await restart(config, dirs, [2, 1, 0], 100, shardEngine, logs, (id, group) => {
      if (id === 2) early = group.subgroup('kv', KeyValueStore).ordered.put('early', new Uint8Array([9]));
    });
    const earlyVersion = (await early!)[0]!.version;
    assert.is(earlyVersion >> 32n, (versions[39]! >> 32n) + 1n, 'the early call is the first view\'s');
    for (const [id, logged] of logs.entries()) { // the protocol event says what the reconciliation decided
      const reconciled = logged.find((l) => l['event'] === 'reconciled');
      assert.equal(reconciled && [reconciled['source'], reconciled['recipients'], reconciled['version']],
        [2, [0, 1], String(versions[39])], `member ${id} logged the decision`);
    }
    let after: bigint;
    try {
      const stores = groups.map((g) => g.subgroup('kv', KeyValueStore));
      const summaries = stores.map((s) => s.state.summary());
      assert.is(summaries[2]!.keys, 41, 'member 2 kept every update (and the early one)');
      for (const [id, s] of summaries.entries()) assert.equal(s, summaries[2], `member ${id} caught up`);
      for (const s of stores) assert.is(s.version(), earlyVersion, 'at the early call\'s version');
      const replies = await stores[0]!.persisted.put('after', new Uint8Array([1]));
      after = replies[0]!.version;
      assert.ok(after > versions[39]!, `versions keep growing (${after} > ${versions[39]})`);
      assert.ok((after >> 32n) > (versions[39]! >> 32n), 'in a later view');
      assert.equal(stores.map((s) => s.state.summary()), [0, 1, 2].map(() => stores[0]!.state.summary()));
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
    const logged1 = await versionsOf(dirs[1]!, 1);
    assert.equal(logged1, [...versions, earlyVersion, after], 'member 1 logged the records it missed, then the rest');
    const log0 = await openLog(dirs[0]!, 0);
    try {
      assert.is((await log0.latestSnapshot())?.version, versions[39], 'member 0 got the snapshot, logged as such');
      assert.is(log0.appendedVersion, after);
    } finally {
      await log0.close();
    }
  });
}

test('tails that differ (logs cut with truncateAfter, one emptied): the longest log\'s member ships the records '
  + 'one member misses and its snapshot to the empty one; every member ends with the same state',
  () => cutTails('main'));

test('the same with the worker shard engine', () => cutTails('worker'));

/** Keys and versions of the persisted puts that resolved before the kill. */
interface Persisted { key: string; version: bigint }

/**
 * One round of load in child processes started from `dirs` (a total restart itself after the first round):
 * plain ordered puts from members 0 and 1, persisted puts from member 2, one after another; every member is
 * killed with SIGKILL once `persistedBeforeKill` persisted puts resolved, with the rest in flight.
 */
async function loadThenKill(dirs: string[], round: number, persistedBeforeKill: number): Promise<Persisted[]> {
  const cluster = await GroupCluster.start({
    members: 3, types: { kv: 'KeyValueStore' }, dataDirs: dirs, ...JOIN,
    subgroups: { kv: { shards: 1, members: { min: 3, max: 3 }, persistent: true, snapshotEvery: 200 } },
  });
  const done: Persisted[] = [];
  try {
    for (const m of [0, 1]) {
      const fill = { cmd: 'fill', subgroup: 'kv', method: 'put', count: 1_000_000, bytes: 64, inFlight: 8 } as const;
      cluster.request(cluster.members[m]!, fill).catch(() => {}); // killed mid-way
    }
    for (let i = 0; done.length < persistedBeforeKill; i++) {
      const key = `p-${round}-${i}`;
      const { replies } = await cluster.request(cluster.members[2]!, {
        cmd: 'call', subgroup: 'kv', method: 'put', args: [key, new Uint8Array([i & 0xff])], persisted: true,
      }) as { replies: Array<{ version: bigint }> };
      done.push({ key, version: replies[0]!.version });
    }
    // The next persisted put is in flight at the kill, with the plain ones.
    cluster.request(cluster.members[2]!, {
      cmd: 'call', subgroup: 'kv', method: 'put', args: [`p-${round}-last`, new Uint8Array([1])], persisted: true,
    }).catch(() => {}); // killed before it resolves
  } finally {
    cluster.kill(); // every member at once: no close, no flush
    await Promise.all(cluster.members.map((m) => (m.exited ? null : once(m.process, 'exit'))));
  }
  return done;
}

test('the quorum of a total restart: every member of the first view, or a majority of the last view that is a '
  + 'majority of the first view too', () => {
  const all = [0, 1, 2, 3, 4];
  assert.ok(restartQuorum(all, all, all));
  assert.ok(restartQuorum(all, all, [0, 2, 4]), 'three of five');
  assert.not.ok(restartQuorum(all, all, [0, 1]), 'two of five');
  assert.is(restartShortOf(all, all, [0, 1]), 1);
  // The last view was members 0–2 (3 and 4 had left): two of them are its majority, but not the first view's.
  assert.not.ok(restartQuorum(all, [0, 1, 2], [0, 1]));
  assert.is(restartShortOf(all, [0, 1, 2], [0, 1]), 1);
  assert.ok(restartQuorum(all, [0, 1, 2], [0, 1, 3]));
  assert.not.ok(restartQuorum(all, [0, 1, 2], [0, 3, 4]), 'a majority of the first view, one of the last');
  assert.is(restartShortOf(all, [0, 1, 2], [0, 3, 4]), 1);
  assert.ok(restartQuorum([0, 1, 2], [], [0, 1]), 'no last view recorded: the first view\'s majority');
  assert.ok(restartQuorum([0], [0, 1, 2], [0]), 'a first view of one (forceRestart) needs itself only');
});

/** Joins members `ids` from their directories at once (a total restart); each settles apart. */
function startAll(config: GroupConfig, dirs: string[], ids: number[], options: Record<string, unknown> = {},
  logs: Logged[] = []): Promise<Array<PromiseSettledResult<Group>>> {
  return Promise.allSettled(ids.map((id) => Group.join({
    id, config, dataDir: dirs[id]!, types: { kv: KeyValueStore }, ...JOIN, logger: keep(logs[id] = []),
    ...options,
  })));
}

function joined(results: Array<PromiseSettledResult<Group>>): Group[] {
  return results.map((r, k) => {
    if (r.status === 'rejected') throw new Error(`member at ${k} did not join: ${String(r.reason)}`);
    return r.value;
  });
}

const kvOf = (g: Group) => g.subgroup('kv', KeyValueStore);
const held = (g: Group, key: string) => kvOf(g).state.get(key)?.[0];

test('a total restart from a majority of the last view: a lone member waits, says so and gives up after '
  + 'restartWaitMs; two of three form the group without the third, which comes back through a contact; '
  + 'a member whose logs recorded another last view is left out; forceRestart rebuilds from one', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    config.subgroups.kv!.members = { min: 1, max: 3 };
    const first = await restart(config, dirs, [0, 1, 2], 0);
    await kvOf(first[0]!).persisted.put('a', new Uint8Array([1]));
    await Promise.all(first.map((g) => g.close()));

    // One of three: short of a majority of the last view, it waits and says so, then gives up.
    const alone: Logged[] = [];
    const lone = await startAll(config, dirs, [0], { connectTimeoutMs: 800, restartWaitMs: 2500 }, alone);
    assert.is(lone[0]!.status, 'rejected', 'one member of three does not form the group');
    const error = (lone[0] as PromiseRejectedResult).reason as Error;
    assert.is(error.name, 'TimeoutError');
    assert.match(error.message, /1 more of the last view/);
    assert.match(error.message, /forceRestart/);
    const said = alone[0]!.filter((l) => l['event'] === 'restartWaiting');
    assert.ok(said.length > 0, 'it said whom it waits for');
    assert.equal(said.at(-1)!['missing'], [1, 2]);
    assert.is(said.at(-1)!['short'], 1);

    // Two of three: a majority. They form the group without member 2 (a view change removes it).
    const two = joined(await startAll(config, dirs, [0, 1], { connectTimeoutMs: 1500 }));
    let back: Group | null = null;
    try {
      for (const g of two) {
        assert.equal(g.view.members, [0, 1], `member ${g.id}: the view without the member that did not come`);
        assert.is(held(g, 'a'), 1, `member ${g.id} holds the update persisted before the stop`);
      }
      await kvOf(two[1]!).persisted.put('b', new Uint8Array([2]));
      back = await Group.join({
        id: 2, config, dataDir: dirs[2]!, types: { kv: KeyValueStore }, ...JOIN, contact: two[0]!.contactAddress,
        listen: '127.0.0.1:0',
      });
      assert.is(held(back, 'a'), 1, 'the third comes back through a contact with its directory');
      assert.is(held(back, 'b'), 2, 'and catches up on what it missed');
    } finally {
      await Promise.all([...two.map((g) => g.close()), back?.close()]);
    }

    // Member 2's logs now say a later view than the others' (as if it alone installed one before the stop):
    // it forms another first view and is left out; members 0 and 1, a majority of their last view, go on.
    const log = await openLog(dirs[2]!, 2);
    try {
      await log.writeMeta({ vid: 50, members: [0, 1, 2] });
    } finally {
      await log.close();
    }
    const three = await startAll(config, dirs, [0, 1, 2], { connectTimeoutMs: 1500, restartWaitMs: 4000 });
    const [r0, r1, r2] = three;
    try {
      assert.is(r2!.status, 'rejected', 'member 2, alone in its first view, gives up');
      assert.match((r2 as PromiseRejectedResult).reason.message, /have not come back/);
      const pair = joined([r0!, r1!]);
      for (const g of pair) {
        assert.equal(g.view.members, [0, 1]);
        assert.is(held(g, 'b'), 2, `member ${g.id} holds what was persisted before the stop`);
      }
      await kvOf(pair[0]!).persisted.put('c', new Uint8Array([3]));
    } finally {
      await Promise.all(three.map((r) => (r.status === 'fulfilled' ? r.value.close() : null)));
    }
    // The override: member 0 alone, told to rebuild from its own log.
    const forced = joined(await startAll(config, dirs, [0], { forceRestart: [0], connectTimeoutMs: 1500 }));
    try {
      assert.equal(forced[0]!.view.members, [0]);
      assert.is(held(forced[0]!, 'c'), 3, 'forceRestart: the state of its log');
    } finally {
      await forced[0]!.close();
    }
  });
});

test('a total restart with one member\'s directory deleted: the other two, a majority, form the group; the third '
  + 'has no last view (it cannot join their first view) and comes back through a contact, receiving the state',
async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    config.subgroups.kv!.members = { min: 1, max: 3 };
    const first = await restart(config, dirs, [0, 1, 2], 0);
    for (const [i, key] of ['a', 'b', 'c'].entries()) {
      await kvOf(first[i]!).persisted.put(key, new Uint8Array([i + 1]));
    }
    await Promise.all(first.map((g) => g.close()));
    await rm(dirs[2]!, { recursive: true, force: true });
    const three = await startAll(config, dirs, [0, 1, 2], { connectTimeoutMs: 1500 });
    let back: Group | null = null;
    try {
      assert.is(three[2]!.status, 'rejected', 'the member without a directory forms a first view nobody else is in');
      const two = joined(three.slice(0, 2));
      for (const g of two) {
        assert.equal(g.view.members, [0, 1]);
        assert.equal(['a', 'b', 'c'].map((k) => held(g, k)), [1, 2, 3], `member ${g.id} holds every update`);
      }
      back = await Group.join({
        id: 2, config, dataDir: dirs[2]!, types: { kv: KeyValueStore }, ...JOIN, contact: two[0]!.contactAddress,
        listen: '127.0.0.1:0',
      });
      assert.equal(['a', 'b', 'c'].map((k) => held(back!, k)), [1, 2, 3], 'it received the state');
      await kvOf(back).persisted.put('d', new Uint8Array([4]));
      for (const g of [...two, back]) assert.is(held(g, 'd'), 4);
    } finally {
      await Promise.all([...three.map((r) => (r.status === 'fulfilled' ? r.value.close() : null)), back?.close()]);
    }
  });
});

crashTest('SIGKILL of every member mid-load, three rounds, restarted in different orders: every member holds the '
  + 'same state with every update whose persisted call resolved, and versions keep growing', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    config.subgroups.kv!.snapshotEvery = 200;
    const persisted: Persisted[] = [];
    let last = -1n;
    const orders = [[2, 1, 0], [0, 2, 1], [1, 0, 2]];
    for (const [round, order] of orders.entries()) {
      persisted.push(...await loadThenKill(dirs, round, 15));
      const tails = await Promise.all(dirs.map(async (dir, id) => {
        const log = await openLog(dir, id);
        try { return log.appendedVersion; } finally { await log.close(); }
      }));
      console.log(`  round ${round}: tails after the kill ${tails.join(', ')}; restart order ${order.join(', ')}`);
      const top = tails.reduce((a, b) => (a > b ? a : b));
      assert.ok(top > last, `the logs grew in round ${round}`);
      const groups = await restart(config, dirs, order);
      try {
        const stores = groups.map((g) => g.subgroup('kv', KeyValueStore));
        const summaries = stores.map((s) => s.state.summary());
        for (const [id, s] of summaries.entries()) assert.equal(s, summaries[0], `member ${id}: the same state`);
        for (const s of stores) assert.is(s.version(), top, 'at the longest log\'s version');
        for (const p of persisted) {
          for (const [id, s] of stores.entries()) assert.ok(s.state.get(p.key), `member ${id} holds ${p.key}`);
        }
        const replies = await stores[order[0]!]!.persisted.put(`after-${round}`, new Uint8Array([round]));
        last = replies[0]!.version;
        assert.ok(last > top, `versions keep growing (${last} > ${top})`);
        const again = stores.map((s) => s.state.summary());
        for (const s of again) assert.equal(s, again[0], 'still the same state after an update');
      } finally {
        await Promise.all(groups.map((g) => g.close()));
      }
    }
  });
});


/**
 * Every member killed mid-load (loadThenKill), then `prepare` picks the member that stays down (and may change
 * the directories); the other two restart — a majority — and must hold every update whose persisted call
 * resolved; the third comes back through a contact, and every member ends with the same state.
 */
async function twoOfThreeAfterCrash(
  prepare: (dirs: string[], persisted: Persisted[], tails: bigint[]) => Promise<{ out: number; said: string }>,
): Promise<void> {
  await withDirs(async (dirs) => {
    const persisted = await loadThenKill(dirs, 0, 15);
    const tails = await Promise.all(dirs.map(async (dir, id) => {
      const log = await openLog(dir, id);
      try { return log.appendedVersion; } finally { await log.close(); }
    }));
    const { out, said } = await prepare(dirs, persisted, tails);
    console.log(`  tails after the kill ${tails.join(', ')}; ${said}`);
    const back = [0, 1, 2].filter((id) => id !== out);
    const config = await configOf();
    config.subgroups.kv!.members = { min: 2, max: 3 };
    const groups = joined(await startAll(config, dirs, back, { connectTimeoutMs: 2000 }));
    let late: Group | null = null;
    try {
      for (const g of groups) assert.equal(g.view.members, back, `member ${g.id}: the view without member ${out}`);
      for (const p of persisted) {
        for (const g of groups) assert.ok(kvOf(g).state.get(p.key), `member ${g.id} holds ${p.key}`);
      }
      await kvOf(groups[0]!).persisted.put('after', new Uint8Array([9]));
      late = await Group.join({
        id: out, config, dataDir: dirs[out]!, types: { kv: KeyValueStore }, ...JOIN,
        contact: groups[0]!.contactAddress, listen: '127.0.0.1:0',
      });
      await kvOf(groups[1]!).persisted.put('after-2', new Uint8Array([10]));
      const summaries = [...groups, late].map((g) => kvOf(g).state.summary());
      for (const s of summaries) assert.equal(s, summaries[0], 'every member holds the same state');
      assert.is(held(late, 'after-2'), 10);
    } finally {
      await Promise.all([...groups.map((g) => g.close()), late?.close()]);
    }
  });
}

crashTest('SIGKILL of every member mid-load, then two of three restart — without the one with the longest log: '
  + 'they form the group with every update whose persisted call resolved; the third comes back through a '
  + 'contact, its divergent tail replaced, and every member holds the same state', () => twoOfThreeAfterCrash(
  async (dirs, persisted, tails) => {
    const out = tails.indexOf(tails.reduce((a, b) => (a > b ? a : b)));
    // The members that come back lose their tails past the last persisted update (and their snapshot), as
    // if their group commits had been further behind at the kill: the member that stays down logged more.
    const lastPersisted = persisted.reduce((a, p) => (p.version > a ? p.version : a), -1n);
    const cutTo = await Promise.all([0, 1, 2].filter((id) => id !== out).map(async (id) => {
      const log = await openLog(dirs[id]!, id);
      try {
        const keep = [lastPersisted, (await log.latestSnapshot())?.version ?? -1n].reduce((a, b) => (a > b ? a : b));
        if (keep < log.appendedVersion) await log.truncateAfter(keep);
        return log.appendedVersion;
      } finally {
        await log.close();
      }
    }));
    return { out, said: `member ${out} stays down; the others cut to ${cutTo.join(', ')}` };
  }));

crashTest('SIGKILL of every member mid-load, one member\'s directory deleted: the other two restart with every '
  + 'update whose persisted call resolved; the third comes back through a contact with an empty directory, '
  + 'receives the state, and every member holds the same state', () => twoOfThreeAfterCrash(async (dirs) => {
  await rm(dirs[2]!, { recursive: true, force: true });
  return { out: 2, said: 'member 2\'s directory deleted' };
}));

test.run();
