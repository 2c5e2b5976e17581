// A child process running one group member (Group.join), driven by its parent over IPC (see cluster.ts).
// Used by the real-process multicast tests, `squall bench multicast` and the demo; not public API.
//
// Messages sent with 'send' carry [u32 sender][u32 k][f64 send time, ms of the monotonic clock][filler], so
// every member can check what it delivers and time it: process.hrtime is CLOCK_MONOTONIC, one clock for
// every process on the host.

import { sendToParent, serveParent } from './child.js';
import { Group, type JoinOptions } from '../group/group.js';
import type { GroupConfig } from '../group/config.js';
import { EXAMPLE_TYPES } from '../examples/types.js';
import { BenchCounter, callProgress, runCallLoad, runPing, type CallTarget } from './call-load.js';
import type { ReplicatedObject } from '../objects/replicated-object.js';
import type { SubgroupChannel } from '../group/subgroup-channel.js';
import { PersistTracker } from './persist-tracker.js';

/** The classes a parent may name for a subgroup: the shipped examples, and the benchmark's counter. */
const HARNESS_TYPES = { ...EXAMPLE_TYPES, BenchCounter } as const;
export type ExampleType = keyof typeof HARNESS_TYPES;

/** The Group.join options a parent may set. */
export type HarnessJoinOptions = Partial<Pick<JoinOptions, 'heartbeatIntervalMs' | 'suspicionTimeoutMs' | 'mailboxBytes'
  | 'fabric' | 'contact' | 'listen' | 'connectTimeoutMs' | 'rejoin' | 'leaveTimeoutMs' | 'maxQueuedMessages'
  | 'maxQueuedBytes' | 'secret' | 'dataDir'>>;

export type GroupHarnessRequest =
  /** `listenErrors: false` attaches no 'error' listener, as an application that forgot one. */
  | {
    cmd: 'join'; id: number; config: GroupConfig; types?: Record<string, ExampleType>; listenErrors?: boolean;
    options?: HarnessJoinOptions;
  }
  /** Ordered calls `method(key_i, value)` for i < count, with `bytes`-byte values, `inFlight` at a time. */
  | { cmd: 'fill'; subgroup: string; method: string; count: number; bytes: number; inFlight?: number }
  /** Record deliveries of a channel subgroup: a running hash, a count, optionally every (sender, k), latencies. */
  | {
    cmd: 'record'; subgroup: string; sequence?: boolean; latency?: boolean; slowUs?: number;
    /** A persistent subgroup: also when each delivery became durable at every member (persist-tracker.ts). */
    persisted?: boolean;
  }
  /** Send `count` messages with sizes cycling through `sizes`; `ratePerSec` paces them (default: flat out). */
  | {
    cmd: 'send'; subgroup: string; count: number; sizes: number[]; ratePerSec?: number;
    /** the first message's k (default 0) */ firstK?: number;
    /** block the event loop this long right after the sends (they are committed, not yet pushed) */
    thenBlockMs?: number;
  }
  /**
   * Send for `seconds` seconds flat out with `size`-byte messages, keeping `inFlight` sends outstanding;
   * every `largeEvery`-th message is `largeSize` bytes instead.
   */
  | {
    cmd: 'flood'; subgroup: string; seconds: number; size: number; inFlight?: number; largeSize?: number;
    largeEvery?: number;
  }
  /**
   * A caller that never awaits: for `seconds`, `size`-byte sends (each numbered k = 0, 1, …) or, with
   * `calls`, ordered calls `method(k, value)`, a batch of `batch` at a time with only a turn of the event
   * loop between batches. Reports the ks accepted, how many were refused and with which codes, the most
   * sends queued (calls in flight) seen, and the process's RSS before and at its highest.
   */
  | {
    cmd: 'fire'; subgroup: string; seconds: number; size: number; batch?: number; calls?: { method: string };
    to?: number;
  }
  /**
   * Resolves once `total` messages were delivered here (or after timeoutMs with what arrived): the report,
   * or with `brief` only `delivered`.
   */
  | {
    cmd: 'await'; subgroup: string; total: number; timeoutMs?: number; brief?: boolean;
    /** Wait until `total` deliveries are durable at every member (a 'record' with `persisted`). */
    persisted?: boolean;
  }
  /**
   * Sends `count` `size`-byte messages (k from `firstK`) one in flight at a time, paced here: the next goes
   * once this member saw every member's deliveredNum pass the last one (its own table), so no harness
   * message is on the wire or on a CPU while one is in flight. Deliveries are recorded as usual ('record').
   */
  | { cmd: 'isolated'; subgroup: string; count: number; size: number; firstK: number; timeoutMs?: number }
  | { cmd: 'report'; subgroup: string }
  /** An ordered call; `persisted`: one that resolves once durable at every member (a persistent subgroup). */
  | { cmd: 'call'; subgroup: string; method: string; args: unknown[]; persisted?: boolean }
  /**
   * `squall bench calls`: ordered `inc(1)` calls of a BenchCounter, `inFlight` at a time, for warmupMs then
   * `seconds` timed (call-load.ts); 'calls-progress' reads how far it is; 'counter' reads the local total.
   */
  | {
    cmd: 'calls'; subgroup: string; inFlight: number; warmupMs: number; seconds: number;
    /** Replies every call must have (default: the shard's members now; 0: at least one). */
    replies?: number; values?: boolean;
    /** Persisted calls: each resolves once durable at every member (a persistent subgroup). */
    persisted?: boolean;
  }
  | { cmd: 'calls-progress' }
  | { cmd: 'counter'; subgroup: string }
  /** `inFlight` messages in flight on a channel subgroup, each timed from send to its delivery here. */
  | { cmd: 'ping'; subgroup: string; seconds: number; bytes: number; inFlight: number }
  | { cmd: 'query'; subgroup: string; member: number; method: string; args: unknown[] }
  /** The version the replicated object of `subgroup` has applied here (−1n before any). */
  | { cmd: 'version'; subgroup: string }
  | { cmd: 'send-raw'; subgroup: string; bytes: number }
  | { cmd: 'direct'; subgroup: string; member: number; bytes: number }
  | { cmd: 'membership' }
  /** Leave the group cleanly; resolves once this member has left (the process stays up for reports). */
  | { cmd: 'leave' }
  /** Keeps the main thread busy for `ms` (a long synchronous task in the application). */
  | { cmd: 'busy'; ms: number }
  /** From now on keeps the main thread busy for `ms` every `everyMs` (ms 0: stops). */
  | { cmd: 'block-main'; ms: number; everyMs: number }
  /**
   * Once this member has copied the leader's ragged trim into its row (the last step before the change
   * commits), keeps the main thread busy for `ms`: it applies the commit that long after the others.
   */
  | { cmd: 'block-after-trim'; ms: number }
  | { cmd: 'close' };

/** Events carry `atMs`, the monotonic clock (shared by every process on the host) when they happened. */
export type GroupHarnessEvent =
  | { type: 'memberFailed'; member: number; reason: string; atMs: number }
  | { type: 'view'; vid: number; members: number[]; removed: number[]; joined: number[]; atMs: number }
  | { type: 'partitioned'; message: string; unreachable: number[]; atMs: number }
  | { type: 'removed'; message: string; rejoining: boolean; atMs: number }
  | { type: 'rejoined'; vid: number; members: number[]; atMs: number }
  | { type: 'rejoinFailed'; message: string; atMs: number }
  /** The protocol event `rejoinRetry`: a rejoin attempt failed (`message`: why), and another follows. */
  | { type: 'rejoinRetry'; attempt: number; message: string; atMs: number }
  /** The protocol event `committed`: this member applies a change of view `vid` (it installs the next view after). */
  | { type: 'committed'; vid: number; removed: number[]; atMs: number }
  /** Every other protocol event, with SQUALL_HARNESS_PROTOCOL=1 in the member's environment (for debugging). */
  | { type: 'protocol'; event: Record<string, unknown>; atMs: number }
  | { type: 'error'; message: string; atMs: number }
  /** The group's `warning` event (a refused contact attempt, an undecodable message). */
  | { type: 'warning'; message: string; code: string; atMs: number };

interface Recorder {
  delivered: number;
  hash: number;
  sequence: string[] | null;
  /** Per delivered message: sender, k, ms from send to delivery here. */
  latency: { sender: number[]; k: number[]; ms: number[] } | null;
  firstMs: number;
  lastMs: number;
  waiters: Array<() => void>;
  /** Point-to-point messages received (sendTo). */
  directs: number;
  /** When each delivery became durable everywhere (a persistent subgroup), or null. */
  persist: PersistTracker | null;
}

/** CLOCK_MONOTONIC in ms: one clock for every process on the host (latency spans processes). */
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
let group: Group | null = null;
/** The timer of 'block-main', while it runs. */
let blocker: ReturnType<typeof setInterval> | null = null;
const recorders = new Map<string, Recorder>();

function channel(name: string): SubgroupChannel {
  if (!group) throw new Error('join first');
  return group.channel(name);
}

function object(name: string): ReplicatedObject<object> {
  if (!group) throw new Error('join first');
  return group.subgroup(name);
}

/** FNV-1a over (sender, k, length) of each delivery, in delivery order: equal hashes, equal sequences. */
function mix(hash: number, value: number): number {
  return Math.imul(hash ^ value, 0x01000193) >>> 0;
}

function payload(size: number, sender: number, k: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(16, size));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, sender, true);
  view.setUint32(4, k, true);
  view.setFloat64(8, nowMs(), true);
  for (let i = 16; i < bytes.length; i++) bytes[i] = (k + i) & 0xff;
  return bytes;
}

async function handle(req: GroupHarnessRequest): Promise<Record<string, unknown>> {
  switch (req.cmd) {
    case 'join': return join(req);
    case 'record': return record(req);
    case 'send': return send(req);
    case 'flood': return flood(req);
    case 'fire': return fire(req);
    case 'await': {
      const r = recorders.get(req.subgroup);
      if (!r) throw new Error(`record ${req.subgroup} first`);
      const deadline = Date.now() + (req.timeoutMs ?? 30_000);
      const count = () => (req.persisted ? r.persist?.persisted ?? 0 : r.delivered);
      while (count() < req.total && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 50);
          r.waiters.push(() => { clearTimeout(t); resolve(); });
        });
      }
      return req.brief ? { delivered: r.delivered } : report(req.subgroup, r);
    }
    case 'isolated': return isolated(req);
    case 'report': {
      const r = recorders.get(req.subgroup);
      if (!r) throw new Error(`record ${req.subgroup} first`);
      return report(req.subgroup, r);
    }
    case 'call': {
      const o = object(req.subgroup);
      return { replies: await (req.persisted ? o.callPersisted(req.method, req.args) : o.call(req.method, req.args)) };
    }
    case 'calls': {
      const o = object(req.subgroup);
      const target: CallTarget = req.persisted
        ? { call: (method, args) => o.callPersisted(method, args) } : o as unknown as CallTarget;
      const replies = req.replies ?? channel(req.subgroup).members.length;
      return { ...await runCallLoad(target, { ...req, replies }) };
    }
    case 'calls-progress': return { ...callProgress };
    case 'counter': return { value: (object(req.subgroup).state as BenchCounter).value };
    case 'ping': return { ...await runPing(channel(req.subgroup), req) };
    case 'query': return { value: await object(req.subgroup).callMember(req.member, req.method, req.args) };
    case 'version': return { version: object(req.subgroup).version() };
    case 'fill': {
      const target = object(req.subgroup) as unknown as Caller;
      const calls: Array<Promise<unknown>> = [];
      for (let i = 0; i < req.count; i++) {
        const value = new Uint8Array(req.bytes);
        for (let b = 0; b < value.length; b += 4096) value[b] = (i * 31 + b) & 0xff;
        const call = target.call(req.method, [`key-${group!.id}-${i}`, value]);
        call.catch(() => {}); // awaited below; when an earlier one fails, the rest must not go unhandled
        calls.push(call);
        if (calls.length >= (req.inFlight ?? 4)) await calls.shift();
      }
      await Promise.all(calls);
      return {};
    }
    case 'send-raw': await channel(req.subgroup).send(new Uint8Array(req.bytes)); return {};
    case 'direct': await channel(req.subgroup).sendTo(req.member, new Uint8Array(req.bytes)); return {};
    case 'membership': return { rows: group!.membership(), status: group!.status() };
    case 'leave': await group!.leave(); return {};
    case 'busy': {
      const until = nowMs() + req.ms;
      while (nowMs() < until) { /* the event loop is blocked */ }
      return {};
    }
    case 'block-main': {
      if (blocker) clearInterval(blocker);
      blocker = null;
      if (req.ms > 0) {
        blocker = setInterval(() => {
          const until = nowMs() + req.ms;
          while (nowMs() < until) { /* the event loop is blocked */ }
        }, req.everyMs);
      }
      return {};
    }
    case 'block-after-trim': {
      if (blocker) clearInterval(blocker);
      blocker = setInterval(() => {
        const own = group!.membership().find((r) => r.member === group!.id);
        if (!own || own.trimFor <= 0 || own.trimFor !== own.proposal || own.committed === own.trimFor) return;
        clearInterval(blocker!);
        blocker = null;
        const until = nowMs() + req.ms;
        while (nowMs() < until) { /* the event loop is blocked */ }
      }, 1);
      return {};
    }
    case 'close': {
      if (blocker) clearInterval(blocker);
      await group?.close();
      setImmediate(() => process.exit(0));
      return {};
    }
  }
}

async function join(req: Extract<GroupHarnessRequest, { cmd: 'join' }>): Promise<Record<string, unknown>> {
  const types = Object.fromEntries(Object.entries(req.types ?? {}).map(([sg, t]) => [sg, HARNESS_TYPES[t]]));
  // The state this member received while it joined (the stateReceived events, which end inside Group.join).
  const received: Array<{ bytes: number; ms: number; streamMs: number }> = [];
  const ignore = () => {};
  const logger = {
    error: ignore, warn: ignore, debug: ignore,
    info: (fields: { event?: string; bytes?: number; ms?: number; streamMs?: number }) => {
      if (fields.event !== 'stateReceived') return;
      received.push({ bytes: fields.bytes!, ms: fields.ms!, streamMs: fields.streamMs! });
    },
  };
  const started = nowMs();
  const g = await Group.join({ id: req.id, config: req.config, types, logger, ...req.options });
  group = g;
  const joinMs = nowMs() - started;
  const traceProtocol = process.env['SQUALL_HARNESS_PROTOCOL'] === '1';
  const tell = (event: DistributiveOmit<GroupHarnessEvent, 'atMs'>) => sendToParent({ ...event, atMs: nowMs() });
  g.on('memberFailed', (member, reason) => tell({ type: 'memberFailed', member, reason }));
  g.on('view', (view, removed, joined) => {
    tell({ type: 'view', vid: view.vid, members: [...view.members], removed, joined });
  });
  g.on('protocol', (e) => {
    if (e.event === 'committed') tell({ type: 'committed', vid: e.vid, removed: e.removed });
    else if (e.event === 'rejoinRetry') tell({ type: 'rejoinRetry', attempt: e.attempt, message: e.message });
    else if (traceProtocol) tell({ type: 'protocol', event: { ...e } });
  });
  g.on('partitioned', (error) => {
    tell({ type: 'partitioned', message: error.message, unreachable: [...error.unreachable] });
  });
  g.on('removed', (error, rejoining) => tell({ type: 'removed', message: error.message, rejoining }));
  g.on('rejoined', (view) => tell({ type: 'rejoined', vid: view.vid, members: [...view.members] }));
  g.on('rejoinFailed', (error) => tell({ type: 'rejoinFailed', message: error.message }));
  g.on('warning', (error) => {
    tell({ type: 'warning', message: error.message, code: (error as { code?: string }).code ?? '' });
  });
  g.on('persisted', ({ subgroup, version }) => {
    const r = recorders.get(subgroup);
    if (!r?.persist) return;
    r.persist.frontier(version);
    if (r.waiters.length > 0) for (const w of r.waiters.splice(0)) w();
  });
  if (req.listenErrors !== false) g.on('error', (error) => tell({ type: 'error', message: error.message }));
  return {
    address: g.address, contact: g.contactAddress, vid: g.view.vid, members: [...g.view.members], joinMs, received,
  };
}

/** A replicated object's ordered calls, by method name. */
interface Caller { call(m: string, a: unknown[]): Promise<unknown> }

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

async function record(req: Extract<GroupHarnessRequest, { cmd: 'record' }>): Promise<Record<string, unknown>> {
    const r: Recorder = {
      delivered: 0, hash: 0x811c9dc5, sequence: req.sequence ? [] : null,
      latency: req.latency ? { sender: [], k: [], ms: [] } : null, firstMs: 0, lastMs: 0, waiters: [], directs: 0,
      persist: req.persisted ? new PersistTracker(nowMs) : null,
    };
    const own = channel(req.subgroup).memberId;
    channel(req.subgroup).onDirect(() => { r.directs++; });
    recorders.set(req.subgroup, r);
    const slowUs = req.slowUs ?? 0;
    // Small messages are views of the arena: one DataView over it serves them all.
    let buffer: ArrayBufferLike | null = null;
    let view: DataView | null = null;
    channel(req.subgroup).onDeliver((sender, version, bytes) => {
      if (bytes.buffer !== buffer) { buffer = bytes.buffer; view = new DataView(buffer); }
      const at = bytes.byteOffset;
      const from = view!.getUint32(at, true), k = view!.getUint32(at + 4, true);
      if (from !== sender) throw new Error(`message from ${sender} says it is from ${from}`);
      const t = r.latency || r.persist || slowUs > 0 ? nowMs() : performance.now();
      if (r.delivered === 0) r.firstMs = t;
      r.lastMs = t;
      r.delivered++;
      r.hash = mix(mix(mix(r.hash, sender), k), bytes.byteLength);
      r.sequence?.push(`${sender}:${k}:${bytes.byteLength}`);
      if (r.latency) {
        r.latency.sender.push(sender);
        r.latency.k.push(k);
        r.latency.ms.push(t - view!.getFloat64(at + 8, true));
      }
      r.persist?.delivered(version, from === own ? view!.getFloat64(at + 8, true) : NaN);
      if (slowUs > 0) { const until = t + slowUs / 1000; while (nowMs() < until) { /* a slow receiver */ } }
      if (r.waiters.length > 0) for (const w of r.waiters.splice(0)) w();
    });
    return {};
}

async function send(req: Extract<GroupHarnessRequest, { cmd: 'send' }>): Promise<Record<string, unknown>> {
    const ch = channel(req.subgroup);
    const started = nowMs();
    const sends: Array<Promise<void>> = [];
    let maxQueued = 0;
    for (let k = 0; k < req.count; k++) {
      if (req.ratePerSec) {
        const due = started + (k * 1000) / req.ratePerSec;
        if (nowMs() < due) await new Promise((r) => setTimeout(r, Math.max(0, due - nowMs())));
      }
      const sent = ch.send(payload(req.sizes[k % req.sizes.length]!, ch.memberId, (req.firstK ?? 0) + k));
      sent.catch(() => {}); // seen by Promise.all below; a rejection meanwhile must not end the process
      sends.push(sent);
      maxQueued = Math.max(maxQueued, ch.queued);
      if (sends.length >= 256) { await Promise.all(sends.splice(0)); }
    }
    if (req.thenBlockMs) { // a long task right after the sends, before the step that would push them runs
      const until = nowMs() + req.thenBlockMs;
      while (nowMs() < until) { /* the event loop is blocked */ }
    }
    await Promise.all(sends);
    return { maxQueued, sendMs: nowMs() - started };
}

async function isolated(req: Extract<GroupHarnessRequest, { cmd: 'isolated' }>): Promise<Record<string, unknown>> {
  const ch = channel(req.subgroup);
  const r = recorders.get(req.subgroup);
  if (!r) throw new Error(`record ${req.subgroup} first`);
  const deadline = Date.now() + (req.timeoutMs ?? 30_000);
  // Timers, not setImmediate: a waiting sender must not keep its core busy while the others deliver.
  const pause = () => new Promise<void>((resolve) => { setTimeout(resolve, 0); });
  const minDelivered = () => (ch.state().shard as { minDelivered: number }).minDelivered;
  for (let k = 0; k < req.count; k++) {
    const before = r.delivered;
    await ch.send(payload(req.size, ch.memberId, req.firstK + k));
    while (r.delivered === before && Date.now() < deadline) await pause();
    const seq = ch.deliveredNum; // the message just delivered here (or a null after it)
    while (minDelivered() < seq && Date.now() < deadline) await pause();
    if (Date.now() >= deadline) throw new Error(`message ${req.firstK + k} was not delivered everywhere in time`);
  }
  return { sent: req.count };
}

async function flood(req: Extract<GroupHarnessRequest, { cmd: 'flood' }>): Promise<Record<string, unknown>> {
    const ch = channel(req.subgroup);
    const end = nowMs() + req.seconds * 1000;
    const inFlight = req.inFlight ?? 64;
    let k = 0;
    let sentBytes = 0;
    const small = payload(req.size, ch.memberId, 0);
    const large = req.largeSize && req.largeEvery ? payload(req.largeSize, ch.memberId, 0) : null;
    const views = [new DataView(small.buffer), large ? new DataView(large.buffer) : null];
    while (nowMs() < end) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < inFlight; i++) {
        const big = large !== null && k % req.largeEvery! === req.largeEvery! - 1;
        const bytes = big ? large : small;
        const view = views[big ? 1 : 0]!;
        view.setUint32(4, k++, true);
        view.setFloat64(8, nowMs(), true);
        sentBytes += bytes.byteLength;
        batch.push(ch.send(bytes));
        if (ch.queued > 0 || big) break; // the window is full, or a large message holds its buffer until sent
      }
      await Promise.all(batch);
    }
    return { sent: k, bytes: sentBytes };
}

async function fire(req: Extract<GroupHarnessRequest, { cmd: 'fire' }>): Promise<Record<string, unknown>> {
  const ch = channel(req.subgroup);
  const target = req.calls ? object(req.subgroup) as unknown as Caller & { inFlight: number } : null;
  const end = nowMs() + req.seconds * 1000;
  const accepted: number[] = [];
  const codes: Record<string, number> = {};
  let refused = 0, maxQueued = 0, maxQueuedBytes = 0, k = 0;
  const rssBefore = process.memoryUsage().rss;
  let rssMax = rssBefore;
  const refuse = (error: Error & { code?: string }) => {
    refused++;
    codes[error.code ?? error.name] = (codes[error.code ?? error.name] ?? 0) + 1;
  };
  while (nowMs() < end) {
    for (let i = 0; i < (req.batch ?? 1000); i++, k++) {
      const n = k;
      const sent = target ? target.call(req.calls!.method, [`k${n}`, new Uint8Array(req.size)])
        : req.to !== undefined ? ch.sendTo(req.to, payload(req.size, ch.memberId, n))
          : ch.send(payload(req.size, ch.memberId, n));
      sent.then(() => { accepted.push(n); }, refuse); // never awaited by the loop
      maxQueued = Math.max(maxQueued, target ? target.inFlight : ch.queued);
      maxQueuedBytes = Math.max(maxQueuedBytes, ch.queuedBytes);
    }
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
    await new Promise((resolve) => setImmediate(resolve));
  }
  // What was accepted goes on being sent: wait until every promise settled (the queue drains).
  while (accepted.length + refused < k) await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    fired: k, accepted: accepted.sort((a, b) => a - b), refused, codes, maxQueued, maxQueuedBytes, rssBefore, rssMax,
    rssAfter: process.memoryUsage().rss,
  };
}

function report(name: string, r: Recorder): Record<string, unknown> {
  let ch: SubgroupChannel | null = null;
  try { ch = channel(name); } catch { /* this member has left */ }
  return {
    delivered: r.delivered, hash: r.hash, sequence: r.sequence, latency: r.latency,
    firstMs: r.firstMs, lastMs: r.lastMs, directs: r.directs, nullsSent: ch?.nullsSent ?? 0,
    deliveredNum: ch?.deliveredNum ?? -1, persist: r.persist?.figures() ?? null,
    logSyncs: (ch?.state() as { logSyncs?: number } | undefined)?.logSyncs ?? 0,
  };
}

serveParent(handle);
