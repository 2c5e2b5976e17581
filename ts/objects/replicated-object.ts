// A replicated object (DESIGN.md §8): a user's deterministic class instance at one member of a shard, wired
// to the shard's ordered channel. Methods called through `ordered` become commands delivered in the same
// order at every member and run there; every member replies to the caller. `query(member)` asks one member
// to run a read-only method on its local copy, unordered — only the methods the class declares as queries.
// `snapshot`/`restore` expose the class's own state encoding for state transfer.
//
//   class TicketBook {
//     static readonly queries = ['holder', 'count'] as const;   // the read-only methods query() may run
//     book(ticket: string, customer: string): boolean { … }   // ordered only
//     holder(ticket: string): string | null { … }
//     count(): number { … }
//   }
//   const tickets = ReplicatedObject.attach(new TicketBook(), channel, { type: TicketBook });
//   const replies = await tickets.ordered.book('t-17', 'alice');  // [{ member, value, version }, …]
//   const holder = await tickets.query(3).holder('t-17');
//   tickets.query(3).book('t-18', 'bob');                        // compile error; at run time NotAQueryError
//
// Why a static list and not decorators: TS 5's standard decorators cannot change the type of the class
// they decorate, so a `@query` on `holder` would be invisible to `query()`'s signature and
// `query(m).book()` would still type-check; and the decorator could record the name only at run time
// (`context.addInitializer`, run per instance, or `context.metadata`, which needs a Symbol.metadata polyfill
// on Node 20). Experimental decorators need a compiler flag in every consumer's build. A
// `static queries = [...] as const` is plain data: it reads the same in JS and TS, costs nothing per call,
// and its literal type is what QueryName<C> below turns into the only methods `query()` offers. A name in
// the list that is no method of the class is refused when the object is attached (ConfigError); `ordered`
// still runs every method, queries included (an ordered read sees every command ordered before it).

import { MULTICAST_DEFAULTS } from '../membership/plans.js';
import {
  ClosedError, ConfigError, NotAQueryError, OverloadedError, SquallError, UnknownMethodError,
} from '../errors.js';
import { SEND_QUEUE_LIMITS } from '../group/config.js';
import { checkInteger, checkNumber } from '../validate.js';
import { Calls, sendFailure, type Reply } from './caller.js';
import { WRITTEN, type OrderedChannel } from './channel.js';
import { decodeEnvelope, encodeCall, Kind } from './codec.js';
import { Replica } from './replica.js';
import { hlcOf } from '../persist/hlc.js';

type Method = (...args: never[]) => unknown;
/** The names of T's methods (string keys whose values are functions). */
export type MethodName<T> = { [K in keyof T]: T[K] extends Method ? K : never }[keyof T] & string;

/** `ordered.m(...args)` resolves with every member's reply to the command. */
export type OrderedMethods<T> = {
  readonly [K in MethodName<T>]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Array<Reply<Awaited<R>>>>
    : never;
};

/**
 * The methods a class C declares as queries: the names in its `static queries = [...] as const` (never when
 * it declares none).
 */
export type QueryName<C> = C extends { readonly queries: ReadonlyArray<infer N> } ? Extract<N, string> : never;

/** `query(member).m(...args)` resolves with that member's answer; only T's methods named in Q are offered. */
export type QueryMethods<T, Q extends string = never> = {
  readonly [K in MethodName<T> & Q]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** The class of a replicated object: its read-only `queries`, and the static `restore` that state transfer uses. */
export interface ReplicatedType<T> {
  readonly name: string;
  /** The methods `query(member)` may run: read-only ones (see the top of this file). */
  readonly queries?: readonly string[];
  restore?(bytes: Uint8Array): T;
}

/** An update as a persistent subgroup's log holds it (ReplicatedObject.at, atTime). */
export interface UpdateRecord {
  /** Its version, vid << 32n | seq. */
  version: bigint;
  /**
   * When this member delivered it: a hybrid logical clock reading, (ms since the epoch) << 16n | logical.
   * Each member stamps its own deliveries, so members' stamps of one update differ by their clocks' skew.
   */
  hlc: bigint;
  /** The member that called it. */
  sender: number;
  method: string;
  args: unknown[];
}

/** What a persistent subgroup's log offers its object (ts/group/persistence.ts). */
export interface ObjectHistory<T> {
  /** Resolves once `version` is durable at every member of the shard (the persistence frontier reached it). */
  whenPersisted(version: bigint): Promise<void>;
  /** The logged update of `version` (its command's bytes), or null. */
  recordAt(version: bigint): Promise<{ version: bigint; hlc: bigint; sender: number; payload: Uint8Array } | null>;
  /** The newest logged version whose hlc ≤ `hlc` (−1n if none). */
  versionAt(hlc: bigint): Promise<bigint>;
  /** The object's state right after `version`: the latest snapshot at or before it and the log replayed. */
  stateAt(version: bigint): Promise<T>;
}

export interface ReplicatedObjectOptions<T> {
  /**
   * The object's class: needed for `restore`; its static `queries` types `query()` (default: the instance's
   * constructor's).
   */
  type?: ReplicatedType<T>;
  /** Largest encoded command, query or reply (default MULTICAST_DEFAULTS.maxMessageBytes, 64 MiB). */
  maxMessageBytes?: number;
  /** Time limit of each call in ms; a call past it rejects with TimeoutError. Default: no limit. */
  timeoutMs?: number;
  /** Where malformed messages from the channel are reported; default a process warning. */
  onError?: (error: Error) => void;
  /**
   * Calls (ordered and queries) that may wait for their replies at once; past it a call rejects at once
   * with OverloadedError, unsent. Default MULTICAST_DEFAULTS.maxQueuedMessages (Group.join: the
   * subgroup's maxQueuedMessages).
   */
  maxCallsInFlight?: number;
}

export class ReplicatedObject<T extends object, Q extends string = never> {
  readonly #channel: OrderedChannel;
  readonly #replica: Replica<T>;
  readonly #calls: Calls;
  readonly #type: ReplicatedType<T> | undefined;
  readonly #maxMessageBytes: number;
  readonly #maxCallsInFlight: number;
  readonly #onError: (error: Error) => void;
  /** Why this object stopped (close()'s reason); null while open. */
  #closed: Error | null = null;

  /** Calls that become ordered commands, run at every member of the shard. */
  readonly ordered: OrderedMethods<T>;
  /**
   * A persistent subgroup's ordered calls that resolve, with every member's reply, once the command is
   * durable at every member of the shard (not only delivered): its version reached the persistence frontier.
   */
  readonly persisted: OrderedMethods<T>;
  /** A persistent subgroup's log (null: the subgroup is not persistent). */
  #history: ObjectHistory<T> | null = null;

  /** Typed from `options.type`, the class C: `query()` offers the methods in its static `queries`. */
  static attach<T extends object, C extends ReplicatedType<T> = ReplicatedType<T>>(
    state: T, channel: OrderedChannel, options: ReplicatedObjectOptions<T> & { type?: C } = {},
  ): ReplicatedObject<T, Extract<QueryName<C>, MethodName<T>>> {
    return new ReplicatedObject(state, channel, options);
  }

  private constructor(state: T, channel: OrderedChannel, options: ReplicatedObjectOptions<T>) {
    if (typeof state !== 'object' || state === null) {
      throw new ConfigError('a replicated object must be a class instance');
    }
    const maxMessageBytes = checkInteger(
      options.maxMessageBytes ?? MULTICAST_DEFAULTS.maxMessageBytes, 'maxMessageBytes', 1, 2 ** 31);
    this.#maxCallsInFlight = checkInteger(
      options.maxCallsInFlight ?? MULTICAST_DEFAULTS.maxQueuedMessages, 'maxCallsInFlight', 1,
      SEND_QUEUE_LIMITS.messages);
    if (options.timeoutMs !== undefined) checkNumber(options.timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1, true);
    this.#channel = channel;
    this.#type = options.type;
    this.#maxMessageBytes = maxMessageBytes;
    this.#onError = options.onError ?? ((error) => process.emitWarning(error));
    this.#calls = new Calls(options.timeoutMs);
    const declaredQueries = (options.type ?? (state.constructor as ReplicatedType<T> | undefined))?.queries;
    // A reply that cannot reach its caller because the caller failed, or this member stopped or closed, is
    // routine: the caller's own failure handling settles its call. Anything else is worth reporting.
    const failed = (thrown: unknown) => {
      const error = sendFailure(thrown);
      if (!isRoutineSendFailure(error)) this.#onError(error);
    };
    this.#replica = new Replica(state, maxMessageBytes, (to, bytes) => {
      let sent: Promise<void>;
      try {
        sent = channel.reply ? channel.reply(to, bytes) : channel.sendTo(to, bytes);
      } catch (error) {
        failed(error);
        return;
      }
      if (sent !== WRITTEN) Promise.resolve(sent).catch(failed);
    }, declaredQueries);
    this.ordered = this.#methodProxy((method) => (...args: unknown[]) => this.call(method, args)) as OrderedMethods<T>;
    this.persisted = this.#methodProxy(
      (method) => (...args: unknown[]) => this.callPersisted(method, args)) as OrderedMethods<T>;
    channel.onDeliver((sender, version, bytes) => this.#onDeliver(sender, version, bytes));
    channel.onDirect((from, bytes) => this.#onDirect(from, bytes));
    channel.onMemberFailed?.((member) => this.memberFailed(member));
  }

  /** The local copy. Read it; change it only through `ordered`. */
  get state(): T { return this.#replica.state; }
  /** Version of the last command applied here (−1n before the first). */
  get appliedVersion(): bigint { return this.#replica.appliedVersion; }
  /** Names a caller may call through `ordered`. */
  get methods(): readonly string[] { return this.#replica.methods.names; }
  /** Names `query(member)` may run: the class's declared queries. */
  get queries(): readonly string[] { return this.#replica.methods.queries; }
  /** Calls waiting for replies. */
  get inFlight(): number { return this.#calls.inFlight; }

  /**
   * Calls that run on one member's local copy, unordered: the class's declared queries only (its static
   * `queries`). Any other method rejects with NotAQueryError before anything is sent.
   */
  query(member: number): QueryMethods<T, Q> {
    return this.#methodProxy(
      (method) => (...args: unknown[]) => this.callMember(member, method, args)) as QueryMethods<T, Q>;
  }

  /**
   * The untyped form of `ordered[method](...args)`. Not an async function: a call is the hot path of this
   * layer, and the promise it returns is the replies' own (no second promise, no await of a send that was
   * written at once).
   */
  call(
    method: string, args: readonly unknown[], options: { timeoutMs?: number } = {}
  ): Promise<Array<Reply<unknown>>> {
    let callId: number, bytes: Uint8Array;
    try {
      this.#checkOpen();
      this.#checkCallRoom();
      callId = this.#calls.nextCallId();
      bytes = encodeCall(Kind.Command, callId, method, args, this.#maxMessageBytes); // throws before sending
    } catch (error) {
      return Promise.reject(error);
    }
    const replies = this.#calls.expect(callId, method, true, this.#channel.members, options.timeoutMs);
    let sent: Promise<void>;
    try {
      sent = this.#channel.send(bytes);
    } catch (error) { // a channel may be the application's own, and throw instead of rejecting
      this.#calls.abandon(callId, error);
      return replies as Promise<Array<Reply<unknown>>>;
    }
    // Written at once (WRITTEN) cannot fail: no handler, no promise made for it.
    if (sent !== WRITTEN) {
      Promise.resolve(sent).catch((error: unknown) => this.#calls.abandon(callId, error));
    }
    return replies as Promise<Array<Reply<unknown>>>;
  }

  /** The untyped form of `persisted[method](...args)`. */
  async callPersisted(
    method: string, args: readonly unknown[], options: { timeoutMs?: number } = {}
  ): Promise<Array<Reply<unknown>>> {
    const history = this.#needHistory('persisted calls');
    const replies = await this.call(method, args, options);
    await history.whenPersisted(replies[0]!.version);
    return replies;
  }

  /** The version of the last command applied here (−1n before the first): `vid << 32n | seq`. */
  version(): bigint { return this.#replica.appliedVersion; }

  /** A persistent subgroup: the update of `version` as this member's log holds it, or null when it has none. */
  async at(version: bigint): Promise<UpdateRecord | null> {
    const record = await this.#needHistory('at()').recordAt(version);
    if (record === null) return null;
    const envelope = decodeEnvelope(record.payload);
    if (envelope.kind !== Kind.Command) return null;
    const { version: v, hlc, sender } = record;
    return { version: v, hlc, sender, method: envelope.method, args: envelope.args };
  }

  /**
   * A persistent subgroup: the newest update this member delivered at or before `time` (a Date, or a hybrid
   * logical clock reading as UpdateRecord.hlc), or null.
   */
  async atTime(time: Date | bigint): Promise<UpdateRecord | null> {
    const hlc = typeof time === 'bigint' ? time : hlcOf(time.getTime());
    const version = await this.#needHistory('atTime()').versionAt(hlc);
    return version < 0n ? null : this.at(version);
  }

  /**
   * A persistent subgroup whose class has snapshot() and restore(): a fresh instance holding the state right
   * after `version` (the latest snapshot at or before it, and the log replayed up to it).
   */
  stateAt(version: bigint): Promise<T> {
    return this.#needHistory('stateAt()').stateAt(version);
  }

  /** @internal A persistent subgroup's log. */
  setHistory(history: ObjectHistory<T>): void { this.#history = history; }

  #needHistory(what: string): ObjectHistory<T> {
    this.#checkOpen();
    if (this.#history === null) {
      throw new ConfigError(`${what} need a persistent subgroup: add "persistent": true to the subgroup's `
        + 'configuration (and dataDir to Group.join)');
    }
    return this.#history;
  }

  /**
   * The untyped form of `query(member)[method](...args)`. Rejects with UnknownMethodError or NotAQueryError,
   * having sent nothing, when `method` is no declared query of the class.
   */
  async callMember(
    member: number, method: string, args: readonly unknown[], options: { timeoutMs?: number } = {}
  ): Promise<unknown> {
    this.#checkOpen();
    const methods = this.#replica.methods;
    if (methods.get(method) === undefined) throw new UnknownMethodError(method, methods.className, methods.names);
    if (!methods.isQuery(method)) throw new NotAQueryError(method, methods.className, methods.queries);
    if (!this.#channel.members.includes(member)) {
      throw new ConfigError(`member ${member} is not in this shard (members: ${this.#channel.members.join(', ')})`);
    }
    this.#checkCallRoom();
    const callId = this.#calls.nextCallId();
    const bytes = encodeCall(Kind.Query, callId, method, args, this.#maxMessageBytes);
    const answer = this.#calls.expect(callId, method, false, [member], options.timeoutMs);
    try {
      await this.#channel.sendTo(member, bytes); // to this member too: the channel holds it while its state arrives
    } catch (error) {
      this.#calls.abandon(callId, error);
    }
    return answer;
  }

  /** A member left the shard: calls waiting on its reply stop waiting (queries to it reject). */
  memberFailed(member: number): void {
    this.#calls.memberFailed(member);
  }

  /** The local copy's state, encoded by the class's own `snapshot()`. */
  snapshot(): Uint8Array {
    const state = this.#replica.state as { snapshot?: unknown };
    if (typeof state.snapshot !== 'function') {
      throw new ConfigError(
        `${this.#replica.methods.className} has no snapshot() method: add snapshot(): Uint8Array and static ` +
          `restore(bytes) for state transfer`);
    }
    const bytes: unknown = state.snapshot();
    if (!(bytes instanceof Uint8Array)) {
      throw new ConfigError(`${this.#replica.methods.className}.snapshot() must return a Uint8Array`);
    }
    return bytes;
  }

  /** Replaces the local copy with `type.restore(bytes)`, taken at `version` (state transfer). */
  restore(bytes: Uint8Array, version = -1n): void {
    this.#checkOpen();
    const restore = this.#type?.restore;
    if (typeof restore !== 'function') {
      throw new ConfigError(`cannot restore: pass options.type, a class with static restore(bytes: Uint8Array)`);
    }
    const state = restore.call(this.#type, bytes);
    if (typeof state !== 'object' || state === null) {
      throw new ConfigError(`${this.#type!.name}.restore() must return an instance`);
    }
    this.#replica.replace(state, version);
  }

  /**
   * @internal Replaces the local copy with `state`: a fresh instance (the shard's state was lost), or the
   * state a persistent subgroup's log rebuilt, taken at `version`.
   */
  reset(state: T, version = -1n): void {
    this.#checkOpen();
    this.#replica.replace(state, version);
  }

  /** Stops answering; calls in flight reject with `reason` (default ClosedError). */
  close(reason: Error = new ClosedError('this replicated object')): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#calls.rejectAll(reason);
  }

  /**
   * @internal This member stopped (removed, partitioned): calls in flight reject with `reason`; the object
   * stays open (a member that rejoins restores it from the group's state).
   */
  failCalls(reason: Error): void {
    this.#calls.rejectAll(reason);
  }

  #onDeliver(sender: number, version: bigint, bytes: Uint8Array): void {
    if (this.#closed) return;
    const envelope = this.#decode(sender, bytes);
    if (envelope === undefined) return;
    if (envelope.kind !== Kind.Command) {
      return this.#onError(
        new Error(`member ${sender} multicast a message of kind ${envelope.kind}, expected a command`));
    }
    this.#replica.onCommand(sender, version, envelope);
  }

  #onDirect(from: number, bytes: Uint8Array): void {
    if (this.#closed) return;
    const envelope = this.#decode(from, bytes);
    if (envelope === undefined) return;
    if (envelope.kind === Kind.Reply) this.#calls.onReply(from, envelope);
    else if (envelope.kind === Kind.Query) this.#replica.onQuery(from, envelope);
    else this.#onError(new Error(`member ${from} sent a command point-to-point; commands must be multicast`));
  }

  #decode(from: number, bytes: Uint8Array) {
    try {
      return decodeEnvelope(bytes);
    } catch (error) {
      (error as Error).message = `from member ${from}: ${(error as Error).message}`;
      this.#onError(error as Error);
      return undefined;
    }
  }

  /** A proxy whose method `name` is make(name), made once per name (a call allocates no function). */
  #methodProxy(make: (method: string) => unknown): object {
    const made = new Map<string, unknown>();
    return new Proxy(Object.create(null) as object, {
      get: (_target, key) => {
        if (typeof key !== 'string' || key === 'then') return undefined;
        let method = made.get(key);
        if (method === undefined) {
          method = make(key);
          if (made.size < MAX_CACHED_METHODS) made.set(key, method); // names beyond it are made per access
        }
        return method;
      },
    });
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closed;
  }

  /** Refuses a call, unsent, while maxCallsInFlight calls wait for their replies. */
  #checkCallRoom(): void {
    const waiting = this.#calls.inFlight;
    if (waiting >= this.#maxCallsInFlight) {
      throw new OverloadedError(
        `this ${this.#replica.methods.className} replica`, 'calls', waiting, this.#maxCallsInFlight);
    }
  }
}

/** Method handles a proxy keeps: far more than a class has methods, so odd names cannot grow it forever. */
const MAX_CACHED_METHODS = 256;

/** Failures of a point-to-point send that the group handles by itself: the peer failed, this member stopped. */
function isRoutineSendFailure(error: Error): boolean {
  return error instanceof SquallError && ROUTINE_SEND_FAILURES.has(error.code);
}
const ROUTINE_SEND_FAILURES: ReadonlySet<string> = new Set([
  'ERR_SQUALL_PEER_FAILED', 'ERR_SQUALL_CLOSED', 'ERR_SQUALL_REMOVED', 'ERR_SQUALL_PARTITIONED',
]);
