// The cluster state factory's choice and the options both implementations refuse up front (no
// Redis needed: the Redis state connects only on start).
import { describe, expect, it } from 'vitest'
import { createClusterState } from '../../../core/cluster/factory.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { createRedisCluster } from '../../../core/cluster/redis.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { uuidv7Time } from '../../../core/events/ids.ts'
import { silentLogger as log } from '../../../core/log.ts'

function codeOf(create: () => unknown): unknown {
  try {
    create()
  } catch (err) {
    return isTributaryError(err) ? err.code : err
  }
  return undefined
}

describe('createClusterState', () => {
  it('is in-process without a Redis URL and Redis with one', async () => {
    expect((await createClusterState({ redisUrl: undefined }, log)).kind).toBe('memory')
    expect((await createClusterState({ redisUrl: '' }, log)).kind).toBe('memory')
    const redis = await createClusterState({ redisUrl: 'redis://127.0.0.1:6379', instance: 'proc-1' }, log)
    expect(redis.kind).toBe('redis')
    expect(redis.instance).toBe('proc-1')
  })

  it('names each instance with a fresh UUIDv7 unless told', async () => {
    const before = Date.now()
    const a = await createClusterState({ redisUrl: undefined }, log)
    const b = await createClusterState({ redisUrl: undefined }, log)
    expect(a.instance).not.toBe(b.instance)
    expect(uuidv7Time(a.instance)).toBeGreaterThanOrEqual(before)
    expect(createMemoryCluster({ log, instance: 'fixed' }).instance).toBe('fixed')
  })

  it('refuses bad instance ids, prefixes and timings as configuration errors', () => {
    const url = 'redis://127.0.0.1:6379'
    expect(codeOf(() => createMemoryCluster({ log, instance: 'a:b' }))).toBe('CONFIG_INVALID')
    expect(codeOf(() => createRedisCluster({ url, log, instance: '' }))).toBe('CONFIG_INVALID')
    expect(codeOf(() => createRedisCluster({ url, log, keyPrefix: 'has space' }))).toBe('CONFIG_INVALID')
    expect(codeOf(() => createRedisCluster({ url, log, heartbeatMs: 0 }))).toBe('CONFIG_INVALID')
    expect(codeOf(() => createRedisCluster({ url, log, commandTimeoutMs: 1.5 }))).toBe('CONFIG_INVALID')
    expect(codeOf(() => createRedisCluster({ url, log, heartbeatMs: 50 }))).toBeUndefined()
  })
})
