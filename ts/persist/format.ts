// The persistent log's on-disk format: file names, the record header and the snapshot header, with their
// checksums. Every number is little-endian; docs/persistence.md draws the same maps.
//
// A log directory holds:
//   identity.json              written once: which group, member, subgroup and shard the log belongs to
//   meta.json                  a small JSON document replaced atomically (writeMeta)
//   seg-<first version>.log    segments: records back to back, no file header; <first version> is the version
//                              of the segment's first record, 20 decimal digits (the names sort as numbers)
//   snap-<version>.snap        snapshots: one header and the snapshot's bytes
//   *.tmp                      a file being written atomically; removed at open (it never got renamed)
//
// Record (RECORD_HEADER_BYTES = 32, then the payload):
//   0   u32  magic 0x4C57_5153 ('SQWL' read as bytes S Q W L)
//   4   u32  bits 0..30: payload length in bytes (≤ MAX_PAYLOAD_BYTES); bit 31 (SYNC_START): the first record
//            a group commit wrote into this segment — every byte before it was fdatasync'ed before it was written
//   8   i64  version (≥ 0, strictly increasing through the log)
//   16  u64  hlc: the hybrid logical clock stamp (ms << 16 | logical)
//   24  u32  sender: the member id that sent the message
//   28  u32  CRC-32 (zlib's, ISO-HDLC) of the payload, then continued over bytes 0..27 (payload first, so the
//            sync-start bit can be set when the batch is cut without reading the payload again)
//   32  …    payload
//
// Snapshot (SNAPSHOT_HEADER_BYTES = 32, then the bytes):
//   0   u32  magic 0x4E53_5153 ('SQSN')
//   4   u32  CRC-32 of bytes 8..31 then of the snapshot's bytes
//   8   i64  version the snapshot is the state after
//   16  u64  hlc of that version
//   24  u64  length of the snapshot's bytes

import { crc32 } from 'node:zlib';

export const RECORD_MAGIC = 0x4c57_5153;
export const RECORD_HEADER_BYTES = 32;
/** Bit 31 of the length word: the record starts a group commit's bytes in its segment (see recovery.ts for what
 *  that proves). */
export const SYNC_START = 0x8000_0000;
export const SNAPSHOT_MAGIC = 0x4e53_5153;
export const SNAPSHOT_HEADER_BYTES = 32;
/** A record's payload limit: 1 GiB. A length field above it is damage, not a real record. */
export const MAX_PAYLOAD_BYTES = 1 << 30;
/** Versions and hlcs are stored in 64 bits. */
export const MAX_VERSION = (1n << 63n) - 1n;
export const MAX_HLC = (1n << 64n) - 1n;
export const MAX_SENDER = 0xffff_ffff;

export const IDENTITY_FILE = 'identity.json';
export const META_FILE = 'meta.json';
export const IDENTITY_FORMAT = 'squall-persistent-log/1';
const SEGMENT_NAME = /^seg-(\d{20})\.log$/;
const SNAPSHOT_NAME = /^snap-(\d{20})\.snap$/;

export function segmentName(firstVersion: bigint): string {
  return `seg-${firstVersion.toString().padStart(20, '0')}.log`;
}
export function snapshotName(version: bigint): string { return `snap-${version.toString().padStart(20, '0')}.snap`; }
/** The first version a segment's name gives, or null when the name is not a segment's. */
export function parseSegmentName(name: string): bigint | null {
  const m = SEGMENT_NAME.exec(name);
  return m ? BigInt(m[1]!) : null;
}
export function parseSnapshotName(name: string): bigint | null {
  const m = SNAPSHOT_NAME.exec(name);
  return m ? BigInt(m[1]!) : null;
}

/** Writes one record (header and payload) at `at` in `into`, not marked as a sync start; returns the payload's
 *  CRC-32, which markSyncStart needs. */
export function encodeRecord(into: Buffer, at: number, version: bigint, hlc: bigint, sender: number,
  payload: Uint8Array): number {
  into.writeUInt32LE(RECORD_MAGIC, at);
  into.writeUInt32LE(payload.length, at + 4);
  const view = viewOf(into);
  view.setBigInt64(into.byteOffset + at + 8, version, true);
  view.setBigUint64(into.byteOffset + at + 16, hlc, true);
  into.writeUInt32LE(sender, at + 24);
  into.set(payload, at + RECORD_HEADER_BYTES);
  const payloadCrc = crc32(payload);
  into.writeUInt32LE(crc32(into.subarray(at, at + 28), payloadCrc), at + 28);
  return payloadCrc;
}

/** Sets the sync-start bit of the record at `at` (whose payload's CRC-32 is `payloadCrc`) and its CRC again. */
export function markSyncStart(into: Buffer, at: number, payloadCrc: number): void {
  into.writeUInt32LE((into.readUInt32LE(at + 4) | SYNC_START) >>> 0, at + 4);
  into.writeUInt32LE(crc32(into.subarray(at, at + 28), payloadCrc), at + 28);
}

/** What checking the bytes at one offset found. */
export type RecordCheck =
  | { ok: true; bytes: number; version: bigint; hlc: bigint; sender: number; syncStart: boolean }
  | { ok: false; why: string };

/**
 * Checks the record that starts at `at` in `buf` (whose first `end` bytes are valid): magic, length, CRC.
 * Nothing on disk is trusted: a length is checked against the limit and the bytes at hand before it is used.
 */
export function checkRecord(buf: Buffer, at: number, end: number): RecordCheck {
  if (end - at < RECORD_HEADER_BYTES) {
    return { ok: false, why: `${end - at} bytes, less than a record header (${RECORD_HEADER_BYTES})` };
  }
  const magic = buf.readUInt32LE(at);
  if (magic !== RECORD_MAGIC) return { ok: false, why: `bad magic 0x${magic.toString(16).padStart(8, '0')}` };
  const word = buf.readUInt32LE(at + 4);
  const length = (word & ~SYNC_START) >>> 0;
  if (length > MAX_PAYLOAD_BYTES) return { ok: false, why: `payload length ${length} past the limit` };
  if (end - at < RECORD_HEADER_BYTES + length) {
    return { ok: false, why: `record of ${RECORD_HEADER_BYTES + length} bytes cut at ${end - at}` };
  }
  const payload = buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
  const crc = crc32(buf.subarray(at, at + 28), crc32(payload));
  if (crc !== buf.readUInt32LE(at + 28)) return { ok: false, why: 'CRC-32 mismatch' };
  const view = viewOf(buf);
  const version = view.getBigInt64(buf.byteOffset + at + 8, true);
  if (version < 0n) return { ok: false, why: `negative version ${version}` };
  return {
    ok: true, bytes: RECORD_HEADER_BYTES + length, version, hlc: view.getBigUint64(buf.byteOffset + at + 16, true),
    sender: buf.readUInt32LE(at + 24), syncStart: (word & SYNC_START) !== 0,
  };
}

/** A DataView of a buffer's whole ArrayBuffer, made once per ArrayBuffer: Buffer's own 64-bit accessors are written
 *  in JavaScript and cost several times more on the append path. Offsets into it add the buffer's byteOffset. */
const views = new WeakMap<ArrayBufferLike, DataView>();
function viewOf(buf: Buffer): DataView {
  let view = views.get(buf.buffer);
  if (view === undefined) {
    view = new DataView(buf.buffer);
    views.set(buf.buffer, view);
  }
  return view;
}

export function encodeSnapshotHeader(version: bigint, hlc: bigint, bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  header.writeUInt32LE(SNAPSHOT_MAGIC, 0);
  header.writeBigInt64LE(version, 8);
  header.writeBigUInt64LE(hlc, 16);
  header.writeBigUInt64LE(BigInt(bytes.length), 24);
  header.writeUInt32LE(crc32(bytes, crc32(header.subarray(8, 32))), 4);
  return header;
}

/** Decodes a whole snapshot file; a string says what is wrong with it. */
export function decodeSnapshot(file: Buffer): { version: bigint; hlc: bigint; bytes: Uint8Array } | string {
  if (file.length < SNAPSHOT_HEADER_BYTES) return `${file.length} bytes, less than a snapshot header`;
  if (file.readUInt32LE(0) !== SNAPSHOT_MAGIC) return 'bad magic';
  const length = file.readBigUInt64LE(24);
  if (length !== BigInt(file.length - SNAPSHOT_HEADER_BYTES)) {
    return `header says ${length} bytes, the file holds ${file.length - SNAPSHOT_HEADER_BYTES}`;
  }
  const bytes = file.subarray(SNAPSHOT_HEADER_BYTES);
  if (crc32(bytes, crc32(file.subarray(8, 32))) !== file.readUInt32LE(4)) return 'CRC-32 mismatch';
  const version = file.readBigInt64LE(8);
  if (version < 0n) return `negative version ${version}`;
  return { version, hlc: file.readBigUInt64LE(16), bytes };
}
