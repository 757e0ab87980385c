// Desired configuration over CoAP as devices meet it: a running `tributary start` on the Kafka bus,
// the document written through the management API (curl), the device played by Debian's coap-client
// (`GET /v1/config`, again with the ETag option, `POST /v1/config/applied`), the report read back
// through the API and the events read from the tenant's events topic with kcat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coapBasic, coapClient } from '../helpers/coap.ts'
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
let coapPort = 0

beforeAll(async () => {
  const t = await startOnKafka('e2e_cfgcoap')
  ;({ brokers, prefix, proc, api } = t)
  apiBase = t.url('api')
  coapPort = t.ports['coap']!
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

const admin = ['-H', `authorization: Bearer ${ADMIN_TOKEN}`, '-H', 'content-type: application/json']

describe('configuration over CoAP (e2e: coap-client, API, kcat)', () => {
  it('answers GET /v1/config 2.05 with the id as ETag, 2.03 for that ETag, and records the report', async () => {
    const tenant = uniqueName('cc')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'valve-1')
    await api.setPassword(tenant, 'valve-1', PASSWORD)
    const put = await curl([
      ...admin,
      '-X',
      'PUT',
      '-d',
      '{"rate":60}',
      `${apiBase}/api/v1/tenants/${tenant}/config`,
    ])
    expect(put.status, put.body).toBe(200)
    const login = coapBasic('valve-1', tenant, PASSWORD)

    const first = await coapClient(coapPort, ['-m', 'get', ...login], '/v1/config')
    expect(first.code, first.stderr).toBe('2.05')
    const body = /\{"configId".*\}/.exec(first.stdout)
    expect(body, first.stdout).not.toBeNull()
    const { configId, config } = JSON.parse(body![0]) as { configId: string; config: unknown }
    expect(config).toEqual({ rate: 60 })
    expect(configId).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const log = `${first.stdout}\n${first.stderr}`
    expect(log).toMatch(/Content-Format:50|Content-Format:application\/json/)
    // An ETag option holds at most 8 bytes: the first 8 of the 16 the id encodes.
    const etag = Buffer.from(configId, 'base64url').subarray(0, 8).toString('hex')
    expect(log.toLowerCase()).toContain(etag)

    // The ETag of the current id: 2.03 Valid, nothing new.
    const again = await coapClient(coapPort, ['-m', 'get', ...login, '-O', `4,0x${etag}`], '/v1/config')
    expect(again.code, again.stderr).toBe('2.03')

    // An id never sent: 4.00 (HTTP's 400).
    const wrong = await coapClient(
      coapPort,
      ['-m', 'post', ...login, '-t', '50', '-e', `{"configId":"${'A'.repeat(22)}"}`],
      '/v1/config/applied',
    )
    expect(wrong.code).toBe('4.00')

    const report = await coapClient(
      coapPort,
      ['-m', 'post', ...login, '-t', '50', '-e', `{"configId":"${configId}","statusCode":200}`],
      '/v1/config/applied',
    )
    expect(report.code, report.stderr).toBe('2.04')

    const events = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) => /^io\.tributary\.config\.(delivered|applied)\.v1$/.test(r.headers['ce_type'] ?? ''),
      { timeoutMs: 30_000, count: 2 },
    )
    expect(events.map((r) => [r.headers['ce_type'], r.headers['ce_protocol']])).toEqual([
      ['io.tributary.config.delivered.v1', 'coap'],
      ['io.tributary.config.applied.v1', 'coap'],
    ])
    expect(JSON.parse(String(events[1]!.payload))).toEqual({ configId, statusCode: 200, reasonPhrase: null })

    const effective = await curl([
      ...admin,
      `${apiBase}/api/v1/tenants/${tenant}/devices/valve-1/config/effective`,
    ])
    expect(effective.json.state).toMatchObject({
      delivered: { configId, protocol: 'coap' },
      applied: { configId, statusCode: 200, reasonPhrase: null, protocol: 'coap' },
    })
  })

  it('records the appVersion a device names in GET /v1/config?appVersion= and answers for it', async () => {
    const tenant = uniqueName('cv')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'valve-2')
    await api.setPassword(tenant, 'valve-2', PASSWORD)
    const put = await curl([
      ...admin,
      '-X',
      'PUT',
      '-d',
      '{"rate":5}',
      `${apiBase}/api/v1/tenants/${tenant}/config/app-versions/fw-2`,
    ])
    expect(put.status, put.body).toBe(200)
    const login = coapBasic('valve-2', tenant, PASSWORD)
    const got = await coapClient(coapPort, ['-m', 'get', ...login], '/v1/config?appVersion=fw-2')
    expect(got.code, got.stderr).toBe('2.05')
    expect(got.stdout).toContain('"config":{"rate":5}')
    const device = await curl([...admin, `${apiBase}/api/v1/tenants/${tenant}/devices/valve-2`])
    expect(device.json.appVersion).toBe('fw-2')
    const bad = await coapClient(coapPort, ['-m', 'get', ...login], '/v1/config?appVersion=-x')
    expect(bad.code, bad.stderr).toBe('4.00')
  })

  it('observes GET /v1/config: the document at once, then a notification for a change made through the API', async () => {
    const tenant = uniqueName('co')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'valve-2')
    await api.setPassword(tenant, 'valve-2', PASSWORD)
    const put = (body: string) =>
      curl([...admin, '-X', 'PUT', '-d', body, `${apiBase}/api/v1/tenants/${tenant}/devices/valve-2/config`])
    expect((await put('{"rate":60}')).status).toBe(200)
    const state = async () =>
      (await curl([...admin, `${apiBase}/api/v1/tenants/${tenant}/devices/valve-2/config/effective`]))
        .json as {
        configId: string
        state: { delivered: { configId: string; protocol: string } } | null
      }
    const before = await state()

    // Observes for 12 s (-s), then deregisters; -B bounds the whole run.
    const observing = coapClient(
      coapPort,
      ['-m', 'get', '-s', '12', '-B', '14', ...coapBasic('valve-2', tenant, PASSWORD)],
      '/v1/config',
    )
    // The registration was answered once the delivery is recorded.
    await waitUntil(async () => (await state()).state?.delivered.configId === before.configId, {
      timeoutMs: 10_000,
      message: () => 'the observation to be answered',
    })
    expect((await put('{"rate":5}')).status).toBe(200)
    const after = await state()
    expect(after.configId).not.toBe(before.configId)
    await waitUntil(async () => (await state()).state?.delivered.configId === after.configId, {
      timeoutMs: 10_000,
      message: () => 'the notification of the change to be delivered',
    })
    const run = await observing
    const log = `${run.stdout}\n${run.stderr}`
    // The 2.05 responses that carry Observe: the registration's answer and one notification.
    const responses = [...log.matchAll(/^v:1 t:(?:CON|NON|ACK) c:2\.05 .*Observe:.*$/gm)].map((m) => m[0])
    const bodies = responses.map((line) => JSON.parse(/:: '(.*)'$/.exec(line)![1]!) as unknown)
    expect(bodies).toEqual([
      { configId: before.configId, config: { rate: 60 } },
      { configId: after.configId, config: { rate: 5 } },
    ])
    const observe = responses.map((line) => Number(/Observe:(\d+)/.exec(line)?.[1]))
    expect(observe[1]).toBeGreaterThan(observe[0]!)
    const etag = (id: string) => Buffer.from(id, 'base64url').subarray(0, 8).toString('hex')
    expect(responses[0]!.toLowerCase()).toContain(`etag:0x${etag(before.configId)}`)
    expect(responses[1]!.toLowerCase()).toContain(`etag:0x${etag(after.configId)}`)
    // At the end of -s the client deregisters (GET with Observe 1, RFC 7641 §3.6).
    expect(log).toMatch(/^v:1 t:(?:CON|NON) c:GET .*Observe:1,.*Uri-Path:config/m)
  })
})
