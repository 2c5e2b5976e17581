// A large state's bytes over a TCP connection of their own (issue 16). The mailboxes carry a state at the
// pace of the two main threads' round trips — one 1 MiB ring per pair, refilled as the reader's counter comes
// back — so a state of STREAM_MIN_BYTES or more goes instead over a plain TCP stream from the source to the
// recipient, where the kernel's socket buffers keep the bytes moving between turns of the event loops:
//
//   mailbox  begin-stream [u32 7][u32 chunkBytes][f64 totalBytes][i64 version][u32 chunks][u32 port]
//                         [u32 records][32 B token]                 source → recipient, the state's begin
//   stream   [32 B token]                                           recipient → source, once, on connecting
//            the chunk records, in order, as the mailboxes carry them ([u32 2][u32 index][u32 crc][u32 0][bytes])
//
// The source listens on its own host, port 0, for one connection: the token (32 random bytes, sent over the
// group's authenticated fabric) must be its first bytes, within STREAM_HELLO_MS; anything else is closed at
// once, and the listener closes after the first good one or after the transfer's idle timeout. The
// recipient checks each record's kind and index (in order), writes the bytes straight into the state's
// buffer, reads nothing past the last announced chunk, and then checks every chunk's CRC as for the
// mailboxes; a connection that fails, ends early or goes silent for the idle timeout fails the transfer.

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
const CHUNK = 2;
const CHUNK_HEADER = 16;

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
 * the chunk records once the recipient connected with the token.
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
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0 }, () => { server.off('error', reject); resolve(); });
    });
    server.on('error', () => {}); // after listening: a failed accept is the connection's business
    return new StreamOffer(server, timeoutMs);
  }

  get port(): number { return (this.#server.address() as { port: number }).port; }

  /** Writes `chunks` records (header + bytes, from `bytes` in chunkBytes pieces) to the recipient, then ends. */
  async send(bytes: Uint8Array, chunkBytes: number, crcs: Uint32Array): Promise<void> {
    const socket = await this.#accepted;
    let written = false;
    const failed = new Promise<void>((resolve, reject) => {
      socket.once('error', (error) => reject(new StateTransferError(`the state's stream broke: ${error.message}`)));
      // The recipient closes it once the last chunk is in: early, that is a failure.
      socket.once('close', () => (written ? resolve()
        : reject(new StateTransferError('the recipient closed the state\'s stream early'))));
    });
    failed.catch(() => {}); // raced below; a rejection after the race must not go unhandled
    try {
      for (let i = 0; i < crcs.length; i++) {
        const header = new Uint8Array(CHUNK_HEADER);
        const view = new DataView(header.buffer);
        view.setUint32(0, CHUNK, true);
        view.setUint32(4, i, true);
        view.setUint32(8, crcs[i]!, true);
        socket.write(header);
        const more = socket.write(bytes.subarray(i * chunkBytes, Math.min(bytes.byteLength, (i + 1) * chunkBytes)));
        // Once the last chunk is handed over, the recipient may have it all and close before it drains.
        written = i === crcs.length - 1;
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

/** What the recipient's stream calls as the records arrive. */
export interface StreamSink {
  /** The state's buffer (totalBytes long), where chunk `i` goes at i × chunkBytes. */
  buffer: Uint8Array;
  chunkBytes: number;
  chunks: number;
  /** Chunk `index` arrived whole, with this CRC (checked later, with the rest). */
  chunk(index: number, crc: number, bytes: number): void;
  /** Something arrived (the idle timer starts again). */
  alive(): void;
  fail(error: StateTransferError): void;
}

/**
 * Connects to the source's stream at `address` (host and port), presents the token and writes what arrives
 * into `sink`, checking every record's header as it comes. Returns a function that closes the connection.
 */
export function receiveStream(host: string, port: number, token: Uint8Array, sink: StreamSink): () => void {
  const socket = connect({ host, port, noDelay: true });
  const fail = (why: string) => {
    socket.destroy();
    sink.fail(new StateTransferError(
      `the state's stream from ${host}:${port}: ${why}; the member joins again to retry`));
  };
  socket.on('connect', () => socket.write(token));
  socket.on('error', (error) => fail(error.message));
  const header = new Uint8Array(CHUNK_HEADER);
  const headerView = new DataView(header.buffer);
  let index = 0, inHeader = 0, inChunk = 0, chunkLength = 0, crc = 0;
  const lengthOf = (i: number) => Math.min(sink.chunkBytes, sink.buffer.byteLength - i * sink.chunkBytes);
  socket.on('data', (data: Buffer) => {
    sink.alive();
    let at = 0;
    while (at < data.byteLength) {
      if (index >= sink.chunks) { // nothing past the announced chunks is read: the state is whole
        socket.destroy();
        return;
      }
      if (inHeader < CHUNK_HEADER) {
        const n = Math.min(CHUNK_HEADER - inHeader, data.byteLength - at);
        header.set(data.subarray(at, at + n), inHeader);
        inHeader += n;
        at += n;
        if (inHeader < CHUNK_HEADER) break;
        if (headerView.getUint32(0, true) !== CHUNK || headerView.getUint32(4, true) !== index) {
          return fail(`record ${index} is not chunk ${index}`);
        }
        crc = headerView.getUint32(8, true);
        chunkLength = lengthOf(index);
        inChunk = 0;
      }
      const n = Math.min(chunkLength - inChunk, data.byteLength - at);
      sink.buffer.set(data.subarray(at, at + n), index * sink.chunkBytes + inChunk);
      inChunk += n;
      at += n;
      if (inChunk === chunkLength) {
        sink.chunk(index, crc, chunkLength);
        index++;
        inHeader = 0;
      }
    }
  });
  socket.on('end', () => { if (index < sink.chunks) fail(`it ended after ${index} of ${sink.chunks} chunks`); });
  return () => socket.destroy();
}
