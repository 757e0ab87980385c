// Authentication at CONNECT with MQTT.js over TCP: passwords and bearer device tokens accepted,
// unknown, wrong and disabled credentials refused with CONNACK 4, policy refusals with 5, each
// refusal counted and logged with its reason and never with the secret.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backend, Instance } from './harness.ts'
import {
  PASSWORD,
  connect,
  deviceWithPassword,
  isConnection,
  login,
  newTenant,
  ofDevice,
  refusal,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend, { config: { maxConnectionsPerTenant: 2 } })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

describe('MQTT authentication', () => {
  it('refuses unknown, wrong, disabled, expired and missing credentials with CONNACK 4 and writes nothing', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await deviceWithPassword(backend, tenant, 'meter')
    await deviceWithPassword(backend, tenant, 'off')
    await backend.registry.updateDevice(tenant, 'off', { enabled: false })
    await backend.registry.createDevice(tenant, 'old', { enabled: true })
    // Written a minute ago to expire 30 seconds later: expired now.
    await backend
      .registryAt(() => new Date(Date.now() - 60_000))
      .createCredential(tenant, 'old', {
        type: 'password',
        password: PASSWORD,
        expiresAt: new Date(Date.now() - 30_000).toISOString(),
      })
    const url = tcpUrl(instance)

    const cases = {
      'bad-secret': await refusal(url, login('meter', tenant, 'not the password')),
      unknown: await refusal(url, login('ghost', tenant)),
      'unknown tenant': await refusal(url, login('meter', newTenant())),
      disabled: await refusal(url, login('off', tenant)),
      expired: await refusal(url, login('old', tenant)),
      'missing-credentials': await refusal(url, {}),
      'username only': await refusal(url, { username: `meter@${tenant}` }),
      malformed: await refusal(url, { username: 'no-at-sign', password: PASSWORD }),
    }
    expect(cases).toEqual(Object.fromEntries(Object.keys(cases).map((k) => [k, 4])))
    for (const reason of [
      'bad-secret',
      'unknown',
      'disabled',
      'expired',
      'missing-credentials',
      'malformed',
    ]) {
      expect(await instance.metric('tributary_mqtt_refusals_total', { reason }), reason).toBeGreaterThan(0)
    }
    const lines = instance.logs.filter((l) => l['msg'] === 'MQTT connection refused')
    expect(
      lines.find((l) => l['username'] === `meter@${tenant}` && l['reason'] === 'bad-secret'),
    ).toBeDefined()
    expect(JSON.stringify(instance.logs)).not.toContain('not the password')
    expect(JSON.stringify(instance.logs)).not.toContain(PASSWORD)
    expect(backend.received.some((r) => r.event.attributes.tenant === tenant)).toBe(false)
  })

  it("refuses a method the tenant's policy does not allow with CONNACK 5", async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true, authMethods: ['token'] })
    await deviceWithPassword(backend, tenant, 'dev')
    expect(await refusal(tcpUrl(instance), login('dev', tenant))).toBe(5)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'method-not-allowed' })).toBe(1)

    const secret = (await backend.registry.createCredential(tenant, 'dev', { type: 'token' })).secret!
    const client = await connect(tcpUrl(instance), { username: '', password: secret })
    await client.publishAsync('via/token', 'ok', { qos: 1 })
    await client.endAsync()
    await backend.waitFor((r) => ofDevice(tenant, 'dev')(r) && r.data === 'ok')
  })

  it('takes a bearer device token as the password, with an empty username or the matching one', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await backend.registry.createDevice(tenant, 'tok', { enabled: true })
    await backend.registry.createDevice(tenant, 'other', { enabled: true })
    const secret = (await backend.registry.createCredential(tenant, 'tok', { type: 'token' })).secret!
    expect(secret).toMatch(/^tdt_/)
    // MQTT 3.1.1 sends a password only with a username [MQTT-3.1.2-22]: an empty one will do.
    for (const username of ['', `tok@${tenant}`]) {
      const client = await connect(tcpUrl(instance), { username, password: secret })
      await client.endAsync()
    }
    expect(await refusal(tcpUrl(instance), { username: `other@${tenant}`, password: secret })).toBe(4)
    expect(await refusal(tcpUrl(instance), { username: '', password: `${secret.slice(0, -2)}xx` })).toBe(4)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'identity-mismatch' })).toBe(1)
    const connections = await backend.waitFor((r) => ofDevice(tenant, 'tok')(r) && isConnection(r), 4)
    expect(connections).toHaveLength(4)
  })

  it('refuses connections beyond the per-tenant limit with CONNACK 5 and frees the slot on disconnect', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    for (const d of ['a', 'b', 'c']) await deviceWithPassword(backend, tenant, d)
    const a = await connect(tcpUrl(instance), login('a', tenant))
    const b = await connect(tcpUrl(instance), login('b', tenant))
    expect(await instance.metric('tributary_mqtt_connections', { tenant, listener: 'mqtt' })).toBe(2)
    expect(await refusal(tcpUrl(instance), login('c', tenant))).toBe(5)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'connection-limit' })).toBe(1)
    await a.endAsync()
    await backend.waitFor((r) => ofDevice(tenant, 'a')(r) && isConnection(r), 2)
    const c = await connect(tcpUrl(instance), login('c', tenant))
    expect(await instance.cluster.slots(`mqtt:${tenant}`)).toBe(2)
    await Promise.all([b.endAsync(), c.endAsync()])
  })

  it('refuses a last will that could not be published (retained, reserved topic) with CONNACK 5', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await deviceWithPassword(backend, tenant, 'dev')
    const will = (topic: string, retain: boolean) => ({
      will: { topic, payload: Buffer.from('bye'), qos: 0 as const, retain },
    })
    expect(await refusal(tcpUrl(instance), { ...login('dev', tenant), ...will('status', true) })).toBe(5)
    expect(await refusal(tcpUrl(instance), { ...login('dev', tenant), ...will('command/x', false) })).toBe(5)

    // A valid will is published when the connection fails (not on a clean DISCONNECT).
    const client = await connect(tcpUrl(instance), { ...login('dev', tenant), ...will('status', false) })
    client.stream.destroy()
    const [event] = await backend.waitFor(
      (r) => ofDevice(tenant, 'dev')(r) && r.event.attributes.subject === 'status',
    )
    expect(event!.data).toBe('bye')
    await client.endAsync(true)
  })
})
