// Seeded randomness for tests: a failing case names the seed, and SQUALL_TEST_SEED=<seed> replays it.

import type { Test } from 'uvu';
import { prng } from '../../ts/sim/shard-sim.js';

export { prng };

/** The suite's seed: SQUALL_TEST_SEED when given, otherwise taken from the clock (and printed on failure). */
export function suiteSeed(fallback: number = Date.now() % 2 ** 31): number {
  return Number(process.env['SQUALL_TEST_SEED'] ?? fallback);
}


/** Registers a test whose random cases derive from the suite seed and its name; a failure names the seed. */
export function seededTest(test: Test, seed: number, name: string, body: (rand: () => number) => void): void {
  test(name, () => {
    let h = seed;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
    try {
      body(prng(h));
    } catch (error) {
      if (error instanceof Error) error.message += ` (SQUALL_TEST_SEED=${seed})`;
      throw error;
    }
  });
}
