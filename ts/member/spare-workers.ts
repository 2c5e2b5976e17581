// Warm workers for the next view. A view change builds the next view's member runtime with fresh tables
// (DESIGN.md §6), and starting its predicate and rdmc workers — a thread, its modules, the WebAssembly
// kernels compiled — took most of the time a change took. A spare is started ahead, while the group is
// calm: it loads everything it can without knowing its table, then sleeps on a bell until the owner posts
// { type: 'init', data } — what its workerData would have held — and runs as if started with it.
//
//   worker side:  const data = workerInit<PredicateWorkerData>();
//   owner side:   startWorker('predicate', data, spares.take('predicate'))

import { Worker, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { compileKernels } from '../kernels/kernels.js';

export type WorkerKind = 'predicate' | 'rdmc';

const URLS: Record<WorkerKind, URL> = {
  predicate: new URL('../../workers/predicate-worker.js', import.meta.url),
  rdmc: new URL('../../workers/rdmc-worker.js', import.meta.url),
};

/** A started worker waiting for its data, and the bell it sleeps on. */
export interface Spare {
  worker: Worker;
  bell: Int32Array;
}

/** Starts a worker of `kind` with `data`, or hands `data` to `spare` (one started by SpareWorkers). */
export function startWorker<T>(kind: WorkerKind, data: T, spare?: Spare | null): Worker {
  if (!spare) return new Worker(URLS[kind], { workerData: data });
  spare.worker.postMessage({ type: 'init', data });
  Atomics.store(spare.bell, 0, 1);
  Atomics.notify(spare.bell, 0);
  return spare.worker;
}

/** In a worker script: its data, from workerData, or — for a spare — from the owner's 'init' message. */
export function workerInit<T>(): T {
  const spare = workerData as { spare?: boolean; bell?: SharedArrayBuffer } | null;
  if (!spare?.spare) return workerData as T;
  compileKernels(); // the part of starting that needs no table
  const bell = new Int32Array(spare.bell!);
  for (;;) {
    const m = receiveMessageOnPort(parentPort!);
    if (m) return (m.message as { data: T }).data;
    Atomics.wait(bell, 0, 0, 1000); // rung by startWorker; an unrung spare looks again each second
  }
}

/** One warm worker of each kind, replaced when taken. */
export class SpareWorkers {
  readonly #spares = new Map<WorkerKind, Spare>();
  #closed = false;

  /** Starts the spares of `kinds` that are missing. */
  fill(kinds: readonly WorkerKind[]): void {
    if (this.#closed) return;
    for (const kind of kinds) {
      if (this.#spares.has(kind)) continue;
      const bell = new SharedArrayBuffer(4);
      const worker = new Worker(URLS[kind], { workerData: { spare: true, bell } });
      worker.unref(); // a spare never keeps the process alive
      worker.on('error', () => this.#spares.delete(kind));
      this.#spares.set(kind, { worker, bell: new Int32Array(bell) });
    }
  }

  /** A warm worker of `kind`, or null; the caller owns it from then on. */
  take(kind: WorkerKind): Spare | null {
    const spare = this.#spares.get(kind) ?? null;
    this.#spares.delete(kind);
    spare?.worker.ref();
    return spare;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#spares.values()];
    this.#spares.clear();
    await Promise.all(all.map((s) => s.worker.terminate()));
  }
}
