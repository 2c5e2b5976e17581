// Persistent subgroups through Group (docs/persistence-group.md): three real members on loopback sockets,
// each with its own data directory of real files; closed and started again from the same directories.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeValue, encodeValue } from '../ts/objects/codec.js';
import { Group } from '../ts/group/group.js';
import type { GroupConfig } from '../ts/group/config.js';
import { freePorts } from '../ts/harness/cluster.js';
import { PersistentLog } from '../ts/persist/log.js';
import { ConfigError } from '../ts/errors.js';
import { once } from 'node:events';
import { GroupCluster } from '../ts/harness/cluster.js';
import { KeyValueStore } from '../ts/examples/key-value-store.js';
import { crashTest } from './support/crash.js';

/** A ledger of named sums: deterministic, with a snapshot. */
class Ledger {
  static readonly queries = ['total'] as const;
  #sums = new Map<string, number>();
  add(key: string, amount: number): number {
    const sum = (this.#sums.get(key) ?? 0) + amount;
    this.#sums.set(key, sum);
    return sum;
  }
  total(): number { let t = 0; for (const v of this.#sums.values()) t += v; return t; }
  entries(): Array<[string, number]> { return [...this.#sums].sort(([a], [b]) => (a < b ? -1 : 1)); }
  snapshot(): Uint8Array { return encodeValue(this.entries()); }
  static restore(bytes: Uint8Array): Ledger {
    const l = new Ledger();
    for (const [k, v] of decodeValue(bytes) as Array<[string, number]>) l.#sums.set(k, v);
    return l;
  }
}

async function configOf(snapshotEvery?: number): Promise<GroupConfig> {
  const ports = await freePorts(3);
  return {
    name: 'ledger_test',
    members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })),
    subgroups: {
      ledger: {
        shards: 1, members: { min: 3, max: 3 }, persistent: true, ...(snapshotEvery ? { snapshotEvery } : {}),
      },
    },
  };
}

function start(config: GroupConfig, dirs: string[], shardEngine: 'main' | 'worker' = 'main'): Promise<Group[]> {
  return Promise.all(dirs.map((dataDir, id) => Group.join({
    id, config, dataDir, types: { ledger: Ledger }, heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000, shardEngine,
  })));
}

async function withDirs(body: (dirs: string[]) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'squall-persist-group-'));
  const dirs = [0, 1, 2].map((id) => join(root, `member-${id}`));
  try {
    await body(dirs);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Runs `body` on one member's ledger log, reopened (the group has closed it), and closes it again. */
async function withLedgerLog<T>(dir: string, memberId: number, body: (log: PersistentLog) => Promise<T>): Promise<T> {
  const identity = { group: 'ledger_test', memberId, subgroup: 'ledger', shard: 0 };
  const log = await PersistentLog.open(join(dir, 'ledger.0'), identity);
  try {
    return await body(log);
  } finally {
    await log.close();
  }
}

/** Every record of one member's log. */
function logged(dir: string, memberId: number): Promise<bigint[]> {
  return withLedgerLog(dir, memberId, async (log) => {
    const versions: bigint[] = [];
    for await (const r of log.read(-1n)) versions.push(r.version);
    return versions;
  });
}

test('a persistent subgroup without dataDir is refused, saying what to pass', async () => {
  const config = await configOf();
  const error = await Group.join({ id: 0, config, types: { ledger: Ledger } }).then(() => null, (e: Error) => e);
  assert.instance(error, ConfigError);
  assert.match(error!.message, /dataDir/);
  assert.match(error!.message, /--data DIR/);
});

test('persistent group (n=3): persisted calls resolve once durable everywhere, every log holds every update, '
  + 'and the state is back after every member closed and started again', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    let groups = await start(config, dirs);
    const events: bigint[] = [];
    groups[0]!.on('persisted', (e) => {
      assert.is(e.subgroup, 'ledger');
      assert.is(e.shard, 0);
      events.push(e.version);
    });
    const ledgers = groups.map((g) => g.subgroup('ledger', Ledger));
    // Ordered load from every member; every 50th call (from member 0) waits for persistence.
    const versions: bigint[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const l = ledgers[i % 3]!;
      if (i % 50 === 49) {
        calls.push(ledgers[0]!.persisted.add(`k${i % 7}`, i).then((replies) => {
          assert.is(replies.length, 3);
          const v = replies[0]!.version;
          versions.push(v);
          // Resolved only once member 0 saw the frontier pass it (the event comes first).
          assert.ok(events.length > 0 && events.at(-1)! >= v, `the frontier (${events.at(-1)}) passed ${v}`);
        }));
      } else {
        calls.push(l.ordered.add(`k${i % 7}`, i));
      }
    }
    await Promise.all(calls);
    const expected = (300 * 299) / 2;
    for (const l of ledgers) assert.is(l.state.total(), expected);
    const last = ledgers.map((l) => l.version());
    assert.ok(last.every((v) => v === last[0]), `every member applied up to the same version: ${last}`);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(events.length > 0, 'persisted events came');
    assert.ok(events.at(-1)! >= versions.reduce((a, b) => (a > b ? a : b)), 'the frontier passed every persisted call');
    // Reads from the log: the record of a version, and by time.
    const record = await ledgers[1]!.at(versions[0]!);
    assert.ok(record, 'at(version) finds the update');
    assert.is(record!.method, 'add');
    assert.is(record!.version, versions[0]);
    const now = await ledgers[2]!.atTime(new Date());
    assert.ok(now && now.version <= last[0]!, 'atTime(now) is the newest update up to now');
    const before = await ledgers[2]!.atTime(new Date(0));
    assert.is(before, null, 'nothing before 1970');
    const mid = await ledgers[0]!.stateAt(versions[0]!);
    assert.ok(mid.total() < expected && mid.total() > 0, `stateAt a middle version: ${mid.total()}`);
    const vid = groups[0]!.view.vid;
    await Promise.all(groups.map((g) => g.close()));
    // Every member's log holds every update, the persisted ones among them.
    const logs = await Promise.all(dirs.map((d, id) => logged(d, id)));
    for (const [id, vs] of logs.entries()) {
      assert.is(vs.length, 300, `member ${id} logged every update`);
      for (const v of versions) assert.ok(vs.includes(v), `member ${id} holds persisted version ${v}`);
    }
    // Every member starts again from its directory: the state is back, and the group goes on after its last view.
    groups = await start(config, dirs);
    const again = groups.map((g) => g.subgroup('ledger', Ledger));
    for (const l of again) {
      assert.is(l.state.total(), expected, 'the state is back');
      assert.is(l.version(), last[0], 'at the version it had');
    }
    assert.ok(groups[0]!.view.vid > vid, `the first view after the restart (${groups[0]!.view.vid}) follows ${vid}`);
    const replies = await again[0]!.persisted.add('after', 1);
    assert.ok(replies[0]!.version > last[0]!, 'versions go on growing');
    for (const l of again) assert.is(l.state.total(), expected + 1);
    await Promise.all(groups.map((g) => g.close()));
  });
});

/** 130 ordered adds and a persisted one under `config`: the log holds a snapshot, and a restart restores. */
async function snapshotsTrimAndRestore(config: GroupConfig, what: string): Promise<void> {
  await withDirs(async (dirs) => {
    let groups = await start(config, dirs);
    const ledgers = groups.map((g) => g.subgroup('ledger', Ledger));
    for (let i = 0; i < 130; i++) await ledgers[i % 3]!.ordered.add('k', 1);
    await ledgers[0]!.persisted.add('k', 1);
    await Promise.all(groups.map((g) => g.close()));
    const files = await readdir(join(dirs[0]!, 'ledger.0'));
    assert.ok(files.some((f) => /snap/i.test(f)), `${what}: a snapshot file: ${files.join(', ')}`);
    groups = await start(config, dirs);
    for (const g of groups) assert.is(g.subgroup('ledger', Ledger).state.total(), 131);
    await Promise.all(groups.map((g) => g.close()));
  });
}

test('snapshots every N records trim the log; a restart restores the snapshot and replays the rest',
  async () => snapshotsTrimAndRestore(await configOf(40), 'snapshotEvery 40'));

test('snapshots every N bytes too (snapshotEveryBytes): small records far below snapshotEvery still trim the log',
  async () => {
  const config = await configOf();
  config.subgroups.ledger!.snapshotEveryBytes = 1024;
  await snapshotsTrimAndRestore(config, '131 records of 10,000, 1 KiB apart');
});

test('the worker engine: persisted calls resolve too (the frontier is read while they wait)', async () => {
  await withDirs(async (dirs) => {
    const groups = await start(await configOf(), dirs, 'worker');
    try {
      const ledgers = groups.map((g) => g.subgroup('ledger', Ledger));
      const calls = [];
      for (let i = 0; i < 60; i++) calls.push(ledgers[i % 3]!.persisted.add('k', 1));
      const replies = await Promise.all(calls);
      assert.is(replies.length, 60);
      for (const l of ledgers) assert.is(l.state.total(), 60);
      const last = replies.map((r) => r[0]!.version).reduce((a, b) => (a > b ? a : b));
      assert.ok(await ledgers[1]!.at(last), 'the last update is in the log');
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });
});

test('a member that closed comes back through a contact with its directory: the source sends only the records '
  + 'after its log\'s version, and it logs what follows', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    config.subgroups.ledger!.members = { min: 2, max: 3 };
    const groups = await start(config, dirs);
    let back: Group | null = null;
    try {
      const ledgers = groups.map((g) => g.subgroup('ledger', Ledger));
      for (let i = 0; i < 30; i++) await ledgers[i % 3]!.ordered.add('k', 1);
      await groups[2]!.close();
      for (let i = 0; i < 30; i++) await ledgers[i % 2]!.ordered.add('k', 1);
      const sent: string[] = [];
      groups[0]!.on('protocol', (e) => { if (e.event === 'stateSent') sent.push(`${e.kind} to ${e.to}`); });
      back = await Group.join({
        id: 2, config, dataDir: dirs[2]!, types: { ledger: Ledger }, contact: groups[0]!.contactAddress,
        listen: '127.0.0.1:0', heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000,
      });
      const mine = back.subgroup('ledger', Ledger);
      assert.is(mine.state.total(), 60, 'the state it missed arrived');
      assert.equal(sent, ['log to 2'], 'its source reports a catch-up from its log (the stateSent event)');
      const replies = await ledgers[0]!.persisted.add('k', 1);
      const v = replies[0]!.version;
      assert.is(replies.length, 3, 'it replies again');
      assert.is(mine.state.total(), 61);
      const record = await mine.at(v);
      assert.ok(record && record.method === 'add', 'it logged the update after its return');
      assert.is((await mine.stateAt(v)).total(), 61, 'its log rebuilds the state');
      await back.close();
      // It caught up from the log: the 30 updates it missed came as records (no snapshot was written) and
      // its log holds every update.
      await withLedgerLog(dirs[2]!, 2, async (log) => {
        assert.is(await log.latestSnapshot(), null, 'no snapshot: the records came instead');
        let n = 0;
        for await (const r of log.read(-1n)) { n++; assert.ok(r.version <= v); }
        assert.is(n, 61, 'its log holds every update');
      });
    } finally {
      await Promise.all([groups[0]!.close(), groups[1]!.close(), back?.close()]);
    }
  });
});

test('a member that comes back with an empty directory receives the snapshot, its log starts from it, and '
  + 'persisted calls go on', async () => {
  await withDirs(async (dirs) => {
    const config = await configOf();
    config.subgroups.ledger!.members = { min: 2, max: 3 };
    const groups = await start(config, dirs);
    let back: Group | null = null;
    try {
      const ledgers = groups.map((g) => g.subgroup('ledger', Ledger));
      for (let i = 0; i < 20; i++) await ledgers[i % 3]!.ordered.add('k', 1);
      await groups[2]!.close();
      await rm(dirs[2]!, { recursive: true, force: true });
      back = await Group.join({
        id: 2, config, dataDir: dirs[2]!, types: { ledger: Ledger }, contact: groups[1]!.contactAddress,
        listen: '127.0.0.1:0', heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000,
      });
      const mine = back.subgroup('ledger', Ledger);
      assert.is(mine.state.total(), 20);
      const replies = await ledgers[1]!.persisted.add('k', 1);
      assert.is(replies.length, 3);
      assert.is((await mine.stateAt(replies[0]!.version)).total(), 21, 'snapshot + the record after it');
      await back.close();
      await withLedgerLog(dirs[2]!, 2, async (log) => {
        assert.ok(await log.latestSnapshot(), 'the transferred state is the log\'s snapshot');
      });
    } finally {
      await Promise.all([groups[0]!.close(), groups[1]!.close(), back?.close()]);
    }
  });
});

crashTest('SIGKILL of every member (child processes) after a persisted call: every log holds every update up to '
  + 'it, and the members started again from their directories hold the same state', async () => {
  await withDirs(async (dirs) => {
    const cluster = await GroupCluster.start({
      members: 3, types: { kv: 'KeyValueStore' }, dataDirs: dirs, heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000,
      subgroups: { kv: { shards: 1, members: { min: 3, max: 3 }, persistent: true, snapshotEvery: 64 } },
    });
    const config = cluster.config;
    let persisted: bigint;
    try {
      const fill = { cmd: 'fill', subgroup: 'kv', method: 'put', count: 150, bytes: 100 } as const;
      await cluster.request(cluster.members[1]!, fill);
      const { replies } = await cluster.request(cluster.members[2]!, {
        cmd: 'call', subgroup: 'kv', method: 'put', args: ['last', new Uint8Array([7])], persisted: true,
      }) as { replies: Array<{ version: bigint }> };
      persisted = replies[0]!.version;
    } finally {
      cluster.kill(); // no close, no flush: what the logs hold is what was durable
      await Promise.all(cluster.members.map((m) => m.exited ? null : once(m.process, 'exit')));
    }
    for (const [id, dir] of dirs.entries()) {
      const identity = { group: 'squall', memberId: id, subgroup: 'kv', shard: 0 };
      const log = await PersistentLog.open(join(dir, 'kv.0'), identity);
      try {
        assert.ok(log.durableVersion >= persisted, `member ${id}: durable ${log.durableVersion} ≥ ${persisted}`);
        assert.ok(await log.recordAt(persisted), `member ${id} holds the persisted update`);
      } finally {
        await log.close();
      }
    }
    const groups = await Promise.all(dirs.map((dataDir, id) => Group.join({
      id, config, dataDir, types: { kv: KeyValueStore }, heartbeatIntervalMs: 10, suspicionTimeoutMs: 2000,
    })));
    try {
      const stores = groups.map((g) => g.subgroup('kv', KeyValueStore));
      const summaries = stores.map((s) => s.state.summary());
      assert.is(summaries[0]!.keys, 151, 'every put is back');
      for (const s of summaries) assert.equal(s, summaries[0], 'every member holds the same state');
      assert.ok(stores.every((s) => s.version() === persisted), 'at the persisted version');
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });
});

test.run();
