// TCP throughput between hosts of an emulated network, measured by tcp-probe processes forked inside them.
// Used by the netns tests (does a cap hold?) and bench/netns-throughput.ts (what does this machine carry?).

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TimeoutError } from '../errors.js';
import type { EmulatedNetwork } from './emulated-network.js';
import type { ProbeMessage } from './tcp-probe.js';

export const probePath = fileURLToPath(new URL('./tcp-probe.js', import.meta.url));

/** Resolves with the next IPC message of `child` that matches, or rejects after timeoutMs or if it exits. */
export function nextMessage<T extends ProbeMessage['type']>(
  child: ChildProcess, type: T, timeoutMs: number
): Promise<Extract<ProbeMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: ProbeMessage) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as Extract<ProbeMessage, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`probe pid ${child.pid} exited (${signal ?? code}) before reporting '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new TimeoutError(`probe pid ${child.pid} did not report '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Kills a probe and waits for it to be gone. */
export async function endProbe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await gone;
}

export interface FlowSpec { from: number; to: number; streams?: number }

export interface FlowResult extends Required<FlowSpec> {
  /** Sum over the flow's streams of each stream's rate in its window. */
  bitsPerSecond: number;
  perStreamBitsPerSecond: number[];
}

export interface MeasureOptions {
  /** Time from a stream's first byte to the start of its window (slow start, bucket burst). Default 250. */
  warmupMs?: number;
  /** Length of the window counted. Default 2000. */
  windowMs?: number;
}

/**
 * Runs the flows at once (one sink and one source process per flow) and returns each flow's rate, as the
 * receiver counts payload bytes. Every process is ended before this returns, whatever happens.
 */
export async function measureFlows(
  network: EmulatedNetwork, flows: FlowSpec[], options: MeasureOptions = {}
): Promise<FlowResult[]> {
  const warmupMs = options.warmupMs ?? 250;
  const windowMs = options.windowMs ?? 2000;
  const limitMs = warmupMs + windowMs + 5000;
  const started: ChildProcess[] = [];
  try {
    const settled = await Promise.allSettled(flows.map(async ({ from, to, streams = 1 }) => {
      const sink = network.fork(to, probePath, ['sink', '0', String(warmupMs), String(windowMs)]);
      started.push(sink);
      const collected: Array<ProbeMessage & { type: 'rate' }> = [];
      const allRates = new Promise<void>((resolve) => {
        sink.on('message', (m: ProbeMessage) => {
          if (m.type !== 'rate') return;
          collected.push(m);
          if (collected.length === streams) resolve();
        });
      });
      const { port } = await nextMessage(sink, 'listening', 10_000);
      const source = network.fork(
        from, probePath, ['source', network.hosts[to]!.address, String(port), String(streams)]);
      started.push(source);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        allRates,
        new Promise((_, reject) => {
          timer = setTimeout(() => {
            const reported = `${collected.length} of ${streams} streams reported within ${limitMs} ms`;
            reject(new TimeoutError(`flow ${from}→${to}: ${reported}`));
          }, limitMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const incomplete = collected.filter((r) => !r.complete).length;
      if (incomplete > 0) {
        throw new Error(`flow ${from}→${to}: ${incomplete} of ${streams} streams closed before their window ended`);
      }
      const perStream = collected.map((r) => r.bitsPerSecond);
      return {
        from, to, streams, bitsPerSecond: perStream.reduce((a, b) => a + b, 0), perStreamBitsPerSecond: perStream,
      };
    }));
    // allSettled, not all: a flow that fails early must not leave another still starting its processes.
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<FlowResult>).value);
  } finally {
    await Promise.all(started.map(endProbe));
  }
}

/** One flow of `streams` streams from host `from` to host `to`; bits per second. */
export async function measureTcp(
  network: EmulatedNetwork, from: number, to: number, options: MeasureOptions & { streams?: number } = {}
): Promise<number> {
  const [result] = await measureFlows(network, [{ from, to, streams: options.streams ?? 1 }], options);
  return result!.bitsPerSecond;
}
