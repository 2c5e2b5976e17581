// `squall demo` (npm start): three SST members as separate processes on loopback. Each keeps incrementing
// its own counter and pushing it; the demo prints every member's view of the table twice a second, then
// kills one member with SIGKILL and shows the survivors suspect it and carry on.

import { parseArgs } from 'node:util';
import { SstCluster } from '../harness/cluster.js';
import { cliArgs } from './args.js';
import { progressOnStderr } from './progress.js';

export async function run(argv: string[]): Promise<void> {
  const values = cliArgs('demo', () => parseArgs({ args: argv, options: { seconds: { type: 'string' } } }).values);
  const seconds = Number(values.seconds ?? 8);
  const progress = progressOnStderr('demo');
  progress('starting 3 SST members as processes on 127.0.0.1 (ports chosen by the system)');
  const cluster = await SstCluster.start({ members: 3, columns: { counter: { type: 'i64' } }, heartbeatIntervalMs: 10, suspicionTimeoutMs: 100 });
  try {
    for (const m of cluster.members) progress(`member ${m.id} listening on ${m.address}`);
    await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'spin', column: 'counter', batch: 50 })));
    progress('every member increments its counter and pushes it; each row below is one member\'s copy of the table');
    let previous: number[] | null = null;
    const show = async (alive: typeof cluster.members, label: string) => {
      const views = await Promise.all(alive.map((m) => cluster.request(m, { cmd: 'read', column: 'counter' })));
      const own = views.map((v, i) => (v.values as number[])[cluster.members.indexOf(alive[i]!)]!);
      const rates = own.map((v, i) => (previous ? `${Math.round((v - previous[i]!) * 2).toLocaleString()} pushes/s` : 'rate from the next sample'));
      previous = own;
      process.stdout.write(`${label}\n`);
      for (const [i, v] of views.entries()) {
        const cells = (v.values as number[]).map((x, j) => `m${cluster.members[j]!.id}=${String(x).padStart(9)}`).join('  ');
        process.stdout.write(`  member ${alive[i]!.id} sees  ${cells}   (${rates[i]})\n`);
      }
    };
    const half = Math.max(1, Math.floor(seconds));
    for (let t = 0; t < half; t++) {
      await new Promise((r) => setTimeout(r, 500));
      await show(cluster.members, `t=${((t + 1) / 2).toFixed(1)}s`);
    }
    const victim = cluster.members[2]!;
    progress(`SIGKILL member ${victim.id}`);
    const killedAt = performance.timeOrigin + performance.now();
    victim.process.kill('SIGKILL');
    const survivors = cluster.members.slice(0, 2);
    for (const s of survivors) {
      const e = await cluster.waitForEvent(s, (ev) => ev.type === 'event' && ev.name === 'suspected' && ev.args[0] === victim.id, 5000);
      progress(`member ${s.id} suspects member ${victim.id} after ${(e.atMs - killedAt).toFixed(1)} ms`);
    }
    previous = null;
    for (let t = 0; t < 4; t++) {
      await new Promise((r) => setTimeout(r, 500));
      await show(survivors, `after the kill, t=+${((t + 1) / 2).toFixed(1)}s`);
    }
    await Promise.all(survivors.map((m) => cluster.request(m, { cmd: 'stop-spin' })));
    progress('done');
  } finally {
    await cluster.close();
  }
}
