// Two tributary processes sharing Kafka, PostgreSQL and Redis, as a scaled-out deployment runs:
// a change made through one process's API ends the device's live MQTT session on the other within
// a second, a second connection of a device on the other process takes its session over, and a
// tenant's connection limit counts both processes.
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  connectionData,
  isConnection,
  metricValue,
  mosquitto,
  startMqttTributary,
  waitForRecords,
  within,
} from '../helpers/mqtt.ts'
import type { MqttTributary } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PASSWORD = 'correct horse battery'
const REVOCATION_BOUND_MS = 1_000
// Per tenant across both processes; no other test here holds more than two at once.
const MAX_CONNECTIONS = 2

let brokers = ''
let ingress = ''
let schema = ''
let a: MqttTributary
let b: MqttTributary
const clients: MqttClient[] = []

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  brokers = kafkaBrokers()
  const prefix = uniqueName('e2e_mqttc').replaceAll('-', '_')
  ingress = `${prefix}.ingress`
  schema = uniqueName('mqttc').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  const env = {
    TRIBUTARY_KAFKA_BROKERS: brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    TRIBUTARY_REDIS_URL: inject('redisUrl'),
    TRIBUTARY_MQTT_MAX_CONNECTIONS_PER_TENANT: String(MAX_CONNECTIONS),
  }
  // One after the other: the second finds the topics and the schema the first created.
  a = await startMqttTributary(env)
  b = await startMqttTributary(env)
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
})

afterAll(async () => {
  const codes = await Promise.all([a?.proc.stop('SIGTERM'), b?.proc.stop('SIGTERM')])
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  expect(codes).toEqual([0, 0])
})

/** An MQTT.js session over TCP that does not reconnect by itself, so a close stays a close. */
async function session(on: MqttTributary, device: string, tenant: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${on.ports.mqtt}`, {
    username: `${device}@${tenant}`,
    password: PASSWORD,
    protocolVersion: 4,
    reconnectPeriod: 0,
  })
  clients.push(client)
  return client
}

const localAddress = (client: MqttClient): string => `127.0.0.1:${(client.stream as Socket).localPort}`

/** Resolves when the client's connection closes. */
const closeOf = (client: MqttClient): Promise<void> =>
  new Promise((resolve) => client.once('close', () => resolve()))

async function tenantWithDevices(...devices: string[]): Promise<{ tenant: string; credentials: string[] }> {
  const tenant = uniqueName('mqc')
  await b.api.createTenant(tenant)
  const credentials: string[] = []
  for (const device of devices) {
    await b.api.createDevice(tenant, device)
    credentials.push((await b.api.setPassword(tenant, device, PASSWORD)).id)
  }
  return { tenant, credentials }
}

describe('MQTT across two processes (e2e: MQTT.js, mosquitto_pub, kcat; Kafka, PostgreSQL, Redis)', () => {
  it("closes a device's session on process A within a second of its credential being deleted through B's API", async () => {
    const { tenant, credentials } = await tenantWithDevices('rev-1')
    const client = await session(a, 'rev-1', tenant)
    const remote = localAddress(client)
    const closed = closeOf(client)

    await b.api.deleteCredential(tenant, 'rev-1', credentials[0]!)
    await within(closed, REVOCATION_BOUND_MS, 'credential deleted on B')

    const [event] = await waitForRecords(
      brokers,
      ingress,
      (r) => isConnection(r) && r.key === `${tenant}/rev-1` && connectionData(r).status === 'disconnected',
    )
    expect(connectionData(event!)).toMatchObject({ status: 'disconnected', reason: 'revoked', remote })
    // The old password no longer opens a session on A.
    const again = await mosquitto('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', String(a.ports.mqtt), '-u', `rev-1@${tenant}`, '-P', PASSWORD],
      ...['-q', '1', '-t', 'x', '-m', 'after revocation'],
    ])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/Connection Refused: (not authorised|bad user name or password)/)
  })

  it("closes sessions on A within a second when B disables the device, then the device's tenant", async () => {
    const { tenant } = await tenantWithDevices('dis-1', 'dis-2')
    const first = await session(a, 'dis-1', tenant)
    const second = await session(a, 'dis-2', tenant)

    const firstClosed = closeOf(first)
    await b.api.patchDevice(tenant, 'dis-1', { enabled: false })
    await within(firstClosed, REVOCATION_BOUND_MS, 'device disabled on B')
    expect(second.connected).toBe(true)

    const secondClosed = closeOf(second)
    await b.api.patchTenant(tenant, { enabled: false })
    await within(secondClosed, REVOCATION_BOUND_MS, 'tenant disabled on B')
  })

  it('hands the session of a device that connects to B over from A: A closes it with reason takeover', async () => {
    for (const process of [a, b]) {
      const started = process.proc.lines.find((l) => l.msg === 'tributary started')
      expect(started).toMatchObject({ bus: 'kafka', registry: 'postgres' })
    }
    const { tenant } = await tenantWithDevices('tk-1')
    const onA = await session(a, 'tk-1', tenant)
    const aRemote = localAddress(onA)
    const aClosed = closeOf(onA)

    const onB = await session(b, 'tk-1', tenant)
    await within(aClosed, 5_000, 'takeover from B')
    expect(onB.connected).toBe(true)
    const ack = await onB.publishAsync('after/takeover', 'still here', { qos: 1 })
    expect(ack).toMatchObject({ topic: 'after/takeover' })

    const [event] = await waitForRecords(
      brokers,
      ingress,
      (r) => isConnection(r) && r.key === `${tenant}/tk-1` && connectionData(r).status === 'disconnected',
    )
    expect(connectionData(event!)).toMatchObject({
      status: 'disconnected',
      reason: 'takeover',
      remote: aRemote,
    })
  })

  it('takes a session over within one process too', async () => {
    const { tenant } = await tenantWithDevices('tk-2')
    const older = await session(a, 'tk-2', tenant)
    const [olderRemote, olderClosed] = [localAddress(older), closeOf(older)]
    const newer = await session(a, 'tk-2', tenant)
    await within(olderClosed, 5_000, 'takeover on the same process')
    expect(newer.connected).toBe(true)
    expect(await newer.publishAsync('same/process', 'ok', { qos: 1 })).toMatchObject({
      topic: 'same/process',
    })
    // On one process the old session's end is written before the new one's start.
    const records = await waitForRecords(brokers, ingress, (r) => r.key === `${tenant}/tk-2`, { count: 4 })
    expect(
      records.map((r) =>
        isConnection(r) ? [connectionData(r).status, connectionData(r).reason] : ['telemetry'],
      ),
    ).toEqual([
      ['connected', undefined],
      ['disconnected', 'takeover'],
      ['connected', undefined],
      ['telemetry'],
    ])
    expect(connectionData(records[1]!).remote).toBe(olderRemote)
  })

  it("closes sessions on A within a second when B changes the device's password or the tenant's policy", async () => {
    const { tenant } = await tenantWithDevices('pw-1', 'pol-1')
    const first = await session(a, 'pw-1', tenant)
    const second = await session(a, 'pol-1', tenant)

    const firstClosed = closeOf(first)
    await b.api.setPassword(tenant, 'pw-1', 'a brand new password')
    await within(firstClosed, REVOCATION_BOUND_MS, 'password changed on B')
    expect(second.connected).toBe(true)

    const secondClosed = closeOf(second)
    await b.api.patchTenant(tenant, { authMethods: ['x509', 'psk'] })
    await within(secondClosed, REVOCATION_BOUND_MS, 'tenant policy changed on B')
  })

  it("counts a tenant's connections across both processes: one past the limit is refused until one closes", async () => {
    const { tenant } = await tenantWithDevices('c-1', 'c-2', 'c-3')
    const first = await session(a, 'c-1', tenant)
    await session(b, 'c-2', tenant)
    const third = (on: MqttTributary) =>
      mosquitto('mosquitto_pub', [
        ...['-h', '127.0.0.1', '-p', String(on.ports.mqtt), '-u', `c-3@${tenant}`, '-P', PASSWORD],
        ...['-q', '1', '-t', 'third', '-m', 'x'],
      ])
    const counted = () =>
      Promise.all(
        [a, b].map((on) =>
          metricValue(on.ports.management, 'tributary_mqtt_refusals_total', { reason: 'connection-limit' }),
        ),
      )
    const before = await counted()

    for (const on of [a, b]) {
      const refused = await third(on)
      expect(refused.code).not.toBe(0)
      expect(refused.stderr).toContain('Connection Refused: not authorised.')
    }
    expect((await counted()).map((n, i) => n - before[i]!)).toEqual([1, 1])

    await first.endAsync()
    // The slot comes free once A has handled the close.
    await waitUntil(async () => (await third(b)).code === 0, { timeoutMs: 5_000, intervalMs: 100 })
  })
})
