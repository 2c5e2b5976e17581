// Versions of delivered commands (DESIGN.md §4): `vid << 32n | seq`, a bigint. Its JSON-safe form is the
// string "vid.seq" — e.g. "3.1207", the 1208th message of view 3 — which these two helpers write and read.
// Compare versions as bigints (a < b), not their strings: "3.1207" sorts before "3.99" as text.

import { ConfigError } from '../errors.js';

const SEQ_BITS = 32n;
const SEQ_MASK = (1n << SEQ_BITS) - 1n;

/** The view and the sequence number in that view's total order of a version. */
export function versionParts(version: bigint): { vid: number; seq: number } {
  if (version < 0n) throw new RangeError(`version ${version} names no delivered command (−1n: nothing applied yet)`);
  return { vid: Number(version >> SEQ_BITS), seq: Number(version & SEQ_MASK) };
}

/** "vid.seq", e.g. "3.1207"; "-1" for −1n (a replica that has applied nothing yet). */
export function formatVersion(version: bigint): string {
  if (version === -1n) return '-1';
  const { vid, seq } = versionParts(version);
  return `${vid}.${seq}`;
}

/** The version formatVersion wrote: parseVersion(formatVersion(v)) === v. */
export function parseVersion(text: string): bigint {
  if (text === '-1') return -1n;
  const match = /^(\d+)\.(\d+)$/.exec(text);
  if (!match || BigInt(match[2]!) > SEQ_MASK) {
    throw new ConfigError(`'${text}' is not a version: expected "vid.seq", e.g. "3.1207", as formatVersion writes`);
  }
  return (BigInt(match[1]!) << SEQ_BITS) | BigInt(match[2]!);
}
