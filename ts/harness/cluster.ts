// Parent side of the process harness used by the real-process tests, the benchmarks and the demo: n
// member processes, each a child script driven over IPC (a request carries `seq`, the reply echoes it;
// anything else a child sends is an event). Members are wired race-free: every child listens on a port
// of its own choosing and reports it, then every child is told the member list (and grants), and only
// then do they connect.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ColumnSpecs } from '../sst/layout.js';
import type { RdmcGroupSpec } from '../rdmc/layout.js';
import type { HarnessEvent, HarnessRequest } from './sst-process.js';
import type { RdmcHarnessEvent, RdmcHarnessRequest } from './rdmc-process.js';
import type { ExampleType, GroupHarnessEvent, GroupHarnessRequest } from './group-process.js';
import type { LoadHarnessEvent, LoadHarnessRequest } from './load-process.js';
import type { GroupConfig } from '../group/config.js';
import type { SubgroupConfig } from '../membership/plans.js';
import { createServer, type Server } from 'node:net';
import type { FabricChoice } from '../fabric/choice.js';

export interface ClusterMember<Event> {
  id: number;
  process: ChildProcess;
  address: string;
  events: Event[];
  exited: boolean;
}

/** How a child is started: plain fork on this host by default, or inside a network namespace. */
export type ForkMember = (index: number, entry: string) => ChildProcess;
const forkHere: ForkMember = (_index, entry) =>
  fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });

export class ChildCluster<Request extends { cmd: string }, Event> {
  readonly members: ClusterMember<Event>[] = [];
  private seq = 0;
  private pending = new Map<number, {
    member: ClusterMember<Event>; resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void;
  }>();
  private listeners: Array<() => void> = [];

  constructor(entry: string, ids: readonly number[], forkMember: ForkMember = forkHere) {
    ids.forEach((id, index) => this.spawn(id, forkMember(index, entry)));
  }

  protected spawn(id: number, child: ChildProcess): void {
    const member: ClusterMember<Event> = { id, process: child, address: '', events: [], exited: false };
    child.on('message', (msg: { seq?: number; ok?: boolean; error?: string } & Record<string, unknown>) => {
      if (typeof msg.seq === 'number' && typeof msg.ok === 'boolean') { // a reply (events carry no 'ok')
        const p = this.pending.get(msg.seq);
        this.pending.delete(msg.seq);
        if (msg.ok) p?.resolve(msg);
        else p?.reject(Object.assign(new Error(`member ${id}: ${msg.error}`), { code: msg.code }));
      } else {
        member.events.push(msg as unknown as Event);
        for (const l of this.listeners.splice(0)) l();
      }
    });
    child.on('exit', () => {
      member.exited = true;
      for (const [seq, p] of this.pending) {
        if (p.member !== member) continue; // not a new process with its id
        this.pending.delete(seq);
        p.reject(new Error(`member ${id} exited`));
      }
      for (const l of this.listeners.splice(0)) l();
    });
    this.members.push(member);
  }

  request(member: ClusterMember<Event>, req: Request): Promise<Record<string, unknown>> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      if (member.exited) { reject(new Error(`member ${member.id} has exited`)); return; }
      this.pending.set(seq, { member, resolve, reject });
      // A member killed a moment ago has a closed channel before its 'exit' arrives: reject, do not throw.
      member.process.send({ ...req, seq }, (error) => {
        if (!error) return;
        this.pending.delete(seq);
        reject(new Error(`member ${member.id} has exited (${error.message})`));
      });
    });
  }

  /** Listens, expects and connects every member (the race-free start). */
  async wire(
    listenRequest: (m: ClusterMember<Event>, index: number) => Request,
    expectRequest: (list: { id: number; address: string }[]) => Request, connectRequest: Request
  ): Promise<void> {
    try {
      await Promise.all(
        this.members.map(async (m, i) => {
          m.address = (await this.request(m, listenRequest(m, i))).address as string;
        }));
      const list = this.members.map((m) => ({ id: m.id, address: m.address }));
      await Promise.all(this.members.map((m) => this.request(m, expectRequest(list))));
      await Promise.all(this.members.map((m) => this.request(m, connectRequest)));
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  /** Resolves with the first event of `member` that matches, waiting up to timeoutMs. */
  async waitForEvent(member: ClusterMember<Event>, match: (e: Event) => boolean, timeoutMs: number): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = member.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `member ${member.id}: no matching event within ${timeoutMs} ms; ` +
            `events: ${JSON.stringify(member.events).slice(0, 2000)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.listeners.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Closes every live member cleanly (a 'close' request), then kills whatever is left. */
  async close(): Promise<void> {
    await Promise.all(this.members.filter((m) => !m.exited).map((m) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const closed = this.request(m, { cmd: 'close' } as Request)
        .catch(() => {}) // one that fails or exits instead of answering is killed below with the rest
        .finally(() => clearTimeout(timer));
      // a timer left running would hold the caller's exit 3 s
      return Promise.race([closed, new Promise((r) => { timer = setTimeout(r, 3000); })]);
    }));
    this.kill();
  }

  kill(): void {
    for (const m of this.members) if (!m.exited) m.process.kill('SIGKILL');
  }
}

// ---- SST members ----------------------------------------------------------------------------------------

export interface SstClusterOptions {
  members: number;
  columns: ColumnSpecs;
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  /** First member id (ids are consecutive). Default 0. */
  firstId?: number;
  /** Native backend of every member; absent: the children's environment (SQUALL_FABRIC) decides. */
  fabric?: FabricChoice;
}

const sstEntry = fileURLToPath(new URL('./sst-process.js', import.meta.url));
export type SstClusterMember = ClusterMember<HarnessEvent>;

export class SstCluster extends ChildCluster<HarnessRequest, HarnessEvent> {
  static async start(options: SstClusterOptions): Promise<SstCluster> {
    const firstId = options.firstId ?? 0;
    const cluster = new SstCluster(sstEntry, Array.from({ length: options.members }, (_, i) => firstId + i));
    await cluster.wire(
      (m) => ({
        cmd: 'listen', id: m.id, listen: '127.0.0.1:0', columns: options.columns,
        ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
        ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
        ...(options.fabric ? { fabric: options.fabric } : {}),
      }),
      (members) => ({ cmd: 'expect', members }),
      { cmd: 'connect' },
    );
    return cluster;
  }
}

// ---- SST members under load (bench sst --under-load) --------------------------------------------------

export interface LoadClusterOptions {
  members: number;
  /** The multicast subgroup every member floods (one shard of every member). */
  subgroup: SubgroupConfig;
  /** Size of the RDMC group's buffer (member 0 sends messages of this size). */
  rdmcBytes: number;
  fabric?: FabricChoice;
}

const loadEntry = fileURLToPath(new URL('./load-process.js', import.meta.url));
export type LoadClusterMember = ClusterMember<LoadHarnessEvent>;

/** Members that each carry an SST ping-pong, a multicast shard and an RDMC group over one fabric (load-process.ts). */
export class LoadCluster extends ChildCluster<LoadHarnessRequest, LoadHarnessEvent> {
  static async start(options: LoadClusterOptions): Promise<LoadCluster> {
    const ids = Array.from({ length: options.members }, (_, i) => i);
    const cluster = new LoadCluster(loadEntry, ids);
    await cluster.wire(
      (m) => ({
        cmd: 'listen', id: m.id, ids, listen: '127.0.0.1:0', subgroup: options.subgroup, rdmcBytes: options.rdmcBytes,
        ...(options.fabric ? { fabric: options.fabric } : {}),
      }),
      (members) => ({ cmd: 'expect', members }),
      { cmd: 'connect' },
    );
    return cluster;
  }
}

// ---- RDMC members ---------------------------------------------------------------------------------------

export interface RdmcClusterOptions {
  members: number;
  groups: RdmcGroupSpec[];
  /** Where member i listens (default '127.0.0.1:0'); in a network namespace, its address there. */
  listenAddress?: (index: number) => string;
  fork?: ForkMember;
  /** Native backend of every member; absent: the children's environment (SQUALL_FABRIC) decides. */
  fabric?: FabricChoice;
}

const rdmcEntry = fileURLToPath(new URL('./rdmc-process.js', import.meta.url));
export type RdmcClusterMember = ClusterMember<RdmcHarnessEvent>;

export class RdmcCluster extends ChildCluster<RdmcHarnessRequest, RdmcHarnessEvent> {
  static async start(options: RdmcClusterOptions): Promise<RdmcCluster> {
    const cluster = new RdmcCluster(rdmcEntry, Array.from({ length: options.members }, (_, i) => i), options.fork);
    await cluster.wire(
      (m, i) => ({
        cmd: 'listen', id: m.id, listen: options.listenAddress?.(i) ?? '127.0.0.1:0', groups: options.groups,
        ...(options.fabric ? { fabric: options.fabric } : {})
      }),
      (members) => ({ cmd: 'expect', members }),
      { cmd: 'connect' },
    );
    return cluster;
  }
}

// ---- group members --------------------------------------------------------------------------------------

export interface GroupClusterOptions {
  members: number;
  subgroups: Record<string, SubgroupConfig>;
  /** The example class each subgroup replicates (subgroups without one are byte channels). */
  types?: Record<string, ExampleType>;
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  mailboxBytes?: number;
  /** Members removed while alive join again by themselves (JoinOptions.rejoin). */
  rejoin?: boolean;
  /** JoinOptions.maxQueuedMessages and maxQueuedBytes of every member (they win over the subgroups'). */
  maxQueuedMessages?: number;
  maxQueuedBytes?: number;
  /** false: the members attach no 'error' listener (as an application that forgot one). */
  listenErrors?: boolean;
  /** Native backend of every member; absent: the children's environment (SQUALL_FABRIC) decides. */
  fabric?: FabricChoice;
  /** The group's secret key (JoinOptions.secret), given to every member and to the members add() starts. */
  secret?: string;
  /** The configuration's contactTls: the contact port speaks TLS 1.3 keyed by `secret`. */
  contactTls?: boolean;
  /** Member i's dataDir (JoinOptions.dataDir), for persistent subgroups; add() and relaunch() pass it too. */
  dataDirs?: readonly string[];
  /** How member i is started, and the host it is reached at (an emulated network's); default loopback. */
  network?: { fork: ForkMember; hostOf: (index: number) => string };
}

const groupEntry = fileURLToPath(new URL('./group-process.js', import.meta.url));
export type GroupClusterMember = ClusterMember<GroupHarnessEvent>;

/**
 * `n` distinct free TCP ports on 127.0.0.1, as the system hands them out (whoever needs them binds them a
 * moment later). The probes stay open until all are taken, so no port is handed out twice.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** One free TCP port on 127.0.0.1 (see freePorts). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

export class GroupCluster extends ChildCluster<GroupHarnessRequest, GroupHarnessEvent> {
  config!: GroupConfig;
  /** Each member's contact address (where new members ask to join). */
  readonly contacts = new Map<number, string>();
  #options!: GroupClusterOptions;
  #joinOptions: Record<string, unknown> = {};

  /**
   * Forks the members and joins them to one group: on loopback ports picked here, or each on a host of an
   * emulated network (`network`; a host of its own, so every member takes port 7100).
   */
  static async start(options: GroupClusterOptions): Promise<GroupCluster> {
    const ids = Array.from({ length: options.members }, (_, i) => i);
    const net = options.network;
    const ports = net ? ids.map(() => 7100) : await freePorts(ids.length);
    const members = ids.map((id) => ({ id, address: `${net ? net.hostOf(id) : '127.0.0.1'}:${ports[id]}` }));
    const config: GroupConfig = {
      members, subgroups: options.subgroups, ...(options.contactTls ? { contactTls: true } : {}),
    };
    const cluster = new GroupCluster(groupEntry, ids, net?.fork);
    cluster.config = config;
    cluster.#options = options;
    const joinOptions = cluster.#joinOptions = {
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
      ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
      ...(options.mailboxBytes ? { mailboxBytes: options.mailboxBytes } : {}),
      ...(options.rejoin ? { rejoin: true } : {}),
      ...(options.maxQueuedMessages ? { maxQueuedMessages: options.maxQueuedMessages } : {}),
      ...(options.maxQueuedBytes ? { maxQueuedBytes: options.maxQueuedBytes } : {}),
      ...(options.fabric ? { fabric: options.fabric } : {}),
      ...(options.secret ? { secret: options.secret } : {}),
    };
    const listen = options.listenErrors === false ? { listenErrors: false } : {};
    try {
      await Promise.all(cluster.members.map(async (m) => {
        const joined = await cluster.request(m, {
          cmd: 'join', id: m.id, config, ...(options.types ? { types: options.types } : {}), ...listen,
          options: { ...joinOptions, ...(options.dataDirs ? { dataDir: options.dataDirs[m.id]! } : {}) },
        });
        m.address = joined.address as string;
        cluster.contacts.set(m.id, joined.contact as string);
      }));
    } catch (err) {
      cluster.kill();
      throw err;
    }
    return cluster;
  }

  /**
   * Starts new member processes `ids` and has each join the running group through the live members'
   * contact addresses; `index` picks the emulated network's host (and namespace) of each. Resolves once
   * all have joined (the view each entered is in the reply); the new members are appended to `members`.
   */
  async add(
    ids: readonly number[], index: (id: number) => number = (id) => id, timeoutMs = 60_000,
    overrides: { secret?: string } = {}
  ): Promise<Array<Record<string, unknown>>> {
    const net = this.#options.network;
    const contacts = this.members.filter((m) => !m.exited && this.contacts.has(m.id))
      .map((m) => this.contacts.get(m.id)!);
    const added = ids.map((id) => {
      this.spawn(id, (net?.fork ?? forkHere)(index(id), groupEntry));
      return this.members[this.members.length - 1]!;
    });
    return Promise.all(added.map(async (m) => {
      const host = net ? net.hostOf(index(m.id)) : '127.0.0.1';
      const options = {
        ...this.#joinOptions, ...this.#dataDirOf(m.id), ...overrides, contact: contacts, listen: `${host}:0`,
        connectTimeoutMs: timeoutMs,
      };
      const types = this.#options.types ? { types: this.#options.types } : {};
      const joined = await this.request(m, { cmd: 'join', id: m.id, config: this.config, ...types, options });
      m.address = joined.address as string;
      this.contacts.set(m.id, joined.contact as string);
      return joined;
    }));
  }

  /**
   * Starts configured members `ids` again in new processes, with the configuration and data directories
   * they had and no contact: a group that stopped whole (every member of its last view) forms its next view
   * from their logs, each member's objects rebuilt from its own log. `started` is when the last process was
   * forked (performance.now()); `joined` resolves once every one's Group.join did, with the replies in `ids`
   * order. The new processes are appended to `members` (the old entries stay, exited).
   */
  relaunch(ids: readonly number[]): { started: number; joined: Promise<Array<Record<string, unknown>>> } {
    const net = this.#options.network;
    const started = ids.map((id) => {
      this.spawn(id, (net?.fork ?? forkHere)(id, groupEntry));
      return this.members[this.members.length - 1]!;
    });
    const at = performance.now();
    const types = this.#options.types ? { types: this.#options.types } : {};
    const joined = Promise.all(started.map(async (m) => {
      const options = { ...this.#joinOptions, ...this.#dataDirOf(m.id) };
      const reply = await this.request(m, { cmd: 'join', id: m.id, config: this.config, ...types, options });
      m.address = reply.address as string;
      this.contacts.set(m.id, reply.contact as string);
      return reply;
    }));
    return { started: at, joined };
  }

  /** The live process of member `id` (the newest, after a relaunch). */
  live(id: number): GroupClusterMember {
    const m = this.members.findLast((x) => x.id === id && !x.exited);
    if (!m) throw new Error(`member ${id} has no live process`);
    return m;
  }

  #dataDirOf(id: number): { dataDir?: string } {
    const dir = this.#options.dataDirs?.[id];
    return dir === undefined ? {} : { dataDir: dir };
  }

  /** Sends one request to every member (or those given) and returns the replies in member order. */
  all(req: GroupHarnessRequest, members = this.members): Promise<Array<Record<string, unknown>>> {
    return Promise.all(members.map((m) => this.request(m, req)));
  }
}
