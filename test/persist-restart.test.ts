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
import { decodeTail, encodeTail, restartSource } from '../ts/group/total-restart.js';
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

test('a total restart with a member missing fails once connectTimeoutMs passed, naming it and what a total restart '
  + 'needs; members whose logs recorded different last views cannot form it (and are told so)', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    const groups = await restart(config, dirs, [0, 1, 2], 0);
    try {
      await groups[0]!.subgroup('kv', KeyValueStore).persisted.put('k', new Uint8Array([1]));
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
    const logs: Logged[] = [[], []];
    const two = [0, 1].map((id) => Group.join({
      id, config, dataDir: dirs[id]!, types: { kv: KeyValueStore }, ...JOIN, connectTimeoutMs: 2500,
      logger: keep(logs[id]!),
    }));
    for (const [id, result] of (await Promise.allSettled(two)).entries()) {
      const waiting = logs[id]!.find((l) => l['event'] === 'restartWaiting');
      assert.equal(waiting?.['missing'], [2], `member ${id} said whom it waits for while it waited`);
      if (result.status === 'fulfilled') await result.value.close();
      const error = result.status === 'rejected' ? result.reason as Error : null;
      assert.ok(error, 'it does not form a first view without member 2');
      assert.match(error!.message, /2/);
      assert.match(error!.message, /total restart/);
      assert.match(error!.message, /every member of the configuration/);
    }
    const log = await openLog(dirs[2]!, 2); // member 2 recorded a later view than the others
    try {
      await log.writeMeta({ vid: 7, members: [0, 1, 2] });
    } finally {
      await log.close();
    }
    const three = [0, 1, 2].map((id) => Group.join({
      id, config, dataDir: dirs[id]!, types: { kv: KeyValueStore }, ...JOIN, connectTimeoutMs: 1000,
    }));
    const results = await Promise.allSettled(three);
    await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close() : null)));
    assert.ok(results.every((r) => r.status === 'rejected'), 'different last views: no first view');
    assert.match((results[2] as PromiseRejectedResult).reason.message, /view 7, so it forms view 8/);
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

test.run();
