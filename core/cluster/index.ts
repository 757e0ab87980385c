// The cluster state's public surface: the port, its factory and both implementations' options.
export type * from './cluster.ts'
export { createClusterState } from './factory.ts'
export type { ClusterStateConfig } from './factory.ts'
export { createMemoryCluster } from './memory.ts'
export type { MemoryClusterOptions } from './memory.ts'
export type { RedisClusterOptions } from './redis.ts'
