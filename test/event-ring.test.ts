// The event ring (ts/sst/event-ring.ts) between a writer and a reader over one arena, in this thread: what
// the reader sees, when the bell rings, and that peek leaves what it read for the next drain.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import * as map from '../ts/generated/memory-map.js';
import { EventRingReader, EventRingWriter } from '../ts/sst/event-ring.js';

const BELL = (map.MAIN_BELL_OFFSET + map.MAIN_BELL_SEQ) >> 2;

function ring(): { arena: Arena; writer: EventRingWriter; reader: EventRingReader; seen: () => number[][] } {
  const arena = Arena.create({ memberId: 0, bytes: 1 << 20 });
  const writer = new EventRingWriter(arena), reader = new EventRingReader(arena);
  const seen = () => {
    const out: number[][] = [];
    reader.drain((kind, id, value) => out.push([kind, id, value]));
    return out;
  };
  return { arena, writer, reader, seen };
}

test('queued entries are seen only once published, and the bell rings once per publish', () => {
  const { arena, writer, seen } = ring();
  const bell = Atomics.load(arena.i32, BELL);
  assert.ok(writer.push(4, 7, -1));
  assert.ok(writer.push(2, 8, 3));
  assert.equal(seen(), [], 'nothing before the publish');
  writer.publish();
  assert.is(Atomics.load(arena.i32, BELL), bell + 1);
  assert.equal(seen(), [[4, 7, -1], [2, 8, 3]]);
  writer.publish();
  assert.is(Atomics.load(arena.i32, BELL), bell + 1, 'nothing new: no ring');
});

test('exposed entries are visible to peek and drain without a ring; the next publish rings for them', () => {
  const { arena, writer, reader, seen } = ring();
  const bell = Atomics.load(arena.i32, BELL);
  writer.push(4, 7, -1);
  writer.expose();
  assert.is(Atomics.load(arena.i32, BELL), bell, 'exposing does not ring');
  const peeked: number[] = [];
  reader.peek((_kind, id) => peeked.push(id));
  reader.peek((_kind, id) => peeked.push(id));
  assert.equal(peeked, [7, 7], 'peek leaves the entry in place');
  assert.is(writer.unpublished, 1, 'still owed a ring');
  writer.publish();
  assert.is(Atomics.load(arena.i32, BELL), bell + 1, 'the publish after an expose rings');
  assert.equal(seen(), [[4, 7, -1]]);
  assert.equal(seen(), [], 'drained once');
});

test.run();
