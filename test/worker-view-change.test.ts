// Who steps a view's view-change protocol (ts/group/view-parts.ts, buildViewParts): with the worker engine the
// predicate worker (WorkerViewChange hands it the spec), except at a member that serves a raw shard, whose
// counters are its main thread's and must freeze before the acknowledgement leaves — there the main thread
// steps it, as with the main engine. Built in one process over a real arena; the spec is caught, not posted.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import { WriteStatus, type TableFabric } from '../ts/fabric/fabric.js';
import { validateGroupConfig } from '../ts/group/config.js';
import { buildViewParts } from '../ts/group/view-parts.js';
import { planView, type SubgroupConfig } from '../ts/membership/plans.js';
import { ViewChangeProtocol } from '../ts/membership/protocol.js';
import { WorkerViewChange, type ViewChangeOp, type ViewChangeSpec } from '../ts/membership/worker-view-change.js';
import { multicastColumns } from '../ts/multicast/layout.js';
import { SstLayout } from '../ts/sst/layout.js';

const MAILBOX_BYTES = 4096;
const ids = [0, 1, 2];

function build(subgroups: Record<string, SubgroupConfig>, engine: 'main' | 'worker') {
  const config = validateGroupConfig({
    members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })), subgroups,
  });
  const plans = planView(config, ids);
  const columns = multicastColumns(plans, ids.length, MAILBOX_BYTES);
  const layout = new SstLayout(columns, ids);
  const arena = Arena.create({ memberId: 0, bytes: 1 << 21 });
  const fabric: TableFabric = {
    write: () => WriteStatus.Ok, writeBatch: () => WriteStatus.Ok, writeAll: () => ids.length - 1,
  } as unknown as TableFabric;
  const hosted: ViewChangeSpec[] = [];
  const requests: ViewChangeOp[] = [];
  const parts = buildViewParts({
    arena, layout, fabric, selfId: 0, view: { vid: 0, members: ids }, plans, mailboxBytes: MAILBOX_BYTES,
    rdmcOf: () => null, schedule: () => {}, shardEngine: engine, wakeWorker: () => {},
    viewChangeWorker: { columns, host: (spec) => { hosted.push(spec); }, request: (op) => { requests.push(op); } },
  });
  return { parts, hosted, requests };
}

const ORDERED: SubgroupConfig = { shards: 1, members: { min: 3, max: 3 }, maxSmcPayload: 256, maxMessageBytes: 256 };

test('worker engine, ordered shards: the predicate worker steps the protocol; requests go to it', () => {
  const { parts, hosted, requests } = build({ log: ORDERED }, 'worker');
  assert.ok(parts.protocol instanceof WorkerViewChange, 'the main thread sees a WorkerViewChange');
  assert.is(hosted.length, 1, 'the worker is handed the view\'s protocol once');
  assert.equal(hosted[0]!.view, { vid: 0, members: ids });
  assert.is(hosted[0]!.selfId, 0);
  parts.protocol.announceInstalled();
  parts.protocol.suspect(2);
  assert.equal(requests, [{ op: 'installed' }, { op: 'suspect', member: 2 }], 'requests reach the worker in order');
  assert.is(parts.protocol.wedged, false, 'not wedged until the worker says so');
  assert.equal(parts.protocol.step(), null, 'no outcome until the worker reports one');
  assert.is(parts.protocol.leader(), 0, 'questions about the table are answered here');
  hosted[0]!.port.close();
});

test('worker engine, a member serving a raw shard: its main thread steps the protocol', () => {
  const { parts, hosted } = build({ log: ORDERED, raw: { ...ORDERED, mode: 'raw' } }, 'worker');
  assert.ok(parts.protocol instanceof ViewChangeProtocol, 'the main thread\'s own ViewChangeProtocol');
  assert.is(hosted.length, 0, 'nothing handed to the worker');
});

test('main engine: the main thread steps the protocol', () => {
  const { parts, hosted } = build({ log: ORDERED }, 'main');
  assert.ok(parts.protocol instanceof ViewChangeProtocol);
  assert.is(hosted.length, 0);
});

test.run();
