// A view of a few members in one process for the invariants suites: each member has its own arena and SST
// layout, the real ViewChangeProtocol and ShardChannel over them, and a fabric that copies each write into
// the peer's arena at once (the same offsets, as the real fabric does). A member that is `down` neither
// writes nor receives; one still `connecting` neither either, and writes to it are refused as the native
// fabric refuses them (not connected). Small and synchronous: the suites step members by hand and corrupt
// their tables.
// With engine 'worker' each member's shard is stepped as the worker engine does it: the channel sends and
// delivers, and `worker` — the predicate worker's ShardEngine (workers/shard-engine.ts), run here on this
// thread when the suite calls its round() — does receipt, seqNum, stability and the acknowledgements.

import { SHARD_ROWS_OFFSET } from '../../ts/generated/memory-map.js';
import { Arena } from '../../ts/arena.js';
import { WriteStatus, type TableFabric } from '../../ts/fabric/fabric.js';
import { validateGroupConfig } from '../../ts/group/config.js';
import { membershipKernelsOver, type KernelChoice } from '../../ts/group/view-parts.js';
import { planView, type SubgroupConfig } from '../../ts/membership/plans.js';
import { ViewChangeProtocol } from '../../ts/membership/protocol.js';
import { multicastColumns } from '../../ts/multicast/layout.js';
import { Mailboxes } from '../../ts/multicast/mailboxes.js';
import { ShardChannel } from '../../ts/multicast/shard.js';
import type { RdmcGroup } from '../../ts/rdmc/node.js';
import { SstLayout } from '../../ts/sst/layout.js';
import type { AttachedFabric } from '../../ts/fabric/native.js';
import { ShardEngine } from '../../workers/shard-engine.js';

const MAILBOX_BYTES = 4096;
/** Arenas of earlier groups, zeroed for reuse: each is a shared WebAssembly.Memory (see ts/sim/group-sim.ts). */
const spare: Arena[] = [];

export interface MemoryMember {
  id: number;
  arena: Arena;
  layout: SstLayout;
  protocol: ViewChangeProtocol;
  channel: ShardChannel;
  /** What this member delivered: "sender:first byte" per message. */
  delivered: string[];
  down: boolean;
  /** Its connections are not up yet: writes from and to it are refused (WriteStatus.NotConnected). */
  connecting: boolean;
  /** Engine 'worker': the shard's control step, as the predicate worker runs it. */
  worker: ShardEngine | null;
  /** Engine 'worker': how often it woke the main thread (the stable frontier moved), and was rung by it. */
  arrivals: number;
  wakes: number;
  /** The members this one's shard reported misbehaving: "main:id" from the channel, "worker:id" from its worker. */
  suspects: string[];
}

export class MemoryGroup {
  readonly members: MemoryMember[];

  /**
   * `kernels`: the view-change kernels the protocols evaluate their predicates with (default the wasm ones);
   * `engine`: who steps the ordered shard (ts/multicast/shard.ts, ShardParts.engine); `rdmc`: the RDMC group
   * of sender rank r at member id (default none: every message is small).
   */
  constructor(
    ids: readonly number[], subgroup: SubgroupConfig, kernels: KernelChoice = 'wasm',
    engine: 'main' | 'worker' = 'main', rdmc: (id: number, rank: number) => RdmcGroup | null = () => null,
  ) {
    const config = validateGroupConfig({
      members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })),
      subgroups: { log: subgroup },
    });
    const plans = planView(config, ids);
    this.members = ids.map((id) => {
      const layout = new SstLayout(multicastColumns(plans, ids.length, MAILBOX_BYTES), ids);
      const arena = spare.pop() ?? Arena.create({ memberId: id, bytes: 1 << 20 });
      const m = {
        id, arena, layout, delivered: [], down: false, connecting: false, worker: null, arrivals: 0, wakes: 0,
        suspects: [],
      };
      return m as unknown as MemoryMember;
    });
    for (const m of this.members) {
      const fabric = this.#fabric(m);
      const mailboxes = new Mailboxes(m.arena, fabric, m.layout, m.id, MAILBOX_BYTES);
      ShardChannel.initialize(m.arena, m.layout, plans[0]!);
      m.channel = new ShardChannel({
        arena: m.arena, fabric, layout: m.layout, selfId: m.id, plan: plans[0]!, shardIndex: 0, mailboxes,
        rdmc: plans[0]!.shards[0]!.senders.map((_, rank) => rdmc(m.id, rank)), schedule: () => {}, vid: 0,
        rowsAt: SHARD_ROWS_OFFSET, engine, wakeWorker: () => { m.wakes++; },
      });
      m.channel.onMisbehaved = (member) => { m.suspects.push(`main:${member}`); };
      if (engine === 'worker') {
        const suspect = (row: number) => { m.suspects.push(`worker:${m.layout.members[row]}`); };
        m.worker = new ShardEngine(m.arena, this.#attached(m, fabric), suspect);
        m.worker.set([m.channel.workerShard()!]);
      }
      m.channel.onDeliver((sender, _version, bytes) => { m.delivered.push(`${sender}:${bytes[0]}`); });
      m.protocol = new ViewChangeProtocol({
        arena: m.arena, layout: m.layout, fabric, selfId: m.id, view: { vid: 0, members: ids }, plans,
        wedge: () => m.channel.wedge(), kernels: membershipKernelsOver(m.arena, kernels),
      });
    }
  }

  member(id: number): MemoryMember { return this.members.find((m) => m.id === id)!; }

  /** Gives the arenas back for the next group. */
  release(): void {
    for (const m of this.members) {
      m.arena.u8.fill(0, m.layout.base);
      spare.push(m.arena);
    }
  }

  /** The worker's side of member m's fabric: the same copies, and arrive() counted. */
  #attached(m: MemoryMember, fabric: TableFabric): AttachedFabric {
    return {
      handle: 0, write: fabric.write, writeBatch: fabric.writeBatch, writeAll: fabric.writeAll,
      writeImm: (peer, offset, length) => fabric.write(peer, offset, length),
      wake: () => {}, arrive: () => { m.arrivals++; },
    };
  }

  #fabric(from: MemoryMember): TableFabric {
    const copy = (peer: number, offset: number, length: number): WriteStatus => {
      const to = this.member(peer);
      if (from.connecting || to?.connecting) return WriteStatus.NotConnected;
      if (from.down || !to || to.down) return WriteStatus.Ok;
      to.arena.u8.set(from.arena.u8.subarray(offset, offset + length), offset);
      return WriteStatus.Ok;
    };
    return {
      write: copy,
      writeBatch: (peer, ranges, count) => {
        let status: WriteStatus = WriteStatus.Ok;
        for (let i = 0; i < count; i++) status = copy(peer, ranges[2 * i]!, ranges[2 * i + 1]!);
        return status;
      },
      writeAll: (offset, length) => {
        for (const m of this.members) if (m !== from) copy(m.id, offset, length);
        return this.members.length - 1;
      },
    };
  }
}
