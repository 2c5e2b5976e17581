// The contact channel's optional encryption (the configuration's "contactTls", docs/security.md): TLS 1.3
// over the contact connection, keyed by a pre-shared key derived from the group's secret — no certificates,
// no CA, nothing more to provision than the key the group already has. A peer without the key fails the TLS
// handshake itself (the PSK binder does not verify) before any line is read. TLS 1.3's PSK mode with an
// (EC)DHE exchange gives every connection fresh keys: a recorded session stays closed even to someone who
// learns the group's key later (forward secrecy).
// The squall handshake (contact-wire.ts) still runs inside: one protocol whether or not TLS wraps it.

import { createHmac } from 'node:crypto';
import {
  connect as tlsConnect, createSecureContext, TLSSocket, type ConnectionOptions, type TLSSocketOptions,
} from 'node:tls';
import type { Socket } from 'node:net';

/** The PSK identity both ends name: the derivation's version, never anything secret. */
const PSK_IDENTITY = 'squall-contact-v1';
const TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphersuites: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
} as const;

/** The TLS pre-shared key: the group's key under a label of its own (never usable as a contact proof or fabric key). */
export function contactPskOf(key: Uint8Array): Buffer {
  return createHmac('sha256', key).update('squall contact tls psk v1').digest();
}

/** True when a socket error is the TLS layer's (a wrong key, a peer that does not speak TLS, a broken record). */
export function isTlsFailure(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('ERR_SSL_') || (code === 'EPROTO' && /SSL routines/.test((error as Error).message));
}

/** True when a TLS failure says the peer holds another key (the PSK binder or a record did not verify). */
export function isWrongKey(error: Error): boolean {
  const code = (error as { code?: string }).code ?? '';
  return /binder|psk|decrypt|bad record mac|illegal parameter/i.test(`${code} ${error.message}`);
}

export interface AcceptTlsHandlers {
  /** The handshake completed: the peer holds the group's key. */
  onSecure: (socket: TLSSocket) => void;
  /** The TLS layer refused the peer (another key, or not TLS at all); the connection closes. */
  onRefused: (error: Error & { code: string }) => void;
}

/**
 * Runs the server side of a TLS handshake on an accepted connection. Nothing is written to it before the
 * handshake completes, so a refused peer hears only TLS's alert.
 */
export function acceptTls(raw: Socket, psk: Buffer, handlers: AcceptTlsHandlers): void {
  // Node's TLSSocket takes the server's pskCallback as tls.createServer does; @types/node omits it here.
  const options: TLSSocketOptions & { pskCallback: (socket: TLSSocket, identity: string) => Buffer | null } = {
    isServer: true,
    secureContext: createSecureContext(TLS_OPTIONS),
    pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? psk : null),
  };
  const socket = new TLSSocket(raw, options);
  const refused = (error: Error) => {
    if (isTlsFailure(error)) handlers.onRefused(error);
    socket.destroy();
  };
  socket.on('error', refused);
  socket.once('secure', () => {
    socket.off('error', refused);
    handlers.onSecure(socket);
  });
}

/** Opens a TLS connection to a contact port; resolves once the handshake has proven both ends hold the key. */
export function connectTls(host: string, port: number, psk: Buffer): { socket: TLSSocket; secure: Promise<void> } {
  const options: ConnectionOptions = {
    host, port, ...TLS_OPTIONS,
    // No certificate: the PSK binder authenticates the server; there is no name to check.
    checkServerIdentity: () => undefined,
    pskCallback: () => ({ psk, identity: PSK_IDENTITY }),
  };
  const socket = tlsConnect(options);
  const secure = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, secure };
}
