// The emulated network of real hosts: members in network namespaces, veth links to a bridge in a namespace
// of its own, tbf caps both ways, links taken down and up, and teardown whatever happens to the process that
// built it. Real kernel, real TCP between node processes forked inside the namespaces; nothing is mocked.
//
// Needs root, iproute2 and the kernel's netns/veth/bridge/tbf support: without them every test is skipped
// and the reason printed. Rates are counted by the receiver (TCP payload, ≈96% of the tbf cap at MTU 1500).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { ClosedError, ConfigError } from '../ts/errors.js';
import { listNamespaces } from '../ts/netns/commands.js';
import { EmulatedNetwork, netnsSupport, removeStaleNetworks } from '../ts/netns/emulated-network.js';
import { endProbe, measureFlows, measureTcp, nextMessage, probePath } from '../ts/netns/throughput.js';

const support = netnsSupport();
if (!support.ok) console.log(`netns: every test skipped — ${support.why}`);
const netTest = support.ok ? test : test.skip;

const Mbit = 1e6;
const mbit = (bps: number) => `${(bps / Mbit).toFixed(1)} Mbit/s`;

/**
 * A capped link carries about its cap: never more than 15% above it (tbf enforces that whatever the load),
 * and at least 70% of it. The floor is looser than the ceiling because the flows are user-space processes:
 * on a busy machine (npm run test:loaded, a shared CI box) they get less CPU and fall short of the cap —
 * 84% of it was seen with a busy process on each core — which says nothing about the link.
 */
function assertNear(bps: number, capMbit: number, what: string): void {
  const low = capMbit * 0.7 * Mbit, high = capMbit * 1.15 * Mbit;
  assert.ok(bps >= low && bps <= high, `${what}: measured ${mbit(bps)}, expected ${capMbit} Mbit/s (-30%, +15%)`);
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rejects(fn: () => Promise<unknown>, check: (e: Error) => boolean): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.ok(check(err as Error), `rejected with an unexpected error: ${(err as Error).message}`);
    return;
  }
  assert.unreachable('expected a rejection');
}

const alive = (pid: number) => {
  try { process.kill(pid, 0); return true; } catch { return false; }
};

async function withNetwork(
  options: Parameters<typeof EmulatedNetwork.create>[0], body: (net: EmulatedNetwork) => Promise<void>
): Promise<void> {
  const net = await EmulatedNetwork.create(options);
  try {
    await body(net);
  } finally {
    await net.destroy();
  }
}

/** Echo servers on every host; returns their ports. The servers end at destroy(). */
async function echoServers(net: EmulatedNetwork): Promise<number[]> {
  return Promise.all(net.hosts.map(async (h) => {
    const server = net.fork(h.index, probePath, ['echo-server', '0']);
    return (await nextMessage(server, 'listening', 10_000)).port;
  }));
}

async function echo(net: EmulatedNetwork, from: number, to: number, port: number, timeoutMs: number) {
  const client = net.fork(
    from, probePath,
    ['echo-client', net.hosts[to]!.address, String(port), `hello ${to} from ${from}`, String(timeoutMs)]);
  try {
    return await nextMessage(client, 'echo', timeoutMs + 10_000);
  } finally {
    await endProbe(client);
  }
}

netTest('netns: 3 hosts — a process spawned in each sees only its own address and its loopback', async () => {
  await withNetwork({ members: 3 }, async (net) => {
    assert.is(new Set(net.hosts.map((h) => h.namespace)).size, 3, 'one namespace per host');
    for (const h of net.hosts) {
      const child = net.spawn(h.index, 'ip', ['-4', '-o', 'addr', 'show'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
      const code = await new Promise((r) => child.on('close', r));
      assert.is(code, 0);
      assert.ok(out.includes(`inet ${h.address}/24`), `host ${h.index} has ${h.address}: ${out}`);
      assert.ok(/lo\s+inet 127\.0\.0\.1/.test(out), `host ${h.index} has its loopback up: ${out}`);
      const lines = out.trim().split('\n');
      assert.is(lines.length, 2, `host ${h.index} has exactly lo and its link: ${out}`);
    }
  });
});

netTest('netns: 3 hosts — every ordered pair opens a TCP connection and exchanges a message', async () => {
  await withNetwork({ members: 3, rate: '1gbit' }, async (net) => {
    const ports = await echoServers(net);
    const pairs = net.hosts.flatMap((a) => net.hosts.filter((b) => b !== a).map((b) => [a.index, b.index] as const));
    const replies = await Promise.all(pairs.map(([from, to]) => echo(net, from, to, ports[to]!, 5000)));
    replies.forEach((r, k) => {
      const [from, to] = pairs[k]!;
      assert.ok(r.ok, `${from} → ${to}: ${r.ok ? '' : r.error}`);
      if (r.ok) assert.is(r.reply, `hello ${to} from ${from}`);
    });
  });
});

// The caps are well below what a veth pair carries on a CPU shared with other work (135–260 Mbit/s seen
// with every core busy), and "uncapped" only has to beat the cap's +15% tolerance clearly (1.3×), so the
// test holds on a loaded machine too.
netTest('netns: links capped at 50mbit carry about 50 Mbit/s each way at once; uncapped faster; setRate(20mbit) ' +
  'follows', async () => {
  await withNetwork({ members: 2, rate: '50mbit' }, async (net) => {
    const alone = await measureTcp(net, 0, 1);
    assertNear(alone, 50, '0 → 1 alone at 50mbit');
    const [there, back] = await measureFlows(net, [{ from: 0, to: 1 }, { from: 1, to: 0 }]);
    assertNear(there!.bitsPerSecond, 50, '0 → 1 while 1 → 0 runs');
    assertNear(back!.bitsPerSecond, 50, '1 → 0 while 0 → 1 runs');

    await net.setRate(undefined);
    assert.is(net.rateOf(0), undefined);
    const free = await measureTcp(net, 0, 1, { windowMs: 1000 });
    assert.ok(free > 1.3 * 50 * Mbit, `uncapped 0 → 1 measured ${mbit(free)}, expected clearly above 50 Mbit/s`);

    await net.setRate('20mbit');
    assert.is(net.rateOf(1), '20mbit');
    assertNear(await measureTcp(net, 0, 1), 20, '0 → 1 after setRate(20mbit)');
    const duplex = `${mbit(there!.bitsPerSecond)} + ${mbit(back!.bitsPerSecond)} duplex`;
    console.log(`  measured: 50mbit cap ${mbit(alone)} alone, ${duplex}; uncapped ${mbit(free)}`);
  });
});

netTest('netns: setRate on one link caps both its directions (member end and bridge end) and no other link',
  async () => {
  await withNetwork({ members: 3 }, async (net) => {
    await net.setRate('20mbit', 1);
    assert.equal([0, 1, 2].map((i) => net.rateOf(i)), [undefined, '20mbit', undefined]);
    // 0 → 1 is held only by the bridge's end of link 1, 1 → 0 only by host 1's own end. (Measured one
    // at a time: at once, 1 → 0's ACKs would queue behind 0 → 1's data in the bridge end's full queue,
    // as on a real link, and that is not what this test is about.)
    assertNear(await measureTcp(net, 0, 1, { windowMs: 1500 }), 20, 'into host 1 (bridge end of its link)');
    assertNear(await measureTcp(net, 1, 0, { windowMs: 1500 }), 20, 'out of host 1 (host end of its link)');
    const other = await measureTcp(net, 0, 2, { windowMs: 1000 });
    assert.ok(other > 1.3 * 20 * Mbit, `0 → 2 measured ${mbit(other)}: a cap on link 1 must not slow it`);
    await rejects(() => net.setRate('fast', 0), (e: Error) => e instanceof ConfigError && /fast/.test(e.message));
    await rejects(() => net.setRate('1gbit', 3),
      (e: Error) => e instanceof ConfigError && /out of range/.test(e.message));
  });
});

netTest('netns: setLinkUp(2, false) partitions host 2 — connections to and from it time out; up again restores them',
  async () => {
  await withNetwork({ members: 3 }, async (net) => {
    const ports = await echoServers(net);
    assert.ok((await echo(net, 0, 2, ports[2]!, 3000)).ok, 'reachable before');
    await net.setLinkUp(2, false);
    const [to2, from2, others] = await Promise.all([
      echo(net, 0, 2, ports[2]!, 1000), echo(net, 2, 1, ports[1]!, 1000), echo(net, 0, 1, ports[1]!, 3000),
    ]);
    assert.not.ok(to2.ok, '0 → 2 must fail while link 2 is down');
    assert.not.ok(from2.ok, '2 → 1 must fail while link 2 is down');
    assert.ok(others.ok, `0 → 1 is not partitioned: ${others.ok ? '' : others.error}`);
    await net.setLinkUp(2, true);
    const [back, out] = await Promise.all([echo(net, 0, 2, ports[2]!, 5000), echo(net, 2, 1, ports[1]!, 5000)]);
    assert.ok(back.ok, `0 → 2 after the link is up again: ${back.ok ? '' : back.error}`);
    assert.ok(out.ok, `2 → 1 after the link is up again: ${out.ok ? '' : out.error}`);
  });
});

const ours = async (namespaces: string[]) => (await listNamespaces()).filter((n) => namespaces.includes(n));

netTest('netns: destroy() ends every process in the network (tracked or not) and leaves no namespace behind',
  async () => {
  const net = await EmulatedNetwork.create({ members: 2 });
  const namespaces = [net.bridgeNamespace, ...net.hosts.map((h) => h.namespace)];
  let tracked: ChildProcess | undefined;
  try {
    assert.is((await ours(namespaces)).length, 3);
    tracked = net.spawn(0, 'sleep', ['30'], { stdio: 'ignore' });
    // A grandchild the network does not know about: started detached by a process inside host 1, which exits.
    const starter = net.spawn(1, process.execPath, ['-e',
      "const c = require('child_process').spawn('sleep', ['30'], { detached: true, stdio: 'ignore' }); c.unref(); " +
        "process.stdout.write(String(c.pid))"],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    starter.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    await new Promise((r) => starter.on('close', r));
    const orphan = Number(out.trim());
    assert.ok(orphan > 0 && alive(orphan), `the untracked sleep runs (pid ${out.trim()})`);
    await net.destroy();
    assert.ok(tracked.exitCode !== null || tracked.signalCode !== null, 'the tracked process ended');
    await waitFor('the untracked process inside the namespace ends', () => !alive(orphan), 2000);
    assert.equal(await ours(namespaces), [], 'no namespace left');
    await net.destroy(); // idempotent
    assert.throws(() => net.spawn(0, 'true', []), (e: Error) => e instanceof ClosedError);
  } finally {
    await net.destroy();
    if (tracked?.pid && alive(tracked.pid)) tracked.kill('SIGKILL');
  }
});

// ----------------------------------------------------------------------------- the creator dies or exits

const networkModule = new URL('../ts/netns/emulated-network.js', import.meta.url).href;

/** A node process that builds a 2-host network, starts a tracked sleep in host 0 and an untracked one in
 *  host 1, reports, and then: holds (until signalled, at most 20 s), exits without destroy(), or throws. */
const creatorScript = `
import { spawn } from 'node:child_process';
const [moduleUrl, mode] = process.argv.slice(1);
const { EmulatedNetwork } = await import(moduleUrl);
const net = await EmulatedNetwork.create({ members: 2 });
const tracked = net.spawn(0, 'sleep', ['20'], { stdio: 'ignore' });
const untracked = spawn('ip', ['netns', 'exec', net.hosts[1].namespace, 'sleep', '20'],
  { detached: true, stdio: 'ignore' });
untracked.unref();
setTimeout(() => process.exit(3), 20000);
const namespaces = [net.bridgeNamespace, ...net.hosts.map((h) => h.namespace)];
process.send({ namespaces, tracked: tracked.pid, untracked: untracked.pid }, () => {
  if (mode === 'exit') process.exit(0);
  if (mode === 'throw') throw new Error('deliberate crash after building a network');
});
`;

interface Creator {
  child: ChildProcess; namespaces: string[]; tracked: number; untracked: number; ended: Promise<void>
}

async function startCreator(mode: 'hold' | 'exit' | 'throw'): Promise<Creator> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', creatorScript, networkModule, mode], {
    stdio: ['ignore', 'ignore', mode === 'throw' ? 'ignore' : 'inherit', 'ipc'],
  });
  const ended = new Promise<void>((r) => child.once('exit', () => r()));
  const report = await new Promise<{ namespaces: string[]; tracked: number; untracked: number }>((resolve, reject) => {
    child.once('message', resolve as (m: unknown) => void);
    child.once('exit', (code, signal) => reject(new Error(`creator exited (${signal ?? code}) before reporting`)));
    setTimeout(() => reject(new Error('creator did not report within 15 s')), 15_000).unref();
  });
  return { child, ...report, ended };
}

function cleanUpCreator(c: Creator | undefined): void {
  if (!c) return;
  for (const pid of [c.child.pid, c.tracked, c.untracked]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
}

netTest('netns: the creator is SIGKILLed — its processes die with it, removeStaleNetworks() removes the rest',
  async () => {
  let c: Creator | undefined;
  try {
    c = await startCreator('hold');
    assert.is((await ours(c.namespaces)).length, 3);
    c.child.kill('SIGKILL');
    await c.ended;
    await waitFor('the tracked process dies with its parent (pdeathsig)', () => !alive(c!.tracked), 2000);
    assert.is((await ours(c.namespaces)).length, 3, 'SIGKILL cannot be caught: the namespaces are still there');
    assert.ok(alive(c.untracked), 'the untracked process still runs inside');
    assert.ok((await removeStaleNetworks()) >= 1, 'at least the crashed network was stale');
    assert.equal(await ours(c.namespaces), [], 'its namespaces are gone');
    await waitFor('the untracked process inside was killed', () => !alive(c!.untracked), 2000);
  } finally {
    cleanUpCreator(c);
  }
});

netTest('netns: the next create() removes the network of a SIGKILLed creator', async () => {
  let c: Creator | undefined;
  try {
    c = await startCreator('hold');
    c.child.kill('SIGKILL');
    await c.ended;
    const messages: string[] = [];
    await withNetwork({ members: 1, onProgress: (m) => messages.push(m) }, async () => {
      assert.equal(await ours(c!.namespaces), [], 'the crashed network is gone');
      assert.ok(
        messages.some((m) => /removed \d+ emulated network/.test(m)), `create() said so: ${messages.join(' | ')}`);
    });
  } finally {
    cleanUpCreator(c);
  }
});

const creatorEnds = [
  ['hold', 'is sent SIGTERM'], ['exit', 'exits without destroy()'], ['throw', 'dies of an uncaught exception'],
] as const;
for (const [mode, how] of creatorEnds) {
  netTest(`netns: the creator ${how} — its network and every process in it are gone`, async () => {
    let c: Creator | undefined;
    try {
      c = await startCreator(mode);
      if (mode === 'hold') c.child.kill('SIGTERM');
      await c.ended;
      if (mode === 'hold') assert.is(c.child.signalCode, 'SIGTERM', 'the creator still dies of the signal');
      assert.equal(await ours(c.namespaces), [], 'no namespace left');
      await waitFor('every process inside ended', () => !alive(c!.tracked) && !alive(c!.untracked), 2000);
    } finally {
      cleanUpCreator(c);
    }
  });
}

netTest('netns: create() refuses bad options with a ConfigError and builds nothing', async () => {
  const before = (await listNamespaces()).length;
  await rejects(() => EmulatedNetwork.create({ members: 0 }),
    (e: Error) => e instanceof ConfigError && /members/.test(e.message));
  await rejects(() => EmulatedNetwork.create({ members: 2, rate: '10 parsecs' }),
    (e: Error) => e instanceof ConfigError &&
    /parsecs/.test(e.message));
  assert.is((await listNamespaces()).length, before);
});

test.after(async () => {
  if (!support.ok) return;
  const left = (await listNamespaces()).filter((n) => n.startsWith(`squall-${process.pid}-`));
  assert.equal(left, [], 'this run left no namespace behind');
});

test.run();
