// RDMC against a member that writes what it should not: three real RdmcNodes in this process, over the real
// fabric on loopback, with the real rdmc workers. Member 2 is the attacker: besides its own honest node it
// calls its fabric's writeImm with crafted offsets, lengths and immediates. Member 1 is the victim, member 0
// an honest sender. Every bad write must be refused before it changes anything: the writer is reported
// ('misbehaved', and 'failed' with BAD_RDMC in each group it shares with the victim), no message is
// delivered (before the checks, an immediate of 0 delivered a view of nearly the whole buffer, which a group
// member's receiver copied), and honest RDMC between the others goes on.

import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PeerFailedError } from '../ts/errors.js';
import { RdmcNode } from '../ts/rdmc/node.js';
import type { RdmcGroupSpec } from '../ts/rdmc/layout.js';

const BLOCK = 1024;
const BLOCKS = 16;
const MAX = BLOCKS * BLOCK;

const GROUPS: RdmcGroupSpec[] = [
  // A chain 0 → 1 → 2: the victim receives every block from member 0, none from the attacker.
  { id: 1, members: [0, 1, 2], maxMessageBytes: MAX, blockBytes: BLOCK, algorithm: 'chain' },
  // The attacker sends here, so it is the one writer the victim expects: only the other rules apply.
  { id: 2, members: [2, 1], maxMessageBytes: MAX, blockBytes: BLOCK },
  // Without the attacker: honest traffic that must go on.
  { id: 3, members: [0, 1], maxMessageBytes: MAX, blockBytes: BLOCK },
];

interface Seen {
  messages: Map<number, number[]>;
  failed: Map<number, PeerFailedError>;
  misbehaved: string[];
  peerFailed: string[];
}

interface Trio {
  nodes: [RdmcNode, RdmcNode, RdmcNode];
  seen: [Seen, Seen, Seen];
  close(): Promise<void>;
}

async function trio(): Promise<Trio> {
  const nodes = [0, 1, 2].map((id) => RdmcNode.listen({ id, listen: '127.0.0.1:0', groups: GROUPS })) as Trio['nodes'];
  const members = nodes.map((n) => ({ id: n.id, address: n.address }));
  const seen = nodes.map((node) => {
    const s: Seen = { messages: new Map(), failed: new Map(), misbehaved: [], peerFailed: [] };
    for (const spec of GROUPS) {
      if (!spec.members.includes(node.id)) continue;
      s.messages.set(spec.id, []);
      const group = node.group(spec.id);
      group.on('message', (bytes) => s.messages.get(spec.id)!.push(bytes.byteLength));
      group.on('failed', (err) => s.failed.set(spec.id, err));
    }
    node.on('misbehaved', (peer, what) => s.misbehaved.push(`${peer}: ${what}`));
    node.on('peerFailed', (peer, reason) => s.peerFailed.push(`${peer}: ${reason}`));
    return s;
  }) as Trio['seen'];
  for (const n of nodes) n.expect(members);
  await Promise.all(nodes.map((n) => n.connect()));
  return { nodes, seen, close: async () => { await Promise.all(nodes.map((n) => n.close())); } };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `node` emits `event`, or after `ms` (a test then fails on what did not happen). */
async function within(node: RdmcNode, event: 'misbehaved' | 'peerFailed', ms: number): Promise<void> {
  const ac = new AbortController();
  const emitted = once(node, event, { signal: ac.signal }).catch(() => undefined /* aborted: the sleep won */);
  await Promise.race([emitted, sleep(ms)]);
  ac.abort();
  await sleep(100); // the reports that follow it (the groups' 'failed')
}

/** Honest traffic still flows from member 0 to the victim in group 3 (which the attacker is not in). */
async function honestStillDelivers(t: Trio): Promise<void> {
  const size = 3 * BLOCK + 5;
  const payload = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
  let bytes: Uint8Array | null = null;
  t.nodes[1].group(3).once('message', (b) => { bytes = b.slice(); });
  await t.nodes[0].group(3).send(payload);
  assert.ok(bytes, 'the victim delivered the honest message');
  assert.equal(bytes, payload, 'intact');
}

type Write = { group: number; block?: number; at?: number; length: number; imm: number };

const cases: Array<{ name: string; writes: Write[] }> = [
  { name: 'an immediate of 0 (no blocks)', writes: [{ group: 2, block: 0, length: BLOCK, imm: 0 }] },
  {
    name: 'an immediate over the blocks the buffer holds',
    writes: [{ group: 2, block: 0, length: BLOCK, imm: BLOCKS + 1 }],
  },
  { name: 'an immediate of 2^20 (no schedule)', writes: [{ group: 2, block: 0, length: BLOCK, imm: 2 ** 20 }] },
  { name: 'an offset that is not a block\'s', writes: [{ group: 2, at: 8, length: 8, imm: 1 }] },
  { name: 'a block past the message\'s count', writes: [{ group: 2, block: 3, length: BLOCK, imm: 1 }] },
  {
    name: 'a short block that is not the last', writes: [
      { group: 2, block: 0, length: 8, imm: 2 }, { group: 2, block: 1, length: BLOCK, imm: 2 }],
  },
  {
    name: 'a last block longer than a block', writes: [
      { group: 2, block: 0, length: BLOCK, imm: 2 }, { group: 2, block: 1, length: BLOCK + 8, imm: 2 }],
  },
  {
    name: 'a count that changes during a message', writes: [
      { group: 2, block: 0, length: BLOCK, imm: 3 }, { group: 2, block: 1, length: BLOCK, imm: 2 }],
  },
  {
    name: 'the same block twice', writes: [
      { group: 2, block: 0, length: BLOCK, imm: 2 }, { group: 2, block: 0, length: BLOCK, imm: 2 }],
  },
  { name: 'a block its schedule does not send (chain: the victim hears from member 0 only)', writes: [
    { group: 1, block: 0, length: 8, imm: 1 }] },
  { name: 'an immediate of 2^20 where member 0 sends', writes: [{ group: 1, block: 0, length: BLOCK, imm: 2 ** 20 }] },
];

for (const { name, writes } of cases) {
  test(`rdmc, hostile member: ${name} is refused, the writer reported, nothing delivered`, async () => {
    const t = await trio();
    try {
      const [, victim, attacker] = t.nodes;
      for (const w of writes) {
        const g = attacker.layout.group(w.group);
        attacker.fabric.writeImm(1, g.buffer + (w.at ?? (w.block ?? 0) * BLOCK), w.length, w.imm);
      }
      await within(victim, 'misbehaved', 1500);
      const seen = t.seen[1];
      assert.equal(seen.messages.get(1), [], 'nothing delivered in group 1');
      assert.equal(seen.messages.get(2), [], 'nothing delivered in group 2');
      assert.is(seen.misbehaved.length, 1, `the attacker reported once: ${seen.misbehaved.join('; ')}`);
      assert.match(seen.misbehaved[0]!, new RegExp(`^2: RDMC group ${writes[0]!.group}: `));
      for (const id of [1, 2]) {
        const err = seen.failed.get(id);
        assert.ok(err, `group ${id} failed at the victim`);
        assert.is(err!.peer, 2);
        assert.match(err!.message, /BAD_RDMC/);
      }
      assert.not.ok(seen.failed.has(3), 'group 3 (no attacker) goes on');
      await honestStillDelivers(t);
    } finally {
      await t.close();
    }
  });
}

test('rdmc, hostile member: a forged ack of another rank is refused at the sender (OUT_OF_GRANT)', async () => {
  const t = await trio();
  try {
    const [sender, , attacker] = t.nodes;
    const g = attacker.layout.group(1);
    const slot = (g.acks + 8) >> 3; // rank 1's ack slot
    attacker.arena.i64[slot] = 1n;
    attacker.fabric.writeImm(0, g.acks + 8, 8, 1);
    await within(sender, 'peerFailed', 1500);
    assert.is(sender.arena.i64[slot], 0n, 'rank 1\'s ack slot at the sender untouched');
    assert.equal(t.seen[0].peerFailed, ['2: OUT_OF_GRANT']);
    await honestStillDelivers(t);
  } finally {
    await t.close();
  }
});

test('rdmc, hostile member: a block written to the sender is refused (OUT_OF_GRANT)', async () => {
  const t = await trio();
  try {
    const [sender, , attacker] = t.nodes;
    attacker.fabric.writeImm(0, attacker.layout.group(1).buffer, 8, 1);
    await within(sender, 'peerFailed', 1500);
    assert.equal(t.seen[0].messages.get(1), [], 'nothing delivered at the sender');
    assert.equal(t.seen[0].peerFailed, ['2: OUT_OF_GRANT']);
    await honestStillDelivers(t);
  } finally {
    await t.close();
  }
});

test('rdmc, hostile member: a member\'s own ack and honest messages in every group pass the checks', async () => {
  const t = await trio();
  try {
    const sizes = [1, BLOCK - 1, BLOCK, BLOCK + 1, MAX];
    for (const [id, from] of [[1, 0], [2, 2], [3, 0]] as const) {
      for (const size of sizes) {
        const spec = GROUPS.find((g) => g.id === id)!;
        const arrived = spec.members.slice(1).map((m) => once(t.nodes[m]!.group(id), 'message'));
        await t.nodes[from]!.group(id).send(new Uint8Array(size).fill(size & 0xff));
        for (const [bytes] of await Promise.all(arrived)) assert.is((bytes as Uint8Array).byteLength, size);
      }
    }
    for (const s of t.seen) {
      assert.equal(s.misbehaved, []);
      assert.equal(s.peerFailed, []);
      assert.is(s.failed.size, 0);
    }
  } finally {
    await t.close();
  }
});

test.run();
