// The ClusterState contract: the in-process state and Redis must pass all of the shared part; what
// only exists across processes (takeover notices, crashed instances) runs on Redis alone, with
// separate cluster instances standing for separate processes.
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ClusterState, SessionKey, TakeoverNotice } from '../../../core/cluster/cluster.ts'
import { MESSAGE_MAX_BYTES } from '../../../core/cluster/cluster.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { ClusterHarness, RedisHarness } from './implementations.ts'
import { memoryHarness, redisHarness } from './implementations.ts'
import { startTcpProxy } from './tcp-proxy.ts'

const harnesses: Array<{ name: string; make: () => ClusterHarness }> = [
  { name: 'memory', make: memoryHarness },
  { name: 'redis', make: () => redisHarness(inject('redisUrl')) },
]

const sessionKey = (): SessionKey => ({ tenant: uniqueName('t'), device: 'd1' })

async function failsWith(promise: Promise<unknown>, code: string): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isTributaryError(err) ? err.code : err).toBe(code)
}

describe.each(harnesses)('ClusterState contract: $name', ({ make }) => {
  let harness: ClusterHarness
  let cluster: ClusterState

  beforeAll(async () => {
    harness = make()
    cluster = await harness.open()
  })

  afterAll(async () => {
    await harness.destroy()
  })

  const owner = (connection: string, of: ClusterState = cluster) => ({ instance: of.instance, connection })

  describe('sessions', () => {
    it('returns the previous owner on claim, and the latest claimer owns the session', async () => {
      const key = sessionKey()
      expect(await cluster.sessionOwner(key)).toBeUndefined()
      expect(await cluster.claimSession(key, owner('c1'))).toBeUndefined()
      expect(await cluster.sessionOwner(key)).toEqual(owner('c1'))
      expect(await cluster.claimSession(key, owner('c2'))).toEqual(owner('c1'))
      expect(await cluster.sessionOwner(key)).toEqual(owner('c2'))
      // The same connection claiming again has nobody to close.
      expect(await cluster.claimSession(key, owner('c2'))).toBeUndefined()
    })

    it('ignores a release by a connection that no longer holds the session', async () => {
      const key = sessionKey()
      await cluster.claimSession(key, owner('old'))
      await cluster.claimSession(key, owner('new'))
      await cluster.releaseSession(key, owner('old'))
      expect(await cluster.sessionOwner(key)).toEqual(owner('new'))
      await cluster.releaseSession(key, { instance: 'some-other-instance', connection: 'new' })
      expect(await cluster.sessionOwner(key)).toEqual(owner('new'))
      await cluster.releaseSession(key, owner('new'))
      expect(await cluster.sessionOwner(key)).toBeUndefined()
      await cluster.releaseSession(key, owner('new'))
      expect(await cluster.claimSession(key, owner('later'))).toBeUndefined()
    })

    it('keeps the sessions of different devices and tenants apart', async () => {
      const a = sessionKey()
      const b = { tenant: a.tenant, device: 'd2' }
      const c = { tenant: uniqueName('t'), device: a.device }
      await cluster.claimSession(a, owner('a'))
      expect(await cluster.claimSession(b, owner('b'))).toBeUndefined()
      expect(await cluster.claimSession(c, owner('c'))).toBeUndefined()
      expect(await cluster.sessionOwner(a)).toEqual(owner('a'))
      await cluster.releaseSession(b, owner('b'))
      expect(await cluster.sessionOwner(a)).toEqual(owner('a'))
      expect(await cluster.sessionOwner(c)).toEqual(owner('c'))
    })

    it('refuses invalid identifiers before touching any state', async () => {
      await failsWith(
        cluster.claimSession({ tenant: 'Not A Tenant', device: 'd1' }, owner('c')),
        'IDENTIFIER_INVALID',
      )
      await failsWith(cluster.claimSession({ tenant: 'ok', device: 'a/b' }, owner('c')), 'IDENTIFIER_INVALID')
      await failsWith(cluster.sessionOwner({ tenant: 'ok', device: '' }), 'IDENTIFIER_INVALID')
      const key = sessionKey()
      await failsWith(
        cluster.claimSession(key, { instance: 'has space', connection: 'c' }),
        'IDENTIFIER_INVALID',
      )
      await failsWith(cluster.claimSession(key, owner('x'.repeat(257))), 'INTERNAL')
      expect(await cluster.sessionOwner(key)).toBeUndefined()
    })

    it('returns an unsubscribe function from onTakeover', () => {
      const unsubscribe = cluster.onTakeover(() => undefined)
      expect(typeof unsubscribe).toBe('function')
      unsubscribe()
      unsubscribe()
    })
  })

  describe('token buckets', () => {
    it('allows the burst, then refuses with retryAfterMs, and refills at the rate', async () => {
      const key = uniqueName('rate')
      for (let i = 0; i < 3; i++)
        expect(await cluster.take(key, 20, 3)).toEqual({ allowed: true, retryAfterMs: 0 })
      const refused = await cluster.take(key, 20, 3)
      expect(refused.allowed).toBe(false)
      // One token at 20/s takes at most 50 ms (+1 for early timers).
      expect(refused.retryAfterMs).toBeGreaterThan(0)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(51)
      // A refusal takes nothing: asking again is not worse off.
      const again = await cluster.take(key, 20, 3)
      expect(again.allowed).toBe(false)
      expect(again.retryAfterMs).toBeLessThanOrEqual(refused.retryAfterMs)
      await sleep(again.retryAfterMs)
      expect(await cluster.take(key, 20, 3)).toEqual({ allowed: true, retryAfterMs: 0 })
      expect((await cluster.take(key, 20, 3)).allowed).toBe(false)
    })

    it('never holds more than the burst', async () => {
      const key = uniqueName('rate')
      expect((await cluster.take(key, 20, 2, 2)).allowed).toBe(true)
      const empty = await cluster.take(key, 20, 2, 2)
      expect(empty.allowed).toBe(false)
      // Three times what a full refill needs: the bucket still holds only the burst.
      await sleep(empty.retryAfterMs * 3)
      expect((await cluster.take(key, 20, 2, 2)).allowed).toBe(true)
      expect((await cluster.take(key, 20, 2)).allowed).toBe(false)
    })

    it('charges the cost, keeps keys apart and lets a zero cost through', async () => {
      const key = uniqueName('rate')
      const other = uniqueName('rate')
      expect((await cluster.take(key, 10, 5, 5)).allowed).toBe(true)
      const refused = await cluster.take(key, 10, 5, 2)
      expect(refused.allowed).toBe(false)
      expect(refused.retryAfterMs).toBeGreaterThan(100)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(201)
      expect((await cluster.take(key, 10, 5, 0)).allowed).toBe(true)
      expect((await cluster.take(other, 10, 5, 5)).allowed).toBe(true)
    })

    it('refuses parameters no bucket could honour', async () => {
      const key = uniqueName('rate')
      await failsWith(cluster.take(key, 10, 2, 3), 'INTERNAL')
      await failsWith(cluster.take(key, 0, 2), 'INTERNAL')
      await failsWith(cluster.take(key, Number.NaN, 2), 'INTERNAL')
      await failsWith(cluster.take(key, 10, 0), 'INTERNAL')
      await failsWith(cluster.take('', 10, 2), 'INTERNAL')
      expect((await cluster.take(key, 10, 2, 2)).allowed).toBe(true)
    })
  })

  describe('slots', () => {
    it('lets exactly `limit` of many concurrent acquires through, from every instance', async () => {
      const scope = uniqueName('scope')
      const peers = [cluster, await harness.observer(cluster)]
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => peers[i % 2]!.acquireSlot(scope, `h${i}`, 5)),
      )
      expect(results.filter(Boolean)).toHaveLength(5)
      expect(await cluster.slots(scope)).toBe(5)
      expect(await peers[1]!.slots(scope)).toBe(5)
    })

    it('frees a slot on release, counts a holder once and keeps scopes apart', async () => {
      const scope = uniqueName('scope')
      const other = uniqueName('scope')
      expect(await cluster.acquireSlot(scope, 'a', 2)).toBe(true)
      expect(await cluster.acquireSlot(scope, 'a', 2)).toBe(true)
      expect(await cluster.slots(scope)).toBe(1)
      expect(await cluster.acquireSlot(scope, 'b', 2)).toBe(true)
      expect(await cluster.acquireSlot(scope, 'c', 2)).toBe(false)
      expect(await cluster.acquireSlot(other, 'c', 2)).toBe(true)
      await cluster.releaseSlot(scope, 'a')
      await cluster.releaseSlot(scope, 'a')
      expect(await cluster.slots(scope)).toBe(1)
      expect(await cluster.acquireSlot(scope, 'c', 2)).toBe(true)
      expect(await cluster.acquireSlot(scope, 'd', 2)).toBe(false)
      expect(await cluster.acquireSlot(uniqueName('scope'), 'x', 0)).toBe(false)
      expect(await cluster.slots(uniqueName('scope'))).toBe(0)
      await failsWith(cluster.acquireSlot(scope, 'e', -1), 'INTERNAL')
      await failsWith(cluster.acquireSlot(scope, '', 3), 'INTERNAL')
    })
  })

  describe('command routes, messages and values', () => {
    it('holds a route of this instance until it is removed, per device', async () => {
      const key = sessionKey()
      const other = { tenant: key.tenant, device: 'd2' }
      const observer = await harness.observer(cluster)
      expect(await observer.routes(key)).toEqual([])
      await cluster.addRoute(key)
      await cluster.addRoute(key)
      expect(await observer.routes(key)).toEqual([cluster.instance])
      expect(await observer.routes(other)).toEqual([])
      await cluster.removeRoute(key)
      expect(await observer.routes(key)).toEqual([])
      await failsWith(cluster.addRoute({ tenant: 'a/b', device: 'd' }), 'IDENTIFIER_INVALID')
    })

    it('delivers a message sent to this instance and a broadcast to its listeners of that topic only', async () => {
      const got: string[] = []
      const offA = cluster.onMessage('topic-a', (body) => got.push(`a:${body}`))
      const offB = cluster.onMessage('topic-b', (body) => got.push(`b:${body}`))
      await cluster.send(cluster.instance, 'topic-a', 'one')
      await cluster.broadcast('topic-b', 'two')
      await waitUntil(() => got.length === 2, { message: () => `got ${got.join()}` })
      expect(got.sort()).toEqual(['a:one', 'b:two'])
      offA()
      await cluster.send(cluster.instance, 'topic-a', 'lost')
      await cluster.broadcast('topic-b', 'three')
      await waitUntil(() => got.length === 3, { message: () => `got ${got.join()}` })
      expect(got.at(-1)).toBe('b:three')
      offB()
      await failsWith(cluster.send(cluster.instance, 'has space', 'x'), 'INTERNAL')
      await failsWith(cluster.broadcast('t', 'x'.repeat(MESSAGE_MAX_BYTES + 1)), 'INTERNAL')
    })

    it('keeps a value until its ttl lapses or it is deleted', async () => {
      const key = uniqueName('value')
      const observer = await harness.observer(cluster)
      expect(await observer.getValue(key)).toBeUndefined()
      await cluster.setValue(key, 'v1', 60_000)
      expect(await observer.getValue(key)).toBe('v1')
      await cluster.deleteValue(key)
      expect(await observer.getValue(key)).toBeUndefined()
      await cluster.deleteValue(key)
      await cluster.setValue(key, 'v1', 60_000)
      await cluster.setValue(key, 'v2', 30)
      expect(await observer.getValue(key)).toBe('v2')
      await waitUntil(async () => (await observer.getValue(key)) === undefined, {
        message: () => 'value lapsed',
      })
      await failsWith(cluster.setValue(key, 'v', 0), 'INTERNAL')
    })
  })

  describe('health', () => {
    it('is ok once started, and says so without throwing', async () => {
      expect(await cluster.health()).toEqual({ ok: true })
    })
  })

  describe('stop', () => {
    it('releases the sessions and slots of the stopped instance', async () => {
      const stopping = await harness.open()
      const observer = await harness.observer(stopping)
      const key = sessionKey()
      const scope = uniqueName('scope')
      await stopping.claimSession(key, owner('c1', stopping))
      await stopping.addRoute(key)
      expect(await stopping.acquireSlot(scope, 'h1', 3)).toBe(true)
      expect(await stopping.acquireSlot(scope, 'h2', 3)).toBe(true)
      expect(await observer.sessionOwner(key)).toEqual(owner('c1', stopping))
      expect(await observer.slots(scope)).toBe(2)
      await stopping.stop()
      expect(await observer.sessionOwner(key)).toBeUndefined()
      expect(await observer.routes(key)).toEqual([])
      expect(await observer.slots(scope)).toBe(0)
      await stopping.stop()
    })
  })
})

describe('ClusterState on Redis: across instances', () => {
  let harness: RedisHarness
  let a: ClusterState
  let b: ClusterState

  beforeAll(async () => {
    harness = redisHarness(inject('redisUrl'))
    a = await harness.open()
    b = await harness.open()
  })

  afterAll(async () => {
    await harness.destroy()
  })

  const owner = (of: ClusterState, connection: string) => ({ instance: of.instance, connection })

  it('tells the previous owner’s instance, and only it, that its session was taken over', async () => {
    const key = sessionKey()
    const atA: TakeoverNotice[] = []
    const atB: TakeoverNotice[] = []
    const offA = a.onTakeover((n) => atA.push(n))
    const offB = b.onTakeover((n) => atB.push(n))
    try {
      await a.claimSession(key, owner(a, 'c1'))
      expect(await b.claimSession(key, owner(b, 'c2'))).toEqual(owner(a, 'c1'))
      await waitUntil(() => atA.length === 1)
      expect(atA[0]).toEqual({ ...key, previous: owner(a, 'c1'), by: owner(b, 'c2') })

      expect(await a.claimSession(key, owner(a, 'c3'))).toEqual(owner(b, 'c2'))
      await waitUntil(() => atB.length === 1)
      expect(atB[0]).toEqual({ ...key, previous: owner(b, 'c2'), by: owner(a, 'c3') })

      // A takeover within one instance is the claimer's to handle: no notice. Notices on one
      // channel arrive in order, so the next one proves none came for this claim.
      expect(await a.claimSession(key, owner(a, 'c4'))).toEqual(owner(a, 'c3'))
      await b.claimSession(key, owner(b, 'c5'))
      await waitUntil(() => atA.length === 2)
      expect(atA[1]).toEqual({ ...key, previous: owner(a, 'c4'), by: owner(b, 'c5') })
      expect(atB).toHaveLength(1)
    } finally {
      offA()
      offB()
    }
  })

  it('stops telling a listener once it unsubscribed, and survives a listener that throws', async () => {
    const key = sessionKey()
    const kept: TakeoverNotice[] = []
    const dropped: TakeoverNotice[] = []
    const offThrowing = a.onTakeover(() => {
      throw new Error('listener bug')
    })
    const offKept = a.onTakeover((n) => kept.push(n))
    const offDropped = a.onTakeover((n) => dropped.push(n))
    try {
      await a.claimSession(key, owner(a, 'c1'))
      await b.claimSession(key, owner(b, 'c2'))
      await waitUntil(() => kept.length === 1 && dropped.length === 1)
      offDropped()
      await a.claimSession(key, owner(a, 'c3'))
      await b.claimSession(key, owner(b, 'c4'))
      await waitUntil(() => kept.length === 2)
      expect(dropped).toHaveLength(1)
    } finally {
      offThrowing()
      offKept()
    }
  })

  it('stop releases only what the stopped instance still holds', async () => {
    const c = await harness.open()
    const mine = sessionKey()
    const takenOver = sessionKey()
    await c.claimSession(mine, owner(c, 'c1'))
    await c.claimSession(takenOver, owner(c, 'c2'))
    await a.claimSession(takenOver, owner(a, 'a1'))
    await c.stop()
    expect(await a.sessionOwner(mine)).toBeUndefined()
    expect(await a.sessionOwner(takenOver)).toEqual(owner(a, 'a1'))
  })

  it('sends a message to one instance only, and a broadcast to all of them', async () => {
    const atA: string[] = []
    const atB: string[] = []
    const offs = [a.onMessage('m', (body) => atA.push(body)), b.onMessage('m', (body) => atB.push(body))]
    try {
      await a.send(b.instance, 'm', 'for-b')
      await b.broadcast('m', 'for-all')
      await waitUntil(() => atA.length === 1 && atB.length === 2, {
        message: () => `a ${atA.join()} b ${atB.join()}`,
      })
      expect(atA).toEqual(['for-all'])
      expect(atB.sort()).toEqual(['for-all', 'for-b'])
    } finally {
      for (const off of offs) off()
    }
  })

  it('lists the routes of every live instance and drops those of a crashed one', async () => {
    const c = await harness.open({ heartbeatMs: 60_000 })
    const key = sessionKey()
    await a.addRoute(key)
    await c.addRoute(key)
    expect((await b.routes(key)).sort()).toEqual([a.instance, c.instance].sort())
    await harness.lapse(c.instance)
    expect(await b.routes(key)).toEqual([a.instance])
    await a.removeRoute(key)
    expect(await b.routes(key)).toEqual([])
    await c.stop()
  })

  it('drops a crashed instance’s sessions and slots once its heartbeat lapses', async () => {
    const proxy = await startTcpProxy(inject('redisUrl'))
    try {
      const crashing = await harness.open({ url: proxy.url, heartbeatMs: 100 })
      const key = sessionKey()
      const scope = uniqueName('scope')
      await crashing.claimSession(key, owner(crashing, 'c1'))
      expect(await crashing.acquireSlot(scope, 'h1', 2)).toBe(true)
      expect(await crashing.acquireSlot(scope, 'h2', 2)).toBe(true)
      expect(await a.acquireSlot(scope, 'mine', 2)).toBe(false)
      expect(await a.sessionOwner(key)).toEqual(owner(crashing, 'c1'))

      await proxy.kill()
      await waitUntil(() => a.acquireSlot(scope, 'mine', 2), {
        message: () => 'slot freed by heartbeat lapse',
      })
      expect(await a.slots(scope)).toBe(1)
      expect(await a.sessionOwner(key)).toBeUndefined()
      // Nobody is left to close, so a new claim has no previous owner.
      expect(await b.claimSession(key, owner(b, 'c2'))).toBeUndefined()
    } finally {
      await proxy.close()
    }
  })

  it('treats an instance whose heartbeat lapsed as gone to others, but not to itself', async () => {
    const c = await harness.open({ heartbeatMs: 60_000 })
    const key = sessionKey()
    const scope = uniqueName('scope')
    await c.claimSession(key, owner(c, 'c1'))
    expect(await c.acquireSlot(scope, 'h1', 2)).toBe(true)
    await harness.lapse(c.instance)
    // Its own previous owner is still its to close, and its own slots still count for it.
    expect(await c.claimSession(key, owner(c, 'c2'))).toEqual(owner(c, 'c1'))
    expect(await c.sessionOwner(key)).toEqual(owner(c, 'c2'))
    expect(await c.slots(scope)).toBe(1)
    expect(await c.acquireSlot(scope, 'h2', 2)).toBe(true)
    expect(await c.acquireSlot(scope, 'h3', 2)).toBe(false)
    // The others see a crashed instance.
    expect(await a.slots(scope)).toBe(0)
    expect(await a.sessionOwner(key)).toBeUndefined()
    await c.stop()
  })

  it('leaves no keys behind on stop but token buckets that expire by themselves', async () => {
    const own = redisHarness(inject('redisUrl'))
    try {
      const c = await own.open()
      await c.claimSession(sessionKey(), owner(c, 'c1'))
      await c.acquireSlot(uniqueName('scope'), 'h1', 3)
      await c.take(uniqueName('rate'), 1, 5)
      expect((await own.keys()).length).toBeGreaterThanOrEqual(4)
      await c.stop()
      const left = await own.keys()
      expect(left).toHaveLength(1)
      expect(left[0]).toMatch(new RegExp(`^${own.prefix}rate:`))
    } finally {
      await own.destroy()
    }
  })
})
