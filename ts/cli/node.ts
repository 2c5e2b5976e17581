// `squall node --config FILE --id N [options]`: runs one member of a group (Group.join). A subgroup whose
// configuration names a "type" replicates that class — a built-in example (TicketBook, KeyValueStore) or a
// class the --module file exports — and one without is a channel of bytes. Progress goes to stderr; once
// a second a line on stdout says what this member delivered. Start one per configured member (each waits
// for the others); with --contact, a new member joins the running group through any member's contact
// address (printed by each member) and receives the subgroups' state. Ctrl-C or SIGTERM leaves the group
// cleanly (at most LEAVE_TIMEOUT_MS, then it closes) and exits 0; a second signal exits at once.

import { relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, SquallError } from '../errors.js';
import { EXAMPLE_TYPES } from '../examples/types.js';
import { TicketBook } from '../examples/ticket-book.js';
import { loadGroupConfig, type GroupConfig } from '../group/config.js';
import { firstViewPlans } from '../membership/plans.js';
import { resolveSecret } from '../group/credential.js';
import { Group, type JoinOptions, type ReplicatedClass } from '../group/group.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../group/logging.js';
import { registerMetrics } from '../group/metrics.js';
import { serveAdmin } from '../group/admin.js';
import { parseAddress } from '../address.js';
import { defineCommand, parseCommand } from './args.js';
import { progressOnStderr } from './progress.js';
import { formatCount, parsePositiveInt } from './units.js';
import { parseIntegerFlag } from '../validate.js';
import { MAX_MEMBER_ID, MAX_TIMEOUT_MS } from '../group/config.js';

const REPORT_INTERVAL_MS = 1000;
/** A signal's clean leave may take this long; then the member closes, and the process exits 0 within 2 s. */
const LEAVE_TIMEOUT_MS = 1500;

/**
 * The example configuration the package ships (<package>/examples/cluster.json), as a path from where the
 * command runs: "examples/cluster.json" in a clone, "node_modules/squall/examples/cluster.json" in an app.
 */
const EXAMPLE = relative(process.cwd(), fileURLToPath(new URL('../../../examples/cluster.json', import.meta.url)));

export const NODE_COMMAND = defineCommand({
  command: 'node',
  usage: '--config FILE --id N [options]',
  about: `Runs one member of a group (Group.join): start one per configured member, each in its own terminal;
each waits for the others. With --contact, a new member (an id the view does not have) joins the
running group instead, and receives the subgroups' state. Ctrl-C or SIGTERM leaves the group cleanly
(closing after 1.5 s if the leave cannot finish) and exits 0 within 2 s; a second signal exits at once.`,
  options: {
    config: {
      type: 'string', value: 'FILE', help: `the group configuration, JSON (${EXAMPLE} is one to start from)`,
    },
    id: {
      type: 'string', value: 'N',
      help: "this member's id: one of the configuration's members, or with --contact a new one",
    },
    listen: {
      type: 'string', value: 'HOST:PORT', help: 'bind here instead of the configured address (e.g. 0.0.0.0:7100)',
    },
    contact: {
      type: 'string', value: 'HOST:PORT', multiple: true,
      help: "join the running group as a new member through this member's\n" +
        "contact address (each member prints its own)",
    },
    module: { type: 'string', value: 'FILE', help: 'an ES module whose exported classes subgroups may name as "type"' },
    suspicion: {
      type: 'string', value: 'MS',
      help: "suspicion timeout: a member whose heartbeat stalls this long is removed\n" +
        "(default: the configuration's suspicionTimeoutMs, else 1000)",
    },
    rejoin: {
      type: 'boolean',
      help: 'join again by itself once the others removed this member (the default,\n' +
        'unless the configuration says "rejoin": false)',
    },
    'no-rejoin': { type: 'boolean', help: 'stop for good once removed' },
    data: {
      type: 'string', value: 'DIR',
      help: "where this member keeps its persistent subgroups' logs (needed when a\n" +
        'subgroup is "persistent": true); started again with the same DIR, it restores them',
    },
    'force-restart': {
      type: 'string', value: 'IDS',
      help: 'a total restart from these members alone (comma-separated, this one among them; give each the same\n' +
        'list), when fewer than a majority of the last view can come back: what only the others logged is lost',
    },
    metrics: {
      type: 'string', value: 'HOST:PORT', help: 'the admin port: Prometheus metrics at http://HOST:PORT/metrics, and ' +
        'what squall inspect HOST:PORT shows (port 0: any free port; the address is printed). Off by default',
    },
    'log-level': {
      type: 'string', value: 'LEVEL', help: `protocol events as JSON lines on stderr at this level and above: ` +
        `${LOG_LEVELS.join(', ')} (default warn: suspicions, stops, refusals; info adds commits and installs)`,
    },
  },
  notes: `A subgroup's "type" names the class it replicates: a built-in example (TicketBook, KeyValueStore) or a
class exported by --module. Start a group: squall node --config ${EXAMPLE} --id 0 (and --id 1,
--id 2); add a fourth member: squall node --config ${EXAMPLE} --id 3 --listen 127.0.0.1:0
--contact 127.0.0.1:7400`,
});

export async function run(argv: string[]): Promise<void> {
  const values = parseCommand(NODE_COMMAND, argv);
  if (values === null) return;
  if (!values.config || values.id === undefined) {
    throw new ConfigError(
      `squall node needs --config FILE and --id N (${EXAMPLE} is a configuration to start from; squall ` +
        'node --help lists the options)');
  }
  const id = parseIntegerFlag(values.id, 'id', 0, MAX_MEMBER_ID, 0);
  if (values.metrics) parseAddress(values.metrics, '--metrics'); // a bad address fails before anything binds
  if (values.rejoin && values['no-rejoin']) throw new ConfigError('give --rejoin or --no-rejoin, not both');
  const forceRestart = values['force-restart']?.split(',')
    .map((v) => parseIntegerFlag(v.trim(), 'force-restart', 0, MAX_MEMBER_ID, 0));
  const config = loadGroupConfig(values.config);
  const contact = values.contact;
  if (!contact && !config.members.some((m) => m.id === id)) throw unknownMember(id, values.config, config);
  const types = await subgroupTypes(config, values.module);
  const suspicionTimeoutMs = values.suspicion === undefined ? undefined
    : parsePositiveInt(values.suspicion, 'suspicion', 0, MAX_TIMEOUT_MS);
  const logger = createLogger((values['log-level'] ?? 'warn') as LogLevel);
  const rejoin = values['no-rejoin'] ? false : values.rejoin ? true : (config.rejoin ?? true);
  const progress = progressOnStderr(`node ${id}`);
  const credential = resolveSecret({ secretFile: config.secretFile }); // a bad key fails here, before anything binds
  progress(credential
    ? `the group's secret key comes from ${credential.source}`
    : 'no secret key: this group is open to anyone who can reach its ports (trusted networks only; `squall keygen` ' +
      'makes a key for SQUALL_SECRET_FILE)');
  // A signal before the group is joined ends the process at once (nothing to leave yet); after, the member
  // leaves; a second signal ends it at once.
  let group: Group | null = null;
  const signalled = new Promise<string>((resolveSignal) => {
    const onSignal = (signal: string) => {
      if (group === null) { progress(`${signal} while joining: exiting`); process.exit(0); }
      resolveSignal(signal);
      process.once(signal, () => { progress(`${signal} again: exiting now`); process.exit(0); });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });

  const formsByJoins = !contact && !firstViewPlans(config, config.members.map((m) => m.id));
  const options: JoinOptions = {
    id, config, types, rejoin, leaveTimeoutMs: LEAVE_TIMEOUT_MS, logger,
    // Said once the contact port takes requests, so whoever reads it can ask at once.
    ...(formsByJoins ? {
      onContactOpen: (address: string) => progress(
        `member ${id} forms the first view: waiting for enough members to join through --contact ${address}`),
    } : {}),
    ...(values.listen ? { listen: values.listen } : {}),
    ...(values.data !== undefined ? { dataDir: values.data } : {}),
    ...(forceRestart ? { forceRestart } : {}),
    ...(contact ? { contact } : {}),
    ...(suspicionTimeoutMs !== undefined ? { suspicionTimeoutMs } : {}),
  };
  const joining = Group.join(options);
  // Group.join binds and names its peers before its first await, so a configuration error has already
  // rejected `joining` and wins this race; otherwise this member now accepts its peers.
  await Promise.race([joining, undefined]);
  if (contact) {
    progress(`member ${id} asking to join through ${contact.join(', ')}`);
  } else if (!formsByJoins) {
    const address = values.listen ?? config.members.find((m) => m.id === id)!.address;
    const peers = config.members.filter((m) => m.id !== id).map((m) => m.id);
    const restart = values.data !== undefined ? ' (--data: a total restart needs a majority of the last view)' : '';
    progress(`member ${id} listening on ${address}; waiting for peers ${peers.join(', ')}${restart}`);
  }
  group = await joining;
  if (values.metrics) {
    const { address } = await serveAdmin(group, values.metrics, registerMetrics(group));
    progress(`metrics at http://${address}/metrics; squall inspect ${address} shows this member's view and SST`);
  }
  const failed = new Set<number>();
  group.on('memberFailed', (member, reason) => {
    if (failed.has(member)) return; // the broken connection and the suspicion both report it
    failed.add(member);
    progress(`member ${member} failed (${reason}): a view change removes it`);
  });
  group.on('view', (view, removed, joined) => {
    const changes = [
      removed.length ? `removed ${removed.join(', ')}` : '', joined.length ? `joined ${joined.join(', ')}` : '',
    ].filter(Boolean);
    progress(`view ${view.vid}: members ${view.members.join(', ')}${changes.length ? ` (${changes.join('; ')})` : ''}`);
  });
  group.on('partitioned', (error) => {
    progress(`stopped: ${error.message}${rejoin ? '; rejoining once the others can be reached' : ''}`);
  });
  group.on('removed', (error, rejoining) => {
    progress(`${rejoining ? 'removed, rejoining' : 'stopped'}: ${error.message}`);
  });
  group.on('rejoined', (view) => {
    failed.clear();
    progress(`rejoined: view ${view.vid}, members ${view.members.join(', ')}`);
  });
  group.on('rejoinFailed', (error) => { progress(`stopped: ${error.message}`); process.exit(1); });
  group.on('error', (error) => progress(`error: ${error.message}`));
  // refused contact attempts (rate-limited) among them
  group.on('warning', (error) => progress(`warning: ${error.message}`));
  progress(
    `joined: members ${group.view.members.join(', ')} connected (view ${group.view.vid}); new members join ` +
      `through --contact ${group.contactAddress}`);

  const served = group.subgroups;
  try {
    for (const name of served) {
      const channel = group.channel(name);
      const type = config.subgroups[name]!.type;
      progress(
        `subgroup '${name}' (${type ?? 'bytes'}): shard members ${channel.members.join(', ')}, ` +
          `senders ${channel.senders.join(', ')}`);
      if (type) attach(group, name, type);
    }
  } catch (error) {
    await group.close();
    throw error;
  }
  if (served.length === 0) progress(`member ${id} serves no subgroup`);

  const report = deliveryReport(group, served);
  const tick = setInterval(() => process.stdout.write(`${report()}\n`), REPORT_INTERVAL_MS);
  const signal = await signalled;
  clearInterval(tick);
  progress(`${signal}: leaving the group`);
  await group.leave().then(
    () => progress('left'),
    (error: Error) => progress(`closed without a clean leave: ${error.message}`));
  process.exit(0); // whatever still runs (a rejoin's timers, a peer's socket) must not keep the process
}

/** An id the configuration does not have, without --contact: which ids it has, and how to join as a new one. */
function unknownMember(id: number, path: string, config: GroupConfig): ConfigError {
  const contacts = config.members.map((m) => m.contact).filter((c): c is string => c !== undefined);
  return new ConfigError(
    `member ${id} is not in ${path}, whose members are ${config.members.map((m) => m.id).join(', ')}: ` +
    'start one of those ids, or join the running group as a new member with --contact HOST:PORT ' +
    `(any member's contact address${contacts.length ? `, e.g. ${contacts[0]}` : ', which each member prints'})`);
}

/** The class of each subgroup that names a "type": a built-in example, or a class --module exports. */
async function subgroupTypes(
  config: GroupConfig, modulePath: string | undefined
): Promise<Record<string, ReplicatedClass>> {
  const fromModule = modulePath ? await classesOf(modulePath) : {};
  const known: Record<string, ReplicatedClass> = { ...EXAMPLE_TYPES, ...fromModule };
  const types: Record<string, ReplicatedClass> = {};
  for (const [name, subgroup] of Object.entries(config.subgroups)) {
    if (subgroup.type === undefined) continue;
    if (!Object.hasOwn(known, subgroup.type)) {
      throw new ConfigError(
        `subgroup '${name}' has type '${subgroup.type}', which is no known class; ` +
        `known types: ${Object.keys(known).join(', ')}` +
        (modulePath ? '' : ' (--module FILE adds the classes an ES module exports)'));
    }
    types[name] = known[subgroup.type]!;
  }
  return types;
}

/** The classes an ES module exports, by export name (a default export by its class name). */
async function classesOf(path: string): Promise<Record<string, ReplicatedClass>> {
  let exports: Record<string, unknown>;
  try {
    exports = await import(pathToFileURL(resolve(path)).href) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(
      `cannot load --module '${path}': ${(cause as Error).message}; give the path of an ES module that exports classes`,
      { cause });
  }
  const classes: Record<string, ReplicatedClass> = {};
  for (const [key, value] of Object.entries(exports)) {
    if (typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value))) {
      classes[key === 'default' ? value.name || 'default' : key] = value as ReplicatedClass;
    }
  }
  if (Object.keys(classes).length === 0) {
    throw new ConfigError(
      `--module '${path}' exports no class; export the classes your subgroups' "type" names (export ` +
        `class Inventory { … })`);
  }
  return classes;
}

/** Creates the subgroup's replicated object now, before any command can be delivered to it. */
function attach(group: Group, name: string, type: string): void {
  try {
    group.subgroup(name);
  } catch (cause) {
    if (cause instanceof SquallError) throw cause;
    throw new ConfigError(
      `cannot construct ${type} for subgroup '${name}': ${(cause as Error).message}; a replicated class is ` +
        `constructed with no arguments`, { cause });
  }
}

/** What each served subgroup delivered since the last call, per second; and TicketBooks' bookings. */
function deliveryReport(group: Group, served: readonly string[]): () => string {
  const before = new Map(served.map((name) => [name, group.channel(name).delivered]));
  let last = performance.now();
  return () => {
    const now = performance.now();
    const seconds = (now - last) / 1000;
    last = now;
    if (served.length === 0) return 'delivered: nothing (this member serves no subgroup)';
    const parts = served.map((name) => {
      const delivered = group.channel(name).delivered;
      const rate = (delivered - before.get(name)!) / seconds;
      before.set(name, delivered);
      if (!group.config.subgroups[name]!.type) return `${name}: ${formatCount(rate)} messages/s`;
      const state = group.subgroup(name).state;
      const bookings = state instanceof TicketBook ? `, ${formatCount(state.count())} bookings` : '';
      return `${name}: ${formatCount(rate)} ordered commands/s${bookings}`;
    });
    return `delivered  ${parts.join('  |  ')}`;
  };
}
