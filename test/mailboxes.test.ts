// The point-to-point mailboxes (ts/multicast/mailboxes.ts) between two members in this process: each has
// its own arena, and a fabric that copies each write into the other's arena at once (the same offsets, as
// the real fabric does). What a peer writes into its row is hostile: a counter or record that breaks the
// mailbox's rules fails that peer (reported once, nothing more of it read) and never stalls the reader or
// hands it bytes from outside the mailbox.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Arena } from '../ts/arena.js';
import { PeerFailedError } from '../ts/errors.js';
import { WriteStatus, type TableFabric } from '../ts/fabric/fabric.js';
import { MAILBOX_COLUMNS } from '../ts/multicast/layout.js';
import { MAX_QUEUED_PER_PEER, Mailboxes } from '../ts/multicast/mailboxes.js';
import { SstLayout } from '../ts/sst/layout.js';

const BOX = 4096;
const IDS = [1, 2];
const TAG = 7;

interface Side {
  id: number;
  arena: Arena;
  boxes: Mailboxes;
  got: string[];
  misbehaved: string[];
}

/** Members 1 and 2, each with its mailboxes; a write lands in the other's arena at once. */
function pair(): { a: Side; b: Side; layout: SstLayout } {
  const layout = new SstLayout({
    [MAILBOX_COLUMNS.written]: { type: 'i64', count: IDS.length },
    [MAILBOX_COLUMNS.read]: { type: 'i64', count: IDS.length },
    [MAILBOX_COLUMNS.box]: { type: 'bytes', bytes: IDS.length * BOX },
  }, IDS);
  const sides = IDS.map((id) => ({
    id, arena: Arena.create({ memberId: id, bytes: 1 << 20 }), got: [], misbehaved: [],
  }));
  const fabricOf = (from: Arena): TableFabric => {
    const write = (peer: number, offset: number, length: number): WriteStatus => {
      const to = sides.find((s) => s.id === peer)!.arena;
      to.u8.set(from.u8.subarray(offset, offset + length), offset);
      return WriteStatus.Ok;
    };
    return {
      write,
      writeBatch: (peer, ranges, count) => {
        for (let i = 0; i < count; i++) write(peer, ranges[2 * i]!, ranges[2 * i + 1]!);
        return WriteStatus.Ok;
      },
      writeAll: () => 0,
    };
  };
  const [a, b] = sides.map((s) => {
    const boxes = new Mailboxes(s.arena, fabricOf(s.arena), layout, s.id, BOX);
    const side = { ...s, boxes } as Side;
    boxes.onMisbehaved = (member, what) => side.misbehaved.push(`${member}: ${what}`);
    return side;
  }) as [Side, Side];
  return { a, b, layout };
}

function poll(side: Side): void {
  side.boxes.poll((from, tag, bytes) => { side.got.push(`${from}/${tag}/${bytes.length}/${bytes[0] ?? '-'}`); });
}

/** Offsets in member `reader`'s arena of what `writer` wrote for it: its written counter and its mailbox. */
function peerRegions(layout: SstLayout, writer: number, reader: number): { written: number; box: number } {
  const row = layout.rowOffset(layout.rowOf(writer));
  const readerRow = layout.rowOf(reader);
  return {
    written: row + layout.column(MAILBOX_COLUMNS.written).offset + readerRow * 8,
    box: row + layout.column(MAILBOX_COLUMNS.box).offset + readerRow * BOX,
  };
}

const setWritten = (side: Side, at: number, value: bigint) => { Atomics.store(side.arena.i64, at >> 3, value); };

test('records go across, wrap behind a skip marker, and the reader keeps up over many mailboxes', () => {
  const { a, b } = pair();
  let sent = 0;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 5; i++) {
      void a.boxes.send(2, TAG, new Uint8Array(100 + 37 * i).fill(sent++ & 0xff)); // 5 records of uneven sizes
    }
    a.boxes.flush();
    poll(b);
    b.boxes.flush(); // our read counter goes back
    poll(a);
  }
  assert.is(b.got.length, sent);
  assert.is(b.got[0], '1/7/100/0');
  assert.is(b.got[sent - 1], `1/7/${100 + 37 * 4}/${(sent - 1) & 0xff}`);
  assert.equal(b.misbehaved, []);
});

test('a written counter far ahead fails the peer at once: no reading loop over the zeroed mailbox', async () => {
  const { a, b, layout } = pair();
  const { written } = peerRegions(layout, 1, 2);
  setWritten(b, written, 1n << 50n); // 2^47 empty records, were they read: the code before never returned here
  poll(b);
  assert.equal(b.got, []);
  assert.is(b.misbehaved.length, 1);
  assert.match(b.misbehaved[0]!, /^1: its written counter is/);
  // Nothing more of it is read, and it is reported once; sends to it fail with the reason.
  poll(b);
  assert.is(b.misbehaved.length, 1);
  await b.boxes.send(1, TAG, new Uint8Array(4)).then(
    () => assert.unreachable('a send to a failed peer must reject'),
    (error: unknown) => {
      assert.instance(error, PeerFailedError);
      assert.match((error as Error).message, /BAD_MAILBOX/);
    });
  void a;
});

test('a counter that goes back, or below zero, fails the peer', () => {
  for (const value of [-8n, -1n]) {
    const { b, layout } = pair();
    setWritten(b, peerRegions(layout, 1, 2).written, value);
    poll(b);
    assert.equal(b.got, []);
    assert.is(b.misbehaved.length, 1, `written ${value}`);
  }
  const { a, b, layout } = pair();
  void a.boxes.send(2, TAG, new Uint8Array(40));
  a.boxes.flush();
  poll(b);
  assert.is(b.got.length, 1);
  setWritten(b, peerRegions(layout, 1, 2).written, 8n); // behind the 48 bytes already read
  poll(b);
  assert.is(b.misbehaved.length, 1);
});

test('a record too long, past the mailbox or past the counter fails the peer; none is delivered', () => {
  // [what, the stream position the reader is at first (honest records before), then the crafted record]
  const cases: Array<[string, number, (u32: Uint32Array, at: number) => number]> = [
    ['longer than maxPayload, inside the counter', 0, (u32, at) => { u32[at >> 2] = BOX / 2; return BOX; }],
    ['past the end of the mailbox', 2 * 2008, (u32, at) => { u32[at >> 2] = 80; return 88; }], // 80 bytes left there
    ['past the written counter', 0, (u32, at) => { u32[at >> 2] = 100; return 16; }],
    ['a skip marker past the counter', 2 * 2008, (u32, at) => { u32[at >> 2] = 0xffffffff; return 16; }],
    ['a huge length', 0, (u32, at) => { u32[at >> 2] = 0xfffffff0; return 8; }],
  ];
  for (const [name, from, craft] of cases) {
    const { a, b, layout } = pair();
    for (let i = 0; i < from / 2008; i++) void a.boxes.send(2, TAG, new Uint8Array(2000)); // 2,008 bytes each
    a.boxes.flush();
    poll(b);
    assert.is(b.got.length, from / 2008, name);
    b.got.length = 0;
    const { written, box } = peerRegions(layout, 1, 2);
    setWritten(b, written, BigInt(from + craft(b.arena.u32, box + from)));
    poll(b);
    assert.equal(b.got, [], name);
    assert.is(b.misbehaved.length, 1, name);
    assert.match(b.misbehaved[0]!, /overruns/, name);
  }
});

test('records before a bad one are delivered; the bad one and what follows are not', () => {
  const { a, b, layout } = pair();
  for (let i = 0; i < 3; i++) void a.boxes.send(2, TAG, new Uint8Array(16).fill(i));
  a.boxes.flush();
  const { written, box } = peerRegions(layout, 1, 2);
  b.arena.u32[(box + 24) >> 2] = 5000; // the second record's length, now longer than maxPayload
  poll(b);
  assert.equal(b.got, ['1/7/16/0']);
  assert.is(b.misbehaved.length, 1);
  setWritten(b, written, 1n << 40n); // and nothing of it is read again
  poll(b);
  assert.equal(b.got, ['1/7/16/0']);
  assert.is(b.misbehaved.length, 1);
});

test('a read counter past what was written, or going back, fails the peer: its sends reject, none queues', async () => {
  for (const bad of ['past', 'back'] as const) {
    const { a, b, layout } = pair();
    // What member 2 consumed of member 1's mailbox for it, as member 1's arena holds it.
    const readAt = layout.rowOffset(layout.rowOf(2)) + layout.column(MAILBOX_COLUMNS.read).offset + layout.rowOf(1) * 8;
    void a.boxes.send(2, TAG, new Uint8Array(40));
    a.boxes.flush();
    poll(b);
    b.boxes.flush(); // 48 bytes read go back
    assert.is(Number(Atomics.load(a.arena.i64, readAt >> 3)), 48, bad);
    await a.boxes.send(2, TAG, new Uint8Array(40)); // the counter as it should be: accepted
    Atomics.store(a.arena.i64, readAt >> 3, bad === 'past' ? 1000n : 8n);
    await a.boxes.send(2, TAG, new Uint8Array(40)).then(
      () => assert.unreachable(`${bad}: a send after a bad read counter must reject`),
      (error: unknown) => assert.match((error as Error).message, /BAD_MAILBOX/, bad));
    assert.is(a.misbehaved.length, 1, bad);
    assert.match(a.misbehaved[0]!, /^2: its read counter is/, bad);
  }
});

test('a peer that stops reading its mailbox is failed once MAX_QUEUED_PER_PEER sends wait for it', async () => {
  const { a, b } = pair();
  const results: string[] = [];
  const send = () => a.boxes.send(b.id, TAG, new Uint8Array(64)).then(() => 'written', (e) => (e as Error).name);
  // b never polls: its read counter stays at 0, so the mailbox fills and every later send waits.
  const sent = MAX_QUEUED_PER_PEER + BOX / 64 + 1;
  for (let i = 0; i < sent; i++) void send().then((r) => results.push(r));
  a.boxes.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(results.length, sent, 'every send settled: none waits for ever');
  const written = results.filter((r) => r === 'written').length;
  assert.ok(written > 0 && written < BOX / 64, `${written} fit in the mailbox`);
  assert.is(results.filter((r) => r === PeerFailedError.name).length, sent - written, 'the rest failed');
  assert.is(a.misbehaved.length, 1);
  assert.match(a.misbehaved[0]!, /^2: it stopped reading its mailbox with 65536 messages waiting/);
  assert.is(await send(), PeerFailedError.name, 'later sends fail at once: nothing more queues');
});

test('one misbehaving peer does not stop the others: the other member of a three-member table still reads', () => {
  const ids = [1, 2, 3];
  const layout = new SstLayout({
    [MAILBOX_COLUMNS.written]: { type: 'i64', count: ids.length },
    [MAILBOX_COLUMNS.read]: { type: 'i64', count: ids.length },
    [MAILBOX_COLUMNS.box]: { type: 'bytes', bytes: ids.length * BOX },
  }, ids);
  const arena = Arena.create({ memberId: 2, bytes: 1 << 20 });
  const fabric: TableFabric = { write: () => WriteStatus.Ok, writeBatch: () => WriteStatus.Ok, writeAll: () => 0 };
  const boxes = new Mailboxes(arena, fabric, layout, 2, BOX);
  const bad: number[] = [];
  boxes.onMisbehaved = (member) => bad.push(member);
  const rowOf = (writer: number) => layout.rowOffset(layout.rowOf(writer));
  const writtenAt = (writer: number) =>
    rowOf(writer) + layout.column(MAILBOX_COLUMNS.written).offset + layout.rowOf(2) * 8;
  const boxAt = (writer: number) => rowOf(writer) + layout.column(MAILBOX_COLUMNS.box).offset + layout.rowOf(2) * BOX;
  Atomics.store(arena.i64, writtenAt(1) >> 3, 1n << 40n); // member 1 misbehaves
  arena.u32[boxAt(3) >> 2] = 3; // member 3 wrote one record of 3 bytes
  arena.u8.set([9, 9, 9], boxAt(3) + 8);
  Atomics.store(arena.i64, writtenAt(3) >> 3, 16n);
  const got: string[] = [];
  boxes.poll((from, _tag, bytes) => got.push(`${from}:${bytes.join(',')}`));
  assert.equal(bad, [1]);
  assert.equal(got, ['3:9,9,9']);
});

test.run();
