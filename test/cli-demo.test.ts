// `squall demo` (npm start): the 3-member TicketBook cluster runs, the race for A1 ends with exactly one
// successful booking, the survivors notice the killed member, a new member joins with the bookings as its
// state, and the demo ends by itself with every process it started gone.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
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
  'joiner gets the state in view 2, exit 0, no process left', async () => {
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
    /^member 3 \(pid \d+\) joined view 2 \(members 0, 1, 3\) in \d+ ms, /,
    /its TicketBook restored from member 0's snapshot$/,
  ], 'm'));
  assert.match(out, pattern([
    /^bookings: member 0 ([\d,]+) {2}member 1 \1 {2}member 3 \1; /,
    /A1 held by (alice|bob) at every member \(every member agrees\)$/,
  ], 'm'));
  assert.match(out, /^member 3's ordered book\(C1\): member 0 says true, member 1 says true, member 3 says true$/m);
  assert.match(err, /done/);
  const pids = [
    ...out.matchAll(/^member \d {2}pid (\d+)/gm), ...out.matchAll(/^member \d \(pid (\d+)\) joined/gm)
  ].map((m) => Number(m[1]));
  assert.is(pids.length, 4, 'the demo names its 4 member processes');
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(pids.filter(alive), [], 'every member process the demo started has ended');
});

test.run();
