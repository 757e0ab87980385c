// Upload tokens over MQTT (docs/files.md) against a running `tributary start` on Kafka: an MQTT.js
// device subscribes to files/token/res/+ and asks on files/token/req/<id> (one connection: a second
// connection of the device would take its session over), curl sends the file to the uploadUrl with
// `--upload-file` and `x-auth-token`, and the management API lists it. Bad declarations are answered
// {statusCode, reasonPhrase}; a gateway asks for its devices on gw/<D>/…, and for no other device.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, mosquitto } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
const MAX_FILE = 64 * 1024
let t: KafkaTributary
let tenant = ''
const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-mqttfiles-'))

beforeAll(async () => {
  t = await startOnKafka('e2e_mqttfiles', { TRIBUTARY_FILES_MAX_BYTES: String(MAX_FILE) })
  tenant = uniqueName('mf')
  await t.api.createTenant(tenant)
  for (const device of ['cam-1', 'cam-5', 'cam-rr', 'hub']) {
    await t.api.createDevice(tenant, device)
    await t.api.setPassword(tenant, device, PASSWORD)
  }
  await t.api.createDevice(tenant, 'probe', { gateways: ['hub'] })
  await t.api.createDevice(tenant, 'stranger')
})

afterAll(async () => {
  const code = await t?.proc.stop('SIGTERM')
  expect(code).toBe(0)
})

const admin = (...args: string[]) => curl(['-H', `authorization: Bearer ${ADMIN_TOKEN}`, ...args])

/** The token test runs on both protocol versions, each with a device of its own. */
const VERSIONS = [
  { name: '3.1.1', protocolVersion: 4, device: 'cam-1', refused: 0x80 },
  { name: '5', protocolVersion: 5, device: 'cam-5', refused: 0x87 },
] as const

async function connect(device: string, protocolVersion: 4 | 5 = 4) {
  const client = await mqtt.connectAsync(
    `mqtt://127.0.0.1:${t.ports['mqtt']}`,
    { protocolVersion, reconnectPeriod: 0, username: `${device}@${tenant}`, password: PASSWORD },
    false,
  )
  const inbox: Array<{ topic: string; body: Record<string, unknown> }> = []
  client.on('message', (topic, payload) =>
    inbox.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }),
  )
  const answer = async (topic: string) => {
    await waitUntil(() => inbox.some((m) => m.topic === topic), { message: () => `an answer on ${topic}` })
    return inbox.find((m) => m.topic === topic)!.body
  }
  return { client, answer }
}

async function upload(body: Record<string, unknown>, data: Buffer) {
  const path = join(work, uniqueName('body'))
  writeFileSync(path, data)
  return curl([
    '-H',
    `x-auth-token: ${String(body['token'])}`,
    '--upload-file',
    path,
    String(body['uploadUrl']),
  ])
}

describe('upload tokens over MQTT (e2e: MQTT.js, mosquitto_pub, curl)', () => {
  it.each(VERSIONS)(
    'answers files/token/req/<id> with a token whose uploadUrl takes the file on the HTTP listener (MQTT $name)',
    async (version) => {
      const { client, answer } = await connect(version.device, version.protocolVersion)
      try {
        expect((await client.subscribeAsync('files/token/res/+', { qos: 1 }))[0]?.qos).toBe(1)
        const data = Buffer.from('a log line\n'.repeat(50))
        await client.publishAsync(
          'files/token/req/r1',
          JSON.stringify({ name: 'boot.log', size: data.length, contentType: 'text/plain' }),
          { qos: 1 },
        )
        const issued = await answer('files/token/res/r1')
        expect(Object.keys(issued).sort()).toEqual(['expiresAt', 'fileId', 'token', 'uploadUrl'])
        // The URL HTTP hands out: the device HTTP listener.
        expect(issued['uploadUrl']).toBe(`${t.url('http')}/v1/files/${String(issued['fileId'])}`)
        const put = await upload(issued, data)
        expect(put.status, JSON.stringify(put.json)).toBe(201)
        expect(put.json).toMatchObject({ id: issued['fileId'], name: 'boot.log', size: data.length })

        const listed = await admin(`${t.url('api')}/api/v1/tenants/${tenant}/files?device=${version.device}`)
        expect(listed.status).toBe(200)
        expect(listed.json.items).toEqual([
          expect.objectContaining({
            id: issued['fileId'],
            device: version.device,
            name: 'boot.log',
            size: data.length,
          }),
        ])

        // Bad declarations, as HTTP's 400 and 413: an error object on the response topic.
        await client.publishAsync('files/token/req/r2', '', { qos: 1 })
        expect(await answer('files/token/res/r2')).toEqual({
          statusCode: 400,
          reasonPhrase: 'name (string) and size (integer) are required; sha256 and contentType are strings',
        })
        await client.publishAsync('files/token/req/r3', JSON.stringify({ name: 'x', size: MAX_FILE + 1 }), {
          qos: 1,
        })
        expect(await answer('files/token/res/r3')).toMatchObject({ statusCode: 413 })
        await client.publishAsync('files/token/req/r4', 'not json', { qos: 1 })
        expect(await answer('files/token/res/r4')).toMatchObject({ statusCode: 400 })
        // Another files/… filter is refused (SUBACK 0x80; MQTT 5 0x87).
        const refused = await client.subscribeAsync('files/#', { qos: 1 }).then(
          (grants) => grants.map((g) => g.qos),
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
        )
        expect(refused).toEqual([version.refused])
      } finally {
        await client.endAsync(true)
      }
    },
  )

  it('answers mosquitto_rr -V mqttv5, which asks and reads the answer on one connection', async () => {
    const data = Buffer.from('rr')
    const rr = await mosquitto('mosquitto_rr', [
      ...['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(t.ports['mqtt'])],
      ...['-u', `cam-rr@${tenant}`, '-P', PASSWORD, '-q', '1', '-W', '10'],
      ...['-t', 'files/token/req/rr1', '-e', 'files/token/res/rr1'],
      ...['-m', JSON.stringify({ name: 'rr.bin', size: data.length })],
    ])
    expect(rr.code, rr.stderr).toBe(0)
    const issued = JSON.parse(rr.stdout) as Record<string, unknown>
    expect(Object.keys(issued).sort()).toEqual(['expiresAt', 'fileId', 'token', 'uploadUrl'])
    expect((await upload(issued, data)).status).toBe(201)
  })

  it('gives a gateway tokens for its devices on gw/<D>/files/…, and none for another device', async () => {
    const { client, answer } = await connect('hub')
    try {
      expect((await client.subscribeAsync('gw/probe/files/token/res/+', { qos: 1 }))[0]?.qos).toBe(1)
      const refused = await client.subscribeAsync('gw/stranger/files/token/res/+', { qos: 1 }).then(
        (grants) => grants.map((g) => g.qos),
        (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
      )
      expect(refused).toEqual([128])
      const data = Buffer.from('probe dump')
      await client.publishAsync(
        'gw/probe/files/token/req/g1',
        JSON.stringify({ name: 'dump.bin', size: 10 }),
        {
          qos: 1,
        },
      )
      const issued = await answer('gw/probe/files/token/res/g1')
      expect((await upload(issued, data)).status).toBe(201)
      const listed = await admin(`${t.url('api')}/api/v1/tenants/${tenant}/files?device=probe`)
      expect(listed.json.items).toEqual([expect.objectContaining({ id: issued['fileId'], device: 'probe' })])
    } finally {
      await client.endAsync(true)
    }

    // Not the stranger's gateway, nor its own through gw/: the connection ends, no token is issued.
    for (const [device, topic] of [
      ['hub', 'gw/stranger/files/token/req/s1'],
      ['cam-1', 'gw/probe/files/token/req/s2'],
    ] as const) {
      const out = await mosquitto('mosquitto_pub', [
        ...['-h', '127.0.0.1', '-p', String(t.ports['mqtt']), '-V', 'mqttv311'],
        ...[
          '-u',
          `${device}@${tenant}`,
          '-P',
          PASSWORD,
          '-q',
          '1',
          '-t',
          topic,
          '-m',
          '{"name":"x","size":1}',
        ],
      ])
      expect(out.code, topic).not.toBe(0)
    }
    const stranger = await admin(`${t.url('api')}/api/v1/tenants/${tenant}/files?device=stranger`)
    expect(stranger.json.items).toEqual([])
  })
})
