// Where RDMC groups live in the arena: a pure function of the group list, so every member computes the
// same offsets and a block written at offset X by one member lands at offset X in the next (DESIGN.md §5).
//
//   per group, 64 KiB aligned:
//   +------------------------------------------------+--------------------------------+
//   | message buffer: maxMessageBytes (whole blocks) | acks: u64 per rank (rank 0 unused) |
//   +------------------------------------------------+--------------------------------+
//
// Blocks are writes-with-immediate into the buffer: block b of a message sits at buffer + b·blockBytes,
// so the receiver knows the block from the offset, and the immediate carries the block count. A receiver
// that has delivered message m writes m into its ack slot at the sender (also with an immediate). A
// receiver grants every fellow member of a group the group's buffer, and the sender grants each receiver
// its own ack slot, on channel 1 (RDMC).

import { ConfigError } from '../errors.js';
import { GrantKind, type Grant } from '../fabric/fabric.js';
import * as map from '../generated/memory-map.js';
import { MAX_BLOCKS, type AlgorithmName, parseAlgorithm } from './schedule.js';

/** RDMC traffic uses completion ring 1 and its doorbell. */
export const RDMC_CHANNEL = 1;
export const MIN_BLOCK_BYTES = 1024;
/** A block is one write-with-immediate, and so one fabric frame (maxFrameBytes defaults to 16 MiB): the
 *  receiver's completion must name the whole block, which a write split into frames would not. */
export const MAX_BLOCK_BYTES = 16 << 20;
/** wasm32 arenas end at 4 GiB; a message buffer must fit inside one. */
export const MAX_MESSAGE_BYTES = 2 ** 31;

export interface RdmcGroupSpec {
  /** Group number, unique in the configuration. */
  id: number;
  /** Member ids in rank order; rank 0 is the sender. */
  members: number[];
  /** Largest message the group carries. */
  maxMessageBytes: number;
  /** Default 1 MiB (DESIGN.md §9). */
  blockBytes?: number;
  /** Default 'binomial' (the binomial pipeline). */
  algorithm?: AlgorithmName;
}

export interface RdmcGroupLayout {
  readonly id: number;
  readonly index: number;
  readonly members: readonly number[];
  readonly blockBytes: number;
  readonly algorithm: number;
  readonly maxMessageBytes: number;
  /** Arena offset of the message buffer. */
  readonly buffer: number;
  /** Arena offset of the ack slots (u64 per rank). */
  readonly acks: number;
  /** End of the group's region. */
  readonly end: number;
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;
const REGION_ALIGN = 65536;

export class RdmcLayout {
  readonly groups: readonly RdmcGroupLayout[];
  /** First byte after every group's region: the arena must be at least this large. */
  readonly end: number;

  constructor(specs: readonly RdmcGroupSpec[], base: number = map.DYNAMIC_BASE) {
    const seen = new Set<number>();
    let at = align(base, REGION_ALIGN);
    this.groups = specs.map((spec, index) => {
      const where = `RDMC group ${spec.id}`;
      if (!Number.isInteger(spec.id) || spec.id < 0) {
        throw new ConfigError(`${where}: id must be a non-negative integer`);
      }
      if (seen.has(spec.id)) throw new ConfigError(`${where}: the id is used twice`);
      seen.add(spec.id);
      if (!Array.isArray(spec.members) || spec.members.length < 2) {
        throw new ConfigError(`${where}: needs at least 2 members (the sender and a receiver)`);
      }
      if (new Set(spec.members).size !== spec.members.length) throw new ConfigError(`${where}: a member appears twice`);
      if (spec.members.length > 4096) throw new ConfigError(`${where}: at most 4096 members`);
      const blockBytes = spec.blockBytes ?? 1 << 20;
      if (!Number.isInteger(blockBytes) || blockBytes < MIN_BLOCK_BYTES || blockBytes > MAX_BLOCK_BYTES ||
          blockBytes % 8 !== 0) {
        throw new ConfigError(`${where}: blockBytes must be a multiple of 8 from ${MIN_BLOCK_BYTES} ` +
          `to ${MAX_BLOCK_BYTES} (16 MiB, one fabric frame), got ${blockBytes}`);
      }
      const maxBytes = spec.maxMessageBytes;
      if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_MESSAGE_BYTES) {
        throw new ConfigError(
          `${where}: maxMessageBytes must be an integer in [1, ${MAX_MESSAGE_BYTES}], got ${maxBytes}`);
      }
      const blocks = Math.ceil(spec.maxMessageBytes / blockBytes);
      if (blocks > MAX_BLOCKS) {
        throw new ConfigError(`${where}: ${spec.maxMessageBytes} bytes in ${blockBytes}-byte blocks ` +
          `is ${blocks} blocks, over the ${MAX_BLOCKS} limit; use larger blocks`);
      }
      const buffer = at;
      const acks = align(buffer + blocks * blockBytes, 64);
      const end = align(acks + spec.members.length * 8, REGION_ALIGN);
      at = end;
      return {
        id: spec.id, index, members: [...spec.members], blockBytes, maxMessageBytes: spec.maxMessageBytes,
        algorithm: parseAlgorithm(spec.algorithm ?? 'binomial'), buffer, acks, end,
      };
    });
    this.end = at;
  }

  group(id: number): RdmcGroupLayout {
    const g = this.groups.find((x) => x.id === id);
    if (!g) {
      throw new ConfigError(`no RDMC group ${id}; configured: ${this.groups.map((x) => x.id).join(', ') || 'none'}`);
    }
    return g;
  }

  /**
   * What `peer` may write in this member's arena, for every group both are in: a receiver's buffer (any
   * fellow member may be scheduled to send it blocks; the rdmc worker checks each block's writer), and at
   * the sender the peer's own ack slot alone. The sender's buffer takes no blocks, and no one may write
   * another rank's ack.
   */
  grantsFor(self: number, peer: number): Grant[] {
    const grants: Grant[] = [];
    for (const g of this.groups) {
      const rank = g.members.indexOf(self);
      const peerRank = g.members.indexOf(peer);
      if (rank < 0 || peerRank < 0) continue;
      grants.push(rank > 0
        ? { offset: g.buffer, length: g.acks - g.buffer, kind: GrantKind.Data, ring: RDMC_CHANNEL }
        : { offset: g.acks + peerRank * 8, length: 8, kind: GrantKind.Control, ring: RDMC_CHANNEL });
    }
    return grants;
  }

  /** Every member id named by some group. */
  get memberIds(): number[] {
    return [...new Set(this.groups.flatMap((g) => g.members))];
  }
}

