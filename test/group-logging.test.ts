// Logs of the protocol (Group.join({ logger })): three members in this process, each with a pino logger writing
// into memory; member 2 closes, and the survivors log its suspicion with the reason, the change's commit
// with its proposal and ragged trim, and the install of the next view with its phases — as JSON with the
// fields the docs promise; the fabric's lost connection to member 2 (warn) and, at debug, its connections. Before,
// status().fabric lists every other member as connected. A member without a logger logs nothing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Group } from '../ts/group/group.js';
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
      assert.ok(mine.indexOf(suspected) < mine.indexOf(committed) && mine.indexOf(committed) < mine.indexOf(install),
        'in protocol order');
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

test.run();
