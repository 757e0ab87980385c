// The ClusterState implementations the contract suite runs against. A harness opens instances that
// share one state: separate Redis clusters on one key prefix stand for separate processes; the
// in-process state has only one instance, so its "other view" is the instance itself.
import { Redis } from 'ioredis'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { createRedisCluster } from '../../../core/cluster/redis.ts'
import { silentLogger } from '../../../core/log.ts'
import { uniqueName } from '../../helpers/wait.ts'

export interface OpenOptions {
  readonly heartbeatMs?: number
  /** Connect somewhere else than the harness's Redis (a proxy in front of it). */
  readonly url?: string
}

export interface ClusterHarness {
  readonly name: ClusterState['kind']
  /** Creates and starts an instance. */
  open(options?: OpenOptions): Promise<ClusterState>
  /** An instance to look at the shared state from outside `of`; for memory, `of` itself. */
  observer(of: ClusterState): Promise<ClusterState>
  /** Stops every instance it opened and removes what they left in Redis. */
  destroy(): Promise<void>
}

export function memoryHarness(): ClusterHarness {
  const opened: ClusterState[] = []
  return {
    name: 'memory',
    async open() {
      const cluster = createMemoryCluster({ log: silentLogger })
      await cluster.start()
      opened.push(cluster)
      return cluster
    },
    observer: async (of) => of,
    destroy: async () => {
      await Promise.all(opened.map((c) => c.stop()))
    },
  }
}

export interface RedisHarness extends ClusterHarness {
  readonly prefix: string
  /** Every key under the harness's prefix. */
  keys(): Promise<string[]>
  /** Deletes an instance's heartbeat key, as if its beats had stopped reaching Redis. */
  lapse(instance: string): Promise<void>
}

export function redisHarness(url: string): RedisHarness {
  const prefix = `${uniqueName('tributary-test')}:`
  const opened: ClusterState[] = []
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  let watcher: ClusterState | undefined

  async function open(options: OpenOptions = {}): Promise<ClusterState> {
    const cluster = createRedisCluster({
      url: options.url ?? url,
      log: silentLogger,
      keyPrefix: prefix,
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    })
    await cluster.start()
    opened.push(cluster)
    return cluster
  }

  async function connected(): Promise<Redis> {
    if (admin.status === 'wait') await admin.connect()
    return admin
  }

  async function keys(): Promise<string[]> {
    await connected()
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      found.push(...batch)
      cursor = next
    } while (cursor !== '0')
    return found
  }

  return {
    name: 'redis',
    prefix,
    open,
    keys,
    async lapse(instance) {
      await (await connected()).del(`${prefix}instance:${instance}:alive`)
    },
    async observer() {
      watcher ??= await open()
      return watcher
    },
    async destroy() {
      await Promise.all(opened.map((c) => c.stop()))
      const left = await keys()
      if (left.length > 0) await admin.del(...left)
      await admin.quit()
    },
  }
}
