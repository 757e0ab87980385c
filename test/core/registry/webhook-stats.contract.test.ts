// The webhook-stats part of the RegistryStore contract, on PGlite and PostgreSQL: engines' deltas
// add up (across calls and within one), times keep the latest, the lag the newest measurement;
// deltas of deleted subscriptions are skipped, and the stats go with their subscription.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WebhookStatsDelta } from '../../../core/registry/model.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'
import { subscription } from './store-subscription-cases.ts'

const engines = storeEngines()

const at = (seconds: number): string =>
  new Date(Date.parse('2026-03-01T10:00:00.000Z') + seconds * 1000).toISOString()

function delta(tenant: string, sub: string, over: Partial<WebhookStatsDelta> = {}): WebhookStatsDelta {
  return {
    tenant,
    subscription: sub,
    attempts: 0,
    delivered: 0,
    failedAttempts: 0,
    deadLettered: 0,
    lastSuccessAt: null,
    lastFailureAt: null,
    lag: null,
    lagAt: null,
    ...over,
  }
}

describe.each(engines)('RegistryStore webhook stats: $name', ({ make }) => {
  let engine: Engine
  let store: RegistryStore

  beforeAll(async () => {
    engine = make()
    store = await engine.open()
  })

  afterAll(async () => {
    await store.close()
    await engine.destroy()
  })

  async function newSubscription(): Promise<{ tenant: string; id: string }> {
    const tenant = tenantId()
    await store.createTenant(tenant, tenantSpec())
    const created = await store.createSubscription(subscription(tenant))
    return { tenant, id: created.id }
  }

  it('reads zeros and nulls before any engine reported', async () => {
    const { tenant, id } = await newSubscription()
    expect(await store.getWebhookStats(tenant, id)).toEqual(delta(tenant, id))
  })

  it('adds the deltas of engines up, keeps the latest times and the newest lag', async () => {
    const { tenant, id } = await newSubscription()
    // Two engines' flushes, the second with two deltas of the same subscription in one call.
    await store.addWebhookStats([
      delta(tenant, id, {
        attempts: 5,
        delivered: 3,
        failedAttempts: 2,
        lastSuccessAt: at(10),
        lastFailureAt: at(4),
        lag: 7,
        lagAt: at(10),
      }),
    ])
    await store.addWebhookStats([
      delta(tenant, id, {
        attempts: 4,
        failedAttempts: 4,
        deadLettered: 1,
        lastFailureAt: at(12),
        lag: 2,
        lagAt: at(5),
      }),
      delta(tenant, id, { attempts: 1, delivered: 1, lastSuccessAt: at(8) }),
    ])
    expect(await store.getWebhookStats(tenant, id)).toEqual({
      tenant,
      subscription: id,
      attempts: 10,
      delivered: 4,
      failedAttempts: 6,
      deadLettered: 1,
      lastSuccessAt: at(10),
      lastFailureAt: at(12),
      // The measurement of second 5 is older than the one of second 10: it does not win.
      lag: 7,
      lagAt: at(10),
    })
    await store.addWebhookStats([delta(tenant, id, { lag: 0, lagAt: at(20) })])
    expect(await store.getWebhookStats(tenant, id)).toMatchObject({ attempts: 10, lag: 0, lagAt: at(20) })
  })

  it('keeps subscriptions apart, skips deleted ones, and forgets stats with their subscription', async () => {
    const a = await newSubscription()
    const b = await newSubscription()
    await store.addWebhookStats([
      delta(a.tenant, a.id, { delivered: 1 }),
      delta(b.tenant, b.id, { delivered: 2 }),
      delta(a.tenant, 'gone', { delivered: 3 }),
    ])
    expect((await store.getWebhookStats(a.tenant, a.id)).delivered).toBe(1)
    expect((await store.getWebhookStats(b.tenant, b.id)).delivered).toBe(2)
    expect((await store.getWebhookStats(a.tenant, 'gone')).delivered).toBe(0)
    await store.deleteSubscription(a.tenant, a.id)
    await store.addWebhookStats([delta(a.tenant, a.id, { delivered: 1 })])
    await store.addWebhookStats([])
    expect((await store.getWebhookStats(a.tenant, a.id)).delivered).toBe(0)
  })

  it('refuses counts below zero or fractional, and times that are not times', async () => {
    const { tenant, id } = await newSubscription()
    await failsWith(store.addWebhookStats([delta(tenant, id, { delivered: -1 })]), 'REGISTRY_INVALID')
    await failsWith(store.addWebhookStats([delta(tenant, id, { attempts: 1.5 })]), 'REGISTRY_INVALID')
    await failsWith(
      store.addWebhookStats([delta(tenant, id, { lastSuccessAt: 'yesterday' })]),
      'REGISTRY_INVALID',
    )
    expect((await store.getWebhookStats(tenant, id)).attempts).toBe(0)
  })
})
