// One set of checks for every value a user gives squall: Group.join's options, the group configuration's
// keys, and the command line's numeric flags. Each check takes the value and the name the user wrote
// ('suspicionTimeoutMs', "cluster.json: subgroup 'kv': window", '--seconds') and returns the value or
// throws a ConfigError naming it, the range, and what was given. Nothing is ever replaced by a default: a
// value that is present is either valid or refused (-5, '1000', NaN, Infinity, 1.5 for an integer).

import { ConfigError } from './errors.js';

/** Shows a refused value as the user wrote it: strings quoted, NaN and Infinity by name. */
export function shown(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value === undefined) {
    return String(value);
  }
  if (typeof value === 'function') return `a function (${(value as { name?: string }).name || 'anonymous'})`;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** An integer from `min` to `max` (safe integers only). */
export function checkInteger(value: unknown, name: string, min: number, max: number, hint = ''): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}${hint}, got ${shown(value)}`);
  }
  return value;
}

/** A finite number from `min` to `max`; with `aboveMin`, strictly above `min`. */
export function checkNumber(value: unknown, name: string, min: number, max: number, aboveMin = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (aboveMin && value === min) ||
      value > max) {
    throw new ConfigError(
      `${name} must be a number ${aboveMin ? 'above' : 'from'} ${min}${aboveMin ? ' and at most' : ' to'} ${max}, ` +
        `got ${shown(value)}`);
  }
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(`${name} must be true or false, got ${shown(value)}`);
  return value;
}

/** A non-empty string of at most `maxLength` characters. */
export function checkString(value: unknown, name: string, example: string, maxLength = 4096): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new ConfigError(
      `${name} must be a non-empty string${maxLength < 4096 ? ` of at most ${maxLength} characters` : ''} such ` +
        `as ${example}, got ${shown(value)}`);
  }
  return value;
}

/** A plain object (not null, not an array); returned as a record to read its own keys from. */
export function checkObject(value: unknown, name: string, example: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${name} must be an object such as ${example}, got ${shown(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Refuses every own key of `o` that is not in `known`, naming it and listing the known ones. */
export function checkKeys(o: object, known: readonly string[], name: string): void {
  for (const key of Reflect.ownKeys(o)) {
    if (typeof key !== 'string' || !known.includes(key)) {
      throw new ConfigError(`${name}: unknown field '${String(key)}'; known: ${known.join(', ')}`);
    }
  }
}

/**
 * Names a user chooses that become keys of objects squall (or the user's code) looks up: subgroup names,
 * class names, the keys of `types`. Besides being identifiers they must not be a name every JavaScript
 * object already answers to (`'toString' in {}` is true), or a lookup would find Object.prototype's
 * member instead of the user's, and `__proto__` as a key replaces an object's prototype.
 */
const JS_INTERNAL_NAMES: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype), ...Object.getOwnPropertyNames(Function.prototype), 'prototype',
  '__proto__',
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkName(value: unknown, name: string, example: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > 128) {
    throw new ConfigError(
      `${name} must be an identifier (letters, digits, _; at most 128) such as ${example}, got ${shown(value)}`);
  }
  if (JS_INTERNAL_NAMES.has(value)) {
    throw new ConfigError(
      `${name} ${shown(value)} is a name every JavaScript object already has (like toString, constructor, ` +
        `__proto__); choose another, such as ${example}`);
  }
  return value;
}

/**
 * A whole number given on the command line as text ('--seconds 5'): digits only (a leading '-' where `min`
 * allows it), from `min` to `max`; `fallback` when the flag is absent.
 */
export function parseIntegerFlag(
  text: string | undefined, flag: string, min: number, max: number, fallback: number
): number {
  if (text === undefined) return fallback;
  const n = /^\s*-?\d+\s*$/.test(text) ? Number(text) : NaN;
  const kind = min === 1 ? 'a positive integer' : min === 0 ? 'an integer ≥ 0' : 'an integer';
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`--${flag} must be ${kind}, got '${text}'`);
  if (n > max) throw new ConfigError(`--${flag} must be at most ${max}, got '${text}'`);
  return n;
}

/**
 * A number given on the command line as text ('--latency-us 2.5'), from `min` (with `aboveMin`, above it) to `max`;
 * `fallback` when absent.
 */
export function parseNumberFlag(
  text: string | undefined, flag: string, min: number, max: number, fallback: number, aboveMin = false
): number {
  if (text === undefined) return fallback;
  const n = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(n) || n < min || (aboveMin && n === min)) {
    throw new ConfigError(`--${flag} must be a number ${aboveMin ? '>' : '≥'} ${min}, got '${text}'`);
  }
  if (n > max) throw new ConfigError(`--${flag} must be at most ${max}, got '${text}'`);
  return n;
}
