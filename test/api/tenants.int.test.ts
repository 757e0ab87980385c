// Tenant routes and the admin token over real HTTP: create, read, list with pagination, change and
// delete with ETags and If-Match, and which callers may do what.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness } from './harness.ts'
import { itemIds, startApi } from './harness.ts'

let api: ApiHarness
beforeAll(async () => {
  api = await startApi()
})
afterAll(async () => api.close())

async function tokenFor(tenant: string, role: 'admin' | 'manager' | 'reader'): Promise<string> {
  const reply = await api.call('POST', `/api/v1/tenants/${tenant}/tokens`, {
    body: { name: `${role}-token`, role },
  })
  expect(reply.status).toBe(201)
  return reply.body.secret as string
}

describe('tenants', () => {
  it('creates a tenant with 201, Location and ETag, and reads it back', async () => {
    const created = await api.call('POST', '/api/v1/tenants', {
      body: {
        id: 'acme',
        quotas: { maxDevices: 10 },
        authMethods: ['password', 'token'],
        settings: { ttn: { mode: 'decoded' } },
      },
    })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe('/api/v1/tenants/acme')
    expect(created.headers.get('etag')).toBe('"1"')
    expect(created.body).toMatchObject({
      id: 'acme',
      enabled: true,
      oidc: null,
      quotas: { maxDevices: 10, maxMessagesPerSecond: null },
      authMethods: ['password', 'token'],
      settings: { ttn: { mode: 'decoded' } },
      version: 1,
    })
    const read = await api.call('GET', '/api/v1/tenants/acme')
    expect(read.status).toBe(200)
    expect(read.headers.get('etag')).toBe('"1"')
    expect(read.body).toEqual(created.body)
    const again = await api.call('POST', '/api/v1/tenants', { body: { id: 'acme' } })
    expect(again.status).toBe(409)
    expect(again.body.code).toBe('REGISTRY_CONFLICT')
  })

  it('pages through tenants with limit and after', async () => {
    for (const id of ['page-a', 'page-b', 'page-c']) {
      expect((await api.call('POST', '/api/v1/tenants', { body: { id } })).status).toBe(201)
    }
    const seen: string[] = []
    let after: string | null = null
    let pages = 0
    do {
      const query: string = after === null ? '?limit=2' : `?limit=2&after=${encodeURIComponent(after)}`
      const reply = await api.call('GET', `/api/v1/tenants${query}`)
      expect(reply.status).toBe(200)
      expect(reply.body.items.length).toBeLessThanOrEqual(2)
      seen.push(...itemIds(reply))
      after = reply.body.next
      pages++
    } while (after !== null && pages < 10)
    expect(seen).toEqual(expect.arrayContaining(['acme', 'page-a', 'page-b', 'page-c']))
    expect(new Set(seen).size).toBe(seen.length)
    expect(pages).toBeGreaterThanOrEqual(2)
  })

  it('changes a tenant only with a current If-Match; a stale one is 412 and changes nothing', async () => {
    const patched = await api.call('PATCH', '/api/v1/tenants/acme', {
      headers: { 'if-match': '"1"' },
      body: { settings: { note: 'v2' } },
    })
    expect(patched.status).toBe(200)
    expect(patched.headers.get('etag')).toBe('"2"')
    expect(patched.body).toMatchObject({ version: 2, settings: { note: 'v2' }, quotas: { maxDevices: 10 } })
    const stale = await api.call('PATCH', '/api/v1/tenants/acme', {
      headers: { 'if-match': '"1"' },
      body: { settings: { note: 'lost update' } },
    })
    expect(stale.status).toBe(412)
    expect(stale.headers.get('content-type')).toBe('application/problem+json')
    expect(stale.body).toMatchObject({
      type: 'https://tributary.dev/problems/registry-version-mismatch',
      status: 412,
      code: 'REGISTRY_VERSION_MISMATCH',
      instance: '/api/v1/tenants/acme',
    })
    expect((await api.call('GET', '/api/v1/tenants/acme')).body.settings).toEqual({ note: 'v2' })
    // Without If-Match the change applies to whatever is current.
    const blind = await api.call('PATCH', '/api/v1/tenants/acme', { body: { enabled: true } })
    expect(blind.headers.get('etag')).toBe('"3"')
    // A weak tag never matches for If-Match (strong comparison).
    const weak = await api.call('PATCH', '/api/v1/tenants/acme', {
      headers: { 'if-match': 'W/"3"' },
      body: {},
    })
    expect(weak.status).toBe(412)
  })

  it('lets the tenant admin change its tenant but not its quotas or enabled flag', async () => {
    const admin = await tokenFor('acme', 'admin')
    const ok = await api.call('PATCH', '/api/v1/tenants/acme', {
      token: admin,
      body: { authMethods: ['password'] },
    })
    expect(ok.status).toBe(200)
    expect(ok.body.authMethods).toEqual(['password'])
    for (const body of [{ quotas: { maxDevices: 1000 } }, { enabled: false }]) {
      const refused = await api.call('PATCH', '/api/v1/tenants/acme', { token: admin, body })
      expect(refused.status).toBe(403)
    }
    expect((await api.call('GET', '/api/v1/tenants/acme')).body.quotas.maxDevices).toBe(10)
  })

  it('keeps creating, listing all and deleting tenants to the admin token', async () => {
    const admin = await tokenFor('acme', 'admin')
    expect(
      (await api.call('POST', '/api/v1/tenants', { token: admin, body: { id: 'by-tenant-admin' } })).status,
    ).toBe(403)
    expect((await api.call('DELETE', '/api/v1/tenants/acme', { token: admin })).status).toBe(403)
    const list = await api.call('GET', '/api/v1/tenants', { token: admin })
    expect(list.status).toBe(200)
    expect(list.body).toEqual({ items: [expect.objectContaining({ id: 'acme' })], next: null })
    expect((await api.call('GET', '/api/v1/tenants/by-tenant-admin')).status).toBe(404)
  })

  it('deletes a tenant with its devices and tokens, honouring If-Match', async () => {
    await api.call('POST', '/api/v1/tenants', { body: { id: 'doomed' } })
    await api.call('POST', '/api/v1/tenants/doomed/devices', { body: { id: 'd1' } })
    const token = await tokenFor('doomed', 'reader')
    expect(
      (await api.call('DELETE', '/api/v1/tenants/doomed', { headers: { 'if-match': '"7"' } })).status,
    ).toBe(412)
    expect((await api.call('GET', '/api/v1/tenants/doomed/devices/d1')).status).toBe(200)
    const deleted = await api.call('DELETE', '/api/v1/tenants/doomed', { headers: { 'if-match': '"1"' } })
    expect(deleted.status).toBe(204)
    expect(deleted.text).toBe('')
    expect((await api.call('GET', '/api/v1/tenants/doomed')).status).toBe(404)
    expect((await api.call('DELETE', '/api/v1/tenants/doomed')).status).toBe(404)
    await api.settle()
    expect((await api.call('GET', '/api/v1/whoami', { token })).status).toBe(401)
  })

  it('tells each caller who it is', async () => {
    expect((await api.call('GET', '/api/v1/whoami')).body).toEqual({
      kind: 'admin',
      subject: 'admin-token',
      tenant: null,
      roles: ['admin'],
      globalAdmin: true,
    })
    const reader = await tokenFor('acme', 'reader')
    const who = await api.call('GET', '/api/v1/whoami', { token: reader })
    expect(who.body).toMatchObject({
      kind: 'api-token',
      tenant: 'acme',
      roles: ['reader'],
      globalAdmin: false,
    })
    expect(who.body.subject).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('shuts out a disabled tenant and its callers', async () => {
    await api.call('POST', '/api/v1/tenants', { body: { id: 'paused' } })
    const reader = await tokenFor('paused', 'reader')
    expect((await api.call('GET', '/api/v1/tenants/paused', { token: reader })).status).toBe(200)
    expect((await api.call('PATCH', '/api/v1/tenants/paused', { body: { enabled: false } })).status).toBe(200)
    await api.settle()
    const refused = await api.call('GET', '/api/v1/tenants/paused', { token: reader })
    expect(refused.status).toBe(403)
    expect(refused.body.detail).toContain('disabled')
  })
})
