// A tiny TCP tool run inside an emulated host (EmulatedNetwork.fork) by the netns tests and the throughput
// bench. It reports to its parent over IPC and exits when the parent goes away, so it can never outlive
// the run that started it.
//
//   echo-server [port]                         echoes every connection; reports {type:'listening', port}
//   echo-client host port message timeoutMs    sends message, waits for the echo; reports {type:'echo', ok, …}, exits
//   sink [port] warmupMs windowMs               per connection, after warmupMs from its first byte, counts the
//                                              bytes of the next windowMs, reports {type:'rate', …} and resets it
//   source host port streams                   opens `streams` connections and writes until they are closed;
//                                              reports {type:'source-done', bytes} and exits

import { connect, createServer, type Socket } from 'node:net';

export type ProbeMessage =
  | { type: 'listening'; port: number }
  | { type: 'echo'; ok: true; reply: string; ms: number }
  | { type: 'echo'; ok: false; error: string; ms: number }
  | { type: 'rate'; bitsPerSecond: number; bytes: number; ms: number; complete: boolean }
  | { type: 'source-done'; bytes: number; errors: string[] };

function report(message: ProbeMessage, then?: () => void): void {
  if (process.send) process.send(message, undefined, {}, () => then?.());
  else {
    process.stdout.write(JSON.stringify(message) + '\n');
    then?.();
  }
}

function listen(port: number, onConnection: (socket: Socket) => void): void {
  const server = createServer(onConnection);
  server.listen(port, '0.0.0.0', () => {
    const address = server.address();
    report({ type: 'listening', port: typeof address === 'object' && address ? address.port : port });
  });
}

function echoServer(port: number): void {
  listen(port, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
}

function echoClient(host: string, port: number, message: string, timeoutMs: number): void {
  const started = performance.now();
  const ms = () => performance.now() - started;
  let done = false;
  const finish = (m: ProbeMessage) => {
    if (done) return;
    done = true;
    socket.destroy();
    report(m, () => process.exit(0));
  };
  const socket = connect({ host, port, timeout: timeoutMs });
  let reply = '';
  socket.setEncoding('utf8');
  socket.on('connect', () => socket.write(message));
  socket.on('data', (d: string) => {
    reply += d;
    if (reply.length >= message.length) finish({ type: 'echo', ok: true, reply, ms: ms() });
  });
  socket.on('timeout', () => finish({ type: 'echo', ok: false, error: `no echo within ${timeoutMs} ms`, ms: ms() }));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    finish({ type: 'echo', ok: false, error: err.code ?? err.message, ms: ms() });
  });
  socket.on('close', () => finish({ type: 'echo', ok: false, error: 'closed before the echo', ms: ms() }));
  const timedOut = () => finish({ type: 'echo', ok: false, error: `no echo within ${timeoutMs} ms`, ms: ms() });
  setTimeout(timedOut, timeoutMs).unref();
}

function sink(port: number, warmupMs: number, windowMs: number): void {
  listen(port, (socket) => {
    let bytes = 0;
    let windowStart: { at: number; bytes: number } | null = null;
    let reported = false;
    const finish = (complete: boolean) => {
      if (reported) return;
      reported = true;
      const start = windowStart ?? { at: performance.now(), bytes };
      const ms = performance.now() - start.at;
      const counted = bytes - start.bytes;
      report({ type: 'rate', bitsPerSecond: ms > 0 ? (counted * 8) / (ms / 1000) : 0, bytes: counted, ms, complete });
      socket.destroy();
    };
    socket.on('data', (d: Buffer) => {
      if (bytes === 0) {
        setTimeout(() => {
          windowStart = { at: performance.now(), bytes };
          setTimeout(() => finish(true), windowMs);
        }, warmupMs);
      }
      bytes += d.length;
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

function source(host: string, port: number, streams: number): void {
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  let bytes = 0;
  let open = streams;
  const errors: string[] = [];
  for (let s = 0; s < streams; s++) {
    const socket = connect({ host, port });
    const pump = () => {
      while (socket.write(chunk)) bytes += chunk.length;
      bytes += chunk.length;
    };
    socket.on('connect', pump);
    socket.on('drain', pump);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') errors.push(err.code ?? err.message);
    });
    socket.on('close', () => {
      if (--open === 0) report({ type: 'source-done', bytes, errors }, () => process.exit(0));
    });
  }
}

process.on('disconnect', () => process.exit(0));

const [role, ...rest] = process.argv.slice(2);
const num = (i: number, fallback: number) => (rest[i] === undefined ? fallback : Number(rest[i]));
switch (role) {
  case 'echo-server': echoServer(num(0, 0)); break;
  case 'echo-client': echoClient(rest[0]!, num(1, 0), rest[2] ?? 'hello', num(3, 2000)); break;
  case 'sink': sink(num(0, 0), num(1, 250), num(2, 2000)); break;
  case 'source': source(rest[0]!, num(1, 0), num(2, 1)); break;
  default:
    process.stderr.write(`tcp-probe: unknown role '${role}' (echo-server, echo-client, sink, source)\n`);
    process.exit(2);
}
