// The desired-configuration part of the RegistryStore contract (documents per tenant, application
// version and device; the device attribute appVersion), run by store.contract.test.ts per engine.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import { buildConfigChangedEvent } from '../../../core/events/config.ts'
import type { ConfigObject } from '../../../core/registry/device-config.ts'
import { CONFIG_RULES_MAX, configId } from '../../../core/registry/device-config.ts'
import type { ConfigChange, RegistryChange } from '../../../core/registry/model.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deviceSpec, failsWith, tenantId, tenantSpec } from './store-fixtures.ts'

export interface ConfigContractContext {
  store(): RegistryStore
  drainOutbox(): Promise<void>
  changes(): Promise<RegistryChange[]>
}

const DOCUMENT = { 'naïve ☃': { rate: 10, list: [1, 'two', null] }, quote: "o'brien", flag: true }

export function configContract(ctx: ConfigContractContext): void {
  const store = () => ctx.store()
  const newTenant = async (): Promise<string> => {
    const id = tenantId()
    await store().createTenant(id, tenantSpec())
    await store().createDevice(id, 'd1', deviceSpec({ appVersion: 'v1.2' }))
    return id
  }

  describe('desired configuration', () => {
    it('stores appVersion with the device and changes it with an update', async () => {
      const tenant = await newTenant()
      expect((await store().getDevice(tenant, 'd1'))?.appVersion).toBe('v1.2')
      const updated = await store().updateDevice(tenant, 'd1', deviceSpec({ appVersion: null }))
      expect(updated.appVersion).toBeNull()
      expect((await store().getDevice(tenant, 'd1'))?.appVersion).toBeNull()
    })

    it('reads version 0 and {} until written, then creates and replaces each level under ifVersion', async () => {
      const tenant = await newTenant()
      await ctx.drainOutbox()
      const levels = [
        { level: 'tenant' },
        { level: 'app-version', appVersion: 'v1.2' },
        { level: 'device', device: 'd1' },
      ] as const
      for (const scope of levels) {
        const empty = await store().getConfigDocument(tenant, scope)
        expect(empty).toMatchObject({ tenant, scope, document: {}, version: 0 })
        const created = await store().putConfigDocument(tenant, scope, DOCUMENT, { ifVersion: 0 })
        expect(created).toEqual({
          tenant,
          scope,
          document: DOCUMENT,
          version: 1,
          createdAt: created.createdAt,
          updatedAt: created.createdAt,
        })
        expect(await store().getConfigDocument(tenant, scope)).toEqual(created)
        const replaced = await store().putConfigDocument(tenant, scope, { b: 2 }, { ifVersion: 1 })
        expect(replaced).toMatchObject({ version: 2, document: { b: 2 }, createdAt: created.createdAt })
      }
      // Levels are separate documents: another app version is still unwritten.
      expect(
        (await store().getConfigDocument(tenant, { level: 'app-version', appVersion: 'v2' })).version,
      ).toBe(0)
      expect(await ctx.changes()).toEqual([
        { op: 'created', resource: 'config', tenant, version: 1 },
        { op: 'updated', resource: 'config', tenant, version: 2 },
        { op: 'created', resource: 'config', tenant, id: 'v1.2', version: 1 },
        { op: 'updated', resource: 'config', tenant, id: 'v1.2', version: 2 },
        { op: 'created', resource: 'config', tenant, device: 'd1', version: 1 },
        { op: 'updated', resource: 'config', tenant, device: 'd1', version: 2 },
      ])
    })

    it('refuses with 412 or 404 and writes nothing', async () => {
      const tenant = await newTenant()
      await store().putConfigDocument(tenant, { level: 'tenant' }, DOCUMENT)
      await ctx.drainOutbox()
      const exists = await failsWith(
        store().putConfigDocument(tenant, { level: 'tenant' }, {}, { ifVersion: 0 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(exists.details).toEqual({ current: 1 })
      const missing = await failsWith(
        store().putConfigDocument(tenant, { level: 'device', device: 'd1' }, {}, { ifVersion: 3 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(missing.details).toEqual({ current: 0 })
      await failsWith(
        store().putConfigDocument(tenant, { level: 'device', device: 'nobody' }, {}),
        'REGISTRY_NOT_FOUND',
      )
      await failsWith(
        store().getConfigDocument(tenant, { level: 'device', device: 'nobody' }),
        'REGISTRY_NOT_FOUND',
      )
      await failsWith(store().putConfigDocument(tenantId(), { level: 'tenant' }, {}), 'REGISTRY_NOT_FOUND')
      await failsWith(store().getConfigDocument(tenantId(), { level: 'tenant' }), 'REGISTRY_NOT_FOUND')
      expect(await ctx.changes()).toEqual([])
      expect((await store().getConfigDocument(tenant, { level: 'tenant' })).document).toEqual(DOCUMENT)
    })

    it('lets exactly one of several concurrent create-only puts win', async () => {
      const tenant = await newTenant()
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) =>
          store().putConfigDocument(tenant, { level: 'device', device: 'd1' }, { i }, { ifVersion: 0 }),
        ),
      )
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      for (const r of results) {
        if (r.status === 'rejected')
          expect(isTributaryError(r.reason, 'REGISTRY_VERSION_MISMATCH')).toBe(true)
      }
    })

    it('drops the device level with its device', async () => {
      const tenant = await newTenant()
      await store().putConfigDocument(tenant, { level: 'device', device: 'd1' }, DOCUMENT)
      await store().deleteDevice(tenant, 'd1')
      await store().createDevice(tenant, 'd1', deviceSpec())
      expect((await store().getConfigDocument(tenant, { level: 'device', device: 'd1' })).version).toBe(0)
    })
  })

  describe('config.changed fan-out', () => {
    const id = (document: ConfigObject): string => configId(document)
    /** Works every pending job in pages of `size`; the changes announced for `tenant`, and the pages. */
    async function fanout(tenant: string, size = 2) {
      const changes: ConfigChange[] = []
      let pages = 0
      for (;;) {
        const page = await store().configFanoutPage(size, (change) => {
          if (change.tenant === tenant) changes.push(change)
          return buildConfigChangedEvent(change)
        })
        if (!page.pending) return { changes: changes.map(({ time: _, ...c }) => c), pages }
        pages++
      }
    }

    it('announces each device whose effective id changed, with the id before, page by page', async () => {
      const tenant = await newTenant()
      await store().createDevice(tenant, 'd2', deviceSpec())
      await store().createDevice(tenant, 'd3', deviceSpec({ appVersion: 'v1.2' }))
      await fanout(tenant)
      const change = (device: string, from: ConfigObject, to: ConfigObject) => ({
        tenant,
        device,
        previousConfigId: id(from),
        configId: id(to),
      })

      await store().putConfigDocument(tenant, { level: 'tenant' }, { a: 1 })
      const tenantWide = await fanout(tenant)
      expect(tenantWide.changes).toEqual([
        change('d1', {}, { a: 1 }),
        change('d2', {}, { a: 1 }),
        change('d3', {}, { a: 1 }),
      ])
      // Three devices in pages of two: two pages.
      expect(tenantWide.pages).toBe(2)

      await store().putConfigDocument(tenant, { level: 'app-version', appVersion: 'v1.2' }, { b: 2 })
      expect((await fanout(tenant)).changes).toEqual([
        change('d1', { a: 1 }, { a: 1, b: 2 }),
        change('d3', { a: 1 }, { a: 1, b: 2 }),
      ])

      // The same effective configuration: nothing to announce.
      await store().putConfigDocument(tenant, { level: 'device', device: 'd2' }, { a: 1 })
      await store().putConfigDocument(tenant, { level: 'tenant' }, { a: 1 })
      expect((await fanout(tenant)).changes).toEqual([])

      await store().updateDevice(tenant, 'd2', deviceSpec({ appVersion: 'v1.2' }))
      await store().putConfigDocument(tenant, { level: 'device', device: 'd3' }, { c: 3 })
      expect((await fanout(tenant)).changes).toEqual([
        change('d2', { a: 1 }, { a: 1, b: 2 }),
        change('d3', { a: 1, b: 2 }, { a: 1, b: 2, c: 3 }),
      ])

      // The events are in the event outbox, published to the ingress topic by its relay.
      const events = (await store().files.pendingEvents(100)).filter(
        (e) => e.event.attributes.tenant === tenant,
      )
      expect(events).toHaveLength(7)
      expect(events.at(-1)!.event.attributes).toMatchObject({
        type: 'io.tributary.config.changed.v1',
        device: 'd3',
        subject: 'config',
      })
      expect(JSON.parse(events.at(-1)!.event.data!.toString())).toEqual({
        configId: id({ a: 1, b: 2, c: 3 }),
        previousConfigId: id({ a: 1, b: 2 }),
      })
    })

    it('announces the devices a rule and a label change move, and no other', async () => {
      const tenant = await newTenant()
      await store().createDevice(tenant, 'eu1', deviceSpec({ labels: { region: 'eu' } }))
      await store().createDevice(tenant, 'eu2', deviceSpec({ labels: { region: 'eu', tier: 'gold' } }))
      await store().createDevice(tenant, 'us1', deviceSpec({ labels: { region: 'us' } }))
      await store().putConfigDocument(tenant, { level: 'tenant' }, { ntp: 'pool', rate: 1 })
      await fanout(tenant)
      const change = (device: string, from: ConfigObject, to: ConfigObject) => ({
        tenant,
        device,
        previousConfigId: id(from),
        configId: id(to),
      })
      const base = { ntp: 'pool', rate: 1 }

      await store().putConfigRule(tenant, 'eu', {
        selector: { region: 'eu' },
        priority: 0,
        document: { ntp: 'eu' },
      })
      expect((await fanout(tenant, 1)).changes).toEqual([
        change('eu1', base, { ntp: 'eu', rate: 1 }),
        change('eu2', base, { ntp: 'eu', rate: 1 }),
      ])

      // A higher priority merges later; the gold device alone gets both rules.
      await store().putConfigRule(tenant, 'gold', {
        selector: { tier: 'gold' },
        priority: 1,
        document: { ntp: 'gold', rate: 5 },
      })
      expect((await fanout(tenant)).changes).toEqual([
        change('eu2', { ntp: 'eu', rate: 1 }, { ntp: 'gold', rate: 5 }),
      ])

      // The rule moves from eu to us: devices it left and devices it reached.
      await store().putConfigRule(tenant, 'eu', {
        selector: { region: 'us' },
        priority: 0,
        document: { ntp: 'eu' },
      })
      expect((await fanout(tenant)).changes).toEqual([
        change('eu1', { ntp: 'eu', rate: 1 }, base),
        change('us1', base, { ntp: 'eu', rate: 1 }),
      ])

      // A device whose labels change gets the rules of its new labels.
      await store().updateDevice(tenant, 'us1', deviceSpec({ labels: { region: 'us', tier: 'gold' } }))
      await store().updateDevice(tenant, 'eu1', deviceSpec({ labels: { region: 'eu', site: 'x' } }))
      expect((await fanout(tenant)).changes).toEqual([
        change('us1', { ntp: 'eu', rate: 1 }, { ntp: 'gold', rate: 5 }),
      ])

      await store().deleteConfigRule(tenant, 'gold')
      expect((await fanout(tenant)).changes).toEqual([
        change('eu2', { ntp: 'gold', rate: 5 }, base),
        change('us1', { ntp: 'gold', rate: 5 }, { ntp: 'eu', rate: 1 }),
      ])
    })

    it('records no job for a refused write, and a failed page keeps its job', async () => {
      const tenant = await newTenant()
      await fanout(tenant)
      await failsWith(
        store().putConfigDocument(tenant, { level: 'tenant' }, { a: 1 }, { ifVersion: 4 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      expect(await store().configFanoutPage(10, buildConfigChangedEvent)).toEqual({
        pending: false,
        announced: 0,
      })
      await store().putConfigDocument(tenant, { level: 'tenant' }, { a: 1 })
      const failing = store().configFanoutPage(10, () => {
        throw new Error('cannot build the event')
      })
      await expect(failing).rejects.toThrow('cannot build the event')
      expect((await fanout(tenant)).changes).toEqual([
        { tenant, device: 'd1', previousConfigId: id({}), configId: id({ a: 1 }) },
      ])
    })
  })

  describe('configuration rules', () => {
    const rule = (selector: Record<string, string>, document: ConfigObject, priority = 0) => ({
      selector,
      priority,
      document,
    })

    it('creates, lists in merge order, replaces under ifVersion and deletes rules', async () => {
      const tenant = await newTenant()
      const created = await store().putConfigRule(tenant, 'b-eu', rule({ region: 'eu' }, { ntp: 'eu' }, 5), {
        ifVersion: 0,
      })
      expect(created).toMatchObject({
        tenant,
        name: 'b-eu',
        priority: 5,
        version: 1,
        selector: { region: 'eu' },
      })
      expect(created.document).toEqual({ ntp: 'eu' })
      await store().putConfigRule(tenant, 'a-gold', rule({ tier: 'gold' }, { rate: 1 }, 5))
      await store().putConfigRule(tenant, 'z-low', rule({ tier: 'gold' }, { rate: 9 }, -1))
      // Priority first, then name.
      expect((await store().listConfigRules(tenant)).map((r) => r.name)).toEqual(['z-low', 'a-gold', 'b-eu'])

      await failsWith(
        store().putConfigRule(tenant, 'b-eu', rule({ region: 'eu' }, {}), { ifVersion: 0 }),
        'REGISTRY_VERSION_MISMATCH',
      )
      const replaced = await store().putConfigRule(tenant, 'b-eu', rule({ region: 'us' }, { ntp: 'us' }), {
        ifVersion: 1,
      })
      expect(replaced).toMatchObject({ version: 2, selector: { region: 'us' }, priority: 0 })
      expect(await store().getConfigRule(tenant, 'b-eu')).toEqual(replaced)

      await failsWith(store().deleteConfigRule(tenant, 'b-eu', { ifVersion: 1 }), 'REGISTRY_VERSION_MISMATCH')
      await store().deleteConfigRule(tenant, 'b-eu', { ifVersion: 2 })
      expect(await store().getConfigRule(tenant, 'b-eu')).toBeUndefined()
      await failsWith(store().deleteConfigRule(tenant, 'b-eu'), 'REGISTRY_NOT_FOUND')
      await failsWith(
        store().putConfigRule('no-such-tenant', 'r', rule({ a: 'b' }, {})),
        'REGISTRY_NOT_FOUND',
      )

      const changes = (await ctx.changes()).filter((c) => c.tenant === tenant && c.resource === 'config')
      expect(changes.map((c) => [c.op, c.id])).toEqual([
        ['created', 'rules/b-eu'],
        ['created', 'rules/a-gold'],
        ['created', 'rules/z-low'],
        ['updated', 'rules/b-eu'],
        ['deleted', 'rules/b-eu'],
      ])
    })

    it('reads the configuration inputs of many devices at once, unknown ones left out', async () => {
      const tenant = await newTenant()
      await store().createDevice(tenant, 'd2', deviceSpec({ appVersion: 'v2', labels: { region: 'eu' } }))
      await store().putConfigDocument(tenant, { level: 'tenant' }, { a: 1 })
      await store().putConfigDocument(tenant, { level: 'app-version', appVersion: 'v2' }, { b: 2 })
      await store().putConfigDocument(tenant, { level: 'app-version', appVersion: 'unused' }, { c: 3 })
      await store().putConfigDocument(tenant, { level: 'device', device: 'd2' }, { d: 4 })
      const eu = await store().putConfigRule(tenant, 'eu', rule({ region: 'eu' }, { e: 5 }))
      const inputs = await store().configInputs(tenant, ['d1', 'd2', 'nobody'])
      expect(inputs.tenant).toEqual({ document: { a: 1 }, version: 1 })
      // The application versions the devices run (v1.2 never written), not every one written.
      expect(inputs.appVersions).toEqual(
        new Map([
          ['v1.2', { document: {}, version: 0 }],
          ['v2', { document: { b: 2 }, version: 1 }],
        ]),
      )
      expect(inputs.rules).toEqual([eu])
      expect(inputs.devices).toEqual(
        new Map([
          ['d1', { appVersion: 'v1.2', labels: { room: 'lab' }, own: { document: {}, version: 0 } }],
          ['d2', { appVersion: 'v2', labels: { region: 'eu' }, own: { document: { d: 4 }, version: 1 } }],
        ]),
      )
      const none = await store().configInputs('no-such-tenant', ['d1'])
      expect([none.devices.size, none.rules.length, none.tenant.version]).toEqual([0, 0, 0])
    })

    it('keeps rules per tenant and drops them with their tenant', async () => {
      const tenant = await newTenant()
      const other = await newTenant()
      await store().putConfigRule(tenant, 'r', rule({ a: 'b' }, { x: 1 }))
      expect(await store().listConfigRules(other)).toEqual([])
      expect(await store().getConfigRule(other, 'r')).toBeUndefined()
      await store().deleteTenant(tenant)
      expect(await store().listConfigRules(tenant)).toEqual([])
    })

    it('refuses the rule past the per-tenant limit, and lets concurrent creates count', async () => {
      const tenant = await newTenant()
      await Promise.all(
        Array.from({ length: CONFIG_RULES_MAX }, (_, i) =>
          store().putConfigRule(tenant, `r${i}`, rule({ n: String(i) }, {})),
        ),
      )
      await failsWith(
        store().putConfigRule(tenant, 'one-more', rule({ n: 'x' }, {})),
        'REGISTRY_QUOTA_EXCEEDED',
      )
      // Replacing one that exists is no new rule.
      await store().putConfigRule(tenant, 'r0', rule({ n: '0' }, { y: 1 }))
      expect(await store().listConfigRules(tenant)).toHaveLength(CONFIG_RULES_MAX)
    })
  })

  describe('configuration delivery state', () => {
    const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s))
    const report = (configId: string, statusCode = 200, reasonPhrase: string | null = null) => ({
      configId,
      statusCode,
      reasonPhrase,
      protocol: 'http',
      at: at(30),
    })

    it('records deliveries and reports, refuses ids never sent, and counts the fleet by id', async () => {
      const tenant = await newTenant()
      await store().createDevice(tenant, 'd2', deviceSpec())
      await store().createDevice(tenant, 'd3', deviceSpec())
      await ctx.drainOutbox()
      expect(await store().getConfigState(tenant, 'd1')).toBeUndefined()
      expect(await store().recordConfigApplied(tenant, 'd1', report('A'))).toBe(false)

      await store().recordConfigDelivered(tenant, 'd1', 'A', 'mqtt', at(1))
      await store().recordConfigDelivered(tenant, 'd1', 'B', 'http', at(2))
      await store().recordConfigDelivered(tenant, 'd2', 'B', 'http', at(3))
      await store().recordConfigDelivered(tenant, 'd3', 'B', 'coap', at(4))
      expect(await store().getConfigState(tenant, 'd1')).toEqual({
        delivered: { configId: 'B', time: at(2).toISOString(), protocol: 'http' },
        applied: null,
      })
      expect(await store().recordConfigApplied(tenant, 'd1', report('never-sent'))).toBe(false)
      // An older id that was sent may still be reported.
      expect(await store().recordConfigApplied(tenant, 'd1', report('A'))).toBe(true)
      expect(await store().recordConfigApplied(tenant, 'd2', report('B'))).toBe(true)
      expect(await store().recordConfigApplied(tenant, 'd3', report('B', 500, 'no such key ☃'))).toBe(true)
      expect((await store().getConfigState(tenant, 'd3'))?.applied).toEqual({
        configId: 'B',
        statusCode: 500,
        reasonPhrase: 'no such key ☃',
        time: at(30).toISOString(),
        protocol: 'http',
      })
      expect(await store().configStatus(tenant)).toEqual([
        { configId: 'B', applied: 1, rejected: 1, pending: 1 },
      ])
      // Neither is a registry change.
      expect(await ctx.changes()).toEqual([])
    })

    it('keeps the newest ids sent only, skips deleted devices, and shows no other tenant', async () => {
      const tenant = await newTenant()
      for (let i = 0; i < 10; i++) await store().recordConfigDelivered(tenant, 'd1', `id${i}`, 'mqtt', at(i))
      expect(await store().recordConfigApplied(tenant, 'd1', report('id1'))).toBe(false)
      expect(await store().recordConfigApplied(tenant, 'd1', report('id2'))).toBe(true)
      await store().recordConfigDelivered(tenant, 'gone', 'X', 'mqtt', at(1))
      expect(await store().getConfigState(tenant, 'gone')).toBeUndefined()
      const other = await newTenant()
      expect(await store().configStatus(other)).toEqual([])
      expect(await store().configStatus(tenant)).toEqual([
        { configId: 'id9', applied: 0, rejected: 0, pending: 1 },
      ])
    })
  })
}
