// Who may open an event socket, seen from the caller's side: refusals are problem documents on the
// HTTP upgrade response; another tenant's token is told 404; a token that expires or is revoked
// mid-stream ends the stream with 1008.
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WsHarness } from './harness.ts'
import { ADMIN_TOKEN, connect, open, startWsApi } from './harness.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { TestIssuer } from '../../api/issuer.ts'
import { startIssuer } from '../../api/issuer.ts'

let h: WsHarness
let acmeReader: string
let acmeManager: string
let otherAdmin: string
let issuer: TestIssuer

beforeAll(async () => {
  h = await startWsApi({ recheckMs: 100, maxConnectionsPerTenant: 2 })
  issuer = await startIssuer('ES256')
  await h.registry.createTenant('sso', {
    oidc: { issuer: issuer.issuer, audience: 'sso-api', jwksUri: issuer.jwksUri, rolesClaim: 'roles' },
  })
  await h.registry.createTenant('acme', {})
  await h.registry.createTenant('other', {})
  await h.registry.createTenant('crowded', {})
  await h.registry.createTenant('handshake', {})
  acmeReader = (await h.registry.createApiToken('acme', { name: 'r', role: 'reader' })).secret
  acmeManager = (await h.registry.createApiToken('acme', { name: 'm', role: 'manager' })).secret
  otherAdmin = (await h.registry.createApiToken('other', { name: 'a', role: 'admin' })).secret
  await h.settle()
})

afterAll(async () => {
  await h.close()
  await issuer.close()
})

async function refused(tenant: string, query: string, options: Parameters<typeof connect>[3]) {
  const opened = await connect(h, tenant, query, options)
  if (opened.kind === 'open') throw new Error('expected a refusal, the socket opened')
  return opened
}

describe('event socket authorization', () => {
  it('answers 401 without a token, and with an unknown one', async () => {
    const none = await refused('acme', '', { token: null })
    expect(none.status).toBe(401)
    expect(none.body).toMatchObject({
      status: 401,
      code: 'AUTH_REQUIRED',
      instance: '/api/v1/tenants/acme/events',
    })
    const unknown = await refused('acme', '', { token: 'tat_nope' })
    expect(unknown.status).toBe(401)
    expect(unknown.body.code).toBe('AUTH_REQUIRED')
  })

  it("answers 404 to another tenant's token, as for a tenant that does not exist", async () => {
    const foreign = await refused('acme', '', { token: otherAdmin })
    expect(foreign.status).toBe(404)
    expect(foreign.body.code).toBe('REGISTRY_NOT_FOUND')
    const missing = await refused('nosuch', '', {})
    expect(missing.status).toBe(404)
    expect(missing.body.detail).toBe(String(foreign.body.detail).replace('acme', 'nosuch'))
    // Even a query that is valid for its own tenant reveals nothing of acme.
    const viaQuery = await refused('acme', `access_token=${otherAdmin}`, { token: null })
    expect(viaQuery.status).toBe(404)
  })

  it('lets a reader in with the header or the access_token query', async () => {
    const byHeader = await open(h, 'acme', '', { token: acmeReader })
    const byQuery = await open(h, 'acme', `access_token=${acmeManager}`, { token: null })
    await h.publish('acme', 'd1', 'c')
    expect((await byHeader.receive(1))[0]?.['tenant']).toBe('acme')
    expect((await byQuery.receive(1))[0]?.['device']).toBe('d1')
    byHeader.ws.close()
    byQuery.ws.close()
    await Promise.all([byHeader.closed, byQuery.closed])
  })

  it('takes the token from a bearer.<base64url> subprotocol, which it never selects', async () => {
    const protocol = (token: string) => `bearer.${Buffer.from(token).toString('base64url')}`
    const client = await open(h, 'acme', '', {
      token: null,
      protocols: ['cloudevents.json', protocol(acmeReader)],
    })
    expect(client.ws.protocol).toBe('cloudevents.json')
    await h.publish('acme', 'd1', 'c')
    expect((await client.receive(1))[0]?.['tenant']).toBe('acme')
    client.ws.close()
    await client.closed
    // Another tenant's token is told 404 there too; a token that does not decode is none at all.
    const foreign = await refused('acme', '', {
      token: null,
      protocols: ['cloudevents.json', protocol(otherAdmin)],
    })
    expect(foreign.status).toBe(404)
    const garbled = await refused('acme', '', { token: null, protocols: ['cloudevents.json', 'bearer.%%%'] })
    expect(garbled.status).toBe(401)
  })

  it('refuses a socket without the cloudevents.json subprotocol, and a bad query, with 400', async () => {
    const noProtocol = await refused('acme', '', { protocols: ['mqtt'] })
    expect(noProtocol.status).toBe(400)
    expect(noProtocol.body.detail).toMatch(/cloudevents\.json/)
    const badFrom = await refused('acme', 'from=yesterday', {})
    expect(badFrom.status).toBe(400)
    expect(badFrom.body.errors).toEqual([{ path: 'query.from', message: expect.stringMatching(/latest/) }])
  })

  it('limits the sockets of one tenant with 429', async () => {
    const first = await open(h, 'crowded')
    const second = await open(h, 'crowded')
    const third = await refused('crowded', '', {})
    expect(third.status).toBe(429)
    expect(third.body.code).toBe('RATE_LIMITED')
    first.ws.close()
    await first.closed
    await waitUntil(() => h.server.events?.stats().byTenant.get('crowded') === 1)
    const again = await open(h, 'crowded')
    second.ws.close()
    again.ws.close()
  })
})

describe('handshakes the WebSocket library refuses', () => {
  it('answer 400 and hold no socket slot', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${h.httpUrl}/api/v1/tenants/handshake/events`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          // RFC 6455 §4.1: a base64 nonce of 16 bytes; this one is not.
          'sec-websocket-key': 'not-a-nonce',
          'sec-websocket-protocol': 'cloudevents.json',
          authorization: `Bearer ${ADMIN_TOKEN}`,
        },
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('upgrade', (res, socket) => {
        socket.destroy()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(400)
    await waitUntil(() => h.server.events?.stats().byTenant.get('handshake') === undefined)
  })
})

describe('credentials that end mid-stream', () => {
  it('closes with 1008 "token expired" when the API token expires', async () => {
    const expiresAt = new Date(Date.now() + 1_500).toISOString()
    const { secret } = await h.registry.createApiToken('acme', { name: 'short', role: 'reader', expiresAt })
    await h.settle()
    const client = await open(h, 'acme', '', { token: secret })
    expect(await client.closed).toEqual({ code: 1008, reason: 'token expired' })
  })

  it('closes with 1008 "token expired" at the exp of an OIDC JWT', async () => {
    const jwt = await issuer.sign({ roles: ['reader'] }, { audience: 'sso-api', expiresIn: 2 })
    const client = await open(h, 'sso', `access_token=${jwt}`, { token: null })
    await h.publish('sso', 'd1', 'c')
    expect((await client.receive(1))[0]?.['tenant']).toBe('sso')
    expect(await client.closed).toEqual({ code: 1008, reason: 'token expired' })
  })

  it('closes with 1008 once a revoked API token is checked again', async () => {
    const { token, secret } = await h.registry.createApiToken('acme', { name: 'revoked', role: 'reader' })
    await h.settle()
    const client = await open(h, 'acme', '', { token: secret })
    await h.registry.deleteApiToken('acme', token.id)
    await h.settle()
    expect(await client.closed).toEqual({ code: 1008, reason: 'credential no longer valid' })
  })
})
