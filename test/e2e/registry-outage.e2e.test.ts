// The registry database taken away from a running `tributary start` (PostgreSQL registry, embedded
// bus), in the two ways it goes away in production: the database refuses connections (ALLOW_CONNECTIONS
// false, SQLSTATE 55000, the way a maintenance window or a failover looks) and the server cannot be
// reached at all (a test-owned TCP proxy in front of it resets and refuses connections). Devices whose
// credentials are not cached, and API callers, are told to come back later on every protocol:
// curl gets 503 with Retry-After, coap-client 5.03 with Max-Age, mosquitto_pub CONNACK 3 (broker
// unavailable), the management API 503 with Retry-After; /readyz names the registry. When the
// database returns, the same requests succeed without a restart.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { coapBasic, coapClient } from '../helpers/coap.ts'
import { curl } from '../helpers/curl.ts'
import { ADMIN_TOKEN, createApi, mosquitto } from '../helpers/mqtt.ts'
import type { Api } from '../helpers/mqtt.ts'
import type { TestDatabase } from '../helpers/postgres-database.ts'
import { createTestDatabase } from '../helpers/postgres-database.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import type { TcpProxy } from '../helpers/tcp-proxy.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'

let database: TestDatabase
let proxy: TcpProxy
let proc: TributaryProcess
let api: Api
let ports: Record<string, number>
const tenant = uniqueName('ro')

const url = (listener: string, path: string): string => `http://127.0.0.1:${ports[listener]}${path}`

beforeAll(async () => {
  database = await createTestDatabase(inject('databaseUrl'), 'tributary_outage')
  const server = new URL(database.url)
  proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) })
  const through = new URL(database.url)
  through.host = `${proxy.host}:${proxy.port}`
  proc = startProcess(['start'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_DATABASE_URL: through.toString(),
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
  })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  ports = started['ports'] as Record<string, number>
  api = createApi(url('api', ''))
  await api.createTenant(tenant)
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  await proxy?.close()
  await database?.drop()
  expect(code).toBe(0)
})

/** Devices that exist with a password nobody has used yet: their credentials are not cached. */
async function freshDevices(label: string): Promise<Record<'http' | 'coap' | 'mqtt', string>> {
  const devices = { http: `${label}-http`, coap: `${label}-coap`, mqtt: `${label}-mqtt` }
  for (const device of Object.values(devices)) {
    await api.createDevice(tenant, device)
    await api.setPassword(tenant, device, PASSWORD)
  }
  return devices
}

const httpPost = (device: string) =>
  curl([
    '-u',
    `${device}@${tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    '{"celsius":21}',
    url('http', '/v1/sensors/temperature'),
  ])

const coapPost = (device: string) =>
  coapClient(
    ports['coap']!,
    ['-m', 'post', ...coapBasic(device, tenant, PASSWORD), '-t', '50', '-e', '{"celsius":21}'],
    '/v1/sensors/temperature',
  )

const mqttPublish = (device: string) =>
  mosquitto('mosquitto_pub', [
    ...['-h', '127.0.0.1', '-p', String(ports['mqtt']), '-V', 'mqttv311'],
    ...['-u', `${device}@${tenant}`, '-P', PASSWORD, '-q', '1', '-t', 'sensors/temperature'],
    ...['-m', '{"celsius":21}'],
  ])

const apiGet = () =>
  curl(['-H', `Authorization: Bearer ${ADMIN_TOKEN}`, url('api', `/api/v1/tenants/${tenant}/devices`)])

const outages: Array<[string, () => Promise<void>, () => Promise<void>]> = [
  [
    'refuses connections (ALLOW_CONNECTIONS false: SQLSTATE 55000)',
    () => database.takeAway(),
    () => database.giveBack(),
  ],
  ['cannot be reached (connections reset, then refused)', () => proxy.cut(), () => proxy.restore()],
]

describe.each(outages)(
  'registry database that %s (e2e: curl, coap-client, mosquitto_pub)',
  (_, away, back) => {
    let devices: Record<'http' | 'coap' | 'mqtt', string>

    beforeAll(async () => {
      devices = await freshDevices(uniqueName('d'))
      await away()
    })

    it('answers an HTTP device 503 with Retry-After and a problem naming the registry, not 500', async () => {
      const reply = await httpPost(devices.http)
      expect(reply.status).toBe(503)
      expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      expect(reply.headers['content-type']).toBe('application/problem+json')
      expect(reply.json).toMatchObject({ status: 503, code: 'REGISTRY_UNAVAILABLE' })
    })

    it('answers a CoAP device 5.03 with Max-Age', async () => {
      const reply = await coapPost(devices.coap)
      expect(reply.code).toBe('5.03')
      expect(reply.maxAge).toBeGreaterThanOrEqual(1)
    })

    it('refuses an MQTT device with CONNACK 3 (server unavailable)', async () => {
      const reply = await mqttPublish(devices.mqtt)
      expect(reply.code).not.toBe(0)
      expect(reply.stderr).toContain('Connection Refused: broker unavailable')
    })

    it('answers the management API 503 with Retry-After and code REGISTRY_UNAVAILABLE', async () => {
      const reply = await apiGet()
      expect(reply.status).toBe(503)
      expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      expect(reply.json).toMatchObject({ status: 503, code: 'REGISTRY_UNAVAILABLE' })
    })

    it('is not ready, naming the registry, and serves every protocol again once the database returns', async () => {
      const ready = await curl([url('management', '/readyz')])
      expect(ready.status).toBe(503)
      expect(ready.body).toMatch(/registry/)

      await back()
      await waitUntil(async () => (await curl([url('management', '/readyz')])).status === 200, {
        timeoutMs: 30_000,
        intervalMs: 250,
      })
      expect((await httpPost(devices.http)).status).toBe(202)
      expect((await coapPost(devices.coap)).code).toBe('2.04')
      expect(await mqttPublish(devices.mqtt)).toMatchObject({ code: 0 })
      expect((await apiGet()).status).toBe(200)
    })
  },
)
