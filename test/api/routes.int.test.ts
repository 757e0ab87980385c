// Route table routes over real HTTP: an empty table at version 0, replaced whole under If-Match
// (or If-None-Match: * the first time), every action round-tripped, bad rules refused with the path
// of the bad field, and readers read but do not write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness, Reply } from './harness.ts'
import { startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/plant'
const R = `${T}/routes`
const tokens = { reader: '', manager: '' }

const RULES = [
  {
    name: 'alerts',
    match: { channel: 'alerts/#', type: 'io.tributary.telemetry.v1', labels: { site: 'north' } },
    actions: [
      { action: 'set-extension', name: 'severity', value: 'high' },
      { action: 'remove-extension', name: 'debug' },
      { action: 'set-type', type: 'com.example.alert.v1' },
      { action: 'set-subject', subject: 'alerts/all' },
      { action: 'copy', topic: 'alerts' },
    ],
  },
  {
    name: 'tests',
    match: { labels: { kind: 'test' } },
    actions: [{ action: 'reject', reason: 'test-device' }],
  },
  { name: 'noise', match: { channel: '+/debug' }, actions: [{ action: 'drop' }] },
]

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

const rulesWith = (action: Record<string, unknown>, match: Record<string, unknown> = {}) => ({
  rules: [{ name: 'r', match, actions: [action] }],
})

describe('route tables', () => {
  it('starts empty at version 0 and is replaced whole under If-Match', async () => {
    const empty = await api.call('GET', R, { token: tokens.reader })
    expect(empty.status).toBe(200)
    expect(empty.headers.get('etag')).toBe('"0"')
    expect(empty.body).toMatchObject({ tenant: 'plant', rules: [], version: 0 })

    const first = await api.call('PUT', R, {
      body: { rules: RULES },
      headers: { 'if-none-match': '*' },
      token: tokens.manager,
    })
    expect(first.status).toBe(200)
    expect(first.headers.get('etag')).toBe('"1"')
    expect(first.body).toMatchObject({ tenant: 'plant', rules: RULES, version: 1 })
    expect((await api.call('GET', R)).body).toEqual(first.body)

    expectProblem(
      await api.call('PUT', R, { body: { rules: [] }, headers: { 'if-none-match': '*' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expectProblem(
      await api.call('PUT', R, { body: { rules: [] }, headers: { 'if-match': '"0"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    const second = await api.call('PUT', R, {
      body: { rules: RULES.slice(2) },
      headers: { 'if-match': '"1"' },
    })
    expect(second.status).toBe(200)
    expect(second.body).toMatchObject({ rules: RULES.slice(2), version: 2 })
    const stale = await api.call('PUT', R, { body: { rules: [] }, headers: { 'if-match': '"1"' } })
    expectProblem(stale, 412, 'REGISTRY_VERSION_MISMATCH')
    expect(stale.body.detail).toMatch(/version 2/)
    // If-Match: * and no precondition both replace whatever is there.
    expect(
      (await api.call('PUT', R, { body: { rules: RULES }, headers: { 'if-match': '*' } })).body.version,
    ).toBe(3)
    const cleared = await api.call('PUT', R, { body: { rules: [] } })
    expect(cleared.body).toMatchObject({ rules: [], version: 4 })
    expect(cleared.headers.get('etag')).toBe('"4"')
  })

  it('writes only a table never written with If-Match: "0"', async () => {
    await api.call('POST', '/api/v1/tenants', { body: { id: 'fresh' } })
    const path = '/api/v1/tenants/fresh/routes'
    const reply = await api.call('PUT', path, { body: { rules: RULES }, headers: { 'if-match': '"0"' } })
    expect(reply.status).toBe(200)
    expect(reply.body.version).toBe(1)
    expectProblem(await api.call('GET', '/api/v1/tenants/nowhere/routes'), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(
      await api.call('PUT', '/api/v1/tenants/nowhere/routes', { body: { rules: [] } }),
      404,
      'REGISTRY_NOT_FOUND',
    )
  })

  it.each([
    [
      'an unknown action',
      rulesWith({ action: 'explode' }),
      'body.rules.0.actions.0.action',
      /must be one of drop, reject/,
    ],
    [
      'a protected attribute',
      rulesWith({ action: 'set-extension', name: 'tenant', value: 'x' }),
      'body.rules.0.actions.0.name',
      /may not change/,
    ],
    [
      'a removed protected attribute',
      rulesWith({ action: 'remove-extension', name: 'traceparent' }),
      'body.rules.0.actions.0.name',
      /may not change/,
    ],
    [
      'an extension name with a dash',
      rulesWith({ action: 'set-extension', name: 'my-ext', value: 'x' }),
      'body.rules.0.actions.0.name',
      /a-z 0-9/,
    ],
    [
      'a value too long',
      rulesWith({ action: 'set-extension', name: 'ext', value: 'v'.repeat(257) }),
      'body.rules.0.actions.0.value',
      /256/,
    ],
    ['a reject without reason', rulesWith({ action: 'reject' }), 'body.rules.0.actions.0.reason', /string/],
    [
      'a reason with capitals',
      rulesWith({ action: 'reject', reason: 'Bad' }),
      'body.rules.0.actions.0.reason',
      /a-z 0-9/,
    ],
    [
      'a subject that is a filter',
      rulesWith({ action: 'set-subject', subject: 'a/+' }),
      'body.rules.0.actions.0.subject',
      /levels/,
    ],
    [
      'a copy topic with a dot',
      rulesWith({ action: 'copy', topic: 'a.b' }),
      'body.rules.0.actions.0.topic',
      /a-z 0-9/,
    ],
    [
      'an empty type',
      rulesWith({ action: 'set-type', type: '' }),
      'body.rules.0.actions.0.type',
      /printable/,
    ],
    ['an extra action field', rulesWith({ action: 'drop', reason: 'x' }), 'body.rules.0.actions.0', /reason/],
    [
      'a # that is not last',
      rulesWith({ action: 'drop' }, { channel: 'a/#/b' }),
      'body.rules.0.match.channel',
      /filter/,
    ],
    [
      '17 match labels',
      rulesWith(
        { action: 'drop' },
        { labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      ),
      'body.rules.0.match.labels',
      /16/,
    ],
    [
      'an unknown match field',
      rulesWith({ action: 'drop' }, { device: 'd1' }),
      'body.rules.0.match',
      /device/,
    ],
    ['no actions', { rules: [{ name: 'r', match: {}, actions: [] }] }, 'body.rules.0.actions', /1/],
    [
      'a bad rule name',
      { rules: [{ name: 'R 1', match: {}, actions: [{ action: 'drop' }] }] },
      'body.rules.0.name',
      /a-z 0-9/,
    ],
    [
      'a rule without match',
      { rules: [{ name: 'r', actions: [{ action: 'drop' }] }] },
      'body.rules.0.match',
      /object/,
    ],
    [
      'two rules of one name',
      {
        rules: [
          { name: 'a', match: {}, actions: [{ action: 'drop' }] },
          { name: 'a', match: {}, actions: [{ action: 'drop' }] },
        ],
      },
      'body.rules.1.name',
      /earlier rule/,
    ],
    [
      '101 rules',
      {
        rules: Array.from({ length: 101 }, (_, i) => ({
          name: `r${i}`,
          match: {},
          actions: [{ action: 'drop' }],
        })),
      },
      'body.rules',
      /100/,
    ],
    ['no rules field', {}, 'body.rules', /array/],
  ])('refuses %s with 400 naming the field, and keeps the table', async (_, body, field, message) => {
    const before = await api.call('GET', R)
    const reply = await api.call('PUT', R, { body })
    expectProblem(reply, 400, 'REQUEST_INVALID')
    const error = (reply.body.errors as Array<{ path: string; message: string }>).find(
      (e) => e.path === field,
    )
    expect(error, JSON.stringify(reply.body.errors)).toBeDefined()
    expect(`${error?.message} ${reply.body.detail}`).toMatch(message)
    expect((await api.call('GET', R)).body).toEqual(before.body)
  })

  it('lets readers read but not write (403)', async () => {
    expect((await api.call('GET', R, { token: tokens.reader })).status).toBe(200)
    expectProblem(
      await api.call('PUT', R, { body: { rules: [] }, token: tokens.reader }),
      403,
      'AUTH_FORBIDDEN',
    )
    expect((await api.call('PUT', R, { body: { rules: RULES }, token: tokens.manager })).status).toBe(200)
  })

  it('reaches the processors’ cached lookup once the change event is through', async () => {
    await api.call('POST', '/api/v1/tenants', { body: { id: 'cached' } })
    expect((await api.auth.routeTable('cached')).rules).toEqual([])
    await api.call('PUT', '/api/v1/tenants/cached/routes', { body: { rules: RULES } })
    await api.settle()
    expect(await api.auth.routeTable('cached')).toMatchObject({ version: 1, rules: RULES })
  })
})
