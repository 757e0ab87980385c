// MQTT 5 devices through the adapter, driven by MQTT.js with protocolVersion 5 over TCP and
// WebSocket: CONNACK properties and reason codes, PUBLISH properties on the event, every refusal
// as a PUBACK reason code with the session kept, topic aliases, and the server's DISCONNECT reason
// codes (takeover, revocation, shutdown). The 3.1.1 tests beside this one run unchanged on aedes.
import { connect as netConnect } from 'node:net'
import mqtt from 'mqtt'
import { generate, parser as createParser } from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import type { IClientOptions, IConnackPacket, IDisconnectPacket, MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeviceCommand } from '../../../commands/outlet.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { Backend, Instance } from './harness.ts'
import {
  PASSWORD,
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
  wsUrl,
} from './harness.ts'

const MAX_PAYLOAD = 4096
const V5: IClientOptions = { protocolVersion: 5 }
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

async function tenantWithDevice(device = 'dev', quota?: number): Promise<string> {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, {
    enabled: true,
    ...(quota === undefined ? {} : { quotas: { maxMessagesPerSecond: quota } }),
  })
  await deviceWithPassword(backend, tenant, device)
  return tenant
}

/** The PUBACK reason code of a QoS 1 PUBLISH: 0 when accepted (MQTT.js rejects with the code). */
async function pubackCode(
  client: MqttClient,
  topic: string,
  payload: Buffer | string,
  properties: Record<string, unknown> = {},
): Promise<number> {
  try {
    await client.publishAsync(topic, payload, { qos: 1, properties })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

/** Resolves with the server's DISCONNECT packet. */
function disconnectOf(client: MqttClient): Promise<IDisconnectPacket> {
  return new Promise((resolve) => client.once('disconnect', resolve))
}

describe('MQTT 5 CONNECT', () => {
  it('answers CONNACK 0x00 with the server limits as properties (§3.2.2.3)', async () => {
    const tenant = await tenantWithDevice()
    const client = mqtt.connect(tcpUrl(instance), {
      ...V5,
      ...login('dev', tenant),
      reconnectPeriod: 0,
      clientId: '',
      properties: { sessionExpiryInterval: 300 },
    })
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    })
    expect(connack.reasonCode).toBe(0)
    // Absent: wildcards are available, for the filters a device may hold (§3.2.2.3.16).
    expect(connack.properties?.wildcardSubscriptionAvailable).toBeUndefined()
    expect(connack.properties).toMatchObject({
      receiveMaximum: 64,
      maximumQoS: 1,
      retainAvailable: false,
      topicAliasMaximum: 16,
      maximumPacketSize: MAX_PAYLOAD + 2048,
      sessionExpiryInterval: 0,
      sharedSubscriptionAvailable: false,
      // [MQTT-3.2.2-16] a zero-length client id gets one.
      assignedClientIdentifier: `${tenant}/dev`,
    })
    await client.endAsync()
  })

  it('refuses a wrong password with CONNACK 0x86 and a tenant over its connections with 0x97', async () => {
    const tenant = await tenantWithDevice()
    const wrong = await connect(tcpUrl(instance), { ...V5, ...login('dev', tenant, 'nope') }).then(
      () => undefined,
      (err: { code?: number }) => err.code,
    )
    expect(wrong).toBe(0x86)
    const unknown = await connect(tcpUrl(instance), { ...V5, ...login('ghost', tenant) }).then(
      () => undefined,
      (err: { code?: number }) => err.code,
    )
    expect(unknown).toBe(0x86)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'bad-secret' })).toBeGreaterThan(
      0,
    )
  })
})

describe('MQTT 5 PUBLISH', () => {
  it('makes QoS 1 and 0 telemetry events, with Content Type, Payload Format Indicator and traceparent', async () => {
    const tenant = await tenantWithDevice('s1')
    const client = await connect(tcpUrl(instance), { ...V5, ...login('s1', tenant) })
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    expect(
      await pubackCode(client, 'temp', '{"c":21}', {
        contentType: 'application/json',
        userProperties: { traceparent },
      }),
    ).toBe(0)
    await client.publishAsync('note', 'héllo', { qos: 0, properties: { payloadFormatIndicator: true } })
    expect(await pubackCode(client, 'raw', Buffer.from([0, 255]))).toBe(0)
    await client.endAsync()

    const events = await backend.waitFor(ofDevice(tenant, 's1'), 5)
    expect(events.map((r) => (isTelemetry(r) ? r.event.attributes.subject : 'connection'))).toEqual([
      'connection',
      'temp',
      'note',
      'raw',
      'connection',
    ])
    expect(events[1]!.event.attributes).toMatchObject({ datacontenttype: 'application/json', traceparent })
    expect(events[1]!.data).toBe('{"c":21}')
    expect(events[2]!.event.attributes.datacontenttype).toBe('text/plain; charset=utf-8')
    expect(events[3]!.event.attributes.datacontenttype).toBeUndefined()
    expect(connectionData(events[4]!).reason).toBe('client-disconnect')
  })

  it('refuses with PUBACK reason codes and keeps the session [MQTT-3.4.2-1]', async () => {
    const tenant = await tenantWithDevice('s2')
    await backend.registry.createDevice(tenant, 'other', { enabled: true })
    const client = await connect(tcpUrl(instance), { ...V5, ...login('s2', tenant) })
    let closedEarly = false
    client.once('close', () => (closedEarly = true))
    expect(await pubackCode(client, 'command/x', 'a')).toBe(0x90) // reserved level
    expect(await pubackCode(client, 'gw/other/temp', 'a')).toBe(0x87) // not its gateway
    // 0x95 is no PUBACK code [MQTT-3.4.2-1]: a payload over the limit is an administrative limit, 0x97.
    expect(await pubackCode(client, 'big', Buffer.alloc(MAX_PAYLOAD + 1))).toBe(0x97)
    expect(await pubackCode(client, 'utf8', Buffer.from([0xff]), { payloadFormatIndicator: true })).toBe(0x99)
    expect(await pubackCode(client, 'json', 'not json', { contentType: 'application/json' })).toBe(0x99)
    expect(await pubackCode(client, 'ok', 'still here')).toBe(0)
    expect(closedEarly).toBe(false)
    await client.endAsync()
    const telemetry = (await backend.waitFor(ofDevice(tenant, 's2'), 3)).filter(isTelemetry)
    expect(telemetry.map((r) => r.event.attributes.subject)).toEqual(['ok'])
    expect(
      await instance.metric('tributary_mqtt_refusals_total', { reason: 'gateway-not-allowed' }),
    ).toBeGreaterThan(0)
  })

  it('answers 0x97 quota exceeded over the tenant rate', async () => {
    const tenant = await tenantWithDevice('s3', 0)
    const client = await connect(tcpUrl(instance), { ...V5, ...login('s3', tenant) })
    expect(await pubackCode(client, 'temp', '1')).toBe(0x97)
    expect(client.connected).toBe(true)
    await client.endAsync()
  })

  it('reads topic aliases the device set (§3.3.2.3.4)', async () => {
    const tenant = await tenantWithDevice('s4')
    const client = await connect(tcpUrl(instance), { ...V5, ...login('s4', tenant) })
    expect(await pubackCode(client, 'long/telemetry/topic', 'one', { topicAlias: 3 })).toBe(0)
    expect(await pubackCode(client, '', 'two', { topicAlias: 3 })).toBe(0)
    await client.endAsync()
    const telemetry = (await backend.waitFor(ofDevice(tenant, 's4'), 4)).filter(isTelemetry)
    expect(telemetry.map((r) => [r.event.attributes.subject, r.data])).toEqual([
      ['long/telemetry/topic', 'one'],
      ['long/telemetry/topic', 'two'],
    ])
  })

  it('serves MQTT 5 over WebSocket too', async () => {
    const tenant = await tenantWithDevice('s5')
    const client = await connect(wsUrl(instance), { ...V5, ...login('s5', tenant) })
    expect(await pubackCode(client, 'temp', '7')).toBe(0)
    await client.endAsync()
    const events = await backend.waitFor(ofDevice(tenant, 's5'), 3)
    expect(connectionData(events[0]!).listener).toBe('mqtt-ws')
  })

  it('grants command, configuration and upload-token filters as on 3.1.1, 0x87 for the rest', async () => {
    const tenant = await tenantWithDevice('s6')
    const client = await connect(tcpUrl(instance), { ...V5, ...login('s6', tenant) })
    // MQTT.js rejects a SUBACK with a failure code, carrying the packet.
    const suback = await client
      .subscribeAsync(
        ['command/#', 'config', 'config/res/+', 'files/token/res/+', 'someone/else', 'config/x'],
        {
          qos: 1,
        },
      )
      .then(
        () => undefined,
        (err: { packet?: { granted?: unknown } }) => err.packet?.granted,
      )
    expect(suback).toEqual([1, 1, 1, 1, 0x87, 0x87])
    expect(client.connected).toBe(true)
    await client.endAsync()
  })
})

describe('MQTT 5 configuration and upload tokens', () => {
  it('sends the configuration on SUBSCRIBE, answers config/req/<id>, and refuses a bad report with PUBACK 0x99', async () => {
    const tenant = await tenantWithDevice('c5')
    await backend.registry.putConfig(tenant, { level: 'device', device: 'c5' }, { interval: 30 })
    const client = await connect(tcpUrl(instance), { ...V5, ...login('c5', tenant) })
    const received: Array<{
      topic: string
      body: { configId: string; config?: unknown }
      type?: string | undefined
    }> = []
    client.on('message', (topic, payload, packet) =>
      received.push({
        topic,
        body: JSON.parse(payload.toString()) as { configId: string; config?: unknown },
        type: packet.properties?.contentType,
      }),
    )
    await client.subscribeAsync(['config', 'config/res/+'], { qos: 1 })
    await waitUntil(() => received.length === 1)
    expect(received[0]).toMatchObject({
      topic: 'config',
      body: { config: { interval: 30 } },
      type: 'application/json',
    })
    const { configId } = received[0]!.body
    // Asked with the id it has: answered with the id alone.
    expect(await pubackCode(client, 'config/req/r1', JSON.stringify({ configId }))).toBe(0)
    await waitUntil(() => received.length === 2)
    expect(received[1]).toMatchObject({ topic: 'config/res/r1', body: { configId } })
    expect(received[1]!.body.config).toBeUndefined()
    expect(await pubackCode(client, 'config/applied', 'not json')).toBe(0x99)
    expect(await pubackCode(client, 'config/req/r2', '[1]')).toBe(0x99)
    expect(await pubackCode(client, 'config/applied', JSON.stringify({ configId }))).toBe(0)
    const [applied] = await backend.waitFor(
      (r) => ofDevice(tenant, 'c5')(r) && r.event.attributes.type === 'io.tributary.config.applied.v1',
    )
    expect(JSON.parse(applied!.data)).toMatchObject({ configId })
    expect(client.connected).toBe(true)
    await client.endAsync()
  })

  it('answers files/token/req/<id> on files/token/res/<id>, and a bad request id with PUBACK 0x90', async () => {
    const tenant = await tenantWithDevice('f5')
    const client = await connect(tcpUrl(instance), { ...V5, ...login('f5', tenant) })
    const answers: Array<{ topic: string; body: Record<string, unknown> }> = []
    client.on('message', (topic, payload) =>
      answers.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }),
    )
    await client.subscribeAsync('files/token/res/+', { qos: 1 })
    const declaration = JSON.stringify({ name: 'a.bin', size: 3 })
    expect(await pubackCode(client, 'files/token/req/t1', declaration)).toBe(0)
    await waitUntil(() => answers.length === 1)
    // This instance has no device HTTP listener to upload to: 503, as on 3.1.1.
    expect(answers[0]).toMatchObject({ topic: 'files/token/res/t1', body: { statusCode: 503 } })
    expect(await pubackCode(client, 'files/token/req/bad id', declaration)).toBe(0x90)
    expect(client.connected).toBe(true)
    await client.endAsync()
  })
})

describe('MQTT 5 configuration and upload tokens seen from another device', () => {
  it("never gives a device another device's configuration or token answers, in its tenant or another", async () => {
    const tenant = await tenantWithDevice('victim')
    await deviceWithPassword(backend, tenant, 'attacker')
    const other = await tenantWithDevice('victim')
    await backend.registry.putConfig(tenant, { level: 'device', device: 'victim' }, { secret: 'a' })
    await backend.registry.putConfig(other, { level: 'device', device: 'victim' }, { mine: 'b' })
    const attacker = await connect(tcpUrl(instance), { ...V5, ...login('attacker', tenant) })
    const foreign = await connect(tcpUrl(instance), { ...V5, ...login('victim', other) })
    const seen = { attacker: [] as string[], foreign: [] as string[] }
    attacker.on('message', (topic, payload) => seen.attacker.push(`${topic} ${payload.toString()}`))
    foreign.on('message', (topic, payload) => seen.foreign.push(`${topic} ${payload.toString()}`))
    const filters = [
      'gw/victim/config',
      'gw/+/config',
      'gw/victim/config/res/+',
      'gw/victim/files/token/res/+',
    ]
    const suback = await attacker.subscribeAsync(filters, { qos: 1 }).then(
      () => undefined,
      (err: { packet?: { granted?: unknown } }) => err.packet?.granted,
    )
    expect(suback).toEqual([0x87, 0x87, 0x87, 0x87])
    // Asking as the victim's gateway: PUBACK 0x87, and the session stays.
    expect(await pubackCode(attacker, 'gw/victim/config/req/x1', '{}')).toBe(0x87)
    expect(await pubackCode(attacker, 'gw/victim/files/token/req/x2', '{"name":"a","size":1}')).toBe(0x87)
    expect(await pubackCode(attacker, 'gw/victim/config/applied', '{"configId":"x"}')).toBe(0x87)
    // The same device name in another tenant gets its own configuration only.
    await foreign.subscribeAsync('config', { qos: 1 })
    await waitUntil(() => seen.foreign.length === 1)
    expect(seen.foreign[0]).toContain('"mine":"b"')
    // Then one of the attacker's own: anything of the victim's routed to it would have come first.
    await attacker.subscribeAsync('config', { qos: 1 })
    await waitUntil(() => seen.attacker.length === 1)
    expect(seen.attacker[0]).toMatch(/^config \{"configId":"[^"]+","config":\{\}\}$/)
    expect(attacker.connected).toBe(true)
    await attacker.endAsync()
    await foreign.endAsync()
  })
})

/** A command for `device`, on `command/<name>` or, with a request id, `command/<name>/req/<id>`. */
function command(tenant: string, device: string, name: string, requestId?: string): DeviceCommand {
  return {
    id: `${name}-${requestId ?? 'once'}-${Math.random()}`,
    tenant,
    device,
    name,
    payload: Buffer.from(name),
    contentType: undefined,
    requestId,
    fport: undefined,
    downlink: undefined,
    expiresAt: new Date(Date.now() + 60_000),
  }
}

/** Sends a raw MQTT 5 CONNECT and SUBSCRIBE from `device`; resolves with the packets it receives, once subscribed. */
async function rawSubscriber(tenant: string, device: string, topicAliasMaximum: number): Promise<Packet[]> {
  const socket = netConnect({ host: '127.0.0.1', port: instance.ports['mqtt']! })
  const packets: Packet[] = []
  const parser = createParser({ protocolVersion: 5 })
  parser.on('packet', (p: Packet) => packets.push(p))
  socket.on('data', (chunk: Buffer) => parser.parse(chunk))
  socket.write(
    generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: true,
        clientId: 'raw-aliases',
        keepalive: 60,
        username: `${device}@${tenant}`,
        password: Buffer.from(PASSWORD),
        properties: { topicAliasMaximum },
      },
      { protocolVersion: 5 },
    ),
  )
  await waitUntil(() => packets.some((p) => p.cmd === 'connack'), { message: () => 'CONNACK' })
  socket.write(
    generate(
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'command/#', qos: 0 }] },
      { protocolVersion: 5 },
    ),
  )
  await waitUntil(() => packets.some((p) => p.cmd === 'suback'), { message: () => 'SUBACK' })
  return packets
}

describe('MQTT 5 Topic Aliases to the device (§3.3.2.3.4)', () => {
  it('sends commands on a topic sent again by alias, which MQTT.js resolves to the same topics', async () => {
    const tenant = await tenantWithDevice('ta')
    const client = await connect(tcpUrl(instance), {
      ...V5,
      ...login('ta', tenant),
      properties: { topicAliasMaximum: 2 },
    })
    const received: Array<[string, string, number | undefined]> = []
    client.on('message', (topic, payload, packet) =>
      received.push([topic, payload.toString(), packet.properties?.topicAlias]),
    )
    await client.subscribeAsync('command/#', { qos: 1 })
    const sink = await instance.commands.sink(tenant, 'ta')
    for (const sent of [
      command(tenant, 'ta', 'reboot'),
      command(tenant, 'ta', 'reboot'),
      command(tenant, 'ta', 'get', 'r1'),
      command(tenant, 'ta', 'reboot'),
      command(tenant, 'ta', 'reboot'),
    ]) {
      expect(await sink.deliver(sent)).toEqual({ kind: 'delivered' })
    }
    await waitUntil(() => received.length === 5)
    expect(received).toEqual([
      ['command/reboot', 'reboot', undefined],
      ['command/reboot', 'reboot', 1],
      ['command/get/req/r1', 'get', undefined],
      ['command/reboot', 'reboot', 1],
      ['command/reboot', 'reboot', 1],
    ])
    expect(client.connected).toBe(true)
    await client.endAsync()
  })

  it('writes the alias with an empty Topic Name once it is set, and none to a client that allows none [MQTT-3.3.2-10]', async () => {
    const tenant = await tenantWithDevice('tr')
    await deviceWithPassword(backend, tenant, 'tn')
    const sent = async (device: string, topicAliasMaximum: number) => {
      const packets = await rawSubscriber(tenant, device, topicAliasMaximum)
      const sink = await instance.commands.sink(tenant, device)
      for (let i = 0; i < 3; i++) {
        expect(await sink.deliver(command(tenant, device, 'reboot'))).toEqual({ kind: 'delivered' })
      }
      await waitUntil(() => packets.filter((p) => p.cmd === 'publish').length === 3)
      return (packets.filter((p) => p.cmd === 'publish') as Array<Packet & { topic: string }>).map((p) => [
        p.topic,
        (p as { properties?: { topicAlias?: number } }).properties?.topicAlias,
      ])
    }
    expect(await sent('tr', 2)).toEqual([
      ['command/reboot', undefined],
      ['command/reboot', 1],
      ['', 1],
    ])
    expect(await sent('tn', 0)).toEqual([
      ['command/reboot', undefined],
      ['command/reboot', undefined],
      ['command/reboot', undefined],
    ])
  })
})

describe('MQTT 5 DISCONNECT from the server', () => {
  it('sends 0x95 when a packet declares more than the Maximum Packet Size, before reading it', async () => {
    const tenant = await tenantWithDevice('d0')
    const socket = netConnect({ host: '127.0.0.1', port: instance.ports['mqtt']! })
    const packets: Packet[] = []
    const parser = createParser({ protocolVersion: 5 })
    parser.on('packet', (p: Packet) => packets.push(p))
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.write(
      generate(
        {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clean: true,
          clientId: 'raw',
          keepalive: 60,
          username: `d0@${tenant}`,
          password: Buffer.from(PASSWORD),
        },
        { protocolVersion: 5 },
      ),
    )
    await waitUntil(() => packets.some((p) => p.cmd === 'connack'), {
      timeoutMs: 10_000,
      message: () => 'CONNACK',
    })
    // A PUBLISH header announcing 1 MB: the adapter stops at the length, it never buffers the body.
    socket.write(Buffer.from([0x32, 0x80, 0x80, 0x40]))
    await closed
    expect(packets.map((p) => [p.cmd, (p as { reasonCode?: number }).reasonCode])).toEqual([
      ['connack', 0],
      ['disconnect', 0x95],
    ])
    expect(
      await instance.metric('tributary_mqtt_refusals_total', { reason: 'packet-too-large' }),
    ).toBeGreaterThan(0)
  })

  it('sends 0x8E to the connection a new one of the same device took over [MQTT-3.1.4-3]', async () => {
    const tenant = await tenantWithDevice('d1')
    const first = await connect(tcpUrl(instance), { ...V5, ...login('d1', tenant) })
    const told = disconnectOf(first)
    const second = await connect(tcpUrl(instance), { ...V5, ...login('d1', tenant) })
    expect((await told).reasonCode).toBe(0x8e)
    await second.endAsync()
    const reasons = (await backend.waitFor((r) => ofDevice(tenant, 'd1')(r) && isConnection(r), 4)).map(
      (r) => connectionData(r).reason ?? connectionData(r).status,
    )
    expect(reasons).toContain('takeover')
    first.end(true)
  })

  it('sends 0x87 when the device is disabled, and 0x8B when the adapter stops', async () => {
    const tenant = await tenantWithDevice('d2')
    const client = await connect(tcpUrl(instance), { ...V5, ...login('d2', tenant) })
    const told = disconnectOf(client)
    await backend.registry.updateDevice(tenant, 'd2', { enabled: false })
    expect((await told).reasonCode).toBe(0x87)
    client.end(true)

    const other = await startInstance(backend)
    await deviceWithPassword(backend, tenant, 'd3')
    const last = await connect(tcpUrl(other), { ...V5, ...login('d3', tenant) })
    const stopping = disconnectOf(last)
    await other.stop()
    expect((await stopping).reasonCode).toBe(0x8b)
    last.end(true)
  })
})
