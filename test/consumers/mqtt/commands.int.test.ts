// Commands published on the application broker with MQTT.js: what lands on the commands topic
// (before the PUBACK), and every refusal — reader role, another tenant, unknown device, bad topic,
// retained, over the rate — closing the connection without producing anything.
import type { MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { BusMessage, Subscription } from '../../../core/bus/bus.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { decode } from '../../../core/events/kafka-codec.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { AppBroker } from './harness.ts'
import { closed, connect, startAppBroker, topics } from './harness.ts'

let app: AppBroker
let slow: AppBroker
let tap: Subscription
const commands: CloudEvent[] = []
const open: MqttClient[] = []

beforeAll(async () => {
  app = await startAppBroker()
  // One command per 1000 s after a burst of two: the third is over the rate whatever the timing.
  slow = await startAppBroker({ commandRate: 0.001, commandBurst: 2 })
  tap = await app.bus.subscribe({
    group: uniqueName('commands-tap'),
    topics: [topics.commands],
    from: 'earliest',
    handler: async (batch: readonly BusMessage[]) => {
      for (const m of batch)
        commands.push(
          decode({
            key: m.key === undefined ? undefined : Buffer.from(m.key),
            value: m.value,
            headers: m.headers,
          }),
        )
    },
  })
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.endAsync(true)))
})

afterAll(async () => {
  await tap?.close()
  await slow?.close()
  await app?.close()
})

async function client(broker: AppBroker, username: string, password: string): Promise<MqttClient> {
  const c = await connect(broker.url, username, password)
  open.push(c)
  return c
}

async function tenantWithDevice(broker: AppBroker, role: 'reader' | 'manager' | 'admin') {
  const t = await broker.tenant(role)
  await broker.registry.createDevice(t.id, 'dev', { enabled: true })
  return t
}

const ofTenant = (tenant: string) => commands.filter((e) => e.attributes.tenant === tenant)

describe('commands from applications', () => {
  it('produces a one-way command to the commands topic before the PUBACK', async () => {
    const t = await tenantWithDevice(app, 'manager')
    const c = await client(app, t.id, t.token)
    await c.publishAsync(`command/${t.id}/dev/reboot`, '{"delay":5}', { qos: 1 })
    await waitUntil(() => ofTenant(t.id).length === 1)
    const [event] = ofTenant(t.id)
    expect(event!.attributes).toMatchObject({
      type: 'io.tributary.command.v1',
      source: `tributary://${t.id}/dev`,
      tenant: t.id,
      device: 'dev',
      subject: 'reboot',
      protocol: 'mqtt',
      partitionkey: `${t.id}/dev`,
    })
    expect(event!.attributes['requestid']).toBeUndefined()
    expect(Date.parse(event!.attributes['expires']!) - Date.parse(event!.attributes.time!)).toBe(60_000)
    expect(event!.data?.toString()).toBe('{"delay":5}')
    expect(c.connected).toBe(true)
    expect(await app.metric('tributary_app_mqtt_commands_total', { tenant: t.id })).toBe(1)
  })

  it('carries the request id of a request-style command; QoS 0 and the admin token work too', async () => {
    const t = await tenantWithDevice(app, 'admin')
    const c = await client(app, t.id, t.token)
    await c.publishAsync(`command/${t.id}/dev/get/req-42`, 'q', { qos: 0 })
    await waitUntil(() => ofTenant(t.id).length === 1)
    expect(ofTenant(t.id)[0]!.attributes).toMatchObject({ subject: 'get', requestid: 'req-42' })
  })

  it.each([
    ['not-authorized', 'reader', (t: string) => `command/${t}/dev/reboot`, false],
    ['other-tenant', 'manager', () => 'command/someone-else/dev/reboot', false],
    ['unknown-device', 'manager', (t: string) => `command/${t}/ghost/reboot`, false],
    ['bad-command-topic', 'manager', (t: string) => `command/${t}/dev/res`, false],
    ['publish-refused', 'manager', (t: string) => `app/${t}/dev/reboot`, false],
    ['retained', 'manager', (t: string) => `command/${t}/dev/reboot`, true],
  ] as const)('refuses %s by closing the connection', async (reason, role, topic, retain) => {
    const t = await tenantWithDevice(app, role)
    const c = await client(app, t.id, t.token)
    const before = await app.metric('tributary_app_mqtt_refusals_total', { reason })
    const gone = closed(c)
    c.publish(topic(t.id), 'x', { qos: 1, retain })
    await gone
    expect(await app.metric('tributary_app_mqtt_refusals_total', { reason })).toBe(before + 1)
    expect(ofTenant(t.id)).toEqual([])
  })

  it("refuses a command for another tenant's device even from that tenant's name in the topic", async () => {
    const victim = await tenantWithDevice(app, 'manager')
    const attacker = await tenantWithDevice(app, 'manager')
    const c = await client(app, attacker.id, attacker.token)
    const gone = closed(c)
    c.publish(`command/${victim.id}/dev/reboot`, 'x', { qos: 1 })
    await gone
    // A marker from the victim's own manager shows the topic is read: nothing came before it.
    const own = await client(app, victim.id, victim.token)
    await own.publishAsync(`command/${victim.id}/dev/marker`, 'ok', { qos: 1 })
    await waitUntil(() => ofTenant(victim.id).length >= 1)
    expect(ofTenant(victim.id).map((e) => e.attributes.subject)).toEqual(['marker'])
  })

  it('closes a connection publishing QoS 1 commands over its rate', async () => {
    const t = await tenantWithDevice(slow, 'manager')
    const c = await client(slow, t.id, t.token)
    await c.publishAsync(`command/${t.id}/dev/a`, '1', { qos: 1 })
    await c.publishAsync(`command/${t.id}/dev/b`, '2', { qos: 1 })
    const gone = closed(c)
    c.publish(`command/${t.id}/dev/c`, '3', { qos: 1 })
    await gone
    expect(await slow.metric('tributary_app_mqtt_refusals_total', { reason: 'rate-limited' })).toBe(1)
    expect(await slow.metric('tributary_app_mqtt_commands_total', { tenant: t.id })).toBe(2)
  })
})
