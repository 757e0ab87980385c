// The application MQTT broker driven by MQTT.js: who may connect (CONNACK codes), which filters a
// tenant may subscribe to (SUBACK 0x80 otherwise), what reaches which subscriber (structured JSON
// CloudEvents by channel, QoS as subscribed), clients that publish, and the connection limits.
import type { MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { waitUntil } from '../../helpers/wait.ts'
import type { AppBroker } from './harness.ts'
import { ADMIN_TOKEN, closed, collect, connect, refusal, startAppBroker, suback, topics } from './harness.ts'

let app: AppBroker
const open: MqttClient[] = []

beforeAll(async () => {
  app = await startAppBroker()
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.endAsync(true)))
})

afterAll(async () => {
  await app?.close()
})

async function client(username: string, password: string): Promise<MqttClient> {
  const c = await connect(app.url, username, password)
  open.push(c)
  return c
}

describe('CONNECT', () => {
  it('accepts a reader API token of the tenant named as user name, and the admin token', async () => {
    const t = await app.tenant()
    const reader = await client(t.id, t.token)
    expect(reader.connected).toBe(true)
    const admin = await client(t.id, ADMIN_TOKEN)
    expect(admin.connected).toBe(true)
    expect(await app.metric('tributary_app_mqtt_connections', { tenant: t.id })).toBe(2)
  })

  it('answers 4 to missing or unknown credentials and 5 to another tenant’s token', async () => {
    const t = await app.tenant()
    const other = await app.tenant()
    expect(await refusal(app.url)).toBe(4)
    expect(await refusal(app.url, t.id)).toBe(4)
    expect(await refusal(app.url, t.id, 'tat_nope_nope')).toBe(4)
    expect(await refusal(app.url, t.id, `${t.token}x`)).toBe(4)
    expect(await refusal(app.url, 'NOT a tenant', t.token)).toBe(4)
    expect(await refusal(app.url, t.id, other.token)).toBe(5)
    expect(await refusal(app.url, 'no-such-tenant', ADMIN_TOKEN)).toBe(5)
    expect(
      await app.metric('tributary_app_mqtt_refusals_total', { reason: 'not-authorized' }),
    ).toBeGreaterThanOrEqual(2)
  })

  it('answers 4 once the token is deleted', async () => {
    const t = await app.tenant()
    const created = await app.registry.createApiToken(t.id, { name: 'short-lived', role: 'reader' })
    expect(await refusal(app.url, t.id, created.secret)).toBeUndefined()
    await app.registry.deleteApiToken(t.id, created.token.id)
    await waitUntil(async () => (await refusal(app.url, t.id, created.secret)) === 4, {
      message: () => 'the deleted token refused',
    })
  })

  it('closes the connection when its API token expires', async () => {
    const t = await app.tenant()
    const expiresAt = new Date(Date.now() + 1_500).toISOString()
    const created = await app.registry.createApiToken(t.id, { name: 'brief', role: 'reader', expiresAt })
    const c = await client(t.id, created.secret)
    await c.subscribeAsync(`app/${t.id}/#`, { qos: 1 })
    await closed(c)
    expect(
      await app.metric('tributary_app_mqtt_clients_dropped_total', { reason: 'credential-expired' }),
    ).toBe(1)
    expect(await refusal(app.url, t.id, created.secret)).toBe(4)
  })

  it('closes the connections of a deleted API token at the next credential check, keeping others', async () => {
    const t = await app.tenant()
    const created = await app.registry.createApiToken(t.id, { name: 'revoked', role: 'reader' })
    const revoked = await client(t.id, created.secret)
    await revoked.subscribeAsync(`app/${t.id}/#`, { qos: 1 })
    const kept = await client(t.id, t.token)
    await app.registry.deleteApiToken(t.id, created.token.id)
    await closed(revoked)
    expect(
      await app.metric('tributary_app_mqtt_clients_dropped_total', { reason: 'credential-invalid' }),
    ).toBe(1)
    // The other client, checked by the same sweeps, still receives the tenant's events.
    const got = collect(kept)
    await kept.subscribeAsync(`app/${t.id}/#`, { qos: 1 })
    await app.publish(t.id, [{ subject: 'still/here', data: { n: 1 } }])
    await waitUntil(() => got.length === 1, { message: () => 'the event reached the client that was kept' })
    expect(kept.connected).toBe(true)
  })

  it('refuses the connection past the per-tenant limit with 5, and lets another tenant in', async () => {
    const t = await app.tenant()
    for (let i = 0; i < 5; i++) await client(t.id, t.token)
    expect(await refusal(app.url, t.id, t.token)).toBe(5)
    const other = await app.tenant()
    expect((await client(other.id, other.token)).connected).toBe(true)
    expect(await app.metric('tributary_app_mqtt_refusals_total', { reason: 'connection-limit' })).toBe(1)
  })
})

describe('SUBSCRIBE', () => {
  it('grants filters under the caller’s tenant', async () => {
    const t = await app.tenant()
    const c = await client(t.id, t.token)
    const granted = await suback(c, {
      [`app/${t.id}`]: { qos: 0 },
      [`app/${t.id}/sensors/#`]: { qos: 1 },
      [`app/${t.id}/+/temperature`]: { qos: 2 },
    })
    expect(granted).toEqual([0, 1, 2])
  })

  it('refuses other tenants, wildcards over tenants and other topic shapes with 0x80', async () => {
    const t = await app.tenant()
    const other = await app.tenant()
    const c = await client(t.id, t.token)
    const filters = [
      `app/${other.id}/#`,
      `app/${other.id}`,
      'app/+/sensors',
      'app/#',
      '#',
      '$SYS/#',
      `devices/${t.id}`,
      `app/${t.id}/a b`,
    ]
    expect(await suback(c, filters)).toEqual(filters.map(() => 128))
    expect(await suback(c, [`app/${other.id}/#`, `app/${t.id}/#`])).toEqual([128, 0])
    expect(c.connected).toBe(true)
    expect(
      await app.metric('tributary_app_mqtt_refusals_total', { reason: 'other-tenant' }),
    ).toBeGreaterThanOrEqual(5)
  })

  it('creates the event topic of a tenant that has none yet (no event so far), and grants', async () => {
    const id = `late-${Date.now().toString(36)}`
    await app.registry.createTenant(id, { enabled: true })
    const { secret } = await app.registry.createApiToken(id, { name: 'reader', role: 'reader' })
    const c = await client(id, secret)
    expect(await app.bus.admin.describeTopic(topics.events(id))).toBeUndefined()
    expect(await suback(c, `app/${id}/#`)).toEqual([0])
    expect(await app.bus.admin.describeTopic(topics.events(id))).toMatchObject({ partitions: 1 })
    expect(await app.metric('tributary_app_mqtt_refusals_total', { reason: 'unavailable' })).toBe(0)
  })

  it('refuses filters past the per-client limit', async () => {
    const t = await app.tenant()
    const c = await client(t.id, t.token)
    const filters = ['a', 'b', 'c', 'd', 'e'].map((level) => `app/${t.id}/${level}`)
    expect(await suback(c, filters)).toEqual([0, 0, 0, 0, 128])
    await c.unsubscribeAsync(filters[0]!)
    expect(await suback(c, filters[4]!)).toEqual([0])
  })
})

describe('delivery', () => {
  it('sends each event as a structured JSON CloudEvent to the subscribers whose filter matches its channel', async () => {
    const t = await app.tenant()
    const sensors = await client(t.id, t.token)
    const root = await client(t.id, t.token)
    const everything = await client(t.id, t.token)
    await sensors.subscribeAsync(`app/${t.id}/sensors/+`, { qos: 1 })
    await root.subscribeAsync(`app/${t.id}`, { qos: 0 })
    await everything.subscribeAsync(`app/${t.id}/#`, { qos: 2 })
    const got = { sensors: collect(sensors), root: collect(root), everything: collect(everything) }

    const [temperature, status, bare] = await app.publish(t.id, [
      { subject: 'sensors/temperature', data: { celsius: 21.5 } },
      { subject: 'status', data: { ok: true } },
      { data: { hello: 'world' } },
    ])
    await waitUntil(() => got.everything.length === 3, {
      message: () => `3 events, got ${got.everything.length}`,
    })
    await waitUntil(() => got.sensors.length === 1 && got.root.length === 1)

    expect(got.sensors).toEqual([
      {
        topic: `app/${t.id}/sensors/temperature`,
        qos: 1,
        event: {
          specversion: '1.0',
          id: temperature!.attributes.id,
          source: temperature!.attributes.source,
          type: 'io.tributary.telemetry.v1',
          subject: 'sensors/temperature',
          time: temperature!.attributes.time,
          datacontenttype: 'application/json',
          tenant: t.id,
          device: temperature!.attributes.device,
          partitionkey: temperature!.attributes.partitionkey,
          data: { celsius: 21.5 },
        },
      },
    ])
    expect(got.root.map((d) => [d.topic, d.qos, d.event['id'], d.event['data']])).toEqual([
      [`app/${t.id}`, 0, bare!.attributes.id, { hello: 'world' }],
    ])
    // Subscribed at QoS 2: events are published at QoS 1, so that is what arrives.
    expect(got.everything.map((d) => d.qos)).toEqual([1, 1, 1])
    expect(got.everything.map((d) => d.event['id']).sort()).toEqual(
      [temperature, status, bare].map((e) => e!.attributes.id).sort(),
    )
    expect(await app.metric('tributary_app_mqtt_messages_out_total', { tenant: t.id })).toBe(5)
  })

  it('never sends one tenant’s events to another tenant’s subscriber', async () => {
    const a = await app.tenant()
    const b = await app.tenant()
    const ofA = await client(a.id, a.token)
    const ofB = await client(b.id, b.token)
    await ofA.subscribeAsync(`app/${a.id}/#`, { qos: 1 })
    await ofB.subscribeAsync(`app/${b.id}/#`, { qos: 1 })
    const got = { a: collect(ofA), b: collect(ofB) }
    await app.publish(a.id, [
      { subject: 'x', data: 1 },
      { subject: 'y', data: 2 },
    ])
    await app.publish(b.id, [{ subject: 'x', data: 3 }])
    await waitUntil(() => got.a.length === 2 && got.b.length === 1)
    // b's single event arrived after a's were written; nothing of a's came with it.
    expect(got.b.map((d) => [d.topic, d.event['tenant'], d.event['data']])).toEqual([
      [`app/${b.id}/x`, b.id, 3],
    ])
    expect(got.a.every((d) => d.event['tenant'] === a.id)).toBe(true)
  })

  it('serves events from the moment of subscribing, not the backlog', async () => {
    const t = await app.tenant()
    await app.publish(t.id, [{ subject: 'old', data: 'before' }])
    const c = await client(t.id, t.token)
    await c.subscribeAsync(`app/${t.id}/#`, { qos: 1 })
    const got = collect(c)
    await app.publish(t.id, [{ subject: 'new', data: 'after' }])
    await waitUntil(() => got.length >= 1)
    expect(got.map((d) => d.event['data'])).toEqual(['after'])
  })
})

describe('PUBLISH from an application', () => {
  it('closes the connection and counts the refusal when it is not a command (commands: commands.int.test.ts)', async () => {
    const t = await app.tenant()
    const c = await client(t.id, t.token)
    const gone = closed(c)
    c.publish(`app/${t.id}/commands`, 'hello', { qos: 1 })
    await gone
    expect(await app.metric('tributary_app_mqtt_refusals_total', { reason: 'publish-refused' })).toBe(1)
  })
})
