// The device MQTT endpoint as devices and data engineers meet it: a running `tributary start` on
// the Kafka bus, driven with mosquitto_pub/mosquitto_sub (passwords, client certificates, PSK) and
// MQTT.js over WebSocket; what it wrote is read back from Kafka with kcat (key, ce_ headers, value).
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pki } from '../fixtures/pki.ts'
import {
  connectionData,
  isConnection,
  isTelemetry,
  metricValue,
  mosquitto,
  rawSession,
  readTopic,
  startMqttE2e,
  waitForRecords,
  within,
} from '../helpers/mqtt.ts'
import type { KafkaRecord, MqttTributary, ToolResult } from '../helpers/mqtt.ts'
import { uniqueName } from '../helpers/wait.ts'

const MAX_PAYLOAD = 1024
const PASSWORD = 'correct horse battery'
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
// What mosquitto_pub prints for the CONNACK refusals (MQTT 3.1.1 §3.2.2.3): 4 when the credentials
// do not identify an enabled device, 5 when they do but the tenant's policy refuses them.
const BAD_CREDENTIALS = 'Connection Refused: bad user name or password.'
const NOT_AUTHORISED = 'Connection Refused: not authorised.'

let brokers = ''
let ingress = ''
let pki: Pki
let tributary: MqttTributary

beforeAll(async () => {
  ;({ brokers, ingress, pki, tributary } = await startMqttE2e('e2e_mqtt', {
    TRIBUTARY_MQTT_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD),
  }))
})

afterAll(async () => {
  const code = await tributary?.proc.stop('SIGTERM')
  pki?.remove()
  expect(code).toBe(0)
})

const newTenant = (): string => uniqueName('mq')
const plain = (): string[] => ['-h', '127.0.0.1', '-p', String(tributary.ports.mqtt)]
const tls = (): string[] => [
  '-h',
  '127.0.0.1',
  '-p',
  String(tributary.ports.mqtts),
  '--cafile',
  pki.serverCa.certFile,
]
const login = (device: string, tenant: string, password = PASSWORD): string[] => [
  '-u',
  `${device}@${tenant}`,
  '-P',
  password,
]
const pub = (args: string[]): Promise<ToolResult> => mosquitto('mosquitto_pub', ['-q', '1', ...args])
const marker = (): string => JSON.stringify({ id: uniqueName('msg'), celsius: 21.5 })

/** A device with the shared test password. */
async function deviceWithPassword(tenant: string, device: string) {
  await tributary.api.createDevice(tenant, device)
  await tributary.api.setPassword(tenant, device, PASSWORD)
}

const keyed =
  (tenant: string, device: string) =>
  (r: KafkaRecord): boolean =>
    r.key === `${tenant}/${device}`

/** tributary_mqtt_refusals_total by reason, as an operator scrapes it. */
async function refusals(...reasons: string[]): Promise<Record<string, number>> {
  const port = tributary.ports.management
  const values = await Promise.all(
    reasons.map((reason) => metricValue(port, 'tributary_mqtt_refusals_total', { reason })),
  )
  return Object.fromEntries(reasons.map((reason, i) => [reason, values[i]!]))
}

/** How much each counter grew. */
const grew = (before: Record<string, number>, after: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]))

/** Records of a tenant on ingress right now (after a positive control has been awaited). */
async function tenantRecords(tenant: string): Promise<KafkaRecord[]> {
  return (await readTopic(brokers, ingress)).filter((r) => r.headers['ce_tenant'] === tenant)
}

describe('MQTT adapter (e2e: mosquitto clients, MQTT.js, kcat)', () => {
  it('turns a QoS 1 publish with a password into a telemetry CloudEvent on Kafka, between connection events', async () => {
    const tenant = newTenant()
    const device = 'boiler-7'
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, device)
    const payload = marker()

    const result = await pub([
      ...plain(),
      ...login(device, tenant),
      '-t',
      'sensors/temperature',
      '-m',
      payload,
    ])
    expect(result).toMatchObject({ code: 0, stderr: '' })

    // connected, the telemetry, disconnected: one key, so one partition, in this order.
    const records = await waitForRecords(brokers, ingress, keyed(tenant, device), { count: 3 })
    expect(records.map((r) => r.headers['ce_type'])).toEqual([
      'io.tributary.connection.v1',
      'io.tributary.telemetry.v1',
      'io.tributary.connection.v1',
    ])
    const telemetry = records[1]!
    expect(telemetry.key).toBe(`${tenant}/${device}`)
    expect(telemetry.payload).toBe(payload)
    expect(telemetry.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_type: 'io.tributary.telemetry.v1',
      ce_source: `tributary://${tenant}/${device}`,
      ce_subject: 'sensors/temperature',
      ce_tenant: tenant,
      ce_device: device,
      ce_protocol: 'mqtt',
    })
    expect(telemetry.headers['ce_id']).toMatch(UUID_V7)
    // partitionkey travels as the record key, not as a header (Kafka binding §3.1).
    expect(telemetry.headers['ce_partitionkey']).toBeUndefined()
    expect(telemetry.headers['ce_sender']).toBeUndefined()
    expect(Date.parse(telemetry.headers['ce_time'] ?? '')).toBeGreaterThan(Date.now() - 60_000)

    const [connected, disconnected] = [records[0]!, records[2]!]
    for (const event of [connected, disconnected]) {
      expect(event.headers).toMatchObject({ ce_tenant: tenant, ce_device: device, ce_protocol: 'mqtt' })
    }
    expect(connectionData(connected)).toMatchObject({ status: 'connected', listener: 'mqtt' })
    expect(connectionData(disconnected)).toMatchObject({
      status: 'disconnected',
      listener: 'mqtt',
      reason: 'client-disconnect',
    })
    expect(connectionData(connected).remote).toMatch(/^127\.0\.0\.1:\d+$/)

    // What an operator scrapes: the message and its bytes for the tenant, and an acknowledgement time.
    const port = tributary.ports.management
    expect(await metricValue(port, 'tributary_mqtt_messages_in_total', { tenant })).toBe(1)
    expect(await metricValue(port, 'tributary_mqtt_bytes_in_total', { tenant })).toBe(payload.length)
    expect(await metricValue(port, 'tributary_mqtt_ack_duration_seconds_count')).toBeGreaterThan(0)
  })

  it('takes QoS 0 and QoS 2 too: one record each', async () => {
    const tenant = newTenant()
    const device = 'qos-dev'
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, device)
    const [qos0, qos2] = [marker(), marker()]

    const as = [...plain(), ...login(device, tenant)]
    expect(await mosquitto('mosquitto_pub', [...as, '-q', '0', '-t', 'q/zero', '-m', qos0])).toMatchObject({
      code: 0,
    })
    expect(await mosquitto('mosquitto_pub', [...as, '-q', '2', '-t', 'q/two', '-m', qos2])).toMatchObject({
      code: 0,
      stderr: '',
    })
    const records = await waitForRecords(
      brokers,
      ingress,
      (r) => r.key === `${tenant}/${device}` && isTelemetry(r),
      {
        count: 2,
      },
    )
    expect(records.map((r) => [r.headers['ce_subject'], r.payload])).toEqual([
      ['q/zero', qos0],
      ['q/two', qos2],
    ])
  })

  it("takes a bearer device token as the password, not under another device's name nor forged", async () => {
    const tenant = newTenant()
    const device = 'token-dev'
    await tributary.api.createTenant(tenant)
    await tributary.api.createDevice(tenant, device)
    await deviceWithPassword(tenant, 'other-dev')
    const { secret } = await tributary.api.addCredential(tenant, device, { type: 'token' })
    expect(secret).toMatch(/^tdt_/)
    const token = secret!
    const payloads: string[] = []

    // With the device's own name, or an empty one (3.1.1 sends no password without a user name).
    for (const username of [`${device}@${tenant}`, '']) {
      const payload = marker()
      payloads.push(payload)
      const accepted = await pub([...plain(), '-u', username, '-P', token, '-t', 'tok', '-m', payload])
      expect(accepted, username).toMatchObject({ code: 0, stderr: '' })
    }
    const forged = `${token.slice(0, -4)}${token.endsWith('aaaa') ? 'bbbb' : 'aaaa'}`
    for (const [username, password] of [
      [`other-dev@${tenant}`, token],
      [`${device}@${tenant}`, forged],
    ] as const) {
      const refused = await pub([...plain(), '-u', username, '-P', password, '-t', 'tok', '-m', 'refused'])
      expect(refused.code, username).not.toBe(0)
      expect(refused.stderr).toContain(BAD_CREDENTIALS)
    }
    await waitForRecords(brokers, ingress, (r) => r.payload === payloads[1])
    const seen = await tenantRecords(tenant)
    expect(seen.filter(isTelemetry).map((r) => [r.headers['ce_device'], r.payload])).toEqual(
      payloads.map((p) => [device, p]),
    )
  })

  it('refuses a wrong password, an unknown device and a disabled device with a CONNACK refusal, writing nothing', async () => {
    const tenant = newTenant()
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'meter-1')
    await deviceWithPassword(tenant, 'meter-off')
    await tributary.api.patchDevice(tenant, 'meter-off', { enabled: false })
    const reasons = ['bad-secret', 'unknown', 'disabled', 'missing-credentials']
    const before = await refusals(...reasons)

    const attempts = {
      wrongPassword: await pub([
        ...plain(),
        ...login('meter-1', tenant, 'not the password'),
        '-t',
        'a',
        '-m',
        'x',
      ]),
      unknownDevice: await pub([...plain(), ...login('ghost', tenant), '-t', 'a', '-m', 'x']),
      unknownTenant: await pub([...plain(), ...login('meter-1', newTenant()), '-t', 'a', '-m', 'x']),
      disabledDevice: await pub([...plain(), ...login('meter-off', tenant), '-t', 'a', '-m', 'x']),
      noCredentials: await pub([...plain(), '-t', 'a', '-m', 'x']),
    }
    for (const [name, result] of Object.entries(attempts)) {
      expect(result.code, name).not.toBe(0)
      expect(result.stderr, name).toContain(BAD_CREDENTIALS)
    }
    // Each refusal is counted by its reason and logged with it, never with the password tried.
    expect(grew(before, await refusals(...reasons))).toEqual({
      'bad-secret': 1,
      unknown: 2,
      disabled: 1,
      'missing-credentials': 1,
    })
    const refusedLog = tributary.proc.lines.filter(
      (l) => l.msg === 'MQTT connection refused' && l['username'] === `meter-1@${tenant}`,
    )
    expect(refusedLog.map((l) => l['reason'])).toEqual(['bad-secret'])
    expect(JSON.stringify(tributary.proc.lines)).not.toContain('not the password')

    // A positive control, then nothing else from this tenant: refused connections write no event.
    const payload = marker()
    expect(await pub([...plain(), ...login('meter-1', tenant), '-t', 'ok', '-m', payload])).toMatchObject({
      code: 0,
    })
    await waitForRecords(brokers, ingress, (r) => r.payload === payload)
    const seen = await tenantRecords(tenant)
    expect(seen.filter(isTelemetry).map((r) => r.payload)).toEqual([payload])
    expect(new Set(seen.map((r) => r.key))).toEqual(new Set([`${tenant}/meter-1`]))
  })

  it('takes a password over TLS, verified against the server CA', async () => {
    const tenant = newTenant()
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'tls-pw')
    const payload = marker()

    const result = await pub([...tls(), ...login('tls-pw', tenant), '-t', 'secure/ch', '-m', payload])
    expect(result).toMatchObject({ code: 0, stderr: '' })
    const records = await waitForRecords(brokers, ingress, keyed(tenant, 'tls-pw'), { count: 3 })
    expect(records.find(isTelemetry)).toMatchObject({ payload, headers: { ce_subject: 'secure/ch' } })
    expect(records.filter(isConnection).map((r) => connectionData(r).listener)).toEqual(['mqtts', 'mqtts'])
  })

  it("takes a client certificate signed by the tenant's trust anchor, without a password, and refuses one from an unknown CA", async () => {
    const tenant = newTenant()
    const device = 'cert-dev-1'
    await tributary.api.createTenant(tenant)
    await tributary.api.patchTenant(tenant, { trustAnchors: [pki.deviceCa.pem] })
    await tributary.api.createDevice(tenant, device)
    await tributary.api.addCredential(tenant, device, { type: 'x509', subjectCn: device })
    const good = await pki.issueDevice(device)
    const rogue = await pki.issueDevice(device, 'rogue')
    const withCert = (cert: { certFile: string; keyFile: string }, username?: string): string[] => [
      ...tls(),
      ...['--cert', cert.certFile, '--key', cert.keyFile],
      ...(username === undefined ? [] : ['-u', username]),
    ]
    const refusedPayload = marker()

    // The tenant is named in the username (with the device, or alone), or found from the issuer.
    for (const username of [`${device}@${tenant}`, `@${tenant}`, undefined]) {
      const refused = await pub([...withCert(rogue, username), '-t', 'cert/ch', '-m', refusedPayload])
      expect(refused.code, username).not.toBe(0)
      expect(refused.stderr).toContain(BAD_CREDENTIALS)
      const payload = marker()
      const accepted = await pub([...withCert(good, username), '-t', 'cert/ch', '-m', payload])
      expect(accepted, username).toMatchObject({ code: 0, stderr: '' })
      const records = await waitForRecords(brokers, ingress, (r) => r.payload === payload)
      expect(records[0]!.headers).toMatchObject({
        ce_tenant: tenant,
        ce_device: device,
        ce_subject: 'cert/ch',
      })
    }
    expect((await tenantRecords(tenant)).some((r) => r.payload === refusedPayload)).toBe(false)
  })

  it('takes TLS-PSK with identity <device>@<tenant> and the key the API generated', async () => {
    const tenant = newTenant()
    const device = 'psk-dev'
    await tributary.api.createTenant(tenant)
    await tributary.api.createDevice(tenant, device)
    const { secret } = await tributary.api.addCredential(tenant, device, { type: 'psk' })
    expect(secret).toMatch(/^[0-9a-f]{32,128}$/)
    const psk = [
      '-h',
      '127.0.0.1',
      '-p',
      String(tributary.ports.mqtts),
      '--psk-identity',
      `${device}@${tenant}`,
    ]
    const refusedPayload = marker()

    // TLS 1.3 (mosquitto's default) and TLS 1.2 PSK suites: a key that is not the device's ends in
    // a failed handshake, never in a session (not even through a certificate handshake fallback).
    for (const version of ['tlsv1.3', 'tlsv1.2']) {
      const tlsVersion = ['--tls-version', version]
      const wrongKey = await pub([
        ...psk,
        ...tlsVersion,
        ...['--psk', randomBytes(32).toString('hex'), '-t', 'psk/ch', '-m', refusedPayload],
      ])
      expect(wrongKey.code, `${version}: ${wrongKey.stdout}${wrongKey.stderr}`).not.toBe(0)
      expect(wrongKey.stderr).toContain('A TLS error occurred')
      const payload = marker()
      const result = await pub([...psk, ...tlsVersion, '--psk', secret!, '-t', 'psk/ch', '-m', payload])
      expect(result, version).toMatchObject({ code: 0, stderr: '' })
      const records = await waitForRecords(brokers, ingress, (r) => r.payload === payload)
      expect(records[0]!.headers).toMatchObject({
        ce_tenant: tenant,
        ce_device: device,
        ce_subject: 'psk/ch',
      })
    }
    expect((await tenantRecords(tenant)).filter((r) => r.payload === refusedPayload)).toEqual([])
  })

  it('refuses a password where the tenant allows certificates only, and still takes the certificate', async () => {
    const tenant = newTenant()
    const device = 'strict-dev'
    await tributary.api.createTenant(tenant, { authMethods: ['x509'], trustAnchors: [pki.otherDeviceCa.pem] })
    await deviceWithPassword(tenant, device)
    await tributary.api.addCredential(tenant, device, { type: 'x509', subjectCn: device })
    const cert = await pki.issueDevice(device, 'other')

    for (const args of [plain(), tls()]) {
      const result = await pub([...args, ...login(device, tenant), '-t', 'x', '-m', 'pw'])
      expect(result.code).not.toBe(0)
      expect(result.stderr).toContain(NOT_AUTHORISED)
    }
    const payload = marker()
    const withCert = [...tls(), '--cert', cert.certFile, '--key', cert.keyFile, '-u', `${device}@${tenant}`]
    expect(await pub([...withCert, '-t', 'x', '-m', payload])).toMatchObject({ code: 0, stderr: '' })
    await waitForRecords(brokers, ingress, (r) => r.payload === payload)
    expect((await tenantRecords(tenant)).filter(isTelemetry).map((r) => r.payload)).toEqual([payload])
  })

  it('takes MQTT.js over WebSocket on /mqtt (subprotocol mqtt): PUBACK, then the record on Kafka', async () => {
    const tenant = newTenant()
    const device = 'browser-1'
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, device)
    const url = `ws://127.0.0.1:${tributary.ports.mqttWs}/mqtt`

    // The WebSocket handshake agrees on the `mqtt` subprotocol.
    const socket = new WebSocket(url, ['mqtt'])
    const protocol = await new Promise<string>((resolve, reject) => {
      socket.once('open', () => resolve(socket.protocol))
      socket.once('error', reject)
    })
    socket.close()
    expect(protocol).toBe('mqtt')
    // Any other path is not the MQTT endpoint.
    const elsewhere = new WebSocket(`ws://127.0.0.1:${tributary.ports.mqttWs}/other`, ['mqtt'])
    const status = await new Promise<number | undefined>((resolve) => {
      elsewhere.once('unexpected-response', (_request, response) => resolve(response.statusCode))
      elsewhere.once('open', () => resolve(undefined))
      elsewhere.once('error', () => resolve(undefined))
    })
    elsewhere.terminate()
    expect(status).toBe(404)
    const noSubprotocol = new WebSocket(url)
    const refusedStatus = await new Promise<number | undefined>((resolve) => {
      noSubprotocol.once('unexpected-response', (_request, response) => resolve(response.statusCode))
      noSubprotocol.once('open', () => resolve(undefined))
      noSubprotocol.once('error', () => resolve(undefined))
    })
    noSubprotocol.terminate()
    expect(refusedStatus).toBe(400)
    expect((await fetch(`http://127.0.0.1:${tributary.ports.mqttWs}/mqtt`)).status).toBe(426)

    const client = await mqtt.connectAsync(url, {
      username: `${device}@${tenant}`,
      password: PASSWORD,
      protocolVersion: 4,
      reconnectPeriod: 0,
    })
    const payload = marker()
    try {
      const acked = await client.publishAsync('ws/reading', payload, { qos: 1 })
      expect(acked).toMatchObject({ cmd: 'publish', qos: 1, topic: 'ws/reading' })
    } finally {
      await client.endAsync()
    }
    const records = await waitForRecords(brokers, ingress, keyed(tenant, device), { count: 3 })
    expect(records[1]).toMatchObject({
      payload,
      headers: { ce_type: 'io.tributary.telemetry.v1', ce_subject: 'ws/reading', ce_protocol: 'mqtt' },
    })
    expect(records.filter(isConnection).map((r) => connectionData(r))).toMatchObject([
      { status: 'connected', listener: 'mqtt-ws' },
      { status: 'disconnected', listener: 'mqtt-ws', reason: 'client-disconnect' },
    ])
  })

  it('lets a gateway publish for a device that lists it (ce_sender = gateway) and refuses it for one that does not', async () => {
    const tenant = newTenant()
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'gw-1')
    await tributary.api.createDevice(tenant, 'child-1', { gateways: ['gw-1'] })
    await tributary.api.createDevice(tenant, 'orphan-1')

    const payload = marker()
    const forChild = await pub([...plain(), ...login('gw-1', tenant), '-t', 'gw/child-1/temp', '-m', payload])
    expect(forChild).toMatchObject({ code: 0, stderr: '' })
    const [record] = await waitForRecords(brokers, ingress, (r) => r.payload === payload)
    expect(record!.key).toBe(`${tenant}/child-1`)
    expect(record!.headers).toMatchObject({
      ce_type: 'io.tributary.telemetry.v1',
      ce_tenant: tenant,
      ce_device: 'child-1',
      ce_sender: 'gw-1',
      ce_subject: 'temp',
      ce_source: `tributary://${tenant}/child-1`,
    })

    const before = await refusals('gateway-not-allowed')
    const refusedPayload = marker()
    const forOrphan = await pub([
      ...plain(),
      ...login('gw-1', tenant),
      '-t',
      'gw/orphan-1/temp',
      '-m',
      refusedPayload,
    ])
    expect(forOrphan.code).not.toBe(0)
    expect(grew(before, await refusals('gateway-not-allowed'))).toEqual({ 'gateway-not-allowed': 1 })
    const control = marker()
    expect(
      await pub([...plain(), ...login('gw-1', tenant), '-t', 'gw/child-1/temp', '-m', control]),
    ).toMatchObject({
      code: 0,
    })
    await waitForRecords(brokers, ingress, (r) => r.payload === control)
    const seen = await tenantRecords(tenant)
    expect(seen.some((r) => r.payload === refusedPayload)).toBe(false)
    expect(seen.some((r) => r.key === `${tenant}/orphan-1`)).toBe(false)
  })

  it("closes the connection of a device past its tenant's publish rate, with reason rate-limited", async () => {
    const tenant = newTenant()
    const device = 'chatty-1'
    // One message a second, bursts of two (twice the rate).
    await tributary.api.createTenant(tenant, { quotas: { maxMessagesPerSecond: 1 } })
    await deviceWithPassword(tenant, device)
    const before = await refusals('rate-limited')

    const result = await pub([
      ...plain(),
      ...login(device, tenant),
      '-t',
      'fast',
      '-m',
      marker(),
      '--repeat',
      '10',
    ])
    expect(result.code).not.toBe(0)
    expect(grew(before, await refusals('rate-limited'))).toEqual({ 'rate-limited': 1 })
    const records = await waitForRecords(
      brokers,
      ingress,
      (r) =>
        r.key === `${tenant}/${device}` && isConnection(r) && connectionData(r).status === 'disconnected',
    )
    expect(connectionData(records[0]!)).toMatchObject({ reason: 'rate-limited' })
    expect((await tenantRecords(tenant)).filter(isTelemetry)).toHaveLength(2)
  })

  it('ends the session of a device that goes silent past its keepalive, or sends a malformed packet, saying why', async () => {
    const tenant = newTenant()
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'silent-1')
    await deviceWithPassword(tenant, 'garbled-1')
    const login = (device: string) => ({
      username: `${device}@${tenant}`,
      password: PASSWORD,
      keepaliveSeconds: 1,
    })

    // Keepalive 1 s and no PINGREQ: the server closes within 1.5 × keepalive [MQTT-3.1.2-24].
    const silent = await rawSession(tributary.ports.mqtt, login('silent-1'))
    const garbled = await rawSession(tributary.ports.mqtt, login('garbled-1'))
    const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()))
    const [silentClosed, garbledClosed] = [closed(silent), closed(garbled)]
    garbled.write(Buffer.from([0x00, 0x00])) // packet type 0 is reserved [MQTT-2.2.1]
    await within(garbledClosed, 5_000, 'malformed packet')
    await within(silentClosed, 5_000, 'keepalive 1 s passed')

    const disconnects = await waitForRecords(
      brokers,
      ingress,
      (r) =>
        r.headers['ce_tenant'] === tenant && isConnection(r) && connectionData(r).status === 'disconnected',
      { count: 2 },
    )
    const reasons = Object.fromEntries(
      disconnects.map((r) => [r.headers['ce_device'], connectionData(r).reason]),
    )
    expect(reasons).toEqual({ 'silent-1': 'keepalive-timeout', 'garbled-1': 'protocol-error' })
  })

  it('refuses reserved topics, retained messages, oversized payloads, over-deep topics and subscriptions to other devices', async () => {
    const tenant = newTenant()
    const device = 'limits-1'
    await tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, device)
    await deviceWithPassword(tenant, 'neighbour')
    const as = [...plain(), ...login(device, tenant)]
    const reasons = [
      'reserved-topic',
      'retained',
      'invalid-topic',
      'payload-too-large',
      'packet-too-large',
      'subscribe-refused',
    ]
    const before = await refusals(...reasons)
    const refusedPayloads: string[] = []
    // A refused QoS 1 publish ends the connection before any PUBACK (MQTT 3.1.1 has no negative
    // PUBACK): mosquitto_pub says "The connection was lost" and exits non-zero.
    const refusedPub = async (name: string, args: string[], payload = marker()) => {
      refusedPayloads.push(payload)
      const result = await pub([...as, ...args, '-m', payload])
      expect(result.code, `${name}: ${result.stderr}`).not.toBe(0)
    }

    for (const reserved of ['command/x', 'config/x', 'files/x', `gw/${device}/command/x`]) {
      await refusedPub(`reserved ${reserved}`, ['-t', reserved])
    }
    await refusedPub('gw without a channel', ['-t', 'gw/x'])
    await refusedPub('nine levels', ['-t', 'a/b/c/d/e/f/g/h/i'])
    await refusedPub('retained', ['-r', '-t', 'retained/ch'])
    await refusedPub('oversized', ['-t', 'big'], 'x'.repeat(MAX_PAYLOAD + 1))
    // Far too large: the connection ends as the packet's length is read, before it is buffered.
    await refusedPub('far too large', ['-t', 'huge'], 'x'.repeat(64 * 1024))

    // A device may not read another device's data: the SUBACK refuses it (mosquitto_sub then says
    // so and exits 0, so the message is what a user sees).
    const sub = await mosquitto('mosquitto_sub', [
      ...as,
      '-t',
      'neighbour/#',
      '-t',
      '#',
      '-C',
      '1',
      '-W',
      '5',
    ])
    expect(sub.stderr).toContain('All subscription requests were denied.')
    expect(grew(before, await refusals(...reasons))).toEqual({
      'reserved-topic': 4,
      retained: 1,
      'invalid-topic': 2,
      'payload-too-large': 1,
      'packet-too-large': 1,
      'subscribe-refused': 2,
    })

    // The limit is inclusive: exactly MAX_PAYLOAD bytes pass.
    const fits = JSON.stringify({ id: uniqueName('fits') }).padEnd(MAX_PAYLOAD, ' ')
    expect(await pub([...as, '-t', 'fits', '-m', fits])).toMatchObject({ code: 0 })
    await waitForRecords(brokers, ingress, (r) => r.payload === fits)
    const seen = await tenantRecords(tenant)
    expect(seen.filter((r) => refusedPayloads.includes(r.payload ?? ''))).toEqual([])
    expect(seen.filter(isTelemetry).map((r) => r.headers['ce_subject'])).toEqual(['fits'])
  })
})
