// The rdmc worker (DESIGN.md §1, §5): one per member, a dedicated thread that drives every RDMC group's
// block schedule from block-arrival completions. It
//   1. sleeps in the native wait on channel 1 (RDMC) until blocks or acks arrive or a command is posted;
//   2. drains completion ring 1: a block marks itself held (its index is its offset in the buffer; the
//      immediate carries the block count, so the first block of a message, whichever it is, starts it);
//      an ack counts towards the sender's message;
//   3. walks each active group's schedule for this member's rank in step order, sending every block as
//      soon as it holds it: a write-with-immediate straight into the receiver's buffer at the same offset
//      (no copy, no posted receive), with no global lock step;
//   4. reports a finished message (all blocks held, all its sends queued) to the main thread, which runs
//      the upcall and then acks to the sender.
// A peer failure fails every group that peer belongs to: the transfer errors out, never hangs.
//
// Every write a peer makes is hostile until checked (DESIGN.md §1), and is checked before it changes any
// state: a block's offset must start a block of the buffer, its immediate must name 1 to the buffer's
// blocks (and, once a message began, that message's count), the block must be below that count, its length
// must be blockBytes (1 to blockBytes for the last block, the message within maxMessageBytes), it must be
// new here, and it must come from the rank this member's schedule receives that block from. An ack must be
// the writer's own slot, at the sender. Honest members never break these rules (every schedule gives each
// receiver each block exactly once, from one rank; the sender receives none). A write that breaks one makes
// the writer misbehaved: every group it shares with this member fails (reason RDMC_MISBEHAVED, named
// BAD_RDMC), nothing more it writes is looked at, and the main thread hears of it ('misbehaved') so a group
// member can suspect it. Without the checks an immediate of 0 delivered a message of −blockBytes bytes (a
// view of nearly the whole buffer), one over the buffer's blocks left the group active forever, and an
// unaligned offset counted as a block held that was not.

import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { Arena } from '../ts/arena.js';
import { CompletionRing } from '../ts/fabric/completions.js';
import { attachFabric, doorbellWord, waitForChange } from '../ts/fabric/native.js';
import * as map from '../ts/generated/memory-map.js';
import { workerInit } from '../ts/member/spare-workers.js';
import { loadKernels } from '../ts/kernels/kernels.js';
import { RDMC_CHANNEL, type RdmcGroupLayout } from '../ts/rdmc/layout.js';
import { RDMC_MISBEHAVED, type RdmcCommand, type RdmcReport, type RdmcWorkerData } from '../ts/rdmc/worker-protocol.js';

const data = workerInit<RdmcWorkerData>(); // from workerData, or the owner's 'init' to a spare
const port = parentPort!;
const arena = Arena.adopt(data.memory);
const kernels = loadKernels(data.memory);
const fabric = attachFabric(data.fabricHandle);
const blocksRing = new CompletionRing(arena, RDMC_CHANNEL);
const newsRing = data.ownsRing0 ? new CompletionRing(arena, 0) : null;
const EPOCH = doorbellWord(RDMC_CHANNEL, map.DOORBELLS_EPOCH);
const COMMANDS = doorbellWord(RDMC_CHANNEL, map.DOORBELLS_COMMANDS);

const IDLE = 0, ACTIVE = 1, AWAITING_ACKS = 2, FAILED = 3;

/** What this member knows of one group's current message. */
class GroupState {
  readonly g: RdmcGroupLayout;
  readonly rank: number;
  readonly n: number;
  readonly held: Uint8Array;
  /** The most blocks a message can have: the buffer's. */
  readonly maxBlocks: number;
  /** At a receiver, the rank each block of the current message comes from (its schedule's). */
  readonly from: Uint16Array;
  state = IDLE;
  seq = 0;
  blocks = 0;     // k of the current message
  steps = 0;
  step = 0;       // next step of this rank's schedule to walk
  heldCount = 0;
  lastBytes = 0;  // length of block k−1 (known once held)

  constructor(g: RdmcGroupLayout, self: number) {
    this.g = g;
    this.rank = g.members.indexOf(self);
    this.n = g.members.length;
    this.maxBlocks = Math.ceil(g.maxMessageBytes / g.blockBytes);
    this.held = new Uint8Array(this.rank < 0 ? 0 : this.maxBlocks);
    this.from = new Uint16Array(this.rank > 0 ? this.maxBlocks : 0);
  }

  begin(blocks: number, lastBytes: number): void {
    this.seq++;
    this.state = ACTIVE;
    this.blocks = blocks;
    this.steps = kernels.scheduleSteps(this.g.algorithm, this.n, blocks);
    this.step = 0;
    this.heldCount = 0;
    this.held.fill(0, 0, blocks);
    this.lastBytes = lastBytes;
    if (this.rank > 0) this.expectSenders();
  }

  /** Fills `from` from this rank's receive schedule: each block arrives once, from one rank. */
  private expectSenders(): void {
    const { g, n, rank, blocks, steps } = this;
    for (let step = kernels.scheduleNextRecv(g.algorithm, n, rank, blocks, 0); step >= 0 && step < steps;
      step = kernels.scheduleNextRecv(g.algorithm, n, rank, blocks, step + 1)) {
      const recv = kernels.scheduleRecv(g.algorithm, n, rank, blocks, step);
      this.from[recv >>> 12] = recv & 0xfff;
    }
  }
}

const groups = data.groups.map((g) => new GroupState(g, data.self));
const report = (r: RdmcReport) => port.postMessage(r);

function groupAt(offset: number): GroupState | undefined {
  for (const s of groups) if (offset >= s.g.buffer && offset < s.g.end) return s;
  return undefined;
}

function onBlockOrAck(kind: number, peer: number, imm: number, offset: number, length: number): void {
  if (kind !== map.CompletionKind.WRITE_IMM) return;
  const s = groupAt(offset);
  if (!s || s.rank < 0 || s.state === FAILED) return;
  const { g } = s;
  const writer = g.members.indexOf(peer);
  if (offset >= g.acks) {
    if (s.rank !== 0 || writer <= 0 || offset !== g.acks + writer * 8 || length !== 8) {
      return misbehaved(peer, s, `an ack at offset ${offset - g.acks} of the ack slots (${length} bytes)`);
    }
    if (s.state === AWAITING_ACKS) checkAcks(s);
    return;
  }
  const why = badBlock(s, writer, imm, offset - g.buffer, length);
  if (why) return misbehaved(peer, s, why);
  const block = (offset - g.buffer) / g.blockBytes;
  if (s.state === IDLE) s.begin(imm, 0);
  if (s.from[block] !== writer) {
    return misbehaved(peer, s, `block ${block} of ${imm}, which rank ${s.from[block]} sends to rank ${s.rank}`);
  }
  if (s.held[block]) return misbehaved(peer, s, `block ${block} of ${imm} a second time`);
  s.held[block] = 1;
  s.heldCount++;
  if (block === s.blocks - 1) s.lastBytes = length;
}

/** Why a block written at `at` bytes into the buffer breaks the rules, or '' (the writer is checked after). */
function badBlock(s: GroupState, writer: number, imm: number, at: number, length: number): string {
  const { g } = s;
  if (s.rank === 0 || writer < 0 || writer === s.rank) return `a block to rank ${s.rank} from rank ${writer}`;
  if (at % g.blockBytes !== 0) return `a block at buffer offset ${at}, not a multiple of ${g.blockBytes}`;
  const block = at / g.blockBytes;
  if (imm < 1 || imm > s.maxBlocks) return `a block count of ${imm} (the buffer holds 1 to ${s.maxBlocks})`;
  if (s.state !== IDLE && imm !== s.blocks) return `a block count of ${imm} during a message of ${s.blocks}`;
  if (block >= imm) return `block ${block} of a ${imm}-block message`;
  const last = block === imm - 1;
  if (!last && length !== g.blockBytes) return `${length} bytes for block ${block} of ${imm} (not the last)`;
  if (last && (length < 1 || length > g.blockBytes || at + length > g.maxMessageBytes)) {
    return `${length} bytes for the last block (${block}) of ${imm}`;
  }
  return '';
}

/** `peer` broke RDMC's rules in group `s`: it is failed here, in every group it shares with this member. */
function misbehaved(peer: number, s: GroupState, what: string): void {
  report({ type: 'misbehaved', group: s.g.index, peer, what });
  failPeer(peer, RDMC_MISBEHAVED);
}

/** Walks the rank's schedule as far as the blocks it holds allow, jumping over steps with nothing to send. */
function progress(s: GroupState): void {
  const { g } = s;
  while (s.step < s.steps) {
    const step = kernels.scheduleNextSend(g.algorithm, s.n, s.rank, s.blocks, s.step);
    if (step < 0) { s.step = s.steps; break; }
    const send = kernels.scheduleSend(g.algorithm, s.n, s.rank, s.blocks, step);
    const block = send >>> 12;
    s.step = step;
    if (!s.held[block]) return; // not here yet: its arrival wakes us
    const bytes = block === s.blocks - 1 ? s.lastBytes : g.blockBytes;
    fabric.writeImm(g.members[send & 0xfff]!, g.buffer + block * g.blockBytes, bytes, s.blocks);
    s.step = step + 1;
  }
  if (s.heldCount < s.blocks) return;
  const size = (s.blocks - 1) * g.blockBytes + s.lastBytes;
  report({ type: 'delivered', group: g.index, seq: s.seq, size });
  if (s.rank === 0) {
    s.state = AWAITING_ACKS;
    checkAcks(s);
  } else {
    s.state = IDLE; // the main thread acks after the upcall; the next block begins the next message
  }
}

function checkAcks(s: GroupState): void {
  for (let r = 1; r < s.n; r++) {
    if (Number(Atomics.load(arena.i64, (s.g.acks + r * 8) >> 3)) < s.seq) return;
  }
  s.state = IDLE;
  report({ type: 'acked', group: s.g.index, seq: s.seq });
}

function failPeer(peer: number, reason: number): void {
  for (const s of groups) {
    if (s.rank < 0 || s.state === FAILED || !s.g.members.includes(peer)) continue;
    const seq = s.state === IDLE ? s.seq + 1 : s.seq; // an idle group fails the message it would carry next
    s.state = FAILED;
    report({ type: 'failed', group: s.g.index, seq, peer, reason });
  }
}

function onNews(kind: number, peer: number, imm: number): void {
  if (kind === map.CompletionKind.PEER_FAILED) failPeer(peer, imm);
  if (kind !== map.CompletionKind.WRITE_IMM) report({ type: 'peer', kind, peer, reason: imm });
}

let running = true;
let commandsSeen = 0;

function onCommand(cmd: RdmcCommand): void {
  switch (cmd.type) {
    case 'send': {
      const s = groups[cmd.group]!;
      if (s.state === FAILED) return; // the main thread already rejected the send
      const blocks = Math.max(1, Math.ceil(cmd.size / s.g.blockBytes));
      s.begin(blocks, cmd.size - (blocks - 1) * s.g.blockBytes);
      s.held.fill(1, 0, blocks); // the sender holds every block
      s.heldCount = blocks;
      break;
    }
    case 'peerFailed': failPeer(cmd.peer, cmd.reason); break;
    case 'stop': running = false; break;
  }
}

while (running) {
  const seen = Atomics.load(arena.u32, EPOCH);
  const commands = Atomics.load(arena.u32, COMMANDS);
  if (commands !== commandsSeen) {
    commandsSeen = commands;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) onCommand(m.message as RdmcCommand);
    if (!running) break;
  }
  newsRing?.drain(onNews);
  blocksRing.drain(onBlockOrAck);
  for (const s of groups) if (s.state === ACTIVE) progress(s);
  if (seen === Atomics.load(arena.u32, EPOCH)) {
    waitForChange(data.fabricHandle, seen, newsRing ? data.ring0PollMs : 1000, RDMC_CHANNEL);
  }
}
report({ type: 'stopped' });
