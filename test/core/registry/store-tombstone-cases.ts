// The tenant tombstone part of the RegistryStore contract, run by store.contract.test.ts inside its
// suite for each engine: left by a delete, removed by a re-create, listed oldest first.
import { describe, expect, it } from 'vitest'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'
import type { ProcessingContractContext } from './store-processing-cases.ts'
import { RULES, SCHEMA } from './store-processing-cases.ts'

export function tombstoneContract(ctx: Pick<ProcessingContractContext, 'store'>): void {
  const store = () => ctx.store()
  const newTenant = async (): Promise<string> => {
    const id = tenantId()
    await store().createTenant(id, tenantSpec())
    return id
  }

  describe('tenant tombstones', () => {
    const tombstonesOf = async (tenants: readonly string[], before = new Date(Date.now() + 60_000)) =>
      (await store().tenantTombstones(before, 1000)).filter((t) => tenants.includes(t.tenant))

    it('are left by a tenant delete, with its schemas and routes gone', async () => {
      const a = await newTenant()
      const b = await newTenant()
      await store().putChannelSchema(a, 'c', SCHEMA)
      await store().putRouteTable(a, RULES)
      const start = Date.now()
      await store().deleteTenant(a)
      await store().deleteTenant(b)
      const stones = await tombstonesOf([a, b])
      expect(stones.map((t) => t.tenant).sort()).toEqual([a, b].sort())
      for (const t of stones) {
        expect(Date.parse(t.deletedAt)).toBeGreaterThanOrEqual(start - 1000)
        expect(t.deletedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      }
      // Only those deleted at or before `before`.
      expect(await tombstonesOf([a, b], new Date(start - 60_000))).toEqual([])
      // Recreated, the tenant has none of its schemas or rules.
      await store().createTenant(a, tenantSpec())
      expect(await store().getChannelSchema(a, 'c')).toBeUndefined()
      expect((await store().getRouteTable(a)).version).toBe(0)
    })

    it('are removed when the tenant is created again (it keeps its topics) or dropped', async () => {
      const a = await newTenant()
      const b = await newTenant()
      await store().deleteTenant(a)
      await store().deleteTenant(b)
      await store().createTenant(a, tenantSpec())
      expect((await tombstonesOf([a, b])).map((t) => t.tenant)).toEqual([b])
      await store().dropTenantTombstone(b)
      await store().dropTenantTombstone(b)
      expect(await tombstonesOf([a, b])).toEqual([])
      // A failed delete leaves none.
      await failsWith(store().deleteTenant(a, { ifVersion: 9 }), 'REGISTRY_VERSION_MISMATCH')
      expect(await tombstonesOf([a])).toEqual([])
    })

    it('are listed oldest first up to the limit', async () => {
      const ids = [await newTenant(), await newTenant(), await newTenant()]
      for (const id of ids) await store().deleteTenant(id)
      const all = await store().tenantTombstones(new Date(Date.now() + 60_000), 1000)
      const times = all.map((t) => t.deletedAt)
      expect(times).toEqual([...times].sort())
      expect(await store().tenantTombstones(new Date(Date.now() + 60_000), 1)).toEqual(all.slice(0, 1))
      for (const limit of [0, 1001, 1.5]) {
        await failsWith(store().tenantTombstones(new Date(), limit), 'REGISTRY_INVALID')
      }
    })
  })
}
