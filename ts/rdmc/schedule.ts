// The RDMC block schedules (DESIGN.md §5), computed in WebAssembly (assembly/schedules.ts) and named,
// validated and decoded here. The rdmc worker calls the raw functions once per step per block, so they
// stay numbers-only: validate a group once with validateGroup, then call `send`/`recv` freely.
//
// A transfer is packed in one number, `(block << 12) | peer`, or −1 for none:
//
//   bit 31   30 ............. 12   11 ........ 0
//       0  | block (0..2^19−1)   | peer rank (0..4095)
//
// `decodeBlock`/`decodePeer` unpack it without creating an object; `decode` makes one for tests and tools.

import { ConfigError } from '../errors.js';
import { compileKernels, instantiateKernels, type ScheduleKernels } from '../kernels/kernels.js';

/** Algorithm numbers, as the WebAssembly schedules and the RDMC layout know them. */
export const Algorithm = { sequential: 0, chain: 1, binomialTree: 2, binomialPipeline: 3 } as const;
export type AlgorithmId = (typeof Algorithm)[keyof typeof Algorithm];

/** Short names by algorithm number: what the CLI and configuration files say. */
export const ALGORITHM_NAMES = ['sequential', 'chain', 'tree', 'binomial'] as const;
export type AlgorithmName = (typeof ALGORITHM_NAMES)[number];

/** Every algorithm number, in order. */
export const ALGORITHMS: readonly AlgorithmId[] = [0, 1, 2, 3];

/** Names accepted by parseAlgorithm, beyond ALGORITHM_NAMES (case and '-'/'_' are ignored). */
const ALIASES: Readonly<Record<string, AlgorithmId>> = {
  sequential: 0, seq: 0,
  chain: 1, chainpipeline: 1,
  tree: 2, binomialtree: 2,
  binomial: 3, binomialpipeline: 3,
}; // no bare 'pipeline': it would be ambiguous between the chain and the binomial pipeline

/** A group of at least two members: the sender and one receiver. */
export const MIN_MEMBERS = 2;
/** Ranks travel in 12 bits of a packed transfer (and of an RDMC immediate). */
export const MAX_MEMBERS = 4096;
/** Blocks travel in 19 bits of a packed transfer, so k·(n−1) steps stay below 2^31. */
export const MAX_BLOCKS = 2 ** 19;
const PEER_BITS = 12;
const PEER_MASK = (1 << PEER_BITS) - 1;

/**
 * The algorithm number for a name such as 'binomial' (the binomial pipeline), 'tree', 'chain' or
 * 'sequential', or one of their long forms ('binomial-pipeline', 'binomialTree', …). ConfigError otherwise.
 */
export function parseAlgorithm(name: string): AlgorithmId {
  const key = name.trim().toLowerCase().replace(/[-_ ]/g, '');
  const id = ALIASES[key];
  if (id === undefined) {
    throw new ConfigError(
      `unknown RDMC algorithm '${name}': write one of ${ALGORITHM_NAMES.join(', ')} (binomial = the binomial ` +
        `pipeline)`);
  }
  return id;
}

/** The short name of an algorithm number. */
export function algorithmName(algorithm: number): AlgorithmName {
  const name = ALGORITHM_NAMES[algorithm];
  if (name === undefined) throw new ConfigError(`unknown RDMC algorithm number ${algorithm}: use 0..3`);
  return name;
}

/** Throws ConfigError unless 2 ≤ members ≤ 4096 and 1 ≤ blocks ≤ 2^19 (integers). */
export function validateGroup(members: number, blocks: number): void {
  if (!Number.isInteger(members) || members < MIN_MEMBERS || members > MAX_MEMBERS) {
    throw new ConfigError(
      `an RDMC group needs ${MIN_MEMBERS} to ${MAX_MEMBERS} members (the sender and its receivers), got ${members}`);
  }
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > MAX_BLOCKS) {
    throw new ConfigError(
      `an RDMC message needs 1 to ${MAX_BLOCKS} blocks (2^19), got ${blocks}: use a larger block size`);
  }
}

/** Blocks of a message of `bytes` cut into `blockBytes` pieces (the last may be short); at least one. */
export function blockCount(bytes: number, blockBytes: number): number {
  return Math.max(1, Math.ceil(bytes / blockBytes));
}

export interface Transfer {
  block: number;
  /** The rank sent to (from scheduleSend) or received from (from scheduleRecv). */
  peer: number;
}

/** The block of a packed transfer (packed ≥ 0). */
export function decodeBlock(packed: number): number {
  return packed >>> PEER_BITS;
}

/** The peer rank of a packed transfer (packed ≥ 0). */
export function decodePeer(packed: number): number {
  return packed & PEER_MASK;
}

/** A packed transfer as an object, or null for −1 (nothing this step). */
export function decode(packed: number): Transfer | null {
  return packed < 0 ? null : { block: packed >>> PEER_BITS, peer: packed & PEER_MASK };
}

/** The inverse of decode, for tests and tools. */
export function encode(block: number, peer: number): number {
  return (block << PEER_BITS) | peer;
}

/**
 * The schedules, straight from the WebAssembly instance (no wrapper per call). Arguments are not checked
 * here: validate the group once (validateGroup); out-of-range arguments give 0 steps and −1 transfers.
 */
export interface Schedules {
  /** Total steps for `k` blocks over `n` members (DESIGN.md §5 table). */
  steps(algorithm: number, n: number, k: number): number;
  /** What `rank` sends at `step`: packed (block, toRank), or −1. */
  send(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** What `rank` receives at `step`: packed (block, fromRank), or −1. */
  recv(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** The first step ≥ `step` at which `rank` sends, or −1: skips idle steps. */
  nextSend(algorithm: number, n: number, rank: number, k: number, step: number): number;
  /** The first step ≥ `step` at which `rank` receives, or −1. */
  nextRecv(algorithm: number, n: number, rank: number, k: number, step: number): number;
}

/** Pages of the scratch memory made when no arena is given: the module's declared minimum (512 KiB). */
const SCRATCH_PAGES = 8;

/**
 * The schedules over `memory` (the arena's, in a member's threads). Without one, a small shared memory
 * is made: the schedules touch no memory, but the module imports one. Throws BuildError when the wasm
 * build is missing or stale.
 */
export function loadSchedules(memory?: WebAssembly.Memory): Schedules {
  const own = memory ?? new WebAssembly.Memory({ initial: SCRATCH_PAGES, maximum: SCRATCH_PAGES, shared: true });
  const k: ScheduleKernels = instantiateKernels(compileKernels(), own);
  return {
    steps: k.scheduleSteps,
    send: k.scheduleSend,
    recv: k.scheduleRecv,
    nextSend: k.scheduleNextSend,
    nextRecv: k.scheduleNextRecv,
  };
}
