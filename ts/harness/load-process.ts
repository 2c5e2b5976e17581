// A child process for `squall bench sst --under-load`, driven by its parent over IPC (see cluster.ts); not
// public API. One member runtime — one arena, one native fabric, so one set of connections per peer —
// carries three things at once, laid out one after the other in the arena:
//
//   [fixed regions][ping-pong SST (SstMember.onRuntime)][multicast table][RDMC buffer]
//
// - the SST ping-pong of sst-process.ts over a table of two counters, 'ping' and 'pong' (and the heartbeat);
// - an ordered multicast shard of every member (ShardChannel, as a group member runs it, with its
//   mailboxes) that every member floods with 10 KiB messages on request;
// - one RDMC group of every member, member 0 sending, that carries 256 MiB messages back to back on request.
//
// So the ping-pong's pushes share each peer's fabric connections with the flood and the bulk transfer: the
// situation in which a counter could queue behind megabytes of data (issue 12).

import { performance } from 'node:perf_hooks';
import { sendToParent, serveParent } from './child.js';
import { MemberRuntime } from '../member/runtime.js';
import { SstMember, type MemberAddress } from '../sst/member.js';
import { SstLayout } from '../sst/layout.js';
import { ShardChannel } from '../multicast/shard.js';
import { Mailboxes } from '../multicast/mailboxes.js';
import { multicastColumns } from '../multicast/layout.js';
import { RdmcNode } from '../rdmc/node.js';
import { planView, type SubgroupConfig } from '../membership/plans.js';
import { fnv1a } from '../hash.js';
import * as map from '../generated/memory-map.js';
import type { FabricChoice } from '../fabric/choice.js';

export type LoadHarnessRequest =
  | {
    cmd: 'listen'; id: number; ids: number[]; listen: string; subgroup: SubgroupConfig; rdmcBytes: number;
    fabric?: FabricChoice
  }
  | { cmd: 'expect'; members: MemberAddress[] }
  | { cmd: 'connect' }
  /** Answer every ball thrown at this member. */
  | { cmd: 'pong' }
  /** Throw up to `samples + warmup` balls (at most for `maxSeconds`) and time each round trip. */
  | { cmd: 'ping'; samples: number; warmup: number; maxSeconds: number }
  /** Start flooding the shard with `size`-byte messages (every member) and, at member 0, RDMC messages back to back. */
  | { cmd: 'flood-start'; size: number }
  /** Stop both; report what was sent and delivered meanwhile. */
  | { cmd: 'flood-stop' }
  | { cmd: 'close' };

export type LoadHarnessEvent = { type: 'event'; name: string; args: unknown[]; atMs: number };

const REGION_ALIGN = 65536;
const align = (n: number, to: number) => Math.ceil(n / to) * to;
const RDMC_GROUP = 1;
const MAILBOX_BYTES = 4096;
const SUSPICION_TIMEOUT_MS = 1000;
/** The ping-pong's table: the pinger writes 'ping', the ponger answers in 'pong'. */
const PING_COLUMNS = { ping: { type: 'i64' }, pong: { type: 'i64' } } as const;

interface Member {
  runtime: MemberRuntime;
  sst: SstMember;
  channel: ShardChannel;
  mailboxes: Mailboxes;
  rdmc: RdmcNode;
  grants: (peer: number) => ReturnType<SstLayout['grantsFor']>;
  tag: number;
}

let member: Member | null = null;
let flooding = false;
let floodDone: Promise<{ sent: number; rdmcMessages: number }> | null = null;
let delivered = 0;
const suspected: number[] = [];
const now = () => performance.timeOrigin + performance.now();

function build(req: Extract<LoadHarnessRequest, { cmd: 'listen' }>): Member {
  const ids = req.ids;
  const [plan] = planView({ subgroups: { flood: req.subgroup } }, ids);
  const ballLayout = new SstLayout(PING_COLUMNS, ids, map.DYNAMIC_BASE);
  const mcBase = align(map.DYNAMIC_BASE + ballLayout.tableBytes, REGION_ALIGN);
  const mcLayout = new SstLayout(multicastColumns([plan!], ids.length, MAILBOX_BYTES), ids, mcBase);
  const rdmcBase = align(mcBase + mcLayout.tableBytes, REGION_ALIGN);
  const groups = [{ id: RDMC_GROUP, members: [...ids], maxMessageBytes: req.rdmcBytes }];
  const arenaBytes = align(rdmcBase + req.rdmcBytes + 2 * REGION_ALIGN, REGION_ALIGN);
  const runtime = new MemberRuntime({
    id: req.id, listen: req.listen, arenaBytes, what: 'this load member', ...(req.fabric ? { fabric: req.fabric } : {}),
  });
  // A suspected member's row leaves the table's reductions, which would stop the ping-pong: the suspicion
  // timeout is long (as in bench join), and suspicions are counted, not acted on.
  const sstOptions = { columns: PING_COLUMNS, suspicionTimeoutMs: SUSPICION_TIMEOUT_MS } as const;
  const sst = SstMember.onRuntime(runtime, sstOptions, ids, map.DYNAMIC_BASE);
  const rdmc = RdmcNode.onRuntime(runtime, groups, rdmcBase);
  const arena = runtime.arena;
  ShardChannel.initialize(arena, mcLayout, plan!);
  const mailboxes = new Mailboxes(arena, runtime.fabric, mcLayout, req.id, MAILBOX_BYTES);
  let scheduled = false;
  const step = () => {
    scheduled = false;
    channel.step();
    mailboxes.poll(() => {});
  };
  const schedule = () => { if (!scheduled) { scheduled = true; setImmediate(step); } };
  const channel = new ShardChannel({
    arena, fabric: runtime.fabric, layout: mcLayout, selfId: req.id, plan: plan!, shardIndex: 0, mailboxes,
    rdmc: plan!.shards[0]!.senders.map(() => null), schedule, rowsAt: map.SHARD_ROWS_OFFSET,
  });
  channel.onDeliver(() => { delivered++; });
  runtime.fabric.onArrival([0], step);
  const grants = (peer: number) => [
    ...ballLayout.grantsFor(ballLayout.rowOf(peer)),
    ...mcLayout.grantsFor(mcLayout.rowOf(peer)),
    ...rdmc.layout.grantsFor(req.id, peer),
  ];
  const tag = fnv1a(JSON.stringify({ ball: ballLayout.tag, mc: mcLayout.tag, rdmc: groups }));
  sst.on('suspected', (id) => {
    suspected.push(id);
    sendToParent({ type: 'event', name: 'suspected', args: [id], atMs: now() } satisfies LoadHarnessEvent);
  });
  sst.on('peerFailed', (id, reason) => {
    sendToParent({ type: 'event', name: 'peerFailed', args: [id, reason], atMs: now() } satisfies LoadHarnessEvent);
  });
  return { runtime, sst, channel, mailboxes, rdmc, grants, tag };
}

/** Every member floods the shard; member 0 also sends RDMC messages back to back. Until flood-stop. */
async function flood(m: Member, size: number): Promise<{ sent: number; rdmcMessages: number }> {
  const bytes = new Uint8Array(size);
  let sent = 0, rdmcMessages = 0;
  const rdmcLoop = (async () => {
    if (m.rdmc.layout.groups[0]!.members[0] !== m.runtime.id) return;
    const group = m.rdmc.group(RDMC_GROUP);
    while (flooding) { await group.send(group.buffer.byteLength); rdmcMessages++; }
  })();
  while (flooding) {
    const batch: Array<Promise<void>> = [];
    for (let i = 0; i < 64 && flooding; i++) {
      batch.push(m.channel.send(bytes));
      sent++;
      if (m.channel.queued > 0) break; // the window is full: wait for it
    }
    await Promise.all(batch);
  }
  await rdmcLoop;
  return { sent, rdmcMessages };
}

async function handle(req: LoadHarnessRequest): Promise<Record<string, unknown>> {
  switch (req.cmd) {
    case 'listen': {
      member = build(req);
      member.runtime.listen();
      return { address: member.runtime.address };
    }
    case 'expect': member!.runtime.expect(req.members, member!.tag, member!.grants); return {};
    case 'connect': {
      await member!.sst.ready();
      await member!.runtime.connect();
      member!.sst.watch();
      return {};
    }
    case 'pong': { // as in sst-process.ts: 'ping' answered in 'pong', so no side hears its own write
      const m = member!.sst;
      const push = m.pusher('pong');
      m.predicate({ reduce: 'max', column: 'ping', test: 'changed', kind: 'recurrent' }, (value) => {
        if (value > m.get(m.id, 'pong')) { m.set('pong', value); push(); }
      });
      return {};
    }
    case 'ping': {
      const m = member!.sst;
      const push = m.pusher('ping');
      const total = req.samples + req.warmup;
      const rttNs: number[] = [];
      const deadline = performance.now() + req.maxSeconds * 1000;
      const first = Number(m.get(m.id, 'ping')) + 1;
      let ball = first;
      await new Promise<void>((resolve) => {
        let t0 = 0n;
        let id = 0;
        const stop = () => { clearTimeout(timer); m.removePredicate(id); resolve(); };
        const timer = setTimeout(stop, req.maxSeconds * 1000); // a round trip that never comes back ends it too
        const throwBall = () => { t0 = process.hrtime.bigint(); m.set('ping', ball); push(); };
        id = m.predicate({ reduce: 'max', column: 'pong', test: 'changed', kind: 'recurrent' }, (value) => {
          if (value !== ball) return;
          const rtt = Number(process.hrtime.bigint() - t0);
          if (ball - first >= req.warmup) rttNs.push(rtt);
          ball++;
          const done = rttNs.length >= req.samples || ball - first >= total || performance.now() > deadline;
          if (done) stop(); else throwBall();
        });
        throwBall();
      });
      return { rttNs };
    }
    case 'flood-start': {
      flooding = true;
      delivered = 0;
      floodDone = flood(member!, req.size);
      return {};
    }
    case 'flood-stop': {
      flooding = false;
      const done = await floodDone!;
      return { ...done, delivered, suspected: [...suspected] };
    }
    case 'close': {
      flooding = false;
      if (member) {
        member.channel.close();
        await member.rdmc.close();
        await member.sst.close();
        member.runtime.close();
      }
      member = null;
      setImmediate(() => process.exit(0));
      return {};
    }
  }
}

serveParent(handle);
