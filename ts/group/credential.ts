// A group's credential (docs/membership.md, "The credential"): one shared secret key that every member holds.
// It proves a process belongs to the group — on the contact port today (ts/group/contact.ts), on the fabric's HELLO
// once the fabric takes it (FabricOptions.authKey). A shared key rather than mutual TLS with a CA: a group
// is a handful of processes deployed together, one random key is one thing to provision and rotate (a
// file, an environment variable), and it needs no certificate authority, hostnames or clock. Without a
// key a group is open: anyone who reaches its ports can join it — for trusted networks only.
//
// Where the key comes from, first found wins (never the command line: argv is world-readable in ps):
//   1. Group.join({ secret })              a string (its UTF-8 bytes) or bytes
//   2. SQUALL_SECRET                       the environment variable's text
//   3. SQUALL_SECRET_FILE                  a path; the file's text
//   4. the configuration's "secretFile"    a path; relative to the configuration file when loaded from one
// Text from the environment or a file is trimmed of surrounding white space (a file written by
// `squall keygen > group.key` ends with a newline). A key shorter than MIN_SECRET_BYTES is a ConfigError.

import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** The shortest key accepted: 128 bits, so guessing it is out of reach whatever the rate of attempts. */
export const MIN_SECRET_BYTES = 16;
/** Bytes of a key made by `squall keygen` (printed as hex). */
export const KEYGEN_BYTES = 32;

export interface CredentialSources {
  /** JoinOptions.secret. */
  secret?: string | Uint8Array | undefined;
  /** The environment to read SQUALL_SECRET and SQUALL_SECRET_FILE from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The configuration's secretFile, already resolved against the configuration file's directory. */
  secretFile?: string | undefined;
}

/** The key the sources give, with where it came from; null when none gives one (an open group). */
export function resolveSecret(sources: CredentialSources): { key: Buffer; source: string } | null {
  const env = sources.env ?? process.env;
  if (sources.secret !== undefined) {
    if (typeof sources.secret !== 'string' && !(sources.secret instanceof Uint8Array)) {
      throw new ConfigError(`secret must be a string or a Uint8Array of at least ${MIN_SECRET_BYTES} bytes (make one `
        + `with \`squall keygen\`), got ${typeof sources.secret}`);
    }
    const key = typeof sources.secret === 'string' ? Buffer.from(sources.secret, 'utf8') : Buffer.from(sources.secret);
    return { key: checked(key, 'the secret option'), source: 'the secret option' };
  }
  if (env.SQUALL_SECRET !== undefined && env.SQUALL_SECRET !== '') {
    return { key: checked(Buffer.from(env.SQUALL_SECRET.trim(), 'utf8'), 'SQUALL_SECRET'), source: 'SQUALL_SECRET' };
  }
  if (env.SQUALL_SECRET_FILE !== undefined && env.SQUALL_SECRET_FILE !== '') {
    const source = `SQUALL_SECRET_FILE (${env.SQUALL_SECRET_FILE})`;
    return { key: readKeyFile(env.SQUALL_SECRET_FILE, 'SQUALL_SECRET_FILE'), source };
  }
  if (sources.secretFile !== undefined) {
    const source = `secretFile (${sources.secretFile})`;
    return { key: readKeyFile(sources.secretFile, 'the configuration\'s secretFile'), source };
  }
  return null;
}

/** A fresh random key as `squall keygen` prints it: KEYGEN_BYTES bytes in hex. */
export function generateSecret(): string {
  return randomBytes(KEYGEN_BYTES).toString('hex');
}

function readKeyFile(path: string, where: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read the group's secret from ${where} '${path}': ${(cause as Error).message}; `
      + `make one with \`squall keygen > ${path}\``, { cause });
  }
  return checked(Buffer.from(text.trim(), 'utf8'), `${where} '${path}'`);
}

function checked(key: Buffer, where: string): Buffer {
  if (key.byteLength < MIN_SECRET_BYTES) {
    throw new ConfigError(`the group's secret from ${where} is ${key.byteLength} bytes; it must be at least `
      + `${MIN_SECRET_BYTES} (make one with \`squall keygen\`)`);
  }
  return key;
}

/**
 * The key the fabric's handshake proves (FabricOptions.authKey, 16 to 64 bytes): derived from the group's
 * key under its own label, so a secret of any length serves, and a proof made for the fabric is never one
 * for the contact port (which uses the group's key with labels of its own).
 */
export function fabricKeyOf(key: Uint8Array): Buffer {
  return createHmac('sha256', key).update('squall fabric key v1').digest();
}
