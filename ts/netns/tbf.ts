// Token-bucket caps (`tc qdisc … tbf`) for the emulated links: parsing a tc rate, and the qdisc arguments.
//
// tbf counts layer-2 bytes (the 14-byte Ethernet header included), so with a 1500-byte MTU a TCP stream's
// payload gets about 1448/1514 ≈ 96% of the cap.

import { ConfigError } from '../errors.js';

const rateUnits: Record<string, number> = {
  '': 1, bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12,
};

/** Bits per second of a tc rate such as '1gbit', '500mbit', '10MBps' (tc's units; a bare number is bit/s). */
export function parseRateBitsPerSecond(rate: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(rate);
  const unit = m ? rateUnits[m[2]!.toLowerCase()] : undefined;
  const value = m ? Number(m[1]) * (unit ?? NaN) : NaN;
  if (!Number.isFinite(value) || value < 8_000) {
    throw new ConfigError(
      `rate '${rate}' is not a tc rate of at least 8kbit: write a number and a unit, e.g. '500mbit' or '1gbit'`);
  }
  return value;
}

/**
 * The smallest bucket handed to tbf. A TCP sender on a veth hands the qdisc segmentation-offload packets of
 * up to 64 KiB; a bucket smaller than that makes tbf cut each one into MTU-sized packets (correct but CPU
 * heavy on a small machine), so the bucket holds two.
 */
const burstBytesMin = 128 * 1024;

/** At high rates the bucket also covers 2 ms of traffic, so timer slack does not show up as lost rate. */
const burstMs = 2;

/** Queue in front of the bucket, as the time it takes to drain: enough to keep a link busy, not a bloat. */
export const latencyDefault = '20ms';

export function defaultBurst(bitsPerSecond: number): string {
  return String(Math.max(burstBytesMin, Math.ceil((bitsPerSecond / 8) * (burstMs / 1000))));
}

export interface TbfCap { rate: string; burst?: string | undefined; latency?: string | undefined }

/** `root tbf rate … burst … latency …` for `tc qdisc replace dev X`. */
export function tbfArgs(cap: TbfCap): string[] {
  const bits = parseRateBitsPerSecond(cap.rate);
  return [
    'root', 'tbf', 'rate', cap.rate.trim(), 'burst', cap.burst ?? defaultBurst(bits),
    'latency', cap.latency ?? latencyDefault,
  ];
}
