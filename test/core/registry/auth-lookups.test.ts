// The processors' cached lookups of RegistryAuth (channel schemas, route tables): served from the
// cache, and dropped by exactly the registry changes that concern them. Doubles at the ports: a
// store that counts its reads, and a bus that hands registry change events to the subscription.
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { BusMessage, SubscribeOptions, Subscription } from '../../../core/bus/bus.ts'
import { TributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth, invalidatedTags } from '../../../core/registry/auth.ts'
import { encodeChange } from '../../../core/registry/changes.ts'
import type {
  ChannelSchema,
  Device,
  RegistryChange,
  RouteTable,
  Tenant,
} from '../../../core/registry/model.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deviceSpec, tenantSpec } from './store-fixtures.ts'

const TOPIC = 'tributary.registry'
const at = '2026-01-01T00:00:00.000Z'
const versioned = { version: 1, createdAt: at, updatedAt: at }
const tenantRow = (id: string): Tenant => ({ id, ...tenantSpec(), ...versioned })
const deviceRow = (tenant: string, id: string): Device => ({
  tenant,
  id,
  ...deviceSpec(),
  lastSeen: null,
  ...versioned,
})

/** The rows the store double answers with; tests change them as the registry would. */
interface Rows {
  tenants: Map<string, Tenant>
  devices: Map<string, Device>
  schemas: Map<string, ChannelSchema>
  routes: Map<string, RouteTable>
  /** What getRouteTable throws instead of answering, if set. */
  failure?: Error | undefined
}

function countingStore(rows: Rows) {
  const reads: Record<string, number> = {}
  const count = (name: string) => (reads[name] = (reads[name] ?? 0) + 1)
  const methods: Partial<RegistryStore> = {
    getTenant: async (id) => (count('getTenant'), rows.tenants.get(id)),
    getDevice: async (t, d) => (count('getDevice'), rows.devices.get(`${t}/${d}`)),
    getChannelSchema: async (t, c) => (count('getChannelSchema'), rows.schemas.get(`${t}/${c}`)),
    getRouteTable: async (t) => {
      count('getRouteTable')
      if (rows.failure !== undefined) throw rows.failure
      const table = rows.routes.get(t)
      if (table !== undefined) return table
      if (!rows.tenants.has(t)) throw new TributaryError('REGISTRY_NOT_FOUND', `tenant ${t} does not exist`)
      return { tenant: t, rules: [], version: 0, createdAt: at, updatedAt: at }
    },
  }
  const store = new Proxy(methods as RegistryStore, {
    get: (target, name: string) =>
      (target as unknown as Record<string, unknown>)[name] ??
      (() => Promise.reject(new Error(`unexpected store.${name}()`))),
  })
  return { store, reads }
}

let rows: Rows
let reads: Record<string, number>
let auth: RegistryAuth
let handler: SubscribeOptions['handler']
let offset = 0

/** Delivers a change as the outbox relay would publish it, and waits until it is applied. */
async function deliver(change: RegistryChange): Promise<void> {
  const record = encodeChange(change, TOPIC)
  const message: BusMessage = {
    topic: TOPIC,
    partition: 0,
    offset: offset++,
    timestamp: Date.now(),
    key: record.key,
    value: record.value,
    headers: record.headers ?? new Map(),
  }
  await handler([message])
}

const schema = (tenant: string, channel: string, version = 1): ChannelSchema => ({
  tenant,
  channel,
  schema: { title: `${channel} v${version}` },
  version,
  createdAt: at,
  updatedAt: at,
})

beforeEach(async () => {
  rows = {
    tenants: new Map([
      ['acme', tenantRow('acme')],
      ['other', tenantRow('other')],
    ]),
    devices: new Map([['acme/d1', deviceRow('acme', 'd1')]]),
    schemas: new Map([['acme/telemetry/temp', schema('acme', 'telemetry/temp')]]),
    routes: new Map(),
  }
  const counting = countingStore(rows)
  reads = counting.reads
  auth = createRegistryAuth({
    store: counting.store,
    bus: {
      subscribe: async (options: SubscribeOptions) => {
        handler = options.handler
        return { close: async () => {} } as unknown as Subscription
      },
    },
    topic: TOPIC,
    secrets: createSecrets(randomBytes(32), { scryptLogN: 10 }),
    cacheTtlMs: 600_000,
    log: silentLogger,
  })
  await auth.start()
})

afterEach(async () => auth.stop())

describe('channel schemas', () => {
  it('are read once and then served from the cache, absent ones included', async () => {
    expect(await auth.channelSchema('acme', 'telemetry/temp')).toEqual(schema('acme', 'telemetry/temp'))
    expect(await auth.channelSchema('acme', 'telemetry/temp')).toEqual(schema('acme', 'telemetry/temp'))
    expect(await auth.channelSchema('acme', 'no/schema')).toBeUndefined()
    expect(await auth.channelSchema('acme', 'no/schema')).toBeUndefined()
    expect(reads['getChannelSchema']).toBe(2)
  })

  it('refuse what is not a tenant id and a channel without reading the store', async () => {
    for (const [t, c] of [
      ['ACME', 'a'],
      ['acme', 'a/+'],
      ['acme', ''],
      ['acme', 'x'.repeat(257)],
    ] as const) {
      expect(await auth.channelSchema(t, c)).toBeUndefined()
    }
    expect(reads['getChannelSchema']).toBeUndefined()
  })

  it('are dropped by a change of that channel only, devices and tenants staying cached', async () => {
    await auth.channelSchema('acme', 'telemetry/temp')
    await auth.channelSchema('acme', 'status')
    await auth.channelSchema('other', 'telemetry/temp')
    await auth.findDevice('acme', 'd1')
    await auth.tenant('acme')
    const before = { ...reads }

    rows.schemas.set('acme/telemetry/temp', schema('acme', 'telemetry/temp', 2))
    rows.schemas.set('acme/status', schema('acme', 'status'))
    await deliver({ op: 'updated', resource: 'schema', tenant: 'acme', id: 'telemetry/temp', version: 2 })
    expect((await auth.channelSchema('acme', 'telemetry/temp'))?.version).toBe(2)
    // The absent schema of another channel stays cached (no event for it yet).
    expect(await auth.channelSchema('acme', 'status')).toBeUndefined()
    expect(await auth.channelSchema('other', 'telemetry/temp')).toBeUndefined()
    await auth.findDevice('acme', 'd1')
    await auth.tenant('acme')
    expect(reads).toEqual({ ...before, getChannelSchema: before['getChannelSchema']! + 1 })

    await deliver({ op: 'created', resource: 'schema', tenant: 'acme', id: 'status', version: 1 })
    expect((await auth.channelSchema('acme', 'status'))?.schema).toEqual({ title: 'status v1' })
    rows.schemas.delete('acme/status')
    await deliver({ op: 'deleted', resource: 'schema', tenant: 'acme', id: 'status', version: 1 })
    expect(await auth.channelSchema('acme', 'status')).toBeUndefined()
  })

  it('are dropped, with everything else of the tenant, by a tenant change', async () => {
    await auth.channelSchema('acme', 'telemetry/temp')
    rows.schemas.delete('acme/telemetry/temp')
    await deliver({ op: 'deleted', resource: 'tenant', tenant: 'acme', version: 1 })
    expect(await auth.channelSchema('acme', 'telemetry/temp')).toBeUndefined()
    expect(reads['getChannelSchema']).toBe(2)
  })
})

describe('route tables', () => {
  const rules = [{ name: 'r', match: {}, actions: [{ action: 'drop' as const }] }]

  it('are read once, dropped by a route change of the tenant only, devices staying cached', async () => {
    expect(await auth.routeTable('acme')).toMatchObject({ version: 0, rules: [] })
    expect(await auth.routeTable('other')).toMatchObject({ version: 0, rules: [] })
    await auth.routeTable('acme')
    await auth.findDevice('acme', 'd1')
    expect(reads['getRouteTable']).toBe(2)

    rows.routes.set('acme', { tenant: 'acme', rules, version: 1, createdAt: at, updatedAt: at })
    await deliver({ op: 'created', resource: 'routes', tenant: 'acme', version: 1 })
    expect(await auth.routeTable('acme')).toMatchObject({ version: 1, rules })
    expect(await auth.routeTable('other')).toMatchObject({ version: 0 })
    await auth.findDevice('acme', 'd1')
    expect(reads['getRouteTable']).toBe(3)
    expect(reads['getDevice']).toBe(1)
  })

  it('are dropped by a tenant change, and empty for a tenant that does not exist', async () => {
    rows.routes.set('acme', { tenant: 'acme', rules, version: 1, createdAt: at, updatedAt: at })
    expect((await auth.routeTable('acme')).rules).toEqual(rules)
    rows.routes.delete('acme')
    rows.tenants.delete('acme')
    await deliver({ op: 'deleted', resource: 'tenant', tenant: 'acme', version: 1 })
    expect(await auth.routeTable('acme')).toMatchObject({ tenant: 'acme', version: 0, rules: [] })
    expect(await auth.routeTable('NOT-A-TENANT')).toMatchObject({ version: 0, rules: [] })
    expect(reads['getRouteTable']).toBe(2)
  })

  it('pass store failures on (the processors retry the batch)', async () => {
    const failing = new TributaryError('REGISTRY_UNAVAILABLE', 'down')
    rows.failure = failing
    await expect(auth.routeTable('acme')).rejects.toBe(failing)
  })
})

describe('invalidated tags', () => {
  it('of schema and route changes name only those entries', () => {
    expect(
      invalidatedTags({ op: 'updated', resource: 'schema', tenant: 'acme', id: 'a/b', version: 2 }),
    ).toEqual(['s:acme/a/b'])
    expect(invalidatedTags({ op: 'updated', resource: 'schema', tenant: 'acme', version: 2 })).toEqual([
      's:acme',
    ])
    expect(invalidatedTags({ op: 'created', resource: 'routes', tenant: 'acme', version: 1 })).toEqual([
      'r:acme',
    ])
  })
})
