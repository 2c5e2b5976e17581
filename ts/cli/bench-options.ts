// The options every `squall bench` benchmark shares (ts/cli/bench.ts, ts/cli/bench-restart.ts), and how they are read.

import { fabricChoiceFromFlags, resolveFabricChoice, type FabricChoice } from '../fabric/choice.js';
import { checkFabricUsable } from '../fabric/native.js';
import { MAX_TIMEOUT_MS } from '../group/config.js';
import { checkShardEngine, shardEngineFromEnv } from '../group/join-options.js';
import type { OptionSpec } from './args.js';
import { parsePositiveInt } from './units.js';

/** Every benchmark takes these: the members' native backend. */
export const FABRIC_OPTIONS = {
  fabric: {
    type: 'string', value: 'tcp|libfabric', help: "the members' native backend (default SQUALL_FABRIC, else tcp)",
  },
  provider: {
    type: 'string', value: 'P',
    help: "libfabric's provider (default tcp): verbs on RDMA hardware, shm on one machine;\n" +
      "P+msg for messages instead of one-sided writes. Results name the mode (docs/rdma.md)",
  },
} as const satisfies Record<string, OptionSpec>;

/** The benchmarks that start members with failure detection take this. */
export const SUSPICION_OPTION = {
  type: 'string', value: 'MS',
  help: "the members' suspicion timeout: a heartbeat stalled this long gets a member removed",
} as const satisfies OptionSpec;

/** --engine: which thread steps the ordered shards and the view-change protocol (engineOf). */
export const ENGINE_OPTION = {
  type: 'string', value: 'main|worker',
  help: 'which thread steps the ordered shards and view changes (Group.join shardEngine; default\n' +
    'SQUALL_SHARD_ENGINE, else worker)',
} as const satisfies OptionSpec;

/** --engine as the member processes' SQUALL_SHARD_ENGINE (they inherit it); absent: the environment's. */
export function engineOf(values: { engine?: string | undefined }): 'main' | 'worker' {
  if (values.engine !== undefined) {
    checkShardEngine(values.engine, '--engine');
    process.env['SQUALL_SHARD_ENGINE'] = values.engine;
  }
  return shardEngineFromEnv();
}

export const JSON_OPTION = {
  type: 'boolean', help: 'print the result as JSON on stdout (progress stays on stderr)',
} as const satisfies OptionSpec;

/** --fabric/--provider, else the environment; fails here (not in every child) when it cannot work. */
export function fabricOf(values: { fabric?: string | undefined; provider?: string | undefined }): FabricChoice {
  const choice = resolveFabricChoice(fabricChoiceFromFlags(values.fabric, values.provider));
  checkFabricUsable(choice);
  return choice;
}

/** --suspicion MS as the members' suspicionTimeoutMs; absent: the benchmark's own default. */
export function suspicionOf(values: { suspicion?: string | undefined }): { suspicionTimeoutMs?: number } {
  return values.suspicion === undefined ? {}
    : { suspicionTimeoutMs: parsePositiveInt(values.suspicion, 'suspicion', 0, MAX_TIMEOUT_MS) };
}
