// `squall node --config FILE --id N`: three real CLI processes join one group from a JSON file with a
// TicketBook subgroup, report what they deliver, a fourth joins the running group with --contact, and all
// close cleanly on SIGTERM; a subgroup type that names no known class is refused before anything starts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../ts/harness/cluster.js';
import { startCli, waitFor, type Run } from './support/cli-runs.js';
import { joinRequest, parseGreeting, RawClient } from './support/contact-clients.js';
import { pattern } from './support/pattern.js';


const start = (args: string[]) => startCli(['node', ...args]);

function writeConfig(dir: string, ports: number[], type: string): string {
  const path = join(dir, 'cluster.json');
  writeFileSync(path, JSON.stringify({
    members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })),
    subgroups: { tickets: { type, shards: 1, members: { min: 3, max: 4 } } },
  }));
  return path;
}

test('squall node: three members from one config file join, report their deliveries, a fourth joins with --contact, ' +
  'and all close cleanly on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-node-'));
  const runs: Run[] = [];
  try {
    const config = writeConfig(dir, await freePorts(3), 'TicketBook');
    for (const id of [2, 0, 1]) runs.push(start(['--config', config, '--id', String(id)])); // any start order
    for (const r of runs) await waitFor(r, /listening on 127\.0\.0\.1:\d+; waiting for peers/, 20_000);
    for (const r of runs) await waitFor(r, /joined: members 0, 1, 2 connected/, 20_000);
    // printed by a second write after the "joined" line, so it may reach this process in a later chunk
    for (const r of runs) await waitFor(r, /subgroup 'tickets' \(TicketBook\): shard members 0, 1, 2/, 5_000);
    for (const r of runs) await waitFor(r, /delivered {2}tickets: 0 ordered commands\/s, 0 bookings/, 5_000);

    // A fourth member joins through the contact address member 2 printed.
    const contact = /new members join through --contact (\S+)/.exec(runs[0]!.err)![1]!;
    runs.push(start(['--config', config, '--id', '3', '--listen', '127.0.0.1:0', '--contact', contact]));
    await waitFor(runs[3]!, /member 3 asking to join through/, 20_000);
    await waitFor(runs[3]!, /joined: members 0, 1, 2, 3 connected \(view 1\)/, 20_000);
    await waitFor(runs[3]!, /subgroup 'tickets' \(TicketBook\): shard members 0, 1, 2, 3/, 5_000);
    for (const r of runs.slice(0, 3)) await waitFor(r, /view 1: members 0, 1, 2, 3 \(joined 3\)/, 20_000);

    const signalled = performance.now();
    for (const r of runs) r.child.kill('SIGTERM');
    const exits = runs.map((r) => r.exit.then((code) => ({ code, ms: performance.now() - signalled })));
    const codes = await Promise.all(exits);
    assert.equal(codes.map((c) => c.code), [0, 0, 0, 0], 'every member exits 0 on SIGTERM');
    for (const r of runs) assert.match(r.err, /SIGTERM: leaving the group[^]*(left|closed without a clean leave)/);
    // The leave is bounded at 1.5 s, then the process exits: 2 s, with a second of slack for a busy machine.
    for (const c of codes) assert.ok(c.ms < 3000, `a member exited ${c.ms.toFixed(0)} ms after SIGTERM`);
  } finally {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A configuration of member 0 alone whose shard needs 3: the first view forms by joins at member 0's contact address.
 */
async function writeSeedConfig(dir: string): Promise<{ path: string; contact: string }> {
  const [port, contactPort] = await freePorts(2);
  const contact = `127.0.0.1:${contactPort}`;
  const path = join(dir, 'seed.json');
  writeFileSync(path, JSON.stringify({
    members: [{ id: 0, address: `127.0.0.1:${port}`, contact }],
    subgroups: { tickets: { type: 'TicketBook', shards: 1, members: { min: 3, max: 3 } } },
  }));
  return { path, contact };
}

test('squall node: a configuration too small for its shards forms the first view by joins, in join order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-node-'));
  const runs: Run[] = [];
  try {
    const { path, contact } = await writeSeedConfig(dir);
    runs.push(start(['--config', path, '--id', '0']));
    await waitFor(
      runs[0]!,
      new RegExp(`member 0 forms the first view: waiting for enough members to join through --contact ${contact}`),
      20_000);
    for (const id of [7, 4]) { // join order, not id order
      runs.push(start(['--config', path, '--id', String(id), '--listen', '127.0.0.1:0', '--contact', contact]));
      await waitFor(runs.at(-1)!, new RegExp(`member ${id} asking to join`), 20_000);
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const r of runs) await waitFor(r, /joined: members 0, 7, 4 connected \(view 0\)/, 20_000);
    for (const r of runs) r.child.kill('SIGTERM');
    assert.equal(await Promise.all(runs.map((r) => r.exit)), [0, 0, 0]);

    // Another member of such a configuration must join the one that forms the first view.
    const second = join(dir, 'two.json');
    writeFileSync(second, JSON.stringify({
      members: [{ id: 0, address: '127.0.0.1:1', contact: '127.0.0.1:2' }, { id: 1, address: '127.0.0.1:3' }],
      subgroups: { tickets: { shards: 1, members: { min: 3, max: 3 } } },
    }));
    const alone = start(['--config', second, '--id', '1']);
    assert.is(await alone.exit, 1);
    assert.match(alone.err, pattern([
      /the configuration's members are too few for its subgroups, so the first view forms by joins: /,
      /start member 0 first, then the others with contact/,
    ]));
  } finally {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('squall node: joiners of the first view that take their offer and go silent are not in it: the view forms again ' +
  'from those that answer, and nobody stops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-node-'));
  const runs: Run[] = [];
  const strangers: RawClient[] = [];
  try {
    const { path, contact } = await writeSeedConfig(dir);
    runs.push(start(['--config', path, '--id', '0']));
    await waitFor(runs[0]!, /member 0 forms the first view: waiting/, 20_000);
    // Two raw clients ask first: with member 0 they are enough, so the offer goes to them; they never answer it.
    for (const id of [50, 51]) {
      const s = await RawClient.open(contact);
      strangers.push(s);
      s.write(`${JSON.stringify(joinRequest(parseGreeting(await s.line(10_000))!, id, '127.0.0.1', null))}\n`);
      assert.is(await s.line(10_000), '{"accepted":true}');
    }
    for (const s of strangers) {
      assert.match((await s.line(10_000)) ?? '', /^\{"offer":\{"view":\{"vid":0,"members":\[0,50,51\]/);
    }
    // Real members ask meanwhile; the silent ones are told to ask again after one suspicion timeout, and view 0 forms
    // without them.
    for (const id of [7, 4]) {
      runs.push(start(['--config', path, '--id', String(id), '--listen', '127.0.0.1:0', '--contact', contact]));
      await waitFor(runs.at(-1)!, new RegExp(`member ${id} asking to join`), 20_000);
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const s of strangers) {
      assert.match((await s.line(10_000)) ?? '', /^\{"retry":"member 50, 51 did not answer the first view's offer/);
    }
    for (const r of runs) await waitFor(r, /joined: members 0, 7, 4 connected \(view 0\)/, 30_000);
    await new Promise((r) => setTimeout(r, 2_000)); // nobody stops afterwards
    for (const r of runs) assert.is(r.child.exitCode, null, r.err);
    for (const r of runs) r.child.kill('SIGTERM');
    assert.equal(await Promise.all(runs.map((r) => r.exit)), [0, 0, 0]);
  } finally {
    for (const s of strangers) s.destroy();
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('squall node: an unknown subgroup type exits 1 naming the known types; --module adds the classes it exports',
  async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-node-'));
  try {
    const config = writeConfig(dir, [1, 2, 3], 'Inventory');
    const failed = start(['--config', config, '--id', '0']);
    assert.is(await failed.exit, 1);
    assert.match(failed.err, pattern([
      /subgroup 'tickets' has type 'Inventory', which is no known class; known types: TicketBook, KeyValueStore /,
      /\(--module FILE adds the classes an ES module exports\) \(ERR_SQUALL_CONFIG\)/,
    ]));

    const module = join(dir, 'types.mjs');
    writeFileSync(module, 'export class Basket { add(item) { return item; } }\nexport const notAClass = 1;\n');
    const stillUnknown = start(['--config', config, '--id', '0', '--module', module]);
    assert.is(await stillUnknown.exit, 1);
    assert.match(stillUnknown.err, /known types: TicketBook, KeyValueStore, Basket \(ERR_SQUALL_CONFIG\)/);

    const noId = start(['--config', config]);
    assert.is(await noId.exit, 1);
    assert.match(noId.err, /squall node needs --config FILE and --id N/);
    const badType = join(dir, 'bad.json');
    writeFileSync(
      badType,
      JSON.stringify({
        members: [{ id: 0, address: '127.0.0.1:1' }],
        subgroups: { t: { type: 7, shards: 1, members: { min: 1, max: 1 } } },
      }));
    const notAName = start(['--config', badType, '--id', '0']);
    assert.is(await notAName.exit, 1);
    assert.match(notAName.err, /subgroup 't': type must name a class, e\.g\. "TicketBook", got 7/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
