#!/usr/bin/env node
// Runs the tidy check (scripts/tidy.mjs) and the memory-map check first, then every uvu suite in dist/test,
// each file in its own process with a time limit, and ends with the one line CI reads: "N passed, N failed,
// N skipped". Each check counts as one test; a failed tidy check is listed again above that line.
//
//   npm test                 all suites
//   npm test -- fabric sst   only files whose path contains one of the words (the checks always run)
//
// Environment: SQUALL_TEST_TIMEOUT_S (per file, default 600: the limit is for hangs; the 1,000-seed simulation
// takes 3–5 minutes on a busy 2-core machine); SQUALL_TEST_SKIP, comma-separated words: files whose path
// contains one are left out and listed as such (npm run test:loaded leaves out the suites with no timing in them).

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const testDir = join(root, 'dist', 'test');
const timeoutMs = Number(process.env.SQUALL_TEST_TIMEOUT_S ?? 600) * 1000;
const words = process.argv.slice(2);

function listTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function runOne(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const pattern = '^' + relative(testDir, file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$';
    const child = spawn(process.execPath, [join(root, 'node_modules', 'uvu', 'bin.js'), '.', pattern], {
      cwd: testDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...withoutForceColor(process.env), NO_COLOR: '1' },
    });
    let text = '';
    child.stdout.on('data', (d) => { text += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { text += d; process.stderr.write(d); });
    const timer = setTimeout(() => {
      process.stderr.write(`\n${relative(root, file)}: still running after ${timeoutMs / 1000} s, killed\n`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const num = (label) => Number((text.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
      const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (Number.isNaN(total) || signal) {
        resolve({ passed: 0, failed: 1, skipped: 0, seconds, note: `no summary (exit ${code ?? signal})` });
      } else {
        // uvu's Total counts the tests that ran; the skipped ones are counted apart.
        const failed = total - passed + (code !== 0 && total === passed ? 1 : 0);
        resolve({ passed, failed, skipped, seconds });
      }
    });
  });
}

if (!existsSync(testDir)) {
  console.error('dist/test is missing: run npm install (or npm run build) first');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// Tidy first: it takes a second, and its listing (file:line: rule) is what to fix before anything else.
const tidy = spawnSync(process.execPath, [join(root, 'scripts', 'tidy.mjs')], { encoding: 'utf8' });
process.stdout.write(tidy.stdout + tidy.stderr);
const tidyOk = tidy.status === 0;

const layoutCheck = spawn(process.execPath, [join(root, 'scripts', 'memory-map.mjs'), '--check'], { stdio: 'inherit' });
const layoutOk = await new Promise((r) => layoutCheck.on('exit', (c) => r(c === 0)));

const skipWords = (process.env.SQUALL_TEST_SKIP ?? '').split(',').map((w) => w.trim()).filter(Boolean);
const chosen = listTests(testDir)
  .filter((f) => words.length === 0 || words.some((w) => relative(testDir, f).includes(w)));
const files = chosen.filter((f) => !skipWords.some((w) => relative(testDir, f).includes(w)));
const leftOut = chosen.filter((f) => !files.includes(f)).map((f) => relative(testDir, f));
const checksOk = [tidyOk, layoutOk].filter(Boolean).length;
const totals = { passed: checksOk, failed: 2 - checksOk, skipped: 0 };
const rows = [
  `  ${tidyOk ? 'ok  ' : 'FAIL'} ${'tidy check (scripts/tidy.mjs)'.padEnd(40)}`,
  `  ${layoutOk ? 'ok  ' : 'FAIL'} ${'memory map (scripts/memory-map.mjs --check)'.padEnd(40)}`,
];
for (const file of files) {
  const r = await runOne(file);
  totals.passed += r.passed; totals.failed += r.failed; totals.skipped += r.skipped;
  const counts = `${String(r.passed).padStart(4)} passed ${String(r.failed).padStart(3)} failed ` +
    `${String(r.skipped).padStart(3)} skipped`;
  const name = relative(testDir, file).padEnd(40);
  rows.push(`  ${r.failed ? 'FAIL' : 'ok  '} ${name} ${counts}  ${r.seconds}s${r.note ? '  ' + r.note : ''}`);
}
console.log('\nsuites:');
console.log(rows.join('\n'));
if (leftOut.length > 0) console.log(`\nleft out (SQUALL_TEST_SKIP=${skipWords.join(',')}): ${leftOut.join(', ')}`);
if (!tidyOk) {
  console.log(`\nthe tidy check failed (run npm run tidy; scripts/tidy.mjs says how to narrow it):`);
  // Its last lines: the count per rule comes last, and a long listing is above in full.
  const listing = (tidy.stdout + tidy.stderr).trimEnd().split('\n');
  if (listing.length > 40) console.log(`  ... ${listing.length - 40} lines more, printed before the suites`);
  console.log(listing.slice(-40).map((l) => `  ${l}`).join('\n'));
}
if (!layoutOk) console.log('\nthe memory-map check failed (see above; npm run build:layout regenerates)');
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed ? 1 : 0);

/** The environment without FORCE_COLOR: with NO_COLOR also set, Node warns in every child process. */
function withoutForceColor(env) {
  const { FORCE_COLOR: _unused, ...rest } = env;
  return rest;
}
