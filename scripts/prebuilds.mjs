#!/usr/bin/env node
// Builds the addon's prebuilt binaries that the package ships (npm pack runs it: the prepack script), with
// prebuildify, into prebuilds/<platform>-<arch>/squall.glibc.node — where node-gyp-build finds them at install
// and at load (ts/fabric/native.ts), so an app that installs squall compiles nothing.
//
//   linux-x64    always, with this machine's g++
//   linux-arm64  when Debian's cross compiler is installed (apt-get install g++-aarch64-linux-gnu); skipped
//                with a note otherwise
//
// Both are built with libfabric's headers when pkg-config finds them; the binary does not link libfabric (it
// opens libfabric.so.1 at run time, native/libfabric/lf_loader.cc), so it loads on machines without it.
// The builds run in a temporary copy of the native sources, so this checkout's build/ is left as it was.
//
//   node scripts/prebuilds.mjs [--arch x64|arm64]

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const only = process.argv.includes('--arch') ? process.argv[process.argv.indexOf('--arch') + 1] : null;
const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');
// node-gyp: npm's own (it is not on PATH outside npm scripts). Headers: npm's nodedir, else the Debian nodejs
// package's (/usr/include/node); node-gyp downloads them only when neither is there.
const npmDir = dirname(dirname(realpathSync(process.env.npm_execpath ?? spawnSync('sh', ['-c', 'command -v npm'])
  .stdout.toString().trim())));
const nodeGyp = join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const targets = [
  { arch: 'x64', env: {} },
  {
    arch: 'arm64',
    needs: 'aarch64-linux-gnu-g++',
    env: {
      CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++',
      PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip',
    },
  },
].filter((t) => only === null || t.arch === only);

const work = mkdtempSync(join(tmpdir(), 'squall-prebuilds-'));
try {
  for (const name of ['binding.gyp', 'package.json', 'native']) {
    cpSync(join(root, name), join(work, name), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
  // The cross compiler searches its own sysroot, not /usr/include: give it libfabric's headers (they are
  // the same on every architecture) and nothing else from the host.
  if (existsSync('/usr/include/rdma/fabric.h')) {
    cpSync('/usr/include/rdma', join(work, 'cross-include', 'rdma'), { recursive: true });
  }
  let built = 0;
  for (const target of targets) {
    if (target.needs && !have(target.needs)) {
      console.log(`prebuilds: linux-${target.arch} skipped: ${target.needs} is not installed ` +
        '(apt-get install g++-aarch64-linux-gnu)');
      continue;
    }
    const started = Date.now();
    console.log(`prebuilds: building linux-${target.arch} …`);
    const cross = target.needs ? { CFLAGS: `-idirafter ${join(work, 'cross-include')}`,
      CXXFLAGS: `-idirafter ${join(work, 'cross-include')}` } : {};
    const run = spawnSync(process.execPath,
      [prebuildify, '--napi', '--strip', '--tag-libc', '--arch', target.arch,
        '--target', `node@${process.versions.node}`, '--node-gyp', nodeGyp, work],
      { cwd: work, stdio: ['ignore', 'ignore', 'pipe'], env: {
        ...process.env, ...target.env, ...cross, ...(nodedir ? { npm_config_nodedir: nodedir } : {}),
      } });
    if (run.status !== 0) {
      process.stderr.write(run.stderr);
      throw new Error(`prebuilds: linux-${target.arch} failed (exit ${run.status}); the compiler's output is above`);
    }
    built++;
    console.log(`prebuilds: linux-${target.arch} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  if (built > 0) cpSync(join(work, 'prebuilds'), join(root, 'prebuilds'), { recursive: true });
  for (const dir of existsSync(join(root, 'prebuilds')) ? readdirSync(join(root, 'prebuilds')) : []) {
    console.log(`prebuilds: ${join('prebuilds', dir)}: ${readdirSync(join(root, 'prebuilds', dir)).join(', ')}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
