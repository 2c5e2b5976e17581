// A member of a squall group (DESIGN.md §8): one process's share of every subgroup it serves, over one
// member runtime — one arena holding the SST (the multicast counters, slots and point-to-point mailboxes)
// and the RDMC groups that carry large messages, one fabric, the predicate worker and the rdmc worker.
//
//   const group = await Group.join({ id: 1, config: 'cluster.json', types: { tickets: TicketBook } });
//   const tickets = group.subgroup<TicketBook>('tickets');
//   const replies = await tickets.ordered.book('t-17', 'alice');   // one reply per member of the shard
//   const holder = await tickets.query(0).holder('t-17');           // ask one member
//
// Membership is static here: the configuration's members are the view (vid 0). A member that fails stops
// ordered delivery in its shards, which reject further sends with PeerFailedError; view changes that
// exclude it are the membership layer's job.

import { EventEmitter } from 'node:events';
import { MAX_ARENA_BYTES } from '../arena.js';
import { ArenaError, ClosedError, ConfigError, PartitionedError } from '../errors.js';
import * as map from '../generated/memory-map.js';
import { fnv1a } from '../hash.js';
import type { FabricChoice } from '../fabric/choice.js';
import { hasMajority } from '../membership/view-change.js';
import { MemberRuntime } from '../member/runtime.js';
import { MEMBERSHIP_COLUMNS, multicastColumns } from '../multicast/layout.js';
import { Mailboxes } from '../multicast/mailboxes.js';
import { ShardChannel } from '../multicast/shard.js';
import { ReplicatedObject, type ReplicatedType } from '../objects/replicated-object.js';
import { RdmcLayout, type RdmcGroupSpec } from '../rdmc/layout.js';
import { RdmcNode, type RdmcGroup } from '../rdmc/node.js';
import { SstLayout } from '../sst/layout.js';
import { SstMember } from '../sst/member.js';
import { loadGroupConfig, planView, validateGroupConfig, type GroupConfig, type SubgroupPlan } from './config.js';

/** A class whose instances a subgroup replicates: constructed with no arguments at every member. */
export type ReplicatedClass<T extends object = object> = (new () => T) & ReplicatedType<T>;

export interface JoinOptions {
  /** This member's id (one of the configuration's members). */
  id: number;
  /** The configuration, or the path of a JSON file holding it. */
  config: GroupConfig | string;
  /** Overrides this member's configured address for binding (e.g. '0.0.0.0:7000'). */
  listen?: string;
  /** The class each subgroup replicates, by subgroup name; subgroups without one are channels only. */
  types?: Record<string, ReplicatedClass>;
  /** Heartbeat interval and suspicion timeout (DESIGN.md §9). Defaults 10 ms / 100 ms. */
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  /** How long join waits for every member to be connected. Default 30 s. */
  connectTimeoutMs?: number;
  /** Bytes of each point-to-point mailbox (queries, replies); a message may take half. Default 1 MiB. */
  mailboxBytes?: number;
  /** Time limit of each replicated-object call in ms; default no limit. */
  callTimeoutMs?: number;
  /** Native backend (default: SQUALL_FABRIC, else tcp; see RuntimeOptions.fabric); the same at every member. */
  fabric?: FabricChoice;
}

export interface View {
  vid: number;
  members: readonly number[];
}

export interface GroupEvents {
  /** A member failed or was suspected; its shards stop ordered delivery (static membership). */
  memberFailed: [member: number, reason: string];
  /** This member lost a majority of its view: it has stopped (partition safety). */
  partitioned: [error: PartitionedError];
  /** The predicate worker died, or a message could not be decoded. */
  error: [error: Error];
}

const DEFAULT_MAILBOX_BYTES = 1 << 20;
const REGION_ALIGN = 65536;
const align = (n: number, to: number) => Math.ceil(n / to) * to;

export class Group extends EventEmitter<GroupEvents> {
  readonly id: number;
  readonly config: GroupConfig;
  readonly view: View;
  readonly plans: readonly SubgroupPlan[];
  readonly #runtime: MemberRuntime;
  readonly #sst: SstMember;
  readonly #rdmc: RdmcNode | null;
  readonly #mailboxes: Mailboxes;
  /** This member's shard channel of each subgroup it serves, by subgroup name. */
  readonly #channels = new Map<string, ShardChannel>();
  readonly #byTag = new Map<number, ShardChannel>();
  readonly #objects = new Map<string, ReplicatedObject<object>>();
  readonly #types: Record<string, ReplicatedClass>;
  readonly #callTimeoutMs: number | undefined;
  readonly #failed = new Set<number>();
  #partitioned: PartitionedError | null = null;
  #stepScheduled = false;
  #closed = false;

  /** Joins the group: binds, lays out the arena, connects to every member, starts the protocol. */
  static async join(options: JoinOptions): Promise<Group> {
    const group = new Group(options);
    try {
      await group.#sst.ready();
      await group.#runtime.connect();
    } catch (error) {
      await group.close();
      throw error;
    }
    group.#start();
    return group;
  }

  private constructor(options: JoinOptions) {
    super();
    const config = typeof options.config === 'string' ? loadGroupConfig(options.config) : validateGroupConfig(options.config);
    const self = config.members.find((m) => m.id === options.id);
    if (!self) throw new ConfigError(`member ${options.id} is not in the configuration's members (${config.members.map((m) => m.id).join(', ')}); pass one of those ids`);
    const ids = config.members.map((m) => m.id);
    this.id = options.id;
    this.config = config;
    this.view = { vid: 0, members: ids };
    this.plans = planView(config, ids);
    this.#types = options.types ?? {};
    for (const name of Object.keys(this.#types)) if (!(name in config.subgroups)) throw new ConfigError(`types names subgroup '${name}', which the configuration does not have (subgroups: ${Object.keys(config.subgroups).join(', ')})`);
    this.#callTimeoutMs = options.callTimeoutMs;
    const mailboxBytes = options.mailboxBytes ?? DEFAULT_MAILBOX_BYTES;
    if (!Number.isInteger(mailboxBytes) || mailboxBytes < 4096 || mailboxBytes % 8 !== 0) throw new ConfigError(`mailboxBytes must be a multiple of 8 and at least 4096, got ${mailboxBytes}`);

    // The arena: [fixed regions][SST][RDMC buffers per (shard, sender)], the same offsets at every member.
    const columns = multicastColumns(this.plans, ids.length, mailboxBytes);
    const sstLayout = new SstLayout(columns, ids);
    const rdmcBase = align(sstLayout.base + sstLayout.tableBytes, REGION_ALIGN);
    const { groups: rdmcGroups, groupOf } = rdmcGroupsOf(this.plans);
    const rdmcEnd = new RdmcLayout(rdmcGroups, rdmcBase).end;
    const arenaBytes = align(Math.max(rdmcEnd, rdmcBase) + REGION_ALIGN, REGION_ALIGN);
    if (arenaBytes > MAX_ARENA_BYTES) {
      throw new ArenaError(`this member needs ${arenaBytes} bytes of arena (SST ${sstLayout.tableBytes}, RDMC ${rdmcEnd - rdmcBase}), over the 4 GiB limit: lower maxMessageBytes, window or mailboxBytes`);
    }

    this.#runtime = new MemberRuntime({
      id: options.id, listen: options.listen ?? self.address, arenaBytes, what: 'this group member',
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      ...(options.fabric ? { fabric: options.fabric } : {}),
    });
    try {
      this.#sst = SstMember.onRuntime(this.#runtime, {
        columns,
        ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
        ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
      }, ids, map.DYNAMIC_BASE);
      this.#rdmc = rdmcGroups.length > 0 ? RdmcNode.onRuntime(this.#runtime, rdmcGroups, rdmcBase) : null;
    } catch (error) {
      this.#runtime.close();
      throw error;
    }
    const layout = this.#sst.layout;
    this.#mailboxes = new Mailboxes(this.#runtime.arena, this.#runtime.fabric, layout, this.id, mailboxBytes);
    for (const plan of this.plans) {
      ShardChannel.initialize(this.#runtime.arena, layout, plan);
      plan.shards.forEach((shard, shardIndex) => {
        if (!shard.members.includes(this.id)) return;
        const rdmc: Array<RdmcGroup | null> = shard.senders.map((_, rank) => {
          const id = groupOf(plan.index, shardIndex, rank);
          return id === undefined ? null : this.#rdmc!.group(id);
        });
        const channel = new ShardChannel({
          arena: this.#runtime.arena, fabric: this.#runtime.fabric, layout, selfId: this.id, plan, shardIndex,
          mailboxes: this.#mailboxes, rdmc, schedule: () => this.#schedule(),
        });
        this.#channels.set(plan.name, channel);
        this.#byTag.set(channel.tag, channel);
      });
    }
    const tag = fnv1a(JSON.stringify({ sst: layout.tag, rdmc: rdmcGroups }));
    this.#runtime.expect(config.members, tag, (peer) => [
      ...layout.grantsFor(layout.rowOf(peer)),
      ...(this.#rdmc ? this.#rdmc.layout.grantsFor(this.id, peer) : []),
    ]);
    this.#runtime.listen(); // only now: a peer that dials in finds its grants in place
    this.#sst.on('suspected', (member) => this.#memberFailed(member, 'SUSPECTED'));
    this.#sst.on('peerFailed', (member, reason) => this.#memberFailed(member, reason));
    this.#sst.on('error', (error) => this.emit('error', error));
    this.#rdmc?.on('error', (error) => this.emit('error', error));
    // Objects exist before the first delivery, so no command finds a shard without its replica.
    for (const name of Object.keys(this.#types)) if (this.#channels.has(name)) this.subgroup(name);
  }

  #start(): void {
    this.#sst.watch();
    // The poller calls the step straight after counters, slots or mailboxes land: one thread hop. The
    // predicate worker still heartbeats, suspects, and brings connection news.
    this.#runtime.fabric.onArrival([0], () => this.#stepAll());
    this.#stepAll(); // pushes every shard's initial counters
  }

  /** Members of the view this member has found failed. */
  get failed(): number[] { return [...this.#failed]; }

  /** Set once this member finds itself in a minority of its view; it delivers nothing more then. */
  get partitioned(): PartitionedError | null { return this.#partitioned; }

  /** The address this member accepts connections on. */
  get address(): string { return this.#runtime.address; }

  /** Names of the subgroups this member serves. */
  get subgroups(): string[] { return [...this.#channels.keys()]; }

  /**
   * This member's shard of subgroup `name` as a replicated object of the class given in `types` (or
   * `type`): ordered calls, queries, replies.
   */
  subgroup<T extends object>(name: string, type?: ReplicatedClass<T>): ReplicatedObject<T> {
    this.#checkOpen();
    const existing = this.#objects.get(name);
    if (existing) return existing as ReplicatedObject<T>;
    const channel = this.channel(name);
    const cls = (type ?? this.#types[name]) as ReplicatedClass<T> | undefined;
    if (!cls) throw new ConfigError(`subgroup '${name}' has no class: pass types: { ${name}: YourClass } to Group.join, or group.subgroup('${name}', YourClass)`);
    const object = ReplicatedObject.attach(new cls(), channel, {
      type: cls, maxMessageBytes: channel.maxMessageBytes,
      ...(this.#callTimeoutMs ? { timeoutMs: this.#callTimeoutMs } : {}),
      onError: (error) => this.emit('error', error),
    });
    this.#objects.set(name, object as ReplicatedObject<object>);
    return object;
  }

  /** This member's shard of subgroup `name` as a channel of bytes: send(), onDeliver(), sendTo(), onDirect(). */
  channel(name: string): ShardChannel {
    this.#checkOpen();
    const channel = this.#channels.get(name);
    if (channel) return channel;
    if (!(name in this.config.subgroups)) throw new ConfigError(`no subgroup '${name}'; the configuration has: ${Object.keys(this.config.subgroups).join(', ')}`);
    throw new ConfigError(`member ${this.id} is in no shard of subgroup '${name}'`);
  }

  /** Stops every shard, the workers and the fabric. Calls in flight reject with ClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const o of this.#objects.values()) o.close();
    for (const c of this.#channels.values()) c.close();
    await this.#rdmc?.close();
    await this.#sst.close();
    this.#runtime.close();
  }

  #schedule(): void {
    if (this.#stepScheduled || this.#closed) return;
    this.#stepScheduled = true;
    setImmediate(() => {
      this.#stepScheduled = false;
      this.#stepAll();
    });
  }

  #stepAll(): void {
    if (this.#closed) return;
    this.#mailboxes.poll((from, tag, bytes) => this.#byTag.get(tag)?.direct(from, bytes));
    for (const channel of this.#channels.values()) channel.step();
  }

  #memberFailed(member: number, reason: string): void {
    if (this.#closed) return;
    if (this.#failed.has(member) || !this.view.members.includes(member)) return;
    this.#failed.add(member);
    this.#publishSuspicion(member);
    this.#mailboxes.fail(member, reason);
    for (const channel of this.#channels.values()) channel.memberFailed(member, reason);
    this.emit('memberFailed', member, reason);
    const size = this.view.members.length;
    if (!this.#partitioned && !hasMajority(size, size - this.#failed.size)) {
      this.#partitioned = new PartitionedError(this.id, this.view.vid, size, [...this.#failed]);
      for (const channel of this.#channels.values()) channel.stop(this.#partitioned);
      this.emit('partitioned', this.#partitioned);
    }
  }

  /**
   * Marks `member` suspected in this member's row and wedges it (it sends nothing new in this view), and
   * pushes both to every live peer: the first step of a view change (DESIGN.md §6), visible to all.
   */
  #publishSuspicion(member: number): void {
    const layout = this.#sst.layout;
    const arena = this.#runtime.arena;
    const row = layout.rowOf(this.id);
    const suspected = layout.column(MEMBERSHIP_COLUMNS.suspected);
    const wedged = layout.column(MEMBERSHIP_COLUMNS.wedged);
    Atomics.store(arena.u8, layout.offsetOf(row, suspected, layout.rowOf(member)), 1);
    Atomics.store(arena.u8, layout.offsetOf(row, wedged), 1);
    for (const [offset, length] of layout.pushRanges(row, [suspected, wedged])) this.#runtime.fabric.writeAll(offset, length);
  }

  /**
   * This member's copy of every row's membership columns, by member id: whom that member suspects and
   * whether it is wedged. (A row of a failed member holds what last arrived from it.)
   */
  membership(): Array<{ member: number; wedged: boolean; suspects: number[] }> {
    const layout = this.#sst.layout;
    const arena = this.#runtime.arena;
    const suspected = layout.column(MEMBERSHIP_COLUMNS.suspected);
    const wedged = layout.column(MEMBERSHIP_COLUMNS.wedged);
    return layout.members.map((member, row) => ({
      member,
      wedged: Atomics.load(arena.u8, layout.offsetOf(row, wedged)) === 1,
      suspects: layout.members.filter((_, j) => Atomics.load(arena.u8, layout.offsetOf(row, suspected, j)) === 1),
    }));
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('this group member');
  }
}

/**
 * One RDMC group per (subgroup, shard, sender) whose messages may exceed maxSmcPayload; rank 0 sends.
 * `groupOf(subgroup, shard, senderRank)` names the group of a sender, undefined when it has none.
 */
function rdmcGroupsOf(plans: readonly SubgroupPlan[]): { groups: RdmcGroupSpec[]; groupOf: (subgroup: number, shard: number, rank: number) => number | undefined } {
  const groups: RdmcGroupSpec[] = [];
  const ids = new Map<string, number>();
  for (const plan of plans) {
    if (plan.maxMessageBytes <= plan.maxSmcPayload) continue;
    plan.shards.forEach((shard, shardIndex) => {
      if (shard.members.length < 2) return;
      shard.senders.forEach((sender, rank) => {
        ids.set(`${plan.index}/${shardIndex}/${rank}`, groups.length);
        groups.push({
          id: groups.length, members: [sender, ...shard.members.filter((m) => m !== sender)],
          maxMessageBytes: plan.maxMessageBytes, blockBytes: Math.max(1024, Math.min(plan.blockBytes, align(plan.maxMessageBytes, 8))),
        });
      });
    });
  }
  return { groups, groupOf: (subgroup, shard, rank) => ids.get(`${subgroup}/${shard}/${rank}`) };
}
