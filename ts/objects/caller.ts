// The caller side of a replicated object: calls in flight and the replies they wait for.
//
// An ordered call waits for one reply from every member of the shard at the time it was sent. It resolves
// with every reply, in shard rank order, once each of those members replied or left the shard; it rejects
// as soon as one replica reports an error (a deterministic method throws at every replica, so the first
// error is the error). A query waits for its one member. A member that leaves settles what waits on it, and
// an optional time limit ends a call that waits too long, so no call hangs forever.

import { NotAQueryError, PeerFailedError, RemoteMethodError, TimeoutError, UnknownMethodError } from '../errors.js';
import type { ReplyEnvelope, WireError } from './codec.js';

/** One member's answer to an ordered call. */
export interface Reply<V> {
  /** The member that ran the command and answered. */
  member: number;
  /** What the method returned there (or what its promise resolved with). */
  value: V;
  /**
   * The version of the delivered command this reply answers: `vid << 32n | seq`, the view the command was
   * delivered in and its sequence number in that view's total order (DESIGN.md §4). Every member of the
   * shard answers one call with the same version. Versions only grow — within a view and across views, as
   * a later view has a larger vid — so `a < b` means command a ran before command b at every replica, and
   * `ReplicatedObject.appliedVersion >= reply.version` means a replica's copy includes the command. It is
   * a bigint, which JSON.stringify refuses: formatVersion(version) gives "vid.seq" (and parseVersion reads
   * it back) for logs and JSON.
   */
  version: bigint;
}

interface Pending {
  method: string;
  ordered: boolean;
  /** Shard members in rank order when the call was sent: replies are returned in this order. */
  order: readonly number[];
  /** Per member of `order`: its reply; undefined while awaited; null once it left without replying. */
  replies: Array<Reply<unknown> | null | undefined>;
  /** Members whose reply is still awaited. */
  waiting: number;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class Calls {
  #nextCallId = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number | undefined;

  constructor(timeoutMs: number | undefined) {
    this.#timeoutMs = timeoutMs;
  }

  get inFlight(): number { return this.#pending.size; }

  nextCallId(): number {
    const id = this.#nextCallId;
    this.#nextCallId = (this.#nextCallId + 1) % Number.MAX_SAFE_INTEGER;
    return id;
  }

  /** Registers a call awaiting replies from `members`; returns its promise. */
  expect(
    callId: number, method: string, ordered: boolean, members: readonly number[], timeoutMs = this.#timeoutMs
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        method, ordered, order: members.slice(), replies: new Array(members.length), waiting: members.length,
        resolve, reject, timer: undefined,
      };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          const missing = pending.order.filter((_, i) => pending.replies[i] === undefined).join(', ');
          this.#settle(callId, new TimeoutError(`${method}: no reply from member(s) ${missing} ` +
            `within timeoutMs = ${timeoutMs} ms; raise timeoutMs, or check that they are alive`));
        }, timeoutMs);
      }
      this.#pending.set(callId, pending);
    });
  }

  /**
   * Forgets a call whose message could not be sent. `thrown` is what the channel threw or rejected with: an
   * application's own channel may use anything, undefined too, and the call still rejects, with an Error.
   */
  abandon(callId: number, thrown: unknown): void {
    this.#settle(callId, sendFailure(thrown));
  }

  onReply(from: number, reply: ReplyEnvelope): void {
    const pending = this.#pending.get(reply.callId);
    if (pending === undefined) return; // late: the call settled already
    const i = pending.order.indexOf(from);
    if (i < 0 || pending.replies[i] !== undefined) return; // not asked, a duplicate, or it left meanwhile
    if (!reply.ok) {
      this.#settle(reply.callId, remoteError(from, pending.method, reply.value as WireError));
      return;
    }
    if (!pending.ordered) {
      this.#settle(reply.callId, undefined, reply.value);
      return;
    }
    pending.replies[i] = { member: from, value: reply.value, version: reply.version };
    if (--pending.waiting === 0) this.#finishOrdered(reply.callId, pending);
  }

  /** A member left the shard: calls waiting on it stop waiting; a query to it fails. */
  memberFailed(member: number): void {
    for (const [callId, pending] of this.#pending) {
      const i = pending.order.indexOf(member);
      if (i < 0 || pending.replies[i] !== undefined) continue;
      pending.replies[i] = null;
      pending.waiting--;
      if (!pending.ordered) {
        this.#settle(callId, new PeerFailedError(member, 'failed',
          `${pending.method}: member ${member} failed before answering the query; ask another member`));
      } else if (pending.waiting === 0) {
        this.#finishOrdered(callId, pending);
      }
    }
  }

  /** Rejects every call in flight (the object is closing). */
  rejectAll(error: Error): void {
    for (const callId of [...this.#pending.keys()]) this.#settle(callId, error);
  }

  #finishOrdered(callId: number, pending: Pending): void {
    const replies: Reply<unknown>[] = [];
    for (const reply of pending.replies) if (reply) replies.push(reply);
    if (replies.length === 0) {
      this.#settle(callId, new PeerFailedError(-1, 'failed',
        `${pending.method}: every member that was to reply failed first; ` +
        'the command may or may not have been applied'));
      return;
    }
    this.#settle(callId, undefined, replies);
  }

  #settle(callId: number, error: Error | undefined, value?: unknown): void {
    const pending = this.#pending.get(callId);
    if (pending === undefined) return;
    this.#pending.delete(callId);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (error !== undefined) pending.reject(error);
    else pending.resolve(value);
  }
}

/** The caller's view of an error a replica reported. */
function remoteError(member: number, method: string, e: WireError): Error {
  if (e.code === 'ERR_SQUALL_UNKNOWN_METHOD') {
    return new UnknownMethodError(method, e.className ?? 'object', e.callable ?? []);
  }
  if (e.code === 'ERR_SQUALL_NOT_A_QUERY') return new NotAQueryError(method, e.className ?? 'object', e.queries ?? []);
  return new RemoteMethodError(member, method, e.name, e.message, e.code);
}

/** What a channel's send threw or rejected with, as an Error (it may throw anything, undefined too). */
export function sendFailure(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(`the channel's send failed with ${String(thrown)}`, { cause: thrown });
}
