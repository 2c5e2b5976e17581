// How `squall bench <what>` prints its result for a reader (without --json): every size, rate and time in
// human units (ts/cli/units.ts). The --json output keeps the results' raw numbers and field names.

import type { CallsBenchResult } from '../../bench/calls.js'; // types only: the benchmarks load when run
import type { JoinBenchResult } from '../../bench/join.js';
import type { MulticastBenchResult } from '../../bench/multicast.js';
import type { RdmcBenchResult } from '../../bench/rdmc.js';
import type { SstBenchResult } from '../../bench/sst.js';
import type { ViewChangeBenchResult } from '../../bench/viewchange.js';
import { formatBytes, formatCount, formatMicros, formatMillis, formatSeconds } from './units.js';

/** "p50 101 µs, p99 1.32 ms" from a summary in microseconds. */
export const percentiles = (s: { p50: number; p99: number }): string =>
  `p50 ${formatMicros(s.p50)}, p99 ${formatMicros(s.p99)}`;

const runsOf = (n: number): string => `${n} run${n === 1 ? '' : 's'}`;

export function describeSst(result: SstBenchResult): string {
  const l = result.pushLatencyUs, t = result.rawTcpOneWayUs;
  const lines = [
    `SST push latency (${result.members} members, fabric ${result.fabric}): ` +
      `${percentiles(l)} over ${formatCount(l.samples)} samples`,
    `plain TCP one-way (two Node processes):  ${percentiles(t)}`,
    `push / raw TCP at p50: ${result.pushOverRawTcpP50}`,
  ];
  if (result.pushLatencyUnderLoadUs && result.load) {
    const u = result.pushLatencyUnderLoadUs, f = result.load;
    lines.push(
      `SST push latency under load: ${percentiles(u)} over ${formatCount(u.samples)} samples ` +
      `(beside ${formatBytes(f.multicastBytes)} multicasts and ${formatBytes(f.rdmcBytes)} RDMC messages ` +
      `on the same connections: ${formatCount(f.multicastSent)} sent, ` +
      `${formatCount(f.multicastDeliveredPerMember)} delivered per member, ` +
      `${formatCount(f.rdmcMessages)} RDMC messages in ${formatSeconds(f.seconds)}; ${f.suspicions} suspicions)`);
  }
  if (result.scanNs) {
    lines.push('', 'kernel scans, ns per call (wasm / js):');
    for (const [kernel, byRows] of Object.entries(result.scanNs)) {
      const cells = Object.entries(byRows).map(([rows, r]) =>
        `${rows} rows ${r.wasmNs.toFixed(0)}/${r.jsNs.toFixed(0)}`);
      lines.push(`  ${kernel.padEnd(16)} ${cells.join('   ')}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function describeRdmc(result: RdmcBenchResult): string {
  let text = `${result.algorithm}, ${result.members} members, ` +
    `${formatBytes(result.bytes)} in ${formatBytes(result.blockSize)} blocks ` +
    `(${result.network}, fabric ${result.fabric}): ` +
    `${formatSeconds(result.seconds)} per message, ${result.gbytesPerSec} GB/s to each receiver\n`;
  if (result.tcpGbytesPerSec !== undefined) {
    text += `plain TCP stream: ${result.tcpGbytesPerSec} GB/s; RDMC / TCP = ${result.ratioToTcp}\n`;
  }
  return text;
}

export function describeMulticast(r: MulticastBenchResult): string {
  const n = formatCount;
  const lines = [
    `ordered multicast: ${r.members} members (fabric ${r.fabric}), ` +
      `${r.senders === 'all' ? 'all send' : 'one sends'}, ${formatBytes(r.bytes)} messages, ` +
      `window ${r.window}, ${formatSeconds(r.seconds)}`,
    `  per member (median): ${n(r.perNode.msgsPerSec)} deliveries/s, ${r.perNode.mbytesPerSec} MB/s` +
      `  [${r.perMember.map((m) => `member ${m.id}: ${n(m.msgsPerSec)}/s`).join(', ')}]`,
  ];
  if (r.latencyUs.samples > 0) {
    lines.push(
      `  latency at ${n(r.latencyUs.ratePerSec)} msgs/s, send to delivery at the last member` +
      (r.blockMainMs > 0
        ? ` but the last, whose main thread was blocked ${formatMillis(r.blockMainMs)} every second` : '') +
      `: ${percentiles(r.latencyUs)} over ${n(r.latencyUs.samples)} messages`);
  }
  if (r.isolatedLatencyUs.samples > 0) {
    lines.push(
      `  isolated latency (one sender, one message in flight), send to delivery at the last member: ` +
      `${percentiles(r.isolatedLatencyUs)} over ${n(r.isolatedLatencyUs.samples)} messages`);
  }
  const order = r.hashesAgree ? 'the same at every member' : 'MEMBERS DISAGREE (a bug: please report it)';
  lines.push(`  delivery order: ${order}`);
  const large = r.large ? `; every ${r.large.every}th message ${formatBytes(r.large.bytes)} (by RDMC)` : '';
  lines.push(`  suspicions ${r.suspicions}, view changes ${r.viewChanges}${large}`);
  return lines.join('\n') + '\n';
}

export function describeCalls(r: CallsBenchResult): string {
  const n = formatCount;
  const l = r.latencyUs, m = r.multicast;
  const lines = [
    `${r.persisted ? 'persisted' : 'ordered'} calls: ${r.members} members (fabric ${r.fabric}), ` +
      `${r.inFlight} in flight per member, window ${r.window}, ${formatSeconds(r.seconds)}`,
    `  per member (median): ${n(r.perNode.callsPerSec)} calls/s, ${formatMicros(r.perNode.cpuUsPerCall)} of CPU ` +
      `per call  [${r.perMember.map((p) => `member ${p.id}: ${n(p.callsPerSec)}/s`).join(', ')}]`,
    `  call to last reply: ${percentiles(l)} over ${n(l.samples)} calls`,
  ];
  if (m) {
    lines.push(`  the multicast alone (${r.inFlight} in flight per member, send to delivery): ` +
      `${n(m.perNode.msgsPerSec)} msgs/s per member (${formatMicros(m.perNode.cpuUsPerMsg)} of CPU each), ` +
      percentiles(m.latencyUs));
  }
  const agree = r.countersAgree ? 'every counter holds every call' : 'COUNTERS DISAGREE (a bug: please report it)';
  lines.push(`  ${agree}; failed calls ${r.failed}, suspicions ${r.suspicions}, view changes ${r.viewChanges}`);
  return lines.join('\n') + '\n';
}

export function describeViewChange(r: ViewChangeBenchResult): string {
  const runs = r.runs.map((x) => `${formatMillis(x.detectMs)}/${formatMillis(x.commitMs)}/` +
    `${formatMillis(x.installMs)}${x.hashesAgree ? '' : ' (hashes DISAGREE)'}`);
  const blocked = r.blockMainMs > 0 ? `, member 1's main thread blocked ${formatMillis(r.blockMainMs)}` : '';
  return `view change: ${r.members} members (fabric ${r.fabric}, engine ${r.engine}), member ${r.members - 1} ` +
    `SIGKILLed under ${formatCount(r.ratePerSec)} msgs/s per member${blocked}\n` +
    `  detected in ${formatMillis(r.detectMs)}, committed by the leader ${formatMillis(r.commitMs)} after the kill, ` +
    `next view installed ${formatMillis(r.installMs)} after detection\n` +
    `  (medians over ${runsOf(r.runs.length)}: detectMs, commitMs, installMs); ` +
    `suspicion timeout ${formatMillis(r.suspicionTimeoutMs)}\n` +
    `  runs (detect/commit/install): ${runs.join(', ')}\n`;
}

export function describeJoin(r: JoinBenchResult): string {
  const runs = r.runs.map((x) => `${formatMillis(x.joinMs)}${x.storesAgree ? '' : ' (stores DISAGREE)'}`);
  const stream = r.streamMs > 0 ? `  the state's bytes on the way ${formatMillis(r.streamMs)} (streamMs, `
    + `${r.streamMBps} MB/s); awaited to restored ${formatMillis(r.stateMs)} (stateMs)\n` : '';
  return `join: a member joins ${r.members} (fabric ${r.fabric}) holding ${formatBytes(r.stateBytes)}\n` +
    `  joined in ${formatMillis(r.joinMs)} (joinMs, median), ${r.mbytesPerSec} MB/s over ${runsOf(r.runs.length)}: ` +
    `${runs.join(', ')}\n` + stream;
}
