// The dead-letter route over real HTTP: a tenant's letters newest first, paged with the `next`
// cursor, filtered by device and reason; readers may list; another tenant's token, an unknown
// tenant and bad query parameters get problem documents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeadLetter } from '../../core/registry/model.ts'
import type { ApiHarness } from './harness.ts'
import { itemIds, startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/plant/dead-letters'
let reader = ''
let otherAdmin = ''

const base = Date.parse('2026-03-01T10:00:00.000Z')

function letter(tenant: string, offset: number, over: Partial<DeadLetter> = {}): DeadLetter {
  return {
    tenant,
    id: `ev-${offset}`,
    partition: offset % 2,
    offset,
    device: offset % 3 === 0 ? 'meter:3' : 'meter:1',
    type: 'io.tributary.telemetry.v1',
    subject: 'power',
    step: 'authorize',
    reason: offset % 4 === 0 ? 'schema-invalid' : 'device-disabled',
    detail: offset % 4 === 0 ? '[{"path":"/kw","message":"must be number"}]' : null,
    firstFailure: new Date(base + offset * 1000).toISOString(),
    deadLetteredAt: new Date(base + offset * 1000).toISOString(),
    contentType: 'application/json',
    data: Buffer.from(`{"kw":"${offset}"}`).toString('base64'),
    subscription: null,
    ...over,
  }
}

beforeAll(async () => {
  api = await startApi()
  await api.registry.createTenant('plant', {})
  await api.registry.createTenant('other', {})
  const letters: DeadLetter[] = []
  for (let offset = 1; offset <= 12; offset++) letters.push(letter('plant', offset))
  letters.push(letter('other', 1, { id: 'other-secret' }))
  await api.store.recordDeadLetters(letters)
  reader = (await api.registry.createApiToken('plant', { name: 'dash', role: 'reader' })).secret
  otherAdmin = (await api.registry.createApiToken('other', { name: 'ops', role: 'admin' })).secret
})
afterAll(async () => api.close())

describe('dead letters', () => {
  it('lists letters newest first with every field', async () => {
    const reply = await api.call('GET', T)
    expect(reply.status).toBe(200)
    expect(reply.body.next).toBeNull()
    expect(itemIds(reply)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((n) => `ev-${n}`))
    expect(reply.body.items[0]).toEqual({
      tenant: 'plant',
      id: 'ev-12',
      partition: 0,
      offset: 12,
      device: 'meter:3',
      type: 'io.tributary.telemetry.v1',
      subject: 'power',
      step: 'authorize',
      reason: 'schema-invalid',
      detail: '[{"path":"/kw","message":"must be number"}]',
      firstFailure: '2026-03-01T10:00:12.000Z',
      deadLetteredAt: '2026-03-01T10:00:12.000Z',
      contentType: 'application/json',
      data: Buffer.from('{"kw":"12"}').toString('base64'),
      subscription: null,
    })
  })

  it('pages with limit and the next cursor', async () => {
    const seen: string[] = []
    let path = `${T}?limit=5`
    let pages = 0
    for (;;) {
      const reply = await api.call('GET', path)
      expect(reply.status).toBe(200)
      seen.push(...itemIds(reply))
      pages++
      if (reply.body.next === null) break
      path = `${T}?limit=5&after=${encodeURIComponent(reply.body.next as string)}`
    }
    expect(pages).toBe(3)
    expect(seen).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((n) => `ev-${n}`))
  })

  it('filters by device and reason, together and across pages', async () => {
    const byDevice = await api.call('GET', `${T}?device=meter%3A3`)
    expect(itemIds(byDevice)).toEqual(['ev-12', 'ev-9', 'ev-6', 'ev-3'])
    const byReason = await api.call('GET', `${T}?reason=schema-invalid`)
    expect(itemIds(byReason)).toEqual(['ev-12', 'ev-8', 'ev-4'])
    const both = await api.call('GET', `${T}?device=meter:1&reason=schema-invalid`)
    expect(itemIds(both)).toEqual(['ev-8', 'ev-4'])
    const first = await api.call('GET', `${T}?device=meter:3&limit=3`)
    expect(itemIds(first)).toEqual(['ev-12', 'ev-9', 'ev-6'])
    const rest = await api.call('GET', `${T}?device=meter:3&limit=3&after=${first.body.next as string}`)
    expect(itemIds(rest)).toEqual(['ev-3'])
    expect(rest.body.next).toBeNull()
    expect(itemIds(await api.call('GET', `${T}?reason=quota-events`))).toEqual([])
  })

  it('lets a reader list', async () => {
    const reply = await api.call('GET', `${T}?limit=2`, { token: reader })
    expect(reply.status).toBe(200)
    expect(itemIds(reply)).toEqual(['ev-12', 'ev-11'])
  })

  it("answers another tenant's token and an unknown tenant with 404, showing nothing", async () => {
    const foreign = await api.call('GET', T, { token: otherAdmin })
    expect(foreign.status).toBe(404)
    expect(foreign.body.code).toBe('REGISTRY_NOT_FOUND')
    expect(foreign.text).not.toContain('ev-')
    const readerElsewhere = await api.call('GET', '/api/v1/tenants/other/dead-letters', { token: reader })
    expect(readerElsewhere.status).toBe(404)
    expect(readerElsewhere.text).not.toContain('other-secret')
    const ghost = await api.call('GET', '/api/v1/tenants/ghost/dead-letters')
    expect(ghost.status).toBe(404)
    expect(ghost.body.code).toBe('REGISTRY_NOT_FOUND')
    const own = await api.call('GET', '/api/v1/tenants/other/dead-letters', { token: otherAdmin })
    expect(itemIds(own)).toEqual(['other-secret'])
  })

  it('refuses bad query parameters with 400 naming them', async () => {
    const cases: Array<[string, string]> = [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['device=a%2Fb', 'device'],
      ['reason=Not%20A%20Reason', 'reason'],
      ['after=not-a-cursor', 'cursor'],
      ['after=', 'after'],
      ['colour=red', 'colour'],
    ]
    for (const [query, field] of cases) {
      const reply = await api.call('GET', `${T}?${query}`)
      expect(reply.status, query).toBe(400)
      expect(reply.headers.get('content-type'), query).toBe('application/problem+json')
      expect(['REQUEST_INVALID', 'REGISTRY_INVALID'], query).toContain(reply.body.code)
      expect(JSON.stringify(reply.body), query).toContain(field)
    }
    expect((await api.call('GET', T, { token: null })).status).toBe(401)
  })
})

describe('dead letters of a webhook subscription', () => {
  const H = '/api/v1/tenants/works'
  let hook = ''
  let sibling = ''
  let otherHook = ''
  let worksReader = ''

  beforeAll(async () => {
    await api.registry.createTenant('works', {})
    const subscribe = async (tenant: string, url: string) =>
      (await api.registry.createSubscription(tenant, { url })).subscription.id
    hook = await subscribe('works', 'https://hooks.example.com/a')
    sibling = await subscribe('works', 'https://hooks.example.com/b')
    otherHook = await subscribe('other', 'https://hooks.example.com/c')
    worksReader = (await api.registry.createApiToken('works', { name: 'dash', role: 'reader' })).secret
    const letters: DeadLetter[] = []
    for (let offset = 1; offset <= 5; offset++) {
      letters.push(
        letter('works', offset, {
          id: `hook-${offset}`,
          step: 'webhook',
          reason: offset % 2 === 0 ? 'rejected' : 'retries-exhausted',
          subscription: hook,
        }),
      )
    }
    letters.push(letter('works', 6, { id: 'sibling-6', step: 'webhook', subscription: sibling }))
    letters.push(letter('works', 7, { id: 'processors-7' }))
    letters.push(letter('other', 30, { id: 'other-hook-secret', step: 'webhook', subscription: otherHook }))
    await api.store.recordDeadLetters(letters)
  })

  it("lists only that subscription's letters, newest first, with the subscription on each", async () => {
    const reply = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters`, { token: worksReader })
    expect(reply.status).toBe(200)
    expect(itemIds(reply)).toEqual(['hook-5', 'hook-4', 'hook-3', 'hook-2', 'hook-1'])
    expect(reply.body.items[0]).toMatchObject({ tenant: 'works', step: 'webhook', subscription: hook })
    const others = await api.call('GET', `${H}/subscriptions/${sibling}/dead-letters`)
    expect(itemIds(others)).toEqual(['sibling-6'])
  })

  it('pages and narrows by reason and device', async () => {
    const first = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters?limit=2`)
    expect(itemIds(first)).toEqual(['hook-5', 'hook-4'])
    const next = encodeURIComponent(first.body.next as string)
    const second = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters?limit=2&after=${next}`)
    expect(itemIds(second)).toEqual(['hook-3', 'hook-2'])
    const rejected = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters?reason=rejected`)
    expect(itemIds(rejected)).toEqual(['hook-4', 'hook-2'])
    const device = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters?device=meter:3`)
    expect(itemIds(device)).toEqual(['hook-3'])
  })

  it('filters the tenant-wide list by subscription, and shows null on the processors’ letters', async () => {
    const reply = await api.call('GET', `${H}/dead-letters?subscription=${sibling}`)
    expect(itemIds(reply)).toEqual(['sibling-6'])
    const all = await api.call('GET', `${H}/dead-letters?limit=1`)
    expect(all.body.items[0]).toMatchObject({ id: 'processors-7', subscription: null })
    const foreign = await api.call('GET', `${H}/dead-letters?subscription=${otherHook}`)
    expect(itemIds(foreign)).toEqual([])
  })

  it("answers an unknown subscription, another tenant's subscription and another tenant's token with 404", async () => {
    const cases: Array<[string, string | undefined]> = [
      [`${H}/subscriptions/no-such-hook/dead-letters`, undefined],
      [`${H}/subscriptions/${otherHook}/dead-letters`, undefined],
      [`${H}/subscriptions/${hook}/dead-letters`, otherAdmin],
      ['/api/v1/tenants/ghost/subscriptions/x/dead-letters', undefined],
    ]
    for (const [path, token] of cases) {
      const reply = await api.call('GET', path, token === undefined ? {} : { token })
      expect(reply.status, path).toBe(404)
      expect(reply.body.code, path).toBe('REGISTRY_NOT_FOUND')
      expect(reply.text, path).not.toContain('hook-')
      expect(reply.text, path).not.toContain('other-hook-secret')
    }
  })

  it('refuses bad query parameters with 400 naming them', async () => {
    for (const [query, field] of [
      ['subscription=x', 'subscription'],
      ['reason=Nope', 'reason'],
      ['limit=0', 'limit'],
    ] as const) {
      const reply = await api.call('GET', `${H}/subscriptions/${hook}/dead-letters?${query}`)
      expect(reply.status, query).toBe(400)
      expect(JSON.stringify(reply.body), query).toContain(field)
    }
    const bad = await api.call('GET', `${H}/dead-letters?subscription=a%2Fb`)
    expect(bad.status).toBe(400)
    expect(JSON.stringify(bad.body)).toContain('subscription')
  })
})
