// Desired configuration over HTTP as operators and devices meet it: a running `tributary start` on
// the Kafka bus, documents written through the management API (curl), the device played by curl
// (`GET /v1/config` with If-None-Match, `POST /v1/config/applied`), the report read back through the
// API and the delivered and applied events read from the tenant's events topic with kcat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { ADMIN_TOKEN, waitForRecords } from '../helpers/mqtt.ts'
import type { Api } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const PASSWORD = 'correct horse battery'

let brokers = ''
let prefix = ''
let proc: TributaryProcess
let api: Api
let apiBase = ''
let httpBase = ''

beforeAll(async () => {
  const t = await startOnKafka('e2e_cfg')
  ;({ brokers, prefix, proc, api } = t)
  apiBase = t.url('api')
  httpBase = t.url('http')
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

const login = (device: string, tenant: string): string[] => ['-u', `${device}@${tenant}:${PASSWORD}`]
const bearer = ['-H', `authorization: Bearer ${ADMIN_TOKEN}`]
const admin = [...bearer, '-H', 'content-type: application/json']

describe('configuration over HTTP (e2e: curl, API, kcat)', () => {
  it('gives a device its merged configuration, 304 for the id it has, and records its report', async () => {
    const tenant = uniqueName('cf')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'valve-1', { appVersion: 'v2' })
    await api.setPassword(tenant, 'valve-1', PASSWORD)
    const tenantLevel = await curl([
      ...admin,
      '-X',
      'PUT',
      '-d',
      '{"rate":60,"net":{"host":"a"}}',
      `${apiBase}/api/v1/tenants/${tenant}/config`,
    ])
    expect(tenantLevel.status, tenantLevel.body).toBe(200)
    const appLevel = await curl([
      ...admin,
      '-X',
      'PUT',
      '-d',
      '{"net":{"port":8883}}',
      `${apiBase}/api/v1/tenants/${tenant}/config/app-versions/v2`,
    ])
    expect(appLevel.status, appLevel.body).toBe(200)

    const first = await curl([...login('valve-1', tenant), `${httpBase}/v1/config`])
    expect(first.status, first.body).toBe(200)
    expect(first.json.config).toEqual({ rate: 60, net: { host: 'a', port: 8883 } })
    const configId = String(first.json.configId)
    expect(configId).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(first.headers['etag']).toBe(`"${configId}"`)

    // The same id: nothing new (Kaa 7/CMP), and no second delivery event.
    const again = await curl([
      ...login('valve-1', tenant),
      '-H',
      `if-none-match: "${configId}"`,
      `${httpBase}/v1/config`,
    ])
    expect(again).toMatchObject({ status: 304, body: '' })
    expect(again.headers['etag']).toBe(`"${configId}"`)

    // A report of an id never sent is refused, and nothing reaches the events.
    const topic = `${prefix}.events.${tenant}`
    const wrong = await curl([
      ...login('valve-1', tenant),
      '-H',
      'content-type: application/json',
      '-d',
      `{"configId":"${'A'.repeat(22)}"}`,
      `${httpBase}/v1/config/applied`,
    ])
    expect(wrong.status).toBe(400)
    expect(wrong.json.detail).toMatch(/was never sent to device valve-1/)
    const bad = await curl([
      ...login('valve-1', tenant),
      '-d',
      '{"configId":1}',
      `${httpBase}/v1/config/applied`,
    ])
    expect(bad.status).toBe(400)

    const report = await curl([
      ...login('valve-1', tenant),
      '-H',
      'content-type: application/json',
      '-d',
      `{"configId":"${configId}","statusCode":200}`,
      `${httpBase}/v1/config/applied`,
    ])
    expect(report.status, report.body).toBe(202)

    const records = await waitForRecords(
      brokers,
      topic,
      (r) => r.headers['ce_type'] === 'io.tributary.config.applied.v1',
      { timeoutMs: 30_000 },
    )
    const all = await waitForRecords(
      brokers,
      topic,
      (r) => /^io\.tributary\.config\.(delivered|applied)\.v1$/.test(r.headers['ce_type'] ?? ''),
      {
        timeoutMs: 30_000,
        count: 2,
      },
    )
    expect(all.map((r) => r.headers['ce_type'])).toEqual([
      'io.tributary.config.delivered.v1',
      'io.tributary.config.applied.v1',
    ])
    expect(JSON.parse(String(all[0]!.payload))).toEqual({ configId })
    expect(JSON.parse(String(records[0]!.payload))).toEqual({ configId, statusCode: 200, reasonPhrase: null })
    expect(records[0]!.headers).toMatchObject({
      ce_subject: 'config',
      ce_protocol: 'http',
      ce_device: 'valve-1',
    })

    const effective = await curl([
      ...admin,
      `${apiBase}/api/v1/tenants/${tenant}/devices/valve-1/config/effective`,
    ])
    expect(effective.json.state).toMatchObject({
      delivered: { configId, protocol: 'http' },
      applied: { configId, statusCode: 200, reasonPhrase: null, protocol: 'http' },
    })
    const status = await curl([...admin, `${apiBase}/api/v1/tenants/${tenant}/config/status`])
    expect(status.json.items).toEqual([{ configId, applied: 1, rejected: 0, pending: 0 }])

    // A change of the device's document gives it a new id on its next GET.
    const patched = await curl([
      ...bearer,
      '-X',
      'PATCH',
      '-H',
      'content-type: application/merge-patch+json',
      '-d',
      '{"rate":30}',
      `${apiBase}/api/v1/tenants/${tenant}/devices/valve-1/config`,
    ])
    expect(patched.status, patched.body).toBe(200)
    const changed = await curl([
      ...login('valve-1', tenant),
      '-H',
      `if-none-match: "${configId}"`,
      `${httpBase}/v1/config`,
    ])
    expect(changed.status).toBe(200)
    expect(changed.json.config).toEqual({ rate: 30, net: { host: 'a', port: 8883 } })
    expect(changed.json.configId).not.toBe(configId)
  })

  it('records the appVersion a device names in GET /v1/config?appVersion= and answers for it', async () => {
    const tenant = uniqueName('cv')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'pump', { appVersion: 'v1' })
    await api.setPassword(tenant, 'pump', PASSWORD)
    for (const [path, body] of [
      ['config', '{"mode":"base"}'],
      ['config/app-versions/v2', '{"mode":"v2"}'],
    ] as const) {
      const put = await curl([
        ...admin,
        '-X',
        'PUT',
        '-d',
        body,
        `${apiBase}/api/v1/tenants/${tenant}/${path}`,
      ])
      expect(put.status, put.body).toBe(200)
    }
    expect((await curl([...login('pump', tenant), `${httpBase}/v1/config`])).json.config).toEqual({
      mode: 'base',
    })

    // The device updated its firmware: it says so, and is answered with v2's configuration.
    const moved = await curl([...login('pump', tenant), `${httpBase}/v1/config?appVersion=v2`])
    expect(moved.status, moved.body).toBe(200)
    expect(moved.json.config).toEqual({ mode: 'v2' })
    const device = await curl([...bearer, `${apiBase}/api/v1/tenants/${tenant}/devices/pump`])
    expect(device.json).toMatchObject({ appVersion: 'v2', version: 2 })
    // The same version again writes nothing; a malformed one is 400 and writes nothing.
    expect((await curl([...login('pump', tenant), `${httpBase}/v1/config?appVersion=v2`])).status).toBe(200)
    const bad = await curl([...login('pump', tenant), `${httpBase}/v1/config?appVersion=..%2Fv3`])
    expect(bad.status, bad.body).toBe(400)
    expect(bad.json.detail).toMatch(/appVersion/)
    const after = await curl([...bearer, `${apiBase}/api/v1/tenants/${tenant}/devices/pump`])
    expect(after.json).toMatchObject({ appVersion: 'v2', version: 2 })
  })

  it('refuses a device without credentials and a gateway the device does not list', async () => {
    const tenant = uniqueName('cf')
    await api.createTenant(tenant)
    for (const d of ['gw-1', 'child-1']) {
      await api.createDevice(tenant, d)
      await api.setPassword(tenant, d, PASSWORD)
    }
    expect((await curl([`${httpBase}/v1/config`])).status).toBe(401)
    expect((await curl([...login('gw-1', tenant), `${httpBase}/v1/config?as=child-1`])).status).toBe(403)
    await api.patchDevice(tenant, 'child-1', { gateways: ['gw-1'] })
    // The cached device row is refreshed by the registry change, which arrives within a second.
    let asked = await curl([...login('gw-1', tenant), `${httpBase}/v1/config?as=child-1`])
    await waitUntil(
      async () =>
        (asked = await curl([...login('gw-1', tenant), `${httpBase}/v1/config?as=child-1`])).status === 200,
      { message: () => `the gateway let in; last answer ${asked.status} ${asked.body}` },
    )
    expect(asked.json.config).toEqual({})
  })

  it('holds GET /v1/config?wait= until a change gives another id, and answers 304 when none came', async () => {
    const tenant = uniqueName('cf')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'lamp')
    await api.setPassword(tenant, 'lamp', PASSWORD)
    const first = await curl([...login('lamp', tenant), `${httpBase}/v1/config`])
    const configId = String(first.json.configId)

    const none = await curl([
      ...login('lamp', tenant),
      '-H',
      `if-none-match: "${configId}"`,
      `${httpBase}/v1/config?wait=1`,
    ])
    expect(none.status).toBe(304)
    const tooLong = await curl([...login('lamp', tenant), `${httpBase}/v1/config?wait=100000`])
    expect(tooLong.status).toBe(400)

    // Waiting with the current id; a change written through the API ends the wait with it.
    const waiting = curl([
      ...login('lamp', tenant),
      '-H',
      `if-none-match: "${configId}"`,
      `${httpBase}/v1/config?wait=20`,
    ])
    const put = await curl([
      ...admin,
      '-X',
      'PUT',
      '-d',
      '{"on":true}',
      `${apiBase}/api/v1/tenants/${tenant}/devices/lamp/config`,
    ])
    expect(put.status, put.body).toBe(200)
    const changed = await waiting
    expect(changed.status, changed.body).toBe(200)
    expect(changed.json.config).toEqual({ on: true })
    expect(changed.json.configId).not.toBe(configId)
  })

  it('announces io.tributary.config.changed.v1 per device whose configuration id changed', async () => {
    const tenant = uniqueName('cg')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'pump-1', { appVersion: 'v2' })
    await api.createDevice(tenant, 'pump-2')
    const write = async (method: string, path: string, body: string) => {
      const res = await curl([
        ...admin,
        '-X',
        method,
        '-d',
        body,
        `${apiBase}/api/v1/tenants/${tenant}${path}`,
      ])
      expect(res.status, res.body).toBe(200)
    }
    const effectiveId = async (device: string): Promise<string> => {
      const res = await curl([
        ...admin,
        `${apiBase}/api/v1/tenants/${tenant}/devices/${device}/config/effective`,
      ])
      return String(res.json.configId)
    }
    const initial = { 'pump-1': await effectiveId('pump-1'), 'pump-2': await effectiveId('pump-2') }
    await write('PUT', '/config', '{"rate":60}')
    const afterTenant = { 'pump-1': await effectiveId('pump-1'), 'pump-2': await effectiveId('pump-2') }
    await write('PUT', '/config/app-versions/v2', '{"rate":10}')
    const pump1Last = await effectiveId('pump-1')
    // The same effective configuration for pump-2: no event.
    await write('PUT', '/devices/pump-2/config', '{"rate":60}')

    const records = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.config.changed.v1',
      { timeoutMs: 30_000, count: 3 },
    )
    const seen = records.map((r) => ({
      device: r.headers['ce_device'],
      subject: r.headers['ce_subject'],
      protocol: r.headers['ce_protocol'],
      data: JSON.parse(String(r.payload)) as unknown,
    }))
    const byDevice = (device: string) => seen.filter((e) => e.device === device)
    expect(byDevice('pump-1')).toEqual([
      {
        device: 'pump-1',
        subject: 'config',
        protocol: 'api',
        data: { previousConfigId: initial['pump-1'], configId: afterTenant['pump-1'] },
      },
      {
        device: 'pump-1',
        subject: 'config',
        protocol: 'api',
        data: { previousConfigId: afterTenant['pump-1'], configId: pump1Last },
      },
    ])
    expect(byDevice('pump-2')).toEqual([
      {
        device: 'pump-2',
        subject: 'config',
        protocol: 'api',
        data: { previousConfigId: initial['pump-2'], configId: afterTenant['pump-2'] },
      },
    ])
  })
})
