// The processing part of the RegistryStore contract (channel schemas, route tables), run by
// store.contract.test.ts inside its suite for each engine.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import type { RegistryChange, RouteRule } from '../../../core/registry/model.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'

export interface ProcessingContractContext {
  /** The suite's current store (it is replaced when reopened). */
  store(): RegistryStore
  /** Runs SQL on the storage directly (closes and reopens the store around it). */
  sql(statement: string): Promise<void>
  drainOutbox(): Promise<void>
  changes(): Promise<RegistryChange[]>
}

export const SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['t'],
  properties: { t: { type: 'number' }, 'naïve ☃': { $ref: '#/$defs/x' } },
  $defs: { x: { enum: ["o'brien", '{"a":1}'] } },
}

export const RULES: RouteRule[] = [
  {
    name: 'alerts',
    match: { channel: 'alerts/#', type: 'io.tributary.telemetry.v1', labels: { site: 'north' } },
    actions: [
      { action: 'set-extension', name: 'severity', value: 'high ☃' },
      { action: 'remove-extension', name: 'debug' },
      { action: 'set-type', type: 'com.example.alert.v1' },
      { action: 'set-subject', subject: 'alerts/all' },
      { action: 'copy', topic: 'alerts' },
    ],
  },
  {
    name: 'tests',
    match: { labels: { kind: 'test' } },
    actions: [{ action: 'reject', reason: 'test-device' }],
  },
  { name: 'noise', match: { channel: '+/debug' }, actions: [{ action: 'drop' }] },
]

export function processingContract(ctx: ProcessingContractContext): void {
  const store = () => ctx.store()
  const newTenant = async (): Promise<string> => {
    const id = tenantId()
    await store().createTenant(id, tenantSpec())
    return id
  }

  describe('channel schemas', () => {
    it('creates at version 1, replaces under ifVersion, and records created/updated changes', async () => {
      const tenant = await newTenant()
      await ctx.drainOutbox()
      const created = await store().putChannelSchema(tenant, 'telemetry/temp', SCHEMA, { ifVersion: 0 })
      expect(created).toEqual({
        tenant,
        channel: 'telemetry/temp',
        schema: SCHEMA,
        version: 1,
        createdAt: created.createdAt,
        updatedAt: created.createdAt,
      })
      expect(await store().getChannelSchema(tenant, 'telemetry/temp')).toEqual(created)
      const replaced = await store().putChannelSchema(
        tenant,
        'telemetry/temp',
        { type: 'array' },
        { ifVersion: 1 },
      )
      expect(replaced).toMatchObject({ version: 2, schema: { type: 'array' }, createdAt: created.createdAt })
      const again = await store().putChannelSchema(tenant, 'telemetry/temp', { type: 'string' })
      expect(again.version).toBe(3)
      expect(await ctx.changes()).toEqual([
        { op: 'created', resource: 'schema', tenant, id: 'telemetry/temp', version: 1 },
        { op: 'updated', resource: 'schema', tenant, id: 'telemetry/temp', version: 2 },
        { op: 'updated', resource: 'schema', tenant, id: 'telemetry/temp', version: 3 },
      ])
    })

    it('refuses with 412 (and writes nothing) when the precondition fails; 404 without the tenant', async () => {
      const tenant = await newTenant()
      await store().putChannelSchema(tenant, 'a', SCHEMA)
      await ctx.drainOutbox()
      const exists = await failsWith(
        store().putChannelSchema(tenant, 'a', { type: 'null' }, { ifVersion: 0 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(exists.details).toEqual({ current: 1 })
      expect(exists.message).toMatch(/exists already/)
      const stale = await failsWith(
        store().putChannelSchema(tenant, 'a', { type: 'null' }, { ifVersion: 4 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.details).toEqual({ current: 1 })
      const missing = await failsWith(
        store().putChannelSchema(tenant, 'b', { type: 'null' }, { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(missing.details).toEqual({ current: 0 })
      await failsWith(store().putChannelSchema(tenant, 'b', {}, { ifVersion: -1 }), 'REGISTRY_INVALID')
      await failsWith(store().putChannelSchema(tenantId(), 'a', SCHEMA), 'REGISTRY_NOT_FOUND')
      expect(await ctx.changes()).toEqual([])
      expect((await store().getChannelSchema(tenant, 'a'))?.schema).toEqual(SCHEMA)
      expect(await store().getChannelSchema(tenant, 'b')).toBeUndefined()
    })

    it('lets exactly one of several concurrent create-only puts win', async () => {
      const tenant = await newTenant()
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) =>
          store().putChannelSchema(tenant, 'race', { title: `t${i}` }, { ifVersion: 0 }),
        ),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won).toHaveLength(1)
      for (const r of results) {
        if (r.status === 'rejected')
          expect(isTributaryError(r.reason, 'REGISTRY_VERSION_MISMATCH')).toBe(true)
      }
      expect((await store().getChannelSchema(tenant, 'race'))?.version).toBe(1)
    })

    it('lists a tenant’s schemas in channel order across pages, and no other tenant’s', async () => {
      const tenant = await newTenant()
      const other = await newTenant()
      const channels = ['b/x', 'a', 'c', 'a/b', 'B', 'a.b', 'z~1']
      for (const channel of channels) await store().putChannelSchema(tenant, channel, { title: channel })
      await store().putChannelSchema(other, 'a', SCHEMA)
      const seen: string[] = []
      let after: string | undefined
      let pages = 0
      do {
        const page = await store().listChannelSchemas(tenant, {
          limit: 3,
          ...(after === undefined ? {} : { after }),
        })
        expect(page.items.every((s) => s.tenant === tenant && s.schema['title'] === s.channel)).toBe(true)
        seen.push(...page.items.map((s) => s.channel))
        after = page.next ?? undefined
        pages++
      } while (after !== undefined && pages < 10)
      // COLLATE "C": byte order on every engine.
      expect(seen).toEqual(['B', 'a', 'a.b', 'a/b', 'b/x', 'c', 'z~1'])
      expect(pages).toBe(3)
      expect((await store().listChannelSchemas(tenantId())).items).toEqual([])
      await failsWith(store().listChannelSchemas(tenant, { limit: 0 }), 'REGISTRY_INVALID')
    })

    it('deletes with a version check, records the change, and a later put starts over at 1', async () => {
      const tenant = await newTenant()
      await store().putChannelSchema(tenant, 'x/y', SCHEMA)
      await store().putChannelSchema(tenant, 'x/y', SCHEMA)
      await ctx.drainOutbox()
      const stale = await failsWith(
        store().deleteChannelSchema(tenant, 'x/y', { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.details).toEqual({ current: 2 })
      await store().deleteChannelSchema(tenant, 'x/y', { ifVersion: 2 })
      expect(await store().getChannelSchema(tenant, 'x/y')).toBeUndefined()
      await failsWith(store().deleteChannelSchema(tenant, 'x/y'), 'REGISTRY_NOT_FOUND')
      expect(await ctx.changes()).toEqual([
        { op: 'deleted', resource: 'schema', tenant, id: 'x/y', version: 2 },
      ])
      expect((await store().putChannelSchema(tenant, 'x/y', SCHEMA, { ifVersion: 0 })).version).toBe(1)
    })

    it('refuses more than 1000 schemas per tenant, and counts again after a delete', async () => {
      const tenant = await newTenant()
      await ctx.sql(
        `INSERT INTO channel_schemas (tenant, channel, schema, version, created_at, updated_at)
         SELECT '${tenant}', 'c' || g, '{}'::jsonb, 1, now(), now() FROM generate_series(1, 999) AS g`,
      )
      await store().putChannelSchema(tenant, 'the-1000th', SCHEMA)
      await ctx.drainOutbox()
      const err = await failsWith(
        store().putChannelSchema(tenant, 'one-more', SCHEMA),
        'REGISTRY_QUOTA_EXCEEDED',
      )
      expect(err.status).toBe(403)
      expect(err.message).toContain('1000')
      expect(await ctx.changes()).toEqual([])
      // Replacing an existing schema is no new one.
      expect((await store().putChannelSchema(tenant, 'c1', SCHEMA)).version).toBe(2)
      await store().deleteChannelSchema(tenant, 'c2')
      expect((await store().putChannelSchema(tenant, 'one-more', SCHEMA)).version).toBe(1)
    })
  })

  describe('route tables', () => {
    it('reads version 0 without rules until written; 404 for a tenant that does not exist', async () => {
      const tenant = await newTenant()
      const owner = await store().getTenant(tenant)
      expect(await store().getRouteTable(tenant)).toEqual({
        tenant,
        rules: [],
        version: 0,
        createdAt: owner?.createdAt,
        updatedAt: owner?.createdAt,
      })
      await failsWith(store().getRouteTable(tenantId()), 'REGISTRY_NOT_FOUND')
    })

    it('replaces the rules whole under ifVersion (0: never written), with created then updated changes', async () => {
      const tenant = await newTenant()
      await ctx.drainOutbox()
      const first = await store().putRouteTable(tenant, RULES, { ifVersion: 0 })
      expect(first).toEqual({
        tenant,
        rules: RULES,
        version: 1,
        createdAt: first.createdAt,
        updatedAt: first.createdAt,
      })
      expect(await store().getRouteTable(tenant)).toEqual(first)
      const second = await store().putRouteTable(tenant, RULES.slice(1), { ifVersion: 1 })
      expect(second).toMatchObject({ version: 2, rules: RULES.slice(1), createdAt: first.createdAt })
      const third = await store().putRouteTable(tenant, [])
      expect(third).toMatchObject({ version: 3, rules: [] })
      expect(await ctx.changes()).toEqual([
        { op: 'created', resource: 'routes', tenant, version: 1 },
        { op: 'updated', resource: 'routes', tenant, version: 2 },
        { op: 'updated', resource: 'routes', tenant, version: 3 },
      ])
    })

    it('refuses a stale or create-only write with 412 and a missing tenant with 404, writing nothing', async () => {
      const tenant = await newTenant()
      await failsWith(store().putRouteTable(tenant, RULES, { ifVersion: 1 }), 'REGISTRY_VERSION_MISMATCH')
      await store().putRouteTable(tenant, RULES)
      await ctx.drainOutbox()
      const again = await failsWith(
        store().putRouteTable(tenant, [], { ifVersion: 0 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(again.details).toEqual({ current: 1 })
      await failsWith(store().putRouteTable(tenant, [], { ifVersion: 2 }), 'REGISTRY_VERSION_MISMATCH')
      await failsWith(store().putRouteTable(tenantId(), RULES), 'REGISTRY_NOT_FOUND')
      expect(await ctx.changes()).toEqual([])
      expect((await store().getRouteTable(tenant)).rules).toEqual(RULES)
    })

    it('lets exactly one of two concurrent writes with the same ifVersion win', async () => {
      const tenant = await newTenant()
      const results = await Promise.allSettled([
        store().putRouteTable(tenant, RULES.slice(0, 1), { ifVersion: 0 }),
        store().putRouteTable(tenant, RULES.slice(1), { ifVersion: 0 }),
      ])
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      expect(won).toHaveLength(1)
      expect(await store().getRouteTable(tenant)).toEqual(won[0])
    })
  })
}
