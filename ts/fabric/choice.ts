// Which native backend a member runs on, chosen per member (RuntimeOptions.fabric, and the `fabric` option of
// SstMember, RdmcNode and Group.join) or for a whole process tree by the environment:
//
//   SQUALL_FABRIC=libfabric            every member created without a `fabric` option uses libfabric
//   SQUALL_FABRIC_PROVIDER=tcp         its provider (default 'tcp'; 'verbs' on RDMA hardware, 'shm' on one
//                                      machine; a '+msg' or '+rma' suffix picks the mode, docs/rdma.md)
//
// The environment is read here and nowhere else, when a member is created (so child processes of the test
// harness and the benchmarks, which inherit it, follow their parent). Members of one group must all use the
// same backend and provider: a tcp member and a libfabric member cannot connect.

import { ConfigError } from '../errors.js';

export interface FabricChoice {
  /** 'tcp' (kernel sockets, the default) or 'libfabric' (docs/rdma.md). */
  backend: 'tcp' | 'libfabric';
  /** libfabric provider for backend 'libfabric' (default 'tcp'); must be absent for backend 'tcp'. */
  provider?: string;
}

export const FABRIC_ENV = 'SQUALL_FABRIC';
export const FABRIC_PROVIDER_ENV = 'SQUALL_FABRIC_PROVIDER';

/** `choice` when given (checked), else the environment's choice, else tcp. */
export function resolveFabricChoice(
  choice: FabricChoice | undefined, env: NodeJS.ProcessEnv = process.env
): FabricChoice {
  if (choice !== undefined) return checkFabricChoice(choice, 'fabric');
  const backend = env[FABRIC_ENV];
  const provider = env[FABRIC_PROVIDER_ENV];
  if (backend === undefined || backend === '') {
    if (provider) {
      throw new ConfigError(
        `${FABRIC_PROVIDER_ENV}=${provider} is set but ${FABRIC_ENV} is not: set ${FABRIC_ENV}=libfabric too, or ` +
          `unset ${FABRIC_PROVIDER_ENV}`);
    }
    return { backend: 'tcp' };
  }
  if (backend !== 'tcp' && backend !== 'libfabric') {
    throw new ConfigError(`${FABRIC_ENV} must be 'tcp' or 'libfabric', got '${backend}'`);
  }
  if (backend === 'tcp') {
    if (provider) {
      throw new ConfigError(
        `${FABRIC_PROVIDER_ENV} applies to ${FABRIC_ENV}=libfabric only, but ${FABRIC_ENV}=tcp: ` +
          `unset ${FABRIC_PROVIDER_ENV}`);
    }
    return { backend };
  }
  return provider ? { backend, provider } : { backend };
}

/** Checks a choice from an options object or the command line (`what` names it in messages). */
export function checkFabricChoice(choice: FabricChoice, what: string): FabricChoice {
  if (choice === null || typeof choice !== 'object') {
    throw new ConfigError(
      `${what} must be an object like { backend: 'libfabric', provider: 'tcp' }, got ${String(choice)}`);
  }
  const { backend, provider } = choice;
  if (backend !== 'tcp' && backend !== 'libfabric') {
    throw new ConfigError(`${what}.backend must be 'tcp' or 'libfabric', got ${String(backend)}`);
  }
  if (provider !== undefined) {
    if (backend !== 'libfabric') {
      throw new ConfigError(
        `${what}.provider applies to backend 'libfabric' only: set backend: 'libfabric' or drop provider`);
    }
    if (typeof provider !== 'string' || provider === '') {
      throw new ConfigError(
        `${what}.provider must be a libfabric provider name like 'tcp' or 'verbs', got ${String(provider)}`);
    }
    return { backend, provider };
  }
  return { backend };
}

/** The `--fabric tcp|libfabric [--provider P]` options of the CLI; undefined when neither was given. */
export function fabricChoiceFromFlags(
  fabric: string | undefined, provider: string | undefined,
): FabricChoice | undefined {
  if (fabric === undefined) {
    if (provider !== undefined) throw new ConfigError(`--provider ${provider} needs --fabric libfabric`);
    return undefined;
  }
  if (fabric !== 'tcp' && fabric !== 'libfabric') {
    throw new ConfigError(`--fabric must be 'tcp' or 'libfabric', got '${fabric}'`);
  }
  if (provider !== undefined && fabric !== 'libfabric') {
    throw new ConfigError('--provider applies to --fabric libfabric only');
  }
  return checkFabricChoice(provider !== undefined ? { backend: fabric, provider } : { backend: fabric }, '--fabric');
}

/** 'tcp' or 'libfabric/<provider>', for reports. */
export function describeFabric(choice: FabricChoice): string {
  return choice.backend === 'tcp' ? 'tcp' : `libfabric/${choice.provider ?? 'tcp'}`;
}
