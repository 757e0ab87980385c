// The webhook subscription part of the RegistryStore contract, run by store.contract.test.ts inside
// its suite for each engine.
import { describe, expect, it } from 'vitest'
import { uuidv7 } from '../../../core/events/ids.ts'
import type { RegistryChange, WebhookSubscription } from '../../../core/registry/model.ts'
import type { NewSubscription, RegistryStore } from '../../../core/registry/store.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'

export interface SubscriptionContractContext {
  /** The suite's current store (it is replaced when reopened). */
  store(): RegistryStore
  /** Runs SQL on the storage directly (closes and reopens the store around it). */
  sql(statement: string): Promise<void>
  drainOutbox(): Promise<void>
  changes(): Promise<RegistryChange[]>
}

export const subscription = (tenant: string, overrides: Partial<NewSubscription> = {}): NewSubscription => ({
  tenant,
  id: uuidv7(),
  url: 'https://hooks.example.com/in?x=ü',
  filter: { types: ['a.b'], channels: ['telemetry/#'], devices: ['d1'], labels: { site: 'north ☃' } },
  mode: 'binary',
  batchSize: null,
  secretEncrypted: 'v1.ciphertext',
  headers: { 'X-Api-Key': "o'brien" },
  timeoutMs: 10_000,
  retry: { maxAttempts: 8, initialBackoffMs: 1000, maxBackoffMs: 300_000 },
  state: 'active',
  ...overrides,
})

export function subscriptionContract(ctx: SubscriptionContractContext): void {
  const store = () => ctx.store()
  const newTenant = async (): Promise<string> => {
    const id = tenantId()
    await store().createTenant(id, tenantSpec())
    return id
  }

  describe('webhook subscriptions', () => {
    it('creates at version 1, reads back every field, and records the change', async () => {
      const tenant = await newTenant()
      const other = await newTenant()
      await ctx.drainOutbox()
      const input = subscription(tenant)
      const created = await store().createSubscription(input)
      expect(created).toEqual({
        ...input,
        replayFrom: null,
        replayGeneration: 0,
        version: 1,
        createdAt: created.createdAt,
        updatedAt: created.createdAt,
      })
      expect(await store().getSubscription(tenant, input.id)).toEqual(created)
      expect(await store().getSubscription(other, input.id)).toBeUndefined()
      expect(await ctx.changes()).toEqual([
        { op: 'created', resource: 'subscription', tenant, id: input.id, version: 1 },
      ])
    })

    it('refuses a missing tenant (404) and a taken id (409), writing nothing', async () => {
      const tenant = await newTenant()
      const first = await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      await failsWith(store().createSubscription(subscription(tenantId())), 'REGISTRY_NOT_FOUND')
      await failsWith(store().createSubscription(subscription(tenant, { id: first.id })), 'REGISTRY_CONFLICT')
      expect(await ctx.changes()).toEqual([])
    })

    it('replaces every mutable field under ifVersion; 412 with the current version when stale', async () => {
      const tenant = await newTenant()
      const created = await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      const next: WebhookSubscription = {
        ...created,
        url: 'http://other.example.net:8080/x',
        filter: {},
        mode: 'structured',
        batchSize: 50,
        secretEncrypted: 'v1.other',
        headers: {},
        timeoutMs: 2000,
        retry: { maxAttempts: 1, initialBackoffMs: 100, maxBackoffMs: 100 },
        state: 'paused',
      }
      const updated = await store().updateSubscription(next, { ifVersion: 1 })
      expect(updated).toEqual({ ...next, version: 2, updatedAt: updated.updatedAt })
      expect(await store().getSubscription(tenant, created.id)).toEqual(updated)
      const stale = await failsWith(
        store().updateSubscription(next, { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.details).toEqual({ current: 2 })
      await failsWith(
        store().updateSubscription({ ...next, id: uuidv7() }, { ifVersion: 1 }),
        'REGISTRY_NOT_FOUND',
      )
      expect(await ctx.changes()).toEqual([
        { op: 'updated', resource: 'subscription', tenant, id: created.id, version: 2 },
      ])
    })

    it('sets the state alone, with and without a version check', async () => {
      const tenant = await newTenant()
      const created = await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      const disabled = await store().setSubscriptionState(tenant, created.id, 'disabled')
      expect(disabled).toEqual({ ...created, state: 'disabled', version: 2, updatedAt: disabled.updatedAt })
      await failsWith(
        store().setSubscriptionState(tenant, created.id, 'active', { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect((await store().setSubscriptionState(tenant, created.id, 'active', { ifVersion: 2 })).state).toBe(
        'active',
      )
      await failsWith(store().setSubscriptionState(tenant, uuidv7(), 'paused'), 'REGISTRY_NOT_FOUND')
      expect((await ctx.changes()).map((c) => [c.op, c.resource, c.id, c.version])).toEqual([
        ['updated', 'subscription', created.id, 2],
        ['updated', 'subscription', created.id, 3],
      ])
    })

    it('records a replay: its time to the millisecond, the generation counted up, under ifVersion', async () => {
      const tenant = await newTenant()
      const created = await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      const first = await store().replaySubscription(tenant, created.id, '2026-02-01T08:00:00.123Z')
      expect(first).toEqual({
        ...created,
        replayFrom: '2026-02-01T08:00:00.123Z',
        replayGeneration: 1,
        version: 2,
        updatedAt: first.updatedAt,
      })
      const second = await store().replaySubscription(tenant, created.id, '2026-02-01T08:00:00.123Z', {
        ifVersion: 2,
      })
      expect(second).toMatchObject({ replayGeneration: 2, version: 3 })
      expect(await store().getSubscription(tenant, created.id)).toEqual(second)
      // Other writes keep the replay fields.
      const paused = await store().setSubscriptionState(tenant, created.id, 'paused')
      expect(paused).toMatchObject({ replayFrom: '2026-02-01T08:00:00.123Z', replayGeneration: 2 })
      const updated = await store().updateSubscription({ ...paused, url: 'https://x.example.com/' })
      expect(updated).toMatchObject({ replayGeneration: 2, version: 5 })
      await failsWith(
        store().replaySubscription(tenant, created.id, '2026-02-01T00:00:00.000Z', { ifVersion: 2 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      await failsWith(
        store().replaySubscription(tenant, uuidv7(), '2026-02-01T00:00:00.000Z'),
        'REGISTRY_NOT_FOUND',
      )
      expect((await ctx.changes()).map((c) => [c.op, c.resource, c.id, c.version])).toEqual(
        [2, 3, 4, 5].map((v) => ['updated', 'subscription', created.id, v]),
      )
    })

    it('deletes with a version check and records the change; a deleted tenant takes its subscriptions', async () => {
      const tenant = await newTenant()
      const created = await store().createSubscription(subscription(tenant))
      const kept = await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      await failsWith(
        store().deleteSubscription(tenant, created.id, { ifVersion: 2 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      await store().deleteSubscription(tenant, created.id, { ifVersion: 1 })
      expect(await store().getSubscription(tenant, created.id)).toBeUndefined()
      await failsWith(store().deleteSubscription(tenant, created.id), 'REGISTRY_NOT_FOUND')
      expect(await ctx.changes()).toEqual([
        { op: 'deleted', resource: 'subscription', tenant, id: created.id, version: 1 },
      ])
      await store().deleteTenant(tenant)
      expect(await store().getSubscription(tenant, kept.id)).toBeUndefined()
    })

    it('lists one tenant’s subscriptions in id order across pages, and no other tenant’s', async () => {
      const tenant = await newTenant()
      const other = await newTenant()
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push((await store().createSubscription(subscription(tenant))).id)
      await store().createSubscription(subscription(other))
      const seen: string[] = []
      let after: string | undefined
      let pages = 0
      do {
        const page = await store().listSubscriptions(tenant, {
          limit: 2,
          ...(after === undefined ? {} : { after }),
        })
        expect(page.items.every((s) => s.tenant === tenant)).toBe(true)
        seen.push(...page.items.map((s) => s.id))
        after = page.next ?? undefined
        pages++
      } while (after !== undefined && pages < 10)
      expect(seen).toEqual(ids.toSorted())
      expect(pages).toBe(3)
      expect((await store().listSubscriptions(tenantId())).items).toEqual([])
      await failsWith(store().listSubscriptions(tenant, { limit: 1001 }), 'REGISTRY_INVALID')
    })

    it('lists every tenant’s subscriptions in (tenant, id) order for the delivery engines', async () => {
      const tenants = [await newTenant(), await newTenant()]
      const made: Array<[string, string]> = []
      for (const tenant of tenants) {
        for (let i = 0; i < 3; i++)
          made.push([tenant, (await store().createSubscription(subscription(tenant))).id])
      }
      const seen: Array<[string, string]> = []
      let after: string | undefined
      let pages = 0
      do {
        const page = await store().listAllSubscriptions({
          limit: 4,
          ...(after === undefined ? {} : { after }),
        })
        seen.push(...page.items.map((s): [string, string] => [s.tenant, s.id]))
        after = page.next ?? undefined
        pages++
      } while (after !== undefined && pages < 1000)
      const key = ([t, i]: [string, string]) => `${t}\u0000${i}`
      // Other tests' subscriptions are there too: ours all appear, and everything is in order.
      expect(seen.map(key)).toEqual(seen.map(key).toSorted())
      expect(new Set(seen.map(key)).size).toBe(seen.length)
      for (const pair of made) expect(seen.map(key)).toContain(key(pair))
      await failsWith(store().listAllSubscriptions({ after: 'bm90LWEtcGFpcg' }), 'REGISTRY_INVALID')
    })

    it('refuses more than 100 subscriptions per tenant, and counts again after a delete', async () => {
      const tenant = await newTenant()
      await ctx.sql(
        `INSERT INTO webhook_subscriptions (tenant, id, url, filter, mode, batch_size, secret_encrypted, headers,
           timeout_ms, retry, state, version, created_at, updated_at)
         SELECT '${tenant}', 's' || g, 'https://x.example', '{}', 'binary', NULL, 'x', '{}', 10000,
           '{"maxAttempts":8,"initialBackoffMs":1000,"maxBackoffMs":300000}', 'active', 1, now(), now()
         FROM generate_series(1, 99) AS g`,
      )
      await store().createSubscription(subscription(tenant))
      await ctx.drainOutbox()
      const err = await failsWith(store().createSubscription(subscription(tenant)), 'REGISTRY_QUOTA_EXCEEDED')
      expect(err.status).toBe(403)
      expect(err.details).toEqual({ maxSubscriptions: 100 })
      expect(await ctx.changes()).toEqual([])
      await store().deleteSubscription(tenant, 's1')
      expect((await store().createSubscription(subscription(tenant))).version).toBe(1)
    })
  })
}
