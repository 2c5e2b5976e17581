// The package as a user gets it: packed with `npm pack`, installed into an empty app in a temporary directory
// with install scripts off (so nothing may be compiled: the addon must come prebuilt, the WebAssembly and
// TypeScript outputs built), then used — the installed `squall` command, a two-member Group.join from the
// app, and the published types under `tsc --noEmit`.
//
// It needs the prebuilt addon for this machine; when prebuilds/ lacks it, or it is older than native/, it builds
// it first (about 30 s, scripts/prebuilds.mjs --arch x64). npm installs the package's dependencies from its
// cache (--prefer-offline).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../ts/harness/cluster.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const app = mkdtempSync(join(tmpdir(), 'squall-app-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(command: string, args: string[], cwd: string, timeoutMs = 240_000): SpawnSyncReturns<string> {
  const env = { ...process.env, NO_COLOR: '1' };
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env });
  if (result.status !== 0) {
    const exit = result.status ?? result.signal;
    assert.unreachable(`${command} ${args.join(' ')} exited ${exit}:\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

test.after(() => rmSync(app, { recursive: true, force: true }));

/** prebuilds/ holds this machine's addon, built after the last change to native/ (a stale one would be packed). */
function prebuildFresh(): boolean {
  const dir = join(root, 'prebuilds', `linux-${process.arch}`);
  if (!existsSync(dir)) return false;
  const built = Math.min(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
  const newest = (d: string): number => Math.max(0, ...readdirSync(d, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? newest(join(d, e.name)) : statSync(join(d, e.name)).mtimeMs));
  return built > Math.max(newest(join(root, 'native')), statSync(join(root, 'binding.gyp')).mtimeMs);
}

test('npm pack, then npm install --ignore-scripts into an empty app: nothing compiles, the addon is the prebuild',
  () => {
  if (!prebuildFresh()) {
    run(process.execPath, [join(root, 'scripts', 'prebuilds.mjs'), '--arch', process.arch], root, 300_000);
  }
  // The outputs are built already (npm test runs them); --ignore-scripts keeps pack from building again.
  const packed = run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', app], root);
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: Array<{ path: string }> }];
  const paths = new Set(files.map((f) => f.path));
  for (const needed of ['LICENSE', 'examples/cluster.json', 'dist/ts/index.d.ts', 'dist/wasm/kernels.wasm',
    `prebuilds/linux-${process.arch}/squall.glibc.node`, 'ts/index.ts']) {
    assert.ok(paths.has(needed), `the package holds ${needed}`);
  }
  const local = [...paths].filter((p) => p.startsWith('dist/test/') || p.startsWith('build/'));
  assert.equal(local, [], 'no tests or local build ship');

  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run(npm, ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', join(app, filename),
    '@types/node@20'], app);
  assert.not.ok(existsSync(join(app, 'node_modules', 'squall', 'build')), 'nothing was compiled at install');
});

test('the installed squall command: --help, and bench sst with two members', () => {
  const squall = join(app, 'node_modules', '.bin', 'squall');
  assert.match(run(squall, ['--help'], app).stdout, /usage:\s+squall node/);
  // The configuration its messages recommend is the shipped one, named by a path that exists from here.
  const missing = spawnSync(squall, ['node'], { cwd: app, encoding: 'utf8' });
  const named = /needs --config FILE and --id N \((\S+) is a configuration/.exec(missing.stderr)?.[1];
  assert.ok(named !== undefined && existsSync(join(app, named)), `squall node names a real file: ${missing.stderr}`);
  const bench = run(squall, ['bench', 'sst', '--members', '2', '--samples', '200', '--warmup', '50', '--no-scan',
    '--json'], app);
  const figures = JSON.parse(bench.stdout) as { pushLatencyUs: { p50: number } };
  assert.ok(figures.pushLatencyUs.p50 > 0, `a push latency was measured: ${bench.stdout}`);
});

test('from the app: a two-member Group.join with an ordered call, and the types under tsc --noEmit', async () => {
  const ports = await freePorts(2);
  const program = `import { Group, TicketBook } from 'squall';

const members = [0, 1].map((id) => ({ id, address: '127.0.0.1:' + [${ports.join(', ')}][id] }));
const config = { members, subgroups: { tickets: { shards: 1, members: { min: 2, max: 2 } } } };
const groups = await Promise.all([0, 1].map((id) => Group.join({ id, config, types: { tickets: TicketBook } })));
const replies = await groups[0].subgroup('tickets', TicketBook).ordered.book('A1', 'alice');
const holder: string | null = await groups[1].subgroup('tickets', TicketBook).query(1).holder('A1');
console.log(JSON.stringify({ replies: replies.length, holder }));
await Promise.all(groups.map((g) => g.close()));
`;
  writeFileSync(join(app, 'main.ts'), program);
  writeFileSync(join(app, 'main.mjs'), program.replace(': string | null', ''));
  const out = run(process.execPath, ['main.mjs'], app, 60_000).stdout.trim().split('\n').at(-1)!;
  assert.equal(JSON.parse(out), { replies: 2, holder: 'alice' });

  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'],
  }, files: ['main.ts'] }));
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
  // A type error is reported: the check reads squall's declarations, it does not pass everything.
  writeFileSync(join(app, 'main.ts'), program.replace("book('A1', 'alice')", 'book(17)'));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const wrong = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  assert.not.equal(wrong.status, 0, `tsc refused book(17): ${wrong.stdout}`);
  assert.ok(readdirSync(app).includes('main.ts'));
});

test.run();
