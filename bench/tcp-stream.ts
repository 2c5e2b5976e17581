// The baseline for RDMC throughput: one plain TCP stream of `bytes` between two Node processes (net
// sockets, 1 MiB writes from one preallocated buffer), timed from the first write to the sink's
// one-byte acknowledgement that it has every byte. This file is also the two children (--sink, --source).

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const CHUNK = 1 << 20;
const role = process.argv[2];

if (role === '--sink') {
  // argv: --sink host bytes → reports {port}; acks with one byte once `bytes` arrived
  const [host, total] = [process.argv[3]!, Number(process.argv[4])];
  const server = net.createServer((socket) => {
    let got = 0;
    socket.on('data', (d) => { got += d.length; if (got >= total) socket.write(Buffer.of(1)); });
    socket.on('error', () => {});
  });
  server.listen(0, host, () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
} else if (role === '--source') {
  // argv: --source host port bytes → reports {seconds}
  const [host, port, total] = [process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
  const chunk = Buffer.alloc(CHUNK, 7);
  const socket = net.connect(port, host, () => {
    const t0 = performance.now();
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent);
        sent += n;
        if (!socket.write(n === CHUNK ? chunk : chunk.subarray(0, n))) { socket.once('drain', pump); return; }
      }
    };
    socket.once('data', () => { process.send?.({ seconds: (performance.now() - t0) / 1000 }); socket.destroy(); });
    pump();
  });
  socket.on('error', (e) => { process.send?.({ error: e.message }); });
  process.on('disconnect', () => process.exit(0));
}

function firstMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m: T & { error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    child.once('exit', (code) => reject(new Error(`tcp stream child exited (${code})`)));
  });
}

/**
 * Seconds for one stream of `bytes` from host 0 to host 1. `forkAt(i, script, args)` starts a child on
 * host i (default: this host); `hostOf(i)` is the address host i listens on.
 */
export async function tcpStreamSeconds(bytes: number, options: {
  forkAt?: (index: number, script: string, args: string[]) => ChildProcess;
  hostOf?: (index: number) => string;
} = {}): Promise<number> {
  const forkAt = options.forkAt ?? ((_i: number, script: string, args: string[]) =>
    fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const hostOf = options.hostOf ?? (() => '127.0.0.1');
  const sink = forkAt(1, self, ['--sink', hostOf(1), String(bytes)]);
  try {
    const { port } = await firstMessage<{ port: number }>(sink);
    const source = forkAt(0, self, ['--source', hostOf(1), String(port), String(bytes)]);
    try {
      return (await firstMessage<{ seconds: number }>(source)).seconds;
    } finally {
      source.kill();
    }
  } finally {
    sink.kill();
  }
}
