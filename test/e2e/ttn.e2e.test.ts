// The TTN v3 webhook as an operator sets it up and TTN calls it: a running `tributary start` on
// Kafka, the webhook secret issued through the management API, every fixture POSTed with curl the
// way TTN sends it (custom headers, X-Downlink-*), the events read back with kcat, and every bad
// call refused without a record reaching Kafka.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES, TYPES, fixtureFor } from '../adapters/ttn/fixtures.ts'
import type { FixtureName } from '../adapters/ttn/fixtures.ts'
import { curl, topicEnd } from '../helpers/curl.ts'
import type { Api, KafkaRecord } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, waitForRecords } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const API_KEY = 'NNSXS.E2ETESTKEY4TRIBUTARY.K33PTH1SN3V3RL0GG3D'

let brokers = ''
let ingress = ''
let proc: TributaryProcess
let api: Api
let base = ''
let apiBase = ''

beforeAll(async () => {
  // Debug lines include every refusal: the API key must not be in any of them either.
  const t = await startOnKafka('e2e_ttn', { TRIBUTARY_LOG_LEVEL: 'debug' })
  ;({ brokers, ingress, proc, api } = t)
  base = t.url('http')
  apiBase = t.url('api')
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

/** A tenant with TTN settings, its secret issued with curl as the docs show. */
async function ttnTenant(settings: Record<string, unknown>): Promise<{ tenant: string; secret: string }> {
  const tenant = uniqueName('tn')
  await api.createTenant(tenant, { settings: { ttn: settings } })
  const reply = await curl([
    '-X',
    'PUT',
    '-H',
    `Authorization: Bearer ${ADMIN_TOKEN}`,
    '-H',
    'Content-Type: application/json',
    '--data',
    '{}',
    `${apiBase}/api/v1/tenants/${tenant}/ttn-secret`,
  ])
  expect(reply.status).toBe(200)
  return { tenant, secret: reply.json.secret as string }
}

/** POSTs a body as TTN's webhook does: JSON, the two custom headers, and the downlink headers. */
function ttn(tenant: string, secret: string, body: string | object, type = 'application/json') {
  const push = `https://eu1.cloud.thethings.network/api/v3/as/applications/greenhouse-sensors/webhooks/tributary/devices/x/down/push`
  return curl(
    [
      '-H',
      `Content-Type: ${type}`,
      '-H',
      'User-Agent: TheThingsStack/3.33 (linux/amd64)',
      '-H',
      `X-Tributary-Tenant: ${tenant}`,
      '-H',
      `X-Tributary-Webhook-Secret: ${secret}`,
      '-H',
      `X-Downlink-Apikey: ${API_KEY}`,
      '-H',
      `X-Downlink-Push: ${push}`,
      '-H',
      `X-Downlink-Replace: ${push.replace(/push$/, 'replace')}`,
      '--data-binary',
      '@-',
      `${base}/ttn/v3`,
    ],
    Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  )
}

const keyed = (tenant: string, device: string) => (r: KafkaRecord) => r.key === `${tenant}/${device}`

describe('TTN v3 webhook (e2e: curl, kcat)', () => {
  it('takes every TTN message kind from the fixtures and writes each as its event type on Kafka', async () => {
    const { tenant, secret } = await ttnTenant({ autoRegister: true, payload: 'raw' })
    const device = 'eui-70b3d57ed005a1b2'
    for (const name of FIXTURES) {
      const reply = await ttn(tenant, secret, fixtureFor(name, device))
      expect(reply.status, `${name}: ${reply.body}`).toBe(202)
    }
    const records = await waitForRecords(brokers, ingress, keyed(tenant, device), { count: FIXTURES.length })
    expect(records.map((r) => r.headers['ce_type'])).toEqual(FIXTURES.map((f: FixtureName) => TYPES[f]))
    const uplink = records[0]!
    expect(uplink.headers).toMatchObject({
      ce_protocol: 'ttn',
      ce_subject: 'lorawan/2',
      ce_deveui: '70B3D57ED005A1B2',
      ce_devaddr: '260B4C1F',
      ce_fport: '2',
      ce_fcnt: '1843',
      ce_rssi: '-97',
      ce_snr: '6.25',
      ce_gateway: 'greenhouse-gw-1',
      ce_gateways: '2',
      ce_datarate: 'SF9BW125',
      ce_frequency: '867300000',
      'content-type': 'application/octet-stream',
    })
    // kcat prints the raw frm_payload bytes 00 e7 01 87 02 as they are.
    expect(Buffer.from(uplink.payload ?? '', 'latin1').length).toBeGreaterThan(0)
    const empty = records[1]!
    expect(empty.headers).toMatchObject({ ce_subject: 'lorawan/0', ce_fport: '0', ce_fcnt: '0' })
    const failed = records.find((r) => r.headers['ce_type'] === TYPES['downlink-failed'])!
    expect(JSON.parse(failed.payload ?? '{}')).toMatchObject({
      error: { name: 'application_downlink_too_long' },
    })
    // The device was registered with its TTN labels.
    const registered = await api.request('GET', `/tenants/${tenant}/devices/${device}`)
    expect(registered.body.labels).toEqual({
      'ttn/application': 'greenhouse-sensors',
      'ttn/dev-eui': '70B3D57ED005A1B2',
    })
  })

  it('delivers the decoded payload as JSON for a tenant set to decoded', async () => {
    const { tenant, secret } = await ttnTenant({
      autoRegister: true,
      payload: 'decoded',
      fPortChannels: { '2': 'greenhouse/climate' },
    })
    expect((await ttn(tenant, secret, fixtureFor('uplink', 'node-9'))).status).toBe(202)
    const [record] = await waitForRecords(brokers, ingress, keyed(tenant, 'node-9'))
    expect(record!.headers).toMatchObject({
      ce_subject: 'greenhouse/climate',
      'content-type': 'application/json',
    })
    expect(JSON.parse(record!.payload ?? '')).toEqual({ temperature: 23.1, humidity: 39.1, battery: 2 })
  })

  it('refuses a wrong secret, bad TTN bodies and unknown devices with their statuses, and nothing reaches Kafka', async () => {
    const { tenant, secret } = await ttnTenant({ autoRegister: false })
    const other = await ttnTenant({ autoRegister: true })
    await api.createDevice(tenant, 'known-1')
    const good = fixtureFor('uplink', 'known-1')
    const badPort = fixtureFor('uplink', 'known-1')
    badPort['uplink_message'].f_port = 999
    const fixturePath = fileURLToPath(new URL('../fixtures/ttn-v3.uplink.json', import.meta.url))
    const cases: Array<[string, () => ReturnType<typeof curl>, number]> = [
      ['wrong secret', () => ttn(tenant, 'tws_not-the-secret', good), 401],
      ["another tenant's secret", () => ttn(tenant, other.secret, good), 401],
      ['unknown tenant', () => ttn(uniqueName('nobody'), secret, good), 401],
      [
        'no secret header',
        () =>
          curl([
            '-H',
            'Content-Type: application/json',
            '-H',
            `X-Tributary-Tenant: ${tenant}`,
            '--data-binary',
            `@${fixturePath}`,
            `${base}/ttn/v3`,
          ]),
        401,
      ],
      ['malformed JSON', () => ttn(tenant, secret, '{"uplink_message": {'), 400],
      [
        'not a TTN message',
        () => ttn(tenant, secret, { end_device_ids: good['end_device_ids'], service_data: {} }),
        400,
      ],
      ['f_port out of range', () => ttn(tenant, secret, badPort), 400],
      ['not JSON', () => ttn(tenant, secret, 'a=b', 'text/plain'), 415],
      [
        'unknown device, auto-registration off',
        () => ttn(tenant, secret, fixtureFor('uplink', 'stranger-1')),
        403,
      ],
    ]
    const before = await topicEnd(brokers, ingress)
    for (const [name, send, status] of cases) {
      const reply = await send()
      expect(reply.status, `${name}: ${reply.body}`).toBe(status)
      expect(reply.headers['content-type'], name).toBe('application/problem+json')
      expect(reply.json?.status, name).toBe(status)
    }
    expect(await topicEnd(brokers, ingress)).toBe(before)
    expect((await api.request('GET', `/tenants/${tenant}/devices/stranger-1`)).status).toBe(404)
    // The positive control: the same uplink with the right secret moves the end by exactly one.
    expect((await ttn(tenant, secret, good)).status).toBe(202)
    expect(await topicEnd(brokers, ingress)).toBe(before + 1)
  })

  it('never writes the downlink API key or the webhook secret to its logs', () => {
    const everything = JSON.stringify(proc.lines) + proc.stderr.join('\n')
    expect(proc.lines.length).toBeGreaterThan(10)
    expect(everything).not.toContain(API_KEY)
    expect(everything).not.toContain('tws_')
  })
})
