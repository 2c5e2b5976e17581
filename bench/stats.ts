// Small statistics for benchmarks: percentiles of samples, rounded for printing.

/** Value at quantile q (0..1) of `sorted` (ascending), by nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export interface Summary {
  p50: number;
  p99: number;
  min: number;
  max: number;
  samples: number;
}

/** `v` to `digits` decimals, as the benchmarks print figures. */
export function round(v: number, digits = 2): number {
  return Number(v.toFixed(digits));
}

/** Summarises samples, scaled by `scale` (e.g. 1e-3 for ns → µs) and rounded to `digits`. */
export function summarize(samples: readonly number[], scale = 1, digits = 2): Summary {
  const sorted = Float64Array.from(samples).sort();
  const r = (v: number) => round(v * scale, digits);
  return {
    p50: r(quantile(sorted, 0.5)), p99: r(quantile(sorted, 0.99)), min: r(sorted[0] ?? NaN),
    max: r(sorted[sorted.length - 1] ?? NaN), samples: sorted.length,
  };
}

/** Median of a few repeated measurements. */
export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5);
}
