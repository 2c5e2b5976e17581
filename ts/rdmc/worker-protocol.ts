// Messages between an RDMC node's main thread and its rdmc worker. Blocks never cross this boundary:
// one message per RDMC message (and per connection event), never one per block.

import type { RdmcGroupLayout } from './layout.js';

/** The `reason` of a 'failed' report when the peer broke RDMC's rules (workers/rdmc-worker.ts), named
 *  BAD_RDMC. Above every fabric FailReason, which the other reports carry. */
export const RDMC_MISBEHAVED = 0x10000;

/** A 'failed' report's reason by name: a fabric FailReason's, or BAD_RDMC. */
export function rdmcFailReasonName(reason: number, names: Readonly<Record<number, string>>): string {
  return reason === RDMC_MISBEHAVED ? 'BAD_RDMC' : names[reason] ?? `reason ${reason}`;
}

export interface RdmcWorkerData {
  memory: WebAssembly.Memory;
  fabricHandle: number;
  /** This member's id. */
  self: number;
  groups: RdmcGroupLayout[];
  /**
   * Whether this worker also reads completion ring 0 (connection news). True for a standalone RDMC node;
   * it then looks at ring 0 every ring0PollMs, since it sleeps on channel 1's doorbell.
   */
  ownsRing0: boolean;
  ring0PollMs: number;
}

export type RdmcCommand =
  /** The sender's main thread filled the buffer of group `group` (an index) with `size` bytes. */
  | { type: 'send'; group: number; size: number }
  /** A peer failed (learned elsewhere, when the worker does not own ring 0). */
  | { type: 'peerFailed'; peer: number; reason: number }
  | { type: 'stop' };

export type RdmcReport =
  /** Every block of message `seq` is here and this member has forwarded all it had to (receivers), or
   *  has sent all its blocks (the sender). The bytes are in the group's buffer. */
  | { type: 'delivered'; group: number; seq: number; size: number }
  /** The sender heard every receiver's ack for `seq`: the buffer may take the next message. */
  | { type: 'acked'; group: number; seq: number }
  /** A member of the group failed: the transfer in progress (and the group) cannot complete. */
  | { type: 'failed'; group: number; seq: number; peer: number; reason: number }
  /** `peer` wrote a block or ack into group `group` that breaks RDMC's rules (`what`); 'failed' reports
   *  follow for every group it shares with this member (reason RDMC_MISBEHAVED). */
  | { type: 'misbehaved'; group: number; peer: number; what: string }
  | { type: 'peer'; kind: number; peer: number; reason: number }
  | { type: 'stopped' };
