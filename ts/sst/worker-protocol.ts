// Messages between an SST member's main thread and its predicate worker.

import type { ViewChangeOp, ViewChangeSpec } from '../membership/worker-view-change.js';
import type { WorkerShardSpec } from '../multicast/shard.js';
import type { CompiledPredicate } from './predicates.js';

/**
 * The VALUE of a SUSPECTED event (EventKind; otherwise the ms a heartbeat stood still) when the worker
 * suspects a member because it wrote a shard value that breaks the protocol's rules (workers/shard-engine.ts,
 * ts/multicast/control.ts): the group reports the reason BAD_SHARD.
 */
export const SUSPECTED_BAD_SHARD = -1;

/** Everything the predicate worker needs to find the table; fixed for the life of the worker. */
export interface PredicateWorkerData {
  memory: WebAssembly.Memory;
  fabricHandle: number;
  /** Arena offset of row 0, bytes per row, rows, and this member's row. */
  base: number;
  rowStride: number;
  rows: number;
  selfRow: number;
  /** Member id of each row. */
  members: number[];
  /** Offset of the heartbeat column inside a row. */
  heartbeatColumn: number;
  heartbeatIntervalMs: number;
  suspicionTimeoutMs: number;
  /** The quorum gate (SstListenOptions.quorumGate), and the rows whose members count toward the majority. */
  quorumGate: boolean;
  voterRows: number[];
  /** After a wake-up that found the table changed, spin this long for the next change before sleeping. */
  spinUs: number;
}

/** Commands from the main thread. After posting one, the main thread rings the doorbell (fabric.wake()). */
export type WorkerCommand =
  | { type: 'add'; predicate: CompiledPredicate }
  | { type: 'remove'; id: number }
  | { type: 'setValue'; id: number; value: number }
  /** Every peer is connected: start the heartbeat staleness scan. */
  | { type: 'watch' }
  /** The worker engine: the ordered shards this worker steps from now on (workers/shard-engine.ts). */
  | { type: 'shards'; shards: WorkerShardSpec[] }
  /** The worker engine: the view-change protocol this worker steps from now on (workers/view-change-host.ts). */
  | { type: 'viewChange'; spec: ViewChangeSpec }
  /** A request of the main thread to that protocol (ts/membership/worker-view-change.ts). */
  | { type: 'viewChangeOp'; op: ViewChangeOp }
  | { type: 'stop' };
