// Picks the cluster state from configuration: Redis when a URL is set, else in-process. The Redis
// module (and ioredis) loads only when chosen.
import type { Logger } from '../log.ts'
import type { ClusterState } from './cluster.ts'
import { createMemoryCluster } from './memory.ts'

export interface ClusterStateConfig {
  /** TRIBUTARY_REDIS_URL; undefined or empty: in-process state (one process). */
  readonly redisUrl: string | undefined
  /** This process's instance id; a fresh UUIDv7 when omitted. */
  readonly instance?: string
}

export async function createClusterState(config: ClusterStateConfig, log: Logger): Promise<ClusterState> {
  const instance = config.instance === undefined ? {} : { instance: config.instance }
  if (config.redisUrl !== undefined && config.redisUrl !== '') {
    const { createRedisCluster } = await import('./redis.ts')
    return createRedisCluster({ url: config.redisUrl, log, ...instance })
  }
  return createMemoryCluster({ log, ...instance })
}
