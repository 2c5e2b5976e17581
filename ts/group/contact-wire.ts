// What may cross a contact connection (ts/group/contact.ts), checked before anything uses it: the limits
// of the contact port, a schema per direction, and the handshake's proofs. Every line from the network is
// hostile until one of the parse functions below has accepted it; they never throw on any JSON value.
//
// Handshake and proofs (HMAC-SHA256 under the group's key, docs/membership.md, "The credential"):
//
//   member → joiner  { hello: { version: 1, nonce: nS, auth: bool } }            first, on accept
//   joiner → member  { join: { id, host }, nonce: nJ, proof?: P_J }              P_J with a key
//   member → joiner  { welcome: { proof: P_M } }                                  with a key, once P_J checks
//   …then every line, both ways, is { sealed: "<json of the message>", mac: M }   with a key
//
//   P_J = HMAC(key, "squall contact v1 joiner\0" ‖ nS ‖ nJ ‖ id:u32be ‖ len(host):u16be ‖ host)
//   P_M = HMAC(key, "squall contact v1 member\0" ‖ nS ‖ nJ ‖ id:u32be ‖ len(host):u16be ‖ host)
//   K   = HMAC(key, "squall contact v1 session\0" ‖ nS ‖ nJ)
//   M   = HMAC(K, direction ('J' joiner→member, 'M' member→joiner) ‖ seq:u64be ‖ the sealed text)
//
// nS and nJ are 32 fresh random bytes per connection, so a recorded exchange replayed on a new connection
// fails (the member's nonce differs), and the labels keep a proof of one kind from passing as another.
// The sequence numbers make every later line of a session unforgeable, unreorderable and unreplayable
// without the key. Nothing is encrypted: the contact channel carries ids, hosts and ports, no secrets.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MemberAddress } from '../fabric/peers.js';
import type { Joiner } from '../membership/protocol.js';
import type { View } from '../membership/view.js';

/**
 * Limits of the contact port (docs/membership.md, "The contact port"). A joiner's lines are a join request
 * or a port — a few hundred bytes — so a member reads at most JOINER_LINE_BYTES_MAX per line. A member's
 * offer lists every member of the next view with its host (at most 1024 members), so a joiner reads up to
 * MEMBER_LINE_BYTES_MAX. A connection must deliver a valid join request within HANDSHAKE_MS of its
 * accept, however slowly it trickles bytes; past the caps, new connections are closed at once.
 */
export const CONTACT_LIMITS = {
  /** Longest line a member reads from a joiner (bytes, the newline excluded). */
  joinerLineBytesMax: 4 * 1024,
  /** Longest line a joiner reads from a member: an offer for 1024 members fits with room to spare. */
  memberLineBytesMax: 2 * 1024 * 1024,
  /** Lines read but not yet taken that a connection may hold; the protocol never has more than one or two. */
  queuedLinesMax: 4,
  /** From accept to a complete, valid (and with a key, proven) join request. */
  handshakeMs: 5_000,
  /** Open contact connections from one source address. */
  connectionsPerSourceMax: 16,
  /** Open contact connections in all. */
  connectionsMax: 128,
  /** Bytes a member may have queued for a joiner that does not read: a largest line and some. */
  outputBytesMax: 2 * 1024 * 1024 + 64 * 1024,
  /** Refused attempts reported on the `warning` event per window; the rest are counted in the next report. */
  warningsPerWindow: 5,
  warningWindowMs: 10_000,
} as const;

/** The protocol's version in `hello`; a member or joiner of another version is refused with a message. */
export const CONTACT_VERSION = 1;
const NONCE_BYTES = 32;
const HEX_64 = /^[0-9a-f]{64}$/;
/** The largest view a member accepts in an offer (DESIGN.md §9: configurable to 1024 members). */
const VIEW_MEMBERS_MAX = 1024;
/** Host names in an offer: a configured member's may be a DNS name (at most 253 bytes). */
const HOST_BYTES_MAX = 255;
const MEMBER_ID_MAX = 0xfffe;

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

export interface Hello { version: number; nonce: string; auth: boolean }
export interface JoinRequest { join: Joiner; nonce: string; proof?: string }

/** Lines a joiner sends. */
export type FromJoiner = JoinRequest | { port: number };

/** Lines a member sends. */
export type FromMember =
  | { hello: Hello }
  | { welcome: { proof: string } }
  | { redirect: string }
  | { retry: string }
  /** `inView`: the id is a member of the view; `auth`: refused for want of the group's credential. */
  | { refused: string; inView?: boolean; auth?: boolean }
  | { accepted: true }
  | { offer: JoinOffer }
  | { addresses: MemberAddress[] };

export type ContactMessage = FromJoiner | FromMember;

// ---- schemas ------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `v` is an object with exactly the keys `required` and some of `optional`, all its own. */
function shaped(v: unknown, required: readonly string[], optional: readonly string[] = []): v is Obj {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  if (keys.length < required.length || keys.length > required.length + optional.length) return false;
  for (const k of required) if (!Object.hasOwn(v, k)) return false;
  for (const k of keys) if (!required.includes(k) && !optional.includes(k)) return false;
  return true;
}
export const isId = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MEMBER_ID_MAX;
const isIds = (v: unknown, max = VIEW_MEMBERS_MAX): v is number[] =>
  Array.isArray(v) && v.length <= max && v.every(isId) && new Set(v).size === v.length;
const isText = (v: unknown, maxBytes: number): v is string =>
  typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= maxBytes;
export const isHost = (v: unknown): v is string => isText(v, HOST_BYTES_MAX) && !/[\s\0/]/.test(v);
const isAddress = (v: unknown): v is string => isText(v, HOST_BYTES_MAX + 8)
  && /^(?:\[[^\]\s]+\]|[^:\s\]]+):\d{1,5}$/.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535;
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 65535;
const isReason = (v: unknown): v is string => isText(v, 2048);

export function isJoiner(v: unknown): v is Joiner {
  return shaped(v, ['id', 'host']) && isId(v.id) && isHost(v.host);
}

function isOffer(v: unknown): v is JoinOffer {
  if (!shaped(v, ['view', 'previous', 'previousSize', 'joined', 'hosts'], ['previousVoters'])) return false;
  if (v.previousVoters !== undefined && !isIds(v.previousVoters)) return false;
  const view = v.view;
  if (!shaped(view, ['vid', 'members']) || !Number.isInteger(view.vid) || (view.vid as number) < 0) return false;
  if (!isIds(view.members) || view.members.length === 0) return false;
  if (!isIds(v.previous) || !isIds(v.joined) || !Number.isInteger(v.previousSize)) return false;
  if ((v.previousSize as number) < 0 || (v.previousSize as number) > VIEW_MEMBERS_MAX) return false;
  const hosts = v.hosts;
  if (!isObject(hosts) || Object.keys(hosts).length !== view.members.length) return false;
  return view.members.every((id) => Object.hasOwn(hosts, String(id)) && isHost(hosts[String(id)]));
}

const isAddresses = (v: unknown): v is MemberAddress[] =>
  Array.isArray(v) && v.length <= VIEW_MEMBERS_MAX
  && v.every((a) => shaped(a, ['id', 'address']) && isId(a.id) && isAddress(a.address));

/** A line from a joiner, as a member reads it; null if it is not one the protocol has. */
export function parseFromJoiner(v: unknown): FromJoiner | null {
  if (shaped(v, ['join', 'nonce'], ['proof'])) {
    if (!isJoiner(v.join) || typeof v.nonce !== 'string' || !HEX_64.test(v.nonce)) return null;
    if (v.proof !== undefined && (typeof v.proof !== 'string' || !HEX_64.test(v.proof))) return null;
    return v as unknown as JoinRequest;
  }
  if (shaped(v, ['port']) && isPort(v.port)) return v as { port: number };
  return null;
}

/** A line from a member, as a joiner reads it; null if it is not one the protocol has. */
export function parseFromMember(v: unknown): FromMember | null {
  if (shaped(v, ['hello'])) {
    const h = v.hello;
    const valid = shaped(h, ['version', 'nonce', 'auth']) && Number.isInteger(h.version) && typeof h.nonce === 'string'
      && HEX_64.test(h.nonce) && typeof h.auth === 'boolean';
    return valid ? v as { hello: Hello } : null;
  }
  if (shaped(v, ['welcome'])) {
    const valid = shaped(v.welcome, ['proof']) && typeof v.welcome.proof === 'string' && HEX_64.test(v.welcome.proof);
    return valid ? v as { welcome: { proof: string } } : null;
  }
  if (shaped(v, ['redirect'])) return isAddress(v.redirect) ? v as { redirect: string } : null;
  if (shaped(v, ['retry'])) return isReason(v.retry) ? v as { retry: string } : null;
  if (shaped(v, ['refused'], ['inView', 'auth'])) {
    const flag = (f: unknown) => f === undefined || typeof f === 'boolean';
    return isReason(v.refused) && flag(v.inView) && flag(v.auth) ? v as { refused: string } : null;
  }
  if (shaped(v, ['accepted'])) return v.accepted === true ? { accepted: true } : null;
  if (shaped(v, ['offer'])) return isOffer(v.offer) ? v as { offer: JoinOffer } : null;
  if (shaped(v, ['addresses'])) return isAddresses(v.addresses) ? v as { addresses: MemberAddress[] } : null;
  return null;
}

/** A sealed line's envelope, before its MAC is checked. */
export function parseSealed(v: unknown): { sealed: string; mac: string } | null {
  return shaped(v, ['sealed', 'mac']) && typeof v.sealed === 'string' && typeof v.mac === 'string' && HEX_64.test(v.mac)
    ? v as { sealed: string; mac: string } : null;
}

// ---- proofs -------------------------------------------------------------------------------------------

export const newNonce = (): string => randomBytes(NONCE_BYTES).toString('hex');

const LABELS = {
  joiner: Buffer.from('squall contact v1 joiner\0'),
  member: Buffer.from('squall contact v1 member\0'),
  session: Buffer.from('squall contact v1 session\0'),
};

/** P_J or P_M of the header: binds both nonces and the joiner's id and host. */
export function proof(key: Buffer, who: 'joiner' | 'member', serverNonce: string, joinerNonce: string,
  joiner: Joiner): string {
  const host = Buffer.from(joiner.host, 'utf8');
  const fixed = Buffer.alloc(6);
  fixed.writeUInt32BE(joiner.id, 0);
  fixed.writeUInt16BE(host.byteLength, 4);
  return createHmac('sha256', key).update(LABELS[who])
    .update(Buffer.from(serverNonce, 'hex')).update(Buffer.from(joinerNonce, 'hex'))
    .update(fixed).update(host).digest('hex');
}

/** Compares two 64-hex-digit MACs in constant time. */
export function sameMac(a: string, b: string): boolean {
  return a.length === 64 && b.length === 64 && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** Seals and opens the lines of one authenticated session (K and a sequence number per direction). */
export class SessionSeal {
  readonly #key: Buffer;
  readonly #out: 'J' | 'M';
  #sent = 0n;
  #received = 0n;

  constructor(key: Buffer, serverNonce: string, joinerNonce: string, self: 'joiner' | 'member') {
    this.#key = createHmac('sha256', key).update(LABELS.session)
      .update(Buffer.from(serverNonce, 'hex')).update(Buffer.from(joinerNonce, 'hex')).digest();
    this.#out = self === 'joiner' ? 'J' : 'M';
  }

  seal(text: string): string {
    return JSON.stringify({ sealed: text, mac: this.#mac(this.#out, this.#sent++, text) });
  }

  /** The sealed text, or null when the MAC does not check (forged, reordered, replayed or truncated). */
  open(envelope: { sealed: string; mac: string }): string | null {
    const expected = this.#mac(this.#out === 'J' ? 'M' : 'J', this.#received, envelope.sealed);
    if (!sameMac(expected, envelope.mac)) return null;
    this.#received++;
    return envelope.sealed;
  }

  #mac(direction: 'J' | 'M', seq: bigint, text: string): string {
    const header = Buffer.alloc(9);
    header.write(direction, 0, 'latin1');
    header.writeBigUInt64BE(seq, 1);
    return createHmac('sha256', this.#key).update(header).update(text, 'utf8').digest('hex');
  }
}
