// Assertions: checks for programmer bugs in squall, never for conditions a user can meet (those are the
// coded SquallErrors of ts/errors.ts). A failed assertion throws an Error whose message starts
// "squall internal error:", like `assert` in ts/errors.ts, re-exported here so one import serves.
//
// They run on the per-message path, so the helpers take numbers and a constant description: the passing
// case is one integer compare and a call V8 inlines; the message is built only when the check fails.
// Checks are paired where they can be: one where a value leaves (written to the table, pushed to peers)
// and one where it lands (read back by this member or by a peer).

export { assert } from './errors.js';

/** Throws the error of a failed assertion. */
export function fail(message: string): never {
  throw new Error(`squall internal error: ${message}`);
}

/** `value` ≤ `limit`, e.g. deliveredNum ≤ seqNum. */
export function assertAtMost(value: number, limit: number, what: string): void {
  if (value > limit) fail(`${what}: ${value} > ${limit}`);
}

/** A counter did not go back: `after` ≥ `before`. */
export function assertMonotonic(before: number, after: number, what: string): void {
  if (after < before) fail(`${what} went back from ${before} to ${after}`);
}

/** `value` === `expected`, e.g. the index a slot holds is the one its reader expects. */
export function assertEqual(value: number, expected: number, what: string): void {
  if (value !== expected) fail(`${what}: ${value}, expected ${expected}`);
}
