// What every kind of member process is made of (DESIGN.md §1): one arena, one native fabric with one
// connection per peer, the member list, and the three start-up steps every member takes:
//
//   listen()            bind the listening socket (port 0 picks one; `address` then has the real port)
//   expect(members)     name the members (this one included), set the handshake tag, grant each peer
//                       its ranges — before any peer could dial in
//   connect()           dial the members with higher ids, wait until every member is connected
//
// The SST, RDMC and the ordered multicast use a runtime; it owns no worker, but posts commands to theirs.

import type { TransferListItem, Worker } from 'node:worker_threads';
import { formatAddress, parseAddress, type HostPort } from '../address.js';
import { Arena } from '../arena.js';
import { ClosedError, ConfigError } from '../errors.js';
import { resolveFabricChoice, type FabricChoice } from '../fabric/choice.js';
import type { Grant } from '../fabric/fabric.js';
import { NativeFabric, doorbellWord } from '../fabric/native.js';
import { PeerConnections, type MemberAddress } from '../fabric/peers.js';
import * as map from '../generated/memory-map.js';

export interface RuntimeOptions {
  id: number;
  /** 'host:port' to accept connections on. */
  listen: string;
  /** Arena size in bytes (default 64 MiB). */
  arenaBytes?: number;
  /** How long connect() waits for every member. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Which native backend moves the bytes. Default: the SQUALL_FABRIC / SQUALL_FABRIC_PROVIDER environment
   * variables (ts/fabric/choice.ts), else tcp. Every member of a group must use the same one.
   */
  fabric?: FabricChoice;
  /** The fabric's authKey (FabricOptions): every connection proves it. */
  authKey?: Uint8Array;
  /** Says what closed in ClosedError messages ('this SST member'). */
  what: string;
}

export class MemberRuntime {
  readonly id: number;
  readonly arena: Arena;
  readonly fabric: NativeFabric;
  /** The backend and provider this member runs on (from the options or the environment). */
  readonly fabricChoice: FabricChoice;
  readonly peers = new PeerConnections();
  private readonly bound: HostPort;
  private readonly connectTimeoutMs: number;
  private readonly what: string;
  private membersOrNull: MemberAddress[] | null = null;
  private listening = false;
  private closedFlag = false;

  constructor(options: RuntimeOptions) {
    if (!Number.isInteger(options.id) || options.id < 0 || options.id >= 0xffff) {
      throw new ConfigError(`id must be an integer in [0, 65534], got ${options.id}`);
    }
    this.id = options.id;
    this.what = options.what;
    this.bound = parseAddress(options.listen, 'listen');
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (!Number.isFinite(this.connectTimeoutMs) || this.connectTimeoutMs <= 0) {
      throw new ConfigError('connectTimeoutMs must be a positive number of milliseconds, got '
        + `${options.connectTimeoutMs}`);
    }
    this.fabricChoice = resolveFabricChoice(options.fabric);
    this.arena = Arena.create({ memberId: options.id, ...(options.arenaBytes ? { bytes: options.arenaBytes } : {}) });
    this.fabric = NativeFabric.create(this.arena, {
      memberId: options.id, layoutTag: 0, ...this.fabricChoice,
      ...(options.authKey ? { authKey: options.authKey } : {}),
    });
  }

  /** Step 1 (idempotent). */
  listen(): void {
    this.assertOpen();
    if (this.listening) return;
    this.bound.port = this.fabric.listen(this.bound.host, this.bound.port);
    this.listening = true;
  }

  /** The address this member accepts connections on (with the real port once listening). */
  get address(): string { return formatAddress(this.bound); }

  get closed(): boolean { return this.closedFlag; }

  /** The members named by expect(). */
  get members(): readonly MemberAddress[] {
    if (!this.membersOrNull) throw new ConfigError(`${this.what} has no member list yet: call expect(members)`);
    return this.membersOrNull;
  }

  /** Step 2: the members (this one included); `tag` is what handshakes must carry; `grantsFor(peer)` its ranges. */
  expect(members: MemberAddress[], tag: number, grantsFor: (peer: number) => Grant[]): void {
    this.assertOpen();
    if (this.membersOrNull) throw new ConfigError(`expect() was already called for ${this.what}`);
    if (!members.some((m) => m.id === this.id)) {
      throw new ConfigError(`member ${this.id} is not in the members list; add { id: ${this.id}, address } to it`);
    }
    for (const m of members) parseAddress(m.address, `address of member ${m.id}`);
    this.fabric.setLayoutTag(tag);
    for (const m of members) {
      if (m.id === this.id) continue;
      for (const g of grantsFor(m.id)) this.fabric.grant(m.id, g);
    }
    this.membersOrNull = [...members];
  }

  /** Step 3. */
  async connect(): Promise<void> {
    this.assertOpen();
    const closed = () => this.closedFlag;
    await this.peers.connectAll(this.fabric, this.id, this.members, this.connectTimeoutMs, closed, this.what);
  }

  /**
   * Step 3 of a view after the first, where the peers' addresses (their ports) were learned after expect():
   * connects to `members`, and returns the ids that could not be reached within `timeoutMs`.
   */
  async connectReachable(members: readonly MemberAddress[], timeoutMs: number,
    isGone?: (peer: number) => boolean, catchUp?: () => void): Promise<number[]> {
    this.assertOpen();
    const closed = () => this.closedFlag;
    return this.peers.connectReachable(this.fabric, this.id, members, timeoutMs, closed, this.what, isGone, catchUp);
  }

  /** Posts a command to the worker sleeping on `channel`, counts it, and rings the channel's doorbell. */
  command(worker: Worker, channel: number, cmd: unknown, transfer?: readonly TransferListItem[]): void {
    this.assertOpen();
    worker.postMessage(cmd, transfer);
    Atomics.add(this.arena.u32, doorbellWord(channel, map.DOORBELLS_COMMANDS), 1);
    this.fabric.wake(channel);
  }

  /**
   * Stops a worker sleeping on `channel`: posts { type: 'stop' }, waits for its { type: 'stopped' } (or its
   * exit), then terminates it. Other messages it posts meanwhile (a late 'ready', reports) are not mistaken
   * for the answer.
   */
  async stopWorker(worker: Worker, channel: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      worker.on('message', (m: { type?: string }) => { if (m?.type === 'stopped') resolve(); });
      worker.once('exit', () => resolve());
    });
    this.command(worker, channel, { type: 'stop' });
    await stopped;
    await worker.terminate();
  }

  assertOpen(): void {
    if (this.closedFlag) throw new ClosedError(this.what);
  }

  /** Refuses further commands, lets a pending connect() give up, and closes the fabric. */
  close(): void {
    this.closedFlag = true;
    this.peers.wakeWaiters();
    this.fabric.close();
  }
}
