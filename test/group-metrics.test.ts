// registerMetrics on members in this process, sharing one registry: a burst of sends through a window of two
// slots queues (window stalls counted), a sample of the sends is timed to its push and its delivery here (the
// latency histograms count them), and a joiner with state makes its source count the bytes it sent. No
// timing thresholds: only that each figure moved.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { Group } from '../ts/group/group.js';
import { registerMetrics } from '../ts/group/metrics.js';
import { TicketBook } from '../ts/examples/ticket-book.js';
import { freePorts } from '../ts/harness/cluster.js';

/** The value of one sample of `name` with `labels` in Prometheus text (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Resolves once `done()` holds, looking every 5 ms (the test runner's limit ends a hang). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
}

test('window stalls, push and delivery latency, and state-transfer bytes reach the registry', async () => {
  const ports = await freePorts(2);
  const members = [0, 1].map((id) => ({ id, address: `127.0.0.1:${ports[id]}` }));
  const config = { members, subgroups: {
    tickets: { shards: 1, members: { min: 2, max: 3 } },
    stream: { shards: 1, members: { min: 2, max: 3 }, window: 2 },
  } };
  const types = { tickets: TicketBook };
  const groups = await Promise.all([0, 1].map((id) => Group.join({ id, config, types })));
  const registry = new Registry();
  let joiner: Group | null = null;
  try {
    for (const g of groups) registerMetrics(g, registry);
    const streams = groups.map((g) => g.channel('stream'));
    for (const s of streams) s.onDeliver(() => {});
    const bytes = new Uint8Array(16);
    const rounds = 4, perRound = 128;
    for (let round = 0; round < rounds; round++) {
      await Promise.all(Array.from({ length: perRound }, () => streams[0]!.send(bytes)));
      await until(() => streams[0]!.delivered >= (round + 1) * perRound);
    }
    let text = await registry.metrics();
    const stream = 'member="0",subgroup="stream"';
    assert.ok(sample(text, 'squall_window_stalls_total', stream) > 0,
      'a burst through a window of two slots queued for them');
    assert.ok(sample(text, 'squall_push_latency_seconds_count', stream) > 0, 'a sample of the sends was timed to '
      + `its push: ${text.split('\n').filter((l) => l.includes('latency_seconds_count')).join('; ')}`);
    assert.ok(sample(text, 'squall_delivery_latency_seconds_count', stream) > 0, 'and to its delivery here');
    assert.ok(sample(text, 'squall_delivery_latency_seconds_sum', stream) > 0);
    assert.is(sample(text, 'squall_delivery_latency_seconds_count', 'member="1",subgroup="stream"'), 0,
      'a member that sends nothing times nothing');

    const tickets = groups[0]!.subgroup('tickets', TicketBook);
    for (let i = 0; i < 10; i++) await tickets.ordered.book(`A${i}`, 'alice');
    joiner = await Group.join({ id: 2, config, types, contact: groups[0]!.contactAddress, listen: '127.0.0.1:0' });
    await joiner.subgroup('tickets', TicketBook).ordered.book('B1', 'bob'); // its state arrived: it runs
    text = await registry.metrics();
    assert.ok(sample(text, 'squall_state_transfer_bytes_total', 'member="0",direction="sent"') > 0,
      'the source counted the state it sent to the joiner');
    assert.is(sample(text, 'squall_state_transfer_bytes_total', 'member="1",direction="sent"'), 0,
      'one source per shard');
  } finally {
    const all = [...groups, ...(joiner ? [joiner] : [])];
    await Promise.all(all.map((g) => g.close().catch(() => {}))); // over: a failed close tells it nothing
  }
});

test.run();
