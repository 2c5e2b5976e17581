// Which peers are connected or failed, as the fabric's connection news arrive on the main thread, and
// the "dial the members with higher ids, then wait for everyone" step every kind of member shares.

import { parseAddress } from '../address.js';
import { ClosedError, PeerFailedError, TimeoutError } from '../errors.js';
import type { Fabric } from './fabric.js';

export interface MemberAddress {
  id: number;
  /** 'host:port' */
  address: string;
}

export class PeerConnections {
  readonly connected = new Set<number>();
  /** Failed peers and the FailReason name. */
  readonly failed = new Map<number, string>();
  private waiters: Array<() => void> = [];

  onConnected(peer: number): void {
    this.connected.add(peer);
    this.wakeWaiters();
  }

  onFailed(peer: number, reason: string): void {
    this.connected.delete(peer);
    this.failed.set(peer, reason);
    this.wakeWaiters();
  }

  /** Lets a pending connectAll() look again (e.g. after close()). */
  wakeWaiters(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Dials every member with a higher id than `self` (the lower id dials, so each pair has one
   * connection), then waits until every other member is connected. Throws PeerFailedError naming the
   * first peer that could not be reached, TimeoutError after `timeoutMs` (plus a second for the
   * fabric's own connect timeout to report first), ClosedError if `isClosed()` turns true.
   */
  async connectAll(
    fabric: Fabric, self: number, members: readonly MemberAddress[], timeoutMs: number, isClosed: () => boolean,
    what: string
  ): Promise<void> {
    const peers = this.#dial(fabric, self, members);
    const deadline = Date.now() + timeoutMs + 1000;
    while (peers.some((m) => !this.connected.has(m.id))) {
      const failed = peers.find((m) => this.failed.has(m.id));
      if (failed) {
        const reason = this.failed.get(failed.id)!;
        throw new PeerFailedError(
          failed.id, reason,
          `could not connect to member ${failed.id} at ${failed.address}: ${reason}; check that it runs with ` +
            `the same configuration`);
      }
      if (isClosed()) throw new ClosedError(what);
      const left = deadline - Date.now();
      if (left <= 0) {
        const missing = peers.filter((m) => !this.connected.has(m.id)).map((m) => m.id);
        throw new TimeoutError(
          `members ${missing.join(', ')} did not connect within ${timeoutMs} ms; start them or raise connectTimeoutMs`);
      }
      await this.#wait(left);
    }
  }

  /**
   * For a view after the first: dials as connectAll does, but a member that fails, is known to be gone
   * (`isGone`: the previous view saw it fail), or does not connect within `timeoutMs` is returned rather
   * than thrown — the view goes on and removes it.
   */
  async connectReachable(
    fabric: Fabric, self: number, members: readonly MemberAddress[], timeoutMs: number, isClosed: () => boolean,
    what: string, isGone: (peer: number) => boolean = () => false, catchUp: () => void = () => {}
  ): Promise<number[]> {
    const peers = this.#dial(fabric, self, members);
    const deadline = Date.now() + timeoutMs;
    const pending = () => peers.filter((m) => !this.connected.has(m.id) && !this.failed.has(m.id) && !isGone(m.id));
    while (pending().length > 0 && Date.now() < deadline) {
      if (isClosed()) throw new ClosedError(what);
      await this.#wait(Math.min(20, deadline - Date.now())); // isGone() learns from elsewhere: look often
    }
    // The deadline may pass while this thread was starved (a busy machine): news of connections made in
    // time can still be queued for it. Read them before calling anyone unreachable.
    catchUp();
    return peers.filter((m) => !this.connected.has(m.id)).map((m) => m.id);
  }

  /**
   * Dials the members with higher ids than `self`; returns the other members. Each address is parsed on its
   * own: one a peer published wrong (a port out of range) fails that member only, never the others.
   */
  #dial(fabric: Fabric, self: number, members: readonly MemberAddress[]): MemberAddress[] {
    for (const m of members) {
      if (m.id <= self) continue;
      let parsed: { host: string; port: number };
      try {
        parsed = parseAddress(m.address, `address of member ${m.id}`);
      } catch {
        this.failed.set(m.id, 'BAD_ADDRESS'); // parseAddress threw: not host:port, or a port above 65535
        continue;
      }
      fabric.connect(m.id, parsed.host, parsed.port);
    }
    return members.filter((m) => m.id !== self);
  }

  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(0, Math.min(ms, 200)));
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
}
