// RDMC block schedules (DESIGN.md §5), called by the rdmc worker once per step per block: which block a
// rank sends to whom, and which block it receives from whom, at a given step.
//
// Pure arithmetic: no tables, no loops over members, no memory. Every export is O(1) except the two
// `scheduleNext*` helpers, which step over idle steps (O(1) for three schedules, O(log n) for the
// binomial pipeline).
//
// Arguments: `algorithm` 0 sequential, 1 chain, 2 binomial tree, 3 binomial pipeline; `n` members
// (2..4096), rank 0 the sender, which holds all `k` blocks (1..2^19) from the start; steps count from 0.
// A transfer comes back packed in one i32, `(block << 12) | peer`, or −1 for nothing: block < 2^19 and
// peer < 2^12 keep it positive. Out-of-range arguments give 0 steps and −1 transfers; ts/rdmc/schedule.ts
// validates before calling. Every step count fits an i32: k·(n−1) < 2^19 · 2^12 = 2^31.
//
// Binomial pipeline, n = 2^L. Rank v is a vertex of the L-cube; at step t every vertex exchanges with its
// neighbour across dimension d = t mod L. Think of "virtual blocks" b ≥ 0 (b ≥ k means block k−1); the
// root sends virtual block t at step t. Call t a *set step* of v when bit d of v is 1. Vertex v receives
// at step t (function `cubeIncoming`):
//   - at a clear step, virtual block t − L, from the neighbour, which has bit d set;
//   - at a set step, virtual block t' − L where t' is v's next set step after t (t' = t + L when bit d
//     is v's only bit, which makes the root's neighbour get block t).
// So a vertex takes a new block at each set step, hands that block out over every dimension until its
// next set step, and at clear steps takes the blocks it only keeps. Each vertex receives every virtual
// block once, each real block b ≤ k−2 by step b + L, and exactly one virtual block ≥ k−1 by step
// k + L − 2 (at its last set step), so k + L − 1 steps deliver everything with no block received twice.
// What v sends at step t is what its neighbour receives.
//
// n = 2^L + m, 0 < m < 2^L: ranks 2^L..n−1 are twins of the vertices 1..m (twin of v = v + 2^L − 1), and
// each pair acts as one vertex. Within a pair the roles swap after every set step of the vertex (the
// vertex's own rank first). The *receiver* takes the vertex's incoming blocks. The *sender* makes the
// vertex's outgoing transfers, which up to and including the next set step all carry the block the
// vertex took at its last set step: the sender took that block itself, being the receiver until then.
// The receiver's uplink and the sender's downlink are otherwise idle, so at every step t ≥ 1 the
// receiver passes block t − 1 − L to the sender: the block the vertex took at step t − 1 if that was a
// clear step, or, just after a set step, the block the new receiver took at the set step before last.
// One extra step, k + L − 1, finishes the pairs: the receiver passes block k − 2 as usual and the sender
// passes block k − 1, which it took at the vertex's last set step. So k + L steps in all, and still no
// block is received twice.

/** Algorithm numbers (ts/rdmc/schedule.ts `Algorithm`). */
const SEQUENTIAL: u32 = 0;
const CHAIN: u32 = 1;
const BINOMIAL_TREE: u32 = 2;
const BINOMIAL_PIPELINE: u32 = 3;

const MIN_MEMBERS: u32 = 2;
const MAX_MEMBERS: u32 = 4096;
const MAX_BLOCKS: u32 = 1 << 19;
const PEER_BITS: u32 = 12;
const NOTHING: i32 = -1;

// @ts-ignore: decorator
@inline function pack(block: u32, peer: u32): i32 {
  return <i32>((block << PEER_BITS) | peer);
}

// @ts-ignore: decorator
@inline function validGroup(n: u32, k: u32): bool {
  return n >= MIN_MEMBERS && n <= MAX_MEMBERS && k >= 1 && k <= MAX_BLOCKS;
}

/** ⌊log2 n⌋ for n ≥ 1. */
// @ts-ignore: decorator
@inline function floorLog2(n: u32): u32 {
  return 31 - clz<u32>(n);
}

/** ⌈log2 n⌉ for n ≥ 1. */
// @ts-ignore: decorator
@inline function ceilLog2(n: u32): u32 {
  return n <= 1 ? 0 : 32 - clz<u32>(n - 1);
}

/** Steps to deliver k blocks to n members (the table in DESIGN.md §5); 0 for arguments out of range. */
export function scheduleSteps(algorithm: u32, n: u32, k: u32): u32 {
  if (!validGroup(n, k)) return 0;
  if (algorithm == SEQUENTIAL) return k * (n - 1);
  if (algorithm == CHAIN) return k + n - 2;
  if (algorithm == BINOMIAL_TREE) return k * ceilLog2(n);
  if (algorithm == BINOMIAL_PIPELINE) {
    const L = floorLog2(n);
    return (n & (n - 1)) == 0 ? k + L - 1 : k + L;
  }
  return 0;
}

/** What `rank` sends at `step`: `(block << 12) | toRank`, or −1. */
export function scheduleSend(algorithm: u32, n: u32, rank: u32, k: u32, step: u32): i32 {
  if (rank >= n || step >= scheduleSteps(algorithm, n, k)) return NOTHING;
  if (algorithm == SEQUENTIAL) return sequentialSend(rank, k, step);
  if (algorithm == CHAIN) return chainSend(n, rank, k, step);
  if (algorithm == BINOMIAL_TREE) return treeSend(n, rank, k, step);
  return pipelineSend(n, rank, k, step);
}

/** What `rank` receives at `step`: `(block << 12) | fromRank`, or −1. */
export function scheduleRecv(algorithm: u32, n: u32, rank: u32, k: u32, step: u32): i32 {
  if (rank >= n || step >= scheduleSteps(algorithm, n, k)) return NOTHING;
  if (algorithm == SEQUENTIAL) return sequentialRecv(rank, k, step);
  if (algorithm == CHAIN) return chainRecv(rank, k, step);
  if (algorithm == BINOMIAL_TREE) return treeRecv(rank, k, step);
  return pipelineRecv(n, rank, k, step);
}

/**
 * The first step ≥ `step` at which `rank` sends something, or −1 when it sends nothing more. Lets a
 * rank (and bench/rdmc-model.ts) skip its idle steps: a sequential receiver would otherwise walk k·(n−1)
 * empty steps. O(1), or O(log n) for the binomial pipeline, which steps over idle runs one step at a
 * time: a rank's runs without a send (before its first, between two, after its last) are at most L + 1
 * steps (test/rdmc-schedules.test.ts checks these answers against every step for n ≤ 300).
 */
export function scheduleNextSend(algorithm: u32, n: u32, rank: u32, k: u32, step: u32): i32 {
  const steps = scheduleSteps(algorithm, n, k);
  if (rank >= n || step >= steps) return NOTHING;
  if (algorithm == SEQUENTIAL) return rank == 0 ? <i32>step : NOTHING;
  if (algorithm == CHAIN) {
    // rank r sends block t − r at steps r .. r + k − 1
    if (rank == n - 1 || step >= rank + k) return NOTHING;
    return <i32>max(step, rank);
  }
  if (algorithm == BINOMIAL_TREE) return treeNextSend(n, rank, k, step);
  if (n == 2) return rank == 0 ? <i32>step : NOTHING; // the one receiver has no one to send to
  for (let t = step; t < steps; t++) {
    if (pipelineSend(n, rank, k, t) >= 0) return <i32>t;
  }
  return NOTHING;
}

/**
 * The first step ≥ `step` at which `rank` receives something, or −1 when it receives nothing more. O(1),
 * or O(log n) for the binomial pipeline (a receiver's idle runs there are at most L steps).
 */
export function scheduleNextRecv(algorithm: u32, n: u32, rank: u32, k: u32, step: u32): i32 {
  const steps = scheduleSteps(algorithm, n, k);
  if (rank >= n || rank == 0 || step >= steps) return NOTHING;
  if (algorithm == SEQUENTIAL) {
    // receiver r takes every block, in order, at steps (r − 1)·k .. r·k − 1
    const first = (rank - 1) * k;
    if (step >= first + k) return NOTHING;
    return <i32>max(step, first);
  }
  if (algorithm == CHAIN) {
    // rank r receives block t + 1 − r at steps r − 1 .. r + k − 2
    if (step >= rank + k - 1) return NOTHING;
    return <i32>max(step, rank - 1);
  }
  if (algorithm == BINOMIAL_TREE) {
    // rank r receives the whole message during stage ⌊log2 r⌋
    const first = floorLog2(rank) * k;
    if (step >= first + k) return NOTHING;
    return <i32>max(step, first);
  }
  for (let t = step; t < steps; t++) {
    if (pipelineRecv(n, rank, k, t) >= 0) return <i32>t;
  }
  return NOTHING;
}

// ------------------------------------------------------------------------------------------ sequential
// Receiver r takes the whole message, block by block, in steps (r − 1)·k .. r·k − 1.

function sequentialSend(rank: u32, k: u32, step: u32): i32 {
  if (rank != 0) return NOTHING;
  return pack(step % k, 1 + step / k);
}

function sequentialRecv(rank: u32, k: u32, step: u32): i32 {
  if (rank == 0 || 1 + step / k != rank) return NOTHING;
  return pack(step % k, 0);
}

// ------------------------------------------------------------------------------------------------ chain
// Block b leaves rank r for rank r + 1 at step b + r.

function chainSend(n: u32, rank: u32, k: u32, step: u32): i32 {
  if (rank == n - 1 || step < rank || step - rank >= k) return NOTHING;
  return pack(step - rank, rank + 1);
}

function chainRecv(rank: u32, k: u32, step: u32): i32 {
  if (rank == 0 || step + 1 < rank || step + 1 - rank >= k) return NOTHING;
  return pack(step + 1 - rank, rank - 1);
}

// ---------------------------------------------------------------------------------------- binomial tree
// Stage j = ⌊step / k⌋ moves the whole message, one block per step, from every rank r < 2^j to
// r + 2^j (when that rank exists): the holders double each stage.

function treeSend(n: u32, rank: u32, k: u32, step: u32): i32 {
  const stage = step / k;
  const span: u32 = 1 << stage;
  if (rank >= span || rank + span >= n) return NOTHING;
  return pack(step - stage * k, rank + span);
}

function treeRecv(rank: u32, k: u32, step: u32): i32 {
  if (rank == 0) return NOTHING;
  const stage = step / k;
  if (floorLog2(rank) != stage) return NOTHING;
  return pack(step - stage * k, rank - (<u32>1 << stage));
}

function treeNextSend(n: u32, rank: u32, k: u32, step: u32): i32 {
  // rank r sends during the stages j with r < 2^j and r + 2^j < n: j from ⌊log2 r⌋ + 1 (0 for the
  // root) while r + 2^j < n. Those stages are consecutive.
  const firstStage: u32 = rank == 0 ? 0 : floorLog2(rank) + 1;
  if (rank + (<u32>1 << firstStage) >= n) return NOTHING;
  const lastStage = floorLog2(n - 1 - rank); // largest j with rank + 2^j ≤ n − 1
  if (step >= (lastStage + 1) * k) return NOTHING;
  return <i32>max(step, firstStage * k);
}

// ------------------------------------------------------------------------------------ binomial pipeline

/**
 * The virtual block vertex `v` of the L-cube receives at step t (dimension d), or −1 for none (v is the
 * root, or the block would be negative). Not clamped: callers map b ≥ k to k − 1.
 */
// @ts-ignore: decorator
@inline function cubeIncoming(L: u32, v: u32, t: u32): i32 {
  if (v == 0) return NOTHING;
  const d = t % L;
  if (((v >> d) & 1) == 0) return <i32>t - <i32>L;
  // distance from bit d to v's next set bit, cyclically (L when bit d is the only one): rotate v right by
  // d within L bits, drop bit 0 (which is bit d), count trailing zeros
  const mask: u32 = (<u32>1 << L) - 1; // L ≤ 12
  const rotated = ((v >> d) | (v << (L - d))) & mask;
  const rest = rotated >> 1;
  const distance: u32 = rest == 0 ? L : ctz<u32>(rest) + 1;
  return <i32>(t + distance) - <i32>L;
}

/** Virtual block → real block: every block past the last is the last one. */
// @ts-ignore: decorator
@inline function clampBlock(virtual: i32, k: u32): u32 {
  return min(<u32>virtual, k - 1);
}

/** How many set steps (steps t' < t whose dimension is a set bit of v) come before step t. */
// @ts-ignore: decorator
@inline function setStepsBefore(L: u32, v: u32, t: u32): u32 {
  const below: u32 = (<u32>1 << (t % L)) - 1;
  return (t / L) * popcnt<u32>(v) + popcnt<u32>(v & below);
}

/**
 * The rank of vertex v that acts for it at step t: its receiver (`receiving` true) or its sender. A
 * vertex without a twin acts alone; a twinned vertex's own rank receives while an even number of its set
 * steps have passed, its twin while an odd number have.
 */
// @ts-ignore: decorator
@inline function actingRank(L: u32, twins: u32, v: u32, t: u32, receiving: bool): u32 {
  if (v == 0 || v > twins) return v;
  const vertexReceives = (setStepsBefore(L, v, t) & 1) == 0;
  return vertexReceives == receiving ? v : v + (<u32>1 << L) - 1;
}

function pipelineSend(n: u32, rank: u32, k: u32, step: u32): i32 {
  const L = floorLog2(n);
  const cube: u32 = <u32>1 << L;
  const twins = n - cube; // vertices 1..twins have a twin
  const lastCubeStep = k + L - 2;
  const v = rank < cube ? rank : rank - cube + 1;
  if (v != 0 && v <= twins) {
    const receiver = actingRank(L, twins, v, step, true);
    const partner = rank == v ? v + cube - 1 : v;
    if (rank == receiver) {
      // within the pair: block t − 1 − L to the sender (see the top of the file)
      const block = <i32>step - 1 - <i32>L;
      return block < 0 ? NOTHING : pack(<u32>block, partner);
    }
    if (step > lastCubeStep) return pack(k - 1, partner); // the extra step
  } else if (step > lastCubeStep) {
    return NOTHING;
  }
  // across the cube: what the neighbour vertex receives, to whichever of its ranks receives now
  const w = v ^ (<u32>1 << (step % L));
  const block = cubeIncoming(L, w, step);
  if (block < 0) return NOTHING;
  return pack(clampBlock(block, k), actingRank(L, twins, w, step, true));
}

function pipelineRecv(n: u32, rank: u32, k: u32, step: u32): i32 {
  const L = floorLog2(n);
  const cube: u32 = <u32>1 << L;
  const twins = n - cube;
  const lastCubeStep = k + L - 2;
  const v = rank < cube ? rank : rank - cube + 1;
  if (v != 0 && v <= twins) {
    const receiver = actingRank(L, twins, v, step, true);
    const partner = rank == v ? v + cube - 1 : v;
    if (rank != receiver) {
      const block = <i32>step - 1 - <i32>L;
      return block < 0 ? NOTHING : pack(<u32>block, partner);
    }
    if (step > lastCubeStep) return pack(k - 1, partner); // the extra step
  } else if (step > lastCubeStep) {
    return NOTHING;
  }
  const block = cubeIncoming(L, v, step);
  if (block < 0) return NOTHING;
  const w = v ^ (<u32>1 << (step % L));
  return pack(clampBlock(block, k), actingRank(L, twins, w, step, false));
}
