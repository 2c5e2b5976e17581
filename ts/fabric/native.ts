// The native TCP fabric (native/, DESIGN.md §2) as a Fabric: the addon loader, argument validation, and
// the translation of the addon's status codes into coded errors.
//
// The addon takes numbers and returns numbers. Everything a caller can get wrong is checked here, with a
// message that says what to do; the C++ side re-checks types and ranges only so that a caller bypassing
// this file cannot crash the process.
//
// Threads: a NativeFabric lives on the thread that created it (it owns the fabric and closes it). A worker
// reaches the same fabric by its `handle` number: attachFabric(handle) gives it the write side, and
// waitForChange() lets it sleep until the poller applied writes (V8's Atomics.wait cannot be woken from
// native code, so workers sleep in the addon instead).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { Arena } from '../arena.js';
import {
  ArenaError, BuildError, ClosedError, ConfigError, NativeUnavailableError, PeerFailedError, assert,
} from '../errors.js';
import * as map from '../generated/memory-map.js';
import { ArenaCheck, ERRNO_STATUS_BASE, Status, StatusName } from '../generated/status.js';
import { describeFabric, type FabricChoice } from './choice.js';
import {
  checkAuthKey, checkChannel, checkHandle, checkHost, checkIntIn, checkLane, checkMemberId, checkPeer, checkRange,
  checkU32, checkWrite,
} from './native-checks.js';
export { MAX_AUTH_KEY_BYTES, MIN_AUTH_KEY_BYTES } from './native-checks.js';
import {
  GrantKind, Lane, WriteStatus, zeroFabricStats, type Fabric, type FabricOptions, type FabricStats, type Grant,
} from './fabric.js';
import { readConnections, type FabricConnection } from './connections.js';

/** The addon's exports (native/api.cc). Negative numbers are status codes (below). */
interface Addon {
  version(): { memoryMapHash: number; backends: string[] };
  create(
    arenaView: Uint8Array, memberId: number, layoutTag: number, maxFrameBytes: number, connectTimeoutMs: number,
    handshakeTimeoutMs: number,
    backend?: number, provider?: string, authKey?: Uint8Array,
  ): number;
  listen(handle: number, host: string, port: number): number;
  grant(
    handle: number, peer: number, offset: number, length: number, kind: number, ring: number, quiet: number,
  ): number;
  connect(handle: number, peer: number, host: string, port: number): number;
  write(handle: number, peer: number, offset: number, length: number, lane: number): number;
  writeImm(handle: number, peer: number, offset: number, length: number, imm: number, lane: number): number;
  writeAll(handle: number, offset: number, length: number, lane: number): number;
  wait(handle: number, seenEpoch: number, timeoutMs: number, channel: number, spinUs?: number): number;
  wake(handle: number, channel: number): number;
  arrive(handle: number, channel: number): number;
  onArrival(handle: number, channelMask: number, fn: () => void): number;
  writeBatch(handle: number, peer: number, ranges: Float64Array, count: number, lane: number): number;
  disconnect(handle: number, peer: number): number;
  breakLane(handle: number, peer: number, lane: number): number;
  close(handle: number): number;
  stats(handle: number): FabricStats | null;
  /** CONNECTION_FIELDS numbers per peer into out (ts/fabric/connections.ts); how many peers, or FAILED. */
  connections(handle: number, out: Float64Array): number;
  mode(handle: number): FabricMode | null;
  setLayoutTag(handle: number, tag: number): number;
  /** For tests: out (32 bytes) = HMAC-SHA256(key, data), or SHA-256(data) when key is null (native/sha256.h). */
  digest(key: Uint8Array | null, data: Uint8Array, out: Uint8Array): number;
}

// The addon's status codes (native/generated/status.h: Status, ArenaCheck), generated with the memory map.
const { NOT_CONNECTED, FAILED, BAD_RANGE, BAD_ADDRESS, ALREADY, SYSTEM, TOO_MANY, NOT_BUILT, NO_PROVIDER, NO_LIBRARY } =
  Status;
/** listen() reports a failed system call as -(ERRNO_BASE + errno). */
const ERRNO_BASE = ERRNO_STATUS_BASE;
// WriteStatus (fabric.ts, what writes return to callers) is the writes' share of Status; checked when this compiles.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const writeStatusIsNative: Same<typeof WriteStatus, {
  readonly Ok: typeof Status.OK; readonly NotConnected: typeof NOT_CONNECTED; readonly Failed: typeof FAILED;
  readonly BadRange: typeof BAD_RANGE;
}> = true;

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

// This file compiles to dist/ts/fabric/native.js, three levels below the package root. The addon is the one
// node-gyp-build picks there: build/Release (compiled here) first, else the fitting prebuilds/<platform>-<arch>/.
// SQUALL_NATIVE_ADDON names another build of it (the AddressSanitizer build of npm run test:asan).
const PACKAGE_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

let addon: Addon | undefined;

/** The addon's file: SQUALL_NATIVE_ADDON, else node-gyp-build's choice; null when there is none. */
function addonPath(): string | null {
  const named = process.env['SQUALL_NATIVE_ADDON'];
  if (named) return existsSync(named) ? named : null;
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string };
  try {
    return nodeGypBuild.path(PACKAGE_ROOT);
  } catch {
    return null; // "No native build was found": neither compiled here nor prebuilt for this platform
  }
}

/** Loads the addon once per thread; throws NativeUnavailableError or BuildError with what to run. */
export function loadNative(): Addon {
  if (addon) return addon;
  const file = addonPath();
  if (file === null) {
    throw new NativeUnavailableError(
      `the native fabric is neither prebuilt for ${process.platform}-${process.arch} nor built in ` +
        `${PACKAGE_ROOT}build/Release: run npm rebuild squall (needs g++, make, python3), or npm install in a clone`,
    );
  }
  let loaded: Addon;
  try {
    loaded = createRequire(import.meta.url)(file) as Addon;
  } catch (cause) {
    throw new BuildError(
      `could not load ${file} (built for another Node.js?): rebuild: npm run build:native`, { cause },
    );
  }
  const { memoryMapHash } = loaded.version();
  if (memoryMapHash !== map.MEMORY_MAP_HASH) {
    throw new BuildError(
      `the native fabric was built for memory map ${hex(memoryMapHash)}, this build of squall has ` +
        `${hex(map.MEMORY_MAP_HASH)}: rebuild: npm run build:native`,
    );
  }
  addon = loaded;
  return loaded;
}

/** True when the addon is built and matches this build (for tests and CLIs that can do without it). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/** Backends the addon was built with: 'tcp', and 'libfabric' when libfabric's headers were found. */
export function nativeBackends(): string[] {
  return loadNative().version().backends;
}

/** The error for backend 'libfabric' on an addon built without it. */
export function libfabricNotBuiltError(): NativeUnavailableError {
  return new NativeUnavailableError(
    "the native fabric was built without the libfabric backend (libfabric's headers were not found): install them " +
      '(Debian/Ubuntu: apt-get install libfabric-dev pkg-config) and rebuild with npm run build:native, ' +
        'or use backend: \'tcp\'',
  );
}

/** checkFabricUsable's answers, by libfabric provider ('' for the default). */
const usableModes = new Map<string, FabricMode>();

/**
 * Throws here, before member processes are started, the error every member would meet: libfabric not built
 * in (NativeUnavailableError), or a provider that offers none of the backend's modes (ConfigError). Opens
 * and closes a throwaway fabric on a minimal arena for a libfabric choice; a tcp choice needs nothing.
 * Returns how writes will travel. A provider's answer does not change while the process runs, so it is kept:
 * a second check (the CLI's, then the benchmark's label) opens nothing.
 */
export function checkFabricUsable(choice: { backend: 'tcp' | 'libfabric'; provider?: string }): FabricMode {
  if (choice.backend !== 'libfabric') return 'sockets';
  const key = choice.provider ?? '';
  let mode = usableModes.get(key);
  if (mode === undefined) {
    const arena = Arena.create({ memberId: 0, bytes: map.DYNAMIC_BASE + map.WASM_PAGE_BYTES });
    const fabric = NativeFabric.create(arena, { memberId: 0, layoutTag: 0, ...choice });
    fabric.close();
    mode = fabric.mode;
    usableModes.set(key, mode);
  }
  return mode;
}

/** The fabric a benchmark runs on, for its report: 'tcp', or e.g. 'libfabric/tcp (rma)' (checked as above). */
export function fabricLabel(choice: FabricChoice): string {
  const mode = checkFabricUsable(choice);
  return choice.backend === 'tcp' ? describeFabric(choice) : `${describeFabric(choice)} (${mode})`;
}

/** The error for a libfabric provider that is missing or cannot do what the backend needs. */
function noProviderError(provider: string, detail: string): ConfigError {
  const name = provider.replace(/\+(rma|msg)$/, '');
  const needs = provider.endsWith('+rma')
    ? 'with one-sided writes (FI_EP_MSG endpoints, FI_RMA, writes ordered with sends)'
    : 'with ordered messages (FI_EP_MSG or FI_EP_RDM endpoints, FI_MSG, FI_ORDER_SAS)';
  return new ConfigError(
    `libfabric provider '${name}' is not available ${needs}${detail}: check with fi_info -p ${name} -v, ` +
      "or choose provider 'tcp'; see docs/rdma.md",
  );
}

const PROVIDER_NAME = /^[a-z0-9_;+]{1,31}$/;

/**
 * How a fabric's writes travel (docs/rdma.md "Modes"): 'sockets' on the tcp backend; on libfabric 'rma'
 * (connected endpoints, writes into DATA grants one-sided into the peer's registered arena), 'msg'
 * (connected endpoints, every write a message) or 'rdm' (reliable-datagram endpoints, every write a message).
 */
export type FabricMode = 'sockets' | 'rma' | 'msg' | 'rdm';

export class NativeFabric implements Fabric {
  readonly backend: 'tcp' | 'libfabric';
  /** The libfabric provider as named (backend 'libfabric'; 'tcp', 'tcp+msg', 'shm', …), else undefined. */
  readonly provider: string | undefined;
  /** How writes travel, as the provider's name and offer decided when the fabric was created. */
  readonly mode: FabricMode;
  /** Process-wide number naming this fabric; hand it to workers (attachFabric, waitForChange). */
  readonly handle: number;
  readonly arena: Arena;
  readonly memberId: number;
  #native: Addon;
  #closed = false;
  #finalStats: FabricStats | undefined;

  private constructor(
    native: Addon, handle: number, arena: Arena, memberId: number, backend: 'tcp' | 'libfabric',
    provider: string | undefined,
  ) {
    this.#native = native;
    this.backend = backend;
    this.provider = provider;
    this.mode = native.mode(handle) ?? 'sockets';
    this.handle = handle;
    this.arena = arena;
    this.memberId = memberId;
  }

  /** Attaches a fabric to `arena` and starts its poller thread. */
  static create(arena: Arena, options: FabricOptions): NativeFabric {
    const native = loadNative();
    if (options === null || typeof options !== 'object') {
      throw new ConfigError('fabric options must be an object like { memberId: 1, layoutTag: 0 }');
    }
    const memberId = checkMemberId(options.memberId, 'memberId');
    const layoutTag = checkU32(options.layoutTag, 'layoutTag');
    const maxFrameBytes = checkIntIn(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, 64, 2 ** 31, 'maxFrameBytes');
    const connectTimeoutMs = checkIntIn(
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS, 'connectTimeoutMs');
    const handshakeTimeoutMs = checkIntIn(
      options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1, MAX_TIMEOUT_MS, 'handshakeTimeoutMs');
    const backend = options.backend ?? 'tcp';
    if (backend !== 'tcp' && backend !== 'libfabric') {
      throw new ConfigError(`backend must be 'tcp' or 'libfabric', got ${String(backend)}`);
    }
    const authKey = checkAuthKey(options.authKey);
    let provider: string | undefined;
    if (backend === 'libfabric') {
      provider = options.provider ?? 'tcp';
      if (typeof provider !== 'string' || !PROVIDER_NAME.test(provider)) {
        throw new ConfigError(
          `provider must be a libfabric provider name like 'tcp', 'sockets' or 'verbs', got ${String(provider)}`,
        );
      }
      const built = native.version().backends.includes('libfabric');
      if (!built || process.env['SQUALL_FORCE_NO_LIBFABRIC'] === '1') throw libfabricNotBuiltError();
    } else if (options.provider !== undefined) {
      throw new ConfigError("provider applies to backend 'libfabric' only: set backend: 'libfabric' or drop provider");
    }
    if (!arena || !(arena.u8 instanceof Uint8Array)) {
      throw new ArenaError('NativeFabric.create needs an Arena (from Arena.create or Arena.adopt)');
    }
    const timeouts = [connectTimeoutMs, handshakeTimeoutMs] as const;
    const h = backend === 'tcp'
      ? native.create(arena.u8, memberId, layoutTag, maxFrameBytes, ...timeouts, 0, '', authKey)
      : native.create(arena.u8, memberId, layoutTag, maxFrameBytes, ...timeouts, 1, provider, authKey);
    if (h > 0) return new NativeFabric(native, h, arena, memberId, backend, provider);
    if (h === NOT_BUILT) throw libfabricNotBuiltError();
    if (h === NO_PROVIDER) throw noProviderError(provider!, '');
    if (h === NO_LIBRARY) {
      throw new NativeUnavailableError(
        'squall was built with libfabric, but libfabric.so.1 cannot be opened now: install ' +
          'it again (Debian: apt-get install libfabric1), or choose backend \'tcp\'',
      );
    }
    if (backend === 'libfabric' && h <= -ERRNO_BASE) {
      throw noProviderError(provider!, ` (fi_getinfo: ${errnoName(-h - ERRNO_BASE)})`);
    }
    switch (h) {
      case ArenaCheck.TOO_SMALL:
        throw new ArenaError(
          `the arena (${arena.byteLength} bytes) is smaller than its fixed regions (${map.DYNAMIC_BASE} bytes): ` +
            'raise arenaBytes',
        );
      case ArenaCheck.BAD_MAGIC:
        throw new ArenaError(
          'the arena has no live header (bad magic): pass an Arena made by Arena.create or Arena.adopt',
        );
      case ArenaCheck.BAD_HASH:
        throw new BuildError('the arena was made by a build with another memory map: rebuild with npm run build');
      case ArenaCheck.BAD_SIZE:
        throw new ArenaError(
          'the arena header does not match the size of its memory: pass Arena.u8 over the whole memory',
        );
      case SYSTEM:
        throw new NativeUnavailableError(
          'could not start the native fabric (epoll, eventfd or a thread): raise the open-file or thread limits');
      default: assert(false, `native create returned ${StatusName[h] ?? h}`);
    }
  }

  /** Starts accepting connections on host (an IP address, or 'localhost'); returns the bound port. */
  listen(host: string, port: number): number {
    this.#open('listen');
    const ip = checkHost(host);
    checkIntIn(port, 0, 65535, 'port');
    const r = this.#native.listen(this.handle, ip, port);
    if (r >= 0) return r;
    if (r === ALREADY) throw new ConfigError('this fabric is already listening: call listen() once');
    if (r <= -ERRNO_BASE) {
      const code = errnoName(-r - ERRNO_BASE);
      const what = code === 'EADDRINUSE'
        ? 'choose another port, or 0 for any free one'
        : 'check the address belongs to this host';
      throw new ConfigError(`could not listen on ${host}:${port} (${code}): ${what}`);
    }
    return this.#fail(r, 'listen');
  }

  grant(peer: number, grant: Grant): void {
    this.#open('grant');
    checkPeer(peer, this.memberId);
    if (!grant || typeof grant !== 'object') {
      throw new ConfigError('a grant is an object { offset, length, kind, ring }');
    }
    this.arena.checkDynamicRange(grant.offset, grant.length, `the grant to peer ${peer}`);
    if (grant.kind !== GrantKind.Data && grant.kind !== GrantKind.Control) {
      throw new ConfigError(`grant kind must be GrantKind.Data (0) or GrantKind.Control (1), got ${grant.kind}`);
    }
    if (!Number.isInteger(grant.ring) || grant.ring < 0 || grant.ring >= map.COMPLETION_RINGS) {
      throw new ConfigError(`grant ring must be an integer in [0, ${map.COMPLETION_RINGS}), got ${grant.ring}`);
    }
    if (grant.kind === GrantKind.Control && (grant.offset % 8 !== 0 || grant.length % 8 !== 0)) {
      throw new ArenaError(
        `a control grant must be 8-byte aligned in offset and length, got [${grant.offset}, ` +
          `${grant.offset + grant.length}): align the column layout`,
      );
    }
    if (grant.quiet !== undefined && typeof grant.quiet !== 'boolean') {
      throw new ConfigError(`grant quiet must be a boolean, got ${grant.quiet}`);
    }
    const quiet = grant.quiet ? 1 : 0;
    const r = this.#native.grant(this.handle, peer, grant.offset, grant.length, grant.kind, grant.ring, quiet);
    if (r !== 0) this.#fail(r, 'grant');
  }

  /** Connects to `peer`; PEER_CONNECTED or PEER_FAILED(CONNECT_TIMEOUT, …) follows in completion ring 0. */
  connect(peer: number, host: string, port: number): void {
    this.#open('connect');
    checkPeer(peer, this.memberId);
    const ip = checkHost(host);
    checkIntIn(port, 1, 65535, 'port');
    const r = this.#native.connect(this.handle, peer, ip, port);
    if (r === 0) return;
    if (r === ALREADY) {
      throw new ConfigError(
        `already connecting or connected to peer ${peer}: connect once per peer (one side of each pair connects)`,
      );
    }
    if (r === FAILED) {
      const why = `peer ${peer} failed earlier and stays failed: a new view must replace it`;
      throw new PeerFailedError(peer, 'FAILED', why);
    }
    this.#fail(r, 'connect');
  }

  write(peer: number, offset: number, length: number, lane: Lane = Lane.Data): WriteStatus {
    if (this.#closed) return FAILED as WriteStatus;
    checkWrite(peer, offset, length);
    return this.#native.write(this.handle, peer, offset, length, checkLane(lane)) as WriteStatus;
  }

  writeImm(peer: number, offset: number, length: number, imm: number, lane: Lane = Lane.Data): WriteStatus {
    if (this.#closed) return FAILED as WriteStatus;
    checkWrite(peer, offset, length);
    checkU32(imm, 'imm');
    return this.#native.writeImm(this.handle, peer, offset, length, imm, checkLane(lane)) as WriteStatus;
  }

  /**
   * Writes `count` ranges — ranges[2i] offset, ranges[2i+1] length — to `peer` in order on `lane`, sent
   * together (one sendmsg where the socket takes them all): a protocol step's pushes to one peer in one call.
   */
  writeBatch(peer: number, ranges: Float64Array, count: number, lane: Lane = Lane.Data): WriteStatus {
    if (this.#closed) return FAILED as WriteStatus;
    checkBatch(peer, ranges, count);
    return this.#native.writeBatch(this.handle, peer, ranges, count, checkLane(lane)) as WriteStatus;
  }

  writeAll(offset: number, length: number, lane: Lane = Lane.Data): number {
    if (this.#closed) return 0;
    checkRange(offset, length);
    const r = this.#native.writeAll(this.handle, offset, length, checkLane(lane));
    return r < 0 ? 0 : r;
  }

  wake(channel = 0): void {
    checkChannel(channel);
    this.#open('wake');
    this.#native.wake(this.handle, channel);
  }

  /**
   * Calls `fn` on this thread, as a task, after the poller applied writes whose grants name one of
   * `channels` — one call per batch, however many writes landed; a call pending covers later ones. This
   * is the main thread's wake-up with no worker in between (one thread hop instead of two). Once per fabric.
   */
  onArrival(channels: readonly number[], fn: () => void): void {
    let mask = 0;
    for (const c of channels) { checkChannel(c); mask |= 1 << c; }
    if (mask === 0) throw new ConfigError('onArrival needs at least one channel');
    if (typeof fn !== 'function') throw new ConfigError('onArrival needs a function');
    this.#open('onArrival');
    const r = this.#native.onArrival(this.handle, mask, fn);
    if (r === ALREADY) throw new ConfigError('this fabric already has an arrival handler: set it once');
    if (r < 0) this.#fail(r, 'onArrival');
  }

  /** Changes the layout tag later HELLOs carry and require (a member may learn its layout after listen). */
  setLayoutTag(tag: number): void {
    this.#open('setLayoutTag');
    this.#native.setLayoutTag(this.handle, checkU32(tag, 'layoutTag'));
  }

  disconnect(peer: number): void {
    this.#open('disconnect');
    checkPeer(peer, this.memberId);
    const r = this.#native.disconnect(this.handle, peer);
    if (r !== 0 && r !== NOT_CONNECTED) this.#fail(r, 'disconnect');
  }

  /**
   * @internal For tests: one lane of `peer` breaks as a network fault would (nobody is told); both ends
   * must then fail the peer as a whole. False when that lane is not up.
   */
  breakLane(peer: number, lane: Lane): boolean {
    this.#open('breakLane');
    checkPeer(peer, this.memberId);
    return this.#native.breakLane(this.handle, peer, checkLane(lane)) === 0;
  }

  /** Counters; after close() the last values seen before closing. */
  stats(): FabricStats {
    if (this.#closed) return { ...this.#finalStats! };
    const s = this.#native.stats(this.handle);
    if (!s) throw new ClosedError('the fabric');
    return s;
  }

  /** Every peer, in the order this fabric came to know them (connections.ts); none after close(). */
  connections(): FabricConnection[] {
    if (this.#closed) return [];
    return readConnections((out) => this.#native.connections(this.handle, out));
  }

  close(): void {
    if (this.#closed) return;
    this.#finalStats = this.#native.stats(this.handle) ?? zeroFabricStats();
    this.#closed = true;
    this.#native.close(this.handle);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #open(what: string): void {
    if (this.#closed) throw new ClosedError(`the fabric (${what} after close)`);
  }

  #fail(status: number, what: string): never {
    switch (status) {
      case FAILED: throw new ClosedError(`the fabric (${what})`);
      case BAD_RANGE: throw new ArenaError(`${what}: the range does not fit the arena: raise arenaBytes`);
      case BAD_ADDRESS: throw new ConfigError(`${what}: the host must be an IPv4 or IPv6 address`);
      case TOO_MANY: throw new ConfigError(`${what}: a fabric serves at most ${map.MAX_MEMBERS} peers`);
      default: assert(false, `native ${what} returned ${StatusName[status] ?? status}`);
    }
  }
}

/** The write side of a fabric owned by another thread: for workers, which get the handle by postMessage. */
export interface AttachedFabric {
  readonly handle: number;
  write(peer: number, offset: number, length: number, lane?: Lane): WriteStatus;
  writeImm(peer: number, offset: number, length: number, imm: number, lane?: Lane): WriteStatus;
  writeAll(offset: number, length: number, lane?: Lane): number;
  /** Rings a channel's doorbell (default 0); does nothing once the owner closed the fabric. */
  wake(channel?: number): void;
  /**
   * Calls the owner's arrival function (onArrival) for `channel` (default 0) as if the poller had rung it:
   * how a worker wakes the main thread's step. Does nothing when none is set or the fabric is closed.
   */
  arrive(channel?: number): void;
  /** A batch of ranges to one peer in one send (NativeFabric.writeBatch). */
  writeBatch(peer: number, ranges: Float64Array, count: number, lane?: Lane): WriteStatus;
}

/** writeBatch's arguments: `count` offset/length pairs in `ranges`, each a write of this member's own range. */
function checkBatch(peer: number, ranges: Float64Array, count: number): void {
  if (!Number.isInteger(count) || count < 0 || count * 2 > ranges.length) {
    throw new ConfigError(`writeBatch: count ${count} does not fit ${ranges.length / 2} ranges`);
  }
  for (let i = 0; i < count; i++) checkWrite(peer, ranges[2 * i]!, ranges[2 * i + 1]!);
}

export function attachFabric(handle: number): AttachedFabric {
  const native = loadNative();
  checkHandle(handle);
  return {
    handle,
    write(peer, offset, length, lane = Lane.Data) {
      checkWrite(peer, offset, length);
      return native.write(handle, peer, offset, length, checkLane(lane)) as WriteStatus;
    },
    writeImm(peer, offset, length, imm, lane = Lane.Data) {
      checkWrite(peer, offset, length);
      checkU32(imm, 'imm');
      return native.writeImm(handle, peer, offset, length, imm, checkLane(lane)) as WriteStatus;
    },
    writeAll(offset, length, lane = Lane.Data) {
      checkRange(offset, length);
      const r = native.writeAll(handle, offset, length, checkLane(lane));
      return r < 0 ? 0 : r;
    },
    wake(channel = 0) {
      checkChannel(channel);
      native.wake(handle, channel);
    },
    writeBatch(peer, ranges, count, lane = Lane.Data) {
      checkBatch(peer, ranges, count);
      return native.writeBatch(handle, peer, ranges, count, checkLane(lane)) as WriteStatus;
    },
    arrive(channel = 0) {
      checkChannel(channel);
      native.arrive(handle, channel);
    },
  };
}

/** The longest spin waitForChange accepts (native/doorbell.h, Doorbell::kMaxSpinUs). */
export const MAX_WAIT_SPIN_US = 1000;

/**
 * Blocks this worker until the doorbell epoch differs from `seenEpoch` (the poller applied writes or
 * queued completions, or someone called wake()), or `timeoutMs` passed. Returns the epoch it saw last.
 * With `spinUs` > 0 it first polls the epoch for up to that long (yielding its core as it goes) before it
 * sleeps: a change inside that window wakes it without a futex round trip (native/doorbell.h).
 * Never call it on the main thread: it blocks the whole event loop.
 */
export function waitForChange(handle: number, seenEpoch: number, timeoutMs: number, channel = 0, spinUs = 0): number {
  if (isMainThread) {
    throw new ConfigError('waitForChange blocks its thread: call it from a worker, never from the main thread');
  }
  const native = loadNative();
  checkHandle(handle);
  checkU32(seenEpoch, 'seenEpoch');
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw new ConfigError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
  }
  checkChannel(channel);
  if (!Number.isInteger(spinUs) || spinUs < 0 || spinUs > MAX_WAIT_SPIN_US) {
    throw new ConfigError(`spinUs must be an integer from 0 to ${MAX_WAIT_SPIN_US}, got ${spinUs}`);
  }
  const r = native.wait(handle, seenEpoch, Math.min(Math.ceil(timeoutMs), MAX_TIMEOUT_MS), channel, spinUs);
  if (r < 0) throw new ClosedError('the fabric (waitForChange)');
  return r;
}

/** Index (in u32 units) of a channel's doorbell word `field` (map.DOORBELLS_EPOCH, _COMMANDS, …). */
export function doorbellWord(channel: number, field: number): number {
  return (map.DOORBELLS_OFFSET + channel * map.DOORBELLS_STRIDE + field) >> 2;
}

/** A channel's doorbell epoch (default channel 0), to pass to waitForChange. */
export function doorbellEpoch(arena: Arena, channel = 0): number {
  return Atomics.load(arena.u32, doorbellWord(channel, map.DOORBELLS_EPOCH));
}

export function nativeDigest(key: Uint8Array | null, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  const r = loadNative().digest(key, data, out);
  assert(r === 0, `native digest returned ${r}`);
  return out;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
