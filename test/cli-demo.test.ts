// `squall demo` (npm start): the 3-member TicketBook cluster runs, the race for A1 ends with exactly one
// successful booking, the survivors notice the killed member, it comes back from its data directory with
// the bookings as its state, and after a persisted booking every member is SIGKILLed at once and started
// again from its log, holding every booking it held; the demo ends by itself with every process it started
// gone and its data directories removed.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pattern } from './support/pattern.js';

const cli = fileURLToPath(new URL('../ts/cli/main.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('squall demo --seconds 3: one winner of the race for A1, survivors notice the kill and go on in view 1, a ' +
  'killed member comes back in view 2, all SIGKILLed at once restart from their logs holding every booking, exit 0, ' +
  'no process or data directory left', async () => {
  const child = spawn(process.execPath, [cli, 'demo', '--seconds', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  assert.is(code, 0, `exit code; stderr: ${err}`);
  assert.match(
    out, /^race result: exactly one booking of A1 succeeded \((alice|bob)'s\); every member says A1 is held by \1$/m);
  assert.match(
    out, /^t=3s .* ordered commands\/s {3}bookings: member 0 [\d,]+ {2}member 1 [\d,]+ {2}member 2 [\d,]+$/m);
  assert.match(out, /seats: A1 (alice|bob) .* \(every member agrees\)$/m);
  assert.match(
    out,
    /^load stopped after [\d,]+ ordered bookings in 3 s; with A1 and the raced seats, every member holds [\d,]+$/m);
  for (const survivor of [0, 1]) assert.match(out, new RegExp(`^member ${survivor} noticed member 2 failed`, 'm'));
  for (const survivor of [0, 1]) {
    assert.match(out, new RegExp(`^member ${survivor} installed view 1 \\(members 0, 1\\)`, 'm'));
  }
  assert.match(
    out, /^member 0's ordered book\(B1\) in the new view: member 0 says true, member 1 says true \(version 1\.\d+\)$/m);
  assert.match(out, pattern([
    /^member 2 \(pid \d+\) came back and entered view 2 \(members 0, 1, 2\) in [\d.]+ m?s: /,
    /its TicketBook rebuilt from its own log, the bookings it missed received as state$/,
  ], 'm'));
  assert.match(out, pattern([
    /^bookings: member 0 ([\d,]+) {2}member 1 \1 {2}member 2 \1; /,
    /A1 held by (alice|bob) at every member \(every member agrees\)$/,
  ], 'm'));
  assert.match(out, /^member 2's ordered book\(C1\): member 0 says true, member 1 says true, member 2 says true$/m);
  // the last act: a persisted booking, every member SIGKILLed at once, all started again from their logs
  const dir = /under (\S+) \(removed at the end\)$/m.exec(out)?.[1];
  assert.ok(dir, 'the demo names its data directory');
  assert.match(out, pattern([
    /^member 0's persisted book\(D1, erin\) → true \(version 2\.\d+\): /,
    /it returned once durable in every member's log$/,
  ], 'm'));
  const each = (count: string, hash: string) =>
    [0, 1, 2].map((id) => `member ${id} ${count} bookings \\(sha256 ${hash}\\)`).join(' {2}');
  const held = new RegExp(`^before the kill: ${each('([\\d,]+)', '([0-9a-f]{16})')} \\(every member agrees\\)$`, 'm')
    .exec(out);
  assert.ok(held, `every member holds the same bookings before the kill:\n${out}`);
  assert.match(out, /^SIGKILL of members 0, 1, 2 at once: no member process is left/m);
  assert.match(out, pattern([
    /^members 0, 1, 2 started again \(pids \d+, \d+, \d+\), each TicketBook rebuilt from its own log: /,
    /view 3 \(members 0, 1, 2\) serving [\d.]+ m?s after the start$/,
  ], 'm'));
  assert.match(out, new RegExp(`^after the restart: ${each(held![1]!, held![2]!)} \\(every member agrees\\); ` +
    'every member holds exactly the bookings it held before the kill$', 'm'));
  assert.match(out, pattern([
    /^member 0's ordered book\(E1\) after the restart: /,
    /member 0 says true, member 1 says true, member 2 says true \(version 3\.\d+\)$/,
  ], 'm'));
  assert.match(err, /done/);
  const restarted = /^members 0, 1, 2 started again \(pids (\d+), (\d+), (\d+)\)/m.exec(out)!.slice(1);
  const pids = [
    ...out.matchAll(/^member \d {2}pid (\d+)/gm), ...out.matchAll(/^member \d \(pid (\d+)\) came back/gm),
  ].map((m) => Number(m[1])).concat(restarted.map(Number));
  assert.is(pids.length, 7, 'the demo names its 7 member processes');
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(pids.filter(alive), [], 'every member process the demo started has ended');
  assert.not.ok(existsSync(dir!), 'the data directories are removed');
});

test.run();
