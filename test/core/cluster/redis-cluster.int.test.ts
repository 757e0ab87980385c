// How the Redis cluster state behaves when Redis is not there: nothing answering at start, Redis
// going away under a running instance (and coming back), and a Redis that hangs. Every failure
// must be CLUSTER_UNAVAILABLE, and soon.
import { Redis } from 'ioredis'
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest'
import type { ClusterState, TakeoverNotice } from '../../../core/cluster/cluster.ts'
import { createRedisCluster } from '../../../core/cluster/redis.ts'
import type { TributaryError } from '../../../core/errors.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { TcpProxy } from './tcp-proxy.ts'
import { startTcpProxy } from './tcp-proxy.ts'

const prefix = `${uniqueName('tributary-int')}:`
const opened: ClusterState[] = []
const proxies: TcpProxy[] = []

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.stop()))
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})

// A stop against a hung Redis cannot delete its heartbeat; it would expire, but leave nothing.
afterAll(async () => {
  const admin = new Redis(inject('redisUrl'))
  try {
    const left = await admin.keys(`${prefix}*`)
    if (left.length > 0) await admin.del(...left)
  } finally {
    await admin.quit()
  }
})

function cluster(url: string, options: { commandTimeoutMs?: number; connectTimeoutMs?: number } = {}) {
  const created = createRedisCluster({ url, log: silentLogger, keyPrefix: prefix, ...options })
  opened.push(created)
  return created
}

async function proxy(): Promise<TcpProxy> {
  const started = await startTcpProxy(inject('redisUrl'))
  proxies.push(started)
  return started
}

/** Runs `call`, expects CLUSTER_UNAVAILABLE, and returns the error and how long it took. */
async function unavailable(call: () => Promise<unknown>): Promise<{ err: TributaryError; ms: number }> {
  const begin = performance.now()
  const err: unknown = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  const ms = performance.now() - begin
  if (!isTributaryError(err, 'CLUSTER_UNAVAILABLE'))
    throw new Error(`expected CLUSTER_UNAVAILABLE, got ${String(err)}`)
  return { err, ms }
}

describe('Redis cluster state without Redis', () => {
  it('fails to start at once when nothing answers, naming the address, and fails calls the same way', async () => {
    const dead = cluster('redis://:hunter2@127.0.0.1:1')
    const { err, ms } = await unavailable(() => dead.start())
    expect(ms).toBeLessThan(1_000)
    expect(err.status).toBe(503)
    expect(err.canRetry).toBe(true)
    expect(err.message).toContain('127.0.0.1:1')
    expect(err.message).not.toContain('hunter2')
    expect(err.cause).toBeInstanceOf(Error)
    const owner = { instance: 'i', connection: 'c' }
    expect((await unavailable(() => dead.take('k', 1, 1))).ms).toBeLessThan(250)
    expect((await unavailable(() => dead.claimSession({ tenant: 't', device: 'd' }, owner))).ms).toBeLessThan(
      250,
    )
    await dead.stop()
  })

  it('fails calls at once while Redis is away, then recovers, resubscribed, when it is back', async () => {
    const front = await proxy()
    const flaky = cluster(front.url)
    const steady = cluster(inject('redisUrl'))
    await Promise.all([flaky.start(), steady.start()])
    expect((await flaky.take(uniqueName('rate'), 10, 10)).allowed).toBe(true)

    await front.kill()
    expect((await unavailable(() => flaky.take(uniqueName('rate'), 10, 10))).ms).toBeLessThan(500)
    expect((await unavailable(() => flaky.acquireSlot(uniqueName('scope'), 'h', 3))).ms).toBeLessThan(500)
    expect((await unavailable(() => flaky.sessionOwner({ tenant: 't', device: 'd' }))).ms).toBeLessThan(500)

    await front.revive()
    await waitUntil(() =>
      flaky.take(uniqueName('rate'), 10, 10).then(
        (r) => r.allowed,
        () => false,
      ),
    )
    // Takeover notices reach the instance again once its subscriber connection is back.
    const notices: TakeoverNotice[] = []
    flaky.onTakeover((n) => notices.push(n))
    const key = { tenant: uniqueName('t'), device: 'd1' }
    let n = 0
    await waitUntil(async () => {
      n += 1
      await flaky.claimSession(key, { instance: flaky.instance, connection: `f${n}` })
      await steady.claimSession(key, { instance: steady.instance, connection: `s${n}` })
      return notices.length > 0
    })
    expect(notices[0]).toMatchObject({ ...key, by: { instance: steady.instance } })
  })

  it('reports itself unhealthy, naming the address, while Redis is away, and healthy once it is back', async () => {
    const front = await proxy()
    const url = new URL(front.url)
    const flaky = cluster(front.url)
    await flaky.start()
    expect(await flaky.health()).toEqual({ ok: true })
    await front.kill()
    await waitUntil(async () => !(await flaky.health()).ok)
    const down = await flaky.health()
    expect(down.reason).toMatch(new RegExp(`^Redis at 127\\.0\\.0\\.1:${url.port} is unreachable: `))
    await front.revive()
    await waitUntil(async () => (await flaky.health()).ok, { timeoutMs: 10_000 })
  })

  it('reports a hung Redis as not answering within the command timeout', async () => {
    const front = await proxy()
    const hung = cluster(front.url, { commandTimeoutMs: 300 })
    await hung.start()
    front.freeze()
    expect(await hung.health()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ does not answer: /),
    })
  })

  it('fails calls after the command timeout when Redis hangs, and still stops in bounded time', async () => {
    const front = await proxy()
    const hung = cluster(front.url, { commandTimeoutMs: 300 })
    await hung.start()
    front.freeze()
    const { ms, err } = await unavailable(() => hung.take(uniqueName('rate'), 10, 10))
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(1_500)
    expect(err.message).toMatch(/timed out/)
    const begin = performance.now()
    await hung.stop()
    expect(performance.now() - begin).toBeLessThan(3_000)
  })

  it('fails to start against a hung Redis within the timeouts', async () => {
    const front = await proxy()
    front.freeze()
    const hung = cluster(front.url, { connectTimeoutMs: 300, commandTimeoutMs: 300 })
    expect((await unavailable(() => hung.start())).ms).toBeLessThan(2_000)
  })
})
