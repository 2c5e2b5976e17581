// squall's public API.

export { SquallError, ConfigError, BuildError, NativeUnavailableError, ArenaError, PeerFailedError, TimeoutError, ClosedError } from './errors.js';
export type { SquallErrorCode } from './errors.js';
export { Arena } from './arena.js';
export type { ArenaOptions } from './arena.js';
export type { Fabric, FabricOptions, FabricStats, Grant } from './fabric/fabric.js';
export { GrantKind, WriteStatus } from './fabric/fabric.js';
export { SstMember } from './sst/member.js';
export type { MemberAddress, SstListenOptions, SstStartOptions, SstEvents, TableTrigger } from './sst/member.js';
export { SstLayout, HEARTBEAT_COLUMN } from './sst/layout.js';
export type { ColumnSpec, ColumnSpecs, Column } from './sst/layout.js';
export type { PredicateSpec, PredicateKind, Reduction, Test } from './sst/predicates.js';
export { validateSstConfig, loadSstConfig } from './sst/config.js';
export type { SstConfig } from './sst/config.js';
