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
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { membershipKernelsOver } from '../ts/group/view-parts.js';
import type { AttachedFabric } from '../ts/fabric/native.js';
import type { ViewChangeReport } from '../ts/membership/worker-view-change.js';
import { ViewChangeHost } from '../workers/view-change-host.js';
import type { ShardEngine } from '../workers/shard-engine.js';

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

test('worker engine: a peer row with committed 1 and proposal 0 does not kill the predicate worker\'s step', () => {
  const config = validateGroupConfig({
    members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })), subgroups: { log: ORDERED },
  });
  const plans = planView(config, ids);
  const columns = multicastColumns(plans, ids.length, MAILBOX_BYTES);
  const layout = new SstLayout(columns, ids);
  const arena = Arena.create({ memberId: 0, bytes: 1 << 21 });
  const fabric = { writeAll: () => ids.length - 1 } as unknown as AttachedFabric;
  const { port1, port2 } = new MessageChannel();
  const spec: ViewChangeSpec = {
    columns, base: layout.base, selfId: 0, view: { vid: 0, members: ids }, plans, previousSize: ids.length,
    port: port1, posted: new SharedArrayBuffer(4),
  };
  let wedged = 0;
  const shards = { wedge: () => { wedged++; } } as unknown as ShardEngine;
  const host = new ViewChangeHost(arena, fabric, membershipKernelsOver(arena, 'wasm'), shards, spec, () => {});
  try {
    const at = (column: string) => layout.offsetOf(layout.rowOf(2), layout.column(column));
    Atomics.store(arena.u8, at('wedged'), 1);
    Atomics.store(arena.i32, at('committed') >> 2, 1);
    host.step(); // before the row checks: an assertion here, which ends the predicate worker
    const report = receiveMessageOnPort(port2)?.message as ViewChangeReport | undefined;
    assert.ok(report, 'the step reported to the main thread');
    assert.is(report.result, null, 'no outcome: the bad commit is not applied');
    assert.ok(report.notes?.some((n) => n.event === 'badRow' && n.member === 2), 'member 2\'s row found bad');
    assert.is(wedged, 1, 'this member wedged (it suspects member 2)');
    const suspected = layout.offsetOf(layout.rowOf(0), layout.column('suspected'), layout.rowOf(2));
    assert.is(arena.u8[suspected], 1, 'member 2 is suspected in this member\'s row');
  } finally {
    port1.close();
    port2.close();
  }
});

test.run();
