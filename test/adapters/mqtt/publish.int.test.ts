// Telemetry through the MQTT adapter with MQTT.js over TCP: what a PUBLISH becomes on the ingress
// topic, what is refused (reserved topics, retained, oversized, other devices' data, too fast) and
// how each refusal shows (connection closed before a PUBACK, SUBACK 0x80), counted and logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitUntil } from '../../helpers/wait.ts'
import type { Backend, Instance } from './harness.ts'
import {
  closed,
  connect,
  connectionData,
  deviceWithPassword,
  isConnection,
  isTelemetry,
  login,
  newTenant,
  ofDevice,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

const MAX_PAYLOAD = 4096
let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend, { config: { maxPayloadBytes: MAX_PAYLOAD } })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

/** A fresh tenant with a device `dev` that has the test password. */
async function tenantWithDevice(device = 'dev'): Promise<string> {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, { enabled: true })
  await deviceWithPassword(backend, tenant, device)
  return tenant
}

describe('MQTT publish → ingress', () => {
  it('turns QoS 0 and QoS 1 publishes into telemetry CloudEvents between connected and disconnected events', async () => {
    const tenant = await tenantWithDevice('sensor-1')
    const client = await connect(tcpUrl(instance), { ...login('sensor-1', tenant), clientId: 'my-client' })
    await client.publishAsync('sensors/temperature', '{"celsius":21.5}', { qos: 1 })
    await client.publishAsync('sensors/humidity', Buffer.from([0, 1, 2, 255]), { qos: 0 })
    await client.endAsync()

    const events = await backend.waitFor(ofDevice(tenant, 'sensor-1'), 4)
    expect(events.map((r) => r.event.attributes.type)).toEqual([
      'io.tributary.connection.v1',
      'io.tributary.telemetry.v1',
      'io.tributary.telemetry.v1',
      'io.tributary.connection.v1',
    ])
    const [connected, temperature, humidity, disconnected] = events
    expect(temperature!.event.attributes).toMatchObject({
      specversion: '1.0',
      source: `tributary://${tenant}/sensor-1`,
      subject: 'sensors/temperature',
      tenant,
      device: 'sensor-1',
      protocol: 'mqtt',
      partitionkey: `${tenant}/sensor-1`,
    })
    expect(temperature!.event.attributes.sender).toBeUndefined()
    expect(temperature!.event.attributes.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(temperature!.key).toBe(`${tenant}/sensor-1`)
    expect(temperature!.data).toBe('{"celsius":21.5}')
    expect(humidity!.event.data).toEqual(Buffer.from([0, 1, 2, 255]))
    expect(connectionData(connected!)).toMatchObject({ status: 'connected', listener: 'mqtt' })
    expect(connectionData(connected!).remote).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(connectionData(disconnected!)).toMatchObject({
      status: 'disconnected',
      listener: 'mqtt',
      reason: 'client-disconnect',
    })
    expect(await instance.metric('tributary_mqtt_messages_in_total', { tenant })).toBe(2)
    expect(await instance.metric('tributary_mqtt_bytes_in_total', { tenant })).toBe(16 + 4)
    expect(await instance.metric('tributary_mqtt_connections', { tenant, listener: 'mqtt' })).toBe(0)
    const lastSeen = (await backend.registry.getDevice(tenant, 'sensor-1')).lastSeen
    expect(lastSeen).not.toBeNull()
  })

  it('acknowledges QoS 1 only once the event is on the bus', async () => {
    const tenant = await tenantWithDevice()
    const client = await connect(tcpUrl(instance), login('dev', tenant))
    const before = backend.received.length
    await client.publishAsync('acked', 'now', { qos: 1 })
    // The PUBACK came back: the event is already durable and was delivered to the tap's group.
    await backend.waitFor((r) => r.data === 'now' && r.event.attributes.tenant === tenant)
    expect(backend.received.length).toBeGreaterThan(before)
    await client.endAsync()
    const histogram = (await instance.metrics.getSingleMetric('tributary_mqtt_ack_duration_seconds')!.get())
      .values
    expect(
      histogram.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count'))?.value,
    ).toBeGreaterThan(0)
  })

  it('takes QoS 2 with a PUBREC after the bus made it durable, once per message', async () => {
    const tenant = await tenantWithDevice()
    const client = await connect(tcpUrl(instance), login('dev', tenant))
    await client.publishAsync('exactly', 'once', { qos: 2 })
    await client.publishAsync('exactly', 'twice', { qos: 2 })
    await client.endAsync()
    const telemetry = await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && isTelemetry(r), 2)
    expect(telemetry.map((r) => r.data)).toEqual(['once', 'twice'])
  })

  it('lets a gateway publish for a device that lists it, with sender set, and closes it for one that does not', async () => {
    const tenant = await tenantWithDevice('gw-1')
    await backend.registry.createDevice(tenant, 'child', { enabled: true, gateways: ['gw-1'] })
    await backend.registry.createDevice(tenant, 'orphan', { enabled: true })
    const client = await connect(tcpUrl(instance), login('gw-1', tenant))
    await client.publishAsync('gw/child/temp', '7', { qos: 1 })
    const [event] = await backend.waitFor((r) => ofDevice(tenant, 'child')(r) && isTelemetry(r))
    expect(event!.event.attributes).toMatchObject({ device: 'child', sender: 'gw-1', subject: 'temp' })
    expect(event!.key).toBe(`${tenant}/child`)

    const gone = closed(client)
    void client.publishAsync('gw/orphan/temp', 'no', { qos: 1 }).catch(() => undefined)
    await gone
    await client.endAsync(true)
    const [, disconnected] = await backend.waitFor((r) => ofDevice(tenant, 'gw-1')(r) && isConnection(r), 2)
    expect(connectionData(disconnected!)).toMatchObject({
      status: 'disconnected',
      reason: 'gateway-not-allowed',
    })
    expect(backend.received.some((r) => r.data === 'no')).toBe(false)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'gateway-not-allowed' })).toBe(1)
  })

  it.each([
    ['command/x', 'reserved-topic', 1],
    ['config', 'reserved-topic', 0],
    ['files/a/b', 'reserved-topic', 1],
    ['gw', 'reserved-topic', 1],
    ['a/b/c/d/e/f/g/h/i', 'invalid-topic', 1],
    ['bad topic', 'invalid-topic', 0],
    ['$SYS/x', 'invalid-topic', 1],
  ] as const)(
    'closes the connection on a publish to %s (%s, QoS %i), with nothing on the bus',
    async (topic, reason, qos) => {
      const tenant = await tenantWithDevice()
      const client = await connect(tcpUrl(instance), login('dev', tenant))
      const before = await instance.metric('tributary_mqtt_refusals_total', { reason })
      const gone = closed(client)
      void client.publishAsync(topic, 'refused', { qos }).catch(() => undefined)
      await gone
      await client.endAsync(true)
      const events = await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && isConnection(r), 2)
      expect(connectionData(events[1]!).reason).toBe(reason)
      expect(events.some(isTelemetry)).toBe(false)
      expect(await instance.metric('tributary_mqtt_refusals_total', { reason })).toBe(before + 1)
      const line = instance.logs.find((l) => l['msg'] === 'MQTT message refused' && l['tenant'] === tenant)
      expect(line).toMatchObject({ reason, device: 'dev', listener: 'mqtt' })
    },
  )

  it('refuses retained messages by closing the connection', async () => {
    const tenant = await tenantWithDevice()
    const client = await connect(tcpUrl(instance), login('dev', tenant))
    const gone = closed(client)
    void client.publishAsync('state', 'on', { qos: 1, retain: true }).catch(() => undefined)
    await gone
    await client.endAsync(true)
    const events = await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && isConnection(r), 2)
    expect(connectionData(events[1]!).reason).toBe('retained')
    expect(events.some(isTelemetry)).toBe(false)
  })

  it('takes a payload of exactly the limit and refuses one byte more; far larger packets are cut off unread', async () => {
    const tenant = await tenantWithDevice()
    const client = await connect(tcpUrl(instance), login('dev', tenant))
    await client.publishAsync('fits', 'x'.repeat(MAX_PAYLOAD), { qos: 1 })
    await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && r.event.attributes.subject === 'fits')
    let gone = closed(client)
    void client.publishAsync('big', 'x'.repeat(MAX_PAYLOAD + 1), { qos: 1 }).catch(() => undefined)
    await gone
    await client.endAsync(true)

    const again = await connect(tcpUrl(instance), login('dev', tenant))
    gone = closed(again)
    void again.publishAsync('huge', Buffer.alloc(4 * 1024 * 1024), { qos: 0 }).catch(() => undefined)
    await gone
    await again.endAsync(true)
    const connections = await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && isConnection(r), 4)
    expect(connections.map((r) => connectionData(r).reason).filter((r) => r !== undefined)).toEqual([
      'payload-too-large',
      'packet-too-large',
    ])
    expect(
      backend.received
        .filter((r) => ofDevice(tenant, 'dev')(r) && isTelemetry(r))
        .map((r) => r.event.attributes.subject),
    ).toEqual(['fits'])
  })

  it('refuses every subscription but commands with SUBACK 0x80 and keeps the connection', async () => {
    const tenant = await tenantWithDevice()
    const client = await connect(tcpUrl(instance), login('dev', tenant))
    // MQTT.js turns a SUBACK that grants nothing into an error carrying the packet (commands:
    // commands.int.test.ts).
    const refused = (await client
      .subscribeAsync({ '#': { qos: 1 }, 'other/#': { qos: 0 }, 'gw/other/x': { qos: 0 } })
      .then(
        () => undefined,
        (err: { packet?: { granted?: number[] } }) => err,
      )) as { packet?: { granted?: number[] } } | undefined
    expect(refused?.packet?.granted).toEqual([128, 128, 128])
    await client.publishAsync('still/here', 'yes', { qos: 1 })
    await client.endAsync()
    expect(
      await instance.metric('tributary_mqtt_refusals_total', { reason: 'subscribe-refused' }),
    ).toBeGreaterThanOrEqual(3)
  })
})

describe('MQTT publish rate', () => {
  it("drops QoS 0 beyond the tenant's rate (burst twice the rate) and closes a QoS 1 sender without a PUBACK", async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true, quotas: { maxMessagesPerSecond: 2 } })
    await deviceWithPassword(backend, tenant, 'fast')
    const client = await connect(tcpUrl(instance), login('fast', tenant))
    for (let i = 0; i < 12; i++) await client.publishAsync('burst', `m${i}`, { qos: 0 })
    await client.publishAsync('sync', 'wait', { qos: 0 }) // a marker: the batch above was handled
    await backend.waitFor((r) => ofDevice(tenant, 'fast')(r) && isTelemetry(r), 1)
    await waitUntil(
      async () => (await instance.metric('tributary_mqtt_refusals_total', { reason: 'rate-limited' })) >= 8,
    )
    expect(client.connected).toBe(true)

    const gone = closed(client)
    void client.publishAsync('burst', 'qos1', { qos: 1 }).catch(() => undefined)
    await gone
    await client.endAsync(true)
    const connections = await backend.waitFor((r) => ofDevice(tenant, 'fast')(r) && isConnection(r), 2)
    expect(connectionData(connections[1]!).reason).toBe('rate-limited')
    const accepted = backend.received.filter((r) => ofDevice(tenant, 'fast')(r) && isTelemetry(r))
    // The bucket holds twice the rate; a little refills while the messages arrive.
    expect(accepted.length).toBeGreaterThanOrEqual(4)
    expect(accepted.length).toBeLessThanOrEqual(6)
    expect(accepted.some((r) => r.data === 'qos1')).toBe(false)
  })
})
