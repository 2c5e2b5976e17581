// How a new member enters a running group (DESIGN.md §6 "Join"). Every member runs a contact server: a
// plain TCP listener taking newline-delimited JSON. A joiner sends its id and host to any member; a member
// that is not the leader answers with the leader's contact address (published in the view's table), and
// the leader — once no change is under way — puts the joiner in its next proposal and answers `accepted`.
// After the commit it sends the joiner the next view; the joiner builds that view's engine and answers with
// its port, which the leader publishes in the old view's table for the others; once every port is known the
// leader sends the joiner the addresses, and the joiner connects like any member of the new view.
//
//   joiner → member   { join: { id, host } }
//   member → joiner   { redirect: "host:port" } | { retry: why } | { refused: why } | { accepted: true }
//   leader → joiner   { offer: JoinOffer }      (after the commit)
//   joiner → leader   { port: number }
//   leader → joiner   { addresses: [{ id, address }, …] }
//
// A joiner whose leader fails or whose proposal is replaced sees its connection close (or `retry`) and
// asks again; one that stops answering after the commit is given port 0, and the new view removes it.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { parseAddress } from '../address.js';
import { JoinError, TimeoutError } from '../errors.js';
import type { MemberAddress } from '../fabric/peers.js';
import type { Joiner } from '../membership/protocol.js';
import type { View } from './group.js';

/** What the leader tells a joiner after the commit: the view it enters and what it needs to build it. */
export interface JoinOffer {
  view: View;
  /** The view it comes from (for the state-transfer plan). */
  previous: readonly number[];
  /** The previous view less the members that left it cleanly (the start barrier's majority). */
  previousSize: number;
  /**
   * Of the previous view, the members that counted toward its majority, less those that left it cleanly:
   * the start barrier needs more than half of them (its own joiners did not count: ts/membership/protocol.ts).
   */
  previousVoters?: number[];
  /** The joiners of this change (the start barrier waits for them, but counts the previous view). */
  joined: readonly number[];
  /** The host of every member of the view. */
  hosts: Record<string, string>;
}

export type ContactMessage =
  | { join: Joiner }
  | { redirect: string }
  | { retry: string }
  /** `inView`: the id is a member of the view — final for a new member, expected for one joining again. */
  | { refused: string; inView?: boolean }
  | { accepted: true }
  | { offer: JoinOffer }
  | { port: number }
  | { addresses: MemberAddress[] };

/** One contact connection, at either end: JSON lines out, the lines that came in queued for next(). */
export class ContactSession {
  readonly #socket: Socket;
  readonly #lines: ContactMessage[] = [];
  #waiter: (() => void) | null = null;
  #buffered = '';
  #closed = false;
  readonly #onClose: Array<() => void> = [];

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffered += chunk;
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        try { this.#lines.push(JSON.parse(line) as ContactMessage); } catch { this.close(); return; }
      }
      this.#wake();
    });
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  get closed(): boolean { return this.#closed; }

  send(message: ContactMessage): void {
    if (!this.#closed) this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  /** The next message; rejects when the connection closes first or after timeoutMs. */
  async next(timeoutMs: number): Promise<ContactMessage> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line) return line;
      if (this.#closed) throw new JoinError('the contact connection closed');
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`no answer on the contact connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        t.unref(); // the open socket keeps the process alive while it matters
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  onClose(handler: () => void): void {
    if (this.#closed) handler();
    else this.#onClose.push(handler);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    this.#socket.destroySoon?.();
    this.#wake();
    for (const h of this.#onClose.splice(0)) h();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
}

/** A member's contact server: hands each join request, with its session, to `onJoin`. */
export class ContactServer {
  readonly #server: Server;
  readonly #sessions: Set<ContactSession>;
  readonly port: number;

  private constructor(server: Server, port: number, sessions: Set<ContactSession>) {
    this.#server = server;
    this.port = port;
    this.#sessions = sessions;
  }

  static async listen(address: string, onJoin: (session: ContactSession, joiner: Joiner) => void): Promise<ContactServer> {
    const { host, port } = parseAddress(address, 'contact address');
    const sessions = new Set<ContactSession>();
    const server = createServer((socket) => {
      const session = new ContactSession(socket);
      sessions.add(session);
      session.onClose(() => sessions.delete(session));
      session.next(10_000).then((m) => {
        if ('join' in m && isJoiner(m.join)) onJoin(session, m.join);
        else { session.send({ refused: 'expected { join: { id, host } }' }); session.close(); }
      }, () => session.close());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (cause) => reject(new JoinError(`cannot take join requests on ${address}: ${cause.message}; pick another contact address`, { cause })));
      server.listen(port, host, () => resolve());
    });
    server.on('error', () => {}); // after listening: a failed accept concerns that one connection only
    return new ContactServer(server, (server.address() as { port: number }).port, sessions);
  }

  /** Stops listening and closes every connection it accepted (the owner is stopping). */
  close(): void {
    this.#server.close();
    for (const session of this.#sessions) session.close();
  }
}

function isJoiner(value: unknown): value is Joiner {
  const j = value as Joiner;
  return !!j && Number.isInteger(j.id) && j.id >= 0 && j.id < 0xffff && typeof j.host === 'string' && j.host.length > 0;
}

/**
 * Asks the contacts, in turn, to let `joiner` in, following redirects to the leader and asking again while a
 * change is under way; resolves with the leader's session and its offer once a view with the joiner is
 * committed. `rejoining`: an earlier attempt with this id failed, so finding the id in the view means
 * waiting for the group to remove it, not a duplicate id.
 */
export async function requestJoin(contacts: readonly string[], joiner: Joiner, timeoutMs: number, rejoining = false): Promise<{ session: ContactSession; offer: JoinOffer }> {
  const deadline = performance.now() + timeoutMs;
  let last = 'no contact answered';
  let queue = [...contacts];
  for (let attempt = 0; performance.now() < deadline; attempt++) {
    if (queue.length === 0) queue = [...contacts];
    const contact = queue.shift()!;
    let session: ContactSession;
    try {
      session = await connect(contact, deadline);
    } catch (error) {
      last = `${contact}: ${(error as Error).message}`;
      await pause(50);
      continue;
    }
    try {
      session.send({ join: joiner });
      const answer = await session.next(deadline - performance.now());
      if ('redirect' in answer) { queue.unshift(answer.redirect); last = `${contact} sent it to ${answer.redirect}`; continue; }
      if ('refused' in answer && answer.inView && rejoining) { // its failed attempt: the group is removing it
        last = `${contact}: ${answer.refused}`;
        await pause(100);
        continue;
      }
      if ('refused' in answer) throw new JoinError(`member ${joiner.id} cannot join: ${answer.refused}`);
      if ('retry' in answer) { last = `${contact}: ${answer.retry}`; queue.unshift(contact); await pause(30 + Math.min(attempt, 10) * 10); continue; }
      if (!('accepted' in answer)) { last = `${contact} answered ${JSON.stringify(answer)}`; continue; }
      const offer = await session.next(deadline - performance.now());
      if ('offer' in offer) return { session, offer: offer.offer };
      last = 'retry' in offer ? `${contact}: ${offer.retry}` : `${contact} answered ${JSON.stringify(offer)}`;
    } catch (error) {
      if (error instanceof JoinError && /cannot join/.test(error.message)) { session.close(); throw error; }
      last = `${contact}: ${(error as Error).message}`;
    }
    session.close();
    await pause(50);
  }
  throw new JoinError(`member ${joiner.id} could not join within ${timeoutMs} ms through ${contacts.join(', ')} (last: ${last}); check that the group runs and the contact addresses are right, or raise connectTimeoutMs`);
}

/** Sends a joiner its offer and resolves with the port it answers, or 0 if it is gone or does not answer. */
export async function offerView(session: ContactSession | undefined, offer: JoinOffer, timeoutMs: number): Promise<number> {
  if (!session) return 0;
  session.send({ offer });
  const reply = await session.next(timeoutMs).catch(() => null);
  return reply && 'port' in reply && Number.isInteger(reply.port) && reply.port > 0 ? reply.port : 0;
}

function connect(address: string, deadline: number): Promise<ContactSession> {
  const { host, port } = parseAddress(address, 'contact address');
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const t = setTimeout(() => { socket.destroy(); reject(new TimeoutError('connect timed out')); }, Math.max(1, Math.min(2_000, deadline - performance.now())));
    socket.once('connect', () => { clearTimeout(t); resolve(new ContactSession(socket)); });
    socket.once('error', (error) => { clearTimeout(t); reject(error); });
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
