// `squall inspect HOST:PORT [--watch] [--json]`: reads a running member's admin port (squall node --metrics
// HOST:PORT; ts/group/admin.ts) and shows its view, every row of the membership SST, and each shard's counters,
// frontiers and queue. Read-only. --watch redraws it in place every --interval ms; --json prints what the
// member sent. What the member sends is checked before it is shown: bounded in size and time, and shaped as
// an Inspection, or the command says what it got instead.

import { ConfigError, TimeoutError } from '../errors.js';
import { parseAddress } from '../address.js';
import type { FabricConnection } from '../fabric/connections.js';
import type { Inspection } from '../group/admin.js';
import { defineCommand, parseCommand } from './args.js';
import { formatBytes, parsePositiveInt } from './units.js';

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 3000;

export const INSPECT_COMMAND = defineCommand({
  command: 'inspect',
  usage: 'HOST:PORT [--watch] [--interval MS] [--json]',
  about: `Shows a running member from its admin port (squall node --metrics HOST:PORT): its view, its fabric
connection to each other member (state, queued frames and bytes, bytes in and out), each row of the
membership SST (wedged, suspicions, proposal, trim, commit) and each shard's counters — received per sender,
the receive prefix (seqNum), delivered, the stability frontier (minDelivered), and where the subgroup is
persistent the version durable here (persisted) and at every member (frontier) — its window (slots per
sender, and this member's messages in flight in it: not yet stable) and its send queue.
Read-only.`,
  options: {
    watch: { type: 'boolean', help: 'redraw every --interval ms until Ctrl-C' },
    interval: { type: 'string', value: 'MS', help: 'how often --watch redraws (default 1000)' },
    json: { type: 'boolean', help: 'print the member\'s JSON on stdout (with --watch: one line per redraw)' },
  },
  notes: `Example: squall node --config cluster.json --id 0 --metrics 127.0.0.1:9400
         squall inspect 127.0.0.1:9400 --watch`,
});

/** GET http://address/inspect, bounded in time and size, checked for an Inspection's shape. */
export async function fetchInspection(address: string): Promise<Inspection> {
  const url = `http://${address}/inspect`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (cause) {
    if ((cause as Error).name === 'TimeoutError') {
      throw new TimeoutError(`${url} did not answer within ${REQUEST_TIMEOUT_MS} ms: is it a member's admin port?`);
    }
    throw new ConfigError(`cannot reach ${url} (${(cause as Error).message}): start the member with ` +
      `--metrics ${address}, or give the address it printed`);
  }
  if (res.status !== 200) throw new ConfigError(`${url} answered ${res.status}: is it a squall member's admin port?`);
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > MAX_RESPONSE_BYTES) throw new ConfigError(`${url} sent ${length} bytes, more than an inspection`);
  const text = await res.text();
  if (text.length > MAX_RESPONSE_BYTES) throw new ConfigError(`${url} sent more than ${MAX_RESPONSE_BYTES} bytes`);
  let value: unknown;
  try { value = JSON.parse(text); } catch { value = null; } // not JSON: refused just below
  const v = value as Partial<Inspection> | null;
  const ok = v !== null && typeof v === 'object' && v.version === 1 && Number.isInteger(v.member) &&
    Number.isInteger(v.vid) && Array.isArray(v.members) && v.members.every(Number.isInteger) &&
    Array.isArray(v.membership) && typeof v.subgroups === 'object' && v.subgroups !== null &&
    connectionsShaped(v.fabric);
  if (!ok) throw new ConfigError(`${url} did not send a squall inspection (version 1): ${text.slice(0, 120)}`);
  return v as Inspection;
}

/** A member's fabric connections, if it sent them (older members did not): one object per peer id. */
function connectionsShaped(fabric: unknown): boolean {
  const f = typeof fabric === 'object' && fabric !== null ? fabric as Record<string, unknown> : {};
  const c = f['connections'];
  return c === undefined || (Array.isArray(c) && c.every((p: Partial<FabricConnection> | null) =>
    typeof p === 'object' && p !== null && Number.isInteger(p.peer) && typeof p.state === 'string'));
}

/** A value as a table cell: arrays joined, objects as JSON, bounded in width. */
function cell(value: unknown): string {
  const text = Array.isArray(value) ? value.map(String).join(',') : typeof value === 'object' && value !== null
    ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** Rows of objects as an aligned text table of `columns`. */
function table(rows: readonly Record<string, unknown>[], columns: readonly string[]): string[] {
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)];
}

const SHARD_COLUMNS = ['vid', 'numReceived', 'seqNum', 'deliveredNum', 'minDelivered', 'persisted', 'frontier',
  'nextIndex', 'pushedIndex', 'window', 'inFlight', 'queued', 'wedged', 'failure'];

/** The inspection as text for a terminal. */
export function renderInspection(i: Inspection, address: string): string {
  const out = [`member ${i.member} at ${address} — view ${i.vid}, members ${i.members.join(', ')}` +
    `${i.installing ? ' (installing the next view)' : ''}${i.stopped ? ` — STOPPED: ${i.stopped}` : ''}`];
  if (i.lastInstall) {
    const phases = Object.entries(i.lastInstall).map(([k, v]) => `${k} ${v}`);
    out.push(`last install (ms from the commit): ${phases.join(', ')}`);
  }
  const f = (typeof i.fabric === 'object' && i.fabric !== null ? i.fabric : {}) as Record<string, unknown>;
  if ('bytesIn' in f) {
    const bytesIn = formatBytes(Number(f['bytesIn']));
    out.push(`fabric (this view's connections): in ${cell(f['framesIn'])} frames, ${bytesIn}; ` +
      `out ${cell(f['framesOut'])} frames, ${formatBytes(Number(f['bytesOut']))}; ${cell(f['framesCoalesced'])} ` +
      `writes coalesced${Number(f['rmaWrites']) > 0 ? `, ${cell(f['rmaWrites'])} one-sided RMA writes` : ''}`);
  }
  if (Array.isArray(f['connections']) && f['connections'].length > 0) {
    out.push('', 'fabric connections (to each other member of the view; queued: waiting to be sent to it):');
    const rows = (f['connections'] as FabricConnection[]).map((c) => ({
      peer: c.peer, state: c.failReason ? `${c.state} (${c.failReason})` : c.state, queuedFrames: c.queuedFrames,
      queuedBytes: formatBytes(Number(c.queuedBytes)), bytesIn: formatBytes(Number(c.bytesIn)),
      bytesOut: formatBytes(Number(c.bytesOut)),
    }));
    const columns = ['peer', 'state', 'queuedFrames', 'queuedBytes', 'bytesIn', 'bytesOut'];
    out.push(...table(rows, columns).map((l) => `  ${l}`));
  }
  out.push('', 'membership SST (one row per member of the view):');
  const rows = i.membership.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null);
  const columns = ['member', 'wedged', 'leaving', 'suspects', 'proposal', 'changes', 'trimFor', 'committed'];
  out.push(...table(rows, columns).map((l) => `  ${l}`));
  for (const [name, state] of Object.entries(i.subgroups)) {
    const s = (typeof state === 'object' && state !== null ? state : {}) as Record<string, unknown>;
    const shard = (typeof s['shard'] === 'object' && s['shard'] !== null ? s['shard'] : {}) as Record<string, unknown>;
    out.push('', `subgroup '${name}' — held for the next view: ${cell(s['held'] ?? 0)}` +
      `${s['stopped'] ? `, stopped: ${cell(s['stopped'])}` : ''}`);
    const present = SHARD_COLUMNS.filter((c) => c in shard);
    out.push(...table([shard], present).map((l) => `  ${l}`));
  }
  return `${out.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<void> {
  // The address comes first: HOST:PORT, then the options (parseCommand takes options only).
  const address = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : undefined;
  const values = parseCommand(INSPECT_COMMAND, address === undefined ? argv : argv.slice(1));
  if (values === null) return;
  if (address === undefined) {
    throw new ConfigError('squall inspect needs HOST:PORT: the admin address a member printed (squall node --metrics)');
  }
  parseAddress(address, 'HOST:PORT');
  const interval = parsePositiveInt(values.interval, 'interval', 1000);
  const show = async () => {
    const inspection = await fetchInspection(address);
    if (values.json) process.stdout.write(`${JSON.stringify(inspection)}\n`);
    else process.stdout.write(`${values.watch ? '\x1b[H\x1b[2J' : ''}${renderInspection(inspection, address)}`);
  };
  await show();
  if (!values.watch) return;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, interval));
    await show();
  }
}
