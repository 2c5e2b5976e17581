// Sizes, rates and durations on the command line: parsed strictly (a typo is a ConfigError naming the
// flag and showing what to write, never a silent default) and printed back in the same units.
//
//   sizes   1024, 16KiB, 1MiB, 256MiB, 1GiB (binary); 1KB, 1MB, 1GB (decimal); 16k, 1m, 1g (binary,
//           as dd and most tools read them); a space before the unit is allowed: "256 MiB"
//   rates   100mbit, 1gbit, 10gbit, 25Gbit/s, 1gbps, 1Gb/s (bits per second, decimal); 125MB/s, 1GiB/s
//           (bytes per second)
//
// Units are case-insensitive except in "b/s" against "B/s", the usual bit/byte distinction.

import { ConfigError } from '../errors.js';
import { parseIntegerFlag, parseNumberFlag } from '../validate.js';

const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 2 ** 10, kib: 2 ** 10, kb: 1e3,
  m: 2 ** 20, mib: 2 ** 20, mb: 1e6,
  g: 2 ** 30, gib: 2 ** 30, gb: 1e9,
  t: 2 ** 40, tib: 2 ** 40, tb: 1e12,
};

const BIT_PREFIXES: Readonly<Record<string, number>> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
const BYTE_PREFIXES: Readonly<Record<string, number>> = {
  '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40,
};

const NUMBER = /^\s*(\d+(?:\.\d+)?|\.\d+)(?:e(\d+))?\s*/i;

/** Splits "256 MiB" into 256 and "MiB"; null when it does not start with a plain non-negative number. */
function splitNumber(text: string): { value: number; unit: string } | null {
  const m = NUMBER.exec(text);
  if (!m) return null;
  const value = Number(m[1]) * 10 ** Number(m[2] ?? 0);
  return { value, unit: text.slice(m[0].length).trim() };
}

/**
 * A byte count such as 16KiB, 1MiB, 256MiB or 1GiB. `flag` names the option in the error message. The
 * result must be a whole number of bytes, at least `min` (default 1).
 */
export function parseBytes(text: string, flag: string, min = 1): number {
  const fail = (why = ''): never => {
    throw new ConfigError(`--${flag} must be a size such as 16KiB, 1MiB, 256MiB or 1GiB${why}, got '${text}'`);
  };
  const parts = splitNumber(text);
  if (!parts) return fail();
  const scale = BYTE_UNITS[parts.unit.toLowerCase()];
  if (scale === undefined) return fail();
  const bytes = parts.value * scale;
  if (!Number.isSafeInteger(bytes)) return fail(' (a whole number of bytes)');
  if (bytes < min) return fail(` (at least ${formatBytes(min)})`);
  return bytes;
}

/**
 * A link rate such as 100mbit, 1gbit, 10gbit or 125MB/s, as bytes per second. `flag` names the option in
 * the error message.
 */
export function parseRate(text: string, flag: string): number {
  const fail = (): never => {
    throw new ConfigError(`--${flag} must be a rate such as 100mbit, 1gbit, 10gbit or 125MB/s, got '${text}'`);
  };
  const parts = splitNumber(text);
  if (!parts || parts.value <= 0) return fail();
  const unit = parts.unit;
  // bits: 1gbit, 1gbits, 1gbit/s, 1gbps (any case), 1Gb/s (lower-case b)
  const bits = /^([kmgt]?)(?:bits?|bits?\/s|bps)$/i.exec(unit) ?? /^([kmgtKMGT]?)b\/s$/.exec(unit);
  if (bits) return (parts.value * BIT_PREFIXES[bits[1]!.toLowerCase()]!) / 8;
  // bytes: 125MB/s, 1GiB/s (upper-case B)
  const bytes = /^([kmgtKMGT]i?)?B\/s$/.exec(unit);
  if (bytes) return parts.value * BYTE_PREFIXES[(bytes[1] ?? '').toLowerCase()]!;
  return fail();
}

/** A positive integer option (e.g. --max-members), digits only, at most `max`; `fallback` when absent. */
export function parsePositiveInt(text: string | undefined, flag: string, fallback: number, max = 2 ** 31): number {
  return parseIntegerFlag(text, flag, 1, max, fallback);
}

/** A non-negative number option (e.g. --latency-us), at most `max`; `fallback` when absent. */
export function parseNonNegative(text: string | undefined, flag: string, fallback: number, max = 1e9): number {
  return parseNumberFlag(text, flag, 0, max, fallback);
}

/** Bytes in the largest binary unit that keeps the number at least 1: "256 MiB", "1.5 KiB", "100 B". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (i < units.length - 1 && Math.abs(value) >= 1024) { value /= 1024; i++; }
  return `${Number(value.toFixed(2))} ${units[i]}`;
}

/** A rate in bits per second, as network links are sold: "1 Gbit/s", "100 Mbit/s". */
export function formatRate(bytesPerSec: number): string {
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let value = bytesPerSec * 8;
  let i = 0;
  while (i < units.length - 1 && Math.abs(value) >= 1000) { value /= 1000; i++; }
  return `${Number(value.toFixed(2))} ${units[i]}`;
}

/** Seconds with a unit that suits them: "850 µs", "12.3 ms", "2.25 s", "2.4 h". */
export function formatSeconds(seconds: number): string {
  const abs = Math.abs(seconds);
  // The bounds sit where three significant digits round up to the next unit: 0.9996 s is "1 s", not "1000 ms".
  if (abs < 9.995e-4) return `${Number((seconds * 1e6).toPrecision(3))} µs`;
  if (abs < 0.9995) return `${Number((seconds * 1e3).toPrecision(3))} ms`;
  if (abs < 600) return `${Number(seconds.toPrecision(3))} s`;
  if (abs < 2 * 3600) return `${Number((seconds / 60).toPrecision(3))} min`;
  return `${Number((seconds / 3600).toPrecision(3))} h`;
}

/** A count with thousands separators, the same in every locale: "12,345". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Microseconds, as the benchmarks' results hold latencies, in a unit that suits them: "101 µs", "15.8 ms". */
export function formatMicros(us: number): string {
  return formatSeconds(us / 1e6);
}

/** Milliseconds, as the benchmarks' results hold durations: "38.3 ms", "1.12 s". */
export function formatMillis(ms: number): string {
  return formatSeconds(ms / 1e3);
}
