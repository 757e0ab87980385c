// One rule for the query of every route, walked from the served OpenAPI document: an unknown query
// parameter is 400, and so is a cursor (`after`) that is not a `next` value, for the admin token and
// for a tenant's own admin token alike, on every operation — whatever the route does with its
// query, and before any role check or lookup, so the answer says nothing about the resources.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness, Reply } from './harness.ts'
import { startApi } from './harness.ts'

const TENANT = 'strict'
let api: ApiHarness
let tenantToken = ''

interface Operation {
  readonly parameters?: ReadonlyArray<{ readonly name: string; readonly in: string }>
}
let operations: Array<{ method: string; path: string; query: string[] }> = []

beforeAll(async () => {
  api = await startApi()
  await api.registry.createTenant(TENANT, {})
  await api.registry.createTenant(`${TENANT}-2`, {})
  await api.registry.createDevice(TENANT, 'd1', {})
  tenantToken = (await api.registry.createApiToken(TENANT, { name: 'admin', role: 'admin' })).secret
  const paths = api.server.document['paths'] as Record<string, Record<string, Operation>>
  operations = Object.entries(paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
    })),
  )
})
afterAll(async () => api.close())

/** The operation's path with its parameters filled in for the test tenant. */
function concrete(path: string): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) =>
    name === 'tenant' ? TENANT : name === 'device' ? 'd1' : 'x1',
  )
}

function send(method: string, path: string, query: string, token: string): Promise<Reply> {
  const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined
  return api.call(method, `${concrete(path)}?${query}`, { token, body })
}

function expectBadQuery(reply: Reply, what: string, parameter: string): void {
  expect(reply.status, `${what}: ${reply.text}`).toBe(400)
  expect(reply.headers.get('content-type'), what).toBe('application/problem+json')
  expect(reply.body, what).toMatchObject({ status: 400, code: 'REQUEST_INVALID' })
  expect(reply.body.detail, what).toMatch(new RegExp(`^query\\.${parameter}: `))
}

const callers = (): Array<[string, string]> => [
  ['admin token', 'admin-token-for-tests-0123456789'],
  ['tenant admin token', tenantToken],
]

describe('strict query parameters on every operation of the OpenAPI document', () => {
  it('walks a document with operations, some taking a cursor', () => {
    expect(operations.length).toBeGreaterThan(30)
    expect(operations.filter((o) => o.query.includes('after')).length).toBeGreaterThan(5)
  })

  it('refuses an unknown query parameter with 400, for the admin and for a tenant token', async () => {
    for (const { method, path } of operations) {
      for (const [who, token] of callers()) {
        expectBadQuery(await send(method, path, 'foo=bar', token), `${method} ${path} as ${who}`, 'foo')
      }
    }
  })

  it('refuses a cursor that is not a next value with 400, for the admin and for a tenant token', async () => {
    for (const { method, path } of operations.filter((o) => o.query.includes('after'))) {
      for (const [who, token] of callers()) {
        // 'YR' decodes to 'a' but is not how 'a' encodes: hand-made, not a next value.
        for (const cursor of ['zz', 'not%20a%20cursor', '%00', 'YR', 'a'.repeat(2000)]) {
          const what = `${method} ${path}?after=${cursor} as ${who}`
          expectBadQuery(await send(method, path, `after=${cursor}`, token), what, 'after')
        }
      }
    }
  })

  it('takes each list page’s own next value as the cursor of the following page', async () => {
    await api.registry.createDevice(TENANT, 'd2', {})
    await api.registry.createCredential(TENANT, 'd1', { type: 'token' })
    await api.registry.createCredential(TENANT, 'd1', { type: 'token' })
    for (const path of [
      '/api/v1/tenants',
      `/api/v1/tenants/${TENANT}/devices`,
      `/api/v1/tenants/${TENANT}/devices/d1/credentials`,
    ]) {
      const first = await api.call('GET', `${path}?limit=1`)
      expect(first.status, path).toBe(200)
      expect(first.body.next, path).toEqual(expect.any(String))
      const second = await api.call(
        'GET',
        `${path}?limit=1&after=${encodeURIComponent(String(first.body.next))}`,
      )
      expect(second.status, `${path}: ${second.text}`).toBe(200)
      expect(second.body.items[0].id, path).not.toBe(first.body.items[0].id)
    }
  })
})
