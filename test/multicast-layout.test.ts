import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import { GrantKind } from '../ts/fabric/fabric.js';
import { validateGroupConfig } from '../ts/group/config.js';
import { planView } from '../ts/membership/plans.js';
import { multicastColumns, subgroupColumns } from '../ts/multicast/layout.js';
import { SLOT_HEADER_BYTES, SlotKind, readSlot, slotBytes, writeSlot } from '../ts/multicast/slots.js';
import { SstLayout } from '../ts/sst/layout.js';

const members = [0, 1, 2, 3].map((id) => ({ id, address: `127.0.0.1:${7100 + id}` }));
const config = validateGroupConfig({
  members,
  subgroups: {
    tickets: { shards: 1, members: { min: 3, max: 4 }, maxSmcPayload: 1000, window: 4 },
    kv: { shards: 2, members: { min: 2, max: 2 }, senders: 1 },
  },
});

test('multicast layout: every subgroup gets its counters and W slots; the table lays out with grants', () => {
  const plans = planView(config, [0, 1, 2, 3]);
  const specs = multicastColumns(plans);
  const t = subgroupColumns(plans[0]!);
  assert.is(t.senders, 4);
  assert.is(t.slotBytes, slotBytes(1000));
  assert.is(t.slotBytes % 8, 0);
  assert.equal(specs[t.numReceived], { type: 'i64', count: 4 });
  assert.equal(specs[t.slots], { type: 'bytes', bytes: 4 * t.slotBytes });
  assert.is(subgroupColumns(plans[1]!).senders, 1, 'one sender per kv shard');
  const withMembers = multicastColumns(plans, 4, 4096);
  assert.equal(withMembers['suspected'], { type: 'u8', count: 4 }, 'a suspicion flag per member');
  assert.equal(withMembers['wedged'], { type: 'u8' });
  assert.equal(withMembers['p2p_box'], { type: 'bytes', bytes: 4 * 4096 }, 'a mailbox per member');
  const layout = new SstLayout(specs, [0, 1, 2, 3]);
  assert.is(layout.column(t.slots).kind, GrantKind.Data);
  assert.is(layout.column(t.index).kind, GrantKind.Control);
  // a sender pushes its slots before its index: one data write, then one control write
  const ranges = layout.pushRanges(2, [layout.column(t.slots), layout.column(t.index)]);
  assert.is(ranges.length, 2);
  assert.ok(ranges[0]![0] >= layout.rowOffset(2) + layout.controlBytes, 'the slots (data) go first');
});

test('slots: a message written is read back whole; nulls and large messages carry no payload', () => {
  const arena = Arena.create({ memberId: 0, bytes: 2 << 20 });
  const at = 1 << 20;
  assert.is(readSlot(arena, at).index, -1, 'a slot never written holds no message, not message 0');
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  writeSlot(arena, at, 7, SlotKind.DATA, payload);
  const s = readSlot(arena, at);
  assert.equal([s.index, s.bytes, s.kind], [7, 300, SlotKind.DATA]);
  assert.equal([...s.payload], [...payload]);
  writeSlot(arena, at, 8, SlotKind.NULL);
  assert.equal(
    [readSlot(arena, at).index, readSlot(arena, at).kind, readSlot(arena, at).payload.length], [8, SlotKind.NULL, 0]);
  writeSlot(arena, at, 9, SlotKind.LARGE, undefined, 5 << 20);
  assert.equal([readSlot(arena, at).bytes, readSlot(arena, at).kind], [5 << 20, SlotKind.LARGE]);
  assert.is(SLOT_HEADER_BYTES, 16);
});

test.run();
