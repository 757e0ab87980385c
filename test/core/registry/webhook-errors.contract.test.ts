// The webhook-error part of the RegistryStore contract, on PGlite and PostgreSQL: failed attempts
// of existing subscriptions only, newest first, the newest 20 kept per subscription, every field
// held to its limit, and gone with their subscription.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WebhookError } from '../../../core/registry/model.ts'
import { WEBHOOK_ERRORS_KEPT } from '../../../core/registry/model.ts'
import { WEBHOOK_ERROR_MAX } from '../../../core/registry/sql/webhook-errors.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'
import { subscription } from './store-subscription-cases.ts'

const engines = storeEngines()

const base = Date.parse('2026-03-01T10:00:00.000Z')

function failure(tenant: string, sub: string, n: number, over: Partial<WebhookError> = {}): WebhookError {
  return {
    tenant,
    subscription: sub,
    at: new Date(base + n * 1000).toISOString(),
    webhookId: `msg-${n}`,
    attempt: n,
    status: 500,
    error: `HTTP 500 (${n})`,
    ...over,
  }
}

describe.each(engines)('RegistryStore webhook errors: $name', ({ make }) => {
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

  it('records failed attempts and lists them newest first, field for field', async () => {
    const { tenant, id } = await newSubscription()
    const first = failure(tenant, id, 1, { status: null, error: 'connect ECONNREFUSED' })
    const second = failure(tenant, id, 2)
    await store.recordWebhookErrors([first])
    await store.recordWebhookErrors([second])
    expect(await store.listWebhookErrors(tenant, id)).toEqual([second, first])
  })

  it(`keeps the newest ${WEBHOOK_ERRORS_KEPT} of each subscription, leaving the others alone`, async () => {
    const a = await newSubscription()
    const b = await newSubscription()
    const batch: WebhookError[] = []
    for (let n = 1; n <= 30; n++) batch.push(failure(a.tenant, a.id, n))
    batch.push(failure(b.tenant, b.id, 1))
    await store.recordWebhookErrors(batch.slice(0, 12))
    await store.recordWebhookErrors(batch.slice(12))
    const kept = await store.listWebhookErrors(a.tenant, a.id)
    expect(kept.map((e) => e.attempt)).toEqual(Array.from({ length: 20 }, (_, i) => 30 - i))
    expect(await store.listWebhookErrors(b.tenant, b.id)).toHaveLength(1)
  })

  it('skips errors of subscriptions that do not exist, and of another tenant’s subscription id', async () => {
    const { tenant, id } = await newSubscription()
    const other = await newSubscription()
    await store.recordWebhookErrors([
      failure(tenant, 'no-such-subscription', 1),
      failure(other.tenant, id, 2),
      failure(tenant, id, 3),
    ])
    expect((await store.listWebhookErrors(tenant, id)).map((e) => e.attempt)).toEqual([3])
    expect(await store.listWebhookErrors(other.tenant, id)).toEqual([])
    expect(await store.listWebhookErrors(other.tenant, other.id)).toEqual([])
  })

  it('holds the error text to its limit, cleans it, and refuses a bad time or attempt', async () => {
    const { tenant, id } = await newSubscription()
    await store.recordWebhookErrors([
      failure(tenant, id, 1, { error: 'x'.repeat(WEBHOOK_ERROR_MAX + 10) }),
      failure(tenant, id, 2, { error: 'nul\0 and \ud800' }),
    ])
    const [cleaned, long] = await store.listWebhookErrors(tenant, id)
    expect(long?.error).toBe('x'.repeat(WEBHOOK_ERROR_MAX))
    expect(cleaned?.error).toBe('nul\uFFFD and \uFFFD')
    await failsWith(store.recordWebhookErrors([failure(tenant, id, 3, { at: 'soon' })]), 'REGISTRY_INVALID')
    await failsWith(store.recordWebhookErrors([failure(tenant, id, 3, { attempt: -1 })]), 'REGISTRY_INVALID')
  })

  it('drops the errors with their subscription', async () => {
    const { tenant, id } = await newSubscription()
    await store.recordWebhookErrors([failure(tenant, id, 1)])
    await store.deleteSubscription(tenant, id)
    expect(await store.listWebhookErrors(tenant, id)).toEqual([])
  })
})
