// An example with bulk state: a replicated map from keys to byte values. Its snapshot is every entry, so a
// member that joins a store of 100 MB receives 100 MB (the state-transfer tests and `squall node` use it).

import { crc32 } from 'node:zlib';
import { decodeValue, encodeValue } from '../objects/codec.js';

export class KeyValueStore {
  /** The read-only methods `query(member)` may run; `put` is ordered only. */
  static readonly queries = ['get', 'summary'] as const;

  #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  /** Ordered: sets `key` to `value`; returns the bytes the store holds now. */
  put(key: string, value: Uint8Array): number {
    this.#bytes += value.byteLength - (this.#entries.get(key)?.byteLength ?? 0);
    this.#entries.set(key, value);
    return this.#bytes;
  }

  /** A query: the value of `key`, or null. */
  get(key: string): Uint8Array | null {
    return this.#entries.get(key) ?? null;
  }

  /** A query: how many keys, how many bytes of values, and a CRC-32 over every entry in key order. */
  summary(): { keys: number; bytes: number; crc: number } {
    let crc = 0;
    for (const key of [...this.#entries.keys()].sort()) {
      crc = crc32(key, crc);
      crc = crc32(this.#entries.get(key)!, crc);
    }
    return { keys: this.#entries.size, bytes: this.#bytes, crc };
  }

  snapshot(): Uint8Array {
    return encodeValue([...this.#entries]);
  }

  static restore(bytes: Uint8Array): KeyValueStore {
    const store = new KeyValueStore();
    for (const [key, value] of decodeValue(bytes) as Array<[string, Uint8Array]>) store.put(key, value);
    return store;
  }
}
