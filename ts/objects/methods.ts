// Which methods of a user's object may be called by name from the wire. The table is built once per
// instance, before any command runs, so what is callable never depends on the object's state — every replica
// accepts and refuses the same names. Lookups go through a Map, so `__proto__`, `constructor`, inherited
// Object.prototype members (`toString`, `hasOwnProperty`, …) and private `#fields` are simply not there.
//
// The table also knows which methods the class declares as queries (its static `queries` list, see
// replicated-object.ts): the only ones `query(member)` may run, at the caller and at the replica alike.

import { ConfigError } from '../errors.js';

/** Names a caller may not use even when the class defines them. */
const RESERVED = new Set(['constructor', '__proto__', 'then']);

export type AnyFunction = (...args: unknown[]) => unknown;

export class MethodTable {
  readonly className: string;
  /** Callable names, sorted, for error messages. */
  readonly names: readonly string[];
  /** The methods declared as queries, sorted. */
  readonly queries: readonly string[];
  readonly #methods = new Map<string, AnyFunction>();
  readonly #queries: ReadonlySet<string>;

  /** `declaredQueries`: the class's static `queries` (anything else there is a ConfigError naming it). */
  constructor(instance: object, declaredQueries?: unknown) {
    this.className = instance.constructor?.name || 'object';
    // Own function-valued fields (e.g. `book = (t) => …`), then prototype methods up to Object.prototype;
    // the nearest definition wins, as it does for a normal call.
    const levels: object[] = [instance];
    for (let p = Object.getPrototypeOf(instance); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      levels.push(p);
    }
    for (const level of levels) {
      for (const name of Object.getOwnPropertyNames(level)) {
        if (RESERVED.has(name) || this.#methods.has(name)) continue;
        const descriptor = Object.getOwnPropertyDescriptor(level, name)!;
        // getters are not methods
        if (typeof descriptor.value === 'function') this.#methods.set(name, descriptor.value as AnyFunction);
      }
    }
    this.names = [...this.#methods.keys()].sort();
    this.#queries = this.#checkQueries(declaredQueries);
    this.queries = [...this.#queries].sort();
  }

  /** True when `name` is a method declared as a query. */
  isQuery(name: string): boolean {
    return this.#queries.has(name);
  }

  #checkQueries(declared: unknown): ReadonlySet<string> {
    if (declared === undefined) return new Set();
    const where = `${this.className}.queries`;
    if (!Array.isArray(declared)) {
      throw new ConfigError(
        `${where} must be an array of method names, e.g. static queries = ['holder', 'count'] as const`);
    }
    for (const name of declared as unknown[]) {
      if (typeof name !== 'string' || !this.#methods.has(name)) {
        throw new ConfigError(
          `${where} names ${JSON.stringify(name)}, which is not a method of ${this.className}; its ` +
            `methods: ${this.names.join(', ') || '(none)'}`);
      }
    }
    return new Set(declared as string[]);
  }

  /** The method called `name`, or undefined when it is not callable. */
  get(name: string): AnyFunction | undefined {
    return this.#methods.get(name);
  }
}
