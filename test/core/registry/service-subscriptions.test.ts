// The webhook subscription operations of the registry service against a double of the
// RegistryStore port: bad input never reaches the store, the signing secret reaches it only
// encrypted (for that subscription), views never carry it, and state changes keep to versions.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { invalidatedTags } from '../../../core/registry/auth.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { decodeChange, encodeChange } from '../../../core/registry/changes.ts'
import type { Tenant, WebhookSubscription } from '../../../core/registry/model.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import {
  createRegistryService,
  decryptSubscriptionSecret,
  subscriptionSecretContext,
} from '../../../core/registry/service-impl.ts'
import type { NewSubscription, Precondition, RegistryStore } from '../../../core/registry/store.ts'
import { DEFAULT_TENANT_SPEC } from '../../../core/registry/validate-tenant.ts'

const stamp = { version: 1, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' }
const tenantRow: Tenant = { id: 'acme', ...DEFAULT_TENANT_SPEC, ...stamp }
const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })

/** An in-memory store of one tenant's subscriptions, recording every call. */
function harness(allowPrivateTargets = false) {
  const rows = new Map<string, WebhookSubscription>()
  const calls: string[] = []
  let changes = 0
  const versioned = (tenant: string, id: string, pre: Precondition | undefined) => {
    const row = rows.get(id)
    if (row === undefined || row.tenant !== tenant) throw new Error('not found')
    if (pre?.ifVersion !== undefined && pre.ifVersion !== row.version) throw new Error('stale')
    return row
  }
  const handlers: Partial<RegistryStore> = {
    getTenant: async (id) => (id === 'acme' ? tenantRow : undefined),
    createSubscription: async (s: NewSubscription) => {
      const row = { ...s, replayFrom: null, replayGeneration: 0, ...stamp }
      rows.set(s.id, row)
      return row
    },
    getSubscription: async (tenant, id) => {
      const row = rows.get(id)
      return row?.tenant === tenant ? row : undefined
    },
    listSubscriptions: async () => ({ items: [...rows.values()], next: null }),
    updateSubscription: async (s, pre) => {
      const row = versioned(s.tenant, s.id, pre)
      const next = { ...s, version: row.version + 1 }
      rows.set(s.id, next)
      return next
    },
    setSubscriptionState: async (tenant, id, state, pre) => {
      const row = versioned(tenant, id, pre)
      const next = { ...row, state, version: row.version + 1 }
      rows.set(id, next)
      return next
    },
  }
  const store = new Proxy({} as RegistryStore, {
    get(_, name: string) {
      if (name === 'then') return undefined
      return (...args: unknown[]) => {
        calls.push(name)
        const handler = handlers[name as keyof RegistryStore] as ((...a: unknown[]) => unknown) | undefined
        if (handler === undefined) throw new Error(`unexpected store call ${name}`)
        return handler(...args)
      }
    },
  })
  const registry = createRegistryService({ store, secrets, onChange: () => changes++, allowPrivateTargets })
  return {
    registry,
    rows,
    calls,
    get changes() {
      return changes
    },
  }
}

describe('registry service: webhook subscriptions', () => {
  it('checks every input before touching the store', async () => {
    const h = harness()
    const attempts: Array<() => Promise<unknown>> = [
      () => h.registry.createSubscription('Bad_Tenant', { url: 'https://example.com/' }),
      () => h.registry.createSubscription('acme', { url: 'ftp://example.com/' }),
      () => h.registry.createSubscription('acme', { url: 'http://127.0.0.1:9000/' }),
      () => h.registry.createSubscription('acme', { url: 'https://example.com/', headers: { host: 'x' } }),
      () => h.registry.createSubscription('acme', { url: 'https://example.com/', secret: 'whsec_short' }),
      () => h.registry.createSubscription('acme', { url: 'https://example.com/', bogus: 1 } as never),
      () => h.registry.getSubscription('acme', 'not an id'),
      () => h.registry.updateSubscription('acme', 'x', { state: 'active' } as never),
      () => h.registry.listSubscriptions('acme', { limit: 0 }),
    ]
    for (const attempt of attempts) {
      const err: unknown = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isTributaryError(err, 'REGISTRY_INVALID'), String(err)).toBe(true)
    }
    expect(h.calls).toEqual([])
  })

  it('creates with defaults and a generated secret, stored only encrypted for this subscription', async () => {
    const h = harness()
    const created = await h.registry.createSubscription('acme', { url: 'https://hooks.example.com/in' })
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(created.subscription).not.toHaveProperty('secretEncrypted')
    expect(created.subscription).toMatchObject({
      tenant: 'acme',
      url: 'https://hooks.example.com/in',
      filter: {},
      mode: 'binary',
      batchSize: null,
      headers: {},
      timeoutMs: 10_000,
      retry: { maxAttempts: 8, initialBackoffMs: 1000, maxBackoffMs: 300_000 },
      state: 'active',
      version: 1,
    })
    const stored = h.rows.get(created.subscription.id)
    expect(stored?.secretEncrypted).not.toContain(created.secret.slice(6))
    expect(stored && decryptSubscriptionSecret(secrets, stored)).toBe(created.secret)
    // Bound to the subscription: the ciphertext does not decrypt for another one.
    expect(() =>
      secrets.decrypt(stored?.secretEncrypted ?? '', subscriptionSecretContext('acme', 'other')),
    ).toThrow()
    expect(h.changes).toBe(1)
  })

  it('keeps a caller’s own secret, and 404s for a tenant that does not exist', async () => {
    const h = harness()
    const own = `whsec_${randomBytes(24).toString('base64')}`
    const created = await h.registry.createSubscription('acme', { url: 'https://example.com/', secret: own })
    expect(created.secret).toBe(own)
    const stored = h.rows.get(created.subscription.id)
    expect(stored && decryptSubscriptionSecret(secrets, stored)).toBe(own)
    const err: unknown = await h.registry
      .createSubscription('other', { url: 'https://example.com/' })
      .catch((e: unknown) => e)
    expect(isTributaryError(err, 'REGISTRY_NOT_FOUND')).toBe(true)
  })

  it('allows literal private hosts only when configured to', async () => {
    const h = harness(true)
    const created = await h.registry.createSubscription('acme', { url: 'http://localhost:8080/hook' })
    expect(created.subscription.url).toBe('http://localhost:8080/hook')
  })

  it('updates by merging into the current fields; views never carry the secret', async () => {
    const h = harness()
    const { subscription } = await h.registry.createSubscription('acme', {
      url: 'https://example.com/',
      retry: { maxAttempts: 3 },
      headers: { Authorization: 'Bearer t' },
    })
    const before = h.rows.get(subscription.id)?.secretEncrypted
    const updated = await h.registry.updateSubscription(
      'acme',
      subscription.id,
      { mode: 'structured', retry: { maxBackoffMs: 5000 } },
      { ifVersion: 1 },
    )
    expect(updated).toEqual({
      ...subscription,
      mode: 'structured',
      retry: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 5000 },
      version: 2,
    })
    expect(h.rows.get(subscription.id)?.secretEncrypted).toBe(before)
    const stale: unknown = await h.registry
      .updateSubscription('acme', subscription.id, { batchSize: 5 }, { ifVersion: 1 })
      .catch((e: unknown) => e)
    expect(isTributaryError(stale, 'REGISTRY_VERSION_MISMATCH')).toBe(true)
    const got = await h.registry.getSubscription('acme', subscription.id)
    expect(got).not.toHaveProperty('secretEncrypted')
    const listed = await h.registry.listSubscriptions('acme')
    expect(listed.items.every((s) => !('secretEncrypted' in s))).toBe(true)
  })

  it('pauses and resumes (a disabled one too), writing only when the state changes', async () => {
    const h = harness()
    const { subscription } = await h.registry.createSubscription('acme', { url: 'https://example.com/' })
    const id = subscription.id
    expect((await h.registry.pauseSubscription('acme', id)).state).toBe('paused')
    const writes = () => h.calls.filter((c) => c === 'setSubscriptionState').length
    expect(writes()).toBe(1)
    expect((await h.registry.pauseSubscription('acme', id)).version).toBe(2)
    expect(writes()).toBe(1)
    expect((await h.registry.resumeSubscription('acme', id, { ifVersion: 2 })).state).toBe('active')
    const row = h.rows.get(id)
    if (row !== undefined) h.rows.set(id, { ...row, state: 'disabled', version: 9 })
    const resumed = await h.registry.resumeSubscription('acme', id)
    expect(resumed).toMatchObject({ state: 'active', version: 10 })
    const missing: unknown = await h.registry.pauseSubscription('acme', 'nope').catch((e: unknown) => e)
    expect(isTributaryError(missing, 'REGISTRY_NOT_FOUND')).toBe(true)
  })

  it('rotates the secret: a new one returned once, the stored one replaced', async () => {
    const h = harness()
    const created = await h.registry.createSubscription('acme', { url: 'https://example.com/' })
    const rotated = await h.registry.rotateSubscriptionSecret('acme', created.subscription.id)
    expect(rotated.secret).toMatch(/^whsec_/)
    expect(rotated.secret).not.toBe(created.secret)
    expect(rotated.subscription.version).toBe(2)
    expect(rotated.subscription).not.toHaveProperty('secretEncrypted')
    const stored = h.rows.get(created.subscription.id)
    expect(stored && decryptSubscriptionSecret(secrets, stored)).toBe(rotated.secret)
  })

  it('carries subscription changes on the bus and invalidates no authentication cache entry', () => {
    const change = { op: 'updated', resource: 'subscription', tenant: 'acme', id: 'abc', version: 3 } as const
    const record = encodeChange(change, 'tributary.registry')
    expect(
      decodeChange({ key: record.key, value: record.value, headers: record.headers ?? new Map() }),
    ).toEqual(change)
    expect(invalidatedTags(change)).toEqual([])
  })
})
