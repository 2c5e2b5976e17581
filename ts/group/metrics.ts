// Prometheus metrics of a group member, through prom-client, on a registry the application passes in
// (registerMetrics(group, registry)), or served by `squall node --metrics HOST:PORT` (ts/group/admin.ts).
//
// Nothing here runs on the delivery path: the counters the engine keeps anyway (deliveries, bytes, nulls,
// queues, window stalls) are read when Prometheus scrapes, and the protocol's steps (the `protocol` event:
// suspicions, installs, refusals, state transfers) are counted as they happen — a handful per view change.
// The latency histograms observe a sample of this member's sends (one in 64, at most one a millisecond per
// shard: ts/multicast/latency.ts). Every metric carries the label `member` (this member's id), so several
// members of one process can share a registry.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ClosedError, ConfigError } from '../errors.js';
import type { Group } from './group.js';
import type { ProtocolEvent } from './events.js';
import type { FabricConnection } from '../fabric/connections.js';
import type { SubgroupChannel } from './subgroup-channel.js';

/** The per-subgroup figures read at a scrape. */
interface SubgroupFigures { delivered: number; deliveredBytes: number; nullsSent: number; queued: number;
  queuedBytes: number; windowStalls: number }

/** What one member's metrics read at a scrape. */
interface MemberFigures {
  view: { vid: number; members: number };
  fabric: { bytesIn: number; bytesOut: number; connections: readonly FabricConnection[] };
  subgroups: Map<string, SubgroupFigures>;
}

/** One member's source of figures: null once it closed. */
interface Source {
  member: string;
  figures(): MemberFigures | null;
}

/** The metrics of one registry, and the members that feed them. */
interface Metrics {
  sources: Set<Source>;
  suspicions: Counter<'member' | 'reason'>;
  viewChanges: Counter<'member'>;
  refusals: Counter<'member' | 'code'>;
  installSeconds: Histogram<'member'>;
  stateBytes: Counter<'member' | 'direction'>;
  latency: Record<'push' | 'delivery', Histogram<'member' | 'subgroup'>>;
}

/** The latency histograms' buckets, in seconds: 50 µs to 1 s. */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const byRegistry = new WeakMap<Registry, Metrics>();

/** What the per-subgroup metrics call at a scrape: a Counter and a Gauge both have these. */
interface Refilled { reset(): void; inc(labels: Record<string, string>, value: number): void }

/**
 * A counter or gauge, labelled by member and subgroup, whose values are read at each scrape from every source
 * (reset, then each value added: a counter's total, a gauge's level).
 */
function readPerSubgroup(type: typeof Counter | typeof Gauge, registry: Registry, metrics: () => Metrics,
  name: string, help: string, read: (f: SubgroupFigures) => number): void {
  const collect = function (this: Refilled): void {
    this.reset();
    for (const s of metrics().sources) {
      for (const [subgroup, f] of s.figures()?.subgroups ?? []) this.inc({ member: s.member, subgroup }, read(f));
    }
  };
  new (type as typeof Gauge)({ name, help, labelNames: ['member', 'subgroup'], registers: [registry], collect });
}

/** Gauges per member and peer, read at each scrape from the current view's fabric connections. */
function registerPerPeer(registry: Registry, metrics: () => Metrics): void {
  const perPeer = (name: string, help: string, read: (c: FabricConnection) => number) => new Gauge({
    name, help, labelNames: ['member', 'peer'], registers: [registry],
    collect() {
      this.reset();
      for (const s of metrics().sources) {
        for (const c of s.figures()?.fabric.connections ?? []) this.set({ member: s.member, peer: c.peer }, read(c));
      }
    },
  });
  perPeer('squall_fabric_send_queue_frames', 'Frames waiting in the fabric\'s send queues to the peer (both lanes): ' +
    'it grows while the peer does not read', (c) => c.queuedFrames);
  perPeer('squall_fabric_send_queue_bytes', 'Bytes of those frames', (c) => c.queuedBytes);
  perPeer('squall_fabric_connected', 'Whether this view\'s fabric is connected to the peer (1) or not (0: ' +
    'connecting, or failed)', (c) => (c.state === 'connected' ? 1 : 0));
}

function createMetrics(registry: Registry): Metrics {
  const all = (): Metrics => byRegistry.get(registry)!;
  registerPerPeer(registry, all);
  const perSubgroup = (type: typeof Counter | typeof Gauge, name: string, help: string,
    read: (f: SubgroupFigures) => number) => readPerSubgroup(type, registry, all, name, help, read);
  perSubgroup(Counter, 'squall_deliveries_total', 'Messages delivered here, per subgroup (over every view)',
    (f) => f.delivered);
  perSubgroup(Counter, 'squall_delivered_bytes_total', 'Bytes of the messages delivered here, per subgroup',
    (f) => f.deliveredBytes);
  perSubgroup(Counter, 'squall_nulls_sent_total',
    'Null messages this member sent to keep the round-robin order moving while it had nothing to send',
    (f) => f.nullsSent);
  perSubgroup(Gauge, 'squall_send_queue_messages',
    'Messages this member has waiting for a slot (the window is full) or for the next view', (f) => f.queued);
  perSubgroup(Gauge, 'squall_send_queue_bytes', 'Bytes of those messages', (f) => f.queuedBytes);
  perSubgroup(Counter, 'squall_window_stalls_total',
    'Sends that found this member\'s window full (or sends already waiting for it) and queued for a slot',
    (f) => f.windowStalls);
  new Gauge({
    name: 'squall_view', help: 'The vid of the current view', labelNames: ['member'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of all().sources) { const v = s.figures()?.view; if (v) this.set({ member: s.member }, v.vid); }
    },
  });
  new Counter({
    name: 'squall_fabric_bytes_total', help: 'Bytes the current view\'s fabric moved, by direction (in, out); ' +
      'it starts again at each view', labelNames: ['member', 'direction'], registers: [registry],
    collect() {
      this.reset();
      for (const s of all().sources) {
        const f = s.figures()?.fabric;
        if (!f) continue;
        this.inc({ member: s.member, direction: 'in' }, f.bytesIn);
        this.inc({ member: s.member, direction: 'out' }, f.bytesOut);
      }
    },
  });
  new Gauge({
    name: 'squall_view_members', help: 'Members of the current view', labelNames: ['member'], registers: [registry],
    collect() {
      this.reset();
      for (const s of all().sources) { const v = s.figures()?.view; if (v) this.set({ member: s.member }, v.members); }
    },
  });
  return {
    sources: new Set(),
    suspicions: new Counter({ name: 'squall_suspicions_total', help: 'Members this member suspected, by reason',
      labelNames: ['member', 'reason'], registers: [registry] }),
    viewChanges: new Counter({ name: 'squall_view_changes_total', help: 'Views installed here after the first',
      labelNames: ['member'], registers: [registry] }),
    refusals: new Counter({ name: 'squall_refusals_total',
      help: 'Refused connections, join requests and frames, and undecodable messages, by error code',
      labelNames: ['member', 'code'], registers: [registry] }),
    installSeconds: new Histogram({ name: 'squall_install_seconds',
      help: 'From a view change\'s commit to the next view passing its start barrier', labelNames: ['member'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    stateBytes: new Counter({ name: 'squall_state_transfer_bytes_total',
      help: 'Bytes of state transfers this member sent to members entering its shards, or received entering one',
      labelNames: ['member', 'direction'], registers: [registry] }),
    latency: {
      push: new Histogram({ name: 'squall_push_latency_seconds', help: 'From send() to the push of the message\'s '
        + 'slot to the shard\'s peers (a sample of this member\'s sends)', labelNames: ['member', 'subgroup'],
      buckets: LATENCY_BUCKETS, registers: [registry] }),
      delivery: new Histogram({ name: 'squall_delivery_latency_seconds', help: 'From send() to the message\'s '
        + 'delivery at this member (a sample of this member\'s sends)', labelNames: ['member', 'subgroup'],
      buckets: LATENCY_BUCKETS, registers: [registry] }),
    },
  };
}

/**
 * Registers `group`'s metrics on `registry` (the application's prom-client Registry; default: a new one) and
 * returns it. A member that closed leaves the registry at the next scrape.
 */
export function registerMetrics(group: Group, registry: Registry = new Registry()): Registry {
  if (!(registry instanceof Registry)) {
    throw new ConfigError('registerMetrics(group, registry): registry must be a prom-client Registry (new Registry())');
  }
  let metrics = byRegistry.get(registry);
  if (!metrics) { metrics = createMetrics(registry); byRegistry.set(registry, metrics); }
  const member = String(group.id);
  const m = metrics;
  // The latency of a sample of this member's sends, per subgroup: each channel once (a later view's new
  // subgroups at the next scrape).
  const timed = new WeakSet<SubgroupChannel>();
  const time = (subgroup: string, c: SubgroupChannel): void => {
    if (timed.has(c)) return;
    timed.add(c);
    const labels = { member, subgroup };
    c.observeLatency((kind, seconds) => m.latency[kind].observe(labels, seconds));
  };
  for (const name of group.subgroups) time(name, group.channel(name));
  // One read of the member per scrape, shared by every metric's collect (the cache lasts until the next
  // macrotask; a scrape collects its metrics within microtasks): status() visits every shard.
  let cached: MemberFigures | null | undefined;
  const read = (): MemberFigures | null => {
    try {
      const status = group.status();
      const subgroups = new Map<string, SubgroupFigures>();
      for (const name of Object.keys(status.subgroups)) {
        const c = group.channel(name);
        time(name, c);
        subgroups.set(name, { delivered: c.delivered, deliveredBytes: c.deliveredBytes, nullsSent: c.nullsSent,
          queued: c.queued, queuedBytes: c.queuedBytes, windowStalls: c.windowStalls });
      }
      return { view: { vid: status.vid, members: status.members.length }, fabric: status.fabric, subgroups };
    } catch (error) {
      if (!(error instanceof ClosedError)) throw error;
      m.sources.delete(source); // the member closed: its figures leave the registry with it
      return null;
    }
  };
  const source: Source = {
    member,
    figures: () => {
      if (cached === undefined) {
        cached = read();
        setImmediate(() => { cached = undefined; });
      }
      return cached;
    },
  };
  m.sources.add(source);
  group.on('protocol', (e: ProtocolEvent) => {
    if (e.event === 'suspected') m.suspicions.inc({ member, reason: e.reason });
    else if (e.event === 'refused') m.refusals.inc({ member, code: e.code });
    else if (e.event === 'stateSent' || e.event === 'stateReceived') {
      m.stateBytes.inc({ member, direction: e.event === 'stateSent' ? 'sent' : 'received' }, e.bytes);
    }
    else if (e.event === 'installed') {
      m.viewChanges.inc({ member });
      const ready = Math.max(0, ...Object.values(e.phasesMs));
      m.installSeconds.observe({ member }, ready / 1000);
    }
  });
  return registry;
}
