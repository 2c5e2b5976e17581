// The wire form of replicated-object calls. Arguments and results are MessagePack (msgpackr); around them,
// a fixed binary header says what the message is (the compact form, all integers little-endian):
//
//   command  [0xc1, 1, m, 0][callId: u32 low, u32 high][method: m bytes of UTF-8][args]    ordered: channel.send
//   query    [0xc1, 2, m, 0][callId: u32 low, u32 high][method: m bytes of UTF-8][args]    direct, to the member asked
//   reply    [0xc1, 3, ok, 0][callId: u32 low, u32 high][version: i64][value or WireError] direct, back to the caller
//
// 0xc1 is the one byte MessagePack never uses, so a message of the earlier form — one MessagePack array,
// [1 | 2, callId, method, args] or [3, callId, ok, value, version] — cannot be taken for a compact one, and
// still decodes: a persistent subgroup's log written before holds commands of that form. A method name of
// more than MAX_COMPACT_METHOD bytes is still written in it.
//
// `callId` is a counter of the caller's, unique among its calls in flight. `version` is the version of the
// command the reply answers (ordered), or of the last command applied at the replica (query). `ok` is 1 when
// the method returned, 0 when it threw (the value is then a WireError).
//
// Why a header and not one MessagePack array: a call is one command and a reply from every member, and at
// tens of thousands of calls per second what the codec allocates shows as garbage collection. The header is
// read without allocating, the method name from a small cache, and the MessagePack part in place (no
// subarray per message: see unpackAt).
//
// Codec options, and why:
//   useRecords: true, mapsAsObjects: false   plain objects travel as records (their shape is written in each
//                                            message, so no shared structures are needed) and maps as maps,
//                                            so a Map comes back a Map and an object an object
//   moreTypes: true                          Set, Error, RegExp, typed arrays and Date keep their types
//   useBigIntExtension: true                 every bigint round-trips, even past 64 bits
//   copyBuffers: true                        a decoded Uint8Array owns its memory: delivered bytes are valid
//                                            during the delivery call only
//   encodeUndefinedAsNil: false              undefined stays undefined, null stays null
// What does not round-trip: functions (become undefined), class instances (arrive as plain objects),
// -0 (arrives as 0), extra properties of an Error such as `code` (the name, message and class survive).

import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { CodecError, MessageTooLargeError } from '../errors.js';

const packr = new Packr({
  useRecords: true,
  mapsAsObjects: false,
  moreTypes: true,
  useBigIntExtension: true,
  copyBuffers: true,
  encodeUndefinedAsNil: false,
});

export const enum Kind { Command = 1, Query = 2, Reply = 3 }

/** A thrown error as it travels back to the caller. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  /** For ERR_SQUALL_UNKNOWN_METHOD and ERR_SQUALL_NOT_A_QUERY: the class, its callable methods, its queries. */
  className?: string;
  callable?: string[];
  queries?: string[];
}

/** A call of a method, ordered (a command) or not (a query). The caller of a command is its sender. */
export interface CallEnvelope {
  kind: Kind.Command | Kind.Query;
  callId: number;
  method: string;
  args: unknown[];
}

export interface ReplyEnvelope {
  kind: Kind.Reply;
  callId: number;
  ok: boolean;
  /** The returned value when ok, else a WireError. */
  value: unknown;
  version: bigint;
}

export type Envelope = CallEnvelope | ReplyEnvelope;

/** Encodes any value the way calls do: for tests of what round-trips, and for users' snapshots. */
export function encodeValue(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch (cause) {
    throw new CodecError(`cannot encode value: ${(cause as Error).message}`, { cause });
  }
}

export function decodeValue(bytes: Uint8Array): unknown {
  return unpackFrom(bytes, 0);
}

function capped(what: string, bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.length > maxBytes) throw new MessageTooLargeError(what, bytes.length, maxBytes);
  return bytes;
}

/** First byte of the compact form: MessagePack never uses it. */
const COMPACT = 0xc1;
/** Bytes before a call's method name; where a reply's version is, and the bytes before its value. */
const CALL_HEADER = 12;
const VERSION_AT = 12;
const REPLY_HEADER = VERSION_AT + 8;
/** msgpackr reserves at most 255 bytes before what it packs: the header and the method name. */
export const MAX_COMPACT_METHOD = 255 - CALL_HEADER;
const TWO_32 = 2 ** 32;

/** Encodes a command or a query; throws CodecError or MessageTooLargeError before anything is sent. */
export function encodeCall(
  kind: Kind.Command | Kind.Query, callId: number, method: string, args: readonly unknown[], maxBytes: number
): Uint8Array {
  let bytes: Uint8Array;
  try {
    const name = methodBytes(method);
    if (name.length > MAX_COMPACT_METHOD) {
      bytes = packr.pack([kind, callId, method, args]); // the earlier form: any length
    } else {
      bytes = packr.pack(args, RESERVE_START_SPACE | (CALL_HEADER + name.length));
      writeHeader(bytes, kind, name.length, callId);
      bytes.set(name, CALL_HEADER);
    }
  } catch (cause) {
    throw new CodecError(`cannot encode the arguments of ${String(method)}: ${(cause as Error).message}`, { cause });
  }
  return capped(`a call of ${method}`, bytes, maxBytes);
}

/** Encodes a reply. A value that cannot be encoded or is too large throws; the caller sends an error reply instead. */
export function encodeReply(
  callId: number, ok: boolean, value: unknown, version: bigint, maxBytes: number
): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(value, RESERVE_START_SPACE | REPLY_HEADER);
  } catch (cause) {
    throw new CodecError(`cannot encode the result: ${(cause as Error).message}`, { cause });
  }
  writeHeader(bytes, Kind.Reply, ok ? 1 : 0, callId);
  scratch.setBigInt64(0, version, true); // a bigint (the replica's own), so this cannot throw
  bytes.set(scratchBytes, VERSION_AT);
  return capped('the result', bytes, maxBytes);
}

function writeHeader(bytes: Uint8Array, kind: Kind, third: number, callId: number): void {
  bytes[0] = COMPACT;
  bytes[1] = kind;
  bytes[2] = third;
  bytes[3] = 0;
  writeU32(bytes, 4, callId >>> 0);
  writeU32(bytes, 8, Math.floor(callId / TWO_32));
}

/** Decodes and checks the shape of a message of this layer; throws CodecError on anything else. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length === 0 || bytes[0] !== COMPACT) return decodeArrayForm(bytes);
  const kind = bytes[1];
  if (bytes.length < CALL_HEADER || bytes[3] !== 0) return malformed(bytes, 'short or damaged header');
  const high = readU32(bytes, 8);
  if (high >= 2 ** 21) return malformed(bytes, 'call id is not an integer ≥ 0'); // above 2^53
  const callId = readU32(bytes, 4) + high * TWO_32;
  if (kind === Kind.Command || kind === Kind.Query) {
    const length = bytes[2]!;
    if (bytes.length <= CALL_HEADER + length) return malformed(bytes, 'method name or arguments cut short');
    const method = methodName(bytes, CALL_HEADER, length);
    const args = unpackAt(bytes, CALL_HEADER + length);
    if (!Array.isArray(args)) return malformed(bytes, 'arguments are not an array');
    return { kind, callId, method, args };
  }
  if (kind === Kind.Reply) {
    const ok = bytes[2];
    if (ok !== 0 && ok !== 1) return malformed(bytes, 'reply status is not 0 or 1');
    if (bytes.length <= REPLY_HEADER) return malformed(bytes, 'reply cut short');
    for (let i = 0; i < 8; i++) scratchBytes[i] = bytes[VERSION_AT + i]!;
    const version = scratch.getBigInt64(0, true);
    const value = unpackAt(bytes, REPLY_HEADER);
    if (ok === 0 && !isWireError(value)) return malformed(bytes, 'error reply without name and message');
    return { kind, callId, ok: ok === 1, value, version };
  }
  return malformed(bytes, `unknown kind ${String(kind)}`);
}

/** The earlier form, one MessagePack array (see the top of this file). */
function decodeArrayForm(bytes: Uint8Array): Envelope {
  const bad = (why: string): never => malformed(bytes, why);
  const decoded = decodeValue(bytes);
  if (!Array.isArray(decoded)) return bad('not an array');
  const [kind, callId] = decoded as unknown[];
  if (typeof callId !== 'number' || !Number.isSafeInteger(callId) || callId < 0) {
    return bad('call id is not an integer ≥ 0');
  }
  if (kind === Kind.Command || kind === Kind.Query) {
    const [, , method, args] = decoded as unknown[];
    if (typeof method !== 'string') return bad('method name is not a string');
    if (!Array.isArray(args)) return bad('arguments are not an array');
    return { kind, callId, method, args };
  }
  if (kind === Kind.Reply) {
    const [, , ok, value, version] = decoded as unknown[];
    if (ok !== 0 && ok !== 1) return bad('reply status is not 0 or 1');
    if (typeof version !== 'bigint') return bad('reply version is not a bigint');
    if (ok === 0 && !isWireError(value)) return bad('error reply without name and message');
    return { kind, callId, ok: ok === 1, value, version };
  }
  return bad(`unknown kind ${String(kind)}`);
}

function malformed(bytes: Uint8Array, why: string): never {
  throw new CodecError(`malformed replicated-object message (${bytes.length} bytes): ${why}`);
}

// ---- Without allocating ------------------------------------------------------------------------------

const scratchBytes = new Uint8Array(8);
const scratch = new DataView(scratchBytes.buffer);

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * The MessagePack value in bytes[from..], read in place (no subarray): what most results and arguments are —
 * one scalar, or a short array of them — is read here; anything else by msgpackr, reading `bytes` itself
 * with this range, which checks that the value ends exactly at its end. Never through a view of the whole
 * buffer: msgpackr's bundled-strings extension jumps by an offset the message names, backwards too, so a
 * message read through a larger view could build its value from bytes before it — another sender's slot,
 * read differently at each member. Through the message's own view such a jump finds nothing (or the
 * message's own header) and fails or reads the same bytes everywhere.
 */
function unpackAt(bytes: Uint8Array, from: number): unknown {
  const simple = simpleValue(bytes, from);
  return simple !== NOT_SIMPLE ? simple : unpackFrom(bytes, from);
}

/** msgpackr's reading of bytes[from..], which must end exactly at the end; its errors as CodecError. */
function unpackFrom(bytes: Uint8Array, from: number): unknown {
  unpackRange.start = from;
  unpackRange.end = bytes.length;
  try {
    return packr.unpack(bytes, unpackRange);
  } catch (cause) {
    throw new CodecError(`cannot decode ${bytes.length} bytes: ${(cause as Error).message}`, { cause });
  }
}

/** The range unpackFrom hands msgpackr, reused: msgpackr reads it at once and keeps nothing of it. */
const unpackRange = { start: 0, end: 0 };

/** What simpleValue returns when the value is not one it reads (msgpackr then does). */
const NOT_SIMPLE = Symbol('not simple');

/**
 * bytes[from..] as one scalar (scalarAt), or an array of at most 15 of them, when that is the whole of it;
 * else NOT_SIMPLE. Decodes exactly as msgpackr does (test/objects-codec.test.ts compares the two), without
 * its per-message setup — a DataView and a property on the message's view.
 */
function simpleValue(bytes: Uint8Array, from: number): unknown {
  const end = bytes.length;
  const first = bytes[from]!;
  if (first < 0x90 || first > 0x9f) {
    const value = scalarAt(bytes, from);
    return value !== NOT_SIMPLE && scalarEnd === end ? value : NOT_SIMPLE;
  }
  const values: unknown[] = [];
  let at = from + 1;
  for (let n = first & 0x0f; n > 0; n--) {
    const value = scalarAt(bytes, at);
    if (value === NOT_SIMPLE || scalarEnd > end) return NOT_SIMPLE;
    values.push(value);
    at = scalarEnd;
  }
  return at === end ? values : NOT_SIMPLE;
}

/** Where the last scalarAt's scalar ended (read it only after a scalar was found, and check it ≤ the end). */
let scalarEnd = 0;

/**
 * The MessagePack scalar at bytes[at]: an integer of at most 32 bits, nil, a boolean, or undefined (fixext 1
 * of type 0, as msgpackr writes it — an application that registers its own msgpackr extension of type 0
 * changes msgpackr's reading of it, not this one's) — NOT_SIMPLE for anything else. Bytes past the view
 * read as undefined, which coerce to 0: the caller checks scalarEnd against the end before it takes the value.
 */
function scalarAt(bytes: Uint8Array, at: number): unknown {
  const b = bytes[at]!;
  scalarEnd = at + 1;
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  const b1 = bytes[at + 1]!, b2 = bytes[at + 2]!;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xcc: scalarEnd = at + 2; return b1;
    case 0xcd: scalarEnd = at + 3; return (b1 << 8) | b2;
    case 0xce: scalarEnd = at + 5; return ((b1 << 24) | (b2 << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) >>> 0;
    case 0xd0: scalarEnd = at + 2; return (b1 << 24) >> 24;
    case 0xd1: scalarEnd = at + 3; return (((b1 << 8) | b2) << 16) >> 16;
    case 0xd2: scalarEnd = at + 5; return (b1 << 24) | (b2 << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!;
    case 0xd4:
      if (b1 !== 0 || b2 !== 0) return NOT_SIMPLE;
      scalarEnd = at + 3;
      return undefined;
    default: return NOT_SIMPLE;
  }
}

/**
 * Method names, encoded once (a caller uses a few names over and over), and decoded through a small cache
 * keyed by the bytes' hash: a hit compares the bytes and allocates nothing.
 */
const encodedNames = new Map<string, Uint8Array>();
const NAME_CACHE_SIZE = 1024;
const decodedNames: Array<{ bytes: Uint8Array; name: string } | undefined> = new Array(64);
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function methodBytes(method: string): Uint8Array {
  let bytes = encodedNames.get(method);
  if (bytes === undefined) {
    if (typeof method !== 'string') throw new TypeError(`a method name is a string, got ${typeof method}`);
    bytes = utf8Encoder.encode(method);
    if (encodedNames.size >= NAME_CACHE_SIZE) encodedNames.clear();
    encodedNames.set(method, bytes);
  }
  return bytes;
}

function methodName(bytes: Uint8Array, at: number, length: number): string {
  let hash = length;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[at + i]!, 16777619);
  const slot = (hash >>> 0) % decodedNames.length;
  const cached = decodedNames[slot];
  if (cached !== undefined && cached.bytes.length === length) {
    let same = true;
    for (let i = 0; i < length && same; i++) same = cached.bytes[i] === bytes[at + i];
    if (same) return cached.name;
  }
  let name: string;
  try {
    name = utf8.decode(bytes.subarray(at, at + length));
  } catch {
    return malformed(bytes, 'method name is not UTF-8');
  }
  decodedNames[slot] = { bytes: bytes.slice(at, at + length), name };
  return name;
}

function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return typeof e.name === 'string' && typeof e.message === 'string';
}

/** The wire form of anything a method threw. */
export function toWireError(thrown: unknown): WireError {
  if (thrown instanceof Error) {
    const e: WireError = { name: thrown.name, message: thrown.message };
    const code = (thrown as { code?: unknown }).code;
    if (typeof code === 'string') e.code = code;
    const callable = (thrown as { callable?: unknown }).callable;
    if (Array.isArray(callable)) e.callable = callable.map(String);
    const queries = (thrown as { queries?: unknown }).queries;
    if (Array.isArray(queries)) e.queries = queries.map(String);
    const className = (thrown as { className?: unknown }).className;
    if (typeof className === 'string') e.className = className;
    return e;
  }
  return { name: 'Error', message: String(thrown) };
}
