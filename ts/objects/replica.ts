// The replica side of a replicated object: runs delivered commands on the local copy, in delivery order,
// and answers queries from the local copy. Every outcome — a value, a thrown error, an unknown method, a
// result too large to send — is a pure function of the object's state and the command, so every replica
// answers a command the same way. A query for a method the class does not declare as one is refused here
// too, whatever the caller's code checked: a peer may run other code.

import { NotAQueryError, UnknownMethodError } from '../errors.js';
import { encodeReply, toWireError, type CallEnvelope } from './codec.js';
import { MethodTable } from './methods.js';

/** Where a replica's encoded replies go: `to` is the caller's member id. */
export type ReplySink = (to: number, bytes: Uint8Array) => void;

export class Replica<T extends object> {
  #state: T;
  #methods: MethodTable;
  /** Version of the last command applied here; −1 before the first. */
  #appliedVersion = -1n;
  readonly #maxMessageBytes: number;
  readonly #reply: ReplySink;
  /** The class's static `queries`, as declared (checked by MethodTable). */
  readonly #declaredQueries: unknown;

  constructor(state: T, maxMessageBytes: number, reply: ReplySink, declaredQueries?: unknown) {
    this.#state = state;
    this.#declaredQueries = declaredQueries;
    this.#methods = new MethodTable(state, declaredQueries);
    this.#maxMessageBytes = maxMessageBytes;
    this.#reply = reply;
  }

  get state(): T { return this.#state; }
  get methods(): MethodTable { return this.#methods; }
  get appliedVersion(): bigint { return this.#appliedVersion; }

  /** Replaces the local copy (state transfer); the method table is rebuilt from the new instance. */
  replace(state: T, appliedVersion: bigint): void {
    this.#state = state;
    this.#methods = new MethodTable(state, this.#declaredQueries);
    this.#appliedVersion = appliedVersion;
  }

  /** A delivered command: runs it now, replies when its result is ready. */
  onCommand(caller: number, version: bigint, call: CallEnvelope): void {
    this.#appliedVersion = version;
    this.#run(caller, version, call);
  }

  /** A query: runs it on the local copy as it is now, unordered with respect to commands in flight. */
  onQuery(caller: number, call: CallEnvelope): void {
    const methods = this.#methods;
    if (methods.get(call.method) !== undefined && !methods.isQuery(call.method)) {
      const refusal = new NotAQueryError(call.method, methods.className, methods.queries);
      this.#send(caller, call.callId, false, toWireError(refusal), this.#appliedVersion);
      return;
    }
    this.#run(caller, this.#appliedVersion, call);
  }

  #run(caller: number, version: bigint, call: CallEnvelope): void {
    const method = this.#methods.get(call.method);
    if (method === undefined) {
      this.#send(
        caller, call.callId, false,
        toWireError(new UnknownMethodError(call.method, this.#methods.className, this.#methods.names)), version);
      return;
    }
    let result: unknown;
    try {
      result = method.apply(this.#state, call.args);
    } catch (thrown) {
      this.#send(caller, call.callId, false, toWireError(thrown), version);
      return;
    }
    // Methods should be synchronous: state changes after an `await` are not ordered with other commands.
    // A returned promise is still awaited for the reply.
    if (isThenable(result)) {
      result.then((value) => this.#send(caller, call.callId, true, value, version),
        (thrown: unknown) => this.#send(caller, call.callId, false, toWireError(thrown), version));
    } else {
      this.#send(caller, call.callId, true, result, version);
    }
  }

  #send(caller: number, callId: number, ok: boolean, value: unknown, version: bigint): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeReply(callId, ok, value, version, this.#maxMessageBytes);
    } catch (error) {
      // The result cannot travel (too large, or not encodable): the caller gets that error instead, from
      // every replica alike.
      bytes = encodeReply(callId, false, toWireError(error), version, this.#maxMessageBytes);
    }
    this.#reply(caller, bytes);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null &&
    typeof (value as { then?: unknown }).then === 'function';
}
