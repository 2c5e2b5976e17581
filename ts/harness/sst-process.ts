// A child process running one SST member, driven by its parent over IPC (see cluster.ts). Used by the
// real-process tests and by `squall bench sst`; not part of the public API.
//
// Every request carries a `seq`; the reply echoes it. Membership news is forwarded as 'event' messages
// stamped with the wall clock (performance.timeOrigin + now), so the parent can time detection.

import { performance } from 'node:perf_hooks';
import { sendToParent, serveParent } from './child.js';
import { SstMember, type MemberAddress } from '../sst/member.js';
import type { ColumnSpecs } from '../sst/layout.js';
import type { FabricChoice } from '../fabric/choice.js';

export type HarnessRequest =
  /** `fabric` absent: the child's environment decides (SQUALL_FABRIC, inherited from the parent). */
  | {
    cmd: 'listen'; id: number; listen: string; columns: ColumnSpecs; heartbeatIntervalMs?: number;
    suspicionTimeoutMs?: number; fabric?: FabricChoice
  }
  | { cmd: 'expect'; members: MemberAddress[] }
  | { cmd: 'connect' }
  /** Increment `column` `times` times, pushing after each; arm 'one-time' and 'transition' predicates min ≥ target. */
  | { cmd: 'count'; column: string; times: number; target: number; yieldEvery?: number }
  /** Arm one more one-time predicate min(column) ≥ target and report when it fires. */
  | { cmd: 'await-min'; column: string; target: number }
  | { cmd: 'read'; column: string }
  /** Keep incrementing and pushing `column`, `batch` times per event-loop turn, until 'stop-spin'. */
  | { cmd: 'spin'; column: string; batch: number }
  | { cmd: 'stop-spin' }
  /** Answer every ball thrown at this member (responder side of the latency ping-pong): 'ping' → 'pong'. */
  | { cmd: 'pong' }
  /** Throw `samples + warmup` balls (column 'ping') and time each round trip (until 'pong' echoes it). */
  | { cmd: 'ping'; samples: number; warmup: number }
  | { cmd: 'close' };

export type HarnessReply =
  | { seq: number; ok: true; [k: string]: unknown }
  | { seq: number; ok: false; error: string; code?: string };

export type HarnessEvent =
  | { type: 'event'; name: string; args: unknown[]; atMs: number }
  | { type: 'fired'; kind: string; value: number; atMs: number };

const now = () => performance.timeOrigin + performance.now();
let member: SstMember | null = null;
let spinning = false;

const send = sendToParent;

async function handle(req: HarnessRequest): Promise<Record<string, unknown>> {
  switch (req.cmd) {
    case 'listen': {
      member = SstMember.listen({
        id: req.id, listen: req.listen, columns: req.columns,
        ...(req.heartbeatIntervalMs ? { heartbeatIntervalMs: req.heartbeatIntervalMs } : {}),
        ...(req.suspicionTimeoutMs ? { suspicionTimeoutMs: req.suspicionTimeoutMs } : {}),
        ...(req.fabric ? { fabric: req.fabric } : {}),
      });
      for (const name of ['connected', 'peerFailed', 'suspected', 'rejected'] as const) {
        member.on(name, (...args: unknown[]) => {
          send({ type: 'event', name, args, atMs: now() } satisfies HarnessEvent);
        });
      }
      return { address: member.address };
    }
    case 'expect': member!.expect(req.members); return {};
    case 'connect': await member!.connect(); return {};
    case 'count': {
      const m = member!;
      let oneTime = 0, transition = 0;
      m.predicate({ reduce: 'min', column: req.column, test: '>=', value: req.target, kind: 'one-time' }, (value) => {
        oneTime++;
        send({ type: 'fired', kind: 'one-time', value, atMs: now() } satisfies HarnessEvent);
      });
      m.predicate({ reduce: 'min', column: req.column, test: '>=', value: req.target, kind: 'transition' }, (value) => {
        transition++;
        send({ type: 'fired', kind: 'transition', value, atMs: now() } satisfies HarnessEvent);
      });
      const push = m.pusher(req.column);
      const every = req.yieldEvery ?? 1000;
      for (let i = 0; i < req.times; i++) {
        m.add(req.column, 1);
        push();
        if (i % every === every - 1) await new Promise((r) => setImmediate(r));
      }
      // let late predicate firings arrive before reporting how often each fired
      await new Promise((r) => setTimeout(r, 50));
      return { final: m.get(m.id, req.column), oneTimeFired: oneTime, transitionFired: transition };
    }
    case 'await-min': {
      const m = member!;
      const value = await new Promise<number>((resolve) =>
        m.predicate({ reduce: 'min', column: req.column, test: '>=', value: req.target, kind: 'one-time' }, resolve));
      return { value };
    }
    case 'read': {
      const m = member!;
      return { values: m.layout.members.map((id) => m.get(id, req.column)) };
    }
    case 'spin': {
      const m = member!;
      const push = m.pusher(req.column);
      spinning = true;
      const turn = () => {
        if (!spinning || !member) return;
        for (let i = 0; i < req.batch; i++) { m.add(req.column, 1); push(); }
        setImmediate(turn);
      };
      setImmediate(turn);
      return {};
    }
    case 'stop-spin': spinning = false; return {};
    case 'pong': {
      // The answer goes in its own column, which the pinger watches: neither side's predicate fires on its
      // own write, as neither side of a TCP ping-pong hears its own send.
      const m = member!;
      const push = m.pusher('pong');
      m.predicate({ reduce: 'max', column: 'ping', test: 'changed', kind: 'recurrent' }, (value) => {
        if (value > m.get(m.id, 'pong')) { m.set('pong', value); push(); }
      });
      return {};
    }
    case 'ping': {
      const m = member!;
      const push = m.pusher('ping');
      const total = req.samples + req.warmup;
      const rttNs: number[] = [];
      await new Promise<void>((resolve) => {
        let ball = 1, t0 = 0n;
        const throwBall = () => { t0 = process.hrtime.bigint(); m.set('ping', ball); push(); };
        m.predicate({ reduce: 'max', column: 'pong', test: 'changed', kind: 'recurrent' }, (value) => {
          if (value !== ball) return; // a stale answer
          const rtt = Number(process.hrtime.bigint() - t0);
          if (ball > req.warmup) rttNs.push(rtt);
          ball++;
          if (rttNs.length >= req.samples || ball > total) resolve(); else throwBall();
        });
        throwBall();
      });
      return { rttNs };
    }
    case 'close': {
      await member?.close();
      member = null;
      setImmediate(() => process.exit(0));
      return {};
    }
  }
}

serveParent(handle);
