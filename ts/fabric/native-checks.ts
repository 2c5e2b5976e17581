// The native fabric's argument checks (ts/fabric/native.ts): every value that crosses into the addon is
// checked here first, with a ConfigError (or ArenaError) that names it — the C++ side then trusts its inputs.

import { isIP } from 'node:net';
import { ArenaError, ConfigError } from '../errors.js';
import * as map from '../generated/memory-map.js';
import { Lane } from './fabric.js';

/** Member ids the fabric takes (0xffff is reserved on the wire). */
const MAX_MEMBER_ID = 0xfffe;
/** FabricOptions.authKey: 128 bits at least; the HMAC takes up to a block. */
export const MIN_AUTH_KEY_BYTES = 16;
export const MAX_AUTH_KEY_BYTES = 64;

export function checkLane(lane: Lane): Lane {
  if (lane !== Lane.Data && lane !== Lane.Control) {
    throw new ConfigError(`lane must be Lane.Data (0) or Lane.Control (1), got ${String(lane)}`);
  }
  return lane;
}

export function checkChannel(channel: number): void {
  if (!Number.isInteger(channel) || channel < 0 || channel >= map.COMPLETION_RINGS) {
    throw new ConfigError(`channel must be an integer in [0, ${map.COMPLETION_RINGS - 1}], got ${channel}`);
  }
}

export function checkMemberId(id: number, what: string): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_MEMBER_ID) {
    throw new ConfigError(`${what} must be an integer in [0, ${MAX_MEMBER_ID}], got ${id}`);
  }
  return id;
}

export function checkPeer(peer: number, self: number): void {
  checkMemberId(peer, 'peer');
  if (peer === self) {
    throw new ConfigError(`peer ${peer} is this member itself: a member never connects to or grants itself`);
  }
}

/** FabricOptions.authKey: absent, or a Uint8Array of MIN_AUTH_KEY_BYTES to MAX_AUTH_KEY_BYTES (copied). */
export function checkAuthKey(key: unknown): Uint8Array | undefined {
  if (key === undefined) return undefined;
  if (!(key instanceof Uint8Array) || key.length < MIN_AUTH_KEY_BYTES || key.length > MAX_AUTH_KEY_BYTES) {
    const got = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
    throw new ConfigError(
      `authKey must be a Uint8Array of ${MIN_AUTH_KEY_BYTES} to ${MAX_AUTH_KEY_BYTES} random bytes, got ${got}: ` +
        'make one with crypto.randomBytes(32) and give every member the same',
    );
  }
  return Uint8Array.from(key);
}

/** For tests: HMAC-SHA256(key, data), or SHA-256(data) when key is null, as the addon computes them. */
export function checkU32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ConfigError(`${what} must be an integer in [0, 2^32), got ${value}`);
  }
  return value;
}

export function checkIntIn(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export function checkHandle(handle: number): void {
  if (!Number.isInteger(handle) || handle <= 0 || handle > 0xffffffff) {
    throw new ConfigError(`a fabric handle is a positive integer (NativeFabric.handle), got ${handle}`);
  }
}

export function checkRange(offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
    throw new ArenaError(`a write range needs integer offset and length ≥ 0, got offset ${offset}, length ${length}`);
  }
}

export function checkWrite(peer: number, offset: number, length: number): void {
  if (!Number.isInteger(peer) || peer < 0 || peer > MAX_MEMBER_ID) {
    throw new ConfigError(`peer must be an integer in [0, ${MAX_MEMBER_ID}], got ${peer}`);
  }
  checkRange(offset, length);
}

export function checkHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (typeof host !== 'string' || isIP(host) === 0) {
    throw new ConfigError(`host must be an IP address (or 'localhost'), got ${String(host)}: resolve names first`);
  }
  return host;
}
