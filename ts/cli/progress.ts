// Progress for long-running commands: one line per step on stderr (stdout stays clean for --json),
// stamped with the seconds since the command started. A step that can take more than a second either
// loops (progressCounter: counts at each tenth, and at least every few seconds) or waits
// (progressWhile: the time it has taken, every second), so no phase goes quiet.

import { formatSeconds } from './units.js';

export type Progress = (message: string) => void;

export function progressOnStderr(prefix = 'squall'): Progress {
  const started = Date.now();
  return (message) => {
    const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[${prefix} ${s}s] ${message}\n`);
  };
}

/**
 * A loop of `total` steps: call the result with the steps done. It writes `line(done, percent)` at each
 * tenth of `total`, at the last step, and whenever `everyMs` passed since its last line.
 */
export function progressCounter(
  progress: Progress, total: number, line: (done: number, percent: number) => string, everyMs = 2000
): (done: number) => void {
  let lastAt = Date.now();
  let lastTenth = 0;
  return (done) => {
    const tenth = Math.floor((done * 10) / total);
    const now = Date.now();
    if (done < total && tenth === lastTenth && now - lastAt < everyMs) return;
    lastTenth = tenth;
    lastAt = now;
    progress(line(done, Math.floor((done * 100) / total)));
  };
}

/**
 * Awaits `work`, announcing it first with `what`; while it runs it writes `what` with the time taken so far
 * every `everyMs` ("throughput: 3 s so far"), or `what(elapsedSeconds)` when `what` is a function.
 */
export async function progressWhile<T>(
  progress: Progress, what: string | ((elapsedSeconds: number) => string), work: Promise<T> | (() => Promise<T>),
  everyMs = 1000
): Promise<T> {
  const started = Date.now();
  const line = typeof what === 'string'
    ? (s: number) => (s === 0 ? what : `${what}: ${formatSeconds(Math.round(s))} so far`) : what;
  progress(line(0));
  const timer = setInterval(() => progress(line((Date.now() - started) / 1000)), everyMs);
  timer.unref();
  try {
    return await (typeof work === 'function' ? work() : work);
  } finally {
    clearInterval(timer);
  }
}

/** progressWhile's lines for a phase announced at length: `announce` first, then "what: 3 s so far". */
export function longPhase(announce: string, what: string): (elapsedSeconds: number) => string {
  return (s) => (s === 0 ? announce : `${what}: ${formatSeconds(Math.round(s))} so far`);
}

/**
 * progressWhile's lines for a phase planned to last `seconds`: `announce` first, then "what: 3 s of 5 s",
 * and past the plan "what: 6 s (past the 5 s planned: finishing)".
 */
export function timedPhase(announce: string, what: string, seconds: number): (elapsedSeconds: number) => string {
  const planned = formatSeconds(seconds);
  return (s) => {
    if (s === 0) return announce;
    const elapsed = formatSeconds(Math.round(s));
    return s < seconds + 0.5
      ? `${what}: ${elapsed} of ${planned}` : `${what}: ${elapsed} (past the ${planned} planned: finishing)`;
  };
}
