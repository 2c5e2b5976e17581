// Logs of the protocol (Group.join({ logger })): three members in this process, each with a pino logger writing
// into memory; member 2 closes, and the survivors log its suspicion with the reason, the wedge, the leader's
// proposal, the change's commit with its proposal and ragged trim, and the install of the next view with its
// phases — as JSON with the fields the docs promise; the fabric's lost connection to member 2 (warn) and, at
// debug, its connections. Before, status().fabric lists every other member as connected. A member without a
// logger logs nothing. A joiner enters a group with state: the source logs the state it sent, the joiner the
// state it received, and the install says who joined.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Group } from '../ts/group/group.js';
import { rejoinRetryEvent, type GroupEvents } from '../ts/group/events.js';
import { logGroup } from '../ts/group/logging.js';
import { StateTransferError } from '../ts/errors.js';
import { freePorts } from '../ts/harness/cluster.js';
import { TicketBook } from '../ts/examples/ticket-book.js';

type Line = Record<string, unknown> & { level: number; msg: string; event: string; memberId: number };

function memoryLogger(lines: Line[], level = 'info') {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return pino({ level }, sink);
}

test('the survivors log the suspicion, the commit and the install of the next view, at warn and info', async () => {
  const ports = await freePorts(3);
  const members = [0, 1, 2].map((id) => ({ id, address: `127.0.0.1:${ports[id]}` }));
  const config = { members, subgroups: { tickets: { shards: 1, members: { min: 2, max: 3 } } } };
  const lines: Line[][] = [[], [], []];
  const groups = await Promise.all([0, 1, 2].map((id) => Group.join({
    id, config, types: { tickets: TicketBook },
    ...(id < 2 ? { logger: memoryLogger(lines[id]!, id === 0 ? 'debug' : 'info') } : {}),
  })));
  try {
    await groups[0]!.subgroup('tickets', TicketBook).ordered.book('A1', 'alice');
    const connections = groups[0]!.status().fabric.connections;
    assert.equal(connections.map((c) => [c.peer, c.state]), [[1, 'connected'], [2, 'connected']]);
    assert.ok(connections.every((c) => c.bytesIn > 0 && c.bytesOut > 0), 'each connection moved bytes');
    const installed = Promise.all([0, 1].map((i) => new Promise((resolve) => groups[i]!.once('view', resolve))));
    await groups[2]!.close();
    await installed;
    await new Promise((resolve) => setImmediate(resolve));
    for (const id of [0, 1]) {
      const mine = lines[id]!;
      const suspected = mine.find((l) => l.event === 'suspected');
      assert.ok(suspected, `member ${id} logged a suspicion: ${JSON.stringify(mine)}`);
      assert.is(suspected.level, 40, 'a suspicion is a warning');
      assert.is(suspected.memberId, id, 'the line names the member that logs it');
      assert.is(suspected['member'], 2, 'and the member it suspects');
      assert.is(suspected['vid'], 0);
      assert.is(typeof suspected['reason'], 'string');
      assert.match(suspected.msg, /suspects member 2 \(.+\): view 0 wedges/);
      const committed = mine.find((l) => l.event === 'committed');
      assert.ok(committed, `member ${id} logged the commit`);
      assert.is(committed.level, 30);
      assert.equal(committed['removed'], [2]);
      assert.is(typeof committed['proposal'], 'number');
      assert.ok(Array.isArray(committed['trims']), 'the ragged trim is in the line');
      const install = mine.find((l) => l.event === 'installed');
      assert.ok(install, `member ${id} logged the install`);
      assert.equal(install['members'], [0, 1]);
      assert.is(install['vid'], 1);
      assert.ok(Object.keys(install['phasesMs'] as object).length > 0, 'the install phases are in the line');
      const wedged = mine.find((l) => l.event === 'wedged');
      assert.ok(wedged, `member ${id} logged the wedge`);
      assert.is(wedged.level, 30);
      assert.is(wedged['vid'], 0);
      assert.is(wedged['cause'], 'suspected', 'it wedged for the suspicion');
      assert.ok((wedged['members'] as number[]).includes(2), 'of member 2');
      const order = [suspected, wedged, committed, install].map((l) => mine.indexOf(l));
      if (id === 0) { // the leader (the lowest-ranked member nobody suspects) proposes
        const proposed = mine.find((l) => l.event === 'proposed');
        assert.ok(proposed, 'the leader logged its proposal');
        assert.is(proposed.level, 30);
        assert.is(proposed['proposer'], 0);
        assert.equal(proposed['removes'], [2]);
        assert.equal(proposed['adds'], []);
        assert.is(proposed['proposal'], committed['proposal'], 'the proposal that committed');
        order.splice(2, 0, mine.indexOf(proposed));
      } else {
        assert.not.ok(mine.some((l) => l.event === 'proposed'), 'a follower logs the proposal it acks at debug');
      }
      assert.equal(order, [...order].sort((a, b) => a - b), `in protocol order: ${mine.map((l) => l.event)}`);
      const lost = mine.filter((l) => l.event === 'connection' && l['state'] === 'lost');
      assert.equal(lost.map((l) => [l.level, l['vid'], l['peer']]), [[40, 0, 2]], 'the lost connection, once, at warn');
      assert.is(typeof lost[0]!['reason'], 'string');
      const connected = mine.filter((l) => l.event === 'connection' && l['state'] === 'connected');
      const expected = id === 0 ? [[20, 0, 1], [20, 0, 2], [20, 1, 1]] : []; // debug: member 0's logger only
      assert.equal(connected.map((l) => [l.level, l['vid'], l['peer']]).sort(), expected, 'connections, at debug');
    }
    assert.equal(lines[2], [], 'a member without a logger logs nothing');
  } finally {
    await Promise.all(groups.map((g) => g.close().catch(() => {}))); // over: a failed close tells it nothing
  }
});

test('a joiner with state: the source logs the state it sent, the joiner what it received, the install who '
  + 'joined', async () => {
  const ports = await freePorts(2);
  const members = [0, 1].map((id) => ({ id, address: `127.0.0.1:${ports[id]}` }));
  const config = { members, subgroups: { tickets: { shards: 1, members: { min: 2, max: 3 } } } };
  const lines: Line[][] = [[], [], []];
  const groups = await Promise.all([0, 1].map((id) => Group.join({
    id, config, types: { tickets: TicketBook }, logger: memoryLogger(lines[id]!) })));
  let joiner: Group | null = null;
  try {
    const tickets = groups[0]!.subgroup('tickets', TicketBook);
    for (let i = 0; i < 10; i++) await tickets.ordered.book(`A${i}`, 'alice');
    joiner = await Group.join({ id: 2, config, types: { tickets: TicketBook }, contact: groups[0]!.contactAddress,
      listen: '127.0.0.1:0', logger: memoryLogger(lines[2]!) });
    await joiner.subgroup('tickets', TicketBook).ordered.book('B1', 'bob'); // the state arrived and it runs
    await new Promise((resolve) => setImmediate(resolve));
    const sent = lines[0]!.find((l) => l.event === 'stateSent');
    assert.ok(sent, `the source (member 0) logged the state it sent: ${JSON.stringify(lines[0])}`);
    assert.is(sent.level, 30);
    assert.is(sent['to'], 2);
    assert.is(sent['subgroup'], 'tickets');
    assert.is(sent['kind'], 'snapshot');
    assert.ok((sent['bytes'] as number) > 0, 'with its bytes');
    assert.is(typeof sent['ms'], 'number');
    const received = lines[2]!.find((l) => l.event === 'stateReceived');
    assert.ok(received, `the joiner logged the state it received: ${JSON.stringify(lines[2])}`);
    assert.is(received['from'], 0);
    assert.is(received['bytes'], sent['bytes'], 'the bytes the source sent');
    const wedged = lines[0]!.find((l) => l.event === 'wedged');
    assert.ok(wedged && wedged['cause'] === 'joining', 'the leader wedged to take the joiner');
    assert.equal(wedged['members'], [2]);
    const proposed = lines[0]!.find((l) => l.event === 'proposed');
    assert.ok(proposed, 'the leader proposed');
    assert.equal(proposed['adds'], [2]);
    for (const id of [0, 1]) {
      const install = lines[id]!.find((l) => l.event === 'installed');
      assert.ok(install, `member ${id} logged the install`);
      assert.equal(install['joined'], [2]);
      assert.match(install.msg, /joined: 2/, 'its message says who joined');
    }
  } finally {
    const all = [...groups, ...(joiner ? [joiner] : [])];
    await Promise.all(all.map((g) => g.close().catch(() => {}))); // over: a failed close tells it nothing
  }
});

test('a failed rejoin attempt is a warning that says why and when the next one comes', () => {
  const lines: Line[] = [];
  const group = new EventEmitter<GroupEvents>();
  const detach = logGroup(group, 3, memoryLogger(lines));
  const cause = new StateTransferError("the state of subgroup 'kv' did not arrive before view 3");
  group.emit('protocol', rejoinRetryEvent(cause, 2, 100));
  detach();
  assert.equal(lines.map((l) => [l.level, l.event, l.memberId, l['attempt'], l['code'], l['retryInMs']]),
    [[40, 'rejoinRetry', 3, 2, 'ERR_SQUALL_STATE_TRANSFER', 100]]);
  assert.match(lines[0]!.msg, /rejoin attempt 2 failed: the state of subgroup 'kv' did not arrive.*again in 100 ms/);
});

test.run();
