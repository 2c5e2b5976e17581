// The arena: one shared, fixed-size WebAssembly.Memory per member (DESIGN.md §1). The SST, the rings and
// the control words live in it; the kernels, the workers and the native fabric all see the same bytes.
// Its initial size equals its maximum, so its base address never moves and the fabric may keep a pointer.

import * as map from './generated/memory-map.js';
import { ArenaError, BuildError } from './errors.js';

export interface ArenaOptions {
  /** Member id that owns the arena (written to the header). */
  memberId: number;
  /** Total size in bytes; rounded up to whole 64 KiB pages. Default DEFAULT_ARENA_BYTES (64 MiB). */
  bytes?: number;
}

/** Largest arena a wasm32 memory can address. */
export const MAX_ARENA_BYTES = 65536 * map.WASM_PAGE_BYTES;

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  readonly byteLength: number;

  private constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
    this.buffer = memory.buffer as unknown as SharedArrayBuffer;
    this.byteLength = this.buffer.byteLength;
    this.u8 = new Uint8Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.f64 = new Float64Array(this.buffer);
    this.i64 = new BigInt64Array(this.buffer);
  }

  /** Creates a member's arena and writes its header. */
  static create(options: ArenaOptions): Arena {
    const requested = options.bytes ?? map.DEFAULT_ARENA_BYTES;
    const smallest = map.DYNAMIC_BASE + map.WASM_PAGE_BYTES;
    if (!Number.isInteger(requested) || requested < smallest || requested > MAX_ARENA_BYTES) {
      throw new ArenaError(
        `arena size ${requested} is out of range: give arenaBytes between ${smallest} and ${MAX_ARENA_BYTES} ` +
        '(4 GiB, the wasm32 limit)',
      );
    }
    const pages = Math.ceil(requested / map.WASM_PAGE_BYTES);
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    } catch (cause) {
      const bytes = pages * map.WASM_PAGE_BYTES;
      throw new ArenaError(`could not allocate a ${bytes}-byte shared arena: lower arenaBytes`, { cause });
    }
    const arena = new Arena(memory);
    const h = map.HEADER_OFFSET;
    arena.u32[(h + map.HEADER_VERSION) >> 2] = map.ARENA_VERSION;
    arena.u32[(h + map.HEADER_HASH) >> 2] = map.MEMORY_MAP_HASH;
    arena.u32[(h + map.HEADER_MEMBER_ID) >> 2] = options.memberId >>> 0;
    arena.u32[(h + map.HEADER_ARENA_BYTES) >> 2] = arena.byteLength >>> 0;
    arena.u32[(h + map.HEADER_ARENA_BYTES + 4) >> 2] = Math.floor(arena.byteLength / 2 ** 32);
    Atomics.store(arena.u32, (h + map.HEADER_MAGIC) >> 2, map.ARENA_MAGIC);
    return arena;
  }

  /** Adopts an arena created elsewhere (a worker receiving the memory); checks its header. */
  static adopt(memory: WebAssembly.Memory): Arena {
    const arena = new Arena(memory);
    const h = map.HEADER_OFFSET;
    if (Atomics.load(arena.u32, (h + map.HEADER_MAGIC) >> 2) !== map.ARENA_MAGIC) {
      throw new ArenaError('the memory handed over is not a squall arena (bad magic); pass Arena.memory');
    }
    const hash = arena.u32[(h + map.HEADER_HASH) >> 2];
    if (hash !== map.MEMORY_MAP_HASH || arena.u32[(h + map.HEADER_VERSION) >> 2] !== map.ARENA_VERSION) {
      throw new BuildError('the arena was made by another build of squall; rebuild with npm run build');
    }
    return arena;
  }

  get memberId(): number {
    return this.u32[(map.HEADER_OFFSET + map.HEADER_MEMBER_ID) >> 2]!;
  }

  /** Throws unless [offset, offset+length) lies inside the arena's dynamic part. */
  checkDynamicRange(offset: number, length: number, what: string): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < map.DYNAMIC_BASE || length < 0 ||
        offset + length > this.byteLength) {
      throw new ArenaError(`${what} [${offset}, ${offset + length}) does not fit the arena's dynamic part ` +
        `[${map.DYNAMIC_BASE}, ${this.byteLength}): raise arenaBytes`);
    }
  }
}
