// A piscina task for state transfer (ts/group/state-transfer.ts): the CRC-32 of each chunk of a snapshot
// held in shared memory, computed off the main thread — the sender before it sends, the receiver before it
// restores. zlib's crc32 is native (Node ≥ 20.15).

import { crc32 } from 'node:zlib';

export interface ChecksumTask {
  buffer: SharedArrayBuffer;
  /** Bytes of the snapshot in `buffer` (from offset 0). */
  length: number;
  chunkBytes: number;
}

/** One CRC-32 per chunk, in chunk order. */
export default function checksums({ buffer, length, chunkBytes }: ChecksumTask): Uint32Array {
  const bytes = new Uint8Array(buffer, 0, length);
  const chunks = Math.max(1, Math.ceil(length / chunkBytes));
  const out = new Uint32Array(chunks);
  for (let i = 0; i < chunks; i++) {
    out[i] = crc32(bytes.subarray(i * chunkBytes, Math.min(length, (i + 1) * chunkBytes)));
  }
  return out;
}
