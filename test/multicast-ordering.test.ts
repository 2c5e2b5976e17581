// The ordering rules of DESIGN.md §4 (ts/multicast/ordering.ts) under a seeded simulation of one shard:
// senders commit messages into W slots, every SST value a member reads is a copy that arrives late and in
// order, and delivery, nulls and the window follow the rules. A failing run prints its seed.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prng, suiteSeed } from './support/random.js';
import {
  indexOf, nullTarget, rankOf, receivePrefix, seqOf, stableFrontier, versionOf, windowAllows,
} from '../ts/multicast/ordering.js';
import { ShardSim } from '../ts/sim/shard-sim.js';

const rng = prng;

/** Runs one shard to completion; returns each member's delivered (seq, payload) list. */
function simulate(seed: number, members: number, senders: number, window: number, toSend: number[]) {
  const random = rng(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const sim = new ShardSim(seed, members, senders, window, toSend);
  for (let step = 0; step < 200_000; step++) {
    if (sim.delivered.every((d) => d.length === sim.total)) return { delivered: sim.delivered, where: sim.where };
    sim.step(pick);
  }
  throw new Error(
    `${sim.where}: no progress after ` +
      `200,000 steps (delivered ${sim.delivered.map((d) => d.length).join('/')} of ${sim.total})`);
}

test('ordering: formulas — round robin numbering, receive prefix, stability, versions', () => {
  assert.equal(
    [0, 1, 2, 3, 4, 5].map((i) => [rankOf(i, 3), indexOf(i, 3)]), [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]);
  assert.is(seqOf(2, 1, 3), 7);
  assert.is(receivePrefix([-1, -1, -1]), -1, 'nothing received');
  assert.is(receivePrefix([0, -1, -1]), 0, 'the first message of sender 0 only');
  assert.is(receivePrefix([4, 3, 3]), 12, 'DESIGN §4: m = 3, a = 1 → 4·3 + 1 − 1');
  assert.is(receivePrefix([2, 2, 2]), 8);
  assert.is(stableFrontier([5, 3, 9]), 3);
  assert.is(stableFrontier([5, 3, 9], [true, false, true]), 5, 'a dead member does not hold stability back');
  assert.is(versionOf(2, 7), (2n << 32n) + 7n);
});

test('ordering: nulls — a lower rank goes past what it saw, a higher rank reaches it', () => {
  assert.is(nullTarget(0, [-1, 4, -1]), 5);
  assert.is(nullTarget(2, [-1, 4, -1]), 4);
  assert.is(nullTarget(1, [3, -1, 6]), 7);
  assert.is(nullTarget(1, [-1, -1, -1]), 0);
});

test('ordering: the window — slot i mod W is reused only after every member delivered its last message', () => {
  assert.ok(windowAllows(3, 1, 2, 4, [-1, -1]), 'the first W indexes are free');
  assert.not.ok(
    windowAllows(4, 1, 2, 4, [0, 5]), 'index 4 reuses index 0 of sender 1 (seq 1): member 0 has delivered only seq 0');
  assert.ok(windowAllows(4, 1, 2, 4, [1, 5]));
});

test('ordering: 500 seeded runs — identical order everywhere, every message once, no nulls delivered, idle senders ' +
  'never stall', () => {
  const base = suiteSeed(20261127);
  for (let run = 0; run < 500; run++) {
    const seed = base + run;
    const r = rng(seed);
    const members = 2 + Math.floor(r() * 6);
    const senders = 1 + Math.floor(r() * members);
    const window = 1 + Math.floor(r() * 4);
    // some senders idle, some busy: the idle ones must keep the round robin moving with nulls
    const toSend = Array.from({ length: senders }, () => (r() < 0.3 ? 0 : Math.floor(r() * 25)));
    const { delivered, where } = simulate(seed, members, senders, window, toSend);
    const first = delivered[0]!;
    for (let m = 1; m < members; m++) {
      assert.equal(delivered[m], first, `${where}: member ${m} delivered another sequence than member 0`);
    }
    const payloads = first.map(([, p]) => p);
    assert.is(new Set(payloads).size, payloads.length, `${where}: a message delivered twice`);
    assert.is(payloads.length, toSend.reduce((a, b) => a + b, 0), `${where}: messages missing`);
    for (let i = 1; i < first.length; i++) {
      assert.ok(first[i]![0] > first[i - 1]![0], `${where}: delivery out of sequence order`);
    }
    for (let s = 0; s < senders; s++) {
      const own = payloads.filter((p) => p.startsWith(`s${s}m`));
      assert.equal(
        own, Array.from({ length: toSend[s]! }, (_, i) => `s${s}m${i}`),
        `${where}: sender ${s}'s messages out of order`);
    }
  }
});

test.run();
