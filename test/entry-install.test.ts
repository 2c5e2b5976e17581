// How a new member's wait for its first view ends (ts/group/entry.ts whenInstalled). The predicate worker
// acknowledges a view change by itself (the worker engine), so a change can commit, and the member move on
// to the next view or stop, before its main thread saw the first view's start barrier pass; that view's
// engine then closes under the wait. The wait must end the way the member's state says — installed in the
// later view, or stopped with the reason that tells Group.join to ask again — not with the closed engine's
// ClosedError. Views here are stand-ins with the three members whenInstalled reads (whenReady, closed, vid);
// test/join-processes.test.ts ("a member fails while another joins") runs the real thing, where the race
// shows in some runs. The last test covers what Group.join then makes of a joiner partitioned in its first
// view, or removed before its state arrived (entryFailure): a retryable failure, as it served nothing yet; and
// so is a contact connection that closed before the leader sent the members' addresses (answerLost).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ClosedError, JoinError, PartitionedError, RemovedError, StateTransferError, TimeoutError,
} from '../ts/errors.js';
import { ContactClosedError, ContactProtocolError } from '../ts/group/contact-session.js';
import { answerLost, entryFailure, isRetryableJoin, whenInstalled, type EntryParts } from '../ts/group/entry.js';
import type { ViewEngine } from '../ts/group/view-engine.js';

interface StandIn { view: { vid: number }; closed: boolean; whenReady(timeoutMs: number): Promise<void> }

/** A view whose start barrier passes (ready) or whose engine closes under the wait (closed). */
function viewOf(vid: number, ends: 'ready' | 'closed'): StandIn {
  const view: StandIn = {
    view: { vid },
    closed: false,
    whenReady: () => {
      if (ends === 'ready') return Promise.resolve();
      view.closed = true;
      return Promise.reject(new ClosedError(`view ${vid}'s engine`));
    },
  };
  return view;
}

function partsOf(current: StandIn | null, stopped: Error | null): EntryParts {
  return { selfId: 4, stopped: () => stopped, driver: { view: current } } as unknown as EntryParts;
}

const wait = (first: StandIn, p: EntryParts) => whenInstalled(p, first as unknown as ViewEngine, 1_000);

async function outcome(run: Promise<void>): Promise<Error | 'installed'> {
  try {
    await run;
    return 'installed';
  } catch (error) {
    return error as Error;
  }
}

test('the first view closed because the member moved on to a later view: installed there', async () => {
  const first = viewOf(1, 'closed'), later = viewOf(2, 'ready');
  assert.is(await outcome(wait(first, partsOf(later, null))), 'installed');
});

test('the first view closed because the member stopped: the stop reason, retryable when asking again may mend it',
  async () => {
    const cutOff = new StateTransferError('the state did not arrive before view 2');
    const error = await outcome(wait(viewOf(1, 'closed'), partsOf(null, cutOff)));
    assert.is(error, cutOff);
    assert.ok(isRetryableJoin(error), 'Group.join asks again');

    const removed = await outcome(wait(viewOf(1, 'closed'), partsOf(null, new RemovedError(4, 2, false, [0]))));
    assert.ok(isRetryableJoin(removed), 'removed before every member was connected: asks again');
    assert.match((removed as Error).message, /member 4 entered view 1 but was removed/);
  });

test('the first view closed and the member neither moved on nor stopped: the ClosedError', async () => {
  const first = viewOf(1, 'closed');
  const error = await outcome(wait(first, partsOf(first, null)));
  assert.instance(error, ClosedError);
  assert.not.ok(isRetryableJoin(error));
});

test('partitioned in the first view, or removed before the state arrived: a retryable join failure',
  async () => {
    const partitioned = new PartitionedError(4, 1, 3, [0, 2]);
    const stopped = await outcome(wait(viewOf(1, 'closed'), partsOf(null, partitioned)));
    assert.is(stopped, partitioned, 'whenInstalled gives the stop reason as it is');
    const failure = entryFailure(stopped, 4, 1);
    assert.ok(isRetryableJoin(failure), 'Group.join asks again');
    assert.match((failure as Error).message,
      /member 4 entered view 1 but could not reach a majority of it \(2 of its members unreachable: 0, 2\)/);
    assert.not.ok(isRetryableJoin(partitioned), 'a PartitionedError of a member that was installed is not retried');
    const removed = entryFailure(new RemovedError(4, 2, false, [0]), 4, 1);
    assert.ok(isRetryableJoin(removed), 'removed before its state arrived: asks again');
    assert.match((removed as Error).message, /member 4 entered view 1 but was removed before its state arrived/);
    const other = new ClosedError('view 1\'s engine');
    assert.is(entryFailure(other, 4, 1), other, 'any other failure is left as it is');
  });

test('a member whose connecting failed here counts every member unreachable: its PartitionedError says why', () => {
  const failure = new ClosedError('view 3\'s engine');
  const error = new PartitionedError(2, 3, 6, [0, 1, 5, 4, 3], failure);
  assert.is(error.cause, failure);
  assert.match(error.message,
    /unreachable \(0, 1, 5, 4, 3\) because connecting to the view failed here \(.*view 3's engine/);
  assert.not.match(new PartitionedError(2, 3, 6, [0, 1]).message, /because/);
});

test('a contact connection that closed before the members\' addresses: a retryable join failure; other errors as ' +
  'they were', () => {
  const closed = answerLost(new ContactClosedError('the contact connection closed'), 4, 2);
  assert.instance(closed, JoinError);
  assert.match((closed as Error).message, /member 4 was offered view 2 but the contact connection closed before/);
  assert.ok(isRetryableJoin(closed), 'Group.join asks again');
  const broken = new ContactProtocolError('contact connection with x closed: it sent a line that is not UTF-8 JSON');
  assert.is(answerLost(broken, 4, 2), broken);
  assert.not.ok(isRetryableJoin(broken));
  const late = new TimeoutError('no answer on the contact connection within 5 ms');
  assert.is(answerLost(late, 4, 2), late);
});

test.run();
