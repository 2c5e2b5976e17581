// The group's key on the product path (docs/security.md): the members of a first view never meet at a
// contact port — they only connect their fabrics — so it is the fabric's handshake that keeps a member with
// another key (or none) out. Two members in this process: with the same secret they form the view; with
// different secrets, or one without, neither gets a view.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Group } from '../ts/group/group.js';
import { freePorts } from '../ts/harness/cluster.js';
import { pattern } from './support/pattern.js';

async function pair(secrets: [string | undefined, string | undefined]): Promise<Array<Group | Error>> {
  const ports = await freePorts(2);
  const config = {
    members: ports.map((port, id) => ({ id, address: `127.0.0.1:${port}` })),
    subgroups: { log: { shards: 1, members: { min: 2, max: 2 } } },
  };
  const env = process.env.SQUALL_SECRET;
  delete process.env.SQUALL_SECRET; // the options alone say which member holds which key
  try {
    return await Promise.all([0, 1].map((id) => Group.join({
      id, config, connectTimeoutMs: 3_000, ...(secrets[id] ? { secret: secrets[id] } : {}),
    }).catch((e: Error) => e)));
  } finally {
    if (env !== undefined) process.env.SQUALL_SECRET = env;
  }
}

async function closeAll(results: Array<Group | Error>): Promise<void> {
  const close = (g: Group) => g.close().catch(() => {}); // the test is over: a failed close tells it nothing
  await Promise.all(results.map((r) => (r instanceof Group ? close(r) : undefined)));
}

test('members with the same secret form the first view over authenticated fabric connections', async () => {
  const results = await pair(['the-same-secret-for-both-0123', 'the-same-secret-for-both-0123']);
  try {
    for (const r of results) assert.ok(r instanceof Group, `joined: ${String(r)}`);
    for (const r of results as Group[]) assert.equal(r.view.members, [0, 1]);
  } finally {
    await closeAll(results);
  }
});

for (const [what, secrets] of [
  ['different secrets', ['the-first-secret-0123456789', 'another-secret-0123456789']],
  ['a secret at one member only', ['the-only-secret-0123456789', undefined]],
] as Array<[string, [string | undefined, string | undefined]]>) {
  test(`members with ${what} never connect: neither forms a view, and the refusal is reported`, async () => {
    // A Group with no 'warning' listener reports on process warnings (here both members are in this process).
    const warnings: Error[] = [];
    const onWarning = (w: Error) => { warnings.push(w); };
    process.on('warning', onWarning);
    const results = await pair(secrets).finally(() => process.off('warning', onWarning));
    try {
      for (const r of results) {
        assert.ok(r instanceof Error, `member ${results.indexOf(r)} must not join: ${String(r)}`);
      }
      const refused = warnings.filter((w) => (w as Error & { code?: string }).code === 'ERR_SQUALL_AUTH');
      assert.ok(refused.length > 0, `a refused fabric connection was reported: ${warnings.map(String).join('; ')}`);
      assert.match(refused[0]!.message, pattern([
        /refused (a connection to its fabric port: the caller|member \d's fabric port: it) /,
        /could not prove the group's key/,
      ]));
    } finally {
      await closeAll(results);
    }
  });
}

test.run();
