// Abuse of a running member's contact port (DESIGN.md §11; docs/membership.md "The contact port"): slow
// clients trickling a byte at a time, silent ones, a line far over the limit, an endless line, and a stream
// of non-object JSON lines (`5`, `true`, `"x"`, `null`, `[]` — one of which used to end the process), at
// every member of a 3-member group while member 0 floods ordered messages. The members stay up, every
// message is delivered everywhere, the flood's rate stays within loose bounds of the rate without abuse
// (the machine is busy), the server closes slow and silent clients at its handshake deadline, and a source
// with too many connections open has the extra ones closed at once.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster } from '../ts/harness/cluster.js';
import { CONTACT_LIMITS } from '../ts/group/contact.js';
import { RawClient, sleep } from './support/contact-clients.js';

const LOG = { shards: 1, members: { min: 2, max: 9 }, maxSmcPayload: 1024, window: 8 };
const FLOOD_S = 2;

/** Floods from member 0 for FLOOD_S and waits until every member delivered what was sent; returns the count. */
async function floodAndDeliver(cluster: GroupCluster, before: number): Promise<number> {
  const { sent } = await cluster.request(
    cluster.members[0]!, { cmd: 'flood', subgroup: 'log', seconds: FLOOD_S, size: 256, inFlight: 32 }) as {
      sent: number
    };
  const reports = await cluster.all({ cmd: 'await', subgroup: 'log', total: before + sent, timeoutMs: 60_000 });
  for (const [i, r] of reports.entries()) assert.is(r.delivered, before + sent, `member ${i} delivered every message`);
  return sent;
}

interface Abuser { client: RawClient; openedAt: number; kind: string; stop: () => void }

async function slowClient(address: string): Promise<Abuser> {
  const client = await RawClient.open(address);
  const t = setInterval(() => client.write('{'), 250); // a byte at a time, never a whole line
  client.closed.then(() => clearInterval(t), () => {});
  return { client, openedAt: Date.now(), kind: 'slow', stop: () => { clearInterval(t); client.destroy(); } };
}

async function silentClient(address: string): Promise<Abuser> {
  const client = await RawClient.open(address);
  return { client, openedAt: Date.now(), kind: 'silent', stop: () => client.destroy() };
}

async function oversizedClient(address: string): Promise<Abuser> {
  const client = await RawClient.open(address);
  client.write(Buffer.alloc(1 << 20, 0x7b)); // 1 MiB of '{', then a newline
  client.write('\n');
  return { client, openedAt: Date.now(), kind: 'oversized', stop: () => client.destroy() };
}

async function endlessClient(address: string): Promise<Abuser & { written: () => number }> {
  const client = await RawClient.open(address);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let written = 0, stopped = false;
  const pump = () => {
    while (!stopped && !client.isClosed && written < 512 << 20) {
      written += chunk.byteLength;
      if (!client.socket.write(chunk)) { client.socket.once('drain', pump); return; }
    }
  };
  pump();
  return {
    client, openedAt: Date.now(), kind: 'endless', stop: () => { stopped = true; client.destroy(); },
    written: () => written,
  };
}

/** Opens connections that each send one non-object JSON line, one after another, until stopped; counts them. */
function nonObjectStream(address: string): { stop: () => Promise<number> } {
  const lines = ['5', 'true', '"x"', 'null', '[]', '-1', '"join"', '[{"join":{"id":1,"host":"h"}}]'];
  let stopped = false, sent = 0;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const client = await RawClient.open(address).catch(() => null);
      if (!client) { await sleep(20); continue; }
      client.write(`${lines[i % lines.length]}\n`);
      sent++;
      await client.closedWithin(2_000);
      client.destroy();
      // A stranger elsewhere costs the members only their side; this one shares their two cores, so it
      // paces itself (about 40 connections a second per member) rather than measure its own CPU.
      await sleep(25);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return sent; } };
}

test('slow, silent, oversized, endless and non-object JSON clients at every member: the members stay up and keep ' +
  'delivering', async () => {
  const cluster = await GroupCluster.start({ members: 3, subgroups: { log: LOG }, suspicionTimeoutMs: 2_000 });
  const abusers: Abuser[] = [];
  try {
    await cluster.all({ cmd: 'record', subgroup: 'log' });
    const baseline = await floodAndDeliver(cluster, 0);

    const contacts = cluster.members.map((m) => cluster.contacts.get(m.id)!);
    const endless: Array<Awaited<ReturnType<typeof endlessClient>>> = [];
    for (const address of contacts) {
      for (let i = 0; i < 6; i++) abusers.push(await slowClient(address));
      for (let i = 0; i < 3; i++) abusers.push(await silentClient(address));
      abusers.push(await oversizedClient(address));
      const e = await endlessClient(address);
      endless.push(e);
      abusers.push(e);
    }
    const streams = contacts.map((address) => nonObjectStream(address));
    const abused = await floodAndDeliver(cluster, baseline);
    const nonObject = await Promise.all(streams.map((s) => s.stop()));

    for (const m of cluster.members) assert.not.ok(m.exited, `member ${m.id} is up`);
    assert.ok(nonObject.every((n) => n >= 10), `non-object JSON lines sent to each member: ${nonObject.join(', ')}`);
    assert.ok(
      abused >= baseline * 0.3,
      `the flood delivered ${abused} messages in ${FLOOD_S} s under abuse, ${baseline} without`);
    console.log(
      `  ${FLOOD_S} s flood: ${baseline} messages without abuse, ${abused} with; non-object ` +
        `lines ${nonObject.join('/')}`);

    // Oversized and endless lines are cut off at once (the line limit), never read to the end.
    for (const a of abusers.filter((x) => x.kind === 'oversized' || x.kind === 'endless')) {
      assert.ok(await a.client.closedWithin(10_000), `the ${a.kind} client was closed`);
    }
    for (const e of endless) {
      assert.ok(e.written() < 64 << 20, `the endless client wrote ${e.written()} bytes before it was closed`);
    }
    // Slow and silent clients are closed at the handshake deadline, counted from accept.
    for (const a of abusers.filter((x) => x.kind === 'slow' || x.kind === 'silent')) {
      const closed = await a.client.closedWithin(
        Math.max(1, a.openedAt + CONTACT_LIMITS.handshakeMs + 15_000 - Date.now()));
      assert.ok(closed, `a ${a.kind} client was closed within the handshake deadline (+15 s on a busy machine)`);
      assert.ok(
        Date.now() - a.openedAt >= CONTACT_LIMITS.handshakeMs - 1_000,
        `a ${a.kind} client was not closed before its deadline`);
    }

    // One source may hold at most connectionsPerSourceMax connections: the extra ones close at once.
    const address = contacts[2]!;
    const many = await Promise.all(
      Array.from({ length: CONTACT_LIMITS.connectionsPerSourceMax + 8 }, () => RawClient.open(address)));
    await sleep(1_000);
    const closedEarly = many.filter((c) => c.isClosed).length;
    assert.ok(closedEarly >= 8, `${closedEarly} of ${many.length} connections from one source closed at once`);
    for (const c of many) c.destroy();
    // And the member still greets the next one.
    await sleep(200);
    const after = await RawClient.open(address);
    assert.match((await after.line(5_000)) ?? '', /^\{"hello":/);
    after.destroy();
    const warned = cluster.members.flatMap((m) => m.events.filter((e) => e.type === 'warning'));
    assert.ok(warned.length > 0, 'the members reported the abuse');
  } finally {
    for (const a of abusers) a.stop();
    cluster.kill();
  }
});

test.run();
