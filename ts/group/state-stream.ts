// A large state's bytes over a TCP connection of their own (issue 16). The mailboxes carry a state at the
// pace of the two main threads' round trips — one 1 MiB ring per pair, refilled as the reader's counter comes
// back — so a state of STREAM_MIN_BYTES or more goes instead over a plain TCP stream from the source to the
// recipient, where the kernel's socket buffers keep the bytes moving between turns of the event loops:
//
//   mailbox  begin-stream [u32 7][u32 chunkBytes][f64 totalBytes][i64 version][u32 chunks][u32 port]
//                         [u32 records][u32 0][32 B token]          source → recipient, the state's begin
//   stream   [32 B token]                                           recipient → source, once, on connecting
//            [u32 crc32 of chunk i] for every chunk, then the state's totalBytes, whole   source → recipient
//
// The source listens on its own host, port 0, for one connection: the token (32 random bytes, sent over the
// group's authenticated fabric) must be its first bytes, within STREAM_HELLO_MS; anything else is closed at
// once, at most MAX_WAITING connections are held, and the listener closes after the first good one or after
// the transfer's idle timeout. The recipient reads the CRCs, then lets the socket read straight into the
// state's buffer (no copy on the way), reads nothing past totalBytes, and checks each chunk's CRC as it
// completes; a connection that fails, ends early or goes silent for the idle timeout fails the transfer.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { StateTransferError } from '../errors.js';

/** States this large or larger go over a stream (smaller: the mailboxes, with no connection to make). */
export const STREAM_MIN_BYTES = 4 * 1024 * 1024;
export const BEGIN_STREAM = 7;
export const BEGIN_STREAM_BYTES = 72;
const TOKEN_BYTES = 32;
/** How long a connection to the source's listener may take to present its token. */
const STREAM_HELLO_MS = 5_000;
/** Connections a listener holds at once (the rest are closed as they come). */
const MAX_WAITING = 16;
/** The most the source hands the socket at once, and the most the recipient reads at once. */
const WRITE_BYTES = 1024 * 1024;
const READ_BYTES = 4 * 1024 * 1024;

/** A begin-stream record's fields. */
export interface StreamBegin {
  chunkBytes: number; totalBytes: number; version: bigint; chunks: number; port: number; records: boolean;
  token: Uint8Array;
}

export function encodeBeginStream(b: StreamBegin): Uint8Array {
  const record = new Uint8Array(BEGIN_STREAM_BYTES);
  const view = new DataView(record.buffer);
  view.setUint32(0, BEGIN_STREAM, true);
  view.setUint32(4, b.chunkBytes, true);
  view.setFloat64(8, b.totalBytes, true);
  view.setBigInt64(16, b.version, true);
  view.setUint32(24, b.chunks, true);
  view.setUint32(28, b.port, true);
  view.setUint32(32, b.records ? 1 : 0, true);
  record.set(b.token, 40);
  return record;
}

/** A begin-stream record's fields, or null when `record` is not a well-formed one. */
export function decodeBeginStream(record: Uint8Array): StreamBegin | null {
  if (record.byteLength !== BEGIN_STREAM_BYTES) return null;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (view.getUint32(0, true) !== BEGIN_STREAM) return null;
  const port = view.getUint32(28, true), records = view.getUint32(32, true);
  if (port === 0 || port > 65535 || records > 1) return null;
  return {
    chunkBytes: view.getUint32(4, true), totalBytes: view.getFloat64(8, true), version: view.getBigInt64(16, true),
    chunks: view.getUint32(24, true), port, records: records === 1, token: record.slice(40, 40 + TOKEN_BYTES),
  };
}

/**
 * The source's listener for one recipient: `port` and `token` go into the begin-stream record; send() writes
 * the chunks' CRCs and then the state once the recipient connected with the token.
 */
export class StreamOffer {
  readonly token = new Uint8Array(randomBytes(TOKEN_BYTES));
  readonly #server: Server;
  readonly #accepted: Promise<Socket>;

  private constructor(server: Server, timeoutMs: number) {
    this.#server = server;
    this.#accepted = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new StateTransferError(`the recipient did not connect to this state's stream within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      timer.unref();
      server.on('connection', (socket) => {
        socket.on('error', () => {}); // a stranger's reset, or the recipient's: the transfer's own wait says so
        socket.setTimeout(STREAM_HELLO_MS, () => socket.destroy());
        let hello = Buffer.alloc(0);
        const onData = (data: Buffer) => {
          hello = Buffer.concat([hello, data]);
          if (hello.byteLength < TOKEN_BYTES) return;
          socket.off('data', onData);
          socket.setTimeout(0);
          if (hello.byteLength !== TOKEN_BYTES || !timingSafeEqual(hello, this.token)) {
            socket.destroy();
            return;
          }
          clearTimeout(timer);
          this.close(); // one recipient per offer: nobody else gets in
          resolve(socket);
        };
        socket.on('data', onData);
      });
    });
    this.#accepted.catch(() => {}); // send() awaits it and sees the rejection there
  }

  /** Listens on `host` (this member's fabric host), port 0; the offer lapses after `timeoutMs`. */
  static async open(host: string, timeoutMs: number): Promise<StreamOffer> {
    const server = createServer({ noDelay: true });
    server.maxConnections = MAX_WAITING; // strangers holding connections open cannot pile up past it
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0 }, () => { server.off('error', reject); resolve(); });
    });
    server.on('error', () => {}); // after listening: a failed accept is the connection's business
    return new StreamOffer(server, timeoutMs);
  }

  get port(): number { return (this.#server.address() as { port: number }).port; }

  /** Writes the chunks' CRCs, then `bytes`, to the recipient, then ends. */
  async send(bytes: Uint8Array, crcs: Uint32Array): Promise<void> {
    const socket = await this.#accepted;
    let written = false;
    const failed = new Promise<void>((resolve, reject) => {
      socket.once('error', (error) => reject(new StateTransferError(`the state's stream broke: ${error.message}`)));
      // The recipient closes it once the last byte is in: early, that is a failure.
      socket.once('close', () => (written ? resolve()
        : reject(new StateTransferError('the recipient closed the state\'s stream early'))));
    });
    failed.catch(() => {}); // raced below; a rejection after the race must not go unhandled
    try {
      const crcBytes = new Uint8Array(crcs.byteLength);
      const view = new DataView(crcBytes.buffer);
      crcs.forEach((crc, i) => view.setUint32(4 * i, crc, true));
      socket.write(crcBytes);
      for (let at = 0; at < bytes.byteLength; at += WRITE_BYTES) {
        const more = socket.write(bytes.subarray(at, Math.min(bytes.byteLength, at + WRITE_BYTES)));
        // Once the last piece is handed over, the recipient may have it all and close before it drains.
        written = at + WRITE_BYTES >= bytes.byteLength;
        if (!more) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), failed]);
      }
      await Promise.race([new Promise<void>((resolve) => socket.end(resolve)), failed]);
    } finally {
      socket.destroy();
    }
  }

  close(): void {
    this.#server.close();
  }
}

/** What the recipient's stream calls as the bytes arrive. */
export interface StreamSink {
  /** The state's buffer (totalBytes long): the socket reads into it. */
  buffer: Uint8Array;
  chunkBytes: number;
  chunks: number;
  /** Chunk `index` arrived whole, with this CRC (the sink checks it). */
  chunk(index: number, crc: number): void;
  /** Something arrived (the idle timer starts again). */
  alive(): void;
  fail(error: StateTransferError): void;
}

/**
 * Connects to the source's stream at `host`:`port`, presents the token, reads the chunks' CRCs and then lets
 * the socket read the state straight into `sink.buffer`, reporting each chunk as it completes. Returns a
 * function that closes the connection.
 */
export function receiveStream(host: string, port: number, token: Uint8Array, sink: StreamSink): () => void {
  const crcBytes = new Uint8Array(4 * sink.chunks);
  const crcView = new DataView(crcBytes.buffer);
  const total = sink.buffer.byteLength;
  let crcsIn = 0, received = 0, reported = 0;
  const target = Buffer.from(sink.buffer.buffer, sink.buffer.byteOffset, total);
  const socket = connect({
    host, port, noDelay: true,
    onread: {
      // The CRCs first, into their own buffer; then the state, into its place (never past its end).
      buffer: () => (crcsIn < crcBytes.byteLength ? Buffer.from(crcBytes.buffer, crcsIn)
        : target.subarray(received, received + Math.min(READ_BYTES, total - received))),
      callback: (n) => { onRead(n); return true; },
    },
  });
  const fail = (why: string) => {
    socket.destroy();
    sink.fail(new StateTransferError(
      `the state's stream from ${host}:${port}: ${why}; the member joins again to retry`));
  };
  socket.on('connect', () => socket.write(token));
  socket.on('error', (error) => fail(error.message));
  const onRead = (n: number): void => {
    sink.alive();
    if (crcsIn < crcBytes.byteLength) {
      crcsIn += n;
      return;
    }
    received += n;
    for (; reported < sink.chunks; reported++) { // the chunks this read completed
      const end = Math.min(total, (reported + 1) * sink.chunkBytes);
      if (received < end) break;
      sink.chunk(reported, crcView.getUint32(4 * reported, true));
    }
    if (received === total) socket.destroy(); // nothing past the state is read: it is whole
  };
  socket.on('end', () => {
    if (received < total) fail(`it ended after ${received} of ${total} bytes`);
  });
  return () => socket.destroy();
}
