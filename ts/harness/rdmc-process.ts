// A child process running one RDMC member, driven by its parent over IPC (see cluster.ts). Used by the
// real-process tests, `squall bench rdmc` and `squall tune`; not part of the public API.

import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sendToParent, serveParent } from './child.js';
import { RdmcNode } from '../rdmc/node.js';
import type { RdmcGroupSpec } from '../rdmc/layout.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { FabricChoice } from '../fabric/choice.js';

export type RdmcHarnessRequest =
  /** `fabric` absent: the child's environment decides (SQUALL_FABRIC, inherited from the parent). */
  | { cmd: 'listen'; id: number; listen: string; groups: RdmcGroupSpec[]; fabric?: FabricChoice }
  | { cmd: 'expect'; members: MemberAddress[] }
  | { cmd: 'connect' }
  /** Fills the first `size` bytes of the group's buffer with bytes derived from `seed`; returns their sha256. */
  | { cmd: 'fill'; group: number; size: number; seed: number }
  /** Sends the first `size` bytes of the buffer `times` times; returns each message's seconds (send → every ack). */
  | { cmd: 'send'; group: number; size: number; times: number }
  /** Whether 'message' events carry a sha256 of the bytes (costly for large messages). */
  | { cmd: 'hash-messages'; on: boolean }
  | { cmd: 'close' };

export type RdmcHarnessEvent =
  | { type: 'message'; group: number; seq: number; size: number; sha256?: string; atMs: number }
  | { type: 'failed'; group: number; peer: number; message: string; code: string; atMs: number }
  | { type: 'peerFailed'; peer: number; reason: string; atMs: number };

const now = () => performance.timeOrigin + performance.now();
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let node: RdmcNode | null = null;
let hashMessages = true;
const send = sendToParent;

/** Deterministic bytes: a xorshift stream, so sender and test agree without shipping the payload. */
function fill(target: Uint8Array, seed: number): void {
  let x = (seed | 0) || 0x9e3779b9;
  const words = new Uint32Array(target.buffer, target.byteOffset, target.byteLength >> 2);
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0; }
  for (let i = words.length * 4; i < target.byteLength; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; target[i] = x & 0xff;
  }
}

async function handle(req: RdmcHarnessRequest): Promise<Record<string, unknown>> {
  switch (req.cmd) {
    case 'listen': {
      const n = RdmcNode.listen({
        id: req.id, listen: req.listen, groups: req.groups, ...(req.fabric ? { fabric: req.fabric } : {}),
      });
      node = n;
      n.on('peerFailed', (peer, reason) => {
        send({ type: 'peerFailed', peer, reason, atMs: now() } satisfies RdmcHarnessEvent);
      });
      for (const g of req.groups) {
        if (!g.members.includes(req.id)) continue;
        const group = n.group(g.id);
        group.on('message', (bytes, info) => send({
          type: 'message', group: g.id, seq: info.seq, size: info.size, atMs: now(),
          ...(hashMessages ? { sha256: sha256(bytes) } : {}),
        } satisfies RdmcHarnessEvent));
        group.on('failed', (err) => send({
          type: 'failed', group: g.id, peer: err.peer, message: err.message, code: err.code, atMs: now(),
        } satisfies RdmcHarnessEvent));
      }
      return { address: n.address };
    }
    case 'expect': node!.expect(req.members); return {};
    case 'connect': await node!.connect(); return {};
    case 'fill': {
      const view = node!.group(req.group).buffer.subarray(0, req.size);
      fill(view, req.seed);
      return { sha256: sha256(view) };
    }
    case 'send': {
      const g = node!.group(req.group);
      const seconds: number[] = [];
      for (let i = 0; i < req.times; i++) {
        const t0 = performance.now();
        await g.send(req.size);
        seconds.push((performance.now() - t0) / 1000);
      }
      return { seconds };
    }
    case 'hash-messages': hashMessages = req.on; return {};
    case 'close': {
      await node?.close();
      node = null;
      setImmediate(() => process.exit(0));
      return {};
    }
  }
}

serveParent(handle);
