// Commands through the device MQTT adapter with MQTT.js, a real bus and registry, and a double of
// the command outlet: which subscriptions are granted, the sink a connection attaches, what a
// device receives (topic, QoS, payload), its responses made durable, and what another device —
// same tenant or not — can never see or subscribe to.
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_COMMAND_FILTERS } from '../../../adapters/mqtt/commands.ts'
import type { DeviceCommand } from '../../../commands/outlet.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { Backend, Instance } from './harness.ts'
import {
  closed,
  connect,
  deviceWithPassword,
  login,
  newTenant,
  ofDevice,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend)
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

async function tenantWith(...devices: string[]): Promise<string> {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, { enabled: true })
  for (const device of devices) await deviceWithPassword(backend, tenant, device)
  return tenant
}

/** The QoS granted per filter, the failure code for a refused one (MQTT.js rejects a SUBACK that grants nothing). */
async function granted(client: MqttClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  return client.subscribeAsync(filters).then(
    (grants) => grants.map((g) => g.qos),
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
  )
}

/** Every PUBLISH a client receives, in order. */
function inbox(client: MqttClient): IPublishPacket[] {
  const received: IPublishPacket[] = []
  client.on('message', (_topic, _payload, packet) => received.push(packet))
  return received
}

let sequence = 0
function command(tenant: string, device: string, extra: Partial<DeviceCommand> = {}): DeviceCommand {
  sequence++
  return {
    id: `cmd-${sequence}`,
    tenant,
    device,
    name: 'reboot',
    payload: Buffer.from(`payload-${sequence}`),
    contentType: undefined,
    requestId: undefined,
    fport: undefined,
    downlink: undefined,
    expiresAt: new Date(Date.now() + 60_000),
    ...extra,
  }
}

/** `dev` of a new tenant connected and subscribed to `filter`: its client, inbox and command sink. */
async function subscribedDevice(filter: string, qos: 0 | 1, options: IClientOptions) {
  const tenant = await tenantWith('dev')
  const client = await connect(tcpUrl(instance), { ...login('dev', tenant), ...options })
  const received = inbox(client)
  await granted(client, { [filter]: { qos } })
  return { tenant, client, received, sink: await instance.commands.sink(tenant, 'dev') }
}

/** 3.1.1 answers a refused filter with SUBACK 0x80, MQTT 5 with 0x87 not authorized. */
const VERSIONS = [
  { name: '3.1.1', version: 4, refused: 0x80 },
  { name: '5', version: 5, refused: 0x87 },
] as const

describe.each(VERSIONS)('MQTT $name commands', ({ version, refused }) => {
  const open = (device: string, tenant: string): Promise<MqttClient> =>
    connect(tcpUrl(instance), { ...login(device, tenant), protocolVersion: version })

  describe('command subscriptions', () => {
    it('grants command filters at QoS 1 at most and refuses everything else, keeping the connection', async () => {
      const tenant = await tenantWith('dev', 'neighbour')
      const client = await open('dev', tenant)
      expect(
        await granted(client, {
          'command/#': { qos: 1 },
          'command/+/req/+': { qos: 0 },
          '#': { qos: 1 },
          'neighbour/#': { qos: 1 },
          'gw/neighbour/command/#': { qos: 1 },
          '+/command/x': { qos: 1 },
        }),
      ).toEqual([1, 0, refused, refused, refused, refused])
      await client.publishAsync('still/here', 'yes', { qos: 1 })
      expect(client.connected).toBe(true)
      await client.endAsync()
    })

    it(`holds at most ${MAX_COMMAND_FILTERS} command filters per connection; a SUBSCRIBE granting none keeps the sink`, async () => {
      const tenant = await tenantWith('dev')
      const key = `${tenant}/dev`
      const client = await open('dev', tenant)
      const filters = Object.fromEntries(
        Array.from({ length: MAX_COMMAND_FILTERS }, (_, i) => [`command/c${i}`, { qos: 1 as const }]),
      )
      expect(await granted(client, filters)).toEqual(Array(MAX_COMMAND_FILTERS).fill(1))
      await instance.commands.sink(tenant, 'dev')
      const attaches = instance.commands.attaches.get(key)
      // The same filter again is no new one; another is one too many.
      expect(await granted(client, { 'command/c0': { qos: 0 }, 'command/one-more': { qos: 1 } })).toEqual([
        0,
        refused,
      ])
      expect(await granted(client, { '#': { qos: 1 } })).toEqual([refused])
      await client.publishAsync('sync', 'x', { qos: 1 })
      expect(instance.commands.attaches.get(key)).toBe(attaches! + 1)
      // An UNSUBSCRIBE makes room again.
      await client.unsubscribeAsync('command/c1')
      expect(await granted(client, { 'command/one-more': { qos: 1 } })).toEqual([1])
      await client.endAsync()
    })

    it('counts the filters of one SUBSCRIBE together against the limit', async () => {
      const tenant = await tenantWith('dev')
      const client = await open('dev', tenant)
      const filters = Object.fromEntries(
        Array.from({ length: MAX_COMMAND_FILTERS + 2 }, (_, i) => [`command/c${i}`, { qos: 1 as const }]),
      )
      const grants = await granted(client, filters)
      expect(grants.filter((g) => g === 1)).toHaveLength(MAX_COMMAND_FILTERS)
      expect(grants.filter((g) => g === refused)).toHaveLength(2)
      await client.endAsync()
    })

    it('attaches a sink once a command subscription holds, and detaches on UNSUBSCRIBE and on close', async () => {
      const tenant = await tenantWith('dev')
      const key = `${tenant}/dev`
      const client = await open('dev', tenant)
      await client.publishAsync('before', 'x', { qos: 1 })
      expect(instance.commands.attached.has(key)).toBe(false)
      await granted(client, { 'command/#': { qos: 1 } })
      await instance.commands.sink(tenant, 'dev')
      await client.unsubscribeAsync('command/#')
      await waitUntil(() => !instance.commands.attached.has(key))
      await granted(client, { 'command/reboot': { qos: 1 } })
      const sink = await instance.commands.sink(tenant, 'dev')
      await client.endAsync()
      await waitUntil(() => !instance.commands.attached.has(key))
      expect(await sink.deliver(command(tenant, 'dev'))).toEqual({ kind: 'gone' })
    })
  })

  describe('command delivery', () => {
    it('writes a one-way command on command/<name> at QoS 1 and says delivered', async () => {
      const { tenant, client, received, sink } = await subscribedDevice('command/#', 1, {
        protocolVersion: version,
      })
      const sent = command(tenant, 'dev', { payload: Buffer.from([0, 1, 255]) })
      expect(await sink.deliver(sent)).toEqual({ kind: 'delivered' })
      await waitUntil(() => received.length === 1)
      expect(received[0]).toMatchObject({ topic: 'command/reboot', qos: 1, retain: false })
      expect(received[0]!.payload).toEqual(Buffer.from([0, 1, 255]))
      await client.endAsync()
    })

    it('goes at QoS 0 when the matching subscription granted 0', async () => {
      const { tenant, client, received, sink } = await subscribedDevice('command/+', 0, {
        protocolVersion: version,
      })
      expect(await sink.deliver(command(tenant, 'dev'))).toEqual({ kind: 'delivered' })
      await waitUntil(() => received.length === 1)
      expect(received[0]).toMatchObject({ topic: 'command/reboot', qos: 0 })
      await client.endAsync()
    })

    it('says gone when no subscription matches, and tries again with a new sink once one does', async () => {
      const tenant = await tenantWith('dev')
      const key = `${tenant}/dev`
      const client = await open('dev', tenant)
      const received = inbox(client)
      await granted(client, { 'command/reboot': { qos: 1 } })
      const first = await instance.commands.sink(tenant, 'dev')
      const update = command(tenant, 'dev', { name: 'update' })
      expect(await first.deliver(update)).toEqual({ kind: 'gone' })
      expect(instance.commands.attaches.get(key)).toBe(1)
      await granted(client, { 'command/update': { qos: 1 } })
      await waitUntil(() => instance.commands.attaches.get(key) === 2)
      // The new sink replaced the old one: one sink per connection.
      expect(instance.commands.attached.get(key)).toHaveLength(1)
      const second = await instance.commands.sink(tenant, 'dev')
      expect(await second.deliver(update)).toEqual({ kind: 'delivered' })
      await waitUntil(() => received.length === 1)
      expect(received[0]!.topic).toBe('command/update')
      await client.endAsync()
    })

    it('delivers request-style commands on command/<name>/req/<id> and makes the response durable before the PUBACK', async () => {
      const { tenant, client, received, sink } = await subscribedDevice('command/+/req/+', 1, {
        protocolVersion: version,
      })
      expect(await sink.deliver(command(tenant, 'dev', { name: 'get', requestId: 'req-1' }))).toEqual({
        kind: 'delivered',
      })
      await waitUntil(() => received.length === 1)
      expect(received[0]!.topic).toBe('command/get/req/req-1')
      await client.publishAsync('command/res/req-1/200', '{"uptime":5}', { qos: 1 })
      // The PUBACK came: the response is on the bus and the outlet heard of it.
      expect(instance.commands.responses).toContainEqual({
        tenant,
        device: 'dev',
        requestId: 'req-1',
        status: 200,
        payload: Buffer.from('{"uptime":5}'),
      })
      const [response] = await backend.waitFor(
        (r) => ofDevice(tenant, 'dev')(r) && r.event.attributes.type === 'io.tributary.command.response.v1',
      )
      expect(response!.event.attributes).toMatchObject({
        requestid: 'req-1',
        status: '200',
        protocol: 'mqtt',
      })
      expect(response!.data).toBe('{"uptime":5}')
      await client.endAsync()
    })
  })

  describe('commands through a gateway', () => {
    it('lets a gateway subscribe for devices listing it and delivers their commands on gw/<device>/command/…', async () => {
      const tenant = await tenantWith('gw-1')
      await backend.registry.createDevice(tenant, 'child', { enabled: true, gateways: ['gw-1'] })
      await backend.registry.createDevice(tenant, 'orphan', { enabled: true })
      const client = await open('gw-1', tenant)
      const received = inbox(client)
      expect(
        await granted(client, {
          'gw/child/command/#': { qos: 1 },
          'gw/orphan/command/#': { qos: 1 },
          'gw/missing/command/#': { qos: 1 },
        }),
      ).toEqual([1, refused, refused])
      const sink = await instance.commands.sink(tenant, 'gw-1')
      expect(await sink.deliver(command(tenant, 'child', { name: 'set', requestId: 'r-9' }))).toEqual({
        kind: 'delivered',
      })
      await waitUntil(() => received.length === 1)
      expect(received[0]!.topic).toBe('gw/child/command/set/req/r-9')
      await client.publishAsync('gw/child/command/res/r-9/204', '', { qos: 1 })
      expect(instance.commands.responses).toContainEqual(
        expect.objectContaining({ tenant, device: 'child', requestId: 'r-9', status: 204 }),
      )
      const [response] = await backend.waitFor(
        (r) => ofDevice(tenant, 'child')(r) && r.event.attributes.type === 'io.tributary.command.response.v1',
      )
      expect(response!.event.attributes.sender).toBe('gw-1')
      await client.endAsync()
    })
  })

  describe('commands seen from another device', () => {
    it("never shows a device another device's commands or responses, in its tenant or another", async () => {
      const tenant = await tenantWith('victim', 'attacker')
      const other = await tenantWith('victim')
      const victim = await open('victim', tenant)
      const attacker = await open('attacker', tenant)
      const foreign = await open('victim', other)
      const seen = { victim: inbox(victim), attacker: inbox(attacker), foreign: inbox(foreign) }
      const all = { 'command/#': { qos: 1 }, 'command/+/req/+': { qos: 1 } } as const
      for (const client of [victim, attacker, foreign]) expect(await granted(client, all)).toEqual([1, 1])
      // The attacker may not listen as the victim's gateway either.
      expect(
        await granted(attacker, { 'gw/victim/command/#': { qos: 1 }, 'gw/+/command/#': { qos: 1 } }),
      ).toEqual([refused, 1])

      const toVictim = await instance.commands.sink(tenant, 'victim')
      expect(await toVictim.deliver(command(tenant, 'victim', { name: 'secret', requestId: 'r-1' }))).toEqual(
        {
          kind: 'delivered',
        },
      )
      expect(await toVictim.deliver(command(tenant, 'victim', { name: 'secret' }))).toEqual({
        kind: 'delivered',
      })
      await victim.publishAsync('command/res/r-1/200', 'victim-answer', { qos: 1 })
      await waitUntil(() => seen.victim.length === 2)

      // Then one command to each of the others: if anything of the victim's had been routed to them,
      // it would have come before (one connection, one order).
      const toAttacker = await instance.commands.sink(tenant, 'attacker')
      const toForeign = await instance.commands.sink(other, 'victim')
      expect(await toAttacker.deliver(command(tenant, 'attacker', { name: 'mine' }))).toEqual({
        kind: 'delivered',
      })
      expect(await toForeign.deliver(command(other, 'victim', { name: 'mine' }))).toEqual({
        kind: 'delivered',
      })
      await waitUntil(() => seen.attacker.length >= 1 && seen.foreign.length >= 1)
      expect(seen.attacker.map((p) => p.topic)).toEqual(['command/mine'])
      expect(seen.foreign.map((p) => p.topic)).toEqual(['command/mine'])
      expect(seen.victim.map((p) => p.topic)).toEqual(['command/secret/req/r-1', 'command/secret'])

      // A sink carries its own device's commands and those of devices listing it as a gateway only,
      // whatever it is handed: the attacker's (holding gw/+/command/#) takes nothing for the victim.
      expect(await toAttacker.deliver(command(tenant, 'victim', { name: 'steal' }))).toEqual({ kind: 'gone' })
      expect(await toAttacker.deliver(command(other, 'victim', { name: 'steal' }))).toEqual({ kind: 'gone' })
      for (const client of [victim, attacker, foreign]) await client.endAsync().catch(() => undefined)
      await closed(victim)
    })
  })
})

describe('MQTT 3.1.1 persistent sessions', () => {
  it('restores the sink of a persistent session at CONNECT', async () => {
    const tenant = await tenantWith('dev')
    const options = { ...login('dev', tenant), clientId: 'persistent-1', clean: false }
    const first = await connect(tcpUrl(instance), options)
    await granted(first, { 'command/#': { qos: 1 } })
    await instance.commands.sink(tenant, 'dev')
    await first.endAsync()
    await waitUntil(() => !instance.commands.attached.has(`${tenant}/dev`))
    const again = await connect(tcpUrl(instance), options)
    const received = inbox(again)
    const sink = await instance.commands.sink(tenant, 'dev')
    expect(await sink.deliver(command(tenant, 'dev'))).toEqual({ kind: 'delivered' })
    await waitUntil(() => received.length === 1)
    expect(received[0]!.topic).toBe('command/reboot')
    await again.endAsync()
  })
})

describe('MQTT 5 command properties', () => {
  it('[MQTT-3.3.2-6] sends the ttl left as Message Expiry Interval, a request with Response Topic and Correlation Data, answered on that topic', async () => {
    const { tenant, client, received, sink } = await subscribedDevice('command/#', 1, { protocolVersion: 5 })
    const expiresAt = new Date(Date.now() + 90_000)
    const request = command(tenant, 'dev', {
      name: 'get',
      requestId: 'req-5',
      expiresAt,
      contentType: 'application/json',
      payload: Buffer.from('{}'),
    })
    expect(await sink.deliver(request)).toEqual({ kind: 'delivered' })
    expect(await sink.deliver(command(tenant, 'dev', { name: 'blink', expiresAt }))).toEqual({
      kind: 'delivered',
    })
    await waitUntil(() => received.length === 2)
    const [asked, oneWay] = received
    expect(asked).toMatchObject({ topic: 'command/get/req/req-5', qos: 1 })
    const properties = asked!.properties!
    expect(properties.messageExpiryInterval).toBeGreaterThan(0)
    expect(properties.messageExpiryInterval).toBeLessThanOrEqual(90)
    expect(properties.responseTopic).toBe('command/res/req-5/200')
    expect(properties.correlationData).toEqual(Buffer.from('req-5'))
    expect(properties.contentType).toBe('application/json')
    expect(oneWay!.properties?.responseTopic).toBeUndefined()
    expect(oneWay!.properties?.correlationData).toBeUndefined()

    // The device answers the way MQTT 5 request/response has it: on the Response Topic, echoing the data.
    await client.publishAsync(properties.responseTopic!, '{"up":1}', {
      qos: 1,
      properties: { correlationData: properties.correlationData! },
    })
    expect(instance.commands.responses).toContainEqual(
      expect.objectContaining({ tenant, device: 'dev', requestId: 'req-5', status: 200 }),
    )
    await client.endAsync()
  })

  it("gives a gateway its device's Response Topic under gw/<device>/", async () => {
    const tenant = await tenantWith('gw-1')
    await backend.registry.createDevice(tenant, 'child', { enabled: true, gateways: ['gw-1'] })
    const client = await connect(tcpUrl(instance), { ...login('gw-1', tenant), protocolVersion: 5 })
    const received = inbox(client)
    await granted(client, { 'gw/child/command/#': { qos: 1 } })
    const sink = await instance.commands.sink(tenant, 'gw-1')
    expect(await sink.deliver(command(tenant, 'child', { name: 'set', requestId: 'r-7' }))).toEqual({
      kind: 'delivered',
    })
    await waitUntil(() => received.length === 1)
    expect(received[0]!.properties?.responseTopic).toBe('gw/child/command/res/r-7/200')
    await client.endAsync()
  })

  it("fails a command larger than the device's Maximum Packet Size, which it can never take [MQTT-3.1.2-24]", async () => {
    const { tenant, client, received, sink } = await subscribedDevice('command/#', 1, {
      protocolVersion: 5,
      properties: { maximumPacketSize: 256 },
    })
    const big = command(tenant, 'dev', { payload: Buffer.alloc(1024, 1) })
    expect(await sink.deliver(big)).toEqual({ kind: 'failed', reason: 'larger than the device accepts' })
    expect(await sink.deliver(command(tenant, 'dev', { name: 'small' }))).toEqual({ kind: 'delivered' })
    await waitUntil(() => received.length === 1)
    expect(received.map((p) => p.topic)).toEqual(['command/small'])
    await client.endAsync()
  })
})
