// onArrival on the main thread goes through the loop's own async handle (native/loop_wake.h), not a
// thread-safe function's queue: what a callback from the event loop must do — report a throw as uncaught,
// keep no process alive, survive the fabric closing inside it, tear down with the env — checked in child
// processes (test/support/arrival-child.ts), since each ends or breaks a whole process.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./support/arrival-child.js', import.meta.url));

function run(mode: string): { status: number | null; signal: string | null; out: string; err: string } {
  // Generous: the child only connects two fabrics on loopback, but the machine may be busy.
  const r = spawnSync(process.execPath, [child, mode], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

test('an arrival function that throws is reported as an uncaught exception', () => {
  const r = run('throw');
  assert.match(r.out, /^uncaught: arrival boom$/m, `stdout: ${r.out}\nstderr: ${r.err}`);
  assert.is(r.status, 0, r.err);
});

test('a fabric with an arrival function keeps no process alive, and tears down cleanly unclosed', () => {
  const r = run('leave');
  assert.match(r.out, /^call 1$/m, r.err);
  assert.match(r.out, /leaving without closing/);
  assert.is(r.signal, null, `ended by a signal: ${r.err}`);
  assert.is(r.status, 0, r.err);
});

test('the fabric closes inside its own arrival call: nothing is called after', () => {
  const r = run('close');
  assert.match(r.out, /^call 1$/m, r.err);
  assert.match(r.out, /^calls after close: 1$/m, `stdout: ${r.out}\nstderr: ${r.err}`);
  assert.is(r.status, 0, r.err);
});

test.run();
