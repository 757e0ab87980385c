// Bad input over real HTTP: every case gets a problem document with the right status and code, and
// nothing is partly written.
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, startApi } from './harness.ts'
import type { ApiHarness, Reply } from './harness.ts'

const MAX_BODY = 2048
let api: ApiHarness
const T = '/api/v1/tenants/shop'
beforeAll(async () => {
  api = await startApi({ maxBodyBytes: MAX_BODY })
  await api.call('POST', '/api/v1/tenants', { body: { id: 'shop', quotas: { maxDevices: 3 } } })
  await api.call('POST', `${T}/devices`, { body: { id: 'd1' } })
})
afterAll(async () => api.close())

function expectProblem(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body).toMatchObject({
    type: `https://tributary.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: expect.any(String),
    status,
    detail: expect.any(String),
    instance: expect.stringMatching(/^\//),
    code,
  })
}

const deviceCount = async (): Promise<number> => (await api.registry.listDevices('shop')).items.length

describe('bad input', () => {
  it('refuses malformed JSON with 400', async () => {
    const reply = await api.call('POST', `${T}/devices`, { body: '{"id": "x",' })
    expectProblem(reply, 400, 'REQUEST_INVALID')
    expect(reply.body.detail).toContain('JSON')
  })

  it.each([
    ['an unknown top-level field', '/api/v1/tenants', { id: 'newco', colour: 'red' }, 'body'],
    [
      'an unknown nested field',
      '/api/v1/tenants',
      { id: 'newco', quotas: { maxDevices: 1, maxCats: 2 } },
      'body.quotas',
    ],
    ['a tenant id outside the charset', '/api/v1/tenants', { id: 'New_Co' }, 'body.id'],
    ['a tenant id too long', '/api/v1/tenants', { id: 'a'.repeat(64) }, 'body.id'],
    ['a device id outside the charset', `${T}/devices`, { id: 'a/b' }, 'body.id'],
    ['a device id too long', `${T}/devices`, { id: 'd'.repeat(129) }, 'body.id'],
    [
      'a gateway id outside the charset',
      `${T}/devices`,
      { id: 'ok', gateways: ['bad id'] },
      'body.gateways.0',
    ],
    [
      'a label key outside the charset',
      `${T}/devices`,
      { id: 'ok', labels: { 'bad key': 'v' } },
      'body.labels.bad key',
    ],
    ['a wrong type', `${T}/devices`, { id: 'ok', enabled: 'yes' }, 'body.enabled'],
    [
      'an OIDC issuer with both jwksUri and jwks',
      '/api/v1/tenants',
      {
        id: 'newco',
        oidc: { issuer: 'https://i', audience: 'a', jwksUri: 'https://i/jwks', jwks: [{ kty: 'EC' }] },
      },
      'body.oidc.jwksUri',
    ],
    [
      'a private key in a static JWKS',
      '/api/v1/tenants',
      {
        id: 'newco',
        oidc: {
          issuer: 'https://i',
          audience: 'a',
          jwks: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'secret' }],
        },
      },
      'body.oidc.jwks.0',
    ],
    [
      'a JWKS URI that is not http(s)',
      '/api/v1/tenants',
      { id: 'newco', oidc: { issuer: 'https://i', audience: 'a', jwksUri: 'file:///etc/passwd' } },
      'body.oidc.jwksUri',
    ],
    ['a credential of no known type', `${T}/devices/d1/credentials`, { type: 'retina' }, 'body.type'],
    [
      'two X.509 matchers at once',
      `${T}/devices/d1/credentials`,
      { type: 'x509', subjectCn: 'a', fingerprint: 'ab'.repeat(32) },
      'body',
    ],
    ['an API token role that does not exist', `${T}/tokens`, { name: 'x', role: 'owner' }, 'body.role'],
  ])('refuses %s with 400 and a field error, writing nothing', async (_name, path, body, field) => {
    const tenantsBefore = (await api.registry.listTenants()).items.length
    const devicesBefore = await deviceCount()
    const reply = await api.call('POST', path, { body })
    expectProblem(reply, 400, 'REQUEST_INVALID')
    expect(reply.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: field, message: expect.any(String) })]),
    )
    expect((await api.registry.listTenants()).items.length).toBe(tenantsBefore)
    expect(await deviceCount()).toBe(devicesBefore)
  })

  it('refuses identifiers outside their charset in the path with 400', async () => {
    for (const path of [
      '/api/v1/tenants/SHOP',
      `${T}/devices/${'d'.repeat(129)}`,
      `${T}/devices/a%2Fb`,
      `${T}/devices/d1/credentials/not%20an%20id`,
    ]) {
      const reply = await api.call('GET', path)
      expectProblem(reply, 400, 'REQUEST_INVALID')
      expect(reply.body.errors[0].path).toMatch(/^path\./)
    }
  })

  it('refuses bad list parameters with 400', async () => {
    for (const query of [
      'limit=0',
      'limit=1001',
      'limit=ten',
      'sort=id',
      'label=novalue',
      'label=a=1,a=2',
      `after=${'x'.repeat(513)}`,
    ]) {
      expectProblem(await api.call('GET', `${T}/devices?${query}`), 400, 'REQUEST_INVALID')
    }
  })

  it('refuses a body that is not application/json with 415', async () => {
    const text = await api.call('POST', `${T}/devices`, {
      body: '{"id":"x"}',
      headers: { 'content-type': 'text/plain' },
    })
    expectProblem(text, 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE')
    const none = await fetch(`${api.url}${T}/devices/d1`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: new Blob(['{"enabled":false}']),
    })
    expect(none.status).toBe(415)
    expect((await api.registry.getDevice('shop', 'd1')).enabled).toBe(true)
  })

  it('refuses an oversized body with 413, whether its length is declared or streamed', async () => {
    const big = { id: 'big', labels: { note: 'x'.repeat(MAX_BODY) } }
    expectProblem(await api.call('POST', `${T}/devices`, { body: big }), 413, 'REQUEST_TOO_LARGE')
    // Chunked, no Content-Length, and the body never ends: only a limit enforced while reading answers.
    const socket = connect(Number(new URL(api.url).port), '127.0.0.1')
    const head = new Promise<string>((resolve, reject) => {
      let received = ''
      socket.on('data', (data) => {
        received += data.toString('latin1')
        if (received.includes('\r\n\r\n')) resolve(received)
      })
      socket.on('error', reject)
    })
    socket.write(
      `POST ${T}/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    )
    const chunk = `{"id":"streamed","labels":{"note":"${'y'.repeat(MAX_BODY)}`
    socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
    expect(await head).toMatch(/^HTTP\/1\.1 413 /)
    socket.destroy()
    expect((await api.call('GET', `${T}/devices/big`)).status).toBe(404)
    expect((await api.call('GET', `${T}/devices/streamed`)).status).toBe(404)
  })

  it('refuses a malformed If-Match with 400 and a stale one with 412, changing nothing', async () => {
    for (const ifMatch of ['1', '"1', 'abc', '"1", "2"']) {
      const reply = await api.call('PATCH', `${T}/devices/d1`, {
        headers: { 'if-match': ifMatch },
        body: { enabled: false },
      })
      expectProblem(reply, 400, 'REQUEST_INVALID')
    }
    expectProblem(
      await api.call('PATCH', `${T}/devices/d1`, {
        headers: { 'if-match': '"99"' },
        body: { enabled: false },
      }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    const device = await api.registry.getDevice('shop', 'd1')
    expect(device).toMatchObject({ enabled: true, version: 1 })
  })

  it('answers the service refusals with their status and writes nothing', async () => {
    const short = await api.call('PUT', `${T}/devices/d1/password`, { body: { password: 'short' } })
    expectProblem(short, 400, 'REQUEST_INVALID')
    const pem = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'
    const garbage = await api.call('POST', `${T}/devices/d1/credentials`, {
      body: { type: 'x509', certificate: pem },
    })
    expectProblem(garbage, 400, 'REGISTRY_INVALID')
    expect(await api.registry.listCredentials('shop', 'd1')).toEqual([])
    await api.call('POST', `${T}/devices`, { body: { id: 'd2' } })
    await api.call('POST', `${T}/devices`, { body: { id: 'd3' } })
    expectProblem(
      await api.call('POST', `${T}/devices`, { body: { id: 'd4' } }),
      403,
      'REGISTRY_QUOTA_EXCEEDED',
    )
    expect((await api.call('GET', `${T}/devices/d4`)).status).toBe(404)
    const past = await api.call('POST', `${T}/tokens`, {
      body: { name: 'old', role: 'reader', expiresAt: '2001-01-01T00:00:00Z' },
    })
    expectProblem(past, 400, 'REGISTRY_INVALID')
  })

  it('answers unknown routes with 404 and wrong methods with 405 and Allow', async () => {
    expectProblem(await api.call('GET', '/api/v1/things'), 404, 'ROUTE_NOT_FOUND')
    expectProblem(await api.call('GET', '/elsewhere', { token: null }), 404, 'ROUTE_NOT_FOUND')
    const wrong = await api.call('PUT', `${T}/devices`, { body: { id: 'x' } })
    expectProblem(wrong, 405, 'METHOD_NOT_ALLOWED')
    expect(wrong.headers.get('allow')).toBe('GET, POST, HEAD')
    const del = await api.call('DELETE', '/api/v1/tenants')
    expect(del.headers.get('allow')).toBe('GET, POST, HEAD')
  })

  it('answers missing or unusable credentials with 401 and WWW-Authenticate', async () => {
    const none = await api.call('GET', `${T}/devices`, { token: null })
    expectProblem(none, 401, 'AUTH_REQUIRED')
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tributary"')
    for (const authorization of [
      `Basic ${Buffer.from('admin:x').toString('base64')}`,
      'Bearer',
      'Bearer not-a-token',
      'Bearer tat_nope',
    ]) {
      const reply = await api.call('GET', `${T}/devices`, { headers: { authorization } })
      expectProblem(reply, 401, 'AUTH_REQUIRED')
      expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="tributary", error="invalid_token"')
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    expect(
      (await api.call('GET', `${T}/devices`, { headers: { authorization: `bearer ${ADMIN_TOKEN}` } })).status,
    ).toBe(200)
  })
})
