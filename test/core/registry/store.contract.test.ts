// The RegistryStore contract: PGlite and PostgreSQL must pass all of it, each on fresh storage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import type { Credential, RegistryChange } from '../../../core/registry/model.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { configContract } from './store-config-cases.ts'
import { processingContract } from './store-processing-cases.ts'
import { subscriptionContract } from './store-subscription-cases.ts'
import { tombstoneContract } from './store-tombstone-cases.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import {
  deviceSpec,
  failsWith,
  password,
  psk,
  quotas,
  tenantId,
  tenantSpec,
  token,
  x509,
} from './store-fixtures.ts'

const engines = storeEngines()

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

describe.each(engines)('RegistryStore contract: $name', ({ make }) => {
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

  /** A fresh tenant with one device, for tests that need somewhere to put things. */
  async function tenantWithDevice(spec = tenantSpec()): Promise<{ tenant: string; device: string }> {
    const tenant = tenantId()
    await store.createTenant(tenant, spec)
    await store.createDevice(tenant, 'd1', deviceSpec())
    return { tenant, device: 'd1' }
  }

  /** Publishes everything pending, so that a test sees only its own changes. */
  async function drainOutbox(): Promise<void> {
    const pending = await store.pendingChanges(10_000)
    const last = pending.at(-1)
    if (last !== undefined) await store.markPublished(last.seq)
  }

  const changes = async (): Promise<RegistryChange[]> =>
    (await store.pendingChanges(1000)).map((e) => e.change)

  processingContract({
    store: () => store,
    sql: async (statement) => {
      await store.close()
      try {
        await engine.sql(statement)
      } finally {
        store = await engine.open()
      }
    },
    drainOutbox,
    changes,
  })
  tombstoneContract({ store: () => store })
  configContract({ store: () => store, drainOutbox, changes })
  subscriptionContract({
    store: () => store,
    sql: async (statement) => {
      await store.close()
      try {
        await engine.sql(statement)
      } finally {
        store = await engine.open()
      }
    },
    drainOutbox,
    changes,
  })

  describe('tenants', () => {
    it('creates a tenant at version 1 and reads back every field', async () => {
      const id = tenantId()
      const spec = tenantSpec()
      const created = await store.createTenant(id, spec)
      expect(created).toEqual({
        id,
        ...spec,
        version: 1,
        createdAt: created.createdAt,
        updatedAt: created.createdAt,
      })
      expect(created.createdAt).toMatch(ISO)
      expect(await store.getTenant(id)).toEqual(created)
      expect(await store.getTenant(tenantId())).toBeUndefined()
      await failsWith(store.createTenant(id, spec), 'REGISTRY_CONFLICT')
    })

    it('updates with a version check: +1 per update, 412 with the current version when stale', async () => {
      const id = tenantId()
      await store.createTenant(id, tenantSpec())
      const v2 = await store.updateTenant(id, tenantSpec({ enabled: false, oidc: null }), { ifVersion: 1 })
      expect(v2).toMatchObject({ version: 2, enabled: false, oidc: null })
      const v3 = await store.updateTenant(
        id,
        tenantSpec({ quotas: quotas({ maxDevices: 3, maxMessagesPerSecond: null }) }),
      )
      expect(v3.version).toBe(3)
      expect(v3.updatedAt >= v3.createdAt).toBe(true)
      const stale = await failsWith(
        store.updateTenant(id, tenantSpec(), { ifVersion: 2 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.status).toBe(412)
      expect(stale.details).toEqual({ current: 3 })
      await failsWith(store.deleteTenant(id, { ifVersion: 1 }), 'REGISTRY_VERSION_MISMATCH')
      expect(await store.getTenant(id)).toEqual(v3)
      await failsWith(store.updateTenant(tenantId(), tenantSpec()), 'REGISTRY_NOT_FOUND')
      await failsWith(store.deleteTenant(tenantId()), 'REGISTRY_NOT_FOUND')
      await failsWith(store.updateTenant(id, tenantSpec(), { ifVersion: 0 }), 'REGISTRY_INVALID')
    })

    it('deletes a tenant with its devices, credentials and API tokens', async () => {
      const { tenant, device } = await tenantWithDevice()
      const cred = await store.createCredential(password(tenant, device))
      const deviceToken = await store.createCredential(token(tenant, device))
      const apiToken = await store.createApiToken({
        tenant,
        name: 'ci',
        role: 'reader',
        tokenHash: 'ef'.repeat(32),
        expiresAt: null,
      })
      await store.deleteTenant(tenant, { ifVersion: 1 })
      expect(await store.getTenant(tenant)).toBeUndefined()
      expect(await store.getDevice(tenant, device)).toBeUndefined()
      expect(await store.getCredential(tenant, device, cred.id)).toBeUndefined()
      expect(await store.findPassword(tenant, device)).toBeUndefined()
      expect(await store.findDeviceToken(deviceToken.id)).toBeUndefined()
      expect(await store.findApiToken(apiToken.id)).toBeUndefined()
      // The ids are free again.
      await store.createTenant(tenant, tenantSpec())
      expect((await store.listDevices(tenant)).items).toEqual([])
    })

    it('lists tenants in id order across pages with opaque cursors', async () => {
      const ids = Array.from({ length: 7 }, () => tenantId())
      for (const id of ids) await store.createTenant(id, tenantSpec())
      const seen: string[] = []
      let after: string | undefined
      let pages = 0
      do {
        const page = await store.listTenants({ limit: 3, ...(after === undefined ? {} : { after }) })
        expect(page.items.length).toBeLessThanOrEqual(3)
        seen.push(...page.items.map((t) => t.id))
        after = page.next ?? undefined
        pages++
      } while (after !== undefined && pages < 100)
      expect(seen).toEqual([...seen].sort())
      expect(new Set(seen).size).toBe(seen.length)
      for (const id of ids) expect(seen).toContain(id)
      const all = await store.listTenants({ limit: 1000 })
      expect(all.next).toBeNull()
      expect(all.items.map((t) => t.id)).toEqual(seen)
    })

    it('rejects bad limits and cursors that it did not make', async () => {
      for (const limit of [0, 1001, 1.5, -1])
        await failsWith(store.listTenants({ limit }), 'REGISTRY_INVALID')
      for (const after of ['', 'not base64!', 'a'.repeat(2000), 'YR', 'YQ==', '_w']) {
        const err = await failsWith(store.listTenants({ after }), 'REGISTRY_INVALID')
        expect(err.status).toBe(400)
      }
      await failsWith(store.listDevices('x', { after: '%%' }), 'REGISTRY_INVALID')
    })
  })

  describe('devices', () => {
    it('creates, reads, updates and deletes a device with versions and 404/409/412', async () => {
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      const spec = deviceSpec({ labels: { room: 'lab', floor: '2' }, gateways: ['gw1'] })
      const created = await store.createDevice(tenant, 'sensor:1', spec)
      expect(created).toEqual({
        tenant,
        id: 'sensor:1',
        ...spec,
        lastSeen: null,
        version: 1,
        createdAt: created.createdAt,
        updatedAt: created.createdAt,
      })
      expect(await store.getDevice(tenant, 'sensor:1')).toEqual(created)
      await failsWith(store.createDevice(tenant, 'sensor:1', spec), 'REGISTRY_CONFLICT')
      await failsWith(store.createDevice(tenantId(), 'sensor:1', spec), 'REGISTRY_NOT_FOUND')

      const updated = await store.updateDevice(tenant, 'sensor:1', deviceSpec({ enabled: false }), {
        ifVersion: 1,
      })
      expect(updated).toMatchObject({ version: 2, enabled: false, labels: { room: 'lab' }, gateways: [] })
      const stale = await failsWith(
        store.updateDevice(tenant, 'sensor:1', spec, { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.details).toEqual({ current: 2 })
      await failsWith(store.updateDevice(tenant, 'nope', spec), 'REGISTRY_NOT_FOUND')
      await failsWith(store.deleteDevice(tenant, 'sensor:1', { ifVersion: 1 }), 'REGISTRY_VERSION_MISMATCH')
      await store.deleteDevice(tenant, 'sensor:1', { ifVersion: 2 })
      expect(await store.getDevice(tenant, 'sensor:1')).toBeUndefined()
      await failsWith(store.deleteDevice(tenant, 'sensor:1'), 'REGISTRY_NOT_FOUND')
    })

    it('lets exactly one of two concurrent updates with the same ifVersion win', async () => {
      const { tenant, device } = await tenantWithDevice()
      const results = await Promise.allSettled([
        store.updateDevice(tenant, device, deviceSpec({ labels: { by: 'a' } }), { ifVersion: 1 }),
        store.updateDevice(tenant, device, deviceSpec({ labels: { by: 'b' } }), { ifVersion: 1 }),
      ])
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
      expect(won).toHaveLength(1)
      expect(isTributaryError(lost[0], 'REGISTRY_VERSION_MISMATCH')).toBe(true)
      expect(await store.getDevice(tenant, device)).toEqual(won[0])
    })

    it('stores labels and settings verbatim, quotes, unicode and JSON-looking text included', async () => {
      const tenant = tenantId()
      const settings = {
        note: 'it\'s "quoted" -- ; DROP TABLE tenants',
        emoji: 'Zürich ☃ 🚀',
        empty: {},
        list: [],
      }
      expect((await store.createTenant(tenant, tenantSpec({ settings }))).settings).toEqual(settings)
      expect((await store.getTenant(tenant))?.settings).toEqual(settings)
      const labels = { 'app.kubernetes.io/name': 'x', quote: "o'brien", json: '{"a":1}', uni: 'ß☃' }
      await store.createDevice(tenant, 'd~1.x_y-z', deviceSpec({ labels, gateways: ['gw:1', 'gw~2'] }))
      const found = await store.listDevices(tenant, { labels: { quote: "o'brien", json: '{"a":1}' } })
      expect(found.items.map((d) => [d.id, d.labels, d.gateways])).toEqual([
        ['d~1.x_y-z', labels, ['gw:1', 'gw~2']],
      ])
    })

    it('keeps devices of one tenant apart from another with the same id', async () => {
      const a = await tenantWithDevice()
      const b = await tenantWithDevice()
      await store.updateDevice(a.tenant, 'd1', deviceSpec({ labels: { owner: 'a' } }))
      expect((await store.getDevice(b.tenant, 'd1'))?.labels).toEqual({ room: 'lab' })
      await store.deleteDevice(a.tenant, 'd1')
      expect(await store.getDevice(b.tenant, 'd1')).toBeDefined()
    })

    it('touches lastSeen forward only, without a version, an updatedAt or an outbox change', async () => {
      const { tenant, device } = await tenantWithDevice()
      const before = await store.getDevice(tenant, device)
      await drainOutbox()
      await store.touchDevice(tenant, device, new Date('2030-01-01T10:00:00.000Z'))
      await store.touchDevice(tenant, device, new Date('2030-01-01T09:00:00.000Z'))
      await store.touchDevice(tenant, 'missing', new Date('2030-01-01T09:00:00.000Z'))
      const after = await store.getDevice(tenant, device)
      expect(after).toEqual({ ...before, lastSeen: '2030-01-01T10:00:00.000Z' })
      expect(await changes()).toEqual([])
    })

    it('refuses devices past the tenant quota, and counts again after a delete', async () => {
      const tenant = tenantId()
      await store.createTenant(
        tenant,
        tenantSpec({ quotas: quotas({ maxDevices: 2, maxMessagesPerSecond: null }) }),
      )
      await store.createDevice(tenant, 'a', deviceSpec())
      await store.createDevice(tenant, 'b', deviceSpec())
      const err = await failsWith(store.createDevice(tenant, 'c', deviceSpec()), 'REGISTRY_QUOTA_EXCEEDED')
      expect(err.status).toBe(403)
      expect(await store.getDevice(tenant, 'c')).toBeUndefined()
      await store.deleteDevice(tenant, 'a')
      await store.createDevice(tenant, 'c', deviceSpec())
      // Raising the quota takes effect at once.
      await store.updateTenant(
        tenant,
        tenantSpec({ quotas: quotas({ maxDevices: null, maxMessagesPerSecond: null }) }),
      )
      await store.createDevice(tenant, 'd', deviceSpec())
      expect((await store.listDevices(tenant)).items.map((d) => d.id)).toEqual(['b', 'c', 'd'])
    })

    it('lets exactly one of several concurrent creations take the last quota slot', async () => {
      const tenant = tenantId()
      await store.createTenant(
        tenant,
        tenantSpec({ quotas: quotas({ maxDevices: 3, maxMessagesPerSecond: null }) }),
      )
      await store.createDevice(tenant, 'first', deviceSpec())
      await store.createDevice(tenant, 'second', deviceSpec())
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.createDevice(tenant, `racer-${i}`, deviceSpec())),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r) => r.status === 'rejected')
      expect(won).toHaveLength(1)
      for (const r of lost) expect(isTributaryError(r.reason, 'REGISTRY_QUOTA_EXCEEDED')).toBe(true)
      expect((await store.listDevices(tenant)).items).toHaveLength(3)
    })

    it('filters by labels and pages through the result without duplicates or gaps', async () => {
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      const expected: string[] = []
      for (let i = 0; i < 23; i++) {
        const id = `dev-${String(i).padStart(2, '0')}`
        const labels: Record<string, string> =
          i % 3 === 0 ? { kind: 'meter', site: 'north' } : { kind: 'meter' }
        if (i % 2 === 0) labels.site = 'north'
        await store.createDevice(tenant, id, deviceSpec({ labels }))
        if (labels.site === 'north') expected.push(id)
      }
      const seen: string[] = []
      let after: string | undefined
      let pages = 0
      do {
        const page = await store.listDevices(tenant, {
          labels: { kind: 'meter', site: 'north' },
          limit: 4,
          ...(after === undefined ? {} : { after }),
        })
        seen.push(...page.items.map((d) => d.id))
        after = page.next ?? undefined
        pages++
      } while (after !== undefined && pages < 100)
      expect(seen).toEqual(expected)
      expect(pages).toBe(Math.ceil(expected.length / 4))
      expect((await store.listDevices(tenant, { labels: { kind: 'meter' } })).items).toHaveLength(23)
      expect((await store.listDevices(tenant, { labels: { kind: 'valve' } })).items).toEqual([])
      const exact = await store.listDevices(tenant, { limit: 23 })
      expect(exact.items).toHaveLength(23)
      expect(exact.next).toBeNull()
    })
  })

  describe('credentials', () => {
    it('creates each type with a store-made id, reads and lists them', async () => {
      const { tenant, device } = await tenantWithDevice()
      const made: Credential[] = []
      for (const c of [
        password(tenant, device),
        psk(tenant, device),
        x509(tenant, device, { cn: `${device}.${tenant}` }),
        x509(tenant, device, { fingerprint: '01'.repeat(32) }),
        token(tenant, device, '2031-06-01T12:00:00.000Z'),
        token(tenant, device),
      ]) {
        const created = await store.createCredential(c)
        expect(created).toEqual({
          ...c,
          id: created.id,
          version: 1,
          createdAt: created.createdAt,
          updatedAt: created.createdAt,
        })
        expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        expect(await store.getCredential(tenant, device, created.id)).toEqual(created)
        made.push(created)
      }
      expect(await store.listCredentials(tenant, device)).toEqual(
        [...made].sort((a, b) => (a.id < b.id ? -1 : 1)),
      )
      expect(await store.getCredential(tenant, 'other', made[0]?.id ?? '')).toBeUndefined()
      expect(await store.listCredentials(tenant, 'other')).toEqual([])
    })

    it('allows one password and one PSK per device (409), and refuses a missing device (404)', async () => {
      const { tenant, device } = await tenantWithDevice()
      await store.createDevice(tenant, 'd2', deviceSpec())
      await store.createCredential(password(tenant, device))
      await store.createCredential(psk(tenant, device))
      const dup = await failsWith(
        store.createCredential(password(tenant, device, 'other')),
        'REGISTRY_CONFLICT',
      )
      expect(dup.message).toMatch(/password/)
      expect(
        (await failsWith(store.createCredential(psk(tenant, device)), 'REGISTRY_CONFLICT')).message,
      ).toMatch(/PSK/)
      await store.createCredential(password(tenant, 'd2'))
      await store.createCredential(token(tenant, device))
      await store.createCredential(token(tenant, device))
      await failsWith(store.createCredential(password(tenant, 'missing')), 'REGISTRY_NOT_FOUND')
      await failsWith(store.createCredential(password(tenantId(), device)), 'REGISTRY_NOT_FOUND')
      expect((await store.listCredentials(tenant, device)).map((c) => c.type).sort()).toEqual([
        'password',
        'psk',
        'token',
        'token',
      ])
    })

    it('keeps X.509 subject CNs and fingerprints unique per tenant, not across tenants', async () => {
      const a = await tenantWithDevice()
      const b = await tenantWithDevice()
      await store.createDevice(a.tenant, 'd2', deviceSpec())
      await store.createCredential(x509(a.tenant, 'd1', { cn: 'shared-cn' }))
      await store.createCredential(x509(a.tenant, 'd1', { fingerprint: 'aa'.repeat(32) }))
      const cn = await failsWith(
        store.createCredential(x509(a.tenant, 'd2', { cn: 'shared-cn' })),
        'REGISTRY_CONFLICT',
      )
      expect(cn.message).toContain('shared-cn')
      const fp = await failsWith(
        store.createCredential(x509(a.tenant, 'd2', { fingerprint: 'aa'.repeat(32) })),
        'REGISTRY_CONFLICT',
      )
      expect(fp.message).toContain('aa'.repeat(32))
      await store.createCredential(x509(b.tenant, 'd1', { cn: 'shared-cn' }))
      await store.createCredential(x509(b.tenant, 'd1', { fingerprint: 'aa'.repeat(32) }))
    })

    it('refuses credentials whose type-specific fields are missing or malformed', async () => {
      const { tenant, device } = await tenantWithDevice()
      const noCn = { ...x509(tenant, device, { cn: 'x' }), subjectCn: null }
      await failsWith(store.createCredential(noCn), 'REGISTRY_INVALID')
      await failsWith(store.createCredential(token(tenant, device, 'not a time')), 'REGISTRY_INVALID')
      expect(await store.listCredentials(tenant, device)).toEqual([])
    })

    it('updates the mutable fields with versions, 412, 404, 409 and no change of type', async () => {
      const { tenant, device } = await tenantWithDevice()
      await store.createDevice(tenant, 'd2', deviceSpec())
      const created = await store.createCredential(password(tenant, device))
      if (created.type !== 'password') throw new Error(`made a ${created.type} credential`)
      const updated = await store.updateCredential(
        { ...created, passwordHash: 'new-hash', enabled: false, expiresAt: '2032-01-01T00:00:00.000Z' },
        { ifVersion: 1 },
      )
      expect(updated).toEqual({
        ...created,
        passwordHash: 'new-hash',
        enabled: false,
        expiresAt: '2032-01-01T00:00:00.000Z',
        version: 2,
        updatedAt: updated.updatedAt,
      })
      const stale = await failsWith(
        store.updateCredential(created, { ifVersion: 1 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(stale.details).toEqual({ current: 2 })
      await failsWith(store.updateCredential({ ...created, id: 'missing' }), 'REGISTRY_NOT_FOUND')
      const asPsk: Credential = { ...created, type: 'psk', identity: 'x', keyEncrypted: 'y' }
      await failsWith(store.updateCredential(asPsk), 'REGISTRY_INVALID')

      await store.createCredential(x509(tenant, 'd2', { cn: 'taken' }))
      const mine = await store.createCredential(x509(tenant, device, { cn: 'mine' }))
      await failsWith(
        store.updateCredential({ ...mine, subjectCn: 'taken' } as Credential),
        'REGISTRY_CONFLICT',
      )
      expect(await store.getCredential(tenant, device, mine.id)).toEqual(mine)
      const moved = await store.updateCredential({ ...mine, subjectCn: 'renamed' } as Credential)
      expect(await store.findX509(tenant, { cn: 'renamed' })).toEqual(moved)
      expect(await store.findX509(tenant, { cn: 'mine' })).toBeUndefined()
    })

    it('deletes a credential with a version check, and with its device', async () => {
      const { tenant, device } = await tenantWithDevice()
      const a = await store.createCredential(password(tenant, device))
      const b = await store.createCredential(token(tenant, device))
      await failsWith(
        store.deleteCredential(tenant, device, a.id, { ifVersion: 2 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      await store.deleteCredential(tenant, device, a.id, { ifVersion: 1 })
      expect(await store.getCredential(tenant, device, a.id)).toBeUndefined()
      await failsWith(store.deleteCredential(tenant, device, a.id), 'REGISTRY_NOT_FOUND')
      await store.deleteDevice(tenant, device)
      expect(await store.getCredential(tenant, device, b.id)).toBeUndefined()
      expect(await store.findDeviceToken(b.id)).toBeUndefined()
    })

    it('finds credentials on the hot path, disabled ones included, deleted ones not', async () => {
      const { tenant, device } = await tenantWithDevice()
      const pw = await store.createCredential(password(tenant, device))
      const key = await store.createCredential(psk(tenant, device))
      const byCn = await store.createCredential(x509(tenant, device, { cn: 'cn-1' }))
      const byFp = await store.createCredential(x509(tenant, device, { fingerprint: 'bb'.repeat(32) }))
      const tok = await store.createCredential(token(tenant, device))

      expect(await store.findPassword(tenant, device)).toEqual(pw)
      expect(await store.findPsk(tenant, device)).toEqual(key)
      expect(await store.findX509(tenant, { cn: 'cn-1' })).toEqual(byCn)
      expect(await store.findX509(tenant, { fingerprint: 'bb'.repeat(32) })).toEqual(byFp)
      expect(await store.findDeviceToken(tok.id)).toEqual(tok)

      // Misses: another tenant, another device, an id of another type, and a match mode it was not made for.
      expect(await store.findPassword(tenantId(), device)).toBeUndefined()
      expect(await store.findPassword(tenant, 'd2')).toBeUndefined()
      expect(await store.findX509(tenantId(), { cn: 'cn-1' })).toBeUndefined()
      expect(await store.findDeviceToken(pw.id)).toBeUndefined()
      expect(await store.findDeviceToken('not-a-uuid')).toBeUndefined()
      expect(await store.findX509(tenant, { fingerprint: 'cn-1' })).toBeUndefined()

      const disabled = await store.updateCredential({ ...pw, enabled: false })
      expect(await store.findPassword(tenant, device)).toEqual(disabled)
      expect(disabled.enabled).toBe(false)

      await store.deleteCredential(tenant, device, pw.id)
      await store.deleteCredential(tenant, device, tok.id)
      expect(await store.findPassword(tenant, device)).toBeUndefined()
      expect(await store.findDeviceToken(tok.id)).toBeUndefined()
    })
  })

  describe('API tokens', () => {
    it('creates, reads, finds, lists and deletes API tokens', async () => {
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      const created = await store.createApiToken({
        tenant,
        name: 'deploy',
        role: 'manager',
        tokenHash: '12'.repeat(32),
        expiresAt: '2030-05-05T05:05:05.000Z',
      })
      expect(created).toMatchObject({ tenant, name: 'deploy', role: 'manager', version: 1 })
      expect(await store.getApiToken(tenant, created.id)).toEqual(created)
      expect(await store.findApiToken(created.id)).toEqual(created)
      expect(await store.getApiToken(tenantId(), created.id)).toBeUndefined()
      const ids = [created.id]
      for (let i = 0; i < 4; i++) {
        ids.push(
          (
            await store.createApiToken({
              tenant,
              name: `t${i}`,
              role: 'reader',
              tokenHash: 'x',
              expiresAt: null,
            })
          ).id,
        )
      }
      const first = await store.listApiTokens(tenant, { limit: 3 })
      expect(first.next).not.toBeNull()
      const second = await store.listApiTokens(tenant, { limit: 3, after: first.next ?? '' })
      expect(second.next).toBeNull()
      expect([...first.items, ...second.items].map((t) => t.id)).toEqual([...ids].sort())

      await failsWith(store.deleteApiToken(tenant, created.id, { ifVersion: 3 }), 'REGISTRY_VERSION_MISMATCH')
      await store.deleteApiToken(tenant, created.id, { ifVersion: 1 })
      expect(await store.findApiToken(created.id)).toBeUndefined()
      await failsWith(store.deleteApiToken(tenant, created.id), 'REGISTRY_NOT_FOUND')
      await failsWith(
        store.createApiToken({
          tenant: tenantId(),
          name: 'x',
          role: 'admin',
          tokenHash: 'x',
          expiresAt: null,
        }),
        'REGISTRY_NOT_FOUND',
      )
    })
  })

  describe('outbox', () => {
    it('records every write as a change, in order, until marked published', async () => {
      await drainOutbox()
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      await store.updateTenant(tenant, tenantSpec({ enabled: false }))
      await store.createDevice(tenant, 'd1', deviceSpec())
      await store.updateDevice(tenant, 'd1', deviceSpec({ enabled: false }))
      const cred = await store.createCredential(password(tenant, 'd1'))
      await store.updateCredential({ ...cred, enabled: false })
      await store.deleteCredential(tenant, 'd1', cred.id)
      const api = await store.createApiToken({
        tenant,
        name: 'n',
        role: 'reader',
        tokenHash: 'h',
        expiresAt: null,
      })
      await store.deleteApiToken(tenant, api.id)
      await store.deleteDevice(tenant, 'd1')
      await store.deleteTenant(tenant)

      const pending = await store.pendingChanges(100)
      expect(pending.map((e) => e.change)).toEqual([
        { op: 'created', resource: 'tenant', tenant, version: 1 },
        { op: 'updated', resource: 'tenant', tenant, version: 2 },
        { op: 'created', resource: 'device', tenant, device: 'd1', version: 1 },
        { op: 'updated', resource: 'device', tenant, device: 'd1', version: 2 },
        { op: 'created', resource: 'credential', tenant, device: 'd1', id: cred.id, version: 1 },
        { op: 'updated', resource: 'credential', tenant, device: 'd1', id: cred.id, version: 2 },
        { op: 'deleted', resource: 'credential', tenant, device: 'd1', id: cred.id, version: 2 },
        { op: 'created', resource: 'api-token', tenant, id: api.id, version: 1 },
        { op: 'deleted', resource: 'api-token', tenant, id: api.id, version: 1 },
        { op: 'deleted', resource: 'device', tenant, device: 'd1', version: 2 },
        { op: 'deleted', resource: 'tenant', tenant, version: 2 },
      ])
      const seqs = pending.map((e) => e.seq)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      expect(new Set(seqs).size).toBe(seqs.length)

      expect((await store.pendingChanges(3)).map((e) => e.seq)).toEqual(seqs.slice(0, 3))
      await store.markPublished(seqs[4] ?? 0)
      expect((await store.pendingChanges(100)).map((e) => e.seq)).toEqual(seqs.slice(5))
      await store.markPublished(seqs.at(-1) ?? 0)
      expect(await store.pendingChanges(100)).toEqual([])
      await failsWith(store.pendingChanges(0), 'REGISTRY_INVALID')
    })

    it('leaves no change and no partial data behind a failed write', async () => {
      const tenant = tenantId()
      await store.createTenant(
        tenant,
        tenantSpec({ quotas: quotas({ maxDevices: 1, maxMessagesPerSecond: null }) }),
      )
      await store.createDevice(tenant, 'd1', deviceSpec())
      const cred = await store.createCredential(password(tenant, 'd1'))
      const before = {
        tenant: await store.getTenant(tenant),
        devices: await store.listDevices(tenant),
        credentials: await store.listCredentials(tenant, 'd1'),
      }
      await drainOutbox()

      await failsWith(store.createTenant(tenant, tenantSpec()), 'REGISTRY_CONFLICT')
      await failsWith(store.createDevice(tenant, 'd1', deviceSpec()), 'REGISTRY_QUOTA_EXCEEDED')
      await failsWith(store.createCredential(password(tenant, 'd1')), 'REGISTRY_CONFLICT')
      await failsWith(
        store.updateTenant(tenant, tenantSpec({ enabled: false }), { ifVersion: 9 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      await failsWith(
        store.updateCredential({ ...cred, enabled: false }, { ifVersion: 9 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      await failsWith(store.deleteDevice(tenant, 'd1', { ifVersion: 9 }), 'REGISTRY_VERSION_MISMATCH')
      await failsWith(store.createDevice(tenantId(), 'd1', deviceSpec()), 'REGISTRY_NOT_FOUND')

      expect(await changes()).toEqual([])
      expect({
        tenant: await store.getTenant(tenant),
        devices: await store.listDevices(tenant),
        credentials: await store.listCredentials(tenant, 'd1'),
      }).toEqual(before)
    })

    it('keeps seq order equal to commit order under concurrent writes', async () => {
      await drainOutbox()
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      await Promise.all(
        Array.from({ length: 12 }, (_, i) => store.createDevice(tenant, `c${i}`, deviceSpec())),
      )
      const pending = await store.pendingChanges(100)
      expect(pending).toHaveLength(13)
      expect(new Set(pending.map((e) => e.change.device ?? 'tenant')).size).toBe(13)
    })
  })

  describe('lifecycle', () => {
    it('keeps its data across close and reopen, and migrating again changes nothing', async () => {
      const { tenant, device } = await tenantWithDevice()
      const cred = await store.createCredential(password(tenant, device))
      await store.close()
      store = await engine.open()
      expect(await store.findPassword(tenant, device)).toEqual(cred)
      await store.close()
      const migrations = await engine.sql<{ version: number; name: string }>(
        'SELECT version, name FROM schema_migrations ORDER BY version',
      )
      expect(migrations).toEqual([
        { version: 1, name: 'registry' },
        { version: 2, name: 'processing' },
        { version: 3, name: 'webhook subscriptions' },
        { version: 4, name: 'webhook operations' },
        { version: 5, name: 'command queue' },
        { version: 6, name: 'webhook re-drive and stats' },
        { version: 7, name: 'device configuration' },
        { version: 8, name: 'device configuration state' },
        { version: 9, name: 'device files' },
        { version: 10, name: 'configuration changed events' },
        { version: 11, name: 'blob sweeps' },
        { version: 12, name: 'configuration rules' },
        { version: 13, name: 'published files' },
      ])
      store = await engine.open()
      expect(store.kind).toBe(engine.name)
    })

    it('reads quotas stored before the processor quotas existed as null (no limit)', async () => {
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      await store.close()
      await engine.sql(
        `UPDATE tenants SET quotas = '{"maxDevices": 7, "maxMessagesPerSecond": 3}'::jsonb WHERE id = '${tenant}'`,
      )
      store = await engine.open()
      const old = await store.getTenant(tenant)
      expect(old?.quotas).toEqual(quotas({ maxDevices: 7, maxMessagesPerSecond: 3 }))
      expect((await store.listTenants({ limit: 1000 })).items.find((t) => t.id === tenant)?.quotas).toEqual(
        old?.quotas,
      )
      const updated = await store.updateTenant(tenant, {
        ...tenantSpec(),
        quotas: { ...old!.quotas, maxBytesPerSecond: 9 },
      })
      expect(updated.quotas).toEqual(quotas({ maxDevices: 7, maxMessagesPerSecond: 3, maxBytesPerSecond: 9 }))
    })

    it('answers REGISTRY_UNAVAILABLE (retryable) once closed', async () => {
      await store.close()
      await store.close() // twice is harmless
      const err = await failsWith(store.getTenant('x'), 'REGISTRY_UNAVAILABLE')
      expect(err.canRetry).toBe(true)
      expect(err.cause).toBeInstanceOf(Error)
      await failsWith(store.createTenant(tenantId(), tenantSpec()), 'REGISTRY_UNAVAILABLE')
      store = await engine.open()
    })
  })
})
