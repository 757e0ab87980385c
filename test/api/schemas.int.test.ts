// Channel schema routes over real HTTP: create, replace, list and delete with ETags, If-Match and
// If-None-Match; the channel percent-encoded in the path; schemas that do not compile and other bad
// input refused with clear problems; readers read but do not write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness, Reply } from './harness.ts'
import { startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/plant'
const TEMP = `${T}/schemas/telemetry%2Ftemp`
const SCHEMA = { type: 'object', required: ['t'], properties: { t: { type: 'number', maximum: 150 } } }
const tokens = { reader: '', manager: '' }

beforeAll(async () => {
  api = await startApi()
  expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'plant' } })).status).toBe(201)
  tokens.reader = (await api.registry.createApiToken('plant', { name: 'r', role: 'reader' })).secret
  tokens.manager = (await api.registry.createApiToken('plant', { name: 'm', role: 'manager' })).secret
})
afterAll(async () => api.close())

function expectProblem(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body.code).toBe(code)
}

describe('channel schemas', () => {
  it('creates (201), reads, replaces (200) and deletes a schema with ETags and If-Match', async () => {
    const created = await api.call('PUT', TEMP, { body: { schema: SCHEMA }, token: tokens.manager })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe(TEMP)
    expect(created.headers.get('etag')).toBe('"1"')
    expect(created.body).toMatchObject({
      tenant: 'plant',
      channel: 'telemetry/temp',
      schema: SCHEMA,
      version: 1,
    })

    const read = await api.call('GET', TEMP, { token: tokens.reader })
    expect(read.status).toBe(200)
    expect(read.headers.get('etag')).toBe('"1"')
    expect(read.body).toEqual(created.body)

    const replaced = await api.call('PUT', TEMP, {
      body: { schema: { type: 'object' } },
      headers: { 'if-match': '"1"' },
    })
    expect(replaced.status).toBe(200)
    expect(replaced.headers.get('etag')).toBe('"2"')
    expect(replaced.headers.get('location')).toBeNull()
    expect(replaced.body).toMatchObject({
      schema: { type: 'object' },
      version: 2,
      createdAt: created.body.createdAt,
    })

    const stale = await api.call('PUT', TEMP, { body: { schema: SCHEMA }, headers: { 'if-match': '"1"' } })
    expectProblem(stale, 412, 'REGISTRY_VERSION_MISMATCH')
    expectProblem(
      await api.call('DELETE', TEMP, { headers: { 'if-match': '"1"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expect((await api.call('GET', TEMP)).body.schema).toEqual({ type: 'object' })

    expect(
      (await api.call('DELETE', TEMP, { headers: { 'if-match': '"2"' }, token: tokens.manager })).status,
    ).toBe(204)
    expectProblem(await api.call('GET', TEMP), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('DELETE', TEMP), 404, 'REGISTRY_NOT_FOUND')
    // Put again after a delete: a new schema at version 1.
    const again = await api.call('PUT', TEMP, { body: { schema: SCHEMA } })
    expect(again.status).toBe(201)
    expect(again.body.version).toBe(1)
  })

  it('creates only with If-None-Match: * and replaces only what exists with If-Match: *', async () => {
    const path = `${T}/schemas/only`
    expectProblem(
      await api.call('PUT', path, { body: { schema: SCHEMA }, headers: { 'if-match': '*' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    const first = await api.call('PUT', path, { body: { schema: SCHEMA }, headers: { 'if-none-match': '*' } })
    expect(first.status).toBe(201)
    const twice = await api.call('PUT', path, { body: { schema: {} }, headers: { 'if-none-match': '*' } })
    expectProblem(twice, 412, 'REGISTRY_VERSION_MISMATCH')
    expect(twice.body.detail).toMatch(/exists already/)
    const any = await api.call('PUT', path, { body: { schema: {} }, headers: { 'if-match': '*' } })
    expect(any.status).toBe(200)
    expect(any.body.version).toBe(2)
    expectProblem(
      await api.call('PUT', path, { body: { schema: {} }, headers: { 'if-none-match': '"2"' } }),
      400,
      'REQUEST_INVALID',
    )
    expectProblem(
      await api.call('PUT', path, {
        body: { schema: {} },
        headers: { 'if-none-match': '*', 'if-match': '"2"' },
      }),
      400,
      'REQUEST_INVALID',
    )
  })

  it('lists the tenant’s schemas in channel order, a page at a time', async () => {
    await api.call('POST', '/api/v1/tenants', { body: { id: 'lister' } })
    const L = '/api/v1/tenants/lister/schemas'
    for (const channel of ['b', 'a/x', 'a', 'c/d/e']) {
      expect(
        (
          await api.call('PUT', `${L}/${encodeURIComponent(channel)}`, {
            body: { schema: { title: channel } },
          })
        ).status,
      ).toBe(201)
    }
    const page1 = await api.call('GET', `${L}?limit=3`)
    expect((page1.body.items as Array<{ channel: string }>).map((s) => s.channel)).toEqual(['a', 'a/x', 'b'])
    expect(page1.body.items[1].schema).toEqual({ title: 'a/x' })
    const page2 = await api.call('GET', `${L}?limit=3&after=${encodeURIComponent(String(page1.body.next))}`)
    expect(page2.body).toMatchObject({ items: [{ channel: 'c/d/e' }], next: null })
    expectProblem(await api.call('GET', '/api/v1/tenants/nowhere/schemas'), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('GET', `${L}?limit=0`), 400, 'REQUEST_INVALID')
  })

  it('refuses schemas that do not compile, with a message that says why; nothing is stored', async () => {
    const path = `${T}/schemas/bad`
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'nonsense' }, /schema: .*type/],
      [{ tipe: 'object' }, /schema: .*tipe/],
      [{ $ref: 'https://example.com/schema.json' }, /schema: .*example\.com/],
      [{ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, /schema: .*#\/\$defs\/missing/],
    ]
    for (const [schema, message] of cases) {
      const reply = await api.call('PUT', path, { body: { schema } })
      expectProblem(reply, 400, 'REGISTRY_INVALID')
      expect(reply.body.detail).toMatch(message)
    }
    let deep: Record<string, unknown> = { type: 'object' }
    const root = deep
    for (let i = 0; i < 40; i++) deep = (deep['properties'] = { a: { type: 'object' } }).a
    const tooDeep = await api.call('PUT', path, { body: { schema: root } })
    expectProblem(tooDeep, 400, 'REGISTRY_INVALID')
    expect(tooDeep.body.detail).toMatch(/deeper than 32/)
    expectProblem(await api.call('GET', path), 404, 'REGISTRY_NOT_FOUND')
  })

  it('refuses bad bodies and channels with 400 naming the field', async () => {
    const cases: Array<[string, unknown, string]> = [
      [`${T}/schemas/x`, {}, 'body.schema'],
      [`${T}/schemas/x`, { schema: [] }, 'body.schema'],
      [`${T}/schemas/x`, { schema: 'object' }, 'body.schema'],
      [`${T}/schemas/x`, { schema: {}, extra: 1 }, 'body'],
      [`${T}/schemas/a%20b`, { schema: {} }, 'path.channel'],
      [`${T}/schemas/a%2F%2Fb`, { schema: {} }, 'path.channel'],
      [`${T}/schemas/%2Fa`, { schema: {} }, 'path.channel'],
      [`${T}/schemas/a%2Fb%2Fc%2Fd%2Fe%2Ff%2Fg%2Fh%2Fi`, { schema: {} }, 'path.channel'],
      [`${T}/schemas/${'c'.repeat(257)}`, { schema: {} }, 'path.channel'],
    ]
    for (const [path, body, field] of cases) {
      const reply = await api.call('PUT', path, { body })
      expectProblem(reply, 400, 'REQUEST_INVALID')
      expect(
        (reply.body.errors as Array<{ path: string }>).map((e) => e.path),
        path,
      ).toContain(field)
    }
    expectProblem(
      await api.call('PUT', `${T}/schemas/x`, {
        body: 'schema=1',
        headers: { 'content-type': 'text/plain' },
      }),
      415,
      'REQUEST_UNSUPPORTED_MEDIA_TYPE',
    )
    // An unencoded slash is another path: no such route.
    expectProblem(await api.call('GET', `${T}/schemas/telemetry/temp`), 404, 'ROUTE_NOT_FOUND')
    expectProblem(
      await api.call('PUT', '/api/v1/tenants/nowhere/schemas/x', { body: { schema: {} } }),
      404,
      'REGISTRY_NOT_FOUND',
    )
  })

  it('lets readers read but not write (403)', async () => {
    const path = `${T}/schemas/roles`
    expect((await api.call('PUT', path, { body: { schema: SCHEMA }, token: tokens.manager })).status).toBe(
      201,
    )
    expect((await api.call('GET', path, { token: tokens.reader })).status).toBe(200)
    expect((await api.call('GET', `${T}/schemas`, { token: tokens.reader })).status).toBe(200)
    expectProblem(
      await api.call('PUT', path, { body: { schema: {} }, token: tokens.reader }),
      403,
      'AUTH_FORBIDDEN',
    )
    expectProblem(await api.call('DELETE', path, { token: tokens.reader }), 403, 'AUTH_FORBIDDEN')
    expect((await api.call('GET', path)).body).toMatchObject({ schema: SCHEMA, version: 1 })
  })

  it('reaches the processors’ cached lookup once the change event is through', async () => {
    const path = `${T}/schemas/cached`
    expect(await api.auth.channelSchema('plant', 'cached')).toBeUndefined()
    await api.call('PUT', path, { body: { schema: SCHEMA } })
    await api.settle()
    expect((await api.auth.channelSchema('plant', 'cached'))?.schema).toEqual(SCHEMA)
    await api.call('DELETE', path)
    await api.settle()
    expect(await api.auth.channelSchema('plant', 'cached')).toBeUndefined()
  })
})
