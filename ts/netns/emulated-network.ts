// An emulated network of real hosts for tests and benchmarks: each member in a network namespace of its own,
// joined by a veth link to a bridge that lives in one more namespace, so nothing at all is configured in the
// root namespace and no packet can leave the network.
//
//      squall-<pid>-<X>-m0          squall-<pid>-<X>-br            squall-<pid>-<X>-m1
//   ┌─────────────────────┐     ┌──────────────────────────┐     ┌─────────────────────┐
//   │ lo                  │     │          sq-br           │     │ lo                  │
//   │ sq-eth0 10.213.X.1 ─┼─────┼─ sq-m0 ──┘    └── sq-m1 ─┼─────┼─ sq-eth0 10.213.X.2 │
//   │   [tbf: uplink]     │     │ [tbf: downlink] [tbf]    │     │   [tbf: uplink]     │
//   └─────────────────────┘     └──────────────────────────┘     └─────────────────────┘
//
// A cap is a tbf qdisc on both ends of a member's link: the member's end limits what it sends (uplink), the
// bridge's end limits what it receives (downlink). So a member's link carries at most the rate each way,
// like a full-duplex NIC, however many peers talk to it at once.
//
// Addresses: 10.213.X.(i+1)/24, X picked per network. Two networks never share a namespace, so X only keeps
// them apart for a human reading `ip netns list`. IPv6 is off on every link (addrgenmode none): no
// link-local addresses, no duplicate-address detection delaying the first packets.
//
// Lifetime (see lifetime.ts): exit and signal handlers tear a live network down; processes started in it die
// with their parent (`setpriv --pdeathsig KILL` when available); leftovers of a SIGKILLed creator are removed
// by the next create().

import {
  spawn as spawnProcess, spawnSync, type ChildProcess, type SpawnOptions, type StdioOptions,
} from 'node:child_process';
import type { Progress } from '../cli/progress.js';
import { ClosedError, ConfigError, EmulatedNetworkError } from '../errors.js';
import {
  findExecutable, killPids, listNamespaces, listNamespacesSync, namespacePids, namespacePidsSync, run, runSync,
} from './commands.js';
import { guard, namespaceName, parseNamespaceName, release, removeStaleNetworks } from './lifetime.js';
import { tbfArgs, type TbfCap } from './tbf.js';

export { netnsSupport, type NetnsSupport } from './support.js';
export { removeStaleNetworks } from './lifetime.js';
export { parseRateBitsPerSecond } from './tbf.js';

export interface EmulatedNetworkOptions {
  /** Number of member hosts, 1 to membersMax. */
  members: number;
  /** tc rate for every member's link, each way (e.g. '1gbit', '500mbit'); undefined = no cap. */
  rate?: string | undefined;
  /** tbf bucket size in tc units; default max(128 KiB, 2 ms at the rate). */
  burst?: string | undefined;
  /** tbf queue as the time it takes to drain (tc latency); default 20ms. */
  latency?: string | undefined;
  onProgress?: Progress | undefined;
}

export interface EmulatedHost {
  index: number;
  /** Name of the host's network namespace (for `ip netns exec`). */
  namespace: string;
  /** The host's IPv4 address; other members reach it there, and only there. */
  address: string;
}

export interface EmulatedForkOptions {
  /** Node flags before the module path; default process.execArgv, as child_process.fork does. */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Must contain 'ipc'; default ['ignore', 'inherit', 'inherit', 'ipc']. */
  stdio?: StdioOptions;
  /** Default 'advanced' (structured clone), as the harness uses. */
  serialization?: 'json' | 'advanced';
}

/** A /24 leaves room for 253 hosts; beyond a few dozen, a 2-core machine runs out of CPU long before. */
export const membersMax = 250;

/** Names inside the namespaces; each lives in one namespace only, so they need no per-network prefix. */
const bridgeName = 'sq-br';
const memberLinkName = 'sq-eth0';
const bridgePortName = (index: number) => `sq-m${index}`;

/** On destroy(), a process gets SIGTERM and this long to exit before SIGKILL. */
const terminateGraceMs = 1000;

/** Third octets in use by networks of this process (the namespaces of a network being built may not exist yet). */
const octetsInUse = new Set<number>();

async function reserveOctet(): Promise<number> {
  const taken = new Set<number>();
  for (const name of await listNamespaces()) {
    const parsed = parseNamespaceName(name);
    if (parsed && /^\d+$/.test(parsed.tag)) taken.add(Number(parsed.tag));
  }
  const free: number[] = [];
  for (let x = 0; x < 256; x++) if (!taken.has(x) && !octetsInUse.has(x)) free.push(x);
  if (free.length === 0) {
    throw new EmulatedNetworkError(
      'all 256 subnets 10.213.X.0/24 are in use by emulated networks: destroy some, or call removeStaleNetworks()');
  }
  const octet = free[Math.floor(Math.random() * free.length)]!;
  octetsInUse.add(octet);
  return octet;
}

let setprivPath: string | null | undefined;

/** `setpriv` if it can set a parent-death signal here, else null (processes then rely on destroy()). */
function setpriv(): string | null {
  if (setprivPath === undefined) {
    const path = findExecutable('setpriv');
    const works = path !== null &&
      spawnSync(path, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    setprivPath = works ? path : null;
  }
  return setprivPath;
}

export class EmulatedNetwork {
  readonly hosts: readonly EmulatedHost[];
  /** The namespace holding the bridge every member's link is plugged into. */
  readonly bridgeNamespace: string;
  /** '10.213.X.0/24'. */
  readonly subnet: string;

  private readonly octet: number;
  private readonly burst: string | undefined;
  private readonly latency: string | undefined;
  /** The cap currently on each member's link (undefined = none); the tc state mirrors this. */
  private readonly caps: Array<TbfCap | undefined>;
  private readonly children = new Set<ChildProcess>();
  private closed = false;
  private destroying: Promise<void> | null = null;

  /** Builds the network; on any failure, removes whatever was built and throws an EmulatedNetworkError. */
  static async create(options: EmulatedNetworkOptions): Promise<EmulatedNetwork> {
    const { members } = options;
    if (!Number.isInteger(members) || members < 1 || members > membersMax) {
      throw new ConfigError(`members must be an integer from 1 to ${membersMax}; got ${members}`);
    }
    if (options.rate !== undefined) tbfArgs({ rate: options.rate }); // throws a ConfigError naming the rate
    const progress = options.onProgress ?? (() => {});
    const started = Date.now();

    const removed = await removeStaleNetworks();
    if (removed > 0) progress(`removed ${removed} emulated network(s) left by processes that died`);

    const network = new EmulatedNetwork(await reserveOctet(), options);
    guard(network);
    try {
      progress(
        `building ${members} hosts on ${network.subnet} (${network.hosts[0]!.namespace} …), ` +
          `links ${options.rate ? `capped at ${options.rate} each way` : 'uncapped'}`);
      await network.build(options.rate);
      progress(`network ready in ${Date.now() - started} ms`);
      return network;
    } catch (err) {
      const why = (err as Error).message;
      await network.destroy().catch((e: Error) =>
        progress(`tearing down the half-built network failed too: ${e.message}`));
      throw new EmulatedNetworkError(`could not build an emulated network of ${members} hosts: ${why}`, { cause: err });
    }
  }

  private constructor(octet: number, options: EmulatedNetworkOptions) {
    this.octet = octet;
    this.subnet = `10.213.${octet}.0/24`;
    this.bridgeNamespace = namespaceName(process.pid, String(octet), 'br');
    this.hosts = Array.from({ length: options.members }, (_, index) => ({
      index,
      namespace: namespaceName(process.pid, String(octet), `m${index}`),
      address: `10.213.${octet}.${index + 1}`,
    }));
    this.burst = options.burst;
    this.latency = options.latency;
    this.caps = this.hosts.map(() => undefined);
  }

  private namespaces(): string[] {
    return [this.bridgeNamespace, ...this.hosts.map((h) => h.namespace)];
  }

  private async build(rate: string | undefined): Promise<void> {
    await run('ip', ['-batch', '-'], this.namespaces().map((n) => `netns add ${n}\n`).join(''));

    // Links are created from inside the bridge's namespace straight into each member's: they never
    // exist in the root namespace, not even for a moment.
    const bridge = [
      'link set lo up',
      `link add ${bridgeName} type bridge`,
      `link set ${bridgeName} addrgenmode none`,
      `link set ${bridgeName} up`,
      ...this.hosts.flatMap((h) => [
        `link add ${bridgePortName(h.index)} type veth peer name ${memberLinkName} netns ${h.namespace}`,
        `link set ${bridgePortName(h.index)} addrgenmode none`,
        `link set ${bridgePortName(h.index)} master ${bridgeName}`,
        `link set ${bridgePortName(h.index)} up`,
      ]),
    ];
    await run('ip', ['-n', this.bridgeNamespace, '-batch', '-'], bridge.map((l) => l + '\n').join(''));

    await Promise.all(this.hosts.map((h) => run('ip', ['-n', h.namespace, '-batch', '-'], [
      'link set lo up',
      `addr add ${h.address}/24 dev ${memberLinkName}`,
      `link set ${memberLinkName} addrgenmode none`,
      `link set ${memberLinkName} up`,
    ].map((l) => l + '\n').join(''))));

    if (rate !== undefined) await this.applyCaps(rate, this.hosts.map((h) => h.index));
  }

  private host(index: number): EmulatedHost {
    const host = Number.isInteger(index) ? this.hosts[index] : undefined;
    if (!host) {
      throw new ConfigError(`host index ${index} is out of range: the network has hosts 0 to ${this.hosts.length - 1}`);
    }
    return host;
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError('EmulatedNetwork');
  }

  /** Replaces (or removes, rate undefined) the tbf qdiscs on both ends of each listed member's link. */
  private async applyCaps(rate: string | undefined, indices: number[]): Promise<void> {
    const cap: TbfCap | undefined = rate === undefined ? undefined : { rate, burst: this.burst, latency: this.latency };
    const bridgeLines: string[] = [];
    const memberCommands: Array<Promise<string>> = [];
    for (const i of indices) {
      const h = this.host(i);
      if (cap) {
        const args = tbfArgs(cap);
        bridgeLines.push(`qdisc replace dev ${bridgePortName(i)} ${args.join(' ')}`);
        memberCommands.push(run('tc', ['-n', h.namespace, 'qdisc', 'replace', 'dev', memberLinkName, ...args]));
      } else if (this.caps[i]) {
        // Deleting the root qdisc gives the veth back its default (noqueue): no shaping at all.
        bridgeLines.push(`qdisc del dev ${bridgePortName(i)} root`);
        memberCommands.push(run('tc', ['-n', h.namespace, 'qdisc', 'del', 'dev', memberLinkName, 'root']));
      }
    }
    if (bridgeLines.length > 0) {
      memberCommands.push(
        run('tc', ['-n', this.bridgeNamespace, '-batch', '-'], bridgeLines.map((l) => l + '\n').join('')));
    }
    const results = await Promise.allSettled(memberCommands);
    for (const i of indices) this.caps[i] = cap;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Spawns `command args` inside host `index`'s namespace (`ip netns exec`; the process keeps the pid it is
   * given, so it can be signalled directly). The process is ended at destroy(), and dies with this process.
   * (The parent-death signal follows the thread that spawned: called from a worker thread, the process also
   * dies when that worker ends.)
   */
  spawn(index: number, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.checkOpen();
    const host = this.host(index);
    const ip = findExecutable('ip');
    if (!ip) throw new EmulatedNetworkError('`ip` is not installed: install iproute2 (apt-get install iproute2)');
    const deathSignal = setpriv();
    const wrapper = deathSignal ? [deathSignal, '--pdeathsig', 'KILL', '--'] : [];
    const child = spawnProcess(ip, ['netns', 'exec', host.namespace, ...wrapper, command, ...args], options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * child_process.fork inside host `index`'s namespace: `node [execArgv] modulePath args` with an IPC channel
   * ('advanced' serialization unless told otherwise). Tracked and ended like spawn().
   */
  fork(
    index: number, modulePath: string, args: readonly string[] = [], options: EmulatedForkOptions = {}
  ): ChildProcess {
    const stdio = options.stdio ?? ['ignore', 'inherit', 'inherit', 'ipc'];
    if (!Array.isArray(stdio) || !stdio.includes('ipc')) {
      throw new ConfigError("fork() needs an 'ipc' entry in stdio, e.g. ['ignore', 'inherit', 'inherit', 'ipc']");
    }
    const spawnOptions: SpawnOptions = { stdio, serialization: options.serialization ?? 'advanced' };
    if (options.env) spawnOptions.env = options.env;
    if (options.cwd) spawnOptions.cwd = options.cwd;
    return this.spawn(
      index, process.execPath, [...(options.execArgv ?? process.execArgv), modulePath, ...args], spawnOptions);
  }

  /** Caps member `index`'s link (every link if index is undefined) at `rate` each way; undefined removes the cap. */
  async setRate(rate: string | undefined, index?: number): Promise<void> {
    this.checkOpen();
    if (rate !== undefined) tbfArgs({ rate });
    const indices = index === undefined ? this.hosts.map((h) => h.index) : [this.host(index).index];
    await this.applyCaps(rate, indices);
  }

  /** The cap on member `index`'s link, or undefined when uncapped. */
  rateOf(index: number): string | undefined {
    return this.caps[this.host(index).index]?.rate;
  }

  /**
   * Takes member `index`'s link down (its bridge port; the member sees its carrier go) or brings it back.
   * Nothing reaches the member or leaves it while down: packets are dropped, not refused, so peers see
   * timeouts as in a real partition. The member keeps its address and routes, and its caps.
   */
  async setLinkUp(index: number, up: boolean): Promise<void> {
    this.checkOpen();
    const host = this.host(index);
    await run('ip', ['-n', this.bridgeNamespace, 'link', 'set', bridgePortName(host.index), up ? 'up' : 'down']);
  }

  /**
   * Stops the bridge forwarding member `index`'s traffic, both ways, or lets it forward again: an outage in the
   * network beyond the member, whose link keeps its carrier. (A link that loses its carrier, setLinkUp, stays
   * silent about a second longer once it is back: here a plain TCP stream paused ~1 s after a 100–300 ms carrier
   * loss, against the outage's length when the bridge port was blocked as long.)
   */
  async setBlocked(index: number, blocked: boolean): Promise<void> {
    this.checkOpen();
    const host = this.host(index);
    // Bridge port states: 0 disabled (forwards nothing), 3 forwarding. (`ip link set … type bridge_slave state`
    // is accepted here and changes nothing.)
    await run('bridge', ['-n', this.bridgeNamespace, 'link', 'set', 'dev', bridgePortName(host.index), 'state',
      blocked ? '0' : '3']);
  }

  /**
   * Ends every process started in the network (SIGTERM, then SIGKILL after terminateGraceMs) and anything
   * else still inside its namespaces, then deletes the namespaces, which deletes the links and the bridge.
   * Idempotent; a failed teardown can be retried.
   */
  destroy(): Promise<void> {
    this.closed = true;
    this.destroying ??= this.tearDown().catch((err: unknown) => {
      this.destroying = null;
      throw err;
    });
    return this.destroying;
  }

  private async tearDown(): Promise<void> {
    await this.endChildren();
    const present = new Set(await listNamespaces());
    const names = this.namespaces().filter((n) => present.has(n));
    for (const pids of await Promise.all(names.map((n) => namespacePids(n)))) killPids(pids);
    if (names.length > 0) await run('ip', ['-batch', '-'], names.map((n) => `netns del ${n}\n`).join(''));
    release(this);
    octetsInUse.delete(this.octet);
  }

  private async endChildren(): Promise<void> {
    const alive = () => [...this.children].filter((c) =>
      c.pid !== undefined && c.exitCode === null && c.signalCode === null);
    const exited = (c: ChildProcess, ms: number) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const timer = setTimeout(resolve, ms);
      c.once('exit', () => { clearTimeout(timer); resolve(); });
    });
    for (const c of alive()) c.kill('SIGTERM');
    await Promise.all(alive().map((c) => exited(c, terminateGraceMs)));
    for (const c of alive()) c.kill('SIGKILL');
    await Promise.all(alive().map((c) => exited(c, terminateGraceMs)));
  }

  /** For the exit and signal handlers: everything destroy() does, synchronously and without grace. */
  destroySync(): void {
    this.closed = true;
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const present = new Set(listNamespacesSync());
    const names = this.namespaces().filter((n) => present.has(n));
    for (const n of names) killPids(namespacePidsSync(n));
    if (names.length > 0) runSync('ip', ['-force', '-batch', '-'], names.map((n) => `netns del ${n}\n`).join(''));
    release(this);
    octetsInUse.delete(this.octet);
  }
}
