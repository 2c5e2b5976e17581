// `squall node --metrics HOST:PORT` and registerMetrics: three real member processes serve Prometheus text at
// /metrics; a fourth member (in this process, on its own registry) joins and makes ordered calls, and a
// second scrape of each process finds the counters moved — deliveries, bytes, the view and its changes.
// squall inspect reads the same admin port. Anything but GET /metrics and /inspect is a 404; a bad --metrics
// address is refused before the member starts; inspect refuses a server that is not a member.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { Group } from '../ts/group/group.js';
import { registerMetrics } from '../ts/group/metrics.js';
import { TicketBook } from '../ts/examples/ticket-book.js';
import { freePorts } from '../ts/harness/cluster.js';
import { startCli, waitFor, type Run } from './support/cli-runs.js';

/** The value of one sample of `name` with `labels` in Prometheus text (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.is(res.status, 200, `GET ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

test('three squall node processes serve /metrics; a joiner\'s calls move every member\'s counters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-metrics-'));
  const ports = await freePorts(3);
  const config = join(dir, 'cluster.json');
  writeFileSync(config, JSON.stringify({
    members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })),
    subgroups: { tickets: { type: 'TicketBook', shards: 1, members: { min: 3, max: 4 } } },
  }));
  const runs: Run[] = [0, 1, 2].map((id) => startCli(['node', '--config', config, '--id', String(id),
    '--metrics', '127.0.0.1:0']));
  let joiner: Group | null = null;
  try {
    for (const r of runs) await waitFor(r, /metrics at http:\S+\/metrics/, 30_000);
    for (const r of runs) await waitFor(r, /new members join through --contact \S+/, 30_000);
    const urls = runs.map((r) => /metrics at (http:\S+\/metrics)/.exec(r.err)![1]!);
    const before = await Promise.all(urls.map(scrape));
    before.forEach((text, id) => {
      assert.is(sample(text, 'squall_view', `member="${id}"`), 0, `member ${id} is in view 0`);
      assert.is(sample(text, 'squall_view_members', `member="${id}"`), 3);
      assert.is(sample(text, 'squall_deliveries_total', `member="${id}",subgroup="tickets"`), 0);
    });

    const contact = /new members join through --contact (\S+)/.exec(runs[0]!.err)![1]!;
    const [listen] = await freePorts(1);
    const registry = new Registry();
    joiner = await Group.join({ id: 3, config, contact, listen: `127.0.0.1:${listen}`,
      types: { tickets: TicketBook } });
    registerMetrics(joiner, registry);
    const tickets = joiner.subgroup('tickets', TicketBook);
    for (let i = 0; i < 20; i++) await tickets.ordered.book(`A${i}`, 'alice');

    const after = await Promise.all(urls.map(scrape));
    after.forEach((text, id) => {
      const labels = `member="${id}",subgroup="tickets"`;
      assert.is(sample(text, 'squall_view', `member="${id}"`), 1, `member ${id} installed view 1`);
      assert.is(sample(text, 'squall_view_members', `member="${id}"`), 4);
      assert.is(sample(text, 'squall_view_changes_total', `member="${id}"`), 1);
      assert.ok(sample(text, 'squall_install_seconds_count', `member="${id}"`) === 1, 'the install was timed');
      assert.ok(sample(text, 'squall_deliveries_total', labels) >= 20, `member ${id} counted the deliveries`);
      assert.ok(sample(text, 'squall_delivered_bytes_total', labels) > 20 * 10, 'and their bytes');
      const out = sample(text, 'squall_fabric_bytes_total', `member="${id}",direction="out"`);
      assert.ok(out > 0, 'the fabric moved bytes');
      for (const peer of [0, 1, 2, 3].filter((p) => p !== id)) {
        assert.is(sample(text, 'squall_fabric_connected', `member="${id}",peer="${peer}"`), 1, `${id} → ${peer}`);
        assert.ok(text.includes(`squall_fabric_send_queue_frames{member="${id}",peer="${peer}"} `), 'queue depth');
        assert.ok(text.includes(`squall_fabric_send_queue_bytes{member="${id}",peer="${peer}"} `), 'and its bytes');
      }
    });
    const own = await registry.metrics();
    assert.ok(sample(own, 'squall_deliveries_total', 'member="3",subgroup="tickets"') >= 20,
      'the application\'s own registry has the joiner\'s figures');

    const missing = await fetch(urls[0]!.replace('/metrics', '/other'));
    assert.is(missing.status, 404);

    // squall inspect against the same admin port: the view, the SST's rows, the shard's counters.
    const admin = /^http:\/\/(\S+)\/metrics$/.exec(urls[1]!)![1]!;
    const inspect = startCli(['inspect', admin]);
    assert.is(await inspect.exit, 0, inspect.err);
    assert.match(inspect.out, /^member 1 at \S+ — view 1, members 0, 1, 2, 3/);
    assert.match(inspect.out, /membership SST[^]*\n {2}member +wedged[^\n]*\n {2}0 [^]*\n {2}3 +false/);
    assert.match(inspect.out, /subgroup 'tickets'[^]*deliveredNum[^\n]*window +inFlight/);
    assert.match(inspect.out, /fabric \(this view's connections\): in \d+ frames, [\d.]+ [KMG]?i?B/);
    assert.match(inspect.out, /fabric connections[^\n]*\n {2}peer +state +queuedFrames +queuedBytes +bytesIn/);
    assert.match(inspect.out, /\n {2}3 +connected +\d+ +[\d.]+ [KMG]?i?B/);
    const json = startCli(['inspect', admin, '--json']);
    assert.is(await json.exit, 0, json.err);
    const parsed = JSON.parse(json.out) as { vid: number; membership: unknown[];
      subgroups: Record<string, { shard: { window: number; inFlight: number } }> };
    assert.is(parsed.vid, 1);
    assert.is(parsed.membership.length, 4);
    const { window, inFlight } = parsed.subgroups['tickets']!.shard;
    assert.ok(window > 0 && inFlight >= 0 && inFlight <= window, `the window and what is in flight in it: ${window}`);
  } finally {
    await joiner?.close().catch(() => {}); // over: a failed close tells the test nothing
    for (const r of runs) r.child.kill('SIGKILL');
    await Promise.all(runs.map((r) => r.exit));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('squall inspect refuses what is not a member\'s inspection, and an address that does not answer', async () => {
  const server = createServer((req, res) => {
    if (req.url === '/inspect') res.writeHead(200, { 'content-type': 'application/json' }).end('{"version": 7}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    const wrong = startCli(['inspect', `127.0.0.1:${port}`]);
    assert.is(await wrong.exit, 1);
    assert.match(wrong.err, /did not send a squall inspection/);
    const silent = startCli(['inspect', `127.0.0.1:${port}`, '--interval', '0']);
    assert.is(await silent.exit, 1);
    assert.match(silent.err, /--interval must be a positive integer/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
  const [free] = await freePorts(1);
  const nobody = startCli(['inspect', `127.0.0.1:${free}`]);
  assert.is(await nobody.exit, 1);
  assert.match(nobody.err, /cannot reach http:\/\/127\.0\.0\.1:\d+\/inspect/);
});

test('squall node --metrics with a bad address exits 1 naming the flag, before joining', async () => {
  const run = startCli(['node', '--config', 'no-such.json', '--id', '0', '--metrics', 'localhost']);
  assert.is(await run.exit, 1);
  assert.match(run.err, /--metrics/);
});

test.run();
