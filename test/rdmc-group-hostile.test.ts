// A group member that writes a bad RDMC block (Group.join, three members in this process, the real fabric and
// rdmc workers): the member that receives it suspects the writer (BAD_RDMC), the next view leaves the writer
// out, and large (RDMC) messages go on among the others. To reach the attacker's fabric, the test keeps each
// RdmcNode a view engine makes (RdmcNode.onRuntime, wrapped).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Group } from '../ts/group/group.js';
import { freePorts } from '../ts/harness/cluster.js';
import { TicketBook } from '../ts/examples/ticket-book.js';
import { RdmcNode } from '../ts/rdmc/node.js';

test('group: a member writing an RDMC block count of 0 is suspected (BAD_RDMC) and removed; large messages go ' +
  'on', async () => {
  const made: RdmcNode[] = [];
  const onRuntime = RdmcNode.onRuntime;
  RdmcNode.onRuntime = (...args: Parameters<typeof onRuntime>) => {
    const node = onRuntime(...args);
    made.push(node);
    return node;
  };
  const ports = await freePorts(3);
  const members = [0, 1, 2].map((id) => ({ id, address: `127.0.0.1:${ports[id]}` }));
  const config = {
    members,
    subgroups: {
      tickets: { shards: 1, members: { min: 2, max: 3 }, maxSmcPayload: 1024, maxMessageBytes: 64 * 1024 },
    },
  };
  const groups = await Promise.all([0, 1, 2].map((id) => Group.join({ id, config, types: { tickets: TicketBook } })));
  try {
    const book = (g: Group, seat: string) => g.subgroup('tickets', TicketBook).ordered.book(seat, 'x'.repeat(5000));
    await book(groups[0]!, 'A1'); // a large message: RDMC carries it
    const failed: Array<[number, string]> = [];
    groups[0]!.on('memberFailed', (member, reason) => failed.push([member, reason]));
    const installed = Promise.all([0, 1].map((i) => new Promise((resolve) => groups[i]!.once('view', resolve))));

    const attacker = made.find((n) => n.id === 2)!;
    const g = attacker.layout.groups.find((x) => x.members.indexOf(0) > 0 && x.members.includes(2))!;
    attacker.fabric.writeImm(0, g.buffer, g.blockBytes, 0); // a block count of 0, into member 0's buffer

    const late = new Promise((resolve) => setTimeout(() => resolve('late'), 10_000).unref());
    assert.is.not(await Promise.race([installed, late]), 'late', 'a view without the writer installed');
    assert.equal(failed[0], [2, 'BAD_RDMC'], `member 0 suspected the writer: ${JSON.stringify(failed)}`);
    assert.equal(groups[0]!.view.members, [0, 1]);
    await book(groups[0]!, 'A2');
    await book(groups[1]!, 'A3');
  } finally {
    RdmcNode.onRuntime = onRuntime;
    await Promise.all(groups.map((g) => g.close().catch(() => undefined /* the removed member may have stopped */)));
  }
});

test.run();
