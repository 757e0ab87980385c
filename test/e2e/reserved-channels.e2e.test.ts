// Reserved channels, one rule on every protocol: a running `tributary start` on Kafka gets the same
// table of channels over HTTP (curl), CoAP (coap-client) and MQTT (mosquitto_pub); each is refused
// the way its protocol refuses (403, 4.03, the connection closed without PUBACK) and nothing but
// MQTT's connection events reaches the ingress topic (kcat), against a positive control: telemetry
// and a command response (`command/res/<id>/<status>`, which stays open) over each protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RESERVED_CASES, RESPONSE_CHANNEL } from '../fixtures/reserved-channels.ts'
import { coapBasic, coapClient } from '../helpers/coap.ts'
import { curl, topicEnd } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { metricValue, mosquitto, readTopic } from '../helpers/mqtt.ts'
import type { KafkaRecord } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
const DEVICE = 'd1'

let t: KafkaTributary
let tenant = ''

beforeAll(async () => {
  t = await startOnKafka('e2e_reserved')
  tenant = uniqueName('rc')
  await t.api.createTenant(tenant)
  await t.api.createDevice(tenant, DEVICE)
  // `other` exists and lists no gateway: gw/other/... is refused whatever the protocol.
  await t.api.createDevice(tenant, 'other')
  await t.api.setPassword(tenant, DEVICE, PASSWORD)
})

afterAll(async () => {
  expect(await t?.proc.stop('SIGTERM')).toBe(0)
})

const http = (channel: string, body: string) =>
  curl(['-u', `${DEVICE}@${tenant}:${PASSWORD}`, '--data-binary', body, `${t.url('http')}/v1/${channel}`])
const coap = (channel: string, body: string) =>
  coapClient(
    t.ports['coap']!,
    ['-m', 'post', ...coapBasic(DEVICE, tenant, PASSWORD), '-e', body],
    `/v1/${channel}`,
  )
const mqtt = (channel: string, body: string) =>
  mosquitto('mosquitto_pub', [
    ...['-h', '127.0.0.1', '-p', String(t.ports['mqtt']!)],
    ...['-u', `${DEVICE}@${tenant}`, '-P', PASSWORD],
    ...['-q', '1', '-t', channel, '-m', body],
  ])
const refusals = (reason: string) =>
  metricValue(t.ports['management']!, 'tributary_mqtt_refusals_total', { reason })

describe('reserved channels (e2e: curl, coap-client, mosquitto_pub, kcat)', () => {
  it('refuses command, config, files and gw on HTTP, CoAP and MQTT alike, and nothing reaches the bus', async () => {
    const before = await topicEnd(t.brokers, t.ingress)
    const reservedBefore = await refusals('reserved-topic')
    const gatewayBefore = await refusals('gateway-not-allowed')
    const reportBefore = await refusals('invalid-config-report')

    for (const { channel } of RESERVED_CASES) {
      const body = uniqueName('refused')
      const h = await http(channel, body)
      // HTTP serves a device's configuration report there (docs/config.md): not a channel, and a
      // body that is no report is refused as invalid, writing nothing either.
      const served = channel === 'config/applied'
      const status = served ? 400 : 403
      expect(h.status, `HTTP /v1/${channel}`).toBe(status)
      expect(h.headers['content-type'], `HTTP /v1/${channel}`).toBe('application/problem+json')
      expect(h.json, `HTTP /v1/${channel}`).toMatchObject({
        status,
        code: served ? 'REQUEST_INVALID' : 'AUTH_FORBIDDEN',
      })

      // CoAP serves the report there too; this body, sent without Content-Format 50 (JSON), is
      // refused as 4.15 and writes nothing.
      const c = await coap(channel, body)
      expect(c.code, `CoAP /v1/${channel}`).toBe(served ? '4.15' : '4.03')

      // MQTT 3.1.1 has no negative PUBACK: a refused QoS 1 PUBLISH ends the connection.
      const m = await mqtt(channel, body)
      expect(m.code, `MQTT ${channel}: ${m.stderr}`).not.toBe(0)
    }
    const gatewayForms = RESERVED_CASES.filter((c) => c.mqtt === 'gateway').length
    // MQTT reads config/applied as a configuration report (docs/config.md); these bodies are none.
    const reports = RESERVED_CASES.filter((c) => c.channel === 'config/applied').length
    expect((await refusals('reserved-topic')) - reservedBefore).toBe(
      RESERVED_CASES.length - gatewayForms - reports,
    )
    expect((await refusals('invalid-config-report')) - reportBefore).toBe(reports)
    expect((await refusals('gateway-not-allowed')) - gatewayBefore).toBe(gatewayForms)
    // HTTP and CoAP wrote nothing at all; MQTT wrote only each connection's connected and
    // disconnected events, which every MQTT session causes.
    const mqttSessions = RESERVED_CASES.length * 2
    let end = before
    await waitUntil(async () => (end = await topicEnd(t.brokers, t.ingress)) >= before + mqttSessions, {
      message: () => `the MQTT connection events on the ingress topic (${end - before} records)`,
    })
    expect(end).toBe(before + mqttSessions)

    // Positive control: telemetry and a command response over each protocol.
    const control = uniqueName('control')
    expect((await http('sensors/t', control)).status).toBe(202)
    expect((await http(RESPONSE_CHANNEL, control)).status).toBe(202)
    expect((await coap('sensors/t', control)).code).toBe('2.04')
    expect((await coap(RESPONSE_CHANNEL, control)).code).toBe('2.04')
    expect((await mqtt('sensors/t', control)).code).toBe(0)
    expect((await mqtt(RESPONSE_CHANNEL, control)).code).toBe(0)
    const data = (records: KafkaRecord[]) =>
      records.filter(
        (r) => r.headers['ce_tenant'] === tenant && r.headers['ce_type'] !== 'io.tributary.connection.v1',
      )
    let mine: KafkaRecord[] = []
    await waitUntil(async () => (mine = data(await readTopic(t.brokers, t.ingress))).length >= 6, {
      message: () => `six control records on the ingress topic, not ${mine.length}`,
    })
    expect(mine.map((r) => r.payload)).toEqual(Array<string>(6).fill(control))
    expect(mine.map((r) => [r.headers['ce_protocol'], r.headers['ce_type']]).sort()).toEqual(
      ['coap', 'http', 'mqtt']
        .flatMap((p) => [
          [p, 'io.tributary.command.response.v1'],
          [p, 'io.tributary.telemetry.v1'],
        ])
        .sort(),
    )
  })
})
