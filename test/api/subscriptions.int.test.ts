// Webhook subscription routes over real HTTP: create with the secret shown once, read, list, change
// and delete with ETags and If-Match, pause / resume / rotate-secret, the per-tenant limit, bad
// input refused with clear problems (private targets included), and readers read but do not write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_SUBSCRIPTIONS_PER_TENANT } from '../../core/registry/model.ts'
import type { ApiHarness, Reply } from './harness.ts'
import { itemIds, startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/hooks'
const S = `${T}/subscriptions`
const tokens = { reader: '', manager: '' }

beforeAll(async () => {
  api = await startApi()
  expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'hooks' } })).status).toBe(201)
  tokens.reader = (await api.registry.createApiToken('hooks', { name: 'r', role: 'reader' })).secret
  tokens.manager = (await api.registry.createApiToken('hooks', { name: 'm', role: 'manager' })).secret
})
afterAll(async () => api.close())

function expectProblem(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body.code).toBe(code)
}

const create = (body: unknown, token = tokens.manager) => api.call('POST', S, { body, token })

describe('webhook subscriptions', () => {
  it('creates with defaults and returns the secret once; reads never show it', async () => {
    const created = await create({ url: 'https://hooks.example.com/in' })
    expect(created.status, created.text).toBe(201)
    const id = created.body.subscription.id as string
    expect(created.headers.get('location')).toBe(`${S}/${id}`)
    expect(created.headers.get('etag')).toBe('"1"')
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(created.body.subscription).toEqual({
      tenant: 'hooks',
      id,
      url: 'https://hooks.example.com/in',
      filter: {},
      mode: 'binary',
      batchSize: null,
      headers: {},
      timeoutMs: 10_000,
      retry: { maxAttempts: 8, initialBackoffMs: 1000, maxBackoffMs: 300_000 },
      state: 'active',
      replayFrom: null,
      replayGeneration: 0,
      version: 1,
      createdAt: created.body.subscription.createdAt,
      updatedAt: created.body.subscription.createdAt,
    })
    const secret = created.body.secret as string
    const read = await api.call('GET', `${S}/${id}`, { token: tokens.reader })
    expect(read.status).toBe(200)
    expect(read.headers.get('etag')).toBe('"1"')
    expect(read.body).toEqual(created.body.subscription)
    const listed = await api.call('GET', S, { token: tokens.reader })
    expect(itemIds(listed)).toContain(id)
    for (const reply of [read, listed]) {
      expect(reply.text).not.toContain(secret.slice(6))
      expect(reply.text).not.toContain('secretEncrypted')
    }
    // Stored encrypted only.
    const stored = await api.store.getSubscription('hooks', id)
    expect(stored?.secretEncrypted).not.toContain(secret.slice(6))
    expect(stored?.secretEncrypted).not.toContain(secret)
  })

  it('keeps every given field and an own secret', async () => {
    const own = `whsec_${Buffer.alloc(32, 9).toString('base64')}`
    const body = {
      url: 'http://hooks.example.com:8080/x?y=1',
      filter: { types: ['com.example.a'], channels: ['telemetry/#'], devices: ['d1'], labels: { site: 'n' } },
      mode: 'structured',
      batchSize: 100,
      headers: { Authorization: 'Bearer receiver-token', 'X-Extra': 'yes' },
      timeoutMs: 30_000,
      retry: { maxAttempts: 3 },
      secret: own,
    }
    const created = await create(body)
    expect(created.status, created.text).toBe(201)
    expect(created.body.secret).toBe(own)
    const { secret: _own, ...fields } = body
    expect(created.body.subscription).toMatchObject({
      ...fields,
      retry: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 300_000 },
    })
  })

  it('changes with PATCH under If-Match, merging retry, and deletes', async () => {
    const id = (await create({ url: 'https://a.example.com/' })).body.subscription.id as string
    const one = `${S}/${id}`
    const patched = await api.call('PATCH', one, {
      body: { url: 'https://b.example.com/', retry: { maxBackoffMs: 60_000 }, batchSize: 10 },
      headers: { 'if-match': '"1"' },
      token: tokens.manager,
    })
    expect(patched.status, patched.text).toBe(200)
    expect(patched.headers.get('etag')).toBe('"2"')
    expect(patched.body).toMatchObject({
      url: 'https://b.example.com/',
      batchSize: 10,
      retry: { maxAttempts: 8, initialBackoffMs: 1000, maxBackoffMs: 60_000 },
      version: 2,
    })
    expectProblem(
      await api.call('PATCH', one, { body: { batchSize: null }, headers: { 'if-match': '"1"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expectProblem(
      await api.call('DELETE', one, { headers: { 'if-match': '"1"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expect((await api.call('PATCH', one, { body: { batchSize: null } })).body.batchSize).toBeNull()
    expect((await api.call('DELETE', one, { token: tokens.manager })).status).toBe(204)
    expectProblem(await api.call('GET', one), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('DELETE', one), 404, 'REGISTRY_NOT_FOUND')
  })

  it('pauses, resumes (a disabled one too) and rotates the secret', async () => {
    const created = await create({ url: 'https://a.example.com/' })
    const id = created.body.subscription.id as string
    const one = `${S}/${id}`
    const paused = await api.call('POST', `${one}/pause`, { token: tokens.manager })
    expect(paused.status, paused.text).toBe(200)
    expect(paused.body).toMatchObject({ state: 'paused', version: 2 })
    expect(paused.headers.get('etag')).toBe('"2"')
    // Pausing again changes nothing; `{}` is the only body an action takes.
    expect((await api.call('POST', `${one}/pause`, { body: {} })).body.version).toBe(2)
    expectProblem(
      await api.call('POST', `${one}/pause`, { body: { state: 'active' } }),
      400,
      'REQUEST_INVALID',
    )
    expectProblem(
      await api.call('POST', `${one}/resume`, { headers: { 'if-match': '"1"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expect((await api.call('POST', `${one}/resume`, { headers: { 'if-match': '"2"' } })).body.state).toBe(
      'active',
    )
    // The delivery engine disables a subscription whose endpoint answered 410; resume re-enables it.
    await api.store.setSubscriptionState('hooks', id, 'disabled')
    expect((await api.call('GET', one)).body.state).toBe('disabled')
    expect((await api.call('POST', `${one}/resume`)).body).toMatchObject({ state: 'active', version: 5 })

    const rotated = await api.call('POST', `${one}/rotate-secret`, { token: tokens.manager })
    expect(rotated.status, rotated.text).toBe(200)
    expect(rotated.headers.get('etag')).toBe('"6"')
    expect(rotated.body.secret).toMatch(/^whsec_/)
    expect(rotated.body.secret).not.toBe(created.body.secret)
    expect(rotated.body.subscription).toMatchObject({ id, state: 'active', version: 6 })
    expect((await api.call('GET', one)).text).not.toContain((rotated.body.secret as string).slice(6))
    expectProblem(
      await api.call('POST', `${S}/0190c3e2-6f1a-7a3b-9c1d-2e4f5a6b7c8d/pause`),
      404,
      'REGISTRY_NOT_FOUND',
    )
  })

  it('records a replay from a time under If-Match, counting replays, and refuses a bad or future time', async () => {
    const id = (await create({ url: 'https://a.example.com/' })).body.subscription.id as string
    const one = `${S}/${id}/replay`
    const replayed = await api.call('POST', one, { body: { from: '2026-01-02T03:04:05+02:00' } })
    expect(replayed.status, replayed.text).toBe(200)
    expect(replayed.headers.get('etag')).toBe('"2"')
    expect(replayed.body).toMatchObject({
      id,
      replayFrom: '2026-01-02T01:04:05.000Z',
      replayGeneration: 1,
      version: 2,
    })
    expect((await api.call('GET', `${S}/${id}`)).body).toEqual(replayed.body)
    const again = await api.call('POST', one, {
      body: { from: '2026-01-03T00:00:00Z' },
      headers: { 'if-match': '"2"' },
      token: tokens.manager,
    })
    expect(again.body).toMatchObject({ replayFrom: '2026-01-03T00:00:00.000Z', replayGeneration: 2 })
    expectProblem(
      await api.call('POST', one, { body: { from: '2026-01-03T00:00:00Z' }, headers: { 'if-match': '"2"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    const future = new Date(Date.now() + 3_600_000).toISOString()
    for (const body of [{}, { from: 'yesterday' }, { from: '2026-01-01' }, { from: future }, { from: 1 }]) {
      const reply = await api.call('POST', one, { body })
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(JSON.stringify(reply.body), JSON.stringify(body)).toContain('from')
    }
    expectProblem(
      await api.call('POST', `${S}/0190c3e2-6f1a-7a3b-9c1d-2e4f5a6b7c8d/replay`, {
        body: { from: '2026-01-01T00:00:00Z' },
      }),
      404,
      'REGISTRY_NOT_FOUND',
    )
    expect((await api.call('GET', `${S}/${id}`)).body.replayGeneration).toBe(2)
  })

  it('shows the recent delivery errors the engines recorded, newest first, to readers', async () => {
    const id = (await create({ url: 'https://a.example.com/' })).body.subscription.id as string
    const other = (await create({ url: 'https://b.example.com/' })).body.subscription.id as string
    const path = `${S}/${id}/errors`
    expect((await api.call('GET', path, { token: tokens.reader })).body).toEqual({ items: [] })
    const at = (s: number) => new Date(Date.parse('2026-03-01T10:00:00Z') + s * 1000).toISOString()
    await api.store.recordWebhookErrors([
      {
        tenant: 'hooks',
        subscription: id,
        at: at(1),
        webhookId: 'msg-1',
        attempt: 1,
        status: null,
        error: 'timeout',
      },
      {
        tenant: 'hooks',
        subscription: id,
        at: at(2),
        webhookId: 'msg-1',
        attempt: 2,
        status: 503,
        error: 'HTTP 503',
      },
      {
        tenant: 'hooks',
        subscription: other,
        at: at(3),
        webhookId: 'msg-9',
        attempt: 1,
        status: 500,
        error: 'HTTP 500',
      },
    ])
    const reply = await api.call('GET', path, { token: tokens.reader })
    expect(reply.status, reply.text).toBe(200)
    expect(reply.body).toEqual({
      items: [
        { at: at(2), webhookId: 'msg-1', attempt: 2, status: 503, error: 'HTTP 503' },
        { at: at(1), webhookId: 'msg-1', attempt: 1, status: null, error: 'timeout' },
      ],
    })
    expectProblem(
      await api.call('GET', `${S}/0190c3e2-6f1a-7a3b-9c1d-2e4f5a6b7c8d/errors`),
      404,
      'REGISTRY_NOT_FOUND',
    )
    expectProblem(await api.call('GET', `${S}/not_an_id/errors`), 400, 'REQUEST_INVALID')
    expect((await api.call('GET', path, { token: null })).status).toBe(401)
  })

  it('lets readers read but not write', async () => {
    const id = (await create({ url: 'https://a.example.com/' })).body.subscription.id as string
    const one = `${S}/${id}`
    const r = tokens.reader
    for (const [method, path, body] of [
      ['POST', S, { url: 'https://x.example.com/' }],
      ['PATCH', one, { timeoutMs: 2000 }],
      ['DELETE', one, undefined],
      ['POST', `${one}/pause`, undefined],
      ['POST', `${one}/resume`, undefined],
      ['POST', `${one}/rotate-secret`, undefined],
      ['POST', `${one}/replay`, { from: '2026-01-01T00:00:00Z' }],
    ] as const) {
      expectProblem(await api.call(method, path, { token: r, body }), 403, 'AUTH_FORBIDDEN')
    }
    expect((await api.call('GET', one, { token: r })).body.version).toBe(1)
  })

  it('refuses bad input with problems naming the field', async () => {
    const invalid: Array<[unknown, string]> = [
      [{}, 'REQUEST_INVALID'],
      [{ url: 'ftp://example.com/' }, 'REGISTRY_INVALID'],
      [{ url: 'https://u:p@example.com/' }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/#f' }, 'REGISTRY_INVALID'],
      [{ url: `https://example.com/${'a'.repeat(2048)}` }, 'REQUEST_INVALID'],
      [{ url: 'http://127.0.0.1:9000/' }, 'REGISTRY_INVALID'],
      [{ url: 'http://localhost/' }, 'REGISTRY_INVALID'],
      [{ url: 'http://[::1]/' }, 'REGISTRY_INVALID'],
      [{ url: 'http://169.254.169.254/' }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', headers: { 'Content-Type': 'text/plain' } }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', headers: { 'webhook-id': 'x' } }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', headers: { 'x-a': 'a\nb' } }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', filter: { types: [] } }, 'REQUEST_INVALID'],
      [{ url: 'https://example.com/', filter: { channels: ['a/#/b'] } }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', batchSize: 0 }, 'REQUEST_INVALID'],
      [{ url: 'https://example.com/', timeoutMs: 500 }, 'REQUEST_INVALID'],
      [{ url: 'https://example.com/', mode: 'json' }, 'REQUEST_INVALID'],
      [{ url: 'https://example.com/', retry: { maxAttempts: 51 } }, 'REQUEST_INVALID'],
      [
        { url: 'https://example.com/', retry: { initialBackoffMs: 5000, maxBackoffMs: 1000 } },
        'REGISTRY_INVALID',
      ],
      [{ url: 'https://example.com/', secret: 'whsec_tooshort' }, 'REGISTRY_INVALID'],
      [{ url: 'https://example.com/', state: 'paused' }, 'REQUEST_INVALID'],
    ]
    const before = itemIds(await api.call('GET', S)).length
    for (const [body, code] of invalid) {
      const reply = await create(body)
      expectProblem(reply, 400, code)
      expect(reply.text).not.toContain('whsec_tooshort')
    }
    expect(itemIds(await api.call('GET', S))).toHaveLength(before)
    const id = (await create({ url: 'https://a.example.com/' })).body.subscription.id as string
    expectProblem(
      await api.call('PATCH', `${S}/${id}`, { body: { url: 'http://10.0.0.1/' } }),
      400,
      'REGISTRY_INVALID',
    )
    expectProblem(await api.call('PATCH', `${S}/${id}`, { body: { secret: 'x' } }), 400, 'REQUEST_INVALID')
    expectProblem(await api.call('GET', `${S}/not%20an%20id`), 400, 'REQUEST_INVALID')
  })

  it(`refuses more than ${MAX_SUBSCRIPTIONS_PER_TENANT} subscriptions per tenant, and pages through them`, async () => {
    expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'many' } })).status).toBe(201)
    const M = '/api/v1/tenants/many/subscriptions'
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_TENANT; i++) {
      expect((await api.call('POST', M, { body: { url: `https://h${i}.example.com/` } })).status).toBe(201)
    }
    const refused = await api.call('POST', M, { body: { url: 'https://one-more.example.com/' } })
    expectProblem(refused, 403, 'REGISTRY_QUOTA_EXCEEDED')
    const seen: string[] = []
    let next: string | null = null
    do {
      const reply: Reply = await api.call('GET', `${M}?limit=30${next === null ? '' : `&after=${next}`}`)
      expect(reply.status).toBe(200)
      seen.push(...itemIds(reply))
      next = reply.body.next as string | null
    } while (next !== null)
    expect(seen).toHaveLength(MAX_SUBSCRIPTIONS_PER_TENANT)
    expect(seen).toEqual(seen.toSorted())
  })
})
