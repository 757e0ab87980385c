// The device HTTP endpoint as devices and data engineers meet it: a running `tributary start` on the
// Kafka bus, driven with curl (Basic, Bearer, gateways, every bad input); what it wrote is read back
// from Kafka with kcat, and a refusal is shown to write nothing by the ingress end offsets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl, topicEnd } from '../helpers/curl.ts'
import type { Api, KafkaRecord } from '../helpers/mqtt.ts'
import { waitForRecords } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const MAX_BODY = 1024
const PASSWORD = 'correct horse battery'
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let brokers = ''
let ingress = ''
let proc: TributaryProcess
let api: Api
let base = ''
let management = ''

beforeAll(async () => {
  const t = await startOnKafka('e2e_http', { TRIBUTARY_HTTP_MAX_BODY_BYTES: String(MAX_BODY) })
  ;({ brokers, ingress, proc, api } = t)
  base = t.url('http')
  management = t.url('management')
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

const newTenant = (): string => uniqueName('hp')
const keyed = (tenant: string, device: string) => (r: KafkaRecord) => r.key === `${tenant}/${device}`

async function deviceWithPassword(tenant: string, device: string, fields: Record<string, unknown> = {}) {
  await api.createDevice(tenant, device, fields)
  await api.setPassword(tenant, device, PASSWORD)
}

describe('device HTTP adapter (e2e: curl, kcat)', () => {
  it('turns a curl POST with Basic credentials into a telemetry CloudEvent on Kafka, answered 202', async () => {
    const tenant = newTenant()
    await api.createTenant(tenant)
    await deviceWithPassword(tenant, 'boiler-7')
    const payload = JSON.stringify({ id: uniqueName('msg'), celsius: 61.5 })
    const reply = await curl([
      '-u',
      `boiler-7@${tenant}:${PASSWORD}`,
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      payload,
      `${base}/v1/sensors/temperature`,
    ])
    expect(reply).toMatchObject({ status: 202, body: '' })
    const [record] = await waitForRecords(brokers, ingress, keyed(tenant, 'boiler-7'))
    expect(record!.payload).toBe(payload)
    expect(record!.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_type: 'io.tributary.telemetry.v1',
      ce_source: `tributary://${tenant}/boiler-7`,
      ce_subject: 'sensors/temperature',
      ce_tenant: tenant,
      ce_device: 'boiler-7',
      ce_protocol: 'http',
      'content-type': 'application/json',
    })
    expect(record!.headers['ce_id']).toMatch(UUID_V7)
    // Stateless: no connection events, but a last-seen time in the registry.
    await waitUntil(
      async () => (await api.request('GET', `/tenants/${tenant}/devices/boiler-7`)).body.lastSeen !== null,
    )
  })

  it('takes a bearer device token, and a gateway sending ?as= a device that lists it', async () => {
    const tenant = newTenant()
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'gw-1')
    const { secret } = await api.addCredential(tenant, 'gw-1', { type: 'token' })
    await api.createDevice(tenant, 'child-1', { gateways: ['gw-1'] })
    const own = await curl([
      '-H',
      `Authorization: Bearer ${secret!}`,
      '--data-binary',
      'gw-up',
      `${base}/v1/status`,
    ])
    expect(own.status).toBe(202)
    const forChild = await curl([
      '-H',
      `Authorization: Bearer ${secret!}`,
      '-H',
      'Content-Type: text/plain',
      '--data-binary',
      '19.5',
      `${base}/v1/temp?as=child-1`,
    ])
    expect(forChild.status).toBe(202)
    const [child] = await waitForRecords(brokers, ingress, keyed(tenant, 'child-1'))
    expect(child!.headers).toMatchObject({
      ce_device: 'child-1',
      ce_sender: 'gw-1',
      'content-type': 'text/plain',
    })
    const [gateway] = await waitForRecords(brokers, ingress, keyed(tenant, 'gw-1'))
    expect(gateway!.payload).toBe('gw-up')
  })

  it('answers every bad input with its documented status and problem, and nothing reaches Kafka', async () => {
    const tenant = newTenant()
    const other = newTenant()
    await api.createTenant(tenant)
    await api.createTenant(other)
    await deviceWithPassword(tenant, 'd1')
    await deviceWithPassword(tenant, 'off-1')
    await deviceWithPassword(tenant, 'lonely')
    await api.patchDevice(tenant, 'off-1', { enabled: false })
    await api.createDevice(other, 'd1')
    await api.setPassword(other, 'd1', 'the other tenant password')
    const login = ['-u', `d1@${tenant}:${PASSWORD}`]
    const url = (path: string) => `${base}${path}`
    const oversize = Buffer.alloc(MAX_BODY + 1, 0x61)
    const cases: Array<[string, string[], number, Buffer?]> = [
      ['no credentials', ['--data-binary', 'x', url('/v1/a')], 401],
      ['wrong password', ['-u', `d1@${tenant}:wrong`, '--data-binary', 'x', url('/v1/a')], 401],
      [
        "another tenant's credentials",
        ['-u', `d1@${tenant}:the other tenant password`, '--data-binary', 'x', url('/v1/a')],
        401,
      ],
      ['unknown tenant', ['-u', `d1@${newTenant()}:${PASSWORD}`, '--data-binary', 'x', url('/v1/a')], 401],
      ['disabled device', ['-u', `off-1@${tenant}:${PASSWORD}`, '--data-binary', 'x', url('/v1/a')], 403],
      ['gateway not listed', [...login, '--data-binary', 'x', url('/v1/a?as=lonely')], 403],
      [
        'malformed JSON',
        [...login, '-H', 'Content-Type: application/json', '--data-binary', '{"celsius":', url('/v1/a')],
        400,
      ],
      ['bad channel characters', [...login, '--data-binary', 'x', url('/v1/a%20b')], 400],
      ['channel with $', [...login, '--data-binary', 'x', url('/v1/a$b')], 400],
      ['reserved channel', [...login, '--data-binary', 'x', url('/v1/config/x')], 403],
      ['oversize', [...login, '--data-binary', '@-', url('/v1/a')], 413, oversize],
      [
        'oversize, chunked',
        [...login, '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', url('/v1/a')],
        413,
        oversize,
      ],
      ['bad ct', [...login, '--data-binary', 'x', url('/v1/a?ct=forever')], 400],
    ]
    const before = await topicEnd(brokers, ingress)
    for (const [name, args, status, input] of cases) {
      const reply = await curl(args, input)
      expect(reply.status, name).toBe(status)
      expect(reply.headers['content-type'], name).toBe('application/problem+json')
      expect(reply.json, name).toMatchObject({
        status,
        type: expect.stringMatching(/^https:\/\/tributary\.dev\/problems\//) as string,
      })
      if (status === 401) {
        expect(reply.headers['www-authenticate'], name).toBe(
          'Basic realm="tributary", Bearer realm="tributary"',
        )
      }
    }
    expect(await topicEnd(brokers, ingress)).toBe(before)
    // The positive control moves the end by exactly one, so the check above could have failed.
    expect((await curl([...login, '--data-binary', 'ok', url('/v1/a')])).status).toBe(202)
    expect(await topicEnd(brokers, ingress)).toBe(before + 1)
  })

  it("answers 429 with Retry-After past the tenant's message rate", async () => {
    const tenant = newTenant()
    await api.createTenant(tenant, { quotas: { maxMessagesPerSecond: 1 } })
    await deviceWithPassword(tenant, 'chatty')
    const statuses: number[] = []
    let retryAfter: string | undefined
    for (let i = 0; i < 3; i++) {
      const reply = await curl([
        '-u',
        `chatty@${tenant}:${PASSWORD}`,
        '--data-binary',
        String(i),
        `${base}/v1/a`,
      ])
      statuses.push(reply.status)
      retryAfter ??= reply.headers['retry-after']
    }
    expect(statuses).toEqual([202, 202, 429])
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
  })

  it('serves its request metrics on the management listener', async () => {
    const metrics = await (await fetch(`${management}/metrics`)).text()
    expect(metrics).toMatch(/^tributary_http_requests_total\{route="ingest",status="202"\} [1-9]\d*$/m)
    expect(metrics).toMatch(/^tributary_http_requests_total\{route="ingest",status="413"\} [1-9]\d*$/m)
    expect(metrics).toMatch(/^# TYPE tributary_http_request_duration_seconds histogram$/m)
  })
})
