// squall's public API.

// Every error class of the README's error table (test/exports.test.ts checks them against it).
export {
  SquallError, ConfigError, BuildError, NativeUnavailableError, ArenaError, PeerFailedError, TimeoutError, ClosedError,
  MessageTooLargeError, CodecError, UnknownMethodError, NotAQueryError, RemoteMethodError, PartitionedError,
  RemovedError, JoinError, AuthError, StateTransferError, OverloadedError, PersistError,
} from './errors.js';
export type { SquallErrorCode } from './errors.js';
export { Arena } from './arena.js';
export type { ArenaOptions } from './arena.js';
export type { Fabric, FabricOptions, FabricStats, Grant } from './fabric/fabric.js';
export type { ConnectionState, FabricConnection, FabricStatus } from './fabric/connections.js';
export { GrantKind, Lane, WriteStatus } from './fabric/fabric.js';
export { SstMember } from './sst/member.js';
export type { MemberAddress } from './fabric/peers.js';
export type { SstListenOptions, SstStartOptions, SstEvents, TableTrigger } from './sst/member.js';
export { SstLayout, HEARTBEAT_COLUMN } from './sst/layout.js';
export type { ColumnSpec, ColumnSpecs, Column } from './sst/layout.js';
export type { PredicateSpec, PredicateKind, Reduction, Test } from './sst/predicates.js';
export { validateSstConfig, loadSstConfig } from './sst/config.js';
export type { SstConfig } from './sst/config.js';
export { RdmcNode, RdmcGroup } from './rdmc/node.js';
export type { RdmcListenOptions, RdmcStartOptions, RdmcMessageInfo, RdmcGroupEvents } from './rdmc/node.js';
export type { RdmcGroupSpec } from './rdmc/layout.js';
export type { AlgorithmName } from './rdmc/schedule.js';
// EmulatedNetwork (ts/netns), the process harness (ts/harness) and the simulator (ts/sim) are the tests',
// the benchmarks' and the CLI's, not the library's: they are not exported. EmulatedNetworkError is, because
// `squall bench --netns` can end with it.
export { EmulatedNetworkError } from './errors.js';
export { ReplicatedObject } from './objects/replicated-object.js';
export type {
  ReplicatedObjectOptions, ReplicatedType, OrderedMethods, QueryMethods, QueryName, MethodName,
} from './objects/replicated-object.js';
export type { Reply } from './objects/caller.js';
export { formatVersion, parseVersion, versionParts } from './objects/version.js';
export type { OrderedChannel } from './objects/channel.js';
export { LoopbackShard } from './objects/loopback-channel.js';
export type { LoopbackShardOptions } from './objects/loopback-channel.js';
export { validateGroupConfig, loadGroupConfig } from './group/config.js';
export type { GroupConfig, GroupMember } from './group/config.js';
export { planView, MULTICAST_DEFAULTS } from './membership/plans.js';
export type { SubgroupConfig, ExplicitShard, DeliveryMode, SubgroupPlan, ShardPlan } from './membership/plans.js';
export { Group } from './group/group.js';
export { generateSecret, MIN_SECRET_BYTES } from './group/credential.js';
export type { JoinOptions, View, GroupEvents, ReplicatedClass } from './group/group.js';
export type { ProtocolEvent } from './group/events.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './group/logging.js';
export { registerMetrics } from './group/metrics.js';
export { serveAdmin, inspectMember, type Inspection } from './group/admin.js';
export type { SubgroupChannel } from './group/subgroup-channel.js';
export type { MembershipRow } from './group/view-engine.js';
export type { FabricChoice } from './fabric/choice.js';
export type { ShardChannel, DeliverHandler } from './multicast/shard.js';
export { TicketBook } from './examples/ticket-book.js';
export { KeyValueStore } from './examples/key-value-store.js';
