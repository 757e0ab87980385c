// The registry service against a recording double of the RegistryStore port: bad input never
// reaches the store, secrets reach it only hashed or encrypted, views never carry them, and
// read-modify-write keeps to versions.
import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { TributaryError, isTributaryError } from '../../../core/errors.ts'
import type { ApiToken, Credential, Device, Tenant } from '../../../core/registry/model.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { NewApiToken, NewCredential, RegistryStore } from '../../../core/registry/store.ts'
import { DEFAULT_TENANT_SPEC } from '../../../core/registry/validate-tenant.ts'

const stamp = { version: 1, createdAt: '2030-01-01T00:00:00.000Z', updatedAt: '2030-01-01T00:00:00.000Z' }
const tenantRow: Tenant = { id: 'acme', ...DEFAULT_TENANT_SPEC, ...stamp }
const deviceRow: Device = {
  tenant: 'acme',
  id: 'dev-1',
  enabled: true,
  labels: {},
  gateways: [],
  appVersion: null,
  lastSeen: null,
  ...stamp,
}

/** A RegistryStore whose methods are the given handlers; any other call fails the test. */
function storeDouble(handlers: Partial<RegistryStore>) {
  const calls: string[] = []
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
  return { store, calls }
}

const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })
const now = () => new Date('2030-01-01T00:00:00Z')

function service(handlers: Partial<RegistryStore>) {
  const double = storeDouble(handlers)
  let changes = 0
  const registry = createRegistryService({ store: double.store, secrets, now, onChange: () => changes++ })
  return {
    registry,
    calls: double.calls,
    get changes() {
      return changes
    },
  }
}

const credentialOf = (input: NewCredential, id = 'c-1'): Credential => ({ ...input, id, ...stamp })

describe('registry service', () => {
  it('checks every input before touching the store', async () => {
    const s = service({})
    const attempts: Array<() => Promise<unknown>> = [
      () => s.registry.createTenant('Bad_Tenant', {}),
      () => s.registry.createTenant('acme', { quotas: { maxDevices: -1 } }),
      () => s.registry.createTenant('acme', { bogus: 1 } as never),
      () => s.registry.createDevice('acme', 'a/b', {}),
      () => s.registry.createDevice('acme', 'dev-1', { labels: { 'no spaces': 'x' } }),
      () => s.registry.createCredential('acme', 'dev-1', { type: 'password', password: '' }),
      () => s.registry.createCredential('acme', 'dev-1', { type: 'psk', key: 'abc' }),
      () => s.registry.setPassword('acme', 'dev-1', 'x'.repeat(257)),
      () => s.registry.createApiToken('acme', { name: 'ci', role: 'root' as never }),
      () => s.registry.createApiToken('acme', { name: '', role: 'reader' }),
      () => s.registry.updateCredential('acme', 'dev-1', 'c-1', { enabled: 'no' as never }),
      () => s.registry.listDevices('acme', { limit: 5000 }),
      () => s.registry.getCredential('acme', 'dev-1', 'id with spaces'),
    ]
    for (const attempt of attempts) {
      const err = await attempt().catch((e: unknown) => e)
      expect(isTributaryError(err, 'REGISTRY_INVALID'), String(err)).toBe(true)
    }
    expect(s.calls).toEqual([])
    expect(s.changes).toBe(0)
  })

  it('stores a password only as its scrypt hash and shows no hash', async () => {
    let stored: NewCredential | undefined
    const s = service({
      getDevice: async () => deviceRow,
      getTenant: async () => tenantRow,
      createCredential: async (input) => credentialOf((stored = input)),
    })
    const created = await s.registry.createCredential('acme', 'dev-1', {
      type: 'password',
      password: 'pa55word!',
    })
    expect(stored?.type === 'password' && stored.passwordHash).toMatch(/^\$scrypt\$/)
    expect(JSON.stringify(stored)).not.toContain('pa55word!')
    expect(
      stored?.type === 'password' && (await secrets.verifyPassword('pa55word!', stored.passwordHash)),
    ).toBe(true)
    expect(created.credential).not.toHaveProperty('passwordHash')
    expect(created.secret).toBeUndefined()
    expect(s.changes).toBe(1)
  })

  it('generates a device token, returns it once and stores only its SHA-256', async () => {
    let stored: NewCredential | undefined
    const s = service({
      getDevice: async () => deviceRow,
      createCredential: async (input) =>
        credentialOf((stored = input), '0190a000-0000-7000-8000-000000000001'),
    })
    const created = await s.registry.createCredential('acme', 'dev-1', { type: 'token' })
    const parsed = secrets.parseToken(created.secret ?? '')
    expect(parsed).toMatchObject({ kind: 'device', id: '0190a000-0000-7000-8000-000000000001' })
    expect(stored?.type === 'token' && stored.tokenHash).toBe(
      createHash('sha256').update(parsed!.secret).digest('hex'),
    )
    expect(JSON.stringify(stored)).not.toContain(parsed!.secret)
    expect(created.credential).not.toHaveProperty('tokenHash')
  })

  it('encrypts a PSK key bound to its identity, generating one when none is given', async () => {
    const stored: NewCredential[] = []
    const s = service({
      getDevice: async () => deviceRow,
      createCredential: async (input) => credentialOf(input, `c-${stored.push(input)}`),
    })
    const generated = await s.registry.createCredential('acme', 'dev-1', { type: 'psk' })
    expect(generated.secret).toMatch(/^[0-9a-f]{64}$/)
    const given = await s.registry.createCredential('acme', 'dev-1', { type: 'psk', key: 'ab'.repeat(16) })
    expect(given.secret).toBeUndefined()
    const [first, second] = stored
    expect(first?.type === 'psk' && first.identity).toBe('dev-1@acme')
    expect(first?.type === 'psk' && secrets.decrypt(first.keyEncrypted, 'dev-1@acme').toString('hex')).toBe(
      generated.secret,
    )
    expect(second?.type === 'psk' && secrets.decrypt(second.keyEncrypted, 'dev-1@acme').toString('hex')).toBe(
      'ab'.repeat(16),
    )
    expect(JSON.stringify(stored)).not.toContain(generated.secret)
    expect(generated.credential).not.toHaveProperty('keyEncrypted')
  })

  it('creates API tokens with a hashed secret and a 90-day default expiry', async () => {
    let stored: NewApiToken | undefined
    const s = service({
      getTenant: async () => tenantRow,
      createApiToken: async (input): Promise<ApiToken> => ({ ...(stored = input), id: 'tok-1', ...stamp }),
    })
    const created = await s.registry.createApiToken('acme', { name: 'ci', role: 'manager' })
    expect(created.secret).toMatch(/^tat_tok-1_[A-Za-z0-9_-]{43}$/)
    expect(stored).toMatchObject({
      tenant: 'acme',
      name: 'ci',
      role: 'manager',
      expiresAt: '2030-04-01T00:00:00.000Z',
    })
    expect(stored?.tokenHash).toBe(
      createHash('sha256').update(secrets.parseToken(created.secret)!.secret).digest('hex'),
    )
    expect(created.token).not.toHaveProperty('tokenHash')
  })

  it('merges an update without If-Match again when another writer got in between', async () => {
    let version = 1
    let failOnce = true
    const s = service({
      getTenant: async () => ({ ...tenantRow, version }),
      updateTenant: async (id, spec, pre) => {
        if (failOnce) {
          failOnce = false
          version = 2 // someone else wrote
          throw new TributaryError('REGISTRY_VERSION_MISMATCH', 'stale')
        }
        expect(pre?.ifVersion).toBe(2)
        return { ...tenantRow, ...spec, id, version: 3 }
      },
    })
    const updated = await s.registry.updateTenant('acme', { enabled: false })
    expect(updated).toMatchObject({ enabled: false, version: 3 })
    expect(s.calls).toEqual(['getTenant', 'updateTenant', 'getTenant', 'updateTenant'])
    expect(s.changes).toBe(1)
  })

  it('refuses a stale If-Match with 412 and writes nothing', async () => {
    const s = service({ getTenant: async () => ({ ...tenantRow, version: 4 }) })
    const err = await s.registry
      .updateTenant('acme', { enabled: false }, { ifVersion: 3 })
      .catch((e: unknown) => e)
    expect(isTributaryError(err, 'REGISTRY_VERSION_MISMATCH') && err.status).toBe(412)
    expect(s.calls).toEqual(['getTenant'])
    expect(s.changes).toBe(0)
  })

  it('answers 404 for a missing tenant or device before writing', async () => {
    const s = service({ getTenant: async () => undefined, getDevice: async () => undefined })
    const device = await s.registry.createDevice('acme', 'dev-1', {}).catch((e: unknown) => e)
    expect(isTributaryError(device, 'REGISTRY_NOT_FOUND')).toBe(true)
    const credential = await s.registry
      .createCredential('acme', 'dev-1', { type: 'token' })
      .catch((e: unknown) => e)
    expect(isTributaryError(credential, 'REGISTRY_NOT_FOUND')).toBe(true)
    expect(s.calls).toEqual(['getTenant', 'getDevice'])
  })

  it('setPassword replaces the hash of the existing password credential, keeping its state', async () => {
    const existing = credentialOf({
      tenant: 'acme',
      device: 'dev-1',
      type: 'password',
      enabled: false,
      expiresAt: null,
      passwordHash: await secrets.hashPassword('old password'),
    })
    let written: Credential | undefined
    const s = service({
      getDevice: async () => deviceRow,
      getTenant: async () => tenantRow,
      findPassword: async () => existing,
      updateCredential: async (credential, pre) => {
        expect(pre?.ifVersion).toBe(existing.version)
        return (written = { ...credential, version: 2 })
      },
    })
    const view = await s.registry.setPassword('acme', 'dev-1', 'new password')
    expect(view).toMatchObject({ id: existing.id, enabled: false, version: 2 })
    expect(view).not.toHaveProperty('passwordHash')
    expect(
      written?.type === 'password' && (await secrets.verifyPassword('new password', written.passwordHash)),
    ).toBe(true)
    expect(s.changes).toBe(1)
  })

  it("applies the tenant's password policy: 8 characters by default, settings.passwordMinLength when set", async () => {
    const handlers = (settings: Record<string, unknown>) => ({
      getDevice: async () => deviceRow,
      getTenant: async () => ({ ...tenantRow, settings }),
      findPassword: async () => undefined,
      createCredential: async (input: NewCredential) => credentialOf(input),
    })
    const strict = service(handlers({}))
    const err = await strict.registry.setPassword('acme', 'dev-1', 'secret').catch((e: unknown) => e)
    expect(isTributaryError(err, 'REGISTRY_INVALID')).toBe(true)
    expect(strict.calls).not.toContain('createCredential')
    const relaxed = service(handlers({ passwordMinLength: 6 }))
    await expect(relaxed.registry.setPassword('acme', 'dev-1', 'secret')).resolves.toMatchObject({
      type: 'password',
    })
    const rejected = await strict.registry
      .createTenant('other', { settings: { passwordMinLength: 0 } })
      .catch((e: unknown) => e)
    expect(isTributaryError(rejected, 'REGISTRY_INVALID')).toBe(true)
  })
})
