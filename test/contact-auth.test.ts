// The group's credential (ts/group/credential.ts) and the authenticated contact protocol (docs/membership.md, "The
// credential"):
// where the key comes from and in which order, what is refused; then, across real processes, a stranger
// without the key and one with another key are refused at a member's contact port and the member reports
// each refusal (ERR_SQUALL_AUTH on its `warning` event); a recorded join request replayed on a new
// connection is refused (the member's nonce is fresh); a joiner with a key will not trust a member without
// one; and a joiner with the group's key gets in.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSecret, MIN_SECRET_BYTES } from '../ts/group/credential.js';
import { loadGroupConfig, validateGroupConfig } from '../ts/group/config.js';
import { ContactServer, requestJoin } from '../ts/group/contact.js';
import { AuthError, ConfigError } from '../ts/errors.js';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import type { GroupHarnessEvent } from '../ts/harness/group-process.js';
import { startCli } from './support/cli-runs.js';
import { joinRequest, parseGreeting, RawClient, sleep } from './support/contact-clients.js';
import { pattern } from './support/pattern.js';

const SECRET = 'contact-auth-test-secret-0123456789';
const LOG = { shards: 1, members: { min: 2, max: 9 }, maxSmcPayload: 1024, window: 8 };

test('credential: the secret option wins over SQUALL_SECRET, which wins over SQUALL_SECRET_FILE, which wins over ' +
  'secretFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-key-'));
  writeFileSync(join(dir, 'env.key'), 'from-the-env-file-0123456789\n');
  writeFileSync(join(dir, 'config.key'), '  from-the-config-file-0123456789 \n');
  const env = { SQUALL_SECRET: ' from-the-env-0123456789 ', SQUALL_SECRET_FILE: join(dir, 'env.key') };
  const file = join(dir, 'config.key');
  assert.is(
    resolveSecret({ secret: 'from-the-option-0123456789', env, secretFile: file })!.key.toString(),
    'from-the-option-0123456789');
  assert.equal(resolveSecret({ secret: new Uint8Array(16).fill(7), env })!.key, Buffer.alloc(16, 7));
  assert.is(resolveSecret({ env, secretFile: file })!.key.toString(), 'from-the-env-0123456789', 'trimmed');
  assert.is(
    resolveSecret({ env: { SQUALL_SECRET_FILE: env.SQUALL_SECRET_FILE }, secretFile: file })!.key.toString(),
    'from-the-env-file-0123456789');
  assert.is(resolveSecret({ env: {}, secretFile: file })!.key.toString(), 'from-the-config-file-0123456789');
  assert.is(resolveSecret({ env: {} }), null, 'no source: an open group');
});

test('credential: a key shorter than 16 bytes, a missing file and a bad secretFile are ConfigErrors that say what to ' +
  'do', () => {
  const short = 'x'.repeat(MIN_SECRET_BYTES - 1);
  const sourcesTried = [
    { secret: short, env: {} }, { env: { SQUALL_SECRET: short } },
    { env: { SQUALL_SECRET_FILE: '/nonexistent/squall.key' } },
  ];
  for (const sources of sourcesTried) {
    assert.throws(() => resolveSecret(sources),
      (e: unknown) => e instanceof ConfigError && /squall keygen/.test((e as Error).message));
  }
  assert.throws(() => resolveSecret({ secret: 5 as unknown as string, env: {} }),
    (e: unknown) => e instanceof ConfigError);
  const base = {
    members: [{ id: 0, address: '127.0.0.1:7000' }], subgroups: { log: { shards: 1, members: { min: 1, max: 3 } } },
  };
  assert.throws(() => validateGroupConfig({ ...base, secretFile: 5 }), /secretFile must be the path/);
  assert.throws(() => validateGroupConfig({ ...base, secretFile: '' }), /secretFile must be the path/);
  // A relative secretFile is relative to the configuration file, wherever the process runs.
  const dir = mkdtempSync(join(tmpdir(), 'squall-config-'));
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ ...base, secretFile: 'group.key' }));
  assert.is(loadGroupConfig(join(dir, 'cluster.json')).secretFile, join(dir, 'group.key'));
});

test('squall keygen prints a fresh 32-byte hex key each time', async () => {
  const runs = [startCli(['keygen']), startCli(['keygen'])];
  const codes = await Promise.all(runs.map((r) => r.exit));
  assert.equal(codes, [0, 0]);
  for (const r of runs) assert.match(r.out, /^[0-9a-f]{64}\n$/);
  assert.is.not(runs[0]!.out, runs[1]!.out);
});

test('squall node with a key shorter than 16 bytes in SQUALL_SECRET exits 1 with one line that says how to make one',
  async () => {
  const config = new URL('../../examples/cluster.json', import.meta.url).pathname;
  process.env.SQUALL_SECRET = 'too-short'; // the child takes a copy of the environment when it starts
  const run = startCli(['node', '--config', config, '--id', '0']);
  delete process.env.SQUALL_SECRET;
  assert.is(await run.exit, 1);
  assert.match(run.err, pattern([
    /^squall: the group's secret from SQUALL_SECRET is 9 bytes; /,
    /it must be at least 16 \(make one with `squall keygen`\) \(ERR_SQUALL_CONFIG\)$/,
  ], 'm'));
  assert.not.match(run.err, /\n\s+at /);
});

test('a joiner with a key will not trust a member without one, and an open member refuses a joiner with one',
  async () => {
  const warnings: Error[] = [];
  const open = await ContactServer.listen('127.0.0.1:0', (s) => s.close(), { warn: (e) => warnings.push(e) });
  try {
    await requestJoin(
      [`127.0.0.1:${open.port}`], { id: 5, host: '127.0.0.1' }, 5_000, { key: Buffer.from(SECRET) }).then(
      () => assert.unreachable('joined a member that cannot prove the key'),
      (e: Error) => {
        assert.instance(e, AuthError); assert.match(e.message, /has no secret key, but this joiner has one/);
      });
  } finally {
    open.close();
  }
  const keyed = await ContactServer.listen(
    '127.0.0.1:0', (s) => s.close(), { key: Buffer.from(SECRET), warn: (e) => warnings.push(e) });
  try {
    await requestJoin([`127.0.0.1:${keyed.port}`], { id: 5, host: '127.0.0.1' }, 5_000).then(
      () => assert.unreachable('joined without the key'),
      (e: Error) => {
        assert.instance(e, AuthError); assert.match(e.message, /requires its secret key.*SQUALL_SECRET/);
      });
    await until(() => warnings.length > 0, 'the keyed member reported the refusal');
    assert.instance(warnings[0], AuthError);
    assert.match(warnings[0]!.message, /refused member 5 .*no secret key/);
  } finally {
    keyed.close();
  }
});

async function until(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

const authWarnings = (m: GroupClusterMember) =>
  m.events.filter(
    (e): e is Extract<GroupHarnessEvent, { type: 'warning' }> => e.type === 'warning' && e.code === 'ERR_SQUALL_AUTH');

test('a group with a secret: strangers without it or with another key are refused and reported, a replayed handshake ' +
  'is refused, a joiner with it gets in', async () => {
  const cluster = await GroupCluster.start({
    members: 3, subgroups: { log: LOG }, suspicionTimeoutMs: 2_000, secret: SECRET,
  });
  try {
    // A stranger with a copy of the configuration and a fresh id, but no key: refused, with what to configure.
    const strangers = [
      [10, { secret: undefined }, /requires its secret key/],
      [11, { secret: 'another-key-of-the-right-length' }, /proof does not check/],
    ] as const;
    for (const [id, overrides, expected] of strangers) {
      const error = await cluster.add([id], undefined, 15_000, overrides).then(() => null,
        (e: Error & { code?: string }) => e);
      assert.ok(error, `member ${id} must not get in`);
      assert.is(error!.code, 'ERR_SQUALL_AUTH', error!.message);
      assert.match(error!.message, expected);
      cluster.members.find((m) => m.id === id)!.process.kill('SIGKILL');
    }
    await until(() => cluster.members.slice(0, 3).reduce((n, m) => n + authWarnings(m).length, 0) >= 2,
      'both refusals reported');
    const reported = cluster.members.slice(0, 3).flatMap(authWarnings).map((w) => w.message).join('\n');
    assert.match(reported, /refused member 10 .*no secret key/);
    assert.match(reported, /refused member 11 .*proof does not check/);

    // Record a proven exchange at member 1 (not the leader: it redirects, admitting nobody)…
    const key = Buffer.from(SECRET);
    const contact = cluster.contacts.get(1)!;
    const first = await RawClient.open(contact);
    const greeting = parseGreeting(await first.line(5_000));
    assert.ok(greeting?.auth, 'the member asks for proof');
    const recorded = `${JSON.stringify(joinRequest(greeting!, 50, '127.0.0.1', key))}\n`;
    first.write(recorded);
    assert.match(
      (await first.line(5_000)) ?? '', /^\{"welcome":\{"proof":"[0-9a-f]{64}"\}\}$/, 'the member proves itself back');
    assert.match(
      (await first.line(5_000)) ?? '', /^\{"sealed":"\{\\"redirect\\".*"mac":"[0-9a-f]{64}"\}$/,
      'its answer is sealed');
    first.destroy();
    // …and replay it on a new connection: the member's nonce is fresh, so the proof fails.
    const before = authWarnings(cluster.members[1]!).length;
    const replay = await RawClient.open(contact);
    assert.ok(parseGreeting(await replay.line(5_000)));
    replay.write(recorded);
    const answer = JSON.parse((await replay.line(5_000)) ?? '{}') as { refused?: string; auth?: boolean };
    assert.is(answer.auth, true, JSON.stringify(answer));
    assert.match(answer.refused ?? '', /proof does not check/);
    assert.ok(await replay.closedWithin(5_000), 'the member closes the replayed connection');
    await until(() => authWarnings(cluster.members[1]!).length > before, 'member 1 reported the replay');

    // A joiner with the key gets in.
    const [joined] = await cluster.add([4], undefined, 30_000);
    assert.equal(joined!.members, [0, 1, 2, 4]);
  } finally {
    cluster.kill();
  }
});

test.run();
