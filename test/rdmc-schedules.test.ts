// The four RDMC schedules (assembly/schedules.ts) checked against the rules of DESIGN.md §5 by simulating
// every rank's holdings step by step: each send is of a block the sender held before the step, each send
// matches the receiver's receive at the same step and vice versa, no block is received twice, everyone
// holds every block at the end, the step count is the table's and the last step is used.
//
// Small cases (n · steps ≤ FULL_SCAN_BUDGET) ask every rank at every step, which also checks
// scheduleNextSend/Recv exactly. Larger ones walk only the steps that nextSend/nextRecv name (both walks
// must agree transfer for transfer), with random spot checks that the skipped steps are idle.
//
// Random cases (members and blocks beyond the fixed lists) come from one seed, printed with any failure;
// rerun with SQUALL_TEST_SEED=<seed>.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prng, seededTest } from './support/random.js';
import { ConfigError } from '../ts/errors.js';
import {
  Algorithm, ALGORITHMS, ALGORITHM_NAMES, MAX_BLOCKS, MAX_MEMBERS, algorithmName, decode, decodeBlock, decodePeer,
  encode, loadSchedules, parseAlgorithm, validateGroup, type Schedules,
} from '../ts/rdmc/schedule.js';

const seed = Number(process.env['SQUALL_TEST_SEED'] ?? (Date.now() % 2 ** 31));
const S: Schedules = loadSchedules();

const seeded = (name: string, body: (rand: () => number) => void) => seededTest(test, seed, name, body);

/** Fails the test; hot loops test a condition first so that no message is built on the passing path. */
function fail(message: string): never {
  assert.unreachable(message);
  throw new Error(message);
}

const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

/** DESIGN.md §5, written out independently of the wasm. */
function expectedSteps(algorithm: number, n: number, k: number): number {
  const floorLog = Math.floor(Math.log2(n));
  const isPow2 = 2 ** floorLog === n;
  switch (algorithm) {
    case Algorithm.sequential: return k * (n - 1);
    case Algorithm.chain: return k + n - 2;
    case Algorithm.binomialTree: return k * (isPow2 ? floorLog : floorLog + 1);
    default: return isPow2 ? k + floorLog - 1 : k + floorLog;
  }
}

/** Ask every rank at every step when n · steps is at most this; walk active steps only beyond it. */
const FULL_SCAN_BUDGET = 400_000;

/** Scratch for the simulation, sized for the largest case (1024 members × 4096 blocks). */
const MAX_CELLS = 1024 * 4096;
const held = new Uint8Array(MAX_CELLS);
const heldCount = new Int32Array(MAX_MEMBERS);

interface Case { algorithm: number; n: number; k: number }
const describe = ({ algorithm, n, k }: Case): string => `${algorithmName(algorithm)} n=${n} k=${k}`;

/**
 * Checks the structure particular to the binomial pipeline: a transfer at step t is along the hypercube
 * edge of dimension t mod L between the two ranks' vertices, or within a (vertex, twin) pair; the last
 * step of a non-power-of-two group is within pairs only.
 */
function checkPipelineEdge(n: number, k: number, step: number, from: number, to: number, where: string): void {
  const L = Math.floor(Math.log2(n));
  const cube = 2 ** L;
  const vertex = (r: number): number => (r < cube ? r : r - cube + 1);
  const a = vertex(from), b = vertex(to);
  if (a === b) {
    if (!(n !== cube && a !== 0)) fail(`${where}: a transfer within vertex ${a}, which has no twin`);
    return;
  }
  if ((a ^ b) !== 1 << (step % L)) fail(`${where}: ${from}→${to} is not a hypercube edge of dimension ${step % L}`);
  if (!(step < k + L - 1)) fail(`${where}: a hypercube transfer in the extra step`);
}

/** Applies one step's transfers (already matched) to the holdings: checks held-before and no repeats. */
class Holdings {
  transfers = 0;
  lastActiveStep = -1;
  constructor(readonly c: Case) {
    held.fill(0, 0, c.n * c.k);
    held.fill(1, 0, c.k);
    heldCount.fill(0, 0, c.n);
    heldCount[0] = c.k;
  }

  /** One step's sends, as parallel arrays; every sender is checked before any receiver is updated. */
  apply(step: number, senders: Int32Array, packed: Int32Array, count: number, where: string): void {
    const { k } = this.c;
    for (let i = 0; i < count; i++) {
      const block = decodeBlock(packed[i]!);
      if (held[senders[i]! * k + block] !== 1) {
        fail(`${where} step ${step}: rank ${senders[i]} sends block ${block}, which it does not hold yet`);
      }
    }
    for (let i = 0; i < count; i++) {
      const block = decodeBlock(packed[i]!), to = decodePeer(packed[i]!);
      if (held[to * k + block] !== 0) {
        fail(`${where} step ${step}: rank ${to} receives block ${block} a second time (from ${senders[i]})`);
      }
      held[to * k + block] = 1;
      heldCount[to]!++;
    }
    if (count > 0) this.lastActiveStep = step;
    this.transfers += count;
  }

  finish(steps: number, where: string): void {
    const { n, k } = this.c;
    for (let r = 0; r < n; r++) {
      if (heldCount[r] !== k) {
        let missing = -1;
        for (let b = 0; b < k && missing < 0; b++) if (!held[r * k + b]) missing = b;
        assert.unreachable(`${where}: rank ${r} ends with ${heldCount[r]} of ${k} blocks (block ${missing} missing)`);
      }
    }
    assert.is(this.transfers, k * (n - 1), `${where}: every receiver gets every block exactly once`);
    assert.is(this.lastActiveStep, steps - 1, `${where}: the last step carries a transfer (the count is tight)`);
  }
}

const stepSenders = new Int32Array(MAX_MEMBERS);
const stepPacked = new Int32Array(MAX_MEMBERS);
const nextSendAt = new Int32Array(MAX_MEMBERS);
const nextRecvAt = new Int32Array(MAX_MEMBERS);

/** Every rank, every step: the rules, plus nextSend/nextRecv against what the steps say. */
function checkEveryStep(c: Case): void {
  const { algorithm, n, k } = c;
  const where = describe(c);
  const steps = S.steps(algorithm, n, k);
  const holdings = new Holdings(c);
  for (let r = 0; r < n; r++) {
    nextSendAt[r] = S.nextSend(algorithm, n, r, k, 0);
    nextRecvAt[r] = S.nextRecv(algorithm, n, r, k, 0);
  }
  for (let t = 0; t < steps; t++) {
    let count = 0;
    for (let r = 0; r < n; r++) {
      const out = S.send(algorithm, n, r, k, t);
      const into = S.recv(algorithm, n, r, k, t);
      if (out >= 0) {
        const to = decodePeer(out);
        if (!(to < n && to !== r && decodeBlock(out) < k)) {
          fail(`${where} step ${t}: rank ${r} sends block ${decodeBlock(out)} to ${to}`);
        }
        if (S.recv(algorithm, n, to, k, t) !== encode(decodeBlock(out), r)) {
          fail(`${where} step ${t}: rank ${r} sends block ${decodeBlock(out)} to ${to}, which does not expect it`);
        }
        if (algorithm === Algorithm.binomialPipeline) checkPipelineEdge(n, k, t, r, to, where);
        stepSenders[count] = r;
        stepPacked[count++] = out;
        if (nextSendAt[r] !== t) fail(`${where} step ${t}: rank ${r} sends, but nextSend said ${nextSendAt[r]}`);
        nextSendAt[r] = S.nextSend(algorithm, n, r, k, t + 1);
      } else {
        if (!(nextSendAt[r] === -1 || nextSendAt[r]! > t)) {
          fail(`${where} step ${t}: nextSend said rank ${r} sends now`);
        }
      }
      if (into >= 0) {
        const from = decodePeer(into);
        if (!(from < n && from !== r)) fail(`${where} step ${t}: rank ${r} receives from ${from}`);
        if (S.send(algorithm, n, from, k, t) !== encode(decodeBlock(into), r)) {
          fail(`${where} step ${t}: rank ${r} expects block ${decodeBlock(into)} from ${from}, which does not send it`);
        }
        if (nextRecvAt[r] !== t) fail(`${where} step ${t}: rank ${r} receives, but nextRecv said ${nextRecvAt[r]}`);
        nextRecvAt[r] = S.nextRecv(algorithm, n, r, k, t + 1);
      } else {
        if (!(nextRecvAt[r] === -1 || nextRecvAt[r]! > t)) {
          fail(`${where} step ${t}: nextRecv said rank ${r} receives now`);
        }
      }
    }
    holdings.apply(t, stepSenders, stepPacked, count, where);
  }
  for (let r = 0; r < n; r++) {
    assert.is(nextSendAt[r], -1, `${where}: rank ${r} has a send after the last step`);
    assert.is(nextRecvAt[r], -1, `${where}: rank ${r} has a receive after the last step`);
  }
  holdings.finish(steps, where);
}

/**
 * Only the steps nextSend and nextRecv name. Every send must be expected by its receiver and every
 * receive sent, so a transfer missed by one walk shows up in the other. Transfers are bucketed by step
 * (count-sorted) so the holdings advance in step order.
 */
function checkActiveSteps(c: Case, rand: () => number): void {
  const { algorithm, n, k } = c;
  const where = describe(c);
  const steps = S.steps(algorithm, n, k);
  const total = k * (n - 1);
  const sendStep = new Int32Array(total), sendRank = new Int32Array(total), sendPacked = new Int32Array(total);
  let sends = 0, receives = 0;
  for (let r = 0; r < n; r++) {
    let previous = -1;
    for (let t = S.nextSend(algorithm, n, r, k, 0); t >= 0; t = S.nextSend(algorithm, n, r, k, t + 1)) {
      if (!(t > previous && t < steps)) fail(`${where}: nextSend of rank ${r} goes from ${previous} to ${t}`);
      const out = S.send(algorithm, n, r, k, t);
      if (!(out >= 0)) fail(`${where} step ${t}: nextSend names a step where rank ${r} sends nothing`);
      const to = decodePeer(out);
      if (!(to < n && to !== r && decodeBlock(out) < k)) {
        fail(`${where} step ${t}: rank ${r} sends block ${decodeBlock(out)} to ${to}`);
      }
      if (S.recv(algorithm, n, to, k, t) !== encode(decodeBlock(out), r)) {
        fail(`${where} step ${t}: rank ${r} → ${to} unexpected`);
      }
      if (algorithm === Algorithm.binomialPipeline) checkPipelineEdge(n, k, t, r, to, where);
      if (!(sends < total)) fail(`${where}: more than k·(n−1) transfers`);
      sendStep[sends] = t; sendRank[sends] = r; sendPacked[sends++] = out;
      // a spot check that the steps skipped were idle
      if (t > previous + 1 && rand() < 0.05) {
        const idle = int(rand, previous + 1, t - 1);
        if (S.send(algorithm, n, r, k, idle) !== -1) {
          fail(`${where} step ${idle}: nextSend skipped a send of rank ${r}`);
        }
      }
      previous = t;
    }
    previous = -1;
    for (let t = S.nextRecv(algorithm, n, r, k, 0); t >= 0; t = S.nextRecv(algorithm, n, r, k, t + 1)) {
      if (!(t > previous && t < steps)) fail(`${where}: nextRecv of rank ${r} goes from ${previous} to ${t}`);
      const into = S.recv(algorithm, n, r, k, t);
      if (!(into >= 0)) fail(`${where} step ${t}: nextRecv names a step where rank ${r} receives nothing`);
      if (S.send(algorithm, n, decodePeer(into), k, t) !== encode(decodeBlock(into), r)) {
        fail(`${where} step ${t}: rank ${r} expects an unsent block`);
      }
      if (t > previous + 1 && rand() < 0.05) {
        const idle = int(rand, previous + 1, t - 1);
        if (S.recv(algorithm, n, r, k, idle) !== -1) {
          fail(`${where} step ${idle}: nextRecv skipped a receive of rank ${r}`);
        }
      }
      receives++;
      previous = t;
    }
  }
  assert.is(receives, sends, `${where}: as many receives as sends`);

  // bucket the sends by step, then replay them in step order
  const perStep = new Int32Array(steps + 1);
  for (let i = 0; i < sends; i++) perStep[sendStep[i]! + 1]!++;
  for (let t = 0; t < steps; t++) perStep[t + 1]! += perStep[t]!;
  const order = new Int32Array(sends);
  const fill = perStep.slice(0, steps);
  for (let i = 0; i < sends; i++) order[fill[sendStep[i]!]!++] = i;
  const holdings = new Holdings(c);
  for (let t = 0; t < steps; t++) {
    let count = 0;
    for (let j = perStep[t]!; j < perStep[t + 1]!; j++) {
      const i = order[j]!;
      stepSenders[count] = sendRank[i]!;
      stepPacked[count++] = sendPacked[i]!;
    }
    holdings.apply(t, stepSenders, stepPacked, count, where);
  }
  holdings.finish(steps, where);
}

function checkCase(c: Case, rand: () => number): void {
  const steps = S.steps(c.algorithm, c.n, c.k);
  assert.is(steps, expectedSteps(c.algorithm, c.n, c.k), `${describe(c)}: step count`);
  if (c.n * steps <= FULL_SCAN_BUDGET) checkEveryStep(c);
  else checkActiveSteps(c, rand);
}

// ------------------------------------------------------------------------------------------ the cases

const SMALL_BLOCKS = [1, 2, 3, 4, 5, 7, 8, 9, 16, 64];
const LARGE_BLOCKS = [1000, 4096];
/** Powers of two from 128 to 1024 and their neighbours, and 1023/1024/1000. */
const LARGE_MEMBERS = [127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024];

for (const algorithm of ALGORITHMS) {
  const name = algorithmName(algorithm);

  seeded(`${name}: every group of 2..64 members, k = 1..9, 16, 64, at every step`, (rand) => {
    for (let n = 2; n <= 64; n++) for (const k of SMALL_BLOCKS) checkCase({ algorithm, n, k }, rand);
  });

  seeded(`${name}: 2..64 members with 1000 and 4096 blocks`, (rand) => {
    for (let n = 2; n <= 64; n++) for (const k of LARGE_BLOCKS) checkCase({ algorithm, n, k }, rand);
  });

  seeded(`${name}: every group of 65..300 members with 1, 5 and 33 blocks`, (rand) => {
    for (let n = 65; n <= 300; n++) for (const k of [1, 5, 33]) checkCase({ algorithm, n, k }, rand);
  });

  seeded(`${name}: 127..1024 members (powers of two and neighbours) with 1..64 blocks`, (rand) => {
    for (const n of LARGE_MEMBERS) for (const k of [1, 2, 3, 7, 64]) checkCase({ algorithm, n, k }, rand);
  });

  seeded(`${name}: up to the 4096-member limit (2047..2049, 4095, 4096) with 1..64 blocks`, (rand) => {
    for (const n of [2047, 2048, 2049, 3000, 4095, 4096]) {
      for (const k of [1, 2, 7, 64]) checkCase({ algorithm, n, k }, rand);
    }
  });

  seeded(`${name}: large groups with many blocks, and random sizes`, (rand) => {
    // a budget of transfers, k·(n−1), per algorithm: ≈ 12 M for the cheap schedules, 6 M for sequential
    const cases: Case[] = algorithm === Algorithm.sequential
      ? [{ algorithm, n: 1024, k: 1000 }, { algorithm, n: 513, k: 4096 }]
      : [{ algorithm, n: 1024, k: 4096 }, { algorithm, n: 1023, k: 4096 }, { algorithm, n: 1000, k: 1000 }];
    for (let i = 0; i < 6; i++) {
      const n = int(rand, 65, 1024);
      const k = rand() < 0.5 ? int(rand, 1, 64) : int(rand, 65, 1000);
      if (algorithm !== Algorithm.sequential || n * k < 300_000) cases.push({ algorithm, n, k });
    }
    for (const c of cases) checkCase(c, rand);
  });
}

// ------------------------------------------------------------------------------ hand-checked schedules

/** The whole schedule as lines "t: from→to:block ...", sends only, in rank order. */
function trace(algorithm: number, n: number, k: number): string[] {
  const lines: string[] = [];
  for (let t = 0; t < S.steps(algorithm, n, k); t++) {
    const parts: string[] = [];
    for (let r = 0; r < n; r++) {
      const out = decode(S.send(algorithm, n, r, k, t));
      if (out) parts.push(`${r}→${out.peer}:${out.block}`);
    }
    lines.push(`${t}: ${parts.join(' ')}`);
  }
  return lines;
}

test('binomial pipeline, 4 members, 3 blocks: dimensions alternate, and every link is busy by the end', () => {
  // derived by hand from the rule at the top of assembly/schedules.ts
  assert.equal(trace(Algorithm.binomialPipeline, 4, 3), [
    '0: 0→1:0',
    '1: 0→2:1 1→3:0',
    '2: 0→1:2 2→3:1 3→2:0',
    '3: 0→2:2 1→3:2 3→1:1',
  ]);
});

test('binomial pipeline, 3 members: the twin pair alternates, and one extra step finishes the pair', () => {
  assert.equal(trace(Algorithm.binomialPipeline, 3, 3), [
    '0: 0→1:0',
    '1: 0→2:1',
    '2: 0→1:2 1→2:0',
    '3: 1→2:2 2→1:1',
  ]);
});

test('chain, sequential and tree on 4 members, 2 blocks', () => {
  assert.equal(trace(Algorithm.chain, 4, 2), ['0: 0→1:0', '1: 0→1:1 1→2:0', '2: 1→2:1 2→3:0', '3: 2→3:1']);
  assert.equal(trace(Algorithm.sequential, 3, 2), ['0: 0→1:0', '1: 0→1:1', '2: 0→2:0', '3: 0→2:1']);
  assert.equal(trace(Algorithm.binomialTree, 4, 2), ['0: 0→1:0', '1: 0→1:1', '2: 0→2:0 1→3:0', '3: 0→2:1 1→3:1']);
});

// ---------------------------------------------------------------------------------- the API around it

test('step counts at the limits fit in a positive i32', () => {
  assert.is(S.steps(Algorithm.sequential, MAX_MEMBERS, MAX_BLOCKS), MAX_BLOCKS * (MAX_MEMBERS - 1));
  assert.ok(MAX_BLOCKS * (MAX_MEMBERS - 1) < 2 ** 31);
  assert.is(S.steps(Algorithm.binomialPipeline, MAX_MEMBERS, MAX_BLOCKS), MAX_BLOCKS + 11);
  assert.is(S.steps(Algorithm.binomialPipeline, MAX_MEMBERS - 1, MAX_BLOCKS), MAX_BLOCKS + 11);
  assert.is(S.steps(Algorithm.binomialTree, MAX_MEMBERS - 1, MAX_BLOCKS), MAX_BLOCKS * 12);
  // the last block of the largest message, at the last step, packs into a non-negative number
  const last = S.recv(Algorithm.binomialPipeline, MAX_MEMBERS, MAX_MEMBERS - 1, MAX_BLOCKS, MAX_BLOCKS + 10);
  assert.ok(last >= 0);
  assert.ok(decodeBlock(last) <= MAX_BLOCKS - 1);
});

test('arguments out of range give 0 steps and no transfers', () => {
  for (const algorithm of [...ALGORITHMS, 4, 99]) {
    for (const [n, k] of [[1, 5], [0, 5], [4097, 5], [8, 0], [8, MAX_BLOCKS + 1]] as const) {
      assert.is(S.steps(algorithm, n, k), 0, `algorithm ${algorithm} n=${n} k=${k}`);
      assert.is(S.send(algorithm, n, 0, k, 0), -1);
      assert.is(S.recv(algorithm, n, 1, k, 0), -1);
    }
  }
  for (const algorithm of ALGORITHMS) {
    const steps = S.steps(algorithm, 8, 4);
    assert.is(S.send(algorithm, 8, 8, 4, 0), -1, 'rank = n');
    assert.is(S.send(algorithm, 8, 0, 4, steps), -1, 'step = steps');
    assert.is(S.recv(algorithm, 8, 7, 4, steps + 100), -1);
    assert.is(S.nextSend(algorithm, 8, 0, 4, steps), -1);
    assert.is(S.recv(algorithm, 8, 0, 4, 0), -1, 'the sender never receives');
    assert.is(S.nextRecv(algorithm, 8, 0, 4, 0), -1);
  }
});

test('decode, encode, decodeBlock and decodePeer agree', () => {
  assert.is(decode(-1), null);
  assert.equal(decode(encode(5, 7)), { block: 5, peer: 7 });
  const big = encode(MAX_BLOCKS - 1, MAX_MEMBERS - 1);
  assert.ok(big > 0);
  assert.is(decodeBlock(big), MAX_BLOCKS - 1);
  assert.is(decodePeer(big), MAX_MEMBERS - 1);
});

test('parseAlgorithm takes the short names and the obvious long forms, and names the choices otherwise', () => {
  assert.equal(ALGORITHM_NAMES.map(parseAlgorithm), [0, 1, 2, 3]);
  assert.is(parseAlgorithm('binomial-pipeline'), Algorithm.binomialPipeline);
  assert.is(parseAlgorithm('binomialPipeline'), Algorithm.binomialPipeline);
  assert.is(parseAlgorithm('Binomial_Tree'), Algorithm.binomialTree);
  assert.is(parseAlgorithm(' SEQ '), Algorithm.sequential);
  assert.is(algorithmName(Algorithm.binomialPipeline), 'binomial');
  for (const bad of ['pipeline', 'star', '', 'binomial2']) {
    assert.throws(() => parseAlgorithm(bad),
      (e: unknown) => e instanceof ConfigError &&
      /sequential, chain, tree, binomial/.test(e.message), bad);
  }
  assert.throws(() => algorithmName(4), (e: unknown) => e instanceof ConfigError);
});

test('validateGroup names the limit that was crossed', () => {
  validateGroup(2, 1);
  validateGroup(MAX_MEMBERS, MAX_BLOCKS);
  for (const [n, k, pattern] of [[1, 1, /2 to 4096 members/], [4097, 1, /2 to 4096 members/], [2.5, 1, /members/],
    [8, 0, /1 to 524288 blocks/], [8, MAX_BLOCKS + 1, /larger block size/], [8, NaN, /blocks/]] as const) {
    assert.throws(() => validateGroup(n, k),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message), `n=${n} k=${k}`);
  }
});

test('loadSchedules works over a given shared memory as well as its own', () => {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  const other = loadSchedules(memory);
  assert.is(other.steps(Algorithm.binomialPipeline, 1000, 256), S.steps(Algorithm.binomialPipeline, 1000, 256));
  assert.is(other.send(Algorithm.chain, 5, 2, 10, 4), S.send(Algorithm.chain, 5, 2, 10, 4));
});

test.run();
