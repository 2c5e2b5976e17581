import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../ts/errors.js';
import { validateGroupConfig, type GroupConfig } from '../ts/group/config.js';
import { MULTICAST_DEFAULTS, planView } from '../ts/membership/plans.js';
import { Group } from '../ts/group/group.js';
import { freePorts } from '../ts/harness/cluster.js';
import { pattern } from './support/pattern.js';

const members = [0, 1, 2, 3, 4].map((id) => ({ id, address: `127.0.0.1:${7000 + id}` }));

test('group config: counted shards fill from the view in order; explicit shards keep their members', () => {
  const config = validateGroupConfig({
    members,
    subgroups: {
      tickets: { shards: 1, members: { min: 3, max: 5 } },
      kv: { shards: 2, members: { min: 2, max: 2 }, senders: 1, mode: 'raw', window: 8 },
      log: { shards: [{ members: [4, 2], senders: [2] }] },
    },
  });
  const plan = planView(config, [0, 1, 2, 3, 4]);
  assert.equal(
    plan.map((p) => [p.name, p.index, p.mode]), [['tickets', 0, 'ordered'], ['kv', 1, 'raw'], ['log', 2, 'ordered']]);
  assert.equal(plan[0]!.shards, [{ members: [0, 1, 2, 3, 4], senders: [0, 1, 2, 3, 4] }]);
  assert.equal(plan[1]!.shards, [{ members: [0, 1], senders: [0] }, { members: [2, 3], senders: [2] }]);
  assert.equal(plan[2]!.shards, [{ members: [4, 2], senders: [2] }]);
  assert.is(plan[0]!.maxSmcPayload, MULTICAST_DEFAULTS.maxSmcPayload);
  assert.is(plan[1]!.window, 8);
  const tickets = validateGroupConfig({
    members, subgroups: { tickets: { type: 'TicketBook', shards: 1, members: { min: 3, max: 5 } } },
  });
  assert.is(tickets.subgroups.tickets!.type, 'TicketBook', 'a subgroup may name the class it replicates');
  assert.equal(planView(tickets, [3, 1, 4])[0]!.shards[0]!.members, [3, 1, 4], 'view order decides');
});

test('group config: a view too small for a shard minimum is refused with the numbers', () => {
  const config = validateGroupConfig({ members, subgroups: { tickets: { shards: 2, members: { min: 3, max: 3 } } } });
  assert.throws(() => planView(config, [0, 1, 2, 3, 4]), /needs 2 shard\(s\) of at least 3 members; the view has 5/);
});

test('group config: bad input gets ConfigErrors naming the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /must be an object/],
    [{ members, subgroups: {}, extra: 1 }, /unknown field 'extra'/],
    [{ members: [], subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } } }, /non-empty array/],
    [
      { members: [members[0], members[0]], subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } } },
      /appears twice/,
    ],
    [{ members, subgroups: {} }, /at least one subgroup/],
    [{ members, subgroups: { 'bad-name': { shards: 1, members: { min: 1, max: 1 } } } }, /identifier/],
    [{ members, subgroups: { a: { shards: 1 } } }, /give "members": \{ "min"/],
    [{ members, subgroups: { a: { shards: 1, members: { min: 3, max: 2 } } } }, /below members.min/],
    [{ members, subgroups: { a: { shards: 1, members: { min: 2, max: 3 }, senders: 3 } } }, /exceeds members.min/],
    [{ members, subgroups: { a: { shards: [{ members: [9] }] } } }, /member 9 is not in the group/],
    [{ members, subgroups: { a: { shards: [{ members: [1], senders: [2] }] } } }, /sender 2 is not a member/],
    [{ members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 }, mode: 'fast' } } }, /mode must be/],
    [{ members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 }, window: 0 } } }, /window must be an integer/],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 }, colour: 'red' } } },
      /unknown field 'colour'/,
    ],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 }, type: 'Ticket Book' } } },
      /subgroup 'a': type must name a class, e\.g\. "TicketBook", got "Ticket Book"/,
    ],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 }, type: ['TicketBook'] } } },
      /type must name a class/,
    ],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } }, suspicionTimeoutMs: '1s' },
      /suspicionTimeoutMs \(milliseconds\) must be an integer/,
    ],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } }, heartbeatIntervalMs: 0 },
      /heartbeatIntervalMs \(milliseconds\) must be an integer/,
    ],
    [
      {
        members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } },
        heartbeatIntervalMs: 50, suspicionTimeoutMs: 50,
      },
      /suspicionTimeoutMs \(50\) must exceed heartbeatIntervalMs \(50\)/,
    ],
    [
      { members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } }, rejoin: 'yes' },
      /rejoin must be true or false/,
    ],
  ];
  for (const [value, re] of bad) {
    try { validateGroupConfig(value as GroupConfig); assert.unreachable(JSON.stringify(value)); } catch (e) {
      assert.instance(e, ConfigError, JSON.stringify(value));
      assert.match((e as Error).message, re);
    }
  }
});

test('group config: heartbeatIntervalMs, suspicionTimeoutMs and rejoin are optional top-level keys', () => {
  const config = validateGroupConfig({
    members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } }, heartbeatIntervalMs: 20,
    suspicionTimeoutMs: 500, rejoin: false,
  });
  assert.is(config.heartbeatIntervalMs, 20);
  assert.is(config.suspicionTimeoutMs, 500);
  assert.is(config.rejoin, false);
  assert.is(
    validateGroupConfig({ members, subgroups: { a: { shards: 1, members: { min: 1, max: 1 } } } }).suspicionTimeoutMs,
    undefined);
});

test('Group.join refuses, before anything starts, what a member cannot join with', async () => {
  const config = { members: members.slice(0, 3), subgroups: { t: { shards: 1, members: { min: 3, max: 5 } } } };
  const refused = async (options: Parameters<typeof Group.join>[0]) =>
    (await Group.join(options).then(() => null, (e: Error) => e))?.message ?? 'joined';
  assert.match(await refused({ id: 7, config }), pattern([
    /member 7 is not in the configuration's members \(0, 1, 2\); pass one of those ids, /,
    /or contact: 'host:port' to join the running group as a new member/,
  ]));
  assert.match(
    await refused({ id: 7, config, contact: '127.0.0.1:1', listen: '0.0.0.0:0' }),
    /a new member must listen on the address the others reach it at, not 0\.0\.0\.0/);
  assert.match(
    await refused({ id: 7, config, contact: [] }), /contact must name at least one member's contact address/);
  assert.match(await refused({ id: 7, config, contact: 'nowhere' }), /contact/);
  const seed = {
    members: [{ id: 0, address: '127.0.0.1:7000' }], subgroups: { t: { shards: 1, members: { min: 3, max: 5 } } },
  };
  assert.match(
    await refused({ id: 0, config: seed }),
    /the first view forms by joins, so member 0 needs a contact address the others can know/);
  // The configuration's timing reaches the member when the options give none: a heartbeat of 200 ms
  // against the default 100 ms suspicion is refused; the options' suspicion wins over the configuration's.
  const [port] = await freePorts(1);
  const solo = {
    members: [{ id: 0, address: `127.0.0.1:${port}` }], subgroups: { t: { shards: 1, members: { min: 1, max: 1 } } },
  };
  assert.match(
    await refused({ id: 0, config: { ...solo, heartbeatIntervalMs: 2000 } }),
    /suspicionTimeoutMs \(1000\) must exceed heartbeatIntervalMs \(2000\)/);
  assert.match(
    await refused({
      id: 0, config: { ...solo, heartbeatIntervalMs: 200, suspicionTimeoutMs: 400 }, suspicionTimeoutMs: 150,
    }), /suspicionTimeoutMs \(150\) must exceed heartbeatIntervalMs \(200\)/);
});

test.run();
