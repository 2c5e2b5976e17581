// The wire form of replicated-object calls: arguments and results are MessagePack (msgpackr), and every
// message of this layer is one MessagePack array whose first element says what it is:
//
//   command  [1, callId, method, args]                 ordered: channel.send; the caller is the sender
//   query    [2, callId, method, args]                 direct, to the one member asked
//   reply    [3, callId, 1, value, version]            direct, back to the caller: the method returned
//   reply    [3, callId, 0, WireError, version]        direct, back to the caller: the method threw
//
// `callId` is a counter of the caller's, unique among its calls in flight. `version` is the version of the
// command the reply answers (ordered), or of the last command applied at the replica (query).
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

import { Packr } from 'msgpackr';
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
  try {
    return packr.unpack(bytes);
  } catch (cause) {
    throw new CodecError(`cannot decode ${bytes.length} bytes: ${(cause as Error).message}`, { cause });
  }
}

function capped(what: string, bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.length > maxBytes) throw new MessageTooLargeError(what, bytes.length, maxBytes);
  return bytes;
}

/** Encodes a command or a query; throws CodecError or MessageTooLargeError before anything is sent. */
export function encodeCall(
  kind: Kind.Command | Kind.Query, callId: number, method: string, args: readonly unknown[], maxBytes: number
): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = packr.pack([kind, callId, method, args]);
  } catch (cause) {
    throw new CodecError(`cannot encode the arguments of ${method}: ${(cause as Error).message}`, { cause });
  }
  return capped(`a call of ${method}`, bytes, maxBytes);
}

/** Encodes a reply. A value that cannot be encoded or is too large throws; the caller sends an error reply instead. */
export function encodeReply(
  callId: number, ok: boolean, value: unknown, version: bigint, maxBytes: number
): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = packr.pack([Kind.Reply, callId, ok ? 1 : 0, value, version]);
  } catch (cause) {
    throw new CodecError(`cannot encode the result: ${(cause as Error).message}`, { cause });
  }
  return capped('the result', bytes, maxBytes);
}

/** Decodes and checks the shape of a message of this layer; throws CodecError on anything else. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const decoded = decodeValue(bytes);
  const bad = (why: string): never => {
    throw new CodecError(`malformed replicated-object message (${bytes.length} bytes): ${why}`);
  };
  if (!Array.isArray(decoded)) return bad('not an array');
  const [kind, callId] = decoded as unknown[];
  if (typeof callId !== 'number' || !Number.isSafeInteger(callId)) return bad('call id is not an integer');
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
