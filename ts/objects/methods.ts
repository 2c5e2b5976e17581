// Which methods of a user's object may be called by name from the wire. The table is built once per
// instance, before any command runs, so what is callable never depends on the object's state — every replica
// accepts and refuses the same names. Lookups go through a Map, so `__proto__`, `constructor`, inherited
// Object.prototype members (`toString`, `hasOwnProperty`, …) and private `#fields` are simply not there.

/** Names a caller may not use even when the class defines them. */
const RESERVED = new Set(['constructor', '__proto__', 'then']);

export type AnyFunction = (...args: unknown[]) => unknown;

export class MethodTable {
  readonly className: string;
  /** Callable names, sorted, for error messages. */
  readonly names: readonly string[];
  readonly #methods = new Map<string, AnyFunction>();

  constructor(instance: object) {
    this.className = instance.constructor?.name || 'object';
    // Own function-valued fields (e.g. `book = (t) => …`), then prototype methods up to Object.prototype;
    // the nearest definition wins, as it does for a normal call.
    const levels: object[] = [instance];
    for (let p = Object.getPrototypeOf(instance); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) levels.push(p);
    for (const level of levels) {
      for (const name of Object.getOwnPropertyNames(level)) {
        if (RESERVED.has(name) || this.#methods.has(name)) continue;
        const descriptor = Object.getOwnPropertyDescriptor(level, name)!;
        if (typeof descriptor.value === 'function') this.#methods.set(name, descriptor.value as AnyFunction); // getters are not methods
      }
    }
    this.names = [...this.#methods.keys()].sort();
  }

  /** The method called `name`, or undefined when it is not callable. */
  get(name: string): AnyFunction | undefined {
    return this.#methods.get(name);
  }
}
