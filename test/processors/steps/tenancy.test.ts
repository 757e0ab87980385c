// The tenancy step: payload size, events/s and bytes/s of a tenant, in that order, counted in
// cluster token buckets (a recording double at the port, and the in-process ClusterState).
import { describe, expect, it } from 'vitest'
import { RATE_MAX } from '../../../core/cluster/checks.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import type { RateDecision } from '../../../core/cluster/cluster.ts'
import { silentLogger } from '../../../core/log.ts'
import type { TenantQuotas } from '../../../core/registry/model.ts'
import { createTenancy, tenancyReasons } from '../../../processors/steps/tenancy.ts'
import { tenantRow } from '../fixtures.ts'
import { ctx, event, noQuotas } from './events.ts'

interface TakeCall {
  readonly key: string
  readonly rate: number
  readonly burst: number
  readonly cost: number
}

/** A take() that records its calls and refuses the keys in `refused`. */
function harness(quotas: Partial<TenantQuotas>, refused: readonly string[] = []) {
  const calls: TakeCall[] = []
  const tenants = [tenantRow('acme', { quotas: { ...noQuotas, ...quotas } })]
  const step = createTenancy({
    tenant: async (id) => tenants.find((t) => t.id === id),
    take: async (key, rate, burst, cost): Promise<RateDecision> => {
      calls.push({ key, rate, burst, cost })
      const allowed = !refused.includes(key)
      return { allowed, retryAfterMs: allowed ? 0 : 100 }
    },
  })
  return { step, calls }
}

const bytes = (n: number) => event({ data: Buffer.alloc(n, 0x61), datacontenttype: 'text/plain' })

describe('tenancy', () => {
  it('lets an event of a tenant without quotas continue without asking the cluster', async () => {
    const { step, calls } = harness({})
    expect(await step(event(), ctx)).toEqual({ kind: 'continue' })
    expect(calls).toEqual([])
  })

  it('leaves an unknown tenant or an event without tenant to authorize', async () => {
    const { step, calls } = harness({ maxEventsPerSecond: 1, maxBytesPerSecond: 1, maxPayloadBytes: 0 })
    expect(await step(event({ tenant: 'ghost' }), ctx)).toEqual({ kind: 'continue' })
    expect(await step(event({ attributes: { tenant: undefined } }), ctx)).toEqual({ kind: 'continue' })
    expect(calls).toEqual([])
  })

  it('asks the events bucket, then the bytes bucket, with their keys, rates, bursts and costs', async () => {
    const { step, calls } = harness({ maxEventsPerSecond: 50, maxBytesPerSecond: 1000, maxPayloadBytes: 100 })
    expect(await step(bytes(40), ctx)).toEqual({ kind: 'continue' })
    expect(calls).toEqual([
      { key: 'quota:events:acme', rate: 50, burst: 50, cost: 1 },
      { key: 'quota:bytes:acme', rate: 1000, burst: 1000, cost: 40 },
    ])
  })

  it('counts the data, not the record, and at least one byte per event', async () => {
    const { step, calls } = harness({ maxBytesPerSecond: 1000 })
    await step(event({ data: undefined, datacontenttype: undefined }), { ...ctx, bytes: 500 })
    await step(bytes(0), ctx)
    await step(bytes(7), { ...ctx, bytes: 900 })
    expect(calls.map((c) => c.cost)).toEqual([1, 1, 7])
  })

  it.each([
    ['only events/s', { maxEventsPerSecond: 5 }, ['quota:events:acme']],
    ['only bytes/s', { maxBytesPerSecond: 500 }, ['quota:bytes:acme']],
    ['only the payload limit', { maxPayloadBytes: 100 }, []],
  ] as const)('asks only about quotas that are set (%s)', async (_name, quotas, keys) => {
    const { step, calls } = harness(quotas)
    expect(await step(bytes(10), ctx)).toEqual({ kind: 'continue' })
    expect(calls.map((c) => c.key)).toEqual(keys)
  })

  describe('payload-too-large', () => {
    it('refuses data larger than maxPayloadBytes before counting anything', async () => {
      const { step, calls } = harness({ maxPayloadBytes: 10, maxEventsPerSecond: 5, maxBytesPerSecond: 500 })
      expect(await step(bytes(11), ctx)).toEqual({
        kind: 'reject',
        reason: 'payload-too-large',
        detail: 'data of 11 bytes exceeds maxPayloadBytes 10',
      })
      expect(calls).toEqual([])
    })

    it('accepts data of exactly maxPayloadBytes', async () => {
      const { step } = harness({ maxPayloadBytes: 10 })
      expect(await step(bytes(10), ctx)).toEqual({ kind: 'continue' })
    })
  })

  describe('quota-events', () => {
    it('refuses an event the events bucket refuses, without touching the bytes bucket', async () => {
      const { step, calls } = harness({ maxEventsPerSecond: 5, maxBytesPerSecond: 500 }, [
        'quota:events:acme',
      ])
      expect(await step(bytes(10), ctx)).toEqual({
        kind: 'reject',
        reason: 'quota-events',
        detail: 'over maxEventsPerSecond 5',
      })
      expect(calls.map((c) => c.key)).toEqual(['quota:events:acme'])
    })

    it('refuses everything at a limit of 0 without asking the cluster', async () => {
      const { step, calls } = harness({ maxEventsPerSecond: 0 })
      expect(await step(bytes(1), ctx)).toMatchObject({ kind: 'reject', reason: 'quota-events' })
      expect(calls).toEqual([])
    })
  })

  describe('quota-bytes', () => {
    it('refuses an event the bytes bucket refuses (its event token is spent)', async () => {
      const { step, calls } = harness({ maxEventsPerSecond: 5, maxBytesPerSecond: 500 }, ['quota:bytes:acme'])
      expect(await step(bytes(10), ctx)).toEqual({
        kind: 'reject',
        reason: 'quota-bytes',
        detail: 'data of 10 bytes is over maxBytesPerSecond 500',
      })
      expect(calls.map((c) => c.key)).toEqual(['quota:events:acme', 'quota:bytes:acme'])
    })

    it('refuses data larger than one second’s worth without asking (the bucket could never pay it)', async () => {
      const { step, calls } = harness({ maxBytesPerSecond: 100 })
      expect(await step(bytes(101), ctx)).toMatchObject({ kind: 'reject', reason: 'quota-bytes' })
      expect(calls).toEqual([])
      expect(await step(bytes(100), ctx)).toEqual({ kind: 'continue' })
      expect(calls).toEqual([{ key: 'quota:bytes:acme', rate: 100, burst: 100, cost: 100 }])
    })

    it('counts limits above the cluster’s largest rate in coarser units, keeping the ratio', async () => {
      const { step, calls } = harness({ maxBytesPerSecond: 4 * RATE_MAX, maxEventsPerSecond: 2 * RATE_MAX })
      expect(await step(bytes(1000), ctx)).toEqual({ kind: 'continue' })
      expect(calls).toEqual([
        { key: 'quota:events:acme', rate: RATE_MAX, burst: RATE_MAX, cost: 0.5 },
        { key: 'quota:bytes:acme', rate: RATE_MAX, burst: RATE_MAX, cost: 250 },
      ])
    })
  })

  it('gives only the reasons it lists', () => {
    expect(tenancyReasons).toEqual(['payload-too-large', 'quota-events', 'quota-bytes'])
  })

  it('lets a cluster failure through, so the batch is retried', async () => {
    const tenants = [tenantRow('acme', { quotas: { ...noQuotas, maxEventsPerSecond: 5 } })]
    const step = createTenancy({
      tenant: async (id) => tenants.find((t) => t.id === id),
      take: () => Promise.reject(new Error('redis down')),
    })
    await expect(step(event(), ctx)).rejects.toThrow('redis down')
  })
})

describe('tenancy on the in-process cluster state', () => {
  // Rates of one per second: a refill would take a whole second, far longer than these steps.
  function onCluster(quotas: Partial<TenantQuotas>) {
    const cluster = createMemoryCluster({ log: silentLogger })
    const tenants = [
      tenantRow('acme', { quotas: { ...noQuotas, ...quotas } }),
      tenantRow('other', { quotas: { ...noQuotas, ...quotas } }),
    ]
    return createTenancy({
      tenant: async (id) => tenants.find((t) => t.id === id),
      take: (key, rate, burst, cost) => cluster.take(key, rate, burst, cost),
    })
  }

  it('lets one second’s worth of events through, then refuses, per tenant', async () => {
    const step = onCluster({ maxEventsPerSecond: 2 })
    const reasons = []
    for (let i = 0; i < 3; i++) reasons.push((await step(event(), ctx)).kind)
    expect(reasons).toEqual(['continue', 'continue', 'reject'])
    expect(await step(event({ tenant: 'other' }), ctx)).toEqual({ kind: 'continue' })
  })

  it('counts bytes across events, and limits beyond the largest cluster rate are accepted by it', async () => {
    const step = onCluster({ maxBytesPerSecond: 2 * RATE_MAX })
    const second = bytes(2 * RATE_MAX)
    expect(await step(second, ctx)).toEqual({ kind: 'continue' })
    expect(await step(second, ctx)).toMatchObject({ kind: 'reject', reason: 'quota-bytes' })
    expect(await step(event({ tenant: 'other' }), ctx)).toEqual({ kind: 'continue' })
  })
})
