// What one step of the view-change protocol (ViewChangeProtocol.step, ts/membership/protocol.ts) costs at the
// leader of a view of n members, over its predicates' WebAssembly kernels (assembly/membership.ts) and over
// their plain-JS twins (ts/kernels/membership-reference.ts), in the states a step meets again and again
// without acting:
//
//   calm           no row is wedged: the step of every table change of a group that is not changing views
//   awaiting-acks  the leader proposed removing the last member and waits for the others' acknowledgements
//   awaiting-trim  every member acknowledged and the leader published its trim; it waits for the copies
//
// The table is written by hand into one arena (the fabric drops every push), so a step reads the same rows
// each time and writes nothing.
//
//   node dist/bench/membership-step.js [n …]     prints {"protocolReads": …, "steps": {state: {n: {…}}}}
//
// Run from a build whose protocol reads the table in JS (before the kernels), the same file measures that:
// ProtocolParts.kernels is then ignored, and `protocolReads` says 'js' (both cases then run the same code).

import { add, configure, cycle, suite } from 'benny';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Arena } from '../ts/arena.js';
import { WriteStatus, type TableFabric } from '../ts/fabric/fabric.js';
import { validateGroupConfig } from '../ts/group/config.js';
import { loadKernels } from '../ts/kernels/kernels.js';
import { planView } from '../ts/membership/plans.js';
import { ViewChangeProtocol, type ProtocolParts } from '../ts/membership/protocol.js';
import { multicastColumns } from '../ts/multicast/layout.js';
import { SstLayout } from '../ts/sst/layout.js';

export type StepState = 'calm' | 'awaiting-acks' | 'awaiting-trim';
/** Nanoseconds per step, by state then by member count: over the kernels ('wasm') and over their twins. */
export type StepBenchResult = Record<StepState, Record<string, { wasmNs: number; twinNs: number }>>;

export interface StepBenchOptions {
  /** View sizes to measure. Default 3, 9, 32, 64. */
  members?: number[];
  /** Time spent measuring each case, in seconds. Default 0.5. */
  maxTimeS?: number;
  onProgress?: (msg: string) => void;
}

/** Whether this build's protocol evaluates its predicates with kernels (ts/kernels/membership.ts exists). */
export const protocolReads: 'kernels' | 'js' =
  existsSync(new URL('../ts/kernels/membership.js', import.meta.url)) ? 'kernels' : 'js';

const dropAll: TableFabric = {
  write: () => WriteStatus.Ok, writeBatch: () => WriteStatus.Ok, writeAll: () => 0,
};

/** The twins over `memory`, or null in a build that has none (it reads the table in JS). */
async function twinsOver(memory: WebAssembly.Memory): Promise<unknown> {
  const path = '../ts/kernels/membership-reference.js'; // a variable: a build without it still compiles
  if (protocolReads === 'js') return null;
  const module = await import(path) as { membershipReferenceKernels(m: WebAssembly.Memory): unknown };
  return module.membershipReferenceKernels(memory);
}

/** The leader's protocol (member 0) over a hand-written table of `n` members, brought to `state`. */
function leaderIn(state: StepState, n: number, arena: Arena, kernels: unknown): ViewChangeProtocol {
  const ids = Array.from({ length: n }, (_, i) => i);
  const config = validateGroupConfig({
    members: ids.map((id) => ({ id, address: `127.0.0.1:${7000 + id}` })),
    subgroups: { log: { shards: 1, members: { min: 1, max: n }, maxSmcPayload: 64, window: 16 } },
  });
  const plans = planView(config, ids);
  const layout = new SstLayout(multicastColumns(plans, n, 0), ids);
  arena.u8.fill(0, layout.base, layout.base + layout.tableBytes);
  // Not a literal: a build whose ProtocolParts has no `kernels` still compiles this, and ignores them.
  const parts = { arena, layout, fabric: dropAll, selfId: 0, view: { vid: 0, members: ids }, plans, wedge: () => {},
    kernels };
  const protocol = new ViewChangeProtocol(parts as ProtocolParts);
  if (state === 'calm') return protocol;
  const i32At = (r: number, name: string) => layout.offsetOf(r, layout.column(name)) >> 2;
  const setRow = (r: number, name: string, v: number) => Atomics.store(arena.i32, i32At(r, name), v);
  protocol.suspect(n - 1); // the leader wedges, and its next step proposes removing member n − 1
  protocol.step();
  const proposal = Atomics.load(arena.i32, i32At(0, 'proposal'));
  if (state === 'awaiting-acks') return protocol;
  for (let r = 1; r < n - 1; r++) { // every member of the next view acknowledged, wedged, as their pushes say
    Atomics.store(arena.u8, layout.offsetOf(r, layout.column('wedged')), 1);
    Atomics.store(arena.u8, layout.offsetOf(r, layout.column('changes'), n - 1), 1);
    setRow(r, 'proposer', 1);
    setRow(r, 'proposal', proposal);
  }
  protocol.step(); // the leader publishes its trim; nobody copies it
  return protocol;
}

export async function runStepBench(options: StepBenchOptions = {}): Promise<StepBenchResult> {
  const sizes = options.members ?? [3, 9, 32, 64];
  const maxTime = options.maxTimeS ?? 0.5;
  const onProgress = options.onProgress ?? (() => {});
  const result = {} as StepBenchResult;
  for (const state of ['calm', 'awaiting-acks', 'awaiting-trim'] as const) {
    result[state] = {};
    for (const n of sizes) {
      const arenas = [Arena.create({ memberId: 0, bytes: 4 << 20 }), Arena.create({ memberId: 0, bytes: 4 << 20 })];
      const wasmLeader = leaderIn(state, n, arenas[0]!, loadKernels(arenas[0]!.memory));
      const twinLeader = leaderIn(state, n, arenas[1]!, await twinsOver(arenas[1]!.memory));
      for (const leader of [wasmLeader, twinLeader]) {
        if (leader.step() !== null) throw new Error(`membership-step bench: the ${state} step acted`);
      }
      const log = console.log;
      console.log = (...parts: unknown[]) => onProgress(parts.join(' '));
      let summary: Awaited<ReturnType<typeof suite>>;
      try {
        summary = await suite(`${state} × ${n} members`,
          configure({ cases: { minTime: maxTime / 10, maxTime, minSamples: 10 } }),
          add('wasm', () => { wasmLeader.step(); }),
          add('twin', () => { twinLeader.step(); }),
          cycle((r) => { onProgress(`${state} × ${n}, ${r.name}: ${(1e9 * r.details.mean).toFixed(0)} ns/step`); }),
        );
      } finally {
        console.log = log;
      }
      const nsOf = (name: string) => Number((1e9 * summary.results.find((r) => r.name === name)!.details.mean)
        .toFixed(0));
      result[state][String(n)] = { wasmNs: nsOf('wasm'), twinNs: nsOf('twin') };
    }
  }
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const members = process.argv.slice(2).map(Number);
  const steps = await runStepBench({
    ...(members.length > 0 ? { members } : {}), onProgress: (msg) => process.stderr.write(msg + '\n'),
  });
  process.stdout.write(JSON.stringify({ protocolReads, steps }) + '\n');
}
