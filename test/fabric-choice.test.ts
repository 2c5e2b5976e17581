// How a member's native backend is chosen (ts/fabric/choice.ts): an explicit option wins, then
// SQUALL_FABRIC / SQUALL_FABRIC_PROVIDER, then tcp; the CLI's --fabric/--provider; and the errors a user
// meets when the choice cannot work.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, NativeUnavailableError } from '../ts/errors.js';
import { describeFabric, fabricChoiceFromFlags, resolveFabricChoice } from '../ts/fabric/choice.js';
import { checkFabricUsable, fabricLabel, nativeBackends } from '../ts/fabric/native.js';
import { MemberRuntime } from '../ts/member/runtime.js';

const isConfigError = (pattern: RegExp) => (e: unknown) => e instanceof ConfigError &&
  pattern.test((e as Error).message);

test('no option, no environment: tcp', () => {
  assert.equal(resolveFabricChoice(undefined, {}), { backend: 'tcp' });
});

test('SQUALL_FABRIC=libfabric, with and without SQUALL_FABRIC_PROVIDER', () => {
  assert.equal(resolveFabricChoice(undefined, { SQUALL_FABRIC: 'libfabric' }), { backend: 'libfabric' });
  assert.equal(
    resolveFabricChoice(undefined, { SQUALL_FABRIC: 'libfabric', SQUALL_FABRIC_PROVIDER: 'verbs' }),
    { backend: 'libfabric', provider: 'verbs' });
  assert.equal(resolveFabricChoice(undefined, { SQUALL_FABRIC: 'tcp' }), { backend: 'tcp' });
});

test('an explicit option wins over the environment', () => {
  assert.equal(resolveFabricChoice({ backend: 'tcp' }, { SQUALL_FABRIC: 'libfabric' }), { backend: 'tcp' });
  assert.equal(
    resolveFabricChoice({ backend: 'libfabric', provider: 'sockets' }, {}),
    { backend: 'libfabric', provider: 'sockets' });
});

test('bad environment or options: ConfigError saying what to set', () => {
  assert.throws(() => resolveFabricChoice(undefined, { SQUALL_FABRIC: 'rdma' }),
    isConfigError(/SQUALL_FABRIC must be 'tcp' or 'libfabric'/));
  assert.throws(() => resolveFabricChoice(undefined, { SQUALL_FABRIC_PROVIDER: 'tcp' }),
    isConfigError(/set SQUALL_FABRIC=libfabric/));
  assert.throws(() => resolveFabricChoice(undefined, { SQUALL_FABRIC: 'tcp', SQUALL_FABRIC_PROVIDER: 'tcp' }),
    isConfigError(/unset SQUALL_FABRIC_PROVIDER/));
  assert.throws(() => resolveFabricChoice({ backend: 'tcp', provider: 'tcp' }, {}),
    isConfigError(/provider applies to backend 'libfabric'/));
  assert.throws(() => resolveFabricChoice({ backend: 'verbs' as 'tcp' }, {}), isConfigError(/backend must be/));
});

test('--fabric and --provider', () => {
  assert.is(fabricChoiceFromFlags(undefined, undefined), undefined);
  assert.equal(fabricChoiceFromFlags('libfabric', undefined), { backend: 'libfabric' });
  assert.equal(fabricChoiceFromFlags('libfabric', 'tcp'), { backend: 'libfabric', provider: 'tcp' });
  assert.equal(fabricChoiceFromFlags('tcp', undefined), { backend: 'tcp' });
  assert.throws(() => fabricChoiceFromFlags(undefined, 'tcp'), isConfigError(/needs --fabric libfabric/));
  assert.throws(() => fabricChoiceFromFlags('tcp', 'tcp'),
    isConfigError(/--provider applies to --fabric libfabric only/));
  assert.throws(() => fabricChoiceFromFlags('ib', undefined), isConfigError(/--fabric must be/));
  assert.is(describeFabric({ backend: 'libfabric' }), 'libfabric/tcp');
  assert.is(describeFabric({ backend: 'tcp' }), 'tcp');
});

test('a runtime created without a fabric option follows SQUALL_FABRIC', () => {
  const saved = { backend: process.env['SQUALL_FABRIC'], provider: process.env['SQUALL_FABRIC_PROVIDER'] };
  const want = nativeBackends().includes('libfabric') ? 'libfabric' : 'tcp';
  process.env['SQUALL_FABRIC'] = want;
  delete process.env['SQUALL_FABRIC_PROVIDER'];
  try {
    const runtime = new MemberRuntime({ id: 1, listen: '127.0.0.1:0', arenaBytes: 8 << 20, what: 'this test member' });
    try {
      assert.is(runtime.fabric.backend, want);
      assert.equal(runtime.fabricChoice, { backend: want });
    } finally { runtime.close(); }
  } finally {
    if (saved.backend === undefined) delete process.env['SQUALL_FABRIC'];
    else process.env['SQUALL_FABRIC'] = saved.backend;
    if (saved.provider !== undefined) process.env['SQUALL_FABRIC_PROVIDER'] = saved.provider;
  }
});

test('libfabric not built in: NativeUnavailableError naming libfabric-dev, before any member starts', () => {
  process.env['SQUALL_FORCE_NO_LIBFABRIC'] = '1';
  try {
    assert.throws(() => checkFabricUsable({ backend: 'libfabric' }),
      (e: unknown) => e instanceof NativeUnavailableError &&
      /libfabric-dev/.test((e as Error).message));
    checkFabricUsable({ backend: 'tcp' });
  } finally {
    delete process.env['SQUALL_FORCE_NO_LIBFABRIC'];
  }
});

if (nativeBackends().includes('libfabric')) {
  test('a provider that offers none of the modes: ConfigError pointing at fi_info; usable ones report their mode',
    () => {
    assert.throws(() => checkFabricUsable({ backend: 'libfabric', provider: 'nosuchprovider' }),
      isConfigError(/fi_info -p nosuchprovider -v/));
    assert.throws(() => checkFabricUsable({ backend: 'libfabric', provider: 'shm+rma' }),
      isConfigError(/fi_info -p shm -v/));
    assert.is(checkFabricUsable({ backend: 'libfabric', provider: 'tcp' }), 'rma');
    assert.is(checkFabricUsable({ backend: 'libfabric', provider: 'tcp+msg' }), 'msg');
    assert.is(checkFabricUsable({ backend: 'tcp' }), 'sockets');
    assert.is(fabricLabel({ backend: 'libfabric', provider: 'tcp' }), 'libfabric/tcp (rma)');
    assert.is(fabricLabel({ backend: 'tcp' }), 'tcp');
  });
}

test.run();
