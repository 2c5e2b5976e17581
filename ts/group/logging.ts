// Structured logs of a member's protocol steps: the `protocol` event (suspicions with their reason, the wedge
// and why, proposals, commits with the ragged trim, installs with their phases and joiners, state transfers,
// stops, refused connections and frames) and the lifecycle events (rejoined, rejoinFailed), written through a
// pino-compatible logger.
//
// A library is silent unless asked: Group.join({ logger }) takes the application's logger (pino, or anything
// with pino's methods); createLogger(level) makes one that writes JSON lines to stderr (squall node
// --log-level). Each line carries `memberId` (this member) and `event`, and the step's fields; levels:
//
//   warn   suspected, stopped (partitioned, removed, a view it cannot build), refused, rejoinRetry, rejoinFailed
//   info   wedged, proposed (by this member, the leader), committed, installed, stopped by its own leave(),
//          rejoined, stateSent, stateReceived, reconciled
//   debug  proposed (the leader's proposal, acknowledged here), connection (connected); a lost one is warn
//
// The `error` event is not logged here: listening to it would stop an unhandled one from throwing.

import type { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { ConfigError } from '../errors.js';
import type { GroupEvents, ProtocolEvent } from './events.js';

/** What squall calls on a logger: pino's shape (a pino logger passes as it is). */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A pino logger at `level` writing JSON lines to stderr (fd 2); synchronously, so a line written just before
 *  the process exits is not lost (protocol events are few: a handful per view change). */
export function createLogger(level: LogLevel = 'info'): Logger {
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(`log level must be one of ${LOG_LEVELS.join(', ')}, got '${String(level)}'`);
  }
  return pino({ level, base: { pid: process.pid }, name: 'squall' }, pino.destination({ fd: 2, sync: true }));
}

/** Checks a JoinOptions.logger (ConfigError naming what is missing). */
export function checkLogger(value: unknown, name: string): void {
  const missing = ['error', 'warn', 'info', 'debug'].filter(
    (m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function');
  if (typeof value !== 'object' || value === null || missing.length > 0) {
    throw new ConfigError(`${name} must be a logger with pino's methods (e.g. pino()); it lacks ${missing.join(', ')}`);
  }
}

const WEDGE_CAUSES = { suspected: 'suspects', leaving: 'leaving:', joining: 'takes joiners', peer: 'wedged first:' };

/** The one-line message of a protocol event (the fields carry the rest). */
function describe(e: ProtocolEvent): string {
  switch (e.event) {
    case 'suspected': return `suspects member ${e.member} (${e.reason}): view ${e.vid} wedges`;
    case 'committed': return `view ${e.vid} change committed: proposal ${e.proposal} by member ${e.proposer}, ` +
      `removes [${e.removed.join(', ')}], adds [${e.joined.join(', ')}]`;
    case 'wedged': return `view ${e.vid} wedged: ${WEDGE_CAUSES[e.cause]} ${e.members.join(', ')}`;
    case 'proposed': return `view ${e.vid}: proposal ${e.proposal} by member ${e.proposer} removes `
      + `[${e.removes.join(', ')}], adds [${e.adds.join(', ')}]`;
    case 'badRow': return `view ${e.vid}: member ${e.member}'s row is not an honest member's (${e.reason})`;
    case 'installed': return `installed view ${e.vid} (members ${e.members.join(', ')})`
      + (e.joined.length ? `; joined: ${e.joined.join(', ')}` : '');
    case 'stateSent': return `sent the state of subgroup '${e.subgroup}' shard ${e.shard} to member ${e.to} `
      + `(${e.kind}, ${e.bytes} bytes, ${e.ms} ms)`;
    case 'stateReceived': return `received the state of subgroup '${e.subgroup}' shard ${e.shard} from member `
      + `${e.from} (${e.kind}, ${e.bytes} bytes, ${e.ms} ms)`;
    case 'stopped': return `stopped in view ${e.vid}: ${e.message}`;
    case 'refused': return `refused: ${e.message}`;
    case 'rejoinRetry': return `rejoin attempt ${e.attempt} failed: ${e.message}; asking again in ${e.retryInMs} ms`;
    case 'connection': return e.state === 'connected' ? `view ${e.vid}: connected to member ${e.peer}`
      : `view ${e.vid}: lost the connection to member ${e.peer} (${e.reason ?? 'unknown'})`;
    case 'restartWaiting': return `total restart: view ${e.vid} waits for members ${e.missing.join(', ')} (`
      + (e.short > 0 ? `${e.short} more of the last view needed for a majority)` : 'a majority is here)');
    case 'reconciled': return `total restart: subgroup '${e.subgroup}' shard ${e.shard}: member ${e.source}'s log is `
      + `the longest (version ${e.version}); ${e.recipients.length ? `members ${e.recipients.join(', ')} catch up`
        : 'every log agrees'}`;
  }
}

const WARNINGS: ReadonlySet<ProtocolEvent['event']> =
  new Set(['suspected', 'badRow', 'stopped', 'refused', 'restartWaiting', 'rejoinRetry']);

/** The level of a protocol event written by `member` (the table at the top of this file). */
function levelOf(e: ProtocolEvent, member: number): 'warn' | 'info' | 'debug' {
  if (e.event === 'proposed') return e.proposer === member ? 'info' : 'debug';
  if (e.event === 'stopped') return e.left ? 'info' : 'warn';
  if (e.event === 'connection') return e.state === 'connected' ? 'debug' : 'warn';
  return WARNINGS.has(e.event) ? 'warn' : 'info';
}

/** Writes `group`'s protocol and lifecycle events to `logger`; returns what detaches it. */
export function logGroup(group: EventEmitter<GroupEvents>, member: number, logger: Logger): () => void {
  const onProtocol = (e: ProtocolEvent): void => {
    const level = levelOf(e, member);
    logger[level]({ memberId: member, ...e }, describe(e));
  };
  const onRejoined: (...args: GroupEvents['rejoined']) => void = (view) =>
    logger.info({ memberId: member, event: 'rejoined', vid: view.vid }, `rejoined the group in view ${view.vid}`);
  const onRejoinFailed = (error: Error): void => {
    const { message } = error;
    logger.warn({ memberId: member, event: 'rejoinFailed', message }, `could not rejoin: ${message}`);
  };
  group.on('protocol', onProtocol);
  group.on('rejoined', onRejoined);
  group.on('rejoinFailed', onRejoinFailed);
  return () => {
    group.off('protocol', onProtocol);
    group.off('rejoined', onRejoined);
    group.off('rejoinFailed', onRejoinFailed);
  };
}
