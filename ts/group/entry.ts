// A member's first view when the configuration alone does not make it (DESIGN.md §6): a new member enters a
// running group through a contact (the joiner's side of admission, ts/group/admission.ts being the
// leader's), a member the group went on without enters it again the same way (rejoin), and the first
// member forms view 0 from joiners when the configured members are too few (ts/group/first-view.ts gathers
// them). Either way the member driver opens the view, connects it, and starts it, as it does every view it
// installs.

import { JoinError, PartitionedError, RemovedError, StateTransferError } from '../errors.js';
import { planView } from '../membership/plans.js';
import type { GroupConfig } from './config.js';
import { requestJoin } from './contact.js';
import { ContactClosedError } from './contact-session.js';
import type { MemberDriver } from './driver.js';
import type { MemberEngines } from './engines.js';
import { rejoinRetryEvent, type ProtocolEvent } from './events.js';
import type { FirstViewGathering } from './first-view.js';
import type { StateSync } from './state-sync.js';
import type { ViewEngine } from './view-engine.js';

export interface EntryParts {
  selfId: number;
  config: GroupConfig;
  /** The group's key: a joiner and the member it asks prove it to each other. */
  key: Buffer | null;
  engines: MemberEngines;
  states: StateSync;
  /** The driver of this stretch of membership (fresh: it has no view yet). */
  driver: MemberDriver<ViewEngine>;
  /** Why this member stopped, or null. */
  stopped(): Error | null;
  /** Warm workers boot for the view it enters while the leader takes it in. */
  fillSpares(): void;
}

/** Pause between a rejoin's attempts, growing to the most; the attempts end after connectTimeoutMs. */
const REJOIN_PAUSE_MS = { first: 50, most: 1_000 };

/**
 * Joins that failed in a way asking again can mend (the leader gave up on this joiner after its offer, or
 * the group removed it before it was connected): Group.join asks again by itself, until connectTimeoutMs.
 */
const RETRYABLE_JOINS = new WeakSet<Error>();

function retryableJoin(message: string): JoinError {
  const error = new JoinError(message);
  RETRYABLE_JOINS.add(error);
  return error;
}

/**
 * A failed join that asking again may mend: a state transfer cut off, or the group went on without it (it
 * removed the new member, or the new member entered a view the others never took and found itself cut off).
 */
export function isRetryableJoin(error: unknown): boolean {
  return (error instanceof StateTransferError && error.retryable) || RETRYABLE_JOINS.has(error as Error);
}

/**
 * A new member: asks the contacts to let it in, builds the view the leader offers, gives the leader its
 * port, connects to the members it is told, and waits for the start barrier and its subgroups' state.
 */
export async function enter(p: EntryParts, contacts: readonly string[], timeoutMs: number,
  rejoining: boolean): Promise<void> {
  const { selfId, engines, driver } = p;
  p.fillSpares();
  const joiner = { id: selfId, host: engines.host };
  const tls = p.config.contactTls === true;
  const { session, offer } = await requestJoin(contacts, joiner, timeoutMs, { rejoining, key: p.key, tls });
  try {
    for (const [id, host] of Object.entries(offer.hosts)) engines.hosts.set(Number(id), host);
    const view = offer.view;
    const voters = isIdList(offer.previousVoters) ? { voters: offer.previousVoters } : {};
    const engine = engines.forNextView(view, { size: offer.previousSize, joined: offer.joined, ...voters });
    driver.open(engine);
    const plan = p.states.plan(offer.previous, view.members);
    plan.receive(engine);
    session.send({ port: engine.port });
    const reply = await session.next(timeoutMs)
      .catch((error: unknown) => { throw answerLost(error, selfId, view.vid); });
    if ('retry' in reply) {
      throw retryableJoin(`member ${selfId} was offered view ${view.vid} but the leader went on without it `
        + `(${reply.retry})`);
    }
    if (!('addresses' in reply)) {
      throw new JoinError(`member ${selfId} was offered view ${view.vid} but the leader answered `
        + `${JSON.stringify(reply)} instead of the members' addresses; join again`);
    }
    session.close();
    // A member that died meanwhile is not waited for: the others, connected here, mark it in their rows.
    driver.connect(engine, reply.addresses, timeoutMs, (peer) => engine.gone().has(peer));
    try {
      await engine.whenConnected().catch((error: Error) => { throw stopReason(p, view.vid) ?? error; });
      await whenInstalled(p, engine, timeoutMs);
      await plan.restored;
    } catch (error) {
      throw entryFailure(error, selfId, view.vid);
    }
  } finally {
    session.close();
  }
}

/**
 * What a new member's wait for the members' addresses, after it answered its offer, tells Group.join. A contact
 * connection that closed first means the leader failed, or went on without it and its `retry` did not arrive: a
 * joiner cut off from the leader for longer than its answer time (one suspicion timeout) sees the leader's
 * `retry` and close only once the link is back, and a reset there can drop the line unread. Either way asking
 * again may mend it (before, Group.join threw "the contact connection closed").
 */
export function answerLost(error: unknown, selfId: number, vid: number): unknown {
  if (!(error instanceof ContactClosedError)) return error;
  return retryableJoin(`member ${selfId} was offered view ${vid} but the contact connection closed before the `
    + 'members\' addresses came (the leader failed, or went on without it)');
}

/**
 * What a new member's failed wait for its first view and its state tells Group.join. Partitioned there (before
 * its start barrier, it was in a view the others did not take: its proposer was cut off as it committed), or
 * removed before its state arrived (found slow, or failed, by the others), it has served nothing yet, and
 * asking again reaches the view the others went on to: both are retryable failures.
 */
export function entryFailure(error: unknown, selfId: number, vid: number): unknown {
  if (error instanceof RemovedError) {
    return retryableJoin(`member ${selfId} entered view ${vid} but was removed before its state arrived `
      + `(${error.message})`);
  }
  if (!(error instanceof PartitionedError)) return error;
  return retryableJoin(`member ${selfId} entered view ${vid} but could not reach a majority of it `
    + `(${error.unreachable.length} of its members unreachable: ${error.unreachable.join(', ')})`);
}

/**
 * Why a new member stopped while it waited to be connected or for the start barrier (its view's engine
 * closed under the wait, which then says only that), or null when it did not stop. The others went on
 * without it (it was slower than the suspicion timeout, or the view changed before it was connected):
 * RemovedError, and it may ask again. A change committed before its state arrived cut the transfer off:
 * that StateTransferError, which asking again may mend too (isRetryableJoin).
 */
function stopReason(p: EntryParts, vid: number): Error | null {
  const stopped = p.stopped();
  if (stopped instanceof RemovedError) {
    return retryableJoin(`member ${p.selfId} entered view ${vid} but was removed before every member was `
      + `connected (${stopped.message})`);
  }
  return stopped;
}

/**
 * Resolves once this member is installed: `engine`'s start barrier passed, or — when a change committed before
 * this thread saw it pass (the predicate worker acknowledges a change by itself) — the barrier of the view
 * the member moved on to. A wait that ended because the member stopped throws why (stopReason).
 */
export async function whenInstalled(p: EntryParts, engine: ViewEngine, timeoutMs: number): Promise<void> {
  for (let view = engine; ;) {
    try {
      await view.whenReady(timeoutMs);
      return;
    } catch (error) {
      const stopped = stopReason(p, view.view.vid);
      if (stopped) throw stopped;
      const later = p.driver.view;
      if (!view.closed || later === null || later.view.vid <= view.view.vid) throw error;
      view = later;
    }
  }
}

/**
 * The first view by joins: once `gathering` has enough joiners and their ports, this member forms view 0 of
 * itself and them, listening on `listen`, hands out the addresses, and connects like any member.
 */
export async function formFirstView(p: EntryParts, gathering: FirstViewGathering, listen: string,
  timeoutMs: number): Promise<void> {
  const { engines, driver } = p;
  const { view, joined, ports } = await gathering.gather();
  const engine = engines.create(view, planView(p.config, view.members), listen);
  driver.open(engine);
  engines.listenFor(engine);
  const addresses = engines.addresses(engine.port, joined.map(({ joiner }, k) => ({ ...joiner, port: ports[k]! })));
  for (const { session } of joined) {
    session.send({ addresses });
    session.close();
  }
  driver.connect(engine, addresses, timeoutMs, (peer) => engine.gone().has(peer));
  await engine.whenConnected();
  await whenInstalled(p, engine, timeoutMs);
}

export interface RejoinSite {
  readonly selfId: number;
  /** connectTimeoutMs: the attempts end after it. */
  readonly timeoutMs: number;
  closed(): boolean;
  /** A fresh stretch of membership for the next attempt: a new driver (the member no longer stopped). */
  attempt(): EntryParts;
  /** The attempt got in: the member takes joiners again (its contact server). */
  entered(): Promise<void>;
  /** The attempt failed: the member is stopped again, and what it built closes. */
  abandon(): Promise<void>;
  /** Told of each failed attempt that another follows (the `rejoinRetry` protocol event). */
  protocol(event: ProtocolEvent): void;
}

/**
 * Rejoin (JoinOptions.rejoin): a member that is out of the group asks the others' contact addresses to let
 * it into the next view as a joiner — the same id, a fresh driver and engine, its subgroups' state received
 * from a member of each shard — until it is in, closed, or connectTimeoutMs has passed. Resolves with null
 * once in (or closed), else with why it could not.
 */
export async function rejoin(site: RejoinSite, contacts: readonly string[], cause: Error): Promise<JoinError | null> {
  const deadline = performance.now() + site.timeoutMs;
  let pauseMs = REJOIN_PAUSE_MS.first;
  let last: Error = cause;
  for (let attempt = 1; !site.closed(); attempt++) {
    if (contacts.length === 0) {
      last = new JoinError(`member ${site.selfId} knows no other member's contact address to rejoin through; give the `
        + 'members "contact" addresses in the configuration');
      break;
    }
    try {
      await enter(site.attempt(), contacts, Math.max(1, deadline - performance.now()), true);
      if (!site.closed()) await site.entered();
      return null;
    } catch (error) {
      last = error as Error;
      await site.abandon();
    }
    if (performance.now() + pauseMs >= deadline || site.closed()) break;
    site.protocol(rejoinRetryEvent(last, attempt, pauseMs));
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    pauseMs = Math.min(pauseMs * 2, REJOIN_PAUSE_MS.most);
  }
  if (site.closed()) return null;
  return new JoinError(`member ${site.selfId} could not rejoin the group within connectTimeoutMs = ${site.timeoutMs} `
    + `ms: ${last.message}`, { cause: last });
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((id) => Number.isInteger(id) && id >= 0);
}
