// The registry end to end inside one process, on each real store engine (PGlite in a temp dir,
// PostgreSQL in a throwaway schema) and the embedded bus: the service writes, the outbox relay
// publishes the changes, and two cached authenticators (two "processes", two consumer groups)
// drop what changed. Also checks that nothing secret is stored in the clear.
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import type { RegistryChange } from '../../../core/registry/model.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deferred, uniqueName } from '../../helpers/wait.ts'
import { CA_PEM, DEVICE_FINGERPRINT, DEVICE_PEM } from './certs.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'

const TOPIC = 'tributary.registry'
const engines = storeEngines()

const newTenant = (): string => uniqueName('t').toLowerCase().slice(0, 63)

/** Resolves with the first change `auth` has applied to its cache that matches. */
function applied(auth: RegistryAuth, match: Partial<RegistryChange>): Promise<RegistryChange> {
  const { promise, resolve } = deferred<RegistryChange>()
  const off = auth.onChange((change) => {
    if (Object.entries(match).every(([k, v]) => change[k as keyof RegistryChange] === v)) {
      off()
      resolve(change)
    }
  })
  return promise
}

describe.each(engines)('registry service, relay and cached auth on $name', ({ make }) => {
  let engine: Engine
  let busDir: string
  let bus: EmbeddedBus
  let store: RegistryStore
  let relay: OutboxRelay
  let registry: RegistryService
  let a: RegistryAuth
  let b: RegistryAuth
  const secrets = createSecrets(Buffer.alloc(32, 7), { scryptLogN: 12 })
  // Every clear secret the tests hand to the registry, searched for in the raw tables at the end.
  const clearSecrets: string[] = []

  const authInstance = (now?: () => Date): RegistryAuth =>
    createRegistryAuth({ store, bus, topic: TOPIC, secrets, cacheTtlMs: 300_000, log: silentLogger, now })

  beforeAll(async () => {
    engine = make()
    busDir = await mkdtemp(join(tmpdir(), 'tributary-registry-bus-'))
    bus = await createEmbeddedBus({ dataDir: busDir })
    await bus.admin.createTopics([{ name: TOPIC, partitions: 3 }])
    store = await engine.open()
    relay = createOutboxRelay({ store, bus, topic: TOPIC, log: silentLogger, pollMs: 50 })
    registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
    a = authInstance()
    b = authInstance()
    await relay.start()
    await a.start()
    await b.start()
  })

  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop(), relay?.stop()])
    await store?.close()
    await bus?.close()
    await engine?.destroy()
    await rm(busDir, { recursive: true, force: true })
  })

  async function deviceWithPassword(tenant: string, device: string, password: string) {
    await registry.createTenant(tenant, {})
    await registry.createDevice(tenant, device, {})
    await registry.setPassword(tenant, device, password)
    clearSecrets.push(password)
  }

  it('a password change reaches every instance within a second; the old password fails everywhere', async () => {
    const tenant = newTenant()
    await deviceWithPassword(tenant, 'dev-1', 'first password')
    for (const auth of [a, b]) {
      expect(await auth.device.byPassword(`dev-1@${tenant}`, 'first password')).toMatchObject({
        ok: true,
        tenant,
        device: 'dev-1',
        method: 'password',
      })
    }
    // The second call is a cache hit (no store read, no scrypt).
    const hits = b.cache.hits
    expect((await b.device.byPassword(`dev-1@${tenant}`, 'first password')).ok).toBe(true)
    expect(b.cache.hits).toBeGreaterThan(hits)

    const seen = { tenant, device: 'dev-1', resource: 'credential', op: 'updated' } as const
    const [inA, inB] = [applied(a, seen), applied(b, seen)]
    await registry.setPassword(tenant, 'dev-1', 'second password')
    clearSecrets.push('second password')
    const changedAt = Date.now()
    await Promise.all([inA, inB])
    expect(Date.now() - changedAt).toBeLessThan(1_000)

    for (const auth of [a, b]) {
      expect(await auth.device.byPassword(`dev-1@${tenant}`, 'first password')).toEqual({
        ok: false,
        reason: 'bad-secret',
      })
      expect((await auth.device.byPassword(`dev-1@${tenant}`, 'second password')).ok).toBe(true)
    }
  })

  it('gives a reason for every refusal', async () => {
    const tenant = newTenant()
    await deviceWithPassword(tenant, 'dev-1', 'pass word 1')
    const reason = async (username: string, password = 'pass word 1') => {
      const result = await a.device.byPassword(username, password)
      return result.ok ? 'ok' : result.reason
    }
    expect(await reason('no-at-sign')).toBe('malformed')
    expect(await reason(`dev-1@${tenant.toUpperCase()}`)).toBe('malformed')
    expect(await reason(`dev-1@${tenant}`, '')).toBe('malformed')
    expect(await reason(`dev-1@${tenant}`, 'x'.repeat(257))).toBe('malformed')
    expect(await reason(`dev-2@${tenant}`)).toBe('unknown')
    expect(await reason(`dev-1@${newTenant()}`)).toBe('unknown')
    expect(await reason(`dev-1@${tenant}`, 'wrong pass')).toBe('bad-secret')
    expect(await reason(`dev-1@${tenant}`)).toBe('ok')
    // A device id may hold `@`-free characters only, so the last `@` separates the tenant.
    expect(await reason(`a@dev-1@${tenant}`)).toBe('malformed')

    let change = applied(a, { tenant, device: 'dev-1', resource: 'device' })
    await registry.updateDevice(tenant, 'dev-1', { enabled: false })
    await change
    expect(await reason(`dev-1@${tenant}`)).toBe('disabled')

    change = applied(a, { tenant, device: 'dev-1', resource: 'device' })
    await registry.updateDevice(tenant, 'dev-1', { enabled: true })
    await change
    change = applied(a, { tenant, resource: 'tenant' })
    await registry.updateTenant(tenant, { authMethods: ['token'] })
    await change
    expect(await reason(`dev-1@${tenant}`)).toBe('method-not-allowed')

    // A device that was never created gets registered: the negative cache entry must not hide it.
    change = applied(a, { tenant, resource: 'tenant' })
    await registry.updateTenant(tenant, { authMethods: ['password'] })
    await change
    expect(await reason(`dev-2@${tenant}`, 'pass word 2')).toBe('unknown')
    change = applied(a, { tenant, device: 'dev-2', resource: 'credential' })
    await registry.createDevice(tenant, 'dev-2', {})
    await registry.createCredential(tenant, 'dev-2', { type: 'password', password: 'pass word 2' })
    await change
    expect(await reason(`dev-2@${tenant}`, 'pass word 2')).toBe('ok')
  })

  it('refuses an expired credential', async () => {
    const tenant = newTenant()
    await registry.createTenant(tenant, {})
    await registry.createDevice(tenant, 'dev-1', {})
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    const { secret } = await registry.createCredential(tenant, 'dev-1', { type: 'token', expiresAt })
    expect((await a.device.byToken(secret!)).ok).toBe(true)
    const later = authInstance(() => new Date(Date.now() + 7_200_000))
    expect(await later.device.byToken(secret!)).toEqual({ ok: false, reason: 'expired' })
  })

  it('authenticates device tokens and forgets deleted ones', async () => {
    const tenant = newTenant()
    await registry.createTenant(tenant, {})
    await registry.createDevice(tenant, 'dev-1', {})
    const created = await registry.createCredential(tenant, 'dev-1', { type: 'token' })
    const token = created.secret!
    clearSecrets.push(secrets.parseToken(token)!.secret)
    expect(await b.device.byToken(token)).toEqual({
      ok: true,
      tenant,
      device: 'dev-1',
      method: 'token',
      credentialId: created.credential.id,
    })
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    expect(await b.device.byToken(forged)).toEqual({ ok: false, reason: 'bad-secret' })
    expect(await b.device.byToken('tdt_nope')).toEqual({ ok: false, reason: 'malformed' })
    expect(await b.device.byToken(token.replace('tdt_', 'tat_'))).toEqual({ ok: false, reason: 'malformed' })

    const change = applied(b, { tenant, resource: 'credential', op: 'deleted' })
    await registry.deleteCredential(tenant, 'dev-1', created.credential.id)
    await change
    expect(await b.device.byToken(token)).toEqual({ ok: false, reason: 'unknown' })
  })

  it('authenticates API tokens until they expire or are deleted', async () => {
    const tenant = newTenant()
    await registry.createTenant(tenant, {})
    const created = await registry.createApiToken(tenant, { name: 'ci', role: 'manager' })
    clearSecrets.push(secrets.parseToken(created.secret)!.secret)
    expect(await a.apiTokens.byToken(created.secret)).toEqual({
      tenant,
      role: 'manager',
      id: created.token.id,
      expiresAt: Date.parse(created.token.expiresAt!),
    })
    expect(await a.apiTokens.byToken(created.secret.slice(0, -1) + 'x')).toBeUndefined()
    const afterExpiry = authInstance(() => new Date(Date.parse(created.token.expiresAt!) + 1))
    expect(await afterExpiry.apiTokens.byToken(created.secret)).toBeUndefined()

    const change = applied(a, { tenant, resource: 'api-token', op: 'deleted' })
    await registry.deleteApiToken(tenant, created.token.id)
    await change
    expect(await a.apiTokens.byToken(created.secret)).toBeUndefined()
  })

  it('hands the TLS layer the decrypted PSK key while the tenant allows PSK', async () => {
    const tenant = newTenant()
    await registry.createTenant(tenant, {})
    await registry.createDevice(tenant, 'dev-1', {})
    const created = await registry.createCredential(tenant, 'dev-1', { type: 'psk' })
    clearSecrets.push(created.secret!)
    expect((await a.device.pskKey(`dev-1@${tenant}`))?.toString('hex')).toBe(created.secret)
    expect(await a.device.byPsk(`dev-1@${tenant}`)).toMatchObject({ ok: true, method: 'psk' })
    expect(await a.device.pskKey(`dev-9@${tenant}`)).toBeUndefined()
    const change = applied(a, { tenant, resource: 'tenant' })
    await registry.updateTenant(tenant, { authMethods: ['password'] })
    await change
    expect(await a.device.byPsk(`dev-1@${tenant}`)).toEqual({ ok: false, reason: 'method-not-allowed' })
  })

  it('finds devices by certificate fingerprint or subject CN, and serves the trust anchors', async () => {
    const tenant = newTenant()
    await registry.createTenant(tenant, { trustAnchors: [CA_PEM] })
    await registry.createDevice(tenant, 'by-fp', {})
    await registry.createDevice(tenant, 'by-cn', {})
    await registry.createCredential(tenant, 'by-fp', { type: 'x509', certificate: DEVICE_PEM })
    await registry.createCredential(tenant, 'by-cn', { type: 'x509', subjectCn: 'sensor-1' })
    expect(await a.device.trustAnchors(tenant)).toEqual([
      expect.objectContaining({ subject: expect.stringContaining('CN=Test CA') as unknown }),
    ])
    const colons = DEVICE_FINGERPRINT.toUpperCase().match(/../g)!.join(':')
    expect(await a.device.byCertificate(tenant, { cn: 'sensor-1', fingerprint: colons })).toMatchObject({
      ok: true,
      device: 'by-fp',
      method: 'x509',
    })
    expect(await a.device.byCertificate(tenant, { cn: 'sensor-1' })).toMatchObject({
      ok: true,
      device: 'by-cn',
    })
    expect(await a.device.byCertificate(tenant, { cn: 'sensor-2' })).toEqual({ ok: false, reason: 'unknown' })
    expect(await a.device.byCertificate(tenant, { fingerprint: 'xyz' })).toEqual({
      ok: false,
      reason: 'malformed',
    })
    expect(await a.device.byCertificate(tenant, {})).toEqual({ ok: false, reason: 'malformed' })

    // The negative answer for sensor-2 is dropped as soon as a device claims that CN.
    const change = applied(a, { tenant, device: 'by-cn', resource: 'credential', op: 'created' })
    await registry.createCredential(tenant, 'by-cn', { type: 'x509', subjectCn: 'sensor-2' })
    await change
    expect(await a.device.byCertificate(tenant, { cn: 'sensor-2' })).toMatchObject({
      ok: true,
      device: 'by-cn',
    })
  })

  it('a deleted tenant takes every cached entry of its own with it', async () => {
    const tenant = newTenant()
    await deviceWithPassword(tenant, 'dev-1', 'pass word 1')
    const token = (await registry.createCredential(tenant, 'dev-1', { type: 'token' })).secret!
    expect((await a.device.byPassword(`dev-1@${tenant}`, 'pass word 1')).ok).toBe(true)
    expect((await a.device.byToken(token)).ok).toBe(true)
    const change = applied(a, { tenant, resource: 'tenant', op: 'deleted' })
    await registry.deleteTenant(tenant)
    await change
    expect(await a.device.byPassword(`dev-1@${tenant}`, 'pass word 1')).toEqual({
      ok: false,
      reason: 'unknown',
    })
    expect(await a.device.byToken(token)).toEqual({ ok: false, reason: 'unknown' })
    expect(await a.tenant(tenant)).toBeUndefined()
  })

  it('publishes one event per write, in order per device', async () => {
    const tenant = newTenant()
    const events: RegistryChange[] = []
    const done = applied(a, { tenant, device: 'dev-1', resource: 'device', op: 'deleted' })
    const off = a.onChange((change) => {
      if (change.tenant === tenant) events.push(change)
    })
    await registry.createTenant(tenant, {})
    await registry.createDevice(tenant, 'dev-1', { labels: { room: 'lab' } })
    const { credential } = await registry.createCredential(tenant, 'dev-1', { type: 'token' })
    await registry.updateCredential(tenant, 'dev-1', credential.id, { enabled: false })
    await registry.deleteDevice(tenant, 'dev-1')
    await done
    off()
    const deviceEvents = events.filter((e) => e.device === 'dev-1').map((e) => `${e.resource} ${e.op}`)
    expect(deviceEvents).toEqual([
      'device created',
      'credential created',
      'credential updated',
      'device deleted',
    ])
    expect(events.filter((e) => e.resource === 'tenant')).toEqual([
      { op: 'created', resource: 'tenant', tenant, version: 1 },
    ])
    await relay.flush()
    expect(await store.pendingChanges(10)).toEqual([])
  })

  it('refuses bad input and stale versions without writing anything', async () => {
    const tenant = newTenant()
    const before = relay.published
    const invalid = await registry
      .createTenant(tenant, { trustAnchors: [CA_PEM, DEVICE_PEM] })
      .catch((err: unknown) => err)
    expect(isTributaryError(invalid, 'REGISTRY_INVALID')).toBe(true)
    expect(await store.getTenant(tenant)).toBeUndefined()
    const created = await registry.createTenant(tenant, {})
    await registry.updateTenant(tenant, { enabled: false }, { ifVersion: created.version })
    const stale = await registry
      .updateTenant(tenant, { enabled: true }, { ifVersion: created.version })
      .catch((err: unknown) => err)
    expect(isTributaryError(stale, 'REGISTRY_VERSION_MISMATCH')).toBe(true)
    expect(await registry.getTenant(tenant)).toMatchObject({ enabled: false, version: 2 })
    await relay.flush()
    expect(relay.published - before).toBe(2)
  })

  it('stores hashes and ciphertexts, never the clear secrets', async () => {
    const tenant = newTenant()
    await deviceWithPassword(tenant, 'dev-1', 'clear password 1')
    const psk = await registry.createCredential(tenant, 'dev-1', { type: 'psk' })
    const token = await registry.createCredential(tenant, 'dev-1', { type: 'token' })
    const api = await registry.createApiToken(tenant, { name: 'ops', role: 'admin' })
    clearSecrets.push(
      psk.secret!,
      secrets.parseToken(token.secret!)!.secret,
      secrets.parseToken(api.secret)!.secret,
    )

    // Through the store: what is there is a hash or a ciphertext.
    const rows = await store.listCredentials(tenant, 'dev-1')
    const password = rows.find((r) => r.type === 'password')
    expect(password?.type === 'password' && password.passwordHash).toMatch(/^\$scrypt\$ln=12,r=8,p=1\$/)
    const pskRow = rows.find((r) => r.type === 'psk')
    expect(pskRow?.type === 'psk' && pskRow.keyEncrypted).toMatch(/^v1\./)
    const tokenRow = rows.find((r) => r.type === 'token')
    const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
    expect(tokenRow?.type === 'token' && tokenRow.tokenHash).toBe(
      sha256(secrets.parseToken(token.secret!)!.secret),
    )
    expect((await store.getApiToken(tenant, api.token.id))?.tokenHash).toBe(
      sha256(secrets.parseToken(api.secret)!.secret),
    )

    // In the raw tables (outbox included): none of the clear secrets any test handed over.
    await Promise.allSettled([a.stop(), b.stop(), relay.stop()])
    await store.close()
    const tables = await engine.sql<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['credentials']))
    const dump = (
      await engine.sql<{ row: string }>(
        tables.map((t) => `SELECT row_to_json(x)::text AS row FROM "${t.table_name}" x`).join(' UNION ALL '),
      )
    )
      .map((r) => r.row)
      .join('\n')
    expect(dump).toContain(tenant)
    expect(dump).toContain('$scrypt$')
    expect(clearSecrets.length).toBeGreaterThan(8)
    for (const secret of clearSecrets) expect(dump, 'a clear secret in the tables').not.toContain(secret)
    store = await engine.open() // for afterAll
  })
})
