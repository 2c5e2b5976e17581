// How a new member enters a running group (DESIGN.md §6 "Join"). Every member runs a contact server: a
// plain TCP listener taking newline-delimited JSON. A joiner sends its id and host to any member; a member
// that is not the leader answers with the leader's contact address (published in the view's table), and
// the leader — once no change is under way — puts the joiner in its next proposal and answers `accepted`.
// After the commit it sends the joiner the next view; the joiner builds that view's engine and answers with
// its port, which the leader publishes in the old view's table for the others; once every port is known the
// leader sends the joiner the addresses, and the joiner connects like any member of the new view.
//
//   member → joiner   { hello: { version, nonce, auth } }          (first, on accept)
//   joiner → member   { join: { id, host }, nonce, proof? }
//   member → joiner   { welcome: { proof } }                        (with a key; then every line is sealed)
//   member → joiner   { redirect: "host:port" } | { retry: why } | { refused: why } | { accepted: true }
//   leader → joiner   { offer: JoinOffer }      (after the commit)
//   joiner → leader   { port: number }
//   leader → joiner   { addresses: [{ id, address }, …] }
//
// A joiner whose leader fails or whose proposal is replaced sees its connection close (or `retry`) and
// asks again; one that stops answering after the commit is given port 0, and the new view removes it.
//
// With the group's key (ts/group/credential.ts) both ends prove it before either trusts the other, and
// every later line carries a MAC (ts/group/contact-wire.ts draws the handshake). Every line is validated
// against its direction's schema before use, and the port bounds line lengths, queued lines, connections
// per source and in all, the time from accept to a valid join request, and output to a joiner that does not
// read (CONTACT_LIMITS). Nothing a client sends can throw out of here: a bad line closes its connection.
// With "contactTls" (ts/group/contact-tls.ts) all of this runs inside TLS 1.3 keyed by the group's key.
// One connection, at either end, is a ContactSession (ts/group/contact-session.ts).

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { parseAddress } from '../address.js';
import { AuthError, JoinError, TimeoutError } from '../errors.js';
import type { Joiner } from '../membership/protocol.js';
import { acceptTls, connectTls, contactPskOf, isTlsFailure, isWrongKey } from './contact-tls.js';
import { ContactProtocolError, ContactSession, type ContactLimits } from './contact-session.js';
import {
  CONTACT_LIMITS, CONTACT_VERSION, newNonce, proof, sameMac, SessionSeal, type ContactMessage, type JoinOffer,
} from './contact-wire.js';

export type { ContactMessage, JoinOffer } from './contact-wire.js';
export { CONTACT_LIMITS } from './contact-wire.js';

export { ContactProtocolError, ContactSession, type ContactLimits } from './contact-session.js';

export interface ContactServerOptions {
  /** The group's key: a joiner must prove it, and is proven it. Null or absent: an open group. */
  key?: Buffer | null;
  /** Encrypt every contact connection with TLS 1.3 keyed by `key` (required then). */
  tls?: boolean;
  /** Where refused attempts are reported (rate-limited: CONTACT_LIMITS.warningsPerWindow per window). */
  warn?: (error: Error) => void;
  /** Overrides of CONTACT_LIMITS (tests). */
  limits?: Partial<ContactLimits>;
}

/** Reports at most `perWindow` errors per window; the next report after a quiet spell counts the rest. */
export class WarningGate {
  readonly #report: (error: Error) => void;
  readonly #perWindow: number;
  readonly #windowMs: number;
  #windowStart = -Infinity;
  #inWindow = 0;
  #suppressed = 0;
  /** What is counted, in the note on suppressed reports. */
  readonly #what: string;

  constructor(report: (error: Error) => void, perWindow: number, windowMs: number, what = 'refused contact attempts') {
    this.#report = report;
    this.#what = what;
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  report(error: Error): void {
    const now = performance.now();
    if (now - this.#windowStart >= this.#windowMs) { this.#windowStart = now; this.#inWindow = 0; }
    if (this.#inWindow >= this.#perWindow) { this.#suppressed++; return; }
    this.#inWindow++;
    if (this.#suppressed > 0) {
      error.message += ` (and ${this.#suppressed} more ${this.#what} before this one, not reported: at most `
        + `${this.#perWindow} reports per ${this.#windowMs / 1000} s)`;
      this.#suppressed = 0;
    }
    this.#report(error);
  }
}

/**
 * A member's contact server: greets each connection, checks its join request (and with a key, its proof),
 * and hands the request, with its session, to `onJoin`. Everything before that is bounded by
 * CONTACT_LIMITS; what happens after is the group's (the session then belongs to a known joiner).
 */
export class ContactServer {
  readonly #server: Server;
  readonly #sessions: Set<ContactSession>;
  readonly #handshaking: Set<Socket>;
  readonly port: number;

  private constructor(server: Server, port: number, sessions: Set<ContactSession>, handshaking: Set<Socket>) {
    this.#server = server;
    this.port = port;
    this.#sessions = sessions;
    this.#handshaking = handshaking;
  }

  /** Open contact connections (in their TLS handshake, greeted, handshaking, or handed to the group). */
  get connections(): number { return this.#sessions.size + this.#handshaking.size; }

  static async listen(address: string, onJoin: (session: ContactSession, joiner: Joiner) => void,
    options: ContactServerOptions = {}): Promise<ContactServer> {
    const { host, port } = parseAddress(address, 'contact address');
    const limits: ContactLimits = { ...CONTACT_LIMITS, ...options.limits };
    const key = options.key ?? null;
    if (options.tls && !key) {
      throw new JoinError('contactTls needs the group\'s secret key: the TLS key is derived from it');
    }
    const psk = options.tls && key ? contactPskOf(key) : null;
    const gate = new WarningGate(options.warn ?? (() => {}), limits.warningsPerWindow, limits.warningWindowMs);
    const sessions = new Set<ContactSession>();
    /** Connections still in their TLS handshake (no session yet). */
    const handshaking = new Set<Socket>();
    const perSource = new Map<string, number>();
    const server = createServer((raw) => {
      const source = raw.remoteAddress ?? '?';
      const open = perSource.get(source) ?? 0;
      if (open >= limits.connectionsPerSourceMax) {
        raw.destroy();
        gate.report(new JoinError(`contact port: refused a connection from ${source}, which has ${open} open already `
          + `(at most ${limits.connectionsPerSourceMax} per source address)`));
        return;
      }
      perSource.set(source, open + 1);
      raw.once('close', () => {
        const n = (perSource.get(source) ?? 1) - 1;
        if (n > 0) perSource.set(source, n); else perSource.delete(source);
      });
      const accepted = performance.now();
      const begin = (socket: Socket) => serveJoiner(socket, accepted, { limits, key, sessions, gate, onJoin });
      if (!psk) { begin(raw); return; }
      // With TLS, a peer without the key is refused by the TLS handshake itself, before a line is read; the
      // handshake shares the deadline.
      handshaking.add(raw);
      raw.once('close', () => handshaking.delete(raw));
      const tlsDeadline = setTimeout(() => {
        raw.destroy();
        gate.report(new JoinError(`contact port: refused a connection from ${source}: no TLS handshake within `
          + `${limits.handshakeMs} ms of connecting`));
      }, limits.handshakeMs);
      raw.once('close', () => clearTimeout(tlsDeadline));
      acceptTls(raw, psk, {
        onSecure: (socket) => { clearTimeout(tlsDeadline); handshaking.delete(raw); begin(socket); },
        onRefused: (error) => { clearTimeout(tlsDeadline); gate.report(tlsRefusal(error, source)); },
      });
    });
    server.maxConnections = limits.connectionsMax;
    server.on('drop', (data?: { remoteAddress?: string }) => {
      const source = data?.remoteAddress ?? 'an unknown address';
      gate.report(new JoinError(`contact port: refused a connection from ${source}: `
        + `${limits.connectionsMax} contact connections are open (the most)`));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (cause) => reject(new JoinError(`cannot take join requests on ${address}: ${cause.message}; `
        + 'pick another contact address', { cause })));
      server.listen(port, host, () => resolve());
    });
    server.on('error', () => {}); // after listening: a failed accept concerns that one connection only
    return new ContactServer(server, (server.address() as { port: number }).port, sessions, handshaking);
  }

  /** Stops listening and closes every connection it accepted (the owner is stopping). */
  close(): void {
    this.#server.close();
    for (const raw of this.#handshaking) raw.destroy();
    for (const session of this.#sessions) session.close();
  }
}

/** What serving one joiner's connection needs of its server. */
interface ServeParts {
  limits: ContactLimits;
  key: Buffer | null;
  sessions: Set<ContactSession>;
  gate: WarningGate;
  onJoin: (session: ContactSession, joiner: Joiner) => void;
}

/**
 * One accepted connection (after its TLS handshake, with TLS): the member's side of the handshake, within
 * handshakeMs of `accepted`, then the join request goes to the server's owner; a refusal is reported.
 */
function serveJoiner(socket: Socket, accepted: number, { limits, key, sessions, gate, onJoin }: ServeParts): void {
  const session = new ContactSession(socket, 'member', limits);
  sessions.add(session);
  session.onClose(() => sessions.delete(session));
  // The deadline runs from accept, whatever the client sends: trickling a byte at a time holds a slot
  // no longer than one that sends nothing. (The handshake then fails with the reason, and reports it.)
  const left = Math.max(1, limits.handshakeMs - (performance.now() - accepted));
  const deadline = setTimeout(() => {
    session.abort(`no valid join request within ${limits.handshakeMs} ms of connecting`);
  }, left);
  session.onClose(() => clearTimeout(deadline));
  handshake(session, key, left + 1_000).then((joiner) => { // the deadline above ends it first
    clearTimeout(deadline);
    if (!session.closed) onJoin(session, joiner);
  }, (error: Error) => {
    if (!(error instanceof ContactProtocolError) && !(error instanceof AuthError)) { // it hung up: nothing to refuse
      session.close();
      return;
    }
    gate.report(error instanceof AuthError ? error : new JoinError(`contact port: ${error.message}`));
    session.close(); // after a refusal: its line goes out first (a broken line has aborted the session already)
  });
}

/** The report of a connection the TLS layer refused: a wrong key is an AuthError, plain TCP a protocol breach. */
function tlsRefusal(error: Error & { code: string }, source: string): Error {
  if (isWrongKey(error)) {
    return new AuthError(`contact port: refused a TLS connection from ${source}: it could not prove the group's key `
      + `(${error.code}); ${AUTH_HOW}`, source);
  }
  return new JoinError(`contact port: refused a connection from ${source}: it did not complete a TLS handshake `
    + `(${error.code}); this group's contact port takes TLS only ("contactTls": true at every member and joiner)`);
}

const AUTH_HOW = 'give every member and joiner the same key (the secret option of Group.join, SQUALL_SECRET, '
  + 'SQUALL_SECRET_FILE or the configuration\'s "secretFile"; `squall keygen` makes one)';

/**
 * The member's side of the handshake: greet, read the join request, check its proof, prove itself back and
 * seal the session. Resolves with the joiner; throws AuthError (to be reported) when the joiner cannot prove
 * the key, ContactProtocolError on a bad line or past the deadline (the session is closed then).
 */
async function handshake(session: ContactSession, key: Buffer | null, timeoutMs: number): Promise<Joiner> {
  const serverNonce = newNonce();
  session.send({ hello: { version: CONTACT_VERSION, nonce: serverNonce, auth: key !== null } });
  const request = await session.next(timeoutMs);
  if (!('join' in request)) {
    session.send({ refused: 'expected { join: { id, host }, nonce } first' });
    throw new ContactProtocolError(`contact connection with ${session.peer} closed: it sent a port before a join `
      + 'request');
  }
  const { join: joiner, nonce, proof: given } = request;
  const refuse = (why: string, logged: string): never => {
    session.send({ refused: why, auth: true });
    throw new AuthError(`contact port: refused member ${joiner.id} at ${session.peer}: ${logged}`, session.peer);
  };
  if (key === null) {
    if (given !== undefined) {
      refuse(`this member has no secret key but the joiner has one: ${AUTH_HOW}, or none at all on a trusted network`,
        'it has a secret key and this member has none');
    }
    return joiner;
  }
  if (given === undefined) {
    refuse(`this group requires its secret key: ${AUTH_HOW}`, 'it has no secret key (the group requires one)');
  }
  if (!sameMac(proof(key, 'joiner', serverNonce, nonce, joiner), given!)) {
    refuse(`the join request's proof does not check: the joiner's secret key differs from the group's; ${AUTH_HOW}`,
      'its proof does not check (another key, or a replayed handshake)');
  }
  session.send({ welcome: { proof: proof(key, 'member', serverNonce, nonce, joiner) } });
  session.sealWith(new SessionSeal(key, serverNonce, nonce, 'member'));
  return joiner;
}

/**
 * The joiner's side of the handshake on a fresh connection: read the greeting, send the join request (with
 * its proof), check the member's proof and seal the session. Returns the member's first answer.
 */
async function greet(session: ContactSession, contact: string, joiner: Joiner, key: Buffer | null,
  deadline: number): Promise<ContactMessage> {
  const hello = await session.next(deadline - performance.now());
  if (!('hello' in hello)) {
    throw new ContactProtocolError(`${contact} did not greet (it sent ${Object.keys(hello)[0]})`);
  }
  const { version, nonce: serverNonce, auth } = hello.hello;
  if (version !== CONTACT_VERSION) {
    throw new JoinError(`the member at ${contact} speaks contact protocol ${version}, this joiner ${CONTACT_VERSION}: `
      + 'run the same squall version at every member');
  }
  if (key && !auth) {
    throw new AuthError(`the member at ${contact} has no secret key, but this joiner has one: it will not trust a `
      + `member that cannot prove the group's key; ${AUTH_HOW}`, contact);
  }
  const nonce = newNonce();
  session.send({ join: joiner, nonce, ...(key ? { proof: proof(key, 'joiner', serverNonce, nonce, joiner) } : {}) });
  const answer = await session.next(deadline - performance.now());
  if ('refused' in answer && answer.auth) {
    throw new AuthError(`member ${joiner.id} cannot join through ${contact}: ${answer.refused}`, contact);
  }
  if (!key) return answer;
  if (!('welcome' in answer)) {
    throw new ContactProtocolError(`${contact} answered a proven join request without proving itself`);
  }
  if (!sameMac(answer.welcome.proof, proof(key, 'member', serverNonce, nonce, joiner))) {
    throw new AuthError(`the member at ${contact} could not prove it holds the group's secret key (its key differs `
      + `from this joiner's): not trusting it; ${AUTH_HOW}`, contact);
  }
  session.sealWith(new SessionSeal(key, serverNonce, nonce, 'joiner'));
  return session.next(deadline - performance.now());
}

export interface JoinRequestOptions {
  /** An earlier attempt with this id failed: finding the id in the view means waiting for its removal. */
  rejoining?: boolean;
  /** The group's key (both ends prove it); null or absent in an open group. */
  key?: Buffer | null;
  /** Speak TLS 1.3 keyed by `key` (the configuration's "contactTls"). */
  tls?: boolean;
}

/**
 * Asks the contacts, in turn, to let `joiner` in, following redirects to the leader and asking again while a
 * change is under way; resolves with the leader's session and its offer once a view with the joiner is
 * committed. A contact that cannot prove the group's key is skipped like one that is down — it may be an
 * impostor at one address — and the AuthError is final only once every configured contact has given one.
 */
export async function requestJoin(contacts: readonly string[], joiner: Joiner, timeoutMs: number,
  options: JoinRequestOptions = {}): Promise<{ session: ContactSession; offer: JoinOffer }> {
  const { rejoining = false, key = null, tls = false } = options;
  if (tls && !key) throw new JoinError('contactTls needs the group\'s secret key: the TLS key is derived from it');
  const psk = tls && key ? contactPskOf(key) : null;
  const deadline = performance.now() + timeoutMs;
  let last: Error | string = 'no contact answered';
  const refusedAuth = new Set<string>();
  let queue = [...contacts];
  for (let attempt = 0; performance.now() < deadline; attempt++) {
    if (queue.length === 0) queue = [...contacts];
    const contact = queue.shift()!;
    let session: ContactSession;
    try {
      session = await connect(contact, deadline, psk);
    } catch (error) {
      last = error instanceof AuthError ? error : `${contact}: ${(error as Error).message}`;
      if (error instanceof AuthError && authFinal(refusedAuth, contact, contacts)) throw error;
      await pause(50);
      continue;
    }
    try {
      // A member greets and answers a join request at once; one that does not within handshakeMs (the bound it
      // holds joiners to) is stopped or stalled — its kernel still accepts connections — and the next is asked.
      const greeted = Math.min(deadline, performance.now() + CONTACT_LIMITS.handshakeMs);
      const answer = await greet(session, contact, joiner, key, greeted);
      if ('redirect' in answer) {
        queue.unshift(answer.redirect);
        last = `${contact} sent it to ${answer.redirect}`;
        session.close();
        continue;
      }
      if ('refused' in answer && answer.inView && rejoining) { // its failed attempt: the group is removing it
        last = `${contact}: ${answer.refused}`;
        session.close();
        await pause(100);
        continue;
      }
      if ('refused' in answer) throw new JoinError(`member ${joiner.id} cannot join: ${answer.refused}`);
      if ('retry' in answer) {
        last = `${contact}: ${answer.retry}`;
        queue.unshift(contact);
        session.close();
        await pause(30 + Math.min(attempt, 10) * 10);
        continue;
      }
      if (!('accepted' in answer)) {
        last = `${contact} answered ${Object.keys(answer)[0]}`;
        session.close();
        continue;
      }
      const offer = await session.next(deadline - performance.now());
      if ('offer' in offer) return { session, offer: offer.offer };
      last = 'retry' in offer ? `${contact}: ${offer.retry}` : `${contact} answered ${Object.keys(offer)[0]}`;
    } catch (error) {
      // A refusal, or another version, is final: a proven member speaks for the group. A contact that broke
      // the protocol is one bad contact; one that failed the key's proof may be an impostor: the next is asked.
      if (error instanceof AuthError) {
        last = error;
        if (authFinal(refusedAuth, contact, contacts)) { session.close(); throw error; }
      } else if (isFinalRefusal(error)) {
        session.close();
        throw error;
      } else {
        last = `${contact}: ${(error as Error).message}`;
      }
    }
    session.close();
    await pause(50);
  }
  if (last instanceof AuthError) throw last;
  const lastText = last instanceof Error ? last.message : last;
  throw new JoinError(`member ${joiner.id} could not join within ${timeoutMs} ms through ${contacts.join(', ')} `
    + `(last: ${lastText}); check that the group runs and the contact addresses are right, or raise connectTimeoutMs`);
}

/** A refusal, or another version: final, for a proven member speaks for the group. */
function isFinalRefusal(error: unknown): boolean {
  return error instanceof JoinError && !(error instanceof ContactProtocolError)
    && /cannot join|speaks contact protocol/.test(error.message);
}

/** Records a contact's failed proof; true once every configured contact has failed one (the key is wrong here). */
function authFinal(refused: Set<string>, contact: string, contacts: readonly string[]): boolean {
  refused.add(contact);
  return contacts.every((c) => refused.has(c));
}

/**
 * Sends a joiner its offer and resolves with the port it answers, or 0 when it closes, answers something
 * else, or takes longer than `answerMs`. Time this member's own event loop stood still (the proposer takes
 * its snapshot of the state right after offering, which can block it for a second or more with 100 MiB)
 * is not the joiner's: the deadline moves by it, as the failure detector discounts its own lateness.
 */
export async function offerView(session: ContactSession | undefined, offer: JoinOffer,
  answerMs: number): Promise<number> {
  if (!session) return 0;
  session.send({ offer });
  const SLICE_MS = 50;
  let deadline = performance.now() + answerMs;
  for (;;) {
    const sliceMs = Math.min(SLICE_MS, deadline - performance.now());
    if (sliceMs <= 0) return 0;
    const before = performance.now();
    const reply = await session.next(sliceMs)
      .catch((error: Error) => (error instanceof TimeoutError ? undefined : null)); // undefined: no answer yet
    if (reply === null) return 0; // it closed
    if (reply) return 'port' in reply && Number.isInteger(reply.port) && reply.port > 0 && reply.port < 65536
      ? reply.port : 0;
    const stalledMs = performance.now() - before - sliceMs;
    if (stalledMs > SLICE_MS) deadline += stalledMs;
  }
}

function connect(address: string, deadline: number, psk: Buffer | null): Promise<ContactSession> {
  const { host, port } = parseAddress(address, 'contact address');
  return new Promise((resolve, reject) => {
    const plain = psk ? null : createConnection({ host, port });
    const tls = psk ? connectTls(host, port, psk) : null;
    const socket = (plain ?? tls!.socket);
    const t = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError('connect timed out'));
    }, Math.max(1, Math.min(2_000, deadline - performance.now())));
    const connected = tls ? tls.secure : new Promise<void>((ok, fail) => {
      plain!.once('connect', ok);
      plain!.once('error', fail);
    });
    connected.then(() => { clearTimeout(t); resolve(new ContactSession(socket, 'joiner')); }, (error: Error) => {
      clearTimeout(t);
      socket.destroy();
      if (!isTlsFailure(error)) { reject(error); return; }
      reject(new AuthError(`the TLS handshake with the contact at ${address} failed (${error.code}): it holds another `
        + `key, or does not take TLS; every member and joiner needs the same key and "contactTls" setting; ${AUTH_HOW}`,
        address));
    });
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
