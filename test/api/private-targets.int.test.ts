// URLs a tenant chooses and the server then requests, as a tenant admin trying to reach the host's
// network meets them (TRIBUTARY_WEBHOOK_ALLOW_PRIVATE off): a webhook URL or `oidc.jwksUri` on an
// address of any special-purpose range is refused on write with a 400 naming the operator's
// setting, and a JWKS host that resolves to loopback when it is fetched is not dialled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SPECIAL_ADDRESSES } from '../fixtures/special-addresses.ts'
import type { ApiHarness, HarnessOptions, Reply } from './harness.ts'
import { startApi } from './harness.ts'
import type { TestIssuer } from './issuer.ts'
import { startIssuer } from './issuer.ts'

const TENANT = 'attacker'
const T = `/api/v1/tenants/${TENANT}`
const SETTING = /\(the operator allows such targets with TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true\)$/
/** A name that passes the write check and resolves to the issuer's loopback address when fetched. */
const REBOUND = 'jwks.rebound.test'

let issuer: TestIssuer
const resolveHost: HarnessOptions['resolveHost'] = (hostname) =>
  Promise.resolve(hostname === REBOUND ? [{ address: '127.0.0.1', family: 4 }] : [])

/** An API with a tenant whose admin token the tests act with. */
async function attackerApi(allowPrivateTargets: boolean): Promise<{ api: ApiHarness; token: string }> {
  const api = await startApi({ allowPrivateTargets, resolveHost })
  await api.registry.createTenant(TENANT, {})
  const token = (await api.registry.createApiToken(TENANT, { name: 'admin', role: 'admin' })).secret
  return { api, token }
}

let api: ApiHarness
let token = ''
beforeAll(async () => {
  issuer = await startIssuer('ES256')
  ;({ api, token } = await attackerApi(false))
})
afterAll(async () => {
  await api.close()
  await issuer.close()
})

const host = (address: string): string => (address.includes(':') ? `[${address}]` : address)

function expectRefused(reply: Reply, field: string): void {
  expect(reply.status, reply.text).toBe(400)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body.code).toBe('REGISTRY_INVALID')
  expect(reply.body.detail).toMatch(new RegExp(`^${field.replace('.', '\\.')}: may not target `))
  expect(reply.body.detail).toMatch(SETTING)
}

const oidc = (jwksUri: string) => ({
  oidc: { issuer: 'https://id.example.com', audience: 'tributary', jwksUri },
})

describe('webhook URLs (tenant admin, private targets not allowed)', () => {
  it.each(SPECIAL_ADDRESSES)('refuses a webhook to %s (%s) with 400', async (_range, address) => {
    const reply = await api.call('POST', `${T}/subscriptions`, {
      token,
      body: { url: `https://${host(address)}:8443/hook` },
    })
    expectRefused(reply, 'url')
  })

  it.each(['localhost', 'LOCALHOST.', 'metadata.localhost'])('refuses a webhook to %s', async (name) => {
    expectRefused(
      await api.call('POST', `${T}/subscriptions`, { token, body: { url: `http://${name}/hook` } }),
      'url',
    )
  })

  it('accepts a public address and a host name (checked again when delivery connects)', async () => {
    for (const url of [
      'https://8.8.8.8/hook',
      'https://[64:ff9b::808:808]/hook',
      'https://hooks.example.com/in',
    ]) {
      const reply = await api.call('POST', `${T}/subscriptions`, { token, body: { url } })
      expect(reply.status, `${url}: ${reply.text}`).toBe(201)
    }
  })
})

describe('oidc.jwksUri (tenant admin, private targets not allowed)', () => {
  it.each([
    'https://169.254.169.254/latest/meta-data/',
    'https://10.0.0.1/jwks',
    'https://[fd00::1]/jwks',
    'http://[::1]/jwks',
    'http://localhost/jwks',
    'https://localhost/jwks',
  ])('refuses %s with 400 and keeps the tenant as it was', async (jwksUri) => {
    const reply = await api.call('PATCH', T, { token, body: oidc(jwksUri) })
    expect(reply.status, reply.text).toBe(400)
    expect(reply.body).toMatchObject({ code: 'REGISTRY_INVALID' })
    expect(reply.body.detail).toMatch(/^oidc\.jwksUri: /)
    expect(reply.body.detail).toMatch(/TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true/)
    expect((await api.call('GET', T, { token })).body.oidc).toBeNull()
  })

  it.each(SPECIAL_ADDRESSES)('refuses a JWKS on %s (%s)', async (_range, address) => {
    const reply = await api.call('PATCH', T, { token, body: oidc(`https://${host(address)}/jwks`) })
    expectRefused(reply, 'oidc.jwksUri')
  })

  it('refuses plain http, which would let the network hand out signing keys', async () => {
    const reply = await api.call('PATCH', T, { token, body: oidc('http://id.example.com/jwks') })
    expect(reply.status).toBe(400)
    expect(reply.body.detail).toBe(
      'oidc.jwksUri: must be an https URL (http only with TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true)',
    )
  })
})

describe('a JWKS host that resolves to loopback when it is fetched', () => {
  async function tryToken(target: ApiHarness, adminToken: string): Promise<Reply> {
    const port = new URL(issuer.url).port
    const jwksUri = `https://${REBOUND}:${port}/.well-known/jwks.json`
    const set = await target.call('PATCH', T, {
      token: adminToken,
      body: { oidc: { issuer: 'https://id.example.com', audience: 'tributary', jwksUri } },
    })
    expect(set.status, set.text).toBe(200)
    await target.settle()
    // A self-made token naming the issuer makes the API fetch the keys.
    const jwt = await issuer.sign(
      { roles: ['admin'] },
      { issuer: 'https://id.example.com', audience: 'tributary' },
    )
    return target.call('GET', `/api/v1/whoami?tenant=${TENANT}`, { token: jwt })
  }

  it('is not dialled: the token gets 503 and the loopback server sees no connection', async () => {
    const before = issuer.connections
    const reply = await tryToken(api, token)
    expect(reply.status, reply.text).toBe(503)
    expect(reply.body.code).toBe('AUTH_UNAVAILABLE')
    expect(issuer.connections).toBe(before)
  })

  it('is dialled when the operator allows private targets (the control)', async () => {
    const allowed = await attackerApi(true)
    try {
      const before = issuer.connections
      // https to the issuer's plain HTTP server fails its handshake, but the connection is made.
      expect((await tryToken(allowed.api, allowed.token)).status).toBe(503)
      expect(issuer.connections).toBeGreaterThan(before)
    } finally {
      await allowed.api.close()
    }
  })
})
