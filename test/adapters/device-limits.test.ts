// The per-device limits every adapter shares: the message rate on the in-process cluster state (one
// bucket per device whatever the protocol, tenant quota over the default, failing open) and the
// throttled, background last-seen writes (retried after a failure, bounded in memory).
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLastSeen, createRateLimiter, rateKey } from '../../adapters/device-limits.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../core/cluster/memory.ts'
import { TributaryError } from '../../core/errors.ts'
import { createLogger, silentLogger } from '../../core/log.ts'
import type { Tenant } from '../../core/registry/model.ts'
import { deferred } from '../helpers/wait.ts'

const tenantWith = (maxMessagesPerSecond: number | null): Tenant =>
  ({ id: 'acme', quotas: { maxDevices: null, maxMessagesPerSecond } }) as Tenant

const clusters: ClusterState[] = []
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.stop()))
})

async function memoryCluster(): Promise<ClusterState> {
  const cluster = createMemoryCluster({ log: silentLogger })
  await cluster.start()
  clusters.push(cluster)
  return cluster
}

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    },
  })
  return { log: createLogger({ level: 'debug', destination }), lines }
}

describe('createRateLimiter', () => {
  it.each([2, 3])(
    'lets a device burst to twice the default rate (%i/s), then says when to retry',
    async (defaultRate) => {
      const limiter = createRateLimiter({
        cluster: await memoryCluster(),
        tenant: async () => tenantWith(null),
        defaultRate,
        log: silentLogger,
      })
      const decisions = []
      for (let i = 0; i < 2 * defaultRate + 2; i++) decisions.push(await limiter.take('acme', 'd1'))
      expect(decisions.map((d) => d.allowed)).toEqual([
        ...Array<boolean>(2 * defaultRate).fill(true),
        false,
        false,
      ])
      const refused = decisions.at(-1)!
      expect(refused.retryAfterMs).toBeGreaterThan(0)
      // One token comes back every 1/rate seconds.
      expect(refused.retryAfterMs).toBeLessThanOrEqual(Math.ceil(1000 / defaultRate) + 1)
      // Another device has its own bucket.
      expect((await limiter.take('acme', 'd2')).allowed).toBe(true)
    },
  )

  it("uses each tenant's maxMessagesPerSecond over the default, and a quota of 0 stops its devices", async () => {
    const quotas: Record<string, number | null> = { slow: 1, stopped: 0 }
    const limiter = createRateLimiter({
      cluster: await memoryCluster(),
      tenant: async (id) => tenantWith(quotas[id] ?? null),
      defaultRate: 1000,
      log: silentLogger,
    })
    const slow = []
    for (let i = 0; i < 4; i++) slow.push((await limiter.take('slow', 'd')).allowed)
    expect(slow).toEqual([true, true, false, false])
    expect(await limiter.take('stopped', 'd')).toEqual({ allowed: false, retryAfterMs: 1_000 })
    // A tenant without a quota gets the default.
    const fast = []
    for (let i = 0; i < 4; i++) fast.push((await limiter.take('other', 'd')).allowed)
    expect(fast).toEqual([true, true, true, true])
  })

  it('keys the bucket rate:<tenant>/<device>, so every protocol takes from the same one', async () => {
    expect(rateKey('acme', 'd')).toBe('rate:acme/d')
    const cluster = await memoryCluster()
    const limiter = createRateLimiter({
      cluster,
      tenant: async () => tenantWith(1),
      defaultRate: 1,
      log: silentLogger,
    })
    // What another adapter (or another instance) took from the device's bucket counts here too.
    await cluster.take('rate:acme/shared', 1, 2, 2)
    expect((await limiter.take('acme', 'shared')).allowed).toBe(false)
    await cluster.take(rateKey('acme', 'd'), 1, 2)
    await cluster.take(rateKey('acme', 'd'), 1, 2)
    expect((await limiter.take('acme', 'd')).allowed).toBe(false)
  })

  it.each([
    ['a TributaryError', new TributaryError('CLUSTER_UNAVAILABLE', 'redis is down')],
    ['any other error', new Error('redis down')],
  ])('fails open when the cluster state fails with %s', async (_name, err) => {
    const limiter = createRateLimiter({
      cluster: { take: () => Promise.reject(err) },
      tenant: async () => tenantWith(null),
      defaultRate: 1,
      log: silentLogger,
    })
    expect(await limiter.take('acme', 'd')).toEqual({ allowed: true, retryAfterMs: 0 })
  })

  it('fails open when the tenant cannot be read, and logs the failure once, not per message', async () => {
    const { log, lines } = capturedLogger()
    const limiter = createRateLimiter({
      cluster: await memoryCluster(),
      tenant: () => Promise.reject(new TributaryError('REGISTRY_UNAVAILABLE', 'database down')),
      defaultRate: 1,
      log,
    })
    for (let i = 0; i < 3; i++)
      expect(await limiter.take('acme', 'd')).toEqual({ allowed: true, retryAfterMs: 0 })
    expect(lines.filter((l) => l['level'] === 'warn')).toHaveLength(1)
  })
})

describe('createLastSeen', () => {
  it('writes each device at most once per interval, at the time given or now', async () => {
    let clock = 1_000
    const writes: string[] = []
    const lastSeen = createLastSeen({
      touch: async (t, d, at) => void writes.push(`${t}/${d}@${at.getTime()}`),
      intervalMs: 60_000,
      log: silentLogger,
      now: () => clock,
    })
    lastSeen.seen('acme', 'a')
    lastSeen.seen('acme', 'a')
    lastSeen.seen('acme', 'b')
    // A receipt time the caller passes (HTTP, TTN) is what the registry gets.
    lastSeen.seen('acme', 'c', new Date(500))
    clock += 59_999
    lastSeen.seen('acme', 'a')
    clock += 1
    lastSeen.seen('acme', 'a')
    await lastSeen.flush()
    expect(writes).toEqual(['acme/a@1000', 'acme/b@1000', 'acme/c@500', 'acme/a@61000'])
  })

  it('tries again on the next sighting after a failed write, and survives it', async () => {
    const failed = deferred()
    const writes: string[] = []
    const { log, lines } = capturedLogger()
    const lastSeen = createLastSeen({
      touch: async (_t, d) => {
        writes.push(d)
        if (writes.length === 1) {
          failed.resolve()
          throw new Error('database down')
        }
      },
      intervalMs: 60_000,
      log,
    })
    lastSeen.seen('acme', 'd1')
    await failed.promise
    await lastSeen.flush()
    lastSeen.seen('acme', 'd1')
    // Written now: throttled again.
    lastSeen.seen('acme', 'd1')
    await lastSeen.flush()
    expect(writes).toEqual(['d1', 'd1'])
    expect(lines.filter((l) => l['msg'] === 'could not record the last-seen time')).toHaveLength(1)
  })

  it('forgets the oldest devices past its bound, so they are written again early', async () => {
    const writes: string[] = []
    const lastSeen = createLastSeen({
      touch: async (_t, d) => void writes.push(d),
      intervalMs: 60_000,
      log: silentLogger,
      maxEntries: 2,
      now: () => 0,
    })
    for (const d of ['a', 'b', 'c', 'a', 'c']) lastSeen.seen('acme', d)
    await lastSeen.flush()
    // 'a' was pushed out by 'c', so it is written again; 'c' is still remembered.
    expect(writes).toEqual(['a', 'b', 'c', 'a'])
  })

  it('stays bounded under many devices', async () => {
    let writes = 0
    const lastSeen = createLastSeen({
      touch: async () => void writes++,
      intervalMs: 60_000,
      log: silentLogger,
      maxEntries: 10,
      now: () => 0,
    })
    for (let i = 0; i < 25; i++) lastSeen.seen('acme', `d${i}`)
    // d24 is among the ten remembered; d0 was forgotten long ago.
    lastSeen.seen('acme', 'd24')
    lastSeen.seen('acme', 'd0')
    await lastSeen.flush()
    expect(writes).toBe(26)
  })

  it('flush waits for the writes in flight', async () => {
    const release = deferred()
    let done = false
    const lastSeen = createLastSeen({
      touch: async () => {
        await release.promise
        done = true
      },
      intervalMs: 60_000,
      log: silentLogger,
    })
    lastSeen.seen('acme', 'd1')
    let flushed = false
    const flushing = lastSeen.flush().then(() => (flushed = true))
    await new Promise((resolve) => setImmediate(resolve))
    expect(flushed).toBe(false)
    release.resolve()
    await flushing
    expect(done).toBe(true)
  })
})
