// OIDC callers with real JWTs: signed by test issuers whose JWKS is served over HTTP (or given to the
// tenant as static keys), checked for issuer, audience, expiry, key and algorithm.
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness } from './harness.ts'
import { itemIds, startApi } from './harness.ts'
import type { TestIssuer } from './issuer.ts'
import { startIssuer } from './issuer.ts'

let api: ApiHarness
let es: TestIssuer
let rs: TestIssuer
let offline: TestIssuer
const AUD = 'tributary-acme'

beforeAll(async () => {
  // The test issuers serve their JWKS on loopback, which only the operator's allowance
  // (TRIBUTARY_WEBHOOK_ALLOW_PRIVATE) lets a tenant name: private-targets.int.test.ts covers it off.
  ;[api, es, rs, offline] = await Promise.all([
    startApi({ allowPrivateTargets: true }),
    startIssuer('ES256'),
    startIssuer('RS256'),
    startIssuer('EdDSA'),
  ])
  await api.registry.createTenant('acme', {
    oidc: { issuer: es.issuer, audience: AUD, jwksUri: es.jwksUri, rolesClaim: 'realm_access.roles' },
  })
  await api.registry.createTenant('rsa', {
    oidc: { issuer: rs.issuer, audience: 'rsa-api', jwksUri: rs.jwksUri, rolesClaim: 'roles' },
  })
  // Static keys: the issuer's HTTP server is never asked.
  await api.registry.createTenant('offline', {
    oidc: {
      issuer: offline.issuer,
      audience: 'offline-api',
      jwks: [offline.publicJwk],
      rolesClaim: 'https://tributary.dev/roles',
    },
  })
  await api.registry.createDevice('acme', 'd1', {})
})

afterAll(async () => {
  await api.close()
  await Promise.all([es.close(), rs.close(), offline.close()])
})

const acmeToken = (roles: unknown, options: Parameters<TestIssuer['sign']>[1] = {}) =>
  es.sign({ realm_access: { roles } }, { audience: AUD, ...options })

describe('OIDC bearer tokens', () => {
  it('authenticates a tenant user with the roles of the configured claim path', async () => {
    const token = await acmeToken(['manager', 'offline_access'], { subject: 'alice' })
    const who = await api.call('GET', '/api/v1/whoami?tenant=acme', { token })
    expect(who.status).toBe(200)
    expect(who.body).toEqual({
      kind: 'oidc',
      subject: 'alice',
      tenant: 'acme',
      roles: ['manager'],
      globalAdmin: false,
    })
    expect(itemIds(await api.call('GET', '/api/v1/tenants/acme/devices', { token }))).toEqual(['d1'])
    expect(
      (await api.call('POST', '/api/v1/tenants/acme/devices', { token, body: { id: 'by-oidc' } })).status,
    ).toBe(201)
    // Managers do not manage API tokens or change the tenant.
    expect((await api.call('GET', '/api/v1/tenants/acme/tokens', { token })).status).toBe(403)
    expect((await api.call('PATCH', '/api/v1/tenants/acme', { token, body: { settings: {} } })).status).toBe(
      403,
    )
  })

  it('gives readers GET only, and a user without a Tributary role nothing', async () => {
    const reader = await acmeToken(['reader'])
    expect((await api.call('GET', '/api/v1/tenants/acme/devices/d1', { token: reader })).status).toBe(200)
    const write = await api.call('PATCH', '/api/v1/tenants/acme/devices/d1', {
      token: reader,
      body: { enabled: false },
    })
    expect(write.status).toBe(403)
    expect(write.body.code).toBe('AUTH_FORBIDDEN')
    const nobody = await acmeToken(['offline_access'])
    expect((await api.call('GET', '/api/v1/tenants/acme', { token: nobody })).status).toBe(403)
    const admin = await acmeToken('admin')
    expect((await api.call('GET', '/api/v1/tenants/acme/tokens', { token: admin })).status).toBe(200)
  })

  it('works with RS256 and with static EdDSA keys; a namespaced claim is read whole', async () => {
    const rsToken = await rs.sign({ roles: ['reader'] }, { audience: 'rsa-api' })
    expect((await api.call('GET', '/api/v1/tenants/rsa', { token: rsToken })).status).toBe(200)
    const before = offline.fetches
    const token = await offline.sign(
      { 'https://tributary.dev/roles': ['admin'] },
      { audience: 'offline-api' },
    )
    const reply = await api.call('GET', '/api/v1/tenants/offline/tokens', { token })
    expect(reply.status).toBe(200)
    expect(offline.fetches).toBe(before)
  })

  it('caches the remote JWKS across requests', async () => {
    const token = await rs.sign({ roles: ['reader'] }, { audience: 'rsa-api' })
    expect((await api.call('GET', '/api/v1/tenants/rsa', { token })).status).toBe(200)
    const before = rs.fetches
    expect(before).toBeGreaterThanOrEqual(1)
    for (let i = 0; i < 5; i++)
      expect((await api.call('GET', '/api/v1/tenants/rsa', { token })).status).toBe(200)
    expect(rs.fetches).toBe(before)
  })

  it.each([
    ['a wrong issuer', () => acmeToken(['admin'], { issuer: 'https://elsewhere.example' }), 'issuer'],
    ['a wrong audience', () => acmeToken(['admin'], { audience: 'another-api' }), '"aud"'],
    ['an expired token', () => acmeToken(['admin'], { expiresIn: -120 }), 'expired'],
    ['no expiry', () => acmeToken(['admin'], { expiresIn: null }), '"exp"'],
    ['an unknown key id', () => acmeToken(['admin'], { kid: 'unknown-key' }), 'no key'],
    [
      'a key the issuer never published',
      async () => {
        const { privateKey } = await generateKeyPair('ES256')
        return acmeToken(['admin'], { key: privateKey })
      },
      'signature',
    ],
    [
      'a symmetric algorithm',
      () =>
        new SignJWT({ realm_access: { roles: ['admin'] } })
          .setProtectedHeader({ alg: 'HS256', kid: es.kid })
          .setIssuer(es.issuer)
          .setAudience(AUD)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode('a shared secret of thirty-two bytes!')),
      'algorithm',
    ],
    [
      'alg none',
      async () =>
        new UnsecuredJWT({ realm_access: { roles: ['admin'] } })
          .setIssuer(es.issuer)
          .setAudience(AUD)
          .setExpirationTime('5m')
          .encode(),
      'algorithm',
    ],
  ])('refuses %s with 401 and WWW-Authenticate', async (_name, make, reason) => {
    const token = await make()
    const reply = await api.call('GET', '/api/v1/tenants/acme/devices', { token })
    expect(reply.status).toBe(401)
    expect(reply.body.code).toBe('AUTH_REQUIRED')
    expect(reply.body.detail).toContain(reason)
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="tributary", error="invalid_token"')
    expect(reply.text).not.toContain(token)
  })

  it('refuses an OIDC token where no tenant names the issuer to check it against', async () => {
    const token = await acmeToken(['admin'])
    const list = await api.call('GET', '/api/v1/tenants', { token })
    expect(list.status).toBe(401)
    expect(list.body.detail).toContain('/api/v1/tenants/{tenant}')
    expect((await api.call('GET', '/api/v1/whoami', { token })).status).toBe(401)
  })

  it('answers 503 without internals when the issuer of the token cannot be reached', async () => {
    const down = await startIssuer('ES256')
    await api.registry.createTenant('down', {
      oidc: { issuer: down.issuer, audience: 'down-api', jwksUri: down.jwksUri, rolesClaim: 'roles' },
    })
    const token = await down.sign({ roles: ['reader'] }, { audience: 'down-api' })
    await down.close()
    const reply = await api.call('GET', '/api/v1/tenants/down', { token })
    expect(reply.status).toBe(503)
    expect(reply.body.code).toBe('AUTH_UNAVAILABLE')
    expect(reply.headers.get('retry-after')).toBe('1')
    expect(reply.body.detail).not.toContain('127.0.0.1')
  })
})
