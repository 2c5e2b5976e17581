// Members closing one after another while the group is busy changing: during a view change (a member
// SIGKILLed), during a join and its state transfer, during a clean leave. Each close terminates the
// member's workers — warm spares among them, which may be loading the native addon or attaching the
// fabric at that moment — and tears down its fabric while the poller still delivers. Whatever the
// timing, no member may die by a signal: an abort in the native addon (node-addon-api's fatal
// "Error::ThrowAsJavaScriptException napi_throw" when a JS exception cannot be thrown into a terminating
// worker), an AddressSanitizer report under npm run test:asan (abort_on_error=1), or a crash. Every
// member must also exit by itself once asked to close.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCluster, type GroupClusterMember } from '../ts/harness/cluster.js';
import { onShm } from './support/crash.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A member asked to close must be gone by then (group.close() then process.exit). */
const EXIT_TIMEOUT_MS = 15_000;
/** State each store holds before the change: enough that a transfer takes a few chunks' time. */
const FILL = { count: 24, bytes: 32 * 1024 };

type Step = 'kill' | 'join' | 'leave';
interface Round { step: Step; delayMs: number }

/** Closes `m` cleanly (the harness's 'close': group.close(), then exit 0); resolves once it exited. */
async function close(cluster: GroupCluster, m: GroupClusterMember): Promise<void> {
  if (!m.exited) {
    const exited = new Promise<void>((resolve) => m.process.once('exit', () => resolve()));
    cluster.request(m, { cmd: 'close' }).catch(() => {}); // its reply may never come: it exits
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), EXIT_TIMEOUT_MS); });
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      m.process.kill('SIGKILL');
      assert.unreachable(`member ${m.id} did not exit within ${EXIT_TIMEOUT_MS} ms of being asked to close`);
    }
  }
}

async function round({ step, delayMs }: Round): Promise<string> {
  const cluster = await GroupCluster.start({
    members: 3, types: { kv: 'KeyValueStore' }, heartbeatIntervalMs: 10, suspicionTimeoutMs: 1000,
    subgroups: { kv: { shards: 1, members: { min: 1, max: 6 } } },
  });
  const killed = new Set<number>();
  try {
    await cluster.request(cluster.members[0]!, { cmd: 'fill', subgroup: 'kv', method: 'put', ...FILL });
    const [m0, m1, m2] = cluster.members as [GroupClusterMember, GroupClusterMember, GroupClusterMember];
    // The change under way…
    let change: Promise<unknown>;
    if (step === 'kill') {
      killed.add(m2.id);
      m2.process.kill('SIGKILL');
      change = Promise.resolve();
    } else if (step === 'join') {
      change = cluster.add([3], (id) => id, 20_000).catch(() => null); // it may fail: its contacts are closing
    } else {
      change = cluster.request(m2, { cmd: 'leave' }).catch(() => null);
    }
    // …and, `delayMs` into it, the members close one after another.
    await sleep(delayMs);
    await close(cluster, m1);
    await sleep(delayMs / 2);
    await close(cluster, m0);
    for (const m of cluster.members) await close(cluster, m); // the leaver or the joiner too, wherever it is
    await change; // settled: its member exited

    const died = cluster.members.filter((m) => !killed.has(m.id) && m.process.signalCode !== null);
    assert.equal(
      died.map((m) => `member ${m.id}: ${m.process.signalCode}`), [],
      `${step} after ${delayMs} ms: no member died by a signal`);
    return cluster.members.map((m) => `${m.id}:${killed.has(m.id) ? 'killed' : m.process.exitCode}`).join(' ');
  } finally {
    cluster.kill();
  }
}

/** Every step at a few timings. SQUALL_STRESS_ROUNDS=N runs the first N (npm run test:asan runs 4:
 *  each round takes about 4 s here, 12 s under ASan). */
const ROUNDS: Round[] = [
  { step: 'join', delayMs: 0 }, { step: 'kill', delayMs: 0 }, { step: 'leave', delayMs: 5 },
  { step: 'join', delayMs: 40 }, { step: 'kill', delayMs: 30 }, { step: 'leave', delayMs: 60 },
  { step: 'join', delayMs: 120 }, { step: 'kill', delayMs: 150 },
].slice(0, Number(process.env['SQUALL_STRESS_ROUNDS'] ?? Infinity)) as Round[];

(onShm() ? test.skip : test)('members close one after another during view changes, ' +
  `joins and transfers (${ROUNDS.length} rounds): none dies by a signal`, async () => {
  for (const r of ROUNDS) {
    const exits = await round(r);
    process.stdout.write(`  ${r.step} + close after ${r.delayMs} ms: exits ${exits}\n`);
  }
});

test.run();
