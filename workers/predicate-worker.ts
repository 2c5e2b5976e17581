// The predicate worker (DESIGN.md §1, §3): one per member, a dedicated thread that
//   1. sleeps in the native wait until the poller applied writes, a local change rang the doorbell, or the
//      next heartbeat is due — never in Atomics.wait, which native code cannot wake;
//   2. drains completion ring 0 (peer connected / failed / rejected);
//   3. advances this member's heartbeat and pushes it; scans every row's heartbeat for staleness;
//   4. evaluates the registered predicates with the WebAssembly kernels;
//   5. queues what fired in the event ring and rings the main thread's bell once per batch;
//   6. with the worker engine, steps this member's ordered shards (workers/shard-engine.ts): receipt, nulls,
//      seqNum, stability and the acknowledgements' push, and wakes the main thread to deliver;
//   7. with the worker engine, steps the view's view-change protocol (workers/view-change-host.ts): a
//      suspicion found in 2. or 3. is marked and pushed at once, and every stage of a change is evaluated
//      and pushed here; the main thread hears what it must act on.
// Commands from the main thread (add/remove predicates, start, stop) arrive by postMessage and are read
// synchronously with receiveMessageOnPort after every wake; the sender rings the doorbell so we wake.

import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Arena } from '../ts/arena.js';
import { attachFabric, doorbellWord, waitForChange } from '../ts/fabric/native.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { Lane } from '../ts/fabric/fabric.js';
import * as map from '../ts/generated/memory-map.js';
import { workerInit } from '../ts/member/spare-workers.js';
import { loadKernels } from '../ts/kernels/kernels.js';
import { EventRingWriter } from '../ts/sst/event-ring.js';
import { PredicateEngine, type TableView } from '../ts/sst/predicates.js';
import { SUSPECTED_BAD_SHARD, type PredicateWorkerData, type WorkerCommand } from '../ts/sst/worker-protocol.js';
import { hasMajority } from '../ts/membership/view-change.js';
import { ShardEngine } from './shard-engine.js';
import { ViewChangeHost } from './view-change-host.js';

const data = workerInit<PredicateWorkerData>(); // from workerData, or the owner's 'init' to a spare
const port = parentPort!;
const arena = Arena.adopt(data.memory);
const kernels = loadKernels(data.memory);
const fabric = attachFabric(data.fabricHandle);
const completions = new CompletionRing(arena, 0);
const events = new EventRingWriter(arena);
const engine = new PredicateEngine();
// A peer that wrote a bad shard value (control.ts) is suspected as a stalled one is, marked BAD_SHARD.
const shards = new ShardEngine(arena, fabric, (row) => suspect(row, map.EventKind.SUSPECTED, SUSPECTED_BAD_SHARD));
/** The worker engine's view-change protocol, once the main thread handed it over. */
let viewChange = null as ViewChangeHost | null;
const table: TableView = {
  base: data.base, rowStride: data.rowStride, rows: data.rows, liveBase: map.LIVE_ROWS_OFFSET,
};

const EPOCH = doorbellWord(0, map.DOORBELLS_EPOCH);
const COMMANDS = doorbellWord(0, map.DOORBELLS_COMMANDS);
let commandsSeen = 0;
const WANTS_CHANGES = (map.MAIN_BELL_OFFSET + map.MAIN_BELL_WANTS_CHANGES) >> 2;
const heartbeatOffset = data.base + data.selfRow * data.rowStride + data.heartbeatColumn;
const heartbeatIndex = heartbeatOffset >> 3;
const live = arena.u8.subarray(map.LIVE_ROWS_OFFSET, map.LIVE_ROWS_OFFSET + data.rows);
const stale = arena.u8.subarray(map.STALE_ROWS_OFFSET, map.STALE_ROWS_OFFSET + data.rows);
const changedMs = new Float64Array(arena.buffer, map.HEARTBEAT_CHANGED_MS_OFFSET, data.rows);
const suspected = new Uint8Array(data.rows);

/** Events the ring had no room for; sent first at the next round, so nothing is lost or reordered. */
const overflow: number[] = [];
function emit(kind: number, id: number, value: number): void {
  if (overflow.length > 0 || !events.push(kind, id, value)) overflow.push(kind, id, value);
}
function flushOverflow(): void {
  let i = 0;
  while (i < overflow.length && events.push(overflow[i]!, overflow[i + 1]!, overflow[i + 2]!)) i += 3;
  overflow.splice(0, i);
}
// Predicate events go through emit's refusal path: a refused one-time or transition predicate stays armed.
const emitFired = (id: number, value: number): boolean => overflow.length === 0 &&
  events.push(map.EventKind.PREDICATE_FIRED, id, value);

let running = true;
// Heartbeats go out from the start (to whichever peers are connected); the staleness scan starts only once
// every peer is connected, so a peer still dialling others is not taken for a stalled one.
let watching = false;
/** When discountLateness last ran (each round, once watching). */
let lastScanMs = 0;
let nextHeartbeatMs = 0;
let lastReportedEpoch = -1;
let lastRoundEpoch = -1;
let announced = false;

live.fill(1);

/**
 * Suspects the member of `row`. Its events are visible on the ring before its row says so: the main thread,
 * seeing the suspicion in this member's row or in a peer's copy of it, finds why there (ViewEngine.ownSuspicion).
 * They are exposed, not rung: waking the main thread now would put it beside this worker on a busy core
 * before the suspicion is pushed; the round's publish rings for them. A suspicion the quorum gate applies to
 * (`gated`: a stalled heartbeat or a broken connection, not a bad value) may find this member cut off instead.
 */
function suspect(row: number, kind: number, value: number, gated = false): void {
  if (suspected[row]) return;
  suspected[row] = 1;
  live[row] = 0;
  if (gated && isCutOff()) {
    reportCutOff(row);
    return;
  }
  if (kind !== map.EventKind.SUSPECTED) emit(kind, data.members[row]!, value);
  emit(map.EventKind.SUSPECTED, data.members[row]!, kind === map.EventKind.SUSPECTED ? value : 0);
  events.expose();
  viewChange?.suspect(data.members[row]!);
}

/**
 * The quorum gate (SstListenOptions.quorumGate; docs/membership.md, "Failure detection"). A member cut off
 * from the rest finds every peer's heartbeat stalled at about the same time; had it suspected them, its row
 * would carry those suspicions to them once the cut ends, over connections that outlived it (TCP holds the
 * writes), and suspicions are OR-ed: it would remove the majority that stayed. So, once watching (before,
 * no heartbeat has been seen, and a broken connection is the main thread's to judge):
 *
 *   - a member suspects only while it hears from a majority of its view's voters (not the members that joined
 *     into it: ViewChangeProtocol.votersAmong), counting itself: peers whose heartbeat advanced within half
 *     the suspicion timeout (heardWithin; a row being suspected is already out of `live`). Otherwise it is
 *     the one cut off: it pushes nothing, reports CUT_OFF, and its protocol stops it as partitioned.
 *     Sticky: a member found cut off holds every later suspicion too;
 *   - a member that heard from no majority within the last suspicion timeout (noted every scan) is still
 *     catching up: a stalled heartbeat is not suspected yet. A cut a little shorter than the timeout ends
 *     with each connection resuming when its own retransmission comes, so one peer's heartbeat can arrive
 *     after the timeout though the others' already did; suspecting it then, as that peer suspects this
 *     member, would remove two members for one cut. A heartbeat still stalled after the catch-up is
 *     suspected then, and a broken connection at once.
 */
const heardWindowMs = data.suspicionTimeoutMs / 2;
const voters = arena.u8.subarray(map.VOTER_ROWS_OFFSET, map.VOTER_ROWS_OFFSET + data.rows);
voters.fill(0);
for (const r of data.voterRows) voters[r] = 1;
/** This member's own vote: a member that joined into this view does not count toward its majority. */
const selfVotes = voters[data.selfRow] ?? 0;
let cutOff = false;
/** When this member last heard from no majority (hearsMajority). */
let isolatedAtMs = -Infinity;

function hearsMajority(now: number): boolean {
  const heard = kernels.heardWithin(data.rows, map.LIVE_ROWS_OFFSET, map.VOTER_ROWS_OFFSET,
    map.HEARTBEAT_CHANGED_MS_OFFSET, data.selfRow, now, heardWindowMs);
  if (hasMajority(data.voterRows.length, heard + selfVotes)) return true;
  isolatedAtMs = now;
  return false;
}

function isCutOff(): boolean {
  if (!data.quorumGate || !watching) return false;
  if (!cutOff) cutOff = !hearsMajority(performance.now());
  return cutOff;
}

/** Cut off: every member this one does not hear (`row` among them) is reported once, as CUT_OFF. */
const reportedCutOff = new Uint8Array(data.rows);
function reportCutOff(row: number): void {
  const now = performance.now();
  for (let r = 0; r < data.rows; r++) {
    if (r === data.selfRow || reportedCutOff[r]) continue;
    if (r !== row && live[r] && now - changedMs[r]! <= heardWindowMs) continue; // still heard
    reportedCutOff[r] = 1;
    emit(map.EventKind.CUT_OFF, data.members[r]!, now - changedMs[r]!);
    viewChange?.cutOff(data.members[r]!);
  }
  events.expose();
}

function onCompletion(kind: number, peer: number, imm: number): void {
  switch (kind) {
    case map.CompletionKind.PEER_CONNECTED:
      emit(map.EventKind.PEER_CONNECTED, peer, 0);
      break;
    case map.CompletionKind.PEER_FAILED: {
      const row = data.members.indexOf(peer);
      if (row >= 0) suspect(row, map.EventKind.PEER_FAILED, imm, true);
      else emit(map.EventKind.PEER_FAILED, peer, imm);
      break;
    }
    case map.CompletionKind.CONNECTION_REJECTED:
      emit(map.EventKind.CONNECTION_REJECTED, 0xffff, imm);
      break;
    default:
      break; // write-with-immediate on ring 0 is not used by the SST
  }
}

function onCommand(cmd: WorkerCommand): void {
  switch (cmd.type) {
    case 'add': engine.add(cmd.predicate); break;
    case 'remove': engine.remove(cmd.id); break;
    case 'setValue': engine.setValue(cmd.id, cmd.value); break;
    case 'shards': shards.set(cmd.shards); break;
    case 'viewChange':
      viewChange = new ViewChangeHost(arena, fabric, kernels, shards, cmd.spec, () => fabric.arrive(0));
      break;
    case 'viewChangeOp': viewChange?.apply(cmd.op); break;
    case 'watch': {
      watching = true; // every peer is connected
      const now = performance.now();
      for (let r = 0; r < data.rows; r++) changedMs[r] = now;
      lastScanMs = now;
      break;
    }
    case 'stop': running = false; break;
  }
}

function heartbeat(now: number): void {
  if (now < nextHeartbeatMs) return;
  Atomics.add(arena.i64, heartbeatIndex, 1n);
  fabric.writeAll(heartbeatOffset, 8, Lane.Control);
  nextHeartbeatMs = Math.max(nextHeartbeatMs + data.heartbeatIntervalMs, now);
}

/**
 * The failure detector discounts its own lateness. The loop wakes at least once per heartbeat interval; a
 * wake-up much later than that means this thread was not running (descheduled on an overloaded machine,
 * the process stopped or paused), and neither was this member's poller, which applies the peers'
 * heartbeats: during that gap no heartbeat could be seen here, so the gap must not count against any peer.
 * A gap longer than the allowance moves every row's last-change time forward by the excess. The allowance
 * (a quarter of the suspicion timeout, at least an interval and a slack) keeps the routine lateness of a
 * busy machine — wake-ups a few tens of ms late — from adding up into a longer timeout: a peer whose
 * heartbeat stands still is still suspected after the timeout plus only this member's long stalls, and a
 * crash is found at once anyway (its broken connection).
 */
const LATE_SLACK_MS = 2;
const lateAllowanceMs = Math.max(data.heartbeatIntervalMs + LATE_SLACK_MS, data.suspicionTimeoutMs / 4);
function discountLateness(now: number): void {
  const lateMs = now - lastScanMs - lateAllowanceMs;
  lastScanMs = now;
  if (lateMs <= 0) return;
  for (let r = 0; r < data.rows; r++) changedMs[r]! += lateMs;
}

function scanHeartbeats(now: number): void {
  const n = kernels.heartbeatScan(table.base, table.rowStride, table.rows, data.heartbeatColumn, table.liveBase,
    map.HEARTBEAT_SEEN_OFFSET, map.HEARTBEAT_CHANGED_MS_OFFSET, map.STALE_ROWS_OFFSET, data.selfRow, now,
    data.suspicionTimeoutMs);
  // The quorum gate's catch-up (above): the isolation is noted every scan, a stall found while it lasts not
  // suspected yet — unless this member still hears from no majority, when the suspicion finds it cut off.
  const catchingUp = data.quorumGate && !cutOff && hearsMajority(now) && now - isolatedAtMs <= data.suspicionTimeoutMs;
  if (n === 0 || catchingUp) return;
  for (let r = 0; r < data.rows; r++) {
    if (stale[r] && !suspected[r]) suspect(r, map.EventKind.SUSPECTED, now - changedMs[r]!, true);
  }
}

while (running) {
  const seen = Atomics.load(arena.u32, EPOCH);
  const commands = Atomics.load(arena.u32, COMMANDS);
  if (commands !== commandsSeen) { // reading the port costs microseconds: only when something was posted
    commandsSeen = commands;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) onCommand(m.message as WorkerCommand);
  }
  if (!running) break;
  flushOverflow();
  const now = performance.now();
  // This thread's own lateness first: a broken connection drained below meets the quorum gate, which reads
  // when each peer was last heard.
  if (watching) discountLateness(now);
  completions.drain(onCompletion);
  if (shards.active) shards.round();
  heartbeat(now);
  if (watching) scanHeartbeats(now);
  viewChange?.step();
  engine.evaluate(kernels, table, emitFired);
  if (Atomics.load(arena.i32, WANTS_CHANGES) && seen !== lastReportedEpoch) {
    lastReportedEpoch = seen;
    emit(map.EventKind.TABLE_CHANGED, 0, seen);
  }
  events.publish();
  if (!announced) { announced = true; port.postMessage({ type: 'ready' }); } // the first heartbeat is out
  const timeoutMs = overflow.length > 0 ? 1 : Math.max(0, nextHeartbeatMs - performance.now());
  // Spin before sleeping only when this round was a change (a heartbeat round is not): an idle member
  // never spins, and a busy one catches the next change without a futex wake-up (native/doorbell.h).
  const spinUs = seen !== lastRoundEpoch ? data.spinUs : 0;
  lastRoundEpoch = seen;
  if (seen === Atomics.load(arena.u32, EPOCH)) waitForChange(data.fabricHandle, seen, timeoutMs, 0, spinUs);
}
events.publish();
port.postMessage({ type: 'stopped' });
