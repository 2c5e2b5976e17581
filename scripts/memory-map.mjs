#!/usr/bin/env node
// The one memory map of a member's arena, and its generator.
//
// The arena is a shared WebAssembly.Memory (initial = maximum, never grown). Its fixed part, below, is
// the same in every member and every build; the dynamic part above DYNAMIC_BASE holds the tables and
// buffers whose layout is a pure function of (view, configuration), computed in ts/.
//
// This file is the only place offsets of the fixed part are written down, and the native fabric's status codes
// (what its calls return). `npm run build:layout` turns it into:
//   assembly/generated/memory-map.ts   (AssemblyScript kernels)
//   ts/generated/memory-map.ts         (TypeScript control plane and workers)
//   ts/generated/status.ts             (the native fabric's status codes, for ts/fabric/native.ts)
//   native/generated/memory_map.h      (C++ fabric)
//   native/generated/status.h          (the status codes the C++ fabric returns)
// Each side checks MEMORY_MAP_HASH (which covers the status codes too) against the others when it loads, so a
// stale build cannot run.
// `node scripts/memory-map.mjs --check` fails when a generated file is out of date (run by npm test).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KiB = 1024;

/** Limits that size the fixed regions. Each says why it is what it is. */
const constants = [
  ['ARENA_MAGIC', 0x52415153, 'ASCII "SQAR" little-endian: the first word of the header of a live arena'],
  ['ARENA_VERSION', 1, 'bumped whenever the fixed layout changes meaning'],
  ['MAX_MEMBERS', 1024, 'DESIGN.md §9: views are configurable up to 1024 members; scratch arrays are sized for it'],
  ['COMPLETION_RINGS', 2, 'ring 0: connection events and control immediates (predicate worker); ring 1: RDMC block ' +
    'arrivals (rdmc worker)'],
  ['COMPLETION_RING_ENTRIES', 4096, 'power of two; the poller stops reading sockets while a ring is full, so nothing ' +
    'is dropped'],
  ['COMPLETION_ENTRY_BYTES', 32, 'see the completion entry fields below'],
  ['EVENT_RING_CAPACITY', 4096, 'power of two; fired-predicate events from the predicate worker to the main thread'],
  ['EVENT_ENTRY_BYTES', 16, 'see the event entry fields below'],
  ['RING_HEADER_BYTES', 128, 'producer index and consumer index on separate 64-byte cache lines'],
  ['CACHE_LINE_BYTES', 64, 'x86-64 and arm64 cache line; shared words that different threads write sit on separate ' +
    'lines'],
  ['WASM_PAGE_BYTES', 65536, 'WebAssembly page size'],
  ['MAX_SHARDS', 256, 'multicast shards one member serves in one view (SHARD_WORDS holds a cache line each)'],
  ['DEFAULT_ARENA_BYTES', 64 * KiB * KiB, 'enough for tables of 64 members with small-message slots; configurable'],
];

const C = Object.fromEntries(constants.map(([name, value]) => [name, value]));
const completionRingBytes = C.RING_HEADER_BYTES + C.COMPLETION_RING_ENTRIES * C.COMPLETION_ENTRY_BYTES;

/**
 * The fixed regions, in address order. `fields` are byte offsets inside a region; every shared word says
 * who writes it and who reads it.
 */
const regions = [
  {
    name: 'WASM_RESERVED', bytes: 64 * KiB,
    doc: 'static data and stack of the kernels module; the kernels are built with no data segments, so instantiating ' +
      'them in several workers never rewrites this',
  },
  {
    name: 'HEADER', bytes: 64,
    doc: 'written once by the main thread when the arena is created; read by every side to check it was given a live ' +
      'arena of this layout',
    fields: [
      ['MAGIC', 0, 'u32', 'ARENA_MAGIC'],
      ['VERSION', 4, 'u32', 'ARENA_VERSION'],
      ['HASH', 8, 'u32', 'MEMORY_MAP_HASH of the build that created the arena'],
      ['MEMBER_ID', 12, 'u32', 'id of the member that owns this arena'],
      ['ARENA_BYTES', 16, 'u64', 'total size of the arena in bytes'],
    ],
  },
  {
    name: 'DOORBELLS', bytes: C.COMPLETION_RINGS * C.CACHE_LINE_BYTES, stride: C.CACHE_LINE_BYTES,
    doc: 'one doorbell per channel (= completion ring: 0 the SST and connection news, read by the predicate worker; ' +
      '1 RDMC, read by the rdmc worker): a futex word its worker sleeps on in the native wait. The poller rings a ' +
      'channel after it applies writes into ranges granted on that channel or queues completions in its ring; ' +
      'wake(channel) rings it for local changes',
    fields: [
      ['EPOCH', 0, 'u32', 'incremented (wrapping) on every batch of changes; waiters sleep while it equals the value ' +
        'they saw'],
      ['WAITERS', 4, 'u32', 'threads inside the native wait; the poller skips the wake syscall when it is 0'],
      ['COMMANDS', 8, 'u32', 'incremented by the main thread after it posts a command to the predicate worker, which ' +
        'reads its message port only when this moved'],
    ],
  },
  {
    name: 'MAIN_BELL', bytes: 64,
    doc: 'word the main thread Atomics.waitAsync()s on; the predicate worker increments it and Atomics.notify()s ' +
      'after it queues events',
    fields: [
      ['SEQ', 0, 'i32', 'incremented by the predicate worker on every batch of events'],
      ['WANTS_CHANGES', 4, 'i32', 'set by the main thread while TypeScript predicates are registered: the worker ' +
        'then reports every table change'],
    ],
  },
  {
    name: 'COMPLETION_RINGS', bytes: C.COMPLETION_RINGS * completionRingBytes,
    doc: 'SPSC rings from the native poller (producer) to a worker (consumer): header = HEAD (u32, entries produced, ' +
      'written by the poller) at +0 and TAIL (u32, entries consumed, written by the consumer) at +64; then ' +
      'COMPLETION_RING_ENTRIES entries',
    stride: completionRingBytes,
    fields: [
      ['HEAD', 0, 'u32', 'entries produced, wrapping; written only by the poller (release)'],
      ['TAIL', 64, 'u32', 'entries consumed, wrapping; written only by the consumer (release)'],
      ['ENTRIES', 128, 'bytes', 'the entries'],
    ],
  },
  {
    name: 'EVENT_RING', bytes: C.RING_HEADER_BYTES + C.EVENT_RING_CAPACITY * C.EVENT_ENTRY_BYTES,
    doc: 'SPSC ring of fired predicates from the predicate worker (producer) to the main thread (consumer); same ' +
      'header as a completion ring',
    fields: [
      ['HEAD', 0, 'u32', 'entries produced, wrapping; written only by the predicate worker'],
      ['TAIL', 64, 'u32', 'entries consumed, wrapping; written only by the main thread'],
      ['ENTRIES', 128, 'bytes', 'the entries'],
    ],
  },
  {
    name: 'LIVE_ROWS', bytes: C.MAX_MEMBERS,
    doc: 'u8 per table row: 1 if the row counts in reductions (the member is live and in the view), else 0; written ' +
      'by the predicate worker',
  },
  {
    name: 'HEARTBEAT_SEEN', bytes: C.MAX_MEMBERS * 8,
    doc: 'u64 per row: the heartbeat value the staleness scan last saw; predicate worker only',
  },
  {
    name: 'HEARTBEAT_CHANGED_MS', bytes: C.MAX_MEMBERS * 8,
    doc: 'f64 per row: monotonic milliseconds when that row\'s heartbeat last advanced; predicate worker only',
  },
  {
    name: 'STALE_ROWS', bytes: C.MAX_MEMBERS,
    doc: 'u8 per row, output of the staleness scan: 1 if the row\'s heartbeat stalled past the suspicion timeout',
  },
  {
    name: 'VOTER_ROWS', bytes: C.MAX_MEMBERS,
    doc: 'u8 per row: 1 if the row\'s member counts toward its view\'s majority (not one that joined into this view: ' +
      'votersAmong), for the quorum gate; written by the predicate worker when it starts',
  },
  {
    name: 'KERNEL_SCRATCH', bytes: 8 * KiB,
    doc: 'scratch for kernels that return more than one value; predicate worker only',
  },
  {
    name: 'SHARD_ROWS', bytes: 32 * KiB,
    doc: 'per multicast shard of this arena: u32 row lists (senders by rank, then the other members), the rows the ' +
      'shard kernels read, and the receipt kernel\'s u32 slot base and u8 bad-sender flag per sender rank; written ' +
      'when a view\'s shards are built (ts/multicast/control.ts), then read only but for the flags. Two shards ' +
      'of MAX_MEMBERS senders fit, or MAX_SHARDS of 8',
  },
  {
    name: 'SHARD_WORDS', bytes: C.MAX_SHARDS * C.CACHE_LINE_BYTES, stride: C.CACHE_LINE_BYTES,
    doc: 'one cache line per multicast shard of this arena (in SHARD_ROWS order): the words the main thread and the ' +
      'predicate worker share to step one shard between them (ts/multicast/shard-words.ts). This member\'s slots ' +
      'and `index` have two writers, the main thread (its messages) and, with the worker engine, the predicate ' +
      'worker (nulls); LOCK says which one is writing and pushing them',
    fields: [
      ['LOCK', 0, 'i32', '0 free; 1 the main thread, 2 the predicate worker is committing slots and pushing them ' +
        '(compare-and-swap from 0, store 0 to release)'],
      ['WEDGE', 4, 'i32', '0 running; 1 asked to stop stepping the shard (a view change: by the main thread, ' +
        'or by the worker when the view-change protocol it steps wedges); ' +
        '2 the worker stopped, pushed its last counters and will not touch the shard again (then Atomics.notify)'],
      ['NEXT_INDEX', 8, 'i64', 'messages (and nulls) committed to this member\'s slots; written under LOCK'],
      ['PUSHED_INDEX', 16, 'i64', 'of those, the ones pushed with `index`; written under LOCK'],
      ['STABLE', 24, 'i64', 'the stable frontier (least seqNum of the shard) as the worker last computed it; the ' +
        'main thread delivers up to it'],
      ['SENDING', 32, 'i32', 'set by the main thread when it sends and at each step while sends wait; taken ' +
        '(exchanged for 0) by the worker each round: an idle sender\'s nulls go out only in a round that took 0'],
      ['RETRY', 36, 'i32', 'set by the worker when it found LOCK held; the main thread takes it when it releases ' +
        'LOCK and rings the worker, so its round is not left waiting for the next write to land'],
      ['WORKER_NULLS', 40, 'i64', 'nulls the worker sent (for tests and benchmarks); written by the worker only'],
      ['OPEN', 48, 'i32', '0 until the view passed its start barrier and the main thread first stepped the shard, ' +
        'then 1 (set by the main thread): the worker steps and pushes nothing before, as a push to a peer not yet ' +
        'connected is lost — slots lost that way would be named by a later `index`'],
      ['PERSISTED', 56, 'i64', 'the persistence frontier (least persistedNum of the shard, exact: shardMinVersion), ' +
        'written by the thread that steps the shard\'s control — the worker with the worker engine while the view ' +
        'runs, else the main thread'],
    ],
  },
  {
    name: 'MEMBERSHIP_SCRATCH', bytes: 3 * C.MAX_MEMBERS + 8 * C.MAX_MEMBERS,
    doc: 'row masks and outputs of the view-change kernels (assembly/membership.ts); written and read only by the ' +
      'thread that steps the view-change protocol of the arena\'s view (ts/membership/table.ts; one protocol per ' +
      'arena), inside one step',
    fields: [
      ['ALL_ROWS', 0, 'bytes', 'u8 per row: 1 for every row of the view\'s table (the protocol reads every row)'],
      ['SOME_ROWS', C.MAX_MEMBERS, 'bytes', 'u8 per row: 1 for the rows one kernel call counts (e.g. the next ' +
        'view\'s members), rewritten before each such call'],
      ['REMOVAL_FLAGS', 2 * C.MAX_MEMBERS, 'bytes', 'u8 per member column j: removalFlags\' output (bit 0 suspected ' +
        'in some row, bit 1 its row is leaving, bit 2 some row\'s proposal removes it)'],
      ['TRIM', 3 * C.MAX_MEMBERS, 'bytes', 'f64 per sender rank: raggedTrimMin\'s output'],
    ],
  },
  {
    name: 'MEMBERSHIP_READER_SCRATCH', bytes: 3 * C.MAX_MEMBERS + 8 * C.MAX_MEMBERS,
    doc: 'the same as MEMBERSHIP_SCRATCH (and its fields\' offsets), for the main thread when the predicate worker ' +
      'steps the view-change protocol (the worker engine): the main thread still evaluates the read-only ' +
      'predicates (the start barrier, the suspects, the leader), and must not share the worker\'s scratch',
  },
];

/** Record layouts inside the rings. */
const records = [
  {
    name: 'COMPLETION', bytes: C.COMPLETION_ENTRY_BYTES,
    doc: 'one completion, written by the poller before it publishes HEAD',
    fields: [
      ['KIND', 0, 'u16', 'a CompletionKind'],
      ['PEER', 2, 'u16', 'member id of the peer (0xffff when not yet known)'],
      ['IMM', 4, 'u32', 'the immediate of a write-with-immediate, or a FailReason'],
      ['OFFSET', 8, 'u64', 'arena offset of the write that carried the immediate'],
      ['LENGTH', 16, 'u64', 'length of that write in bytes'],
      ['TIME_NS', 24, 'u64', 'CLOCK_MONOTONIC nanoseconds when the poller queued the completion'],
    ],
  },
  {
    name: 'EVENT', bytes: C.EVENT_ENTRY_BYTES,
    doc: 'one event for the main thread, written by the predicate worker before it publishes HEAD',
    fields: [
      ['KIND', 0, 'u32', 'an EventKind'],
      ['ID', 4, 'u32', 'predicate id, or member id for connection events'],
      ['VALUE', 8, 'f64', 'the reduction value that made the predicate fire, or a FailReason'],
    ],
  },
];

/** Small enumerations shared by all three languages. */
const enums = [
  ['CompletionKind', 'kinds of completion entries', [
    ['WRITE_IMM', 1, 'a write-with-immediate was applied'],
    ['PEER_CONNECTED', 2, 'the handshake with a peer finished'],
    ['PEER_FAILED', 3, 'an established or expected peer connection broke or misbehaved; IMM holds the FailReason'],
    ['CONNECTION_REJECTED', 4, 'an incoming connection was closed before it identified itself correctly; IMM holds ' +
      'the FailReason'],
  ]],
  ['FailReason', 'why a connection was closed', [
    ['CLOSED', 1, 'the peer closed the connection or it reset'],
    ['BAD_MAGIC', 2, 'a frame did not start with the frame magic'],
    ['BAD_VERSION', 3, 'a frame carried another protocol version'],
    ['BAD_TYPE', 4, 'unknown frame type, or a frame type not allowed at this point'],
    ['OUT_OF_GRANT', 5, 'a write outside the ranges granted to that peer'],
    ['OVERSIZE', 6, 'a frame longer than the largest frame allowed'],
    ['TRUNCATED', 7, 'the connection ended in the middle of a frame'],
    ['UNKNOWN_PEER', 8, 'the handshake named a member this one does not expect'],
    ['DUPLICATE_PEER', 9, 'the handshake named a member already connected'],
    ['LAYOUT_MISMATCH', 10, 'the handshake carried another layout tag: the members were configured differently'],
    ['CONNECT_TIMEOUT', 11, 'could not connect to the peer before the connect timeout'],
    ['MISALIGNED', 12, 'a write into a control range was not 8-byte aligned in offset and length'],
    ['HANDSHAKE_TIMEOUT', 13, 'an incoming connection did not identify itself in time'],
    ['IO_ERROR', 14, 'a socket error other than an orderly close'],
    ['LOCAL_CLOSE', 15, 'this member closed the connection'],
    ['BAD_LANE', 16, 'a HELLO named no lane (data 0, control 1), or another lane than it was asked on'],
    ['AUTH_FAILED', 17, 'the handshake did not prove the fabric auth key: a wrong or missing MAC, or a key on one ' +
      'side only'],
  ]],
  ['EventKind', 'kinds of events from the predicate worker to the main thread', [
    ['PREDICATE_FIRED', 1, 'ID is the predicate id, VALUE the reduction value'],
    ['PEER_CONNECTED', 2, 'ID is the member id'],
    ['PEER_FAILED', 3, 'ID is the member id, VALUE the FailReason'],
    ['SUSPECTED', 4, 'ID is the member id whose heartbeat stalled (VALUE = ms since it last advanced)'],
    ['TABLE_CHANGED', 5, 'the table changed and the main thread asked to hear of it (MAIN_BELL.WANTS_CHANGES)'],
    ['CONNECTION_REJECTED', 6, 'ID is 0xffff, VALUE the FailReason'],
    ['CUT_OFF', 7, 'ID is a member this one would have suspected while it heard from no majority of its view ' +
      '(the quorum gate): nothing was pushed, this member is the one cut off (VALUE = ms since its heartbeat ' +
      'last advanced)'],
  ]],
];

/**
 * What the addon's calls return (native/api.cc) when they do not return a result ≥ 0: the C++ backends return
 * these (native/generated/status.h), and the TS wrapper (ts/fabric/native.ts) turns each into a coded error or a
 * WriteStatus (ts/generated/status.ts). They are in MEMORY_MAP_HASH, so an addon built with other codes is
 * refused at load. `scoped`: a C++ enum class (an unscoped enum's names are used bare in native/).
 */
const statuses = [
  ['Status', 'what a call of the native fabric returns when it does not return a result', { scoped: false }, [
    ['OK', 0, 'done'],
    ['NOT_CONNECTED', -1, 'no connection to that peer (yet), or the peer is unknown'],
    ['FAILED', -2, 'the peer failed or the fabric is closed'],
    ['BAD_RANGE', -3, 'the range lies outside the arena'],
    ['BAD_ADDRESS', -4, 'host is not a numeric IPv4/IPv6 address'],
    ['ALREADY', -5, 'listen: already listening; connect: already connecting or connected; onArrival: already set'],
    ['SYSTEM', -6, 'a system call failed (socket, bind, epoll, thread); listen returns -(ERRNO_STATUS_BASE + errno)'],
    ['BAD_ARGUMENT', -7, 'an argument had the wrong type or range (the TS wrapper checks first)'],
    ['TOO_MANY', -8, 'more peers than MAX_MEMBERS'],
    ['NOT_BUILT', -9, 'create: a backend this addon was built without (libfabric: no libfabric-dev)'],
    ['NO_PROVIDER', -10, 'create: libfabric has no such provider offering what the backend needs; with the fi ' +
      'errno libfabric gave, -(ERRNO_STATUS_BASE + errno) instead'],
    ['NO_LIBRARY', -11, 'create: built with libfabric, but libfabric.so.1 cannot be opened now'],
  ]],
  ['ArenaCheck', 'why create() refused an arena (native/arena.h checkArena)', { scoped: true }, [
    ['OK', 0, 'a live arena of this layout and size'],
    ['TOO_SMALL', -12, 'smaller than the fixed regions'],
    ['BAD_MAGIC', -13, 'no live arena header'],
    ['BAD_HASH', -14, 'made by a build with another memory map'],
    ['BAD_SIZE', -15, 'the header\'s size is not the size of the view the fabric was handed'],
  ]],
];
/** listen() and create() report an errno as -(ERRNO_STATUS_BASE + errno): below every Status. */
const ERRNO_STATUS_BASE = 1000;

// ---------------------------------------------------------------------------------------------------------

function layout() {
  const out = [];
  let at = 0;
  for (const r of regions) {
    const align = r.name === 'WASM_RESERVED' ? 1 : 64;
    at = Math.ceil(at / align) * align;
    out.push({ ...r, offset: at });
    at += r.bytes;
  }
  const dynamicBase = Math.ceil(at / 65536) * 65536;
  return { placed: out, fixedEnd: at, dynamicBase };
}

function hashOf() {
  const text = JSON.stringify({ constants, regions, records, enums, statuses, ERRNO_STATUS_BASE });
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

function hex(n) { return '0x' + n.toString(16); }

/** The generated files keep to 120 columns (the tidy check's limit): `text` as comment lines, words wrapped. */
const MAX_COLUMNS = 120;
function wrap(text, head) {
  const lines = [];
  let line = head;
  for (const word of text.split(' ')) {
    if (line.length > head.length && (line + ' ' + word).length > MAX_COLUMNS) {
      lines.push(line);
      line = head;
    }
    line += ' ' + word;
  }
  return [...lines, line];
}
/** A JSDoc comment: one line when it fits, else opened and closed on lines of their own. */
function jsdoc(text, indent = '') {
  const one = `${indent}/** ${text} */`;
  return one.length <= MAX_COLUMNS ? [one] : [`${indent}/**`, ...wrap(text, `${indent} *`), `${indent} */`];
}
const cpp = (text, indent = '') => wrap(text, `${indent}//`);

function generate() {
  const { placed, fixedEnd, dynamicBase } = layout();
  const hash = hashOf();
  const lines = []; // [name, value, doc]
  for (const [n, v, d] of constants) lines.push([n, v, d]);
  lines.push(['MEMORY_MAP_HASH', hash, 'sha256 of this map, truncated to 32 bits; every side compares it at load']);
  for (const r of placed) {
    lines.push([`${r.name}_OFFSET`, r.offset, r.doc]);
    lines.push([`${r.name}_BYTES`, r.bytes, '']);
    if (r.stride) lines.push([`${r.name}_STRIDE`, r.stride, 'bytes from one ring to the next']);
    for (const [f, off, type, doc] of r.fields ?? []) lines.push([`${r.name}_${f}`, off, `${type}: ${doc}`]);
  }
  for (const rec of records) {
    lines.push([`${rec.name}_BYTES`, rec.bytes, rec.doc]);
    for (const [f, off, type, doc] of rec.fields) lines.push([`${rec.name}_${f}`, off, `${type}: ${doc}`]);
  }
  lines.push(['FIXED_END', fixedEnd, 'first byte after the fixed regions']);
  lines.push(['DYNAMIC_BASE', dynamicBase, 'start of the tables and buffers laid out per view (64 KiB aligned)']);

  const source = (what) => `scripts/memory-map.mjs from its ${what}. Do not edit; run npm run build:layout.`;
  const banner = (what) => [...cpp(`GENERATED by ${source(what)}`), ''];

  const as = banner('region list');
  for (const [n, v, d] of lines) {
    if (d) as.push(...jsdoc(d));
    as.push(`export const ${n}: u32 = ${v > 0xffff ? hex(v) : v};`);
  }
  for (const [name, doc, members] of enums) {
    as.push('', ...jsdoc(doc));
    for (const [m, v, d] of members) as.push(...jsdoc(d), `export const ${name}_${m}: u32 = ${v};`);
  }

  /** A TS object of constants, its type and its names by value. */
  const tsEnum = (out, name, doc, members) => {
    out.push('', ...jsdoc(doc), `export const ${name} = {`);
    for (const [m, v, d] of members) out.push(...jsdoc(d, '  '), `  ${m}: ${v},`);
    out.push('} as const;', `export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
    out.push(`export const ${name}Name: Readonly<Record<number, string>> = {`);
    for (const [m, v] of members) out.push(`  ${v < 0 ? `'${v}'` : v}: '${m}',`);
    out.push('};');
  };
  const ts = banner('region list');
  for (const [n, v, d] of lines) {
    if (d) ts.push(...jsdoc(d));
    ts.push(`export const ${n} = ${v > 0xffff ? hex(v) : v};`);
  }
  for (const [name, doc, members] of enums) tsEnum(ts, name, doc, members);

  /** A C++ enum: each member's doc after it when it fits the line, else above it. */
  const ccEnum = (out, head, members) => {
    out.push(`${head} {`);
    for (const [m, v, d] of members) {
      const line = `  ${m} = ${v},  // ${d}`;
      if (line.length <= MAX_COLUMNS) out.push(line);
      else out.push(...cpp(d, '  '), `  ${m} = ${v},`);
    }
    out.push('};');
  };
  const cc = [...banner('region list'), '#pragma once', '#include <cstdint>', '', 'namespace squall::map {', ''];
  for (const [n, v, d] of lines) {
    if (d) cc.push(...cpp(d));
    cc.push(`constexpr uint32_t ${n} = ${hex(v)}u;`);
  }
  for (const [name, doc, members] of enums) {
    cc.push('', ...cpp(doc));
    ccEnum(cc, `enum class ${name} : uint32_t`, members);
  }
  cc.push('', '}  // namespace squall::map', '');

  const statusDoc = 'listen() and create() report an errno as -(ERRNO_STATUS_BASE + errno), below every Status';
  const covered = 'These codes are part of MEMORY_MAP_HASH (memory-map.ts / memory_map.h): an addon built with ' +
    'other codes is refused at load.';
  const tsStatus = [...banner('status list'), ...cpp(covered)];
  for (const [name, doc, , members] of statuses) tsEnum(tsStatus, name, doc, members);
  tsStatus.push('', ...jsdoc(statusDoc), `export const ERRNO_STATUS_BASE = ${ERRNO_STATUS_BASE};`);

  const ccStatus = [...banner('status list'), ...cpp(covered), '', '#pragma once', '', 'namespace squall {'];
  for (const [name, doc, { scoped }, members] of statuses) {
    ccStatus.push('', ...cpp(doc));
    ccEnum(ccStatus, scoped ? `enum class ${name} : int` : `enum ${name} : int`, members);
  }
  ccStatus.push('', ...cpp(statusDoc), `constexpr int ERRNO_STATUS_BASE = ${ERRNO_STATUS_BASE};`);
  ccStatus.push('', '}  // namespace squall', '');

  return {
    'assembly/generated/memory-map.ts': as.join('\n') + '\n',
    'ts/generated/memory-map.ts': ts.join('\n') + '\n',
    'ts/generated/status.ts': tsStatus.join('\n') + '\n',
    'native/generated/memory_map.h': cc.join('\n'),
    'native/generated/status.h': ccStatus.join('\n'),
  };
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = generate();
if (process.argv.includes('--check')) {
  const stale = Object.entries(files).filter(([p, text]) => {
    try { return readFileSync(join(root, p), 'utf8') !== text; } catch { return true; }
  });
  if (stale.length) {
    console.error(`memory map: ${stale.map(([p]) => p).join(', ')} out of date; run npm run build:layout`);
    process.exit(1);
  }
} else {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}
