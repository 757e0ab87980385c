// A Kafka outage under a running `tributary start`: the test owns a broker behind a TCP proxy that
// the broker advertises, and cuts it (connections reset, new ones refused) while devices keep
// talking. The first publish finds the bus away; from then on every device is refused at once —
// curl gets 503 with Retry-After, coap-client 5.03 with Max-Age, a new MQTT.js connection CONNACK
// 3 — each well before the client-side bound the test sets, which is shorter than the bus client's
// own retries. A QoS 1 message in flight on a live MQTT session is not acknowledged (3.1.1 has no
// negative PUBACK: the connection is closed) and MQTT.js, told to reconnect after a CONNACK refusal,
// sends it again once the broker is back, which the process finds out by itself (a background
// probe), not from a device. kcat then finds every acknowledged message on Kafka.
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coapBasic, coapClient } from '../helpers/coap.ts'
import { curl } from '../helpers/curl.ts'
import type { KafkaBehindProxy } from '../helpers/kafka-outage.ts'
import { startKafkaBehindProxy } from '../helpers/kafka-outage.ts'
import { ADMIN_TOKEN, createApi, metricValue, waitForRecords, within } from '../helpers/mqtt.ts'
import type { KafkaRecord } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { deferred, uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
/**
 * What each refusal must beat. Each publish waited about 3.3 s for its 503 (the Kafka client's own
 * retries) and an MQTT CONNECT about 5 s for its CONNACK 3; a refusal at once takes milliseconds.
 */
const CLIENT_BOUND_S = 2

let kafka: KafkaBehindProxy
let proc: TributaryProcess
let ports: Record<string, number>
let prefix = ''
const tenant = uniqueName('bo')
const clients: MqttClient[] = []

const url = (listener: string, path: string): string => `http://127.0.0.1:${ports[listener]}${path}`

beforeAll(async () => {
  kafka = await startKafkaBehindProxy()
  prefix = uniqueName('e2e_bus').replaceAll('-', '_')
  proc = startProcess(['start'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_KAFKA_BROKERS: kafka.brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_TOPIC_PARTITIONS: '1',
  })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  ports = started['ports'] as Record<string, number>
  const api = createApi(url('api', ''))
  await api.createTenant(tenant)
  for (const device of ['http-dev', 'coap-dev', 'mqtt-new', 'mqtt-steady']) {
    await api.createDevice(tenant, device)
    await api.setPassword(tenant, device, PASSWORD)
  }
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)))
  await kafka?.proxy.restore()
  const code = await proc?.stop('SIGTERM')
  await kafka?.stop()
  expect(code).toBe(0)
})

const httpPost = (body: string, maxTimeS?: number) =>
  curl([
    ...(maxTimeS === undefined ? [] : ['--max-time', String(maxTimeS)]),
    '-u',
    `http-dev@${tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    body,
    url('http', '/v1/sensors/temperature'),
  ])

/** An MQTT.js 3.1.1 session; `connack` settles with the first CONNACK's return code (0: accepted). */
function mqttSession(device: string, options: mqtt.IClientOptions) {
  const connack = deferred<number>()
  const client = mqtt.connect(`mqtt://127.0.0.1:${ports['mqtt']}`, {
    username: `${device}@${tenant}`,
    password: PASSWORD,
    protocolVersion: 4,
    ...options,
  })
  clients.push(client)
  client.once('connect', () => connack.resolve(0))
  client.on('error', (err: Error & { code?: unknown }) => {
    if (typeof err.code === 'number') connack.resolve(err.code)
    else connack.reject(err)
  })
  return { client, connack: connack.promise }
}

const mine = (device: string, marker: string) => (r: KafkaRecord) =>
  r.key === `${tenant}/${device}` &&
  r.headers['ce_type'] === 'io.tributary.telemetry.v1' &&
  r.payload === marker

describe('a Kafka outage (e2e: curl, coap-client, MQTT.js, kcat)', () => {
  it('refuses devices at once while the broker is away, and takes them again once it is back', async () => {
    // A live session that rides the outage out, reconnecting after CONNACK refusals too.
    const steady = mqttSession('mqtt-steady', { reconnectPeriod: 250, reconnectOnConnackError: true })
    expect(await within(steady.connack, 15_000, 'steady session')).toBe(0)
    await steady.client.publishAsync('sensors/t', '{"n":"before"}', { qos: 1 })
    expect((await httpPost('{"n":"before"}')).status).toBe(202)

    await kafka.proxy.cut()

    // The first publish finds out that the bus is away.
    const first = await httpPost('{"n":"finds-out"}')
    expect(first.status).toBe(503)
    expect(first.json).toMatchObject({ code: 'BUS_UNAVAILABLE' })

    // From now on every device is refused at once: each answer beats a bound shorter than the
    // Kafka client's own retries.
    for (let i = 0; i < 3; i++) {
      const refused = await httpPost(`{"n":"refused-${i}"}`, CLIENT_BOUND_S)
      expect(refused.status).toBe(503)
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      expect(refused.json).toMatchObject({ status: 503, code: 'BUS_UNAVAILABLE' })
    }
    const coap = await coapClient(
      ports['coap']!,
      [
        '-B',
        String(CLIENT_BOUND_S),
        '-m',
        'post',
        ...coapBasic('coap-dev', tenant, PASSWORD),
        '-e',
        '{"n":1}',
      ],
      '/v1/sensors/temperature',
    )
    expect(coap.code).toBe('5.03')
    expect(coap.maxAge).toBeGreaterThanOrEqual(1)
    const fresh = mqttSession('mqtt-new', { reconnectPeriod: 0, connectTimeout: CLIENT_BOUND_S * 1000 })
    expect(await within(fresh.connack, 10_000, 'CONNACK of a new session')).toBe(3)
    const ready = await curl([url('management', '/readyz')])
    expect(ready.status).toBe(503)
    expect(ready.body).toMatch(/bus: publishes refused since /)

    // QoS 1 in flight on the live session: no PUBACK (3.1.1 has none to refuse with), the
    // connection is closed, and MQTT.js keeps the message to send again.
    const closed = new Promise<void>((resolve) => steady.client.once('close', () => resolve()))
    const during = steady.client.publishAsync('sensors/t', '{"n":"during"}', { qos: 1 })
    await within(closed, 10_000, 'the live session closed instead of a PUBACK')

    await kafka.proxy.restore()
    // The process finds the broker back by itself: no device publish and no /readyz is needed.
    await waitUntil(async () => (await metricValue(ports['management']!, 'tributary_bus_available')) === 1, {
      timeoutMs: 30_000,
      intervalMs: 250,
    })
    expect(
      await metricValue(ports['management']!, 'tributary_bus_probes_total', { result: 'ok' }),
    ).toBeGreaterThanOrEqual(1)
    expect(await metricValue(ports['management']!, 'tributary_bus_publishes_refused_total')).toBeGreaterThan(
      0,
    )
    await within(during, 30_000, 'PUBACK of the message sent during the outage, after the reconnect')
    expect((await httpPost('{"n":"after"}', CLIENT_BOUND_S * 5)).status).toBe(202)

    // Every acknowledged message is on Kafka, as a data engineer reads it.
    const ingress = `${prefix}.ingress`
    for (const marker of ['{"n":"before"}', '{"n":"during"}']) {
      await waitForRecords(kafka.brokers, ingress, mine('mqtt-steady', marker))
    }
    for (const marker of ['{"n":"before"}', '{"n":"after"}']) {
      await waitForRecords(kafka.brokers, ingress, mine('http-dev', marker))
    }
  })
})
