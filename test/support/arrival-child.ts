// A process for test/fabric-arrival.test.ts: two fabrics in this process, the second with an arrival function
// (onArrival) on this — the main — thread, which the addon wakes through the loop's own async handle
// (native/loop_wake.h). Modes:
//   throw  the arrival function throws: the error must reach 'uncaughtException', as any callback's does;
//   leave  after the first arrival call, nothing is closed and nothing waits: the process must end by itself
//          (the wake-up keeps no loop alive) and tear down cleanly, exit code 0;
//   close  the fabric closes inside its own arrival call, and a write after that calls nothing more.
// Prints one line per event for the test to read.

import { WriteStatus } from '../../ts/fabric/fabric.js';
import { D, Member, connectPair, dataGrant, until } from './fabric-members.js';

const mode = process.argv[2];
const a = new Member(1), b = new Member(2);
await connectPair(a, b, [dataGrant(D, 4096)]);
let calls = 0;
if (mode === 'throw') {
  process.on('uncaughtException', (error) => {
    console.log(`uncaught: ${error.message}`);
    a.close();
    b.close();
  });
  b.fabric.onArrival([0], () => { calls++; throw new Error('arrival boom'); });
} else {
  b.fabric.onArrival([0], () => {
    calls++;
    console.log(`call ${calls}`);
    if (mode === 'close' && calls === 1) b.close();
  });
}
a.arena.u8[D] = 1;
if (a.fabric.write(2, D, 8) !== WriteStatus.Ok) throw new Error('the write was refused');
await until([a], () => calls > 0, 'the arrival call');
if (mode === 'close') {
  await new Promise((r) => setTimeout(r, 100));
  a.arena.u8[D] = 2;
  a.fabric.write(2, D, 8); // b is closed: the write fails or lands nowhere, and calls nothing
  await new Promise((r) => setTimeout(r, 200));
  console.log(`calls after close: ${calls}`);
  a.close();
}
if (mode === 'leave') console.log('leaving without closing');
