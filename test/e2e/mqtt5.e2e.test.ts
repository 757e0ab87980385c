// MQTT 5 devices as they meet a running `tributary start` on Kafka: mosquitto_pub -V mqttv5 -d (the
// PUBACK reason code in its debug output) and mosquitto_sub -V mqttv5 with every authentication mode
// (password, token, client certificate, TLS-PSK, gateways), and MQTT.js with protocolVersion 5 over
// WebSocket; what was written is read back from Kafka with kcat.
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectionData,
  mosquitto,
  pubackRc,
  readTopic,
  startMqttE2e,
  waitForRecords,
} from '../helpers/mqtt.ts'
import type { KafkaRecord, MqttE2e, ToolResult } from '../helpers/mqtt.ts'
import { uniqueName } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
const MAX_PAYLOAD = 1024

let e2e: MqttE2e

beforeAll(async () => {
  e2e = await startMqttE2e('e2e_mqtt5', { TRIBUTARY_MQTT_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD) })
})

afterAll(async () => {
  const code = await e2e?.tributary.proc.stop('SIGTERM')
  e2e?.pki.remove()
  expect(code).toBe(0)
})

const newTenant = (): string => uniqueName('mq5')
const plain = (): string[] => ['-h', '127.0.0.1', '-p', String(e2e.tributary.ports.mqtt)]
const tls = (): string[] => [
  '-h',
  '127.0.0.1',
  '-p',
  String(e2e.tributary.ports.mqtts),
  '--cafile',
  e2e.pki.serverCa.certFile,
]
const login = (device: string, tenant: string): string[] => ['-u', `${device}@${tenant}`, '-P', PASSWORD]
const marker = (): string => JSON.stringify({ id: uniqueName('m5'), celsius: 21.5 })

/** mosquitto_pub speaking MQTT 5 at QoS 1 with its debug output on. */
const pub5 = (args: string[]): Promise<ToolResult> =>
  mosquitto('mosquitto_pub', ['-V', 'mqttv5', '-d', '-q', '1', ...args])

/** The reason code of the PUBACK mosquitto_pub -d printed (`received PUBACK (Mid: 1, RC:135)`). */
async function deviceWithPassword(tenant: string, device: string, fields: Record<string, unknown> = {}) {
  await e2e.tributary.api.createDevice(tenant, device, fields)
  await e2e.tributary.api.setPassword(tenant, device, PASSWORD)
}

const keyed =
  (tenant: string, device: string) =>
  (r: KafkaRecord): boolean =>
    r.key === `${tenant}/${device}`

describe('MQTT 5 devices (e2e: mosquitto clients -V mqttv5, MQTT.js, kcat)', () => {
  it('acknowledges a password PUBLISH with PUBACK 0 after it is on Kafka, between connection events', async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'boiler-5')
    const payload = marker()
    const result = await pub5([
      ...plain(),
      ...login('boiler-5', tenant),
      ...['-D', 'publish', 'content-type', 'application/json'],
      ...['-t', 'sensors/temperature', '-m', payload],
    ])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain('received CONNACK (0)')
    expect(pubackRc(result)).toBe(0)

    const records = await waitForRecords(e2e.brokers, e2e.ingress, keyed(tenant, 'boiler-5'), { count: 3 })
    expect(records.map((r) => r.headers['ce_type'])).toEqual([
      'io.tributary.connection.v1',
      'io.tributary.telemetry.v1',
      'io.tributary.connection.v1',
    ])
    expect(records[1]!.payload).toBe(payload)
    // The Content Type property is the event's datacontenttype (the Kafka content-type header).
    expect(records[1]!.headers).toMatchObject({
      ce_subject: 'sensors/temperature',
      'content-type': 'application/json',
      ce_protocol: 'mqtt',
    })
    expect(connectionData(records[2]!)).toMatchObject({ status: 'disconnected', reason: 'client-disconnect' })
  })

  it('answers refusals with PUBACK reason codes instead of closing: 0x87, 0x90, 0x97, 0x99', async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'gw-5')
    await e2e.tributary.api.createDevice(tenant, 'orphan-5')
    const as = [...plain(), ...login('gw-5', tenant)]
    const cases: Array<[string[], number]> = [
      [['-t', 'gw/orphan-5/temp', '-m', 'x'], 0x87],
      [['-t', 'config/whatever', '-m', 'x'], 0x90],
      [['-t', 'big', '-m', 'x'.repeat(MAX_PAYLOAD + 1)], 0x97],
      [['-D', 'publish', 'content-type', 'application/json', '-t', 'j', '-m', 'not json'], 0x99],
    ]
    for (const [args, rc] of cases) {
      const result = await pub5([...as, ...args])
      expect(pubackRc(result), `${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(rc)
    }
    const refused = await readTopic(e2e.brokers, e2e.ingress)
    expect(
      refused.filter(
        (r) => r.headers['ce_tenant'] === tenant && r.headers['ce_type'] === 'io.tributary.telemetry.v1',
      ),
    ).toEqual([])
  })

  it('takes a token, a client certificate, TLS-PSK and a gateway publishing for its device', async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await e2e.tributary.api.patchTenant(tenant, { trustAnchors: [e2e.pki.deviceCa.pem] })
    await e2e.tributary.api.createDevice(tenant, 'tok-5')
    const { secret: token } = await e2e.tributary.api.addCredential(tenant, 'tok-5', { type: 'token' })
    await e2e.tributary.api.createDevice(tenant, 'cert-5')
    await e2e.tributary.api.addCredential(tenant, 'cert-5', { type: 'x509', subjectCn: 'cert-5' })
    const cert = await e2e.pki.issueDevice('cert-5')
    await e2e.tributary.api.createDevice(tenant, 'psk-5')
    const { secret: psk } = await e2e.tributary.api.addCredential(tenant, 'psk-5', { type: 'psk' })
    await deviceWithPassword(tenant, 'gw-6')
    await e2e.tributary.api.createDevice(tenant, 'child-6', { gateways: ['gw-6'] })

    const runs: Array<[string, string[], string]> = [
      ['tok-5', [...plain(), '-u', `tok-5@${tenant}`, '-P', token!, '-t', 'tok/ch'], 'tok/ch'],
      ['cert-5', [...tls(), '--cert', cert.certFile, '--key', cert.keyFile, '-t', 'cert/ch'], 'cert/ch'],
      [
        'psk-5',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(e2e.tributary.ports.mqtts),
          '--psk-identity',
          `psk-5@${tenant}`,
          '--psk',
          psk!,
          '-t',
          'psk/ch',
        ],
        'psk/ch',
      ],
      ['child-6', [...plain(), ...login('gw-6', tenant), '-t', 'gw/child-6/temp'], 'temp'],
    ]
    for (const [device, args, subject] of runs) {
      const payload = marker()
      const result = await pub5([...args, '-m', payload])
      expect(pubackRc(result), `${device}: ${result.stdout}${result.stderr}`).toBe(0)
      const [record] = await waitForRecords(e2e.brokers, e2e.ingress, (r) => r.payload === payload)
      expect(record!.headers).toMatchObject({ ce_tenant: tenant, ce_device: device, ce_subject: subject })
    }
  })

  it('refuses a wrong password with CONNACK 0x86 (mosquitto_sub -V mqttv5)', async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'sub-5')
    const refused = await mosquitto('mosquitto_sub', [
      ...[
        '-V',
        'mqttv5',
        '-d',
        ...plain(),
        '-u',
        `sub-5@${tenant}`,
        '-P',
        'wrong',
        '-t',
        'command/#',
        '-C',
        '1',
      ],
    ])
    expect(refused.code).not.toBe(0)
    expect(`${refused.stdout}${refused.stderr}`).toContain('received CONNACK (134)')
  })

  it("refuses a filter that is not the device's with SUBACK 0x87 (mosquitto_sub -V mqttv5)", async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'sub-6')
    const result = await mosquitto('mosquitto_sub', [
      ...['-V', 'mqttv5', '-d', ...plain(), ...login('sub-6', tenant), '-t', 'sub-7/#', '-C', '1'],
    ])
    expect(`${result.stdout}${result.stderr}`).toContain('received SUBACK')
    expect(`${result.stdout}${result.stderr}`).toContain('Subscribed (mid: 1): 135')
    expect(`${result.stdout}${result.stderr}`).toContain('All subscription requests were denied')
  })

  it('takes MQTT.js with protocolVersion 5 over WebSocket, with a topic alias and a traceparent', async () => {
    const tenant = newTenant()
    await e2e.tributary.api.createTenant(tenant)
    await deviceWithPassword(tenant, 'ws-5')
    const client = await mqtt.connectAsync(`ws://127.0.0.1:${e2e.tributary.ports.mqttWs}/mqtt`, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      username: `ws-5@${tenant}`,
      password: PASSWORD,
    })
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const [first, second] = [marker(), marker()]
    await client.publishAsync('ws/alias', first, {
      qos: 1,
      properties: { topicAlias: 1, userProperties: { traceparent } },
    })
    await client.publishAsync('', second, { qos: 1, properties: { topicAlias: 1 } })
    await client.endAsync()
    const records = await waitForRecords(
      e2e.brokers,
      e2e.ingress,
      (r) => r.payload === first || r.payload === second,
      {
        count: 2,
      },
    )
    expect(records.map((r) => [r.headers['ce_subject'], r.payload])).toEqual([
      ['ws/alias', first],
      ['ws/alias', second],
    ])
    expect(records[0]!.headers['ce_traceparent']).toBe(traceparent)
    const [connected] = await waitForRecords(
      e2e.brokers,
      e2e.ingress,
      (r) => keyed(tenant, 'ws-5')(r) && r.headers['ce_type'] === 'io.tributary.connection.v1',
    )
    expect(connectionData(connected!).listener).toBe('mqtt-ws')
  })
})
