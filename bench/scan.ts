// How long one kernel call takes, WebAssembly (assembly/, via ts/kernels/kernels.ts) beside the plain-JS
// reference loop (ts/kernels/reference.ts), on the same table in an arena, for tables of 4 to 256 rows.
// The predicate worker runs these on every table change, so their cost at small n — dominated by the
// JS → wasm call itself — is what bounds its reaction time.
//
//   node dist/bench/scan.js            prints {"minI64": {"4": {"wasmNs": …, "jsNs": …}, …}, …} on stdout
//
// Measured with benny (benchmark.js underneath). benny logs to stdout; here that goes to onProgress, so a
// caller printing JSON on stdout is not disturbed.

import { add, configure, cycle, suite } from 'benny';
import { pathToFileURL } from 'node:url';
import { Arena } from '../ts/arena.js';
import * as map from '../ts/generated/memory-map.js';
import { loadKernels, type Kernels } from '../ts/kernels/kernels.js';
import { referenceKernels } from '../ts/kernels/reference.js';

export interface ScanBenchOptions {
  /** Table sizes to measure. Default 4, 16, 64, 256. At most MAX_MEMBERS. */
  rows?: number[];
  /** Progress lines (benny's included). Default: dropped. */
  onProgress?: (msg: string) => void;
  /** Time spent measuring each case, in seconds. Default 0.25 (the whole run then takes about 15 s). */
  maxTimeS?: number;
}

/** Nanoseconds per call, by kernel then by row count. */
export type ScanBenchResult = Record<string, Record<string, { wasmNs: number; jsNs: number }>>;

/** The table: an SST-like row of 256 bytes (u64 heartbeat at 0, i64 counter at 8, u8 flag at 16). */
const ROW_STRIDE = 256;
const HEARTBEAT_COL = 0;
const COUNTER_COL = 8;
const FLAG_COL = 16;
const TABLE = map.DYNAMIC_BASE;
const NUM_RECEIVED = TABLE + map.MAX_MEMBERS * ROW_STRIDE; // i64 × senders, senders = rows
const JS_STATE = NUM_RECEIVED + map.MAX_MEMBERS * 8; // the JS loop's own seen / changedMs / stale arrays
const JS_SEEN = JS_STATE;
const JS_CHANGED = JS_SEEN + map.MAX_MEMBERS * 8;
const JS_STALE = JS_CHANGED + map.MAX_MEMBERS * 8;

/** Results of the measured calls land here, so no engine may drop a call as unused. */
let sink = 0;

function fillTable(arena: Arena, rows: number): void {
  for (let r = 0; r < rows; r++) {
    const row = TABLE + r * ROW_STRIDE;
    arena.i64[(row + HEARTBEAT_COL) / 8] = BigInt(1000 + r);
    arena.i64[(row + COUNTER_COL) / 8] = BigInt(5000 - ((r * 37) % 101)); // the minimum is somewhere inside
    arena.u8[row + FLAG_COL] = 0; // nobody wedged: the OR reads every row
    arena.u8[map.LIVE_ROWS_OFFSET + r] = 1;
    arena.i64[NUM_RECEIVED / 8 + r] = BigInt(700 + ((r * 13) % 5));
    // Heartbeat state as after a first scan: every heartbeat already seen, none stale.
    const columns = [[map.HEARTBEAT_SEEN_OFFSET, map.HEARTBEAT_CHANGED_MS_OFFSET], [JS_SEEN, JS_CHANGED]] as const;
    for (const [seen, changed] of columns) {
      arena.i64[seen / 8 + r] = BigInt(1000 + r);
      arena.f64[changed / 8 + r] = 0;
    }
  }
}

/** One call of each kernel under test, with the arguments the predicate worker would pass. */
function calls(k: Kernels, rows: number, wasm: boolean): Record<string, () => void> {
  const live = map.LIVE_ROWS_OFFSET;
  const seen = wasm ? map.HEARTBEAT_SEEN_OFFSET : JS_SEEN;
  const changed = wasm ? map.HEARTBEAT_CHANGED_MS_OFFSET : JS_CHANGED;
  const stale = wasm ? map.STALE_ROWS_OFFSET : JS_STALE;
  return {
    minI64: () => { sink += k.minI64(TABLE, ROW_STRIDE, rows, COUNTER_COL, live); },
    orU8: () => { sink += k.orU8(TABLE, ROW_STRIDE, rows, FLAG_COL, live); },
    receivePrefix: () => { sink += k.receivePrefix(NUM_RECEIVED, rows); },
    heartbeatScan: () => {
      sink += k.heartbeatScan(TABLE, ROW_STRIDE, rows, HEARTBEAT_COL, live, seen, changed, stale, 0, 50, 100);
    },
  };
}

/** Runs a benny suite with its console output redirected to `onProgress`. */
async function quietSuite(
  onProgress: (msg: string) => void, ...args: Parameters<typeof suite>
): ReturnType<typeof suite> {
  const log = console.log;
  console.log = (...parts: unknown[]) => onProgress(parts.join(' '));
  try {
    return await suite(...args);
  } finally {
    console.log = log;
  }
}

export async function runScanBench(options: ScanBenchOptions = {}): Promise<ScanBenchResult> {
  const rowCounts = options.rows ?? [4, 16, 64, 256];
  const onProgress = options.onProgress ?? (() => {});
  const maxTime = options.maxTimeS ?? 0.25;
  for (const rows of rowCounts) {
    if (!Number.isInteger(rows) || rows < 1 || rows > map.MAX_MEMBERS) {
      throw new RangeError(`rows must be 1..${map.MAX_MEMBERS}, got ${rows}`);
    }
  }
  const arena = Arena.create({ memberId: 0, bytes: 4 << 20 });
  const wasm = loadKernels(arena.memory);
  const js = referenceKernels(arena.memory);
  const result: ScanBenchResult = {};
  const kernels = ['minI64', 'orU8', 'receivePrefix', 'heartbeatScan'];
  const total = kernels.length * rowCounts.length;
  let done = 0;
  for (const kernel of kernels) {
    result[kernel] = {};
    for (const rows of rowCounts) {
      fillTable(arena, rows);
      const step = `[${++done}/${total}] ${kernel} × ${rows} rows`;
      const summary = await quietSuite(onProgress, `${kernel} × ${rows} rows`,
        configure({ cases: { minTime: maxTime / 10, maxTime, minSamples: 10 } }),
        add('wasm', calls(wasm, rows, true)[kernel]!),
        add('js', calls(js, rows, false)[kernel]!),
        cycle((r) => {
          onProgress(`${step}, ${r.name}: ${(1e9 * r.details.mean).toFixed(1)} ns/call ±${r.margin}%`);
        }),
      );
      const nsOf = (name: string): number => {
        const r = summary.results.find((x) => x.name === name);
        if (r === undefined || !r.completed) {
          throw new Error(`scan bench: case ${name} of ${summary.name} did not complete`);
        }
        return Number((1e9 * r.details.mean).toFixed(1));
      };
      result[kernel]![String(rows)] = { wasmNs: nsOf('wasm'), jsNs: nsOf('js') };
    }
  }
  if (sink === 0.5) onProgress('(sink)'); // keeps `sink` observable
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runScanBench({ onProgress: (msg) => process.stderr.write(msg + '\n') });
  process.stdout.write(JSON.stringify(result) + '\n');
}
