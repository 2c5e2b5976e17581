// Command-line sizes, rates and numbers (ts/cli/units.ts): what users write, and what a typo says back.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../ts/errors.js';
import {
  formatBytes, formatCount, formatMicros, formatMillis, formatRate, formatSeconds, parseBytes, parseNonNegative,
  parsePositiveInt, parseRate,
} from '../ts/cli/units.js';
import { longPhase, progressCounter, progressWhile, timedPhase } from '../ts/cli/progress.js';

const configError = (pattern: RegExp) => (e: unknown) => e instanceof ConfigError && pattern.test(e.message);

test('sizes: binary units, decimal units, dd-style letters, plain bytes', () => {
  const cases: [string, number][] = [
    ['16KiB', 16 * 1024], ['1MiB', 2 ** 20], ['256MiB', 256 * 2 ** 20], ['1GiB', 2 ** 30], ['2TiB', 2 * 2 ** 40],
    ['1kib', 1024], ['256 MiB', 256 * 2 ** 20], [' 4 mib ', 4 * 2 ** 20], ['1.5MiB', 1.5 * 2 ** 20],
    ['1KB', 1000], ['10MB', 1e7], ['1GB', 1e9],
    ['16k', 16384], ['1m', 2 ** 20], ['1G', 2 ** 30],
    ['4096', 4096], ['512B', 512], ['1e6', 1e6],
  ];
  for (const [text, bytes] of cases) assert.is(parseBytes(text, 'size'), bytes, text);
});

test('sizes: typos, fractions of a byte and zero are refused, naming the flag and examples', () => {
  const typos = ['', 'MiB', '1 MiBs', '1MiB2', '-1MiB', '1.5', '0.1KiB', 'abc', '1 mebibyte', '0x10', 'NaN',
    'Infinity'];
  for (const bad of typos) {
    assert.throws(() => parseBytes(bad, 'block-size'),
      configError(/--block-size must be a size such as 16KiB, 1MiB/), `'${bad}'`);
  }
  assert.throws(() => parseBytes('0', 'size'), configError(/at least 1 B/));
  assert.throws(() => parseBytes('512', 'block-size', 1024), configError(/at least 1 KiB\), got '512'/));
});

test('rates: bits per second in the usual spellings, bytes per second with a capital B', () => {
  const cases: [string, number][] = [
    ['1gbit', 125e6], ['100mbit', 12.5e6], ['10gbit', 1.25e9], ['25Gbit/s', 25e9 / 8], ['1Gbits', 125e6],
    ['1gbps', 125e6], ['1Gbps', 125e6], ['1Gb/s', 125e6], ['1gb/s', 125e6], ['800bit', 100], ['1.5 gbit', 187.5e6],
    ['125MB/s', 125e6], ['1GiB/s', 2 ** 30], ['100MiB/s', 100 * 2 ** 20], ['1kB/s', 1000], ['64B/s', 64],
  ];
  for (const [text, bytesPerSec] of cases) assert.is(parseRate(text, 'rate'), bytesPerSec, text);
});

test('rates: a bare number, a size, zero or a typo is refused', () => {
  for (const bad of ['1', '1g', '1GB', '0gbit', 'fast', '1 gigabit', '1gbit/h', '-1gbit', '']) {
    assert.throws(() => parseRate(bad, 'rate'),
      configError(/--rate must be a rate such as 100mbit, 1gbit, 10gbit/), `'${bad}'`);
  }
});

test('integers and non-negative numbers', () => {
  assert.is(parsePositiveInt(undefined, 'max-members', 4096), 4096);
  assert.is(parsePositiveInt('17', 'max-members', 4096), 17);
  for (const bad of ['0', '-3', '2.5', '1e3', 'x', '']) {
    assert.throws(() => parsePositiveInt(bad, 'max-members', 1),
      configError(/--max-members must be a positive integer/), bad);
  }
  assert.is(parseNonNegative(undefined, 'latency-us', 5), 5);
  assert.is(parseNonNegative('0', 'latency-us', 5), 0);
  assert.is(parseNonNegative('2.5', 'latency-us', 5), 2.5);
  for (const bad of ['-1', 'x', '', 'Infinity']) {
    assert.throws(() => parseNonNegative(bad, 'latency-us', 0), configError(/--latency-us must be a number ≥ 0/), bad);
  }
});

test('formatting reads back as what was parsed', () => {
  assert.is(formatBytes(256 * 2 ** 20), '256 MiB');
  assert.is(formatBytes(1536), '1.5 KiB');
  assert.is(formatBytes(100), '100 B');
  assert.is(formatBytes(2 ** 30), '1 GiB');
  assert.is(parseBytes(formatBytes(16 * 1024).replace(' ', ''), 'size'), 16 * 1024);
  assert.is(formatRate(parseRate('1gbit', 'rate')), '1 Gbit/s');
  assert.is(formatRate(parseRate('100mbit', 'rate')), '100 Mbit/s');
  assert.is(formatSeconds(2.2487), '2.25 s');
  assert.is(formatSeconds(0.0123), '12.3 ms');
  assert.is(formatSeconds(8.5e-4), '850 µs');
  assert.is(formatSeconds(8794), '2.44 h');
  assert.is(formatSeconds(1200), '20 min');
  assert.is(formatCount(71525.6), '71,526');
  assert.is(formatCount(0), '0');
});

test('times in the unit that suits them, never "1000 ms" or "1000 µs"', () => {
  assert.is(formatMicros(101.24), '101 µs');
  assert.is(formatMicros(1323.76), '1.32 ms');
  assert.is(formatMicros(15807.5), '15.8 ms');
  assert.is(formatMillis(38.33), '38.3 ms');
  assert.is(formatMillis(1118.59), '1.12 s');
  assert.is(formatMillis(2991.69), '2.99 s');
  assert.is(formatSeconds(0.9996), '1 s');
  assert.is(formatSeconds(0.9994), '999 ms');
  assert.is(formatSeconds(0.0009996), '1 ms');
  assert.is(formatSeconds(0), '0 µs');
});

test('progressCounter: a line at each tenth and at the last step, none between', () => {
  const lines: string[] = [];
  const report = progressCounter((m) => lines.push(m), 200, (done, percent) => `${done} (${percent}%)`, 60_000);
  for (let done = 1; done <= 200; done++) report(done);
  assert.equal(lines, Array.from({ length: 10 }, (_, i) => `${(i + 1) * 20} (${(i + 1) * 10}%)`));
  const few: string[] = [];
  const three = progressCounter((m) => few.push(m), 3, (done) => `${done} of 3`, 60_000);
  for (let done = 1; done <= 3; done++) three(done);
  assert.equal(few, ['1 of 3', '2 of 3', '3 of 3']);
});

test('progressWhile: announces the phase, then its time so far while it lasts; stops when it ends', async () => {
  const lines: string[] = [];
  const value = await progressWhile((m) => lines.push(m), 'building', () =>
    new Promise<number>((resolve) => setTimeout(() => resolve(7), 130)), 50);
  assert.is(value, 7);
  assert.is(lines[0], 'building');
  assert.ok(lines.length >= 2, lines.join(' | '));
  for (const line of lines.slice(1)) assert.match(line, /^building: \d+ (µs|ms|s) so far$/);
  const count = lines.length;
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.is(lines.length, count, 'no line after the phase ended');
  const failing = progressWhile(() => undefined, 'x', Promise.reject(new Error('boom')), 10);
  try { await failing; assert.unreachable('progressWhile passes the failure on'); } catch (e) {
    assert.is((e as Error).message, 'boom');
  }
});

test('timedPhase and longPhase: the announcement first, then short lines with the time', () => {
  const flood = timedPhase('throughput: 2 senders flood 5 s with 1 KiB messages', 'throughput: flooding', 5);
  assert.is(flood(0), 'throughput: 2 senders flood 5 s with 1 KiB messages');
  assert.is(flood(3.1), 'throughput: flooding: 3 s of 5 s');
  assert.is(flood(5.2), 'throughput: flooding: 5 s of 5 s');
  assert.is(flood(7), 'throughput: flooding: 7 s (past the 5 s planned: finishing)');
  const start = longPhase('starting 3 members, one persistent shard (logs in /tmp/x), window 256', 'starting');
  assert.is(start(0), 'starting 3 members, one persistent shard (logs in /tmp/x), window 256');
  assert.is(start(2.2), 'starting: 2 s so far');
});

test.run();
