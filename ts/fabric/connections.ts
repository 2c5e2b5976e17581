// A fabric's peers, one by one, as the native fabric reports them (native/api_stats.cc, connections(h, out)):
// where each connection stands and what waits to be sent to it. Read when someone looks — a scrape, `squall
// inspect`, Group.status() — never on a write's path.
//
// The addon fills a Float64Array, CONNECTION_FIELDS numbers per peer (native/api_stats.cc draws the same):
//
//   [0] peer id  [1] state (native/peers.h PeerState, STATES below)  [2] fail reason (FailReason, 0 unless failed)
//   [3] frames queued to send  [4] bytes queued to send  [5] bytes received  [6] bytes sent

import { assert } from '../errors.js';
import { FailReasonName, MAX_MEMBERS } from '../generated/memory-map.js';
import type { Fabric, FabricStats } from './fabric.js';

/** Where a peer's connection stands (both lanes): connected once both shook hands; failed for good. */
export type ConnectionState = 'expected' | 'connecting' | 'handshaking' | 'connected' | 'failed';

/** native/peers.h PeerState, by its number. */
const STATES: readonly ConnectionState[] = ['expected', 'connecting', 'handshaking', 'connected', 'failed'];

export const CONNECTION_FIELDS = 7;

/** One peer of a fabric. Bytes count frame headers; the counts start with the fabric (each view has its own). */
export interface FabricConnection {
  peer: number;
  state: ConnectionState;
  /** Why it failed (FailReason: CLOSED, CONNECT_TIMEOUT, LOCAL_CLOSE, …); null unless failed. */
  failReason: string | null;
  /**
   * What waits in this side's send queues to the peer, both lanes: tcp, what the kernel's socket buffer did not
   * take; libfabric, what waits for a send slot or write context. It grows when the peer stops reading.
   */
  queuedFrames: number;
  queuedBytes: number;
  /** Received from the peer once it identified itself (an acceptor does not count the HELLO naming the peer). */
  bytesIn: number;
  bytesOut: number;
}

let scratch: Float64Array | undefined; // one per thread, reused: a read makes no buffer

/** The peers `fill` (the addon's connections(h, out)) writes, in the order the fabric came to know them. */
export function readConnections(fill: (out: Float64Array) => number): FabricConnection[] {
  scratch ??= new Float64Array(MAX_MEMBERS * CONNECTION_FIELDS);
  const out = scratch;
  const n = fill(out);
  assert(Number.isInteger(n) && n >= 0 && n <= MAX_MEMBERS, `native connections() returned ${n}`);
  const peers: FabricConnection[] = [];
  for (let i = 0, at = 0; i < n; i++, at += CONNECTION_FIELDS) {
    const state = STATES[out[at + 1]!];
    assert(state !== undefined, `native connections(): state ${out[at + 1]}`);
    const reason = out[at + 2]!;
    peers.push({
      peer: out[at]!, state, failReason: state === 'failed' ? (FailReasonName[reason] ?? `${reason}`) : null,
      queuedFrames: out[at + 3]!, queuedBytes: out[at + 4]!, bytesIn: out[at + 5]!, bytesOut: out[at + 6]!,
    });
  }
  return peers;
}

/** A fabric's counters, and its connection to each of `peers` (Group.status().fabric). */
export interface FabricStatus extends FabricStats {
  connections: FabricConnection[];
}

/** `fabric`'s counters and its connections to `peers` (a view's other members), by peer id. */
export function fabricStatus(fabric: Pick<Fabric, 'stats' | 'connections'>, peers: readonly number[]): FabricStatus {
  const wanted = new Set(peers);
  const connections = fabric.connections().filter((c) => wanted.has(c.peer)).sort((a, b) => a.peer - b.peer);
  return { ...fabric.stats(), connections };
}
