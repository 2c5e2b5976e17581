// The libfabric backend of the native fabric (docs/rdma.md) end to end: real addon, real libfabric
// providers on 127.0.0.1, two fabrics per test in one process. The core of test/fabric.test.ts, per provider.
// Skipped (with a message) when the addon was built without libfabric.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, NativeUnavailableError } from '../ts/errors.js';
import { GrantKind, Lane, WriteStatus } from '../ts/fabric/fabric.js';
import { NativeFabric, libfabricNotBuiltError, nativeBackends } from '../ts/fabric/native.js';
import { Arena } from '../ts/arena.js';
import * as map from '../ts/generated/memory-map.js';
import { D, MiB, Member, connectPair, controlGrant, dataGrant, sleep, until } from './support/fabric-members.js';
import { defineLaneTests } from './support/lane-tests.js';

const { CompletionKind: K, FailReason: R } = map;
const built = nativeBackends().includes('libfabric');
const AUTH_KEY = new Uint8Array(32).map((_, i) => i * 11 + 3);

/** A provider is usable when a fabric can be created with it (a libfabric build may lack shm, say). */
function usable(provider: string): boolean {
  try {
    new Member(1, { backend: 'libfabric', provider }).close();
    return true;
  } catch (e) {
    if (e instanceof ConfigError) return false;
    throw e;
  }
}

test('selecting libfabric on an addon built without it: NativeUnavailableError naming libfabric-dev', () => {
  const err = libfabricNotBuiltError();
  assert.ok(err instanceof NativeUnavailableError);
  assert.match(err.message, 'libfabric-dev');
  process.env['SQUALL_FORCE_NO_LIBFABRIC'] = '1';
  try {
    assert.throws(() => new Member(1, { backend: 'libfabric', provider: 'tcp' }),
      (e: unknown) => e instanceof NativeUnavailableError &&
      /libfabric-dev/.test((e as Error).message));
  } finally {
    delete process.env['SQUALL_FORCE_NO_LIBFABRIC'];
  }
});

if (!built) {
  test('libfabric backend not built: the provider suites are skipped', () => {
    console.log(
      '  (skipped: this addon was built without libfabric; apt-get install libfabric-dev and npm run build:native)');
  });
} else {
  test('mode: tcp is RMA by default, messages with +msg, RMA required with +rma; shm (no connected endpoints) is ' +
    'RDM; the tcp backend is sockets', () => {
    const made = (provider: string) => new Member(1, { backend: 'libfabric', provider });
    const cases = [
      ['tcp', 'rma'], ['tcp+msg', 'msg'], ['tcp+rma', 'rma'],
      ...(usable('shm') ? [['shm', 'rdm'], ['shm+msg', 'rdm']] : [])
    ] as const;
    for (const [provider, mode] of cases) {
      const m = made(provider);
      try { assert.is(m.fabric.mode, mode, provider); assert.is(m.fabric.provider, provider); } finally { m.close(); }
    }
    const t = new Member(1);
    try { assert.is(t.fabric.mode, 'sockets'); } finally { t.close(); }
  });

  test('bad configuration: an unknown provider, shm+rma (shm has no one-sided writes ordered with sends), a provider ' +
    'with backend tcp → ConfigError', () => {
    if (usable('shm')) {
      assert.throws(() => new Member(1, { backend: 'libfabric', provider: 'shm+rma' }),
        (e: unknown) => e instanceof ConfigError &&
        /one-sided writes.*fi_info -p shm -v/.test((e as Error).message));
    }
    assert.throws(() => new Member(1, { backend: 'libfabric', provider: 'nosuchprovider' }),
      (e: unknown) => e instanceof ConfigError &&
      /fi_info -p nosuchprovider/.test((e as Error).message));
    assert.throws(() => new Member(1, { backend: 'libfabric', provider: 'Bad Name!' }),
      (e: unknown) => e instanceof ConfigError);
    const arena = Arena.create({ memberId: 1, bytes: 8 * MiB });
    assert.throws(() => NativeFabric.create(arena, { memberId: 1, layoutTag: 0, provider: 'tcp' }),
      (e: unknown) => e instanceof ConfigError);
    assert.throws(() => NativeFabric.create(arena, { memberId: 1, layoutTag: 0, backend: 'rdma' as 'tcp' }),
      (e: unknown) => e instanceof ConfigError);
  });

  // sockets is opt-in (SQUALL_LF_PROVIDERS=tcp,sockets,shm): it passes most runs but intermittently stalls a
  // connect or a write for > 5 s (not yet understood; docs/rdma.md).
  // 'tcp' is the tcp provider in RMA mode (writes into data grants one-sided), 'tcp+msg' in message mode,
  // 'shm' the shared-memory provider on reliable-datagram endpoints (RDM mode).
  const providers = (process.env['SQUALL_LF_PROVIDERS'] ?? 'tcp,tcp+msg,shm').split(',').filter(Boolean);
  for (const provider of providers) {
    if (!usable(provider)) {
      test(`provider ${provider}: not offered by this libfabric, skipped`, () => {});
      continue;
    }
    defineLaneTests(provider, { backend: 'libfabric', provider });
    defineLaneTests(`${provider}+authKey`, { backend: 'libfabric', provider, authKey: AUTH_KEY });

    test(`[${provider}] authKey: members with the key connect and write both ways on both lanes` +
      `${provider === 'tcp' ? ' (data one-sided: the keys crossed after the proofs)' : ''}`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider, authKey: AUTH_KEY });
      const b = new Member(2, { backend: 'libfabric', provider, authKey: AUTH_KEY });
      try {
        await connectPair(a, b, [dataGrant(D, 65536), controlGrant(D + 65536, 64)]);
        a.arena.u8.fill(0xa1, D, D + 8192);
        assert.is(a.fabric.writeImm(2, D, 8192, 11), WriteStatus.Ok);
        Atomics.store(b.arena.i64, (D + 65536) >> 3, 22n);
        assert.is(b.fabric.write(1, D + 65536, 8, 1), WriteStatus.Ok);
        await until(
          [a, b], () => b.has(K.WRITE_IMM, 1, 11) && Atomics.load(a.arena.i64, (D + 65536) >> 3) === 22n,
          'the writes both ways');
        assert.ok(b.arena.u8.subarray(D, D + 8192).every((x) => x === 0xa1));
        if (provider === 'tcp') assert.ok(a.fabric.stats().rmaWrites > 0, 'the data write went one-sided');
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] authKey: a wrong key, or a key on one side only, is refused (AUTH_FAILED) ` +
      'and nobody connects', async () => {
      const cases: Array<[Uint8Array | undefined, Uint8Array | undefined, 'acceptor' | 'initiator']> = [
        [AUTH_KEY, new Uint8Array(32).fill(7), 'initiator'], // the initiator finds the acceptor's proof wrong
        [AUTH_KEY, undefined, 'acceptor'],
        [undefined, AUTH_KEY, 'acceptor'],
      ];
      for (const [acceptorKey, initiatorKey, refuser] of cases) {
        const a = new Member(1, { backend: 'libfabric', provider, authKey: acceptorKey });
        const b = new Member(2, { backend: 'libfabric', provider, authKey: initiatorKey, connectTimeoutMs: 3000 });
        try {
          a.listen();
          for (const g of [dataGrant(D, 4096)]) { a.fabric.grant(2, g); b.fabric.grant(1, g); }
          b.fabric.connect(1, '127.0.0.1', a.port);
          if (refuser === 'initiator') {
            await until([a, b], () => b.has(K.PEER_FAILED, 1), 'the initiator to refuse', 10_000);
            assert.ok(
              b.has(K.PEER_FAILED, 1, R.AUTH_FAILED), `AUTH_FAILED at the initiator (${JSON.stringify(b.seen[0])})`);
          } else {
            await until([a, b], () => a.has(K.CONNECTION_REJECTED, 0xffff), 'the acceptor to refuse', 10_000);
            assert.ok(
              a.has(K.CONNECTION_REJECTED, 0xffff, R.AUTH_FAILED),
              `AUTH_FAILED at the acceptor (${JSON.stringify(a.seen[0])})`);
          }
          await sleep(100);
          assert.not.ok(a.has(K.PEER_CONNECTED, 2) || b.has(K.PEER_CONNECTED, 1), 'nobody connected');
          assert.not.ok(a.has(K.PEER_FAILED, 2), 'the acceptor never took the connection as member 2');
        } finally { a.close(); b.close(); }
      }
    });

    test(`[${provider}] connect, a write lands at the same offset, nothing around it`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        assert.is(a.fabric.backend, 'libfabric');
        await connectPair(a, b, [dataGrant(D, 4096)]);
        const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 13 + 1) & 0xff);
        a.arena.u8.set(bytes, D + 200);
        assert.equal(a.fabric.write(2, D + 200, 100), WriteStatus.Ok);
        await until([a, b], () => b.arena.u8[D + 299] === bytes[99], 'the write to land');
        assert.equal([...b.arena.u8.subarray(D + 200, D + 300)], [...bytes]);
        assert.is(b.arena.u8[D + 199], 0);
        assert.is(b.arena.u8[D + 300], 0);
        assert.ok(b.fabric.stats().framesIn >= 1);
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] writeImm: completion with imm, offset, length in the ring its grant names`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        await connectPair(a, b, [controlGrant(D, 4096, 0), dataGrant(D + 65536, 65536, 1)]);
        assert.is(a.fabric.writeImm(2, D + 65536 + 128, 256, 0xdeadbeef), WriteStatus.Ok);
        assert.is(a.fabric.writeImm(2, D + 8, 16, 7), WriteStatus.Ok);
        await until(
          [a, b], () => b.seen[1].length === 1 && b.seen[0].some((e) => e.kind === K.WRITE_IMM), 'both completions');
        assert.equal(
          b.seen[1][0], { kind: K.WRITE_IMM, peer: 1, imm: 0xdeadbeef, offset: D + 65536 + 128, length: 256 });
        assert.ok(b.has(K.WRITE_IMM, 1, 7, 0));
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] writes to one peer are applied in order (a counter never goes backwards)`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        await connectPair(a, b, [controlGrant(D, 64, 0)]);
        let last = 0n;
        let backwards = 0;
        for (let v = 1n; v <= 20000n; v++) {
          a.arena.i64[D >> 3] = v;
          assert.is(a.fabric.write(2, D, 8), WriteStatus.Ok);
          if (v % 500n === 0n) {
            const seen = b.arena.i64[D >> 3]!; if (seen < last) backwards++; last = seen; await sleep(0);
          }
        }
        a.fabric.writeImm(2, D, 8, 1);
        await until([a, b], () => b.has(K.WRITE_IMM, 1, 1), 'the final completion');
        assert.is(b.arena.i64[D >> 3], 20000n);
        assert.is(backwards, 0);
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] a 4 MiB write lands whole; its completion comes after all of it`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        await connectPair(a, b, [dataGrant(D, 4 * MiB, 1)]);
        for (let i = 0; i < 4 * MiB; i++) a.arena.u8[D + i] = (i * 31 + 7) & 0xff;
        assert.is(a.fabric.writeImm(2, D, 4 * MiB, 42), WriteStatus.Ok);
        await until([a, b], () => b.has(K.WRITE_IMM, 1, 42, 1), 'the large write', 15000);
        assert.ok(
          Buffer.compare(a.arena.u8.subarray(D, D + 4 * MiB), b.arena.u8.subarray(D, D + 4 * MiB)) === 0,
          'identical bytes');
        assert.equal(
          b.seen[1][0], { kind: K.WRITE_IMM, peer: 1, imm: 42, offset: D, length: 4 * MiB },
          'the completion names the whole write');
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] a split writeImm right after an adjacent plain write: ` +
      'its completion names exactly its own range', async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        await connectPair(a, b, [dataGrant(D, 1 * MiB, 1)]);
        const chunk = 65536; // the backend's frame payload: the plain write is one whole frame before the split one
        assert.is(a.fabric.write(2, D, chunk), WriteStatus.Ok);
        assert.is(a.fabric.writeImm(2, D + chunk, 2 * chunk + 1, 5), WriteStatus.Ok);       // 3 frames
        assert.is(a.fabric.writeImm(2, D + 3 * chunk + 1, 7, 6), WriteStatus.Ok);           // 1 frame, adjacent
        assert.is(a.fabric.writeImm(2, D + 4 * chunk, 2 * chunk - 1, 7), WriteStatus.Ok);   // 2 frames
        await until([a, b], () => b.seen[1].length === 3, 'three completions', 15000);
        assert.equal(b.seen[1], [
          { kind: K.WRITE_IMM, peer: 1, imm: 5, offset: D + chunk, length: 2 * chunk + 1 },
          { kind: K.WRITE_IMM, peer: 1, imm: 6, offset: D + 3 * chunk + 1, length: 7 },
          { kind: K.WRITE_IMM, peer: 1, imm: 7, offset: D + 4 * chunk, length: 2 * chunk - 1 },
        ]);
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] writeBatch: small ranges share one send; a large one between them keeps its place`,
      async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      const counter = D + 512 * 1024;
      try {
        await connectPair(a, b, [dataGrant(D, 256 * 1024), controlGrant(counter, 64)]);
        await sleep(50);  // rma mode: past the grant keys
        a.arena.u8.fill(7, D, D + 2048);
        Atomics.store(a.arena.i64, counter >> 3, 42n);
        const before = a.fabric.stats();
        assert.is(a.fabric.writeBatch(2, new Float64Array([D, 1024, D + 1024, 1024, counter, 8]), 3), WriteStatus.Ok);
        const after = a.fabric.stats();
        if (a.fabric.mode === 'rma') {
          // The data grant's writes go one-sided (one fi_writedata each), the control write as a message.
          assert.equal([after.rmaWrites - before.rmaWrites, after.framesOut - before.framesOut], [2, 1]);
        } else {
          assert.is(after.framesOut - before.framesOut, 3);
          assert.is(after.sendCalls - before.sendCalls, 1, 'three frames, one send');
        }
        await until([a, b], () => Atomics.load(b.arena.i64, counter >> 3) === 42n, 'the counter');
        assert.ok(b.arena.u8.subarray(D, D + 2048).every((x) => x === 7), 'the data before it');
        // 64 KiB between them: one-sided in rma mode, a message of its own otherwise; the counter still lands last.
        a.arena.u8.fill(9, D + 65536, D + 131072);
        Atomics.store(a.arena.i64, counter >> 3, 43n);
        assert.is(a.fabric.writeBatch(2, new Float64Array([D, 1024, D + 65536, 65536, counter, 8]), 3), WriteStatus.Ok);
        await until([a, b], () => Atomics.load(b.arena.i64, counter >> 3) === 43n, 'the second counter');
        assert.ok(
          b.arena.u8.subarray(D + 65536, D + 131072).every((x) => x === 9), 'the block landed before the counter');
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] a write outside the grant fails the sender's connection, arena untouched`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        b.listen();
        a.fabric.grant(2, dataGrant(D, 1 * MiB)); // a lets b write a whole MiB, b grants a only 4 KiB
        b.fabric.grant(1, dataGrant(D, 4096));
        a.fabric.connect(2, '127.0.0.1', b.port);
        await until([a, b], () => a.has(K.PEER_CONNECTED, 2) && b.has(K.PEER_CONNECTED, 1), 'connected');
        a.arena.u8.fill(9, D + 8192, D + 8292);
        a.fabric.write(2, D + 8192, 100);
        await until(
          [a, b], () => b.has(K.PEER_FAILED, 1, R.OUT_OF_GRANT) && a.has(K.PEER_FAILED, 2), 'both sides to fail');
        assert.is(b.arena.u8[D + 8192], 0);
      } finally { a.close(); b.close(); }
    });

    test(`[${provider}] failure on close; disconnect; connect timeout; layout mismatch; unknown peer`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      const c = new Member(3, { backend: 'libfabric', provider, connectTimeoutMs: 300 });
      const d = new Member(4, { backend: 'libfabric', provider, layoutTag: 1 });
      try {
        await connectPair(a, b, [dataGrant(D, 4096)]);
        b.close();
        await until([a], () => a.has(K.PEER_FAILED, 2, R.CLOSED), 'PEER_FAILED(CLOSED) after the peer closed');
        assert.is(a.fabric.write(2, D, 8), WriteStatus.Failed);
        // connect timeout: nobody listens there
        c.fabric.grant(5, dataGrant(D, 4096));
        const port = a.listen();
        c.fabric.connect(5, '127.0.0.1', port + 1 === 65536 ? port - 1 : port + 1);
        await until([c], () => c.has(K.PEER_FAILED, 5, R.CONNECT_TIMEOUT), 'CONNECT_TIMEOUT');
        // layout mismatch: d (tag 1) → a (tag 0x5eed)
        a.fabric.grant(4, dataGrant(D, 4096));
        d.fabric.grant(1, dataGrant(D, 4096));
        d.fabric.connect(1, '127.0.0.1', port);
        await until(
          [a, d], () => a.seen[0].some((e) => e.kind === K.CONNECTION_REJECTED && e.imm === R.LAYOUT_MISMATCH),
          'a refuses d');
        await until([d], () => d.has(K.PEER_FAILED, 1), 'd fails');
        // unknown peer: c → a, a never granted 3
        c.fabric.grant(1, dataGrant(D, 4096));
        c.fabric.connect(1, '127.0.0.1', port);
        await until(
          [a, c], () => a.seen[0].some((e) => e.kind === K.CONNECTION_REJECTED && e.imm === R.UNKNOWN_PEER) &&
            c.has(K.PEER_FAILED, 1), 'a rejects c');
      } finally { a.close(); b.close(); c.close(); d.close(); }
    });

    test(`[${provider}] disconnect: PEER_FAILED(LOCAL_CLOSE) here, PEER_FAILED(CLOSED) there`, async () => {
      const a = new Member(1, { backend: 'libfabric', provider });
      const b = new Member(2, { backend: 'libfabric', provider });
      try {
        await connectPair(a, b, [dataGrant(D, 4096)]);
        a.fabric.disconnect(2);
        await until(
          [a, b], () => a.has(K.PEER_FAILED, 2, R.LOCAL_CLOSE) && b.has(K.PEER_FAILED, 1, R.CLOSED), 'both failed');
      } finally { a.close(); b.close(); }
    });
  }
}

if (built && usable('tcp+rma')) {
  const provider = 'tcp+rma';
  /** Runs `body` on members 1 and 2 in RMA mode, connected with `grants` (b's to a) and past the exchange
   *  of grant keys that follows the HELLOs; closes both. */
  async function withRmaPair(
    grants: Parameters<typeof connectPair>[2], body: (a: Member, b: Member) => Promise<void>, arenaBytes = 8 * MiB
  ): Promise<void> {
    const a = new Member(1, { backend: 'libfabric', provider, arenaBytes });
    const b = new Member(2, { backend: 'libfabric', provider, arenaBytes });
    try {
      await connectPair(a, b, grants);
      await sleep(50);
      await body(a, b);
    } finally { a.close(); b.close(); }
  }

  /** Fills [at, at+length) of a's arena with a pattern, writes it to b (with imm unless null), and returns
   *  how many frames and one-sided writes a posted for it. */
  function sendPattern(a: Member, at: number, length: number, imm: number | null): {
    frames: number; rmaWrites: number
  } {
    for (let i = 0; i < length; i++) a.arena.u8[at + i] = (i * 17 + 3) & 0xff;
    const before = a.fabric.stats();
    assert.is(imm === null ? a.fabric.write(2, at, length) : a.fabric.writeImm(2, at, length, imm), WriteStatus.Ok);
    const after = a.fabric.stats();
    return { frames: after.framesOut - before.framesOut, rmaWrites: after.rmaWrites - before.rmaWrites };
  }
  const sameBytes = (a: Member, b: Member, at: number, length: number) =>
    Buffer.compare(a.arena.u8.subarray(at, at + length), b.arena.u8.subarray(at, at + length)) === 0;

  test('[tcp+rma] a 4 MiB writeImm of whole pages is one fi_writedata: no frame at all; completion and bytes as sent',
    async () => {
    await withRmaPair([dataGrant(D, 4 * MiB, 1)], async (a, b) => {
      assert.equal(sendPattern(a, D, 4 * MiB, 0xfedcba98), { frames: 0, rmaWrites: 1 });
      await until([a, b], () => b.has(K.WRITE_IMM, 1, 0xfedcba98, 1), 'the completion', 15000);
      assert.equal(b.seen[1][0], { kind: K.WRITE_IMM, peer: 1, imm: 0xfedcba98, offset: D, length: 4 * MiB });
      assert.ok(sameBytes(a, b, D, 4 * MiB), 'identical bytes');
    });
  });

  test('[tcp+rma] a range keeps its path: any write into a data grant goes one-sided (100 bytes, 8 KiB), any into a ' +
    'control grant as a message (8 KiB)', async () => {
    await withRmaPair([dataGrant(D, 64 * 1024, 0), controlGrant(D + 65536, 8192, 0)], async (a, b) => {
      assert.equal(
        sendPattern(a, D + 4, 100, null), { frames: 0, rmaWrites: 1 }, 'a small plain write: one fi_writedata');
      assert.equal(sendPattern(a, D + 8192, 8192, null), { frames: 0, rmaWrites: 1 });
      assert.equal(
        sendPattern(a, D + 65536, 8192, null), { frames: 1, rmaWrites: 0 },
        'control: a message, applied with 8-byte stores');
      await until(
        [a, b], () => sameBytes(a, b, D + 4, 100) && sameBytes(a, b, D + 8192, 8192) &&
          sameBytes(a, b, D + 65536, 8192), 'all three');
      // 2,000 rewrites of one range, each with new bytes: the last always wins (no older copy lands after a newer).
      for (let v = 1; v <= 2000; v++) {
        a.arena.u8.fill(v & 0xff, D + 1024, D + 1024 + 512);
        assert.is(a.fabric.write(2, D + 1024, 512), WriteStatus.Ok);
      }
      await until(
        [a, b], () => b.arena.u8[D + 1024 + 511] === (2000 & 0xff) && b.arena.u8[D + 1024] === (2000 & 0xff),
        'the last rewrite');
      await sleep(20);
      assert.ok(b.arena.u8.subarray(D + 1024, D + 1536).every((x) => x === (2000 & 0xff)), 'still the last bytes');
    });
  });

  test('[tcp+rma] ranges that are not whole pages, or a writeImm over 8 MiB: fi_write and one PLACED note; ' +
    'completion names the whole range', async () => {
    await withRmaPair([dataGrant(D, 33 * MiB, 1)], async (a, b) => {
      const cases = [
        { at: D + 100, length: 65536, rmaWrites: 1 },         // offset inside a page
        { at: D + MiB, length: 65536 + 8, rmaWrites: 1 },     // length not whole pages (an RDMC message's last block)
        // whole pages, but more than one fi_writedata can describe
        { at: D + 4 * MiB, length: 12 * MiB, rmaWrites: 1 },
        { at: D + 16 * MiB, length: 16 * MiB + 4096, rmaWrites: 2 },  // over 16 MiB: two fi_write chunks
      ];
      for (const [i, c] of cases.entries()) {
        assert.equal(sendPattern(a, c.at, c.length, 100 + i), { frames: 1, rmaWrites: c.rmaWrites }, `case ${i}`);
        await until([a, b], () => b.has(K.WRITE_IMM, 1, 100 + i, 1), `completion ${i}`, 15000);
        assert.equal(b.seen[1][i], { kind: K.WRITE_IMM, peer: 1, imm: 100 + i, offset: c.at, length: c.length });
        assert.ok(sameBytes(a, b, c.at, c.length), `identical bytes, case ${i}`);
      }
    }, 40 * MiB);
  });

  test('[tcp+rma] a 20 MiB plain write: two fi_writedata (16 + 4 MiB), no frame; then a writeImm completes after it',
    async () => {
    await withRmaPair([dataGrant(D, 24 * MiB, 1)], async (a, b) => {
      assert.equal(sendPattern(a, D, 20 * MiB, null), { frames: 0, rmaWrites: 2 });
      assert.equal(sendPattern(a, D + 20 * MiB, 4096, 5), { frames: 0, rmaWrites: 1 });
      await until([a, b], () => b.has(K.WRITE_IMM, 1, 5, 1), 'the completion', 15000);
      assert.ok(
        sameBytes(a, b, D, 20 * MiB + 4096),
        'the plain write landed before the later write-with-immediate was reported');
      assert.is(b.seen[1].length, 1, 'a plain write reports no completion');
    }, 32 * MiB);
  });

  // On either lane: the data lane carries the slots and their index, the control lane a mailbox's records and
  // its counter (ts/multicast/mailboxes.ts, Mailboxes.lane) — both a one-sided block, then a message naming it.
  for (const [name, lane] of [['data', Lane.Data], ['control', Lane.Control]] as const) {
    test(`[tcp+rma] data before control on the ${name} lane: a counter written after a 64 KiB RMA block ` +
      'never runs ahead of it', async () => {
      const block = D + 65536;
      await withRmaPair([controlGrant(D, 64, 0), dataGrant(block, 65536, 0)], async (a, b) => {
        let ahead = 0;
        const rmaBefore = a.fabric.stats().rmaWrites;
        for (let v = 1; v <= 250; v++) {
          a.arena.u8.fill(v, block, block + 65536);
          assert.is(a.fabric.write(2, block, 65536, lane), WriteStatus.Ok);   // one-sided
          a.arena.i64[D >> 3] = BigInt(v);
          assert.is(a.fabric.write(2, D, 8, lane), WriteStatus.Ok);           // a message, after it on the lane
          const counter = Number(b.arena.i64[D >> 3]!);
          if (b.arena.u8[block]! < counter || b.arena.u8[block + 65535]! < counter) ahead++;
          if (v % 10 === 0) await sleep(0);
        }
        await until([a, b], () => b.arena.i64[D >> 3] === 250n, 'the last counter');
        assert.is(b.arena.u8[block + 65535], 250);
        assert.is(ahead, 0);
        assert.is(a.fabric.stats().rmaWrites - rmaBefore, 250, 'every block went one-sided');
      });
    });
  }

  test('[tcp+rma] grants are registered one by one: a large write outside them goes as a message and is refused ' +
    'before it lands; a grant made later gets its key', async () => {
    await withRmaPair([dataGrant(D, 64 * 1024, 1)], async (a, b) => {
      // A grant b makes after the connection is up: its key follows, and writes into it go one-sided.
      const bytesBefore = a.fabric.stats().bytesIn;
      b.fabric.grant(1, dataGrant(D + MiB, 64 * 1024, 1));
      // The key arrives as a message of its own (counted in bytesIn as it is received, then applied by the same
      // poller call): wait for it — a fixed 50 ms sleep lost the race on a busy machine.
      await until([a, b], () => a.fabric.stats().bytesIn > bytesBefore, 'the later grant\'s key');
      await sleep(20);
      assert.equal(sendPattern(a, D + MiB, 65536, 7), { frames: 0, rmaWrites: 1 }, 'into the later grant: one-sided');
      await until([a, b], () => b.has(K.WRITE_IMM, 1, 7, 1), 'its completion');
      assert.ok(sameBytes(a, b, D + MiB, 65536));
      // 64 KiB from D + 32 KiB reaches past the first grant: no region covers it, so it travels as messages.
      assert.equal(sendPattern(a, D + 32 * 1024, 65536, null), { frames: 1, rmaWrites: 0 }, 'outside: a message');
      await until(
        [a, b], () => b.has(K.PEER_FAILED, 1, R.OUT_OF_GRANT) && a.has(K.PEER_FAILED, 2), 'both sides to fail');
      assert.is(b.arena.u8[D + 64 * 1024], 0, 'nothing landed past the grant');
    });
  });

  test('[tcp+rma] an RMA member and a message-mode member do not mix: the connection fails', async () => {
    const a = new Member(1, { backend: 'libfabric', provider });
    const b = new Member(2, { backend: 'libfabric', provider: 'tcp+msg' });
    try {
      b.listen();
      a.fabric.grant(2, dataGrant(D, 4096));
      b.fabric.grant(1, dataGrant(D, 4096));
      a.fabric.connect(2, '127.0.0.1', b.port);
      // a's GRANT_KEY comes before its HELLO: b refuses the connection before it knows who is calling.
      await until(
        [a, b], () => a.has(K.PEER_FAILED, 2) &&
          b.seen[0].some((e) => e.kind === K.CONNECTION_REJECTED && e.imm === R.BAD_TYPE), 'both sides to fail');
    } finally { a.close(); b.close(); }
  });
}

test.run();
