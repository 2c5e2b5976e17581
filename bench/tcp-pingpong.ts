// The baseline for SST push latency: a plain TCP ping-pong between two Node processes on loopback, as a
// JavaScript developer would write it (net sockets, Nagle off, 8-byte messages). This file is both the
// echo child (run with --echo) and the function the parent uses to measure round trips.

import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

if (process.argv.includes('--echo')) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}

/** Round-trip times in ns of `samples` 8-byte pings after `warmup` unrecorded ones. */
export async function tcpPingPong(samples: number, warmup: number): Promise<number[]> {
  const child = fork(self, ['--echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`tcp echo child exited (${code})`)));
    });
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    const rtt: number[] = [];
    const ping = Buffer.alloc(8);
    await new Promise<void>((resolve, reject) => {
      let i = 0, t0 = 0n, got = 0;
      const send = () => { t0 = process.hrtime.bigint(); got = 0; ping.writeUInt32LE(i); socket.write(ping); };
      socket.on('data', (d) => {
        got += d.length;
        if (got < 8) return;
        const t = Number(process.hrtime.bigint() - t0);
        if (i >= warmup) rtt.push(t);
        if (++i >= samples + warmup) resolve(); else send();
      });
      socket.on('error', reject);
      send();
    });
    socket.destroy();
    return rtt;
  } finally {
    child.kill();
  }
}
