// What the membership suites share: the ordered load they run under, and checks on delivered sequences
// (each entry of a recorded sequence is "sender:k:bytes", see ts/harness/group-process.ts 'record').

import type { SubgroupConfig } from '../../ts/membership/plans.js';
import type { GroupCluster, GroupClusterMember } from '../../ts/harness/cluster.js';

/** Mixed sizes: 2,000 bytes exceeds maxSmcPayload, so those go by RDMC and are ordered by a LARGE slot. */
export const LOG: SubgroupConfig = {
  shards: 1, members: { min: 2, max: 9 }, maxSmcPayload: 1024, maxMessageBytes: 4096, window: 8,
};
export const SIZES = [100, 2000, 300, 40];
/** A SIGKILLed member is seen through its broken connections at once; the heartbeat timeout only has to
 *  spare live members on a loaded machine (these suites also run under ASan and on libfabric). */
export const TIMING = { heartbeatIntervalMs: 10, suspicionTimeoutMs: 1000 };

export type Report = { delivered: number; sequence: string[] };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Per sender, the k's in delivery order. */
export function bySender(sequence: readonly string[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const entry of sequence) {
    const [sender, k] = entry.split(':').map(Number) as [number, number];
    if (!out.has(sender)) out.set(sender, []);
    out.get(sender)!.push(k);
  }
  return out;
}

export function isPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  return prefix.length <= of.length && prefix.every((x, i) => x === of[i]);
}

export function isSuffix(suffix: readonly string[], of: readonly string[]): boolean {
  return isPrefix(suffix, of.slice(of.length - suffix.length)) && suffix.length <= of.length;
}

/** The members' reports once every one delivered as many as the last time it was asked (quiescence). */
export async function quiescentReports(
  cluster: GroupCluster, members: GroupClusterMember[], subgroup: string, timeoutMs = 30_000
): Promise<Report[]> {
  let reports: Report[] = [];
  let last = '';
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(150)) {
    reports = (await cluster.all({ cmd: 'report', subgroup }, members)) as unknown as Report[];
    const counts = reports.map((r) => r.delivered).join(',');
    if (counts === last) break;
    last = counts;
  }
  return reports;
}
