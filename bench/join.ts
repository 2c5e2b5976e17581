// `squall bench join`: how long a new member takes to enter a running group and catch up its state (issue 5).
// A group of `members` processes replicates a KeyValueStore holding `stateBytes` (1 MiB values); a new
// process joins through the members' contact addresses, and
//
//   joinMs        from Group.join called in the joiner to it resolving: contact, redirect, the view
//                 change, connecting, and the store's snapshot sent, checksummed and restored
//   mbytesPerSec  stateBytes / joinMs
//   streamMs      at the joiner, from the source's first state record arriving to its last chunk: the
//                 snapshot's bytes on the way (the source took snapshot() and checksummed it before)
//   streamMBps    the snapshot's bytes / streamMs — the transfer's own rate
//   stateMs       at the joiner, from awaiting the state to its object restored (stateReceived's ms)
//
// as medians over `runs` fresh groups. Each run also checks that the joiner's store equals the others'.
// The members suspect a silent peer after SUSPICION_TIMEOUT_MS, not the library's 100 ms: no member fails
// here, and on a loaded machine (this bench under ASan, say) a member stalled at start-up for 100 ms would
// be suspected, ending the run in a view change the benchmark did not ask for.

import { resolveFabricChoice, type FabricChoice } from '../ts/fabric/choice.js';
import { fabricLabel } from '../ts/fabric/native.js';
import { resolveSecret } from '../ts/group/credential.js';
import { GroupCluster } from '../ts/harness/cluster.js';
import { median, round } from './stats.js';
import { progressWhile } from '../ts/cli/progress.js';
import { formatBytes, formatSeconds } from '../ts/cli/units.js';

export interface JoinBenchOptions {
  members: number;
  stateBytes: number;
  runs: number;
  fabric?: FabricChoice;
  /** The members' suspicion timeout (default SUSPICION_TIMEOUT_MS). */
  suspicionTimeoutMs?: number;
  /** The configuration's contactTls (the members and the joiner take the key from the environment). */
  contactTls?: boolean;
  onProgress?: (message: string) => void;
}

export interface JoinBenchResult {
  members: number;
  fabric: string;
  stateBytes: number;
  /** The processes held the group's key (SQUALL_SECRET or SQUALL_SECRET_FILE): the join was authenticated. */
  authenticated: boolean;
  /** The contact channel was TLS 1.3. */
  contactTls: boolean;
  /** Medians over the runs. */
  joinMs: number;
  mbytesPerSec: number;
  streamMs: number;
  streamMBps: number;
  stateMs: number;
  runs: Array<{ joinMs: number; streamMs: number; stateMs: number; snapshotBytes: number; storesAgree: boolean }>;
}

const SUSPICION_TIMEOUT_MS = 1000;
const MiB = 1 << 20;

export async function runJoinBench(o: JoinBenchOptions): Promise<JoinBenchResult> {
  const progress = o.onProgress ?? (() => {});
  const runs: JoinBenchResult['runs'] = [];
  for (let i = 0; i < o.runs; i++) {
    const step = (m: string) => progress(`[${i + 1}/${o.runs}] ${m}`);
    const run = await oneRun(o, step);
    const stream = run.streamMs > 0 ? `, the state's ${formatBytes(run.snapshotBytes)} streamed in `
      + `${formatSeconds(run.streamMs / 1000)}` : '';
    step(`joined in ${formatSeconds(run.joinMs / 1000)}${stream}${run.storesAgree ? '' : ' (STORES DISAGREE)'}`);
    runs.push(run);
  }
  const joinMs = median(runs.map((r) => r.joinMs));
  return {
    members: o.members, fabric: fabricLabel(resolveFabricChoice(o.fabric)), stateBytes: o.stateBytes,
    authenticated: resolveSecret({}) !== null, contactTls: o.contactTls === true,
    joinMs: round(joinMs), mbytesPerSec: round(o.stateBytes / 1e6 / (joinMs / 1000)),
    streamMs: round(median(runs.map((r) => r.streamMs))),
    streamMBps: round(median(runs.map((r) => (r.streamMs > 0 ? r.snapshotBytes / 1e6 / (r.streamMs / 1000) : 0)))),
    stateMs: round(median(runs.map((r) => r.stateMs))),
    runs: runs.map((r) => ({ ...r, joinMs: round(r.joinMs) })),
  };
}

async function oneRun(
  o: JoinBenchOptions, progress: (message: string) => void
): Promise<JoinBenchResult['runs'][number]> {
  const cluster = await progressWhile(progress, `starting ${o.members} group members`, () => GroupCluster.start({
    members: o.members, types: { kv: 'KeyValueStore' }, fabric: resolveFabricChoice(o.fabric),
    suspicionTimeoutMs: o.suspicionTimeoutMs ?? SUSPICION_TIMEOUT_MS,
    ...(o.contactTls ? { contactTls: true } : {}),
    subgroups: { kv: { shards: 1, members: { min: o.members, max: o.members + 1 } } },
  }));
  try {
    const value = Math.min(MiB, Math.max(1, o.stateBytes));
    const count = Math.ceil(o.stateBytes / value);
    if (o.stateBytes > 0) {
      await progressWhile(progress, `building the state: ${count} ordered puts of ${formatBytes(value)}`,
        cluster.request(cluster.members[0]!, { cmd: 'fill', subgroup: 'kv', method: 'put', count, bytes: value }));
    }
    const [joined] = await progressWhile(progress,
      `member ${o.members} joins and catches up ${formatBytes(o.stateBytes)}`, cluster.add([o.members]));
    const summaries = await Promise.all(cluster.members.map(async (m) => {
      const reply = await cluster.request(m, {
        cmd: 'query', subgroup: 'kv', member: m.id, method: 'summary', args: [],
      });
      return JSON.stringify(reply.value);
    }));
    const received = (joined!.received as Array<{ bytes: number; ms: number; streamMs: number }>)[0];
    return {
      joinMs: joined!.joinMs as number, streamMs: received?.streamMs ?? 0, stateMs: received?.ms ?? 0,
      snapshotBytes: received?.bytes ?? 0, storesAgree: summaries.every((x) => x === summaries[0]),
    };
  } finally {
    progress('stopping the members');
    await cluster.close();
  }
}
