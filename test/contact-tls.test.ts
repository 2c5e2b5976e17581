// The contact channel's encryption (the configuration's "contactTls", ts/group/contact-tls.ts): TLS 1.3
// keyed by the group's secret. Over real sockets, through a recording relay: what a joiner and a member say
// is on the wire in the clear without TLS and nowhere with it; a plain-TCP client, a TLS client with another
// key, and a slow TLS handshake are refused and reported and leave the port serving; a joiner asking an
// impostor first (another key) goes on to the next contact instead of giving up; and in a running group of
// processes, a joiner with the key and contactTls gets in while one without TLS is refused.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ContactServer, requestJoin, type ContactSession } from '../ts/group/contact.js';
import { contactPskOf } from '../ts/group/contact-tls.js';
import { AuthError, ConfigError, JoinError } from '../ts/errors.js';
import { Group } from '../ts/index.js';
import type { Joiner } from '../ts/membership/protocol.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import { RawClient, sleep } from './support/contact-clients.js';

const KEY = Buffer.from('contact-tls-test-key-0123456789ab');
const OTHER = Buffer.from('another-key-of-the-same-length-xy');
const OFFER = {
  view: { vid: 1, members: [0, 7] }, previous: [0], previousSize: 1, joined: [7],
  hosts: { 0: '127.0.0.1', 7: '127.0.0.1' },
};
const LOG = { shards: 1, members: { min: 2, max: 9 }, maxSmcPayload: 1024, window: 8 };
const JOINER: Joiner = { id: 7, host: '127.0.0.1' };

/** A member's contact server that offers every proven joiner the view OFFER. */
function offering(options: Parameters<typeof ContactServer.listen>[2], joined: Joiner[] = []): Promise<ContactServer> {
  return ContactServer.listen('127.0.0.1:0', (session: ContactSession, joiner) => {
    joined.push(joiner);
    session.send({ accepted: true });
    session.send({ offer: OFFER });
  }, options);
}

/** A TCP relay to `port` that keeps every byte it passes, both ways. */
async function recordingRelay(port: number): Promise<{ port: number; bytes: () => Buffer; close: () => void }> {
  const seen: Buffer[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    sockets.push(client, upstream);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => { seen.push(chunk); to.write(chunk); });
      from.on('close', () => to.destroy());
      from.on('error', () => {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    bytes: () => Buffer.concat(seen),
    close: () => { server.close(); for (const s of sockets) s.destroy(); },
  };
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

test('contactTls: the join runs inside TLS; a relay sees the handshake and the offer in the clear without it, and ' +
  'neither with it', async () => {
  for (const tls of [false, true]) {
    const server = await offering({ key: KEY, tls });
    const relay = await recordingRelay(server.port);
    try {
      const { session, offer } = await requestJoin([`127.0.0.1:${relay.port}`], JOINER, 10_000, { key: KEY, tls });
      assert.equal(offer.view.members, [0, 7]);
      session.close();
      const wire = relay.bytes().toString('latin1');
      for (const word of ['"hello"', '"join"', '"welcome"', '"sealed"', '127.0.0.1']) {
        assert.is(
          wire.includes(word), !tls,
          `${word} ${tls ? 'must not be' : 'is'} on the wire ${tls ? 'with' : 'without'} TLS`);
      }
      if (tls) assert.is(relay.bytes()[0], 0x16, 'the first byte is a TLS handshake record');
    } finally {
      relay.close();
      server.close();
    }
  }
});

test('contactTls: plain TCP, a TLS client with another key and a stalled TLS handshake are refused and reported; the ' +
  'port still serves', async () => {
  const warnings: Error[] = [];
  const joined: Joiner[] = [];
  const server = await offering(
    { key: KEY, tls: true, warn: (e) => warnings.push(e), limits: { handshakeMs: 600 } }, joined);
  const address = `127.0.0.1:${server.port}`;
  try {
    // A client that speaks the contact protocol without TLS: it never hears a greeting and is closed.
    const plain = await RawClient.open(address);
    plain.write('{"join":{"id":9,"host":"127.0.0.1"},"nonce":"00"}\n');
    assert.ok(await plain.closedWithin(5_000), 'the plain client is closed');
    assert.is(plain.lines.length, 0, 'and heard nothing');
    await until(
      'the plain client is reported', () => warnings.some((w) => /did not complete a TLS handshake/.test(w.message)));
    assert.instance(warnings.find((w) => /TLS handshake/.test(w.message)), JoinError);

    // A TLS client with another key: the PSK binder does not verify; the joiner hears an AuthError, the member reports
    // one.
    const error = await requestJoin([address], JOINER, 5_000, { key: OTHER, tls: true }).then(
      () => null, (e: Error) => e);
    assert.instance(error, AuthError, String(error));
    assert.match(error!.message, /TLS handshake with the contact .* failed .*same key and "contactTls"/);
    await until('the wrong key is reported', () => warnings.some((w) => w instanceof AuthError));
    assert.match(warnings.find((w) => w instanceof AuthError)!.message, /could not prove the group's key/);

    // A TLS client that opens the handshake and stalls: closed at the port's deadline.
    const stalled = await RawClient.open(address);
    stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40])); // a ClientHello record header, then nothing
    assert.ok(await stalled.closedWithin(5_000), 'the stalled handshake is closed at the deadline');
    await until('no connection is held', () => server.connections === 0, 5_000);

    assert.is(joined.length, 0, 'nobody got in');
    const { session, offer } = await requestJoin([address], JOINER, 10_000, { key: KEY, tls: true });
    assert.equal(offer.view.members, [0, 7]);
    session.close();
    assert.equal(joined, [JOINER]);
  } finally {
    server.close();
  }
});

test('a joiner skips a contact that cannot prove the key (an impostor) and joins through the next; with every ' +
  'contact refusing, the AuthError is final and fast', async () => {
  for (const tls of [false, true]) {
    const impostor = await offering({ key: OTHER, tls });
    const member = await offering({ key: KEY, tls });
    try {
      const { session, offer } = await requestJoin(
        [`127.0.0.1:${impostor.port}`, `127.0.0.1:${member.port}`], JOINER, 10_000, { key: KEY, tls });
      assert.equal(offer.view.members, [0, 7], `tls ${tls}`);
      session.close();
      const started = Date.now();
      const error = await requestJoin([`127.0.0.1:${impostor.port}`], JOINER, 20_000, { key: KEY, tls }).then(
        () => null, (e: Error) => e);
      assert.instance(error, AuthError, `tls ${tls}: ${String(error)}`);
      assert.ok(
        Date.now() - started < 10_000,
        `the refusal is final at once, not at the 20 s deadline (${Date.now() - started} ms)`);
    } finally {
      impostor.close();
      member.close();
    }
  }
});

test('contactTls without a key is a ConfigError that says where a key comes from', async () => {
  const config = { members: [{ id: 0, address: '127.0.0.1:0' }], subgroups: { log: LOG }, contactTls: true };
  const saved = { s: process.env.SQUALL_SECRET, f: process.env.SQUALL_SECRET_FILE };
  delete process.env.SQUALL_SECRET;
  delete process.env.SQUALL_SECRET_FILE;
  try {
    const error = await Group.join({ id: 0, config }).then(async (g) => {
      await g.close(); return null;
    }, (e: Error) => e);
    assert.instance(error, ConfigError, String(error));
    assert.match(error!.message, /contactTls.*secret.*squall keygen/);
  } finally {
    if (saved.s !== undefined) process.env.SQUALL_SECRET = saved.s;
    if (saved.f !== undefined) process.env.SQUALL_SECRET_FILE = saved.f;
  }
  const bad = await Group.join({ id: 0, config: { ...config, contactTls: 'yes' } as never }).then(
    () => null, (e: Error) => e);
  assert.match(String(bad), /contactTls must be true or false/);
});

test('a group with contactTls: a joiner with the key and TLS gets in; a plain connection is refused and reported',
  async () => {
  const cluster = await GroupCluster.start({
    members: 3, subgroups: { log: LOG }, suspicionTimeoutMs: 2_000, secret: KEY.toString(), contactTls: true,
  });
  try {
    const [joined] = await cluster.add([4], undefined, 30_000);
    assert.equal(joined!.members, [0, 1, 2, 4]);
    // The TLS session is real: a TLS client with the key completes a handshake with member 1's port.
    const { port } = new URL(`tcp://${cluster.contacts.get(1)!}`);
    const cipher = await new Promise<string>((resolve, reject) => {
      const psk = contactPskOf(KEY);
      const socket = tlsConnect({
        host: '127.0.0.1', port: Number(port), minVersion: 'TLSv1.3', checkServerIdentity: () => undefined,
        pskCallback: () => ({ psk, identity: 'squall-contact-v1' }),
      }, () => {
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
        socket.destroy();
      });
      socket.on('error', reject);
    });
    assert.match(cipher, /^TLSv1\.3 TLS_/);
    // A plain contact connection to a member gets nothing and is reported.
    const plain = await RawClient.open(cluster.contacts.get(2)!);
    plain.write('{"join":{"id":12,"host":"127.0.0.1"},"nonce":"00"}\n');
    assert.ok(await plain.closedWithin(10_000));
    assert.is(plain.lines.length, 0);
    const reported = () => cluster.members[2]!.events.some((e) =>
      e.type === 'warning' && /did not complete a TLS handshake/.test(e.message));
    await until('member 2 reported the plain connection', reported);
  } finally {
    cluster.kill();
  }
});

test.run();
