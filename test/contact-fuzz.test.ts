// The contact protocol under seeded fuzz (DESIGN.md §10 "Bad input", §11): thousands of hostile inputs —
// random bytes, random JSON values, non-object JSON, mutated join requests, oversized, endless, split and
// partial lines — over real sockets against a real ContactServer (with a key: none may get in; the server
// holds no connection past its deadline and reports refusals at a bounded rate), then against a running
// group member in its own process, which stays up and still admits a real joiner afterwards. A joiner facing
// a hostile "member" fails with a coded error in its time limit. A failure names its seed
// (SQUALL_TEST_SEED=<seed> replays it).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { ContactServer, requestJoin, type ContactSession } from '../ts/group/contact.js';
import { SquallError } from '../ts/errors.js';
import type { Joiner } from '../ts/membership/protocol.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import { prng, suiteSeed } from './support/random.js';
import { joinRequest, parseGreeting, RawClient, runFuzz, sleep } from './support/contact-clients.js';

const SEED = suiteSeed();
const KEY = Buffer.from('fuzz-test-key-0123456789abcdef');
const OFFER = {
  view: { vid: 1, members: [0, 7] }, previous: [0], previousSize: 1, joined: [7],
  hosts: { 0: '127.0.0.1', 7: '127.0.0.1' },
};

const seeded = (name: string, body: (rand: () => number) => Promise<void>) => test(name, async () => {
  let h = SEED;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
  try {
    await body(prng(h));
  } catch (error) {
    if (error instanceof Error) error.message += ` (SQUALL_TEST_SEED=${SEED})`;
    throw error;
  }
});

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

seeded('contact fuzz: 3000 hostile inputs at a ContactServer with a key: none is taken in, none crashes it, every ' +
  'connection is closed, refusals are reported at a bounded rate; a real joiner then gets in', async (rand) => {
  const joined: Joiner[] = [];
  const warnings: Error[] = [];
  const server = await ContactServer.listen('127.0.0.1:0', (session: ContactSession, joiner) => {
    joined.push(joiner);
    session.send({ accepted: true });
    session.send({ offer: OFFER });
  }, {
    key: KEY, warn: (e) => warnings.push(e),
    limits: { handshakeMs: 400, warningsPerWindow: 5, warningWindowMs: 60_000 },
  });
  try {
    const address = `127.0.0.1:${server.port}`;
    const started = Date.now();
    const result = await runFuzz(address, 3000, rand, KEY, 8, 3_000);
    assert.is(joined.length, 0, `no fuzz input was taken in as a join request: ${JSON.stringify(joined.slice(0, 3))}`);
    assert.is(result.accepted, 0, 'no fuzz input was welcomed, redirected or accepted');
    assert.is(result.notClosed, 0, 'the server closed every connection (held ones at its handshake deadline)');
    const kinds = [
      'random bytes', 'random JSON', 'non-object JSON', 'mutated join request', 'oversized line', 'partial line',
    ];
    for (const kind of kinds) {
      assert.ok((result.byKind.get(kind) ?? 0) > 20, `${kind}: ${result.byKind.get(kind)} cases`);
    }
    await until('the server holds no connection', () => server.connections === 0, 5_000);
    // Refusals are reported, but at most 5 in the window, whatever the flood.
    assert.is(warnings.length, 5, `5 reports for ${3000} refusals: ${warnings.map((w) => w.message).join(' | ')}`);
    for (const w of warnings) assert.instance(w, SquallError);
    assert.ok(
      warnings.some(
        (w) => (w as SquallError).code === 'ERR_SQUALL_AUTH' || (w as SquallError).code === 'ERR_SQUALL_JOIN'));
    // A real joiner with the key: proven both ways, sealed, offered the view.
    const { session, offer } = await requestJoin([address], { id: 7, host: '127.0.0.1' }, 10_000, { key: KEY });
    assert.equal(offer.view.members, [0, 7]);
    session.close();
    assert.equal(joined, [{ id: 7, host: '127.0.0.1' }]);
    console.log(
      `  3000 inputs in ${Date.now() - started} ms: ${[...result.byKind].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  } finally {
    server.close();
  }
});

seeded('contact fuzz: an open ContactServer (no key) survives 1500 hostile inputs and still greets', async (rand) => {
  const server = await ContactServer.listen(
    '127.0.0.1:0', (session) => session.close(), { limits: { handshakeMs: 400 } });
  try {
    const address = `127.0.0.1:${server.port}`;
    const result = await runFuzz(address, 1500, rand, null, 8, 3_000);
    assert.is(result.notClosed, 0);
    await until('the server holds no connection', () => server.connections === 0, 5_000);
  } finally {
    server.close();
  }
});

test('contact port caps: connections in all and per source are bounded (the extra ones closed and reported), and a ' +
  'joiner that does not read is cut off once its output passes the bound', async () => {
  const warnings: Error[] = [];
  const held: ContactSession[] = [];
  const server = await ContactServer.listen('127.0.0.1:0', (session) => {
    held.push(session);
    // Far more than the bound, to a joiner that stopped reading.
    for (let i = 0; i < 256 && !session.closed; i++) session.send({ retry: 'r'.repeat(64 * 1024) });
  }, {
    warn: (e) => warnings.push(e),
    limits: { connectionsMax: 6, connectionsPerSourceMax: 4, outputBytesMax: 256 * 1024, handshakeMs: 10_000 },
  });
  try {
    const address = `127.0.0.1:${server.port}`;
    const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.open(address)));
    await sleep(500);
    assert.is(clients.filter((c) => c.isClosed).length, 4, 'past 4 from one source, the rest are closed at once');
    assert.ok(
      warnings.some((w) => /at most 4 per source address/.test(w.message)), warnings.map((w) => w.message).join(' | '));
    // Two more sources, 4 each: 4 + 4 + 4 = 12 > 6 in all, so 6 more are closed at once.
    const others = await Promise.all(
      ['127.0.0.2', '127.0.0.3'].flatMap((from) => Array.from({ length: 4 }, () => RawClient.open(address, from))));
    await sleep(500);
    assert.is([...clients, ...others].filter((c) => !c.isClosed).length, 6, 'at most 6 connections in all');
    assert.ok(
      warnings.some((w) => /6 contact connections are open \(the most\)/.test(w.message)),
      warnings.map((w) => w.message).join(' | '));
    for (const c of [...clients, ...others]) c.destroy();
    await until('the server holds no connection', () => server.connections === 0, 5_000);

    const reader = await RawClient.open(address);
    const greeting = parseGreeting(await reader.line(5_000));
    reader.socket.pause(); // reads nothing more
    reader.write(`${JSON.stringify(joinRequest(greeting!, 3, '127.0.0.1', null))}\n`);
    await until('the joiner that does not read is cut off', () => held[0]?.closed === true, 10_000);
    reader.destroy();
    await until('the server holds no connection', () => server.connections === 0, 5_000);
  } finally {
    server.close();
  }
});

/** A hostile "member": greets (or not) and answers with a random line, then closes or goes silent. */
function hostileMember(rand: () => number): Promise<{ address: string; close: () => void }> {
  const answers = [
    '5', 'true', '"x"', 'null', '[]', '{}', '{"redirect":"not an address"}', '{"redirect":5}', '{"offer":{"view":5}}',
    '{"accepted":true}', '{"accepted":"yes"}', '{"refused":7}', '{"retry":""}', '{"welcome":{"proof":"00"}}',
    '{"addresses":[{"id":-1,"address":"x"}]}', '{"sealed":"{}","mac":"' + '0'.repeat(64) + '"}', '\u00ff\u00fe',
    'x'.repeat(100),
  ];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    const greet = rand() < 0.7;
    const auth = rand() < 0.5;
    if (greet) {
      socket.write(`${JSON.stringify({ hello: { version: rand() < 0.9 ? 1 : 2, nonce: 'cd'.repeat(32), auth } })}\n`);
    }
    const answer = answers[Math.floor(rand() * answers.length)]!;
    socket.once('data', () => {
      socket.write(`${answer}\n`);
      if (rand() < 0.5) socket.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => { server.close(); for (const s of sockets) s.destroy(); },
  })));
}

seeded('contact fuzz: a joiner facing 300 hostile members fails each time with a coded error within its time limit',
  async (rand) => {
  const runs = 300, parallel = 25, limitMs = 250;
  let next = 0;
  const worker = async () => {
    while (next < runs) {
      next++;
      const member = await hostileMember(rand);
      const key = rand() < 0.5 ? KEY : null;
      const started = Date.now();
      try {
        await requestJoin([member.address], { id: 9, host: '127.0.0.1' }, limitMs, { key });
        assert.unreachable('a hostile member must not get a joiner to accept an offer');
      } catch (error) {
        assert.instance(error, SquallError, `a coded error, got ${(error as Error).stack}`);
        assert.ok(Date.now() - started < limitMs + 5_000, `settled in ${Date.now() - started} ms`);
      } finally {
        member.close();
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
});

seeded('contact fuzz: a running member takes 600 hostile inputs at its contact port, stays up, and admits a real ' +
  'joiner afterwards', async (rand) => {
  const secret = 'fuzz-group-secret-0123456789';
  const cluster = await GroupCluster.start({
    members: 3, subgroups: { log: { shards: 1, members: { min: 2, max: 9 }, maxSmcPayload: 1024, window: 8 } },
    suspicionTimeoutMs: 2_000, secret,
  });
  try {
    const leader = cluster.contacts.get(0)!, other = cluster.contacts.get(1)!;
    const key = Buffer.from(secret);
    const [a, b] = await Promise.all([
      runFuzz(leader, 300, rand, key, 6, 8_000, 0), runFuzz(other, 300, rand, key, 6, 8_000, 0),
    ]);
    assert.is(a.accepted + b.accepted, 0, 'no fuzz input got in');
    assert.is(a.notClosed + b.notClosed, 0);
    for (const m of cluster.members) {
      assert.not.ok(m.exited, `member ${m.id} is up`);
      const { members } = await cluster.request(m, { cmd: 'membership' }) as { members?: unknown };
      void members;
    }
    const [joined] = await cluster.add([3], undefined, 30_000);
    assert.equal(joined!.members, [0, 1, 2, 3], 'the real joiner entered the next view');
    const warnings = cluster.members[0]!.events.filter((e) => e.type === 'warning');
    assert.ok(
      warnings.length > 0 && warnings.length <= 10, `the leader reported refusals, rate-limited: ${warnings.length}`);
  } finally {
    cluster.kill();
  }
});

test.run();
