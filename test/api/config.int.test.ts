// Desired configuration routes over real HTTP: each level read at version 0 and `{}`, replaced and
// merge-patched under ETags, the device attribute appVersion selecting a level, the effective
// configuration merged with its content-hash id, the tenant's size bound, and refusals that
// write nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configId } from '../../core/registry/device-config.ts'
import type { ApiHarness, Reply } from './harness.ts'
import { startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/cfg'
const tokens = { reader: '', manager: '' }

beforeAll(async () => {
  api = await startApi()
  expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'cfg' } })).status).toBe(201)
  tokens.reader = (await api.registry.createApiToken('cfg', { name: 'r', role: 'reader' })).secret
  tokens.manager = (await api.registry.createApiToken('cfg', { name: 'm', role: 'manager' })).secret
})
afterAll(async () => api.close())

function expectProblem(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body.code).toBe(code)
}

describe('configuration documents', () => {
  const levels = [
    { path: `${T}/config`, fields: { level: 'tenant' } },
    { path: `${T}/config/app-versions/v1.0`, fields: { level: 'app-version', appVersion: 'v1.0' } },
    { path: `${T}/devices/lvl/config`, fields: { level: 'device', device: 'lvl' } },
  ]

  it('reads {} at version 0, then is replaced under If-Match and merge-patched', async () => {
    expect((await api.call('POST', `${T}/devices`, { body: { id: 'lvl' } })).status).toBe(201)
    for (const { path, fields } of levels) {
      const empty = await api.call('GET', path, { token: tokens.reader })
      expect(empty.status, empty.text).toBe(200)
      expect(empty.headers.get('etag')).toBe('"0"')
      expect(empty.body).toMatchObject({ tenant: 'cfg', ...fields, config: {}, version: 0 })

      const put = await api.call('PUT', path, {
        body: { net: { host: 'a', port: 1 }, led: 'on' },
        headers: { 'if-none-match': '*' },
        token: tokens.manager,
      })
      expect(put.status, put.text).toBe(200)
      expect(put.headers.get('etag')).toBe('"1"')
      expect(put.body).toMatchObject({
        ...fields,
        config: { net: { host: 'a', port: 1 }, led: 'on' },
        version: 1,
      })
      expect((await api.call('GET', path)).body).toEqual(put.body)

      expectProblem(
        await api.call('PUT', path, { body: {}, headers: { 'if-match': '"0"' } }),
        412,
        'REGISTRY_VERSION_MISMATCH',
      )
      const patched = await api.call('PATCH', path, {
        body: { net: { port: 2, host: null }, extra: [1] },
        headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"1"' },
        token: tokens.manager,
      })
      expect(patched.status, patched.text).toBe(200)
      expect(patched.headers.get('etag')).toBe('"2"')
      expect(patched.body.config).toEqual({ net: { port: 2 }, led: 'on', extra: [1] })
      expectProblem(
        await api.call('PATCH', path, { body: { led: 'off' }, headers: { 'if-match': '"1"' } }),
        412,
        'REGISTRY_VERSION_MISMATCH',
      )
      expect((await api.call('GET', path)).body.config).toEqual({ net: { port: 2 }, led: 'on', extra: [1] })
    }
  })

  it('lets readers read but not write', async () => {
    for (const { path } of levels) {
      expectProblem(await api.call('PUT', path, { body: {}, token: tokens.reader }), 403, 'AUTH_FORBIDDEN')
      expectProblem(await api.call('PATCH', path, { body: {}, token: tokens.reader }), 403, 'AUTH_FORBIDDEN')
    }
  })
})

describe('effective configuration', () => {
  it('merges tenant, appVersion and device levels; the id is the content hash, also the ETag', async () => {
    await api.call('PUT', `${T}/config`, { body: { rate: 60, net: { host: 'a', port: 1 }, list: [1, 2] } })
    await api.call('PUT', `${T}/config/app-versions/v2`, { body: { net: { port: 2 }, list: [3] } })
    const created = await api.call('POST', `${T}/devices`, { body: { id: 'eff', appVersion: 'v2' } })
    expect(created.body.appVersion).toBe('v2')
    await api.call('PUT', `${T}/devices/eff/config`, { body: { net: { host: 'b' } } })

    const reply = await api.call('GET', `${T}/devices/eff/config/effective`, { token: tokens.reader })
    expect(reply.status, reply.text).toBe(200)
    const config = { rate: 60, net: { host: 'b', port: 2 }, list: [3] }
    expect(reply.body).toEqual({
      tenant: 'cfg',
      device: 'eff',
      appVersion: 'v2',
      configId: configId(config),
      config,
      levels: [
        { level: 'tenant', version: expect.any(Number) },
        { level: 'app-version', appVersion: 'v2', version: 1 },
        { level: 'device', device: 'eff', version: 1 },
      ],
      state: null,
    })
    expect(reply.headers.get('etag')).toBe(`"${configId(config)}"`)

    // Another appVersion (none written) drops that level; no appVersion leaves it out.
    const moved = await api.call('PATCH', `${T}/devices/eff`, { body: { appVersion: 'v3' } })
    expect(moved.body.appVersion).toBe('v3')
    const v3 = await api.call('GET', `${T}/devices/eff/config/effective`)
    expect(v3.body.config).toEqual({ rate: 60, net: { host: 'b', port: 1 }, list: [1, 2] })
    expect(v3.body.levels[1]).toEqual({ level: 'app-version', appVersion: 'v3', version: 0 })
    await api.call('PATCH', `${T}/devices/eff`, { body: { appVersion: null } })
    const none = await api.call('GET', `${T}/devices/eff/config/effective`)
    expect(none.body).toMatchObject({ appVersion: null, configId: v3.body.configId })
    expect(none.body.levels).toHaveLength(2)
  })
})

describe('delivery state and fleet status', () => {
  it('shows what a device was sent and reported, and counts the fleet by configuration id', async () => {
    await api.registry.putConfig('cfg', { level: 'app-version', appVersion: 'fleet' }, { mode: 'fleet' })
    for (const id of ['f1', 'f2', 'f3']) await api.registry.createDevice('cfg', id, { appVersion: 'fleet' })
    const effective = await api.call('GET', `${T}/devices/f1/config/effective`)
    const id = String(effective.body.configId)
    for (const d of ['f1', 'f2', 'f3']) await api.registry.configDelivered('cfg', d, id, 'http')
    await api.registry.configApplied('cfg', 'f1', { configId: id }, 'http')
    await api.registry.configApplied(
      'cfg',
      'f2',
      { configId: id, statusCode: 422, reasonPhrase: 'bad' },
      'mqtt',
    )
    await expect(
      api.registry.configApplied('cfg', 'f3', { configId: 'A'.repeat(22) }, 'http'),
    ).rejects.toThrow(/never sent to device f3/)

    const f2 = await api.call('GET', `${T}/devices/f2/config/effective`, { token: tokens.reader })
    expect(f2.body.state).toEqual({
      delivered: { configId: id, time: expect.any(String), protocol: 'http' },
      applied: {
        configId: id,
        statusCode: 422,
        reasonPhrase: 'bad',
        time: expect.any(String),
        protocol: 'mqtt',
      },
    })
    const status = await api.call('GET', `${T}/config/status`, { token: tokens.reader })
    expect(status.status, status.text).toBe(200)
    expect(status.body).toEqual({
      tenant: 'cfg',
      items: [{ configId: id, applied: 1, rejected: 1, pending: 1 }],
    })
  })
})

describe('refusals', () => {
  it('refuses documents that are not JSON objects, or too large for the tenant, and writes nothing', async () => {
    const path = `${T}/config/app-versions/bounded`
    expectProblem(await api.call('PUT', path, { body: [1, 2] }), 400, 'REQUEST_INVALID')
    expectProblem(await api.call('PUT', path, { body: '"text"' }), 400, 'REQUEST_INVALID')
    expectProblem(
      await api.call('PUT', path, { body: { a: 1 }, headers: { 'content-type': 'text/plain' } }),
      415,
      'REQUEST_UNSUPPORTED_MEDIA_TYPE',
    )
    // The API's body limit (64 KiB by default) meets a too-large PUT first; a PATCH can still grow
    // the document past the bound, and the registry refuses that.
    expectProblem(
      await api.call('PUT', path, { body: { blob: 'x'.repeat(70_000) } }),
      413,
      'REQUEST_TOO_LARGE',
    )
    expect((await api.call('PUT', path, { body: { a: 'x'.repeat(40_000) } })).status).toBe(200)
    const tooBig = await api.call('PATCH', path, { body: { b: 'x'.repeat(40_000) } })
    expectProblem(tooBig, 400, 'REGISTRY_INVALID')
    expect(tooBig.body.detail).toMatch(/at most 65536 \(settings.configMaxBytes\)/)

    // The tenant's own bound applies to PUT and to the result of a PATCH.
    const tenant = await api.call('PATCH', T, { body: { settings: { configMaxBytes: 32 } } })
    expect(tenant.status, tenant.text).toBe(200)
    expect((await api.call('PUT', path, { body: { a: 'short' } })).body.version).toBe(2)
    expectProblem(await api.call('PATCH', path, { body: { b: 'x'.repeat(40) } }), 400, 'REGISTRY_INVALID')
    expectProblem(
      await api.call('PATCH', T, { body: { settings: { configMaxBytes: 1 } } }),
      400,
      'REGISTRY_INVALID',
    )
    await api.call('PATCH', T, { body: { settings: {} } })
    expect((await api.call('GET', path)).body).toMatchObject({ config: { a: 'short' }, version: 2 })
  })

  it('refuses bad appVersions and unknown devices', async () => {
    expectProblem(await api.call('GET', `${T}/config/app-versions/.bad`), 400, 'REQUEST_INVALID')
    expectProblem(
      await api.call('POST', `${T}/devices`, { body: { id: 'bad', appVersion: 'a/b' } }),
      400,
      'REQUEST_INVALID',
    )
    expectProblem(await api.call('GET', `${T}/devices/nobody/config`), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(
      await api.call('PUT', `${T}/devices/nobody/config`, { body: {} }),
      404,
      'REGISTRY_NOT_FOUND',
    )
    expectProblem(await api.call('GET', `${T}/devices/nobody/config/effective`), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('GET', '/api/v1/tenants/none/config'), 404, 'REGISTRY_NOT_FOUND')
  })
})

describe('configuration rules', () => {
  const R = '/api/v1/tenants/cfr'
  beforeAll(async () => {
    expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'cfr' } })).status).toBe(201)
  })

  it('creates (201, Location), lists in merge order, replaces under ETags, patches and deletes', async () => {
    const body = { selector: { region: 'eu' }, priority: 5, config: { ntp: 'eu', led: { on: true } } }
    const created = await api.call('PUT', `${R}/config/rules/eu`, {
      body,
      headers: { 'if-none-match': '*' },
    })
    expect(created.status, created.text).toBe(201)
    expect(created.headers.get('location')).toBe(`${R}/config/rules/eu`)
    expect(created.headers.get('etag')).toBe('"1"')
    expect(created.body).toMatchObject({ tenant: 'cfr', rule: 'eu', ...body, version: 1 })
    expectProblem(
      await api.call('PUT', `${R}/config/rules/eu`, { body, headers: { 'if-none-match': '*' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    // Without a priority a rule merges at 0; If-Match: * replaces only a rule that exists.
    expectProblem(
      await api.call('PUT', `${R}/config/rules/gold`, {
        body: { selector: { tier: 'gold' }, config: {} },
        headers: { 'if-match': '*' },
      }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    const gold = await api.call('PUT', `${R}/config/rules/gold`, {
      body: { selector: { tier: 'gold' }, config: { rate: 1 } },
    })
    expect(gold.body).toMatchObject({ priority: 0, version: 1 })

    const list = await api.call('GET', `${R}/config/rules`)
    expect(list.status, list.text).toBe(200)
    const items = list.body.items as Array<{ rule: string }>
    expect(items.map((r) => r.rule)).toEqual(['gold', 'eu'])

    const patched = await api.call('PATCH', `${R}/config/rules/eu`, {
      body: { priority: -1, config: { led: null, rate: 2 } },
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"1"' },
    })
    expect(patched.status, patched.text).toBe(200)
    expect(patched.headers.get('etag')).toBe('"2"')
    expect(patched.body).toMatchObject({
      selector: { region: 'eu' },
      priority: -1,
      config: { ntp: 'eu', rate: 2 },
    })
    // A patch that would leave the rule without a selector is refused and changes nothing.
    expectProblem(
      await api.call('PATCH', `${R}/config/rules/eu`, { body: { selector: { region: null } } }),
      400,
      'REGISTRY_INVALID',
    )
    expect((await api.call('GET', `${R}/config/rules/eu`)).body).toEqual(patched.body)

    expectProblem(
      await api.call('DELETE', `${R}/config/rules/eu`, { headers: { 'if-match': '"1"' } }),
      412,
      'REGISTRY_VERSION_MISMATCH',
    )
    expect(
      (await api.call('DELETE', `${R}/config/rules/eu`, { headers: { 'if-match': '"2"' } })).status,
    ).toBe(204)
    expectProblem(await api.call('GET', `${R}/config/rules/eu`), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('DELETE', `${R}/config/rules/eu`), 404, 'REGISTRY_NOT_FOUND')
    expect((await api.call('DELETE', `${R}/config/rules/gold`)).status).toBe(204)
  })

  it('merges the rules a device’s labels match between its application version and its own level', async () => {
    await api.call('PUT', `${R}/config`, { body: { ntp: 'pool', rate: 1, led: 'off' } })
    await api.call('PUT', `${R}/config/app-versions/v2`, { body: { rate: 2 } })
    await api.call('PUT', `${R}/config/rules/eu`, {
      body: { selector: { region: 'eu' }, config: { ntp: 'eu', rate: 3 } },
    })
    await api.call('PUT', `${R}/config/rules/gold`, {
      body: { selector: { region: 'eu', tier: 'gold' }, priority: 1, config: { rate: 4 } },
    })
    await api.call('PUT', `${R}/config/rules/us`, {
      body: { selector: { region: 'us' }, config: { ntp: 'us' } },
    })
    await api.call('POST', `${R}/devices`, {
      body: { id: 'm1', appVersion: 'v2', labels: { region: 'eu', tier: 'gold' } },
    })
    await api.call('PUT', `${R}/devices/m1/config`, { body: { led: 'on' } })

    const reply = await api.call('GET', `${R}/devices/m1/config/effective`)
    expect(reply.status, reply.text).toBe(200)
    const config = { ntp: 'eu', rate: 4, led: 'on' }
    expect(reply.body).toMatchObject({ configId: configId(config), config })
    expect(reply.body.levels).toEqual([
      { level: 'tenant', version: 1 },
      { level: 'app-version', appVersion: 'v2', version: 1 },
      { level: 'rule', rule: 'eu', version: 1 },
      { level: 'rule', rule: 'gold', version: 1 },
      { level: 'device', device: 'm1', version: 1 },
    ])

    // What adapters read for many devices at once is what the effective view shows.
    await api.call('POST', `${R}/devices`, { body: { id: 'm2', labels: { region: 'eu' } } })
    const many = await api.registry.getEffectiveConfigs('cfr', ['m1', 'm2', 'gone'])
    const m2 = await api.call('GET', `${R}/devices/m2/config/effective`)
    expect(many).toEqual(
      new Map([
        ['m1', { configId: configId(config), config }],
        ['m2', { configId: m2.body.configId, config: { ntp: 'eu', rate: 3, led: 'off' } }],
      ]),
    )

    // New labels: other rules.
    await api.call('PATCH', `${R}/devices/m1`, { body: { labels: { region: 'us' } } })
    const moved = await api.call('GET', `${R}/devices/m1/config/effective`)
    expect(moved.body.config).toEqual({ ntp: 'us', rate: 2, led: 'on' })
    const levels = moved.body.levels as Array<{ level: string; rule?: string }>
    expect(levels.map((l) => l.rule ?? l.level)).toEqual(['tenant', 'app-version', 'us', 'device'])
  })

  it('lets readers read rules but not write them', async () => {
    const reader = (await api.registry.createApiToken('cfr', { name: 'r', role: 'reader' })).secret
    expect((await api.call('GET', `${R}/config/rules`, { token: reader })).status).toBe(200)
    expect((await api.call('GET', `${R}/config/rules/us`, { token: reader })).status).toBe(200)
    const body = { selector: { a: 'b' }, config: {} }
    expectProblem(
      await api.call('PUT', `${R}/config/rules/x`, { body, token: reader }),
      403,
      'AUTH_FORBIDDEN',
    )
    expectProblem(
      await api.call('PATCH', `${R}/config/rules/us`, { body, token: reader }),
      403,
      'AUTH_FORBIDDEN',
    )
    expectProblem(await api.call('DELETE', `${R}/config/rules/us`, { token: reader }), 403, 'AUTH_FORBIDDEN')
  })

  it('refuses bad names, selectors, priorities, fields and documents, and writes nothing', async () => {
    const put = (name: string, body: unknown) => api.call('PUT', `${R}/config/rules/${name}`, { body })
    const ok = { selector: { a: 'b' }, config: {} }
    expectProblem(await put('-bad', ok), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { ...ok, selector: {} }), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { ...ok, selector: { 'a b': 'c' } }), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { ...ok, priority: 1.5 }), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { ...ok, extra: true }), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { selector: { a: 'b' } }), 400, 'REQUEST_INVALID')
    expectProblem(await put('r', { ...ok, config: [1] }), 400, 'REQUEST_INVALID')
    const bounded = await api.call('PATCH', '/api/v1/tenants/cfr', {
      body: { settings: { configMaxBytes: 32 } },
    })
    expect(bounded.status, bounded.text).toBe(200)
    expectProblem(await put('r', { ...ok, config: { text: 'x'.repeat(64) } }), 400, 'REGISTRY_INVALID')
    await api.call('PATCH', '/api/v1/tenants/cfr', { body: { settings: {} } })
    expectProblem(await api.call('GET', `${R}/config/rules/r`), 404, 'REGISTRY_NOT_FOUND')
    expectProblem(await api.call('GET', '/api/v1/tenants/none/config/rules'), 404, 'REGISTRY_NOT_FOUND')
  })
})
