// Errors a user of squall can meet. Each failure has its own class with a stable `code`, and every message
// says what to do about it. Programmer bugs are assertions (`assert` below), never SquallErrors.

export type SquallErrorCode =
  | 'ERR_SQUALL_CONFIG'
  | 'ERR_SQUALL_BUILD'
  | 'ERR_SQUALL_NATIVE_UNAVAILABLE'
  | 'ERR_SQUALL_ARENA'
  | 'ERR_SQUALL_PEER_FAILED'
  | 'ERR_SQUALL_TIMEOUT'
  | 'ERR_SQUALL_CLOSED'
  | 'ERR_SQUALL_NETNS'
  | 'ERR_SQUALL_MESSAGE_TOO_LARGE'
  | 'ERR_SQUALL_CODEC'
  | 'ERR_SQUALL_UNKNOWN_METHOD'
  | 'ERR_SQUALL_NOT_A_QUERY'
  | 'ERR_SQUALL_REMOTE'
  | 'ERR_SQUALL_PARTITIONED'
  | 'ERR_SQUALL_REMOVED'
  | 'ERR_SQUALL_JOIN'
  | 'ERR_SQUALL_STATE_TRANSFER'
  | 'ERR_SQUALL_OVERLOADED'
  | 'ERR_SQUALL_AUTH'
  | 'ERR_SQUALL_PERSIST';

export class SquallError extends Error {
  readonly code: SquallErrorCode;
  constructor(code: SquallErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A configuration value is missing, malformed or inconsistent. The message names the field. */
export class ConfigError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_CONFIG', message, options); }
}

/** The WebAssembly, native addon and TypeScript builds do not belong together (stale build). */
export class BuildError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_BUILD', message, options); }
}

/** A native backend was asked for but is not built on this machine. */
export class NativeUnavailableError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SQUALL_NATIVE_UNAVAILABLE', message, options);
  }
}

/** The arena is too small for what was asked of it, or an offset falls outside it. */
export class ArenaError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_ARENA', message, options); }
}

/** A peer's connection broke or it misbehaved; `peer` is its member id, `reason` the fabric's FailReason name. */
export class PeerFailedError extends SquallError {
  readonly peer: number;
  readonly reason: string;
  constructor(peer: number, reason: string, message: string) {
    super('ERR_SQUALL_PEER_FAILED', message);
    this.peer = peer;
    this.reason = reason;
  }
}

/** Something did not happen within its time limit; the message names the limit and how to raise it. */
export class TimeoutError extends SquallError {
  constructor(message: string) { super('ERR_SQUALL_TIMEOUT', message); }
}

/** The object was used after close(). */
export class ClosedError extends SquallError {
  constructor(what: string) { super('ERR_SQUALL_CLOSED', `${what} is closed; create a new one`); }
}

/**
 * This member can reach only a minority of its view: it stops, because the other side may be the majority
 * and go on (partition safety, DESIGN.md §6). `unreachable` lists the members it lost.
 */
export class PartitionedError extends SquallError {
  readonly unreachable: readonly number[];
  /**
   * `connectFailure`: connecting the view failed here (its engine closed, its worker failed), so every member
   * counted as unreachable — the cause, not the network.
   */
  constructor(self: number, vid: number, viewSize: number, unreachable: readonly number[], connectFailure?: Error) {
    super('ERR_SQUALL_PARTITIONED',
      `member ${self} is in a minority of view ${vid}: ${unreachable.length} of its ${viewSize} members ` +
      `are unreachable (${unreachable.join(', ')})` +
      (connectFailure ? ` because connecting to the view failed here (${connectFailure.message})` : '') +
      '; it stops so that two halves never both go on — restart it once the network is whole',
      connectFailure ? { cause: connectFailure } : undefined);
    this.unreachable = unreachable;
  }
}

/** The group installed a view without this member: it left, or the others suspected it (it was too slow). */
export class RemovedError extends SquallError {
  /** The member left cleanly (leave()), rather than being suspected. */
  readonly left: boolean;
  /** Members that suspected this one, when known. */
  readonly suspectedBy: readonly number[];
  constructor(self: number, vid: number, left: boolean, suspectedBy: readonly number[] = []) {
    super('ERR_SQUALL_REMOVED', left
      ? `member ${self} left the group (view ${vid} no longer has it)`
      : `member ${self} was removed from the group in view ${vid}: ` +
        `${suspectedBy.length ? `member(s) ${suspectedBy.join(', ')}` : 'the others'} suspected it ` +
        '(its heartbeat stalled for suspicionTimeoutMs, or its connections broke); ' +
        'with rejoin: true it joins again by itself, ' +
        'else start it again; raise suspicionTimeoutMs if this machine is often overloaded');
    this.left = left;
    this.suspectedBy = suspectedBy;
  }
}

/** A new member could not enter a running group: every contact refused it, or none answered in time. */
export class JoinError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_JOIN', message, options); }
}

/**
 * A process could not prove it holds the group's credential, or a member could not prove it to a joiner:
 * the key differs, one side has none, or the handshake was malformed or replayed. A joiner's Group.join
 * rejects with it; a member reports each refused attempt on its `warning` event (rate-limited). `peer` is
 * the remote address ('host:port') when known.
 */
export class AuthError extends SquallError {
  readonly peer: string;
  constructor(message: string, peer = '') {
    super('ERR_SQUALL_AUTH', message);
    this.peer = peer;
  }
}

/**
 * A subgroup's state did not reach this member intact: a chunk failed its checksum, or the sender failed or
 * the view changed first (`retryable`: joining again can work — Group.join does so by itself), or the
 * class's snapshot() threw at the sender (not retryable).
 */
export class StateTransferError extends SquallError {
  readonly retryable: boolean;
  constructor(message: string, retryable = true) {
    super('ERR_SQUALL_STATE_TRANSFER', message);
    this.retryable = retryable;
  }
}

/**
 * A persistent log (ts/persist/) could not be opened, read or written: a damaged record or file on disk, a
 * directory that belongs to another group or member, a full disk, an I/O error. `file` and `offset` name the
 * place on disk when known (else '' and -1); the message says what to do.
 */
export class PersistError extends SquallError {
  readonly file: string;
  readonly offset: number;
  constructor(message: string, file = '', offset = -1, options?: { cause?: unknown }) {
    super('ERR_SQUALL_PERSIST', message, options);
    this.file = file;
    this.offset = offset;
  }
}

/** Asserts a programmer invariant. A failure is a bug in squall, not a user error. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(`squall internal error: ${message}`);
}

/** Building, changing or tearing down an emulated network (network namespaces, veth links, tc) failed;
 *  the message names the `ip`/`tc` command and what it printed. */
export class EmulatedNetworkError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_NETNS', message, options); }
}

/** An encoded message (a command, a query or a reply) is larger than its subgroup's `maxMessageBytes`. */
export class MessageTooLargeError extends SquallError {
  readonly sizeBytes: number;
  readonly maxBytes: number;
  constructor(what: string, sizeBytes: number, maxBytes: number) {
    super('ERR_SQUALL_MESSAGE_TOO_LARGE',
      `${what} encodes to ${sizeBytes} bytes, more than maxMessageBytes = ${maxBytes}: send less per call, or raise ` +
        `maxMessageBytes in the subgroup's configuration`);
    this.sizeBytes = sizeBytes;
    this.maxBytes = maxBytes;
  }
}

/** A value could not be encoded (a symbol, a bigint past 2^64 without the extension) or bytes could not be decoded. */
export class CodecError extends SquallError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_SQUALL_CODEC', message, options); }
}

/** A replicated object was asked to run a method it does not have; `callable` lists the ones it has. */
export class UnknownMethodError extends SquallError {
  readonly method: string;
  readonly className: string;
  readonly callable: readonly string[];
  constructor(method: string, className: string, callable: readonly string[]) {
    super('ERR_SQUALL_UNKNOWN_METHOD',
      `${className} has no callable method ${JSON.stringify(method)}; ` +
        `callable: ${callable.length ? callable.join(', ') : '(none)'}`);
    this.method = method;
    this.className = className;
    this.callable = callable;
  }
}

/**
 * `query(member)` was asked to run a method its class does not declare as a query. A query runs at one
 * replica only, outside the total order, so a method that changes state would make the copies diverge:
 * such calls are refused before anything is sent, and again by the replica that receives one. `queries`
 * lists the methods the class declares (its static `queries`).
 */
export class NotAQueryError extends SquallError {
  readonly method: string;
  readonly className: string;
  readonly queries: readonly string[];
  constructor(method: string, className: string, queries: readonly string[]) {
    const declaration = [...queries, method].map((q) => `'${q}'`).join(', ');
    super('ERR_SQUALL_NOT_A_QUERY',
      `${className}.${method} is not a query, so query(member) will not run it: a query runs at one replica only, ` +
      'and a method that changes state would make the copies diverge. ' +
      `Call it through ordered.${method}(…), or, if it only reads, declare it in the class: ` +
      `static queries = [${declaration}] as const`);
    this.method = method;
    this.className = className;
    this.queries = queries;
  }
}

/** A method of a replicated object threw at a replica. `remoteName`, `remoteCode` and the message are the
 *  original error's; `member` is the replica that reported it (a deterministic method throws at every one). */
export class RemoteMethodError extends SquallError {
  readonly member: number;
  readonly method: string;
  readonly remoteName: string;
  readonly remoteCode: string | undefined;
  constructor(member: number, method: string, remoteName: string, message: string, remoteCode: string | undefined) {
    super('ERR_SQUALL_REMOTE', message);
    this.member = member;
    this.method = method;
    this.remoteName = remoteName;
    this.remoteCode = remoteCode;
  }
}

/**
 * A send (or an ordered call, or a query) was refused at once because this sender already has `limit`
 * of them queued — accepted, not yet written into its window (calls: waiting for their replies) — or their
 * bytes would pass the byte limit (`what` says which). Nothing was sent: await earlier sends before making
 * more, or raise the subgroup's maxQueuedMessages / maxQueuedBytes.
 */
export class OverloadedError extends SquallError {
  readonly what: 'messages' | 'bytes' | 'calls';
  readonly queued: number;
  readonly limit: number;
  constructor(where: string, what: 'messages' | 'bytes' | 'calls', queued: number, limit: number) {
    const key = what === 'bytes' ? 'maxQueuedBytes' : 'maxQueuedMessages';
    const held = what === 'calls' ? `${queued} calls waiting for replies`
      : what === 'bytes' ? `${queued} bytes of sends queued` : `${queued} sends queued`;
    super('ERR_SQUALL_OVERLOADED',
      `${where} has ${held}, its limit ${key} = ${limit}: this one was refused and not sent. ` +
      `Await earlier sends (or calls) before making more, ` +
      `or raise ${key} in the subgroup's configuration or in Group.join's options`);
    this.what = what;
    this.queued = queued;
    this.limit = limit;
  }
}
