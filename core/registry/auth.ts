// Hot-path authentication of devices (password, certificate, PSK, token) and API tokens, and the
// processors' lookups (channel schemas, route tables), served from in-process caches that every
// registry change event on the bus invalidates, so a change reaches every process within a second.
// Clear passwords are never kept, not even in the cache.
import type { EventBus, Subscription } from '../bus/bus.ts'
import { isTributaryError } from '../errors.ts'
import { isChannel, isDeviceId, isTenantId, uuidv7 } from '../events/ids.ts'
import type { Component } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import { createAuthCache, found } from './auth-cache.ts'
import type { AuthCache } from './auth-cache.ts'
import type { DeviceAuthenticator } from './auth-device.ts'
import { createDeviceAuthenticator } from './auth-device.ts'
import { decodeChange } from './changes.ts'
import type {
  ApiToken,
  ChannelSchema,
  Credential,
  Device,
  RegistryChange,
  Role,
  RouteTable,
  Tenant,
} from './model.ts'
import type { Secrets } from './secrets.ts'
import type { RegistryStore } from './store.ts'

export type {
  DeviceAuthenticator,
  DeviceAuthFailure,
  DeviceAuthResult,
  PskAuthResult,
} from './auth-device.ts'

export interface ApiTokenAuthenticator {
  /** `tat_<id>_<secret>`; undefined when unknown, wrong, expired or deleted. */
  byToken(token: string): Promise<
    | {
        readonly tenant: string
        readonly role: Role
        readonly id: string
        /** ms since the epoch; undefined when the token never expires. */
        readonly expiresAt?: number | undefined
      }
    | undefined
  >
}

export interface RegistryAuth extends Component {
  readonly device: DeviceAuthenticator
  readonly apiTokens: ApiTokenAuthenticator
  tenant(id: string): Promise<Tenant | undefined>
  /** The device's row (cached like tenant()): gateway rules and revocation re-checks read it. */
  findDevice(tenant: string, id: string): Promise<Device | undefined>
  /**
   * A device's credential by id (cached like findDevice; any change of the device's credentials drops
   * it): the processors re-check the credential that authenticated an event.
   */
  findCredential(tenant: string, device: string, id: string): Promise<Credential | undefined>
  /** The schema of a tenant's channel, if it has one (cached; a schema change drops it). */
  channelSchema(tenant: string, channel: string): Promise<ChannelSchema | undefined>
  /** The tenant's route table (cached; a route change drops it); no rules for an unknown tenant. */
  routeTable(tenant: string): Promise<RouteTable>
  /** Registry changes applied to the cache so far. */
  readonly invalidations: number
  readonly cache: Pick<AuthCache, 'size' | 'hits' | 'misses'>
  /** Called after each change has been applied to the cache; returns an unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void
}

export interface RegistryAuthOptions {
  readonly store: RegistryStore
  readonly bus: Pick<EventBus, 'subscribe'>
  readonly topic: string
  readonly secrets: Secrets
  readonly cacheTtlMs: number
  readonly log: Logger
  readonly maxEntries?: number | undefined
  readonly now?: (() => Date) | undefined
}

/**
 * The cache tags a change drops: a tenant change drops everything of that tenant; a schema or route
 * change only the tenant's schema or route entries.
 */
export function invalidatedTags(change: RegistryChange): string[] {
  const t = change.tenant
  if (change.resource === 'api-token' && change.id !== undefined) return [`a:${t}/${change.id}`]
  if (change.resource === 'schema') return [change.id === undefined ? `s:${t}` : `s:${t}/${change.id}`]
  if (change.resource === 'routes') return [`r:${t}`]
  // Nothing cached here depends on webhook subscriptions (the delivery engine reloads its own) or
  // on desired configuration documents.
  if (change.resource === 'subscription' || change.resource === 'config') return []
  if (change.resource === 'tenant' || change.device === undefined) return [`t:${t}`]
  // Negative lookups by certificate are tagged by tenant only (no device was found): drop them too.
  return [`d:${t}/${change.device}`, `n:${t}`]
}

const EPOCH = new Date(0).toISOString()
const noRoutes = (tenant: string): RouteTable => ({
  tenant,
  rules: [],
  version: 0,
  createdAt: EPOCH,
  updatedAt: EPOCH,
})

export function createRegistryAuth(options: RegistryAuthOptions): RegistryAuth {
  const { store, secrets, log } = options
  const now = options.now ?? (() => new Date())
  const cache = createAuthCache({
    maxEntries: options.maxEntries ?? 10_000,
    ttlMs: options.cacheTtlMs,
    negativeTtlMs: Math.min(1_000, options.cacheTtlMs),
    now: () => now().getTime(),
  })
  // The processors' lookups get a cache of their own: events on ever new channels must not push
  // credentials out of the authentication cache.
  // Bounded lower than the credential cache: a schema may be 64 KiB (1,000 × 64 KiB = 64 MiB at worst).
  const lookups = createAuthCache({
    maxEntries: Math.min(options.maxEntries ?? 1_000, 1_000),
    ttlMs: options.cacheTtlMs,
    negativeTtlMs: Math.min(1_000, options.cacheTtlMs),
    now: () => now().getTime(),
  })
  const listeners = new Set<(change: RegistryChange) => void>()
  let subscription: Subscription | undefined
  let invalidations = 0

  const tenantRow = (t: string): Promise<Tenant | undefined> =>
    cache.get(`t:${t}`, async () => found(await store.getTenant(t), [`t:${t}`]))
  const deviceRow = (t: string, d: string): Promise<Device | undefined> =>
    cache.get(`d:${t}/${d}`, async () => found(await store.getDevice(t, d), [`t:${t}`, `d:${t}/${d}`]))

  // Most channels have no schema: that answer is kept as long as a schema (a change event drops it
  // when one is created), not only for the brief negative TTL.
  const schemaRow = (t: string, c: string): Promise<ChannelSchema | undefined> =>
    lookups.get(`s:${t}/${c}`, async () => ({
      value: await store.getChannelSchema(t, c),
      tags: [`t:${t}`, `s:${t}`, `s:${t}/${c}`],
    }))
  const routeRow = (t: string): Promise<RouteTable> =>
    lookups.get(`r:${t}`, async () => {
      const tags = [`t:${t}`, `r:${t}`]
      try {
        return { value: await store.getRouteTable(t), tags }
      } catch (err) {
        // The tenant is gone (deleted while its events were in flight): it has no rules.
        if (!isTributaryError(err, 'REGISTRY_NOT_FOUND')) throw err
        return { value: noRoutes(t), tags, negative: true }
      }
    })

  const credentialRow = (t: string, d: string, id: string): Promise<Credential | undefined> =>
    cache.get(`c:${t}/${d}/${id}`, async () =>
      found(await store.getCredential(t, d, id), [`t:${t}`, `d:${t}/${d}`]),
    )

  const device = createDeviceAuthenticator({ store, secrets, cache, log, now, tenantRow, deviceRow })

  const apiTokens: ApiTokenAuthenticator = {
    async byToken(token) {
      const parsed = typeof token === 'string' ? secrets.parseToken(token) : undefined
      if (parsed?.kind !== 'api') return undefined
      const row = await cache.get<ApiToken | undefined>(`tat:${parsed.id}`, async () => {
        const token = await store.findApiToken(parsed.id)
        return found(token, token === undefined ? [] : [`t:${token.tenant}`, `a:${token.tenant}/${token.id}`])
      })
      if (row === undefined || !secrets.verifyTokenSecret(parsed.secret, row.tokenHash)) return undefined
      if (row.expiresAt !== null && Date.parse(row.expiresAt) <= now().getTime()) return undefined
      // A disabled tenant keeps its API access (so it can be managed and re-enabled); `enabled` governs devices.
      if ((await tenantRow(row.tenant)) === undefined) return undefined
      const expiresAt = row.expiresAt === null ? undefined : Date.parse(row.expiresAt)
      return { tenant: row.tenant, role: row.role, id: row.id, expiresAt }
    },
  }

  function apply(change: RegistryChange): void {
    const tags = invalidatedTags(change)
    cache.invalidate(tags)
    lookups.invalidate(tags)
    invalidations++
    for (const listener of listeners) {
      try {
        listener(change)
      } catch (err) {
        log.error({ err }, 'registry change listener failed')
      }
    }
  }

  const api: RegistryAuth = {
    name: 'registry-auth',
    device,
    apiTokens,
    cache,
    get invalidations() {
      return invalidations
    },
    async tenant(id) {
      return typeof id === 'string' && isTenantId(id) ? tenantRow(id) : undefined
    },
    async findDevice(t, d) {
      return typeof t === 'string' && isTenantId(t) && typeof d === 'string' && isDeviceId(d)
        ? deviceRow(t, d)
        : undefined
    },
    async findCredential(t, d, id) {
      return typeof t === 'string' &&
        isTenantId(t) &&
        typeof d === 'string' &&
        isDeviceId(d) &&
        typeof id === 'string' &&
        id.length <= 128
        ? credentialRow(t, d, id)
        : undefined
    },
    async channelSchema(t, c) {
      return typeof t === 'string' && isTenantId(t) && typeof c === 'string' && isChannel(c)
        ? schemaRow(t, c)
        : undefined
    },
    async routeTable(t) {
      return typeof t === 'string' && isTenantId(t) ? routeRow(t) : noRoutes(String(t))
    },
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async start() {
      // A group of its own per process: every process must see every change.
      subscription = await options.bus.subscribe({
        group: `registry-cache-${uuidv7()}`,
        topics: [options.topic],
        from: 'latest',
        handler: async (batch) => {
          for (const message of batch) {
            let change: RegistryChange
            try {
              change = decodeChange(message)
            } catch (err) {
              // A change we cannot read may be one that matters: forget everything rather than guess.
              log.warn(
                { err, offset: message.offset },
                'unreadable registry event; clearing the credential cache',
              )
              cache.clear()
              lookups.clear()
              continue
            }
            apply(change)
          }
        },
      })
    },
    async stop() {
      await subscription?.close()
      subscription = undefined
      cache.clear()
      lookups.clear()
    },
  }
  return api
}
