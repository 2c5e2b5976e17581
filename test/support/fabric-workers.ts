// The workers of test/fabric.test.ts, and how it starts them: this file is their script too (workerData.role
// says which part a worker plays). Each blocks in the native wait or hammers the arena the way a real
// worker does, so that the tests see the fabric from another thread.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../ts/arena.js';
import { attachFabric, doorbellEpoch, waitForChange } from '../../ts/fabric/native.js';

export interface WorkerData {
  role: 'wait-once' | 'observe-counter' | 'update-counters' | 'check-torn' | 'write-attached';
  memory: WebAssembly.Memory;
  handle: number;
  flags: SharedArrayBuffer; // Int32Array: [0] stop
  offset: number;
  length: number;
  peer: number;
  timeoutMs: number;
  target: number;
  /** wait-once: spin this many µs before sleeping (waitForChange's spinUs). */
  spinUs?: number;
}

function workerMain(data: WorkerData): void {
  const arena = Arena.adopt(data.memory);
  const flags = new Int32Array(data.flags);
  const post = (m: unknown) => parentPort!.postMessage(m);
  switch (data.role) {
    case 'wait-once': {
      // Sleep in the native wait; report what woke us and whether the bytes were already there.
      const seen = doorbellEpoch(arena);
      post({ type: 'ready' });
      const t0 = performance.now();
      const epoch = waitForChange(data.handle, seen, data.timeoutMs, 0, data.spinUs ?? 0);
      post({ type: 'done', seen, epoch, elapsedMs: performance.now() - t0, byte: arena.u8[data.offset] });
      break;
    }
    case 'observe-counter': {
      // Follows a u64 counter that a peer pushes: it must never go backwards.
      const index = data.offset >> 3;
      let last = 0n;
      let backwards = 0;
      let observations = 0;
      let epoch = doorbellEpoch(arena);
      post({ type: 'ready' });
      const deadline = performance.now() + data.timeoutMs;
      while (last < BigInt(data.target) && performance.now() < deadline) {
        epoch = waitForChange(data.handle, epoch, 100);
        const v = Atomics.load(arena.i64, index);
        if (v < last) backwards++;
        if (v !== last) observations++;
        last = v;
      }
      post({ type: 'done', last: Number(last), backwards, observations });
      break;
    }
    case 'update-counters': {
      // Keeps rewriting every u64 of a range with values whose two halves are equal.
      const first = data.offset >> 3;
      const words = data.length >> 3;
      let v = 1n;
      post({ type: 'ready' });
      while (Atomics.load(flags, 0) === 0) {
        const value = v * 0x1_0000_0001n;
        for (let i = 0; i < words; i++) Atomics.store(arena.i64, first + i, value);
        v = (v + 1n) & 0xffff_ffffn;
      }
      post({ type: 'done' });
      break;
    }
    case 'check-torn': {
      // Re-reads the first counters of a range with 8-byte atomic loads, as fast as it can, and checks
      // every new value's halves: a torn store lasts nanoseconds, so sample one place very often.
      const first = data.offset >> 3;
      const hot = Math.min(data.length >> 3, 2);
      const last = [0n, 0n];
      let torn = 0;
      let changes = 0;
      post({ type: 'ready' });
      while (Atomics.load(flags, 0) === 0) {
        for (let i = 0; i < hot; i++) {
          const value = Atomics.load(arena.i64, first + i);
          if (value === last[i]) continue;
          last[i] = value;
          changes++;
          const u = BigInt.asUintN(64, value);
          if (u >> 32n !== (u & 0xffff_ffffn)) torn++;
        }
      }
      post({ type: 'done', torn, changes });
      break;
    }
    case 'write-attached': {
      const fabric = attachFabric(data.handle);
      for (let i = 0; i < data.length; i++) arena.u8[data.offset + i] = (i * 7 + 3) & 0xff;
      const status = fabric.write(data.peer, data.offset, data.length);
      fabric.wake();
      post({ type: 'done', status });
      break;
    }
  }
}

/** Starts a worker playing `data.role`; `ready` once it waits, `done` with what it reports. */
export function startWorker(data: Partial<WorkerData>): {
  worker: Worker; ready: Promise<void>; done: Promise<Record<string, number>>
} {
  const flags = data.flags ?? new SharedArrayBuffer(4);
  const worker = new Worker(
    new URL(import.meta.url),
    { workerData: { flags, offset: 0, length: 0, peer: 0, timeoutMs: 1000, target: 0, handle: 0, ...data } });
  let onReady!: () => void;
  let onDone!: (m: Record<string, number>) => void;
  let onError!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => { onReady = res; onError = rej; });
  const done = new Promise<Record<string, number>>((res, rej) => {
    onDone = res;
    const prev = onError;
    onError = (e) => { prev(e); rej(e); };
  });
  worker.on('message', (m: { type: string } & Record<string, number>) => (m.type === 'ready' ? onReady() : onDone(m)));
  worker.on('error', (e) => onError(e));
  worker.on('exit', (code) => onError(new Error(`worker exited (${code}) before it reported`)));
  done.catch(() => {}); // awaited by the test that wants it, if any: a rejection must not go unhandled meanwhile
  ready.catch(() => {}); // the same as done
  return { worker, ready, done };
}

if (!isMainThread && (workerData as Partial<WorkerData> | null)?.role !== undefined) {
  workerMain(workerData as WorkerData);
}
