// Fabrics for the fabric suites: one member = an arena, a NativeFabric on 127.0.0.1, and what its two
// completion rings produced so far; plus polling and pairing helpers. Any FabricOptions (backend,
// provider, limits) pass through, so the tcp and libfabric suites share it.

import { Arena } from '../../ts/arena.js';
import { CompletionRing } from '../../ts/fabric/completions.js';
import { GrantKind, type FabricOptions, type Grant } from '../../ts/fabric/fabric.js';
import { NativeFabric } from '../../ts/fabric/native.js';
import * as map from '../../ts/generated/memory-map.js';

export const MiB = 1024 * 1024;
export const D = map.DYNAMIC_BASE;
const K = map.CompletionKind;

export interface Seen { kind: number; peer: number; imm: number; offset: number; length: number }

export type MemberOptions = Partial<Omit<FabricOptions, 'memberId'>> & { arenaBytes?: number };

export class Member {
  readonly arena: Arena;
  readonly fabric: NativeFabric;
  readonly rings: [CompletionRing, CompletionRing];
  readonly seen: [Seen[], Seen[]] = [[], []];
  port = 0;

  constructor(readonly id: number, options: MemberOptions = {}) {
    const { arenaBytes, ...fabricOptions } = options;
    this.arena = Arena.create({ memberId: id, bytes: arenaBytes ?? 8 * MiB });
    this.fabric = NativeFabric.create(this.arena, { layoutTag: 0x5eed, ...fabricOptions, memberId: id });
    this.rings = [new CompletionRing(this.arena, 0), new CompletionRing(this.arena, 1)];
  }

  listen(): number {
    this.port = this.fabric.listen('127.0.0.1', 0);
    return this.port;
  }

  drain(): void {
    for (const r of [0, 1] as const) {
      this.rings[r].drain((kind, peer, imm, offset, length) => this.seen[r].push({ kind, peer, imm, offset, length }));
    }
  }

  has(kind: number, peer: number, imm?: number, ring: 0 | 1 = 0): boolean {
    return this.seen[ring].some((e) => e.kind === kind && e.peer === peer && (imm === undefined || e.imm === imm));
  }

  close(): void {
    this.fabric.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `ready()` (draining every member's rings first), or fails with `what`. */
export async function until(members: Member[], ready: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const m of members) m.drain();
    if (ready()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Grants each side `grants` of the other and connects a → b; resolves once both saw PEER_CONNECTED. */
export async function connectPair(a: Member, b: Member, grants: Grant[]): Promise<void> {
  if (!b.port) b.listen();
  for (const g of grants) {
    a.fabric.grant(b.id, g);
    b.fabric.grant(a.id, g);
  }
  a.fabric.connect(b.id, '127.0.0.1', b.port);
  await until(
    [a, b], () => a.has(K.PEER_CONNECTED, b.id) && b.has(K.PEER_CONNECTED, a.id), `${a.id} ↔ ${b.id} connected`);
}

export const dataGrant = (offset: number, length: number, ring = 0): Grant => ({
  offset, length, kind: GrantKind.Data, ring,
});
export const controlGrant = (offset: number, length: number, ring = 0): Grant => ({
  offset, length, kind: GrantKind.Control, ring,
});
