// Files published to devices (docs/files.md#files-for-devices) against a running `tributary start`
// on Kafka: a device uploads a file with curl, the operator publishes it to a folder with the
// `tributary files` CLI and to one device through the API, and devices list and download what was
// published to them with curl (HTTP) and with MQTT.js on files/{list,download}/req/<id> (one
// connection asks and reads the answer: a second connection of the device would take its session
// over, so mosquitto_pub with mosquitto_sub cannot). Nothing of another device or tenant is listed
// or handed out, and a publication taken back is gone at once. Both blob stores: a signed URL of the
// device HTTP listener on the filesystem, a presigned GET straight to S3Proxy on S3.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coapBasic, coapClient } from '../helpers/coap.ts'
import { curl } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, metricValue, within } from '../helpers/mqtt.ts'
import { runCli } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { testBucket } from '../setup/s3-env.ts'

const PASSWORD = 'correct horse battery'
const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-published-'))
const firmware = randomBytes(5_000)
let t: KafkaTributary
let env: Record<string, string> = {}
let tenant = ''
let other = ''
const ids = { firmware: '', config: '', theirs: '' }

const as = (device: string, owner = tenant) => ['-u', `${device}@${owner}:${PASSWORD}`]

/** Uploads `data` as `device` the way a device does: a token, then the body with curl --upload-file. */
async function upload(owner: string, device: string, name: string, data: Buffer): Promise<string> {
  const token = await curl([
    ...as(device, owner),
    '-H',
    'content-type: application/json',
    '--data-binary',
    JSON.stringify({ name, size: data.length }),
    `${t.url('http')}/v1/files/token`,
  ])
  expect(token.status, token.body).toBe(201)
  const path = join(work, uniqueName('body'))
  writeFileSync(path, data)
  const put = await curl([
    '-H',
    `x-auth-token: ${token.json.token}`,
    '--upload-file',
    path,
    token.json.uploadUrl,
  ])
  expect(put.status, put.body).toBe(201)
  return String(token.json.fileId)
}

const cli = (...args: string[]) =>
  runCli(['files', ...args, '--tenant', tenant], {
    TRIBUTARY_API_URL: t.url('api'),
    TRIBUTARY_API_TOKEN: ADMIN_TOKEN,
  })

const listed = async (device: string, owner = tenant): Promise<string[]> => {
  const reply = await curl([...as(device, owner), `${t.url('http')}/v1/files`])
  expect(reply.status, reply.body).toBe(200)
  return (reply.json.items as Array<{ id: string }>).map((f) => f.id).sort()
}

const backends = [
  { name: 'filesystem', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 's3', env: async () => (await testBucket()).env },
]

describe.each(backends)(
  'published files (e2e: tributary CLI, curl, MQTT.js) on the $name blob store',
  (backend) => {
    beforeAll(async () => {
      env = await backend.env()
      t = await startOnKafka('e2e_published', env)
      tenant = uniqueName('pub')
      other = uniqueName('pubx')
      for (const owner of [tenant, other]) {
        await t.api.createTenant(owner)
        for (const device of ['src', 'cam-1', 'cam-2']) {
          await t.api.createDevice(owner, device)
          await t.api.setPassword(owner, device, PASSWORD)
        }
      }
      ids.firmware = await upload(tenant, 'src', 'fw-3.0.bin', firmware)
      ids.config = await upload(tenant, 'src', 'cam-1.json', Buffer.from('{"mode":"night"}'))
      ids.theirs = await upload(other, 'src', 'fw-9.bin', randomBytes(100))
    })

    afterAll(async () => {
      const code = await t?.proc.stop('SIGTERM')
      expect(code).toBe(0)
    })

    it('publishes with the CLI and the API; devices list and download what is theirs with curl', async () => {
      const published = JSON.parse(
        await cli('publish', ids.firmware, '--folder', 'firmware', '--json'),
      ) as unknown
      expect(published).toEqual({ devices: [], folders: ['firmware'] })
      const toDevice = await curl([
        '-X',
        'PUT',
        '-H',
        `authorization: Bearer ${ADMIN_TOKEN}`,
        `${t.url('api')}/api/v1/tenants/${tenant}/files/${ids.config}/publications/devices/cam-1`,
      ])
      expect(toDevice.status, toDevice.body).toBe(200)
      const theirs = await curl([
        '-X',
        'PUT',
        '-H',
        `authorization: Bearer ${ADMIN_TOKEN}`,
        `${t.url('api')}/api/v1/tenants/${other}/files/${ids.theirs}/publications/folders/firmware`,
      ])
      expect(theirs.status, theirs.body).toBe(200)

      expect(await listed('cam-1')).toEqual([ids.firmware, ids.config].sort())
      expect(await listed('cam-2')).toEqual([ids.firmware])
      expect(await listed('cam-2', other)).toEqual([ids.theirs])

      const link = await curl([...as('cam-2'), `${t.url('http')}/v1/files/${ids.firmware}?expiresIn=60`])
      expect(link.status, link.body).toBe(200)
      expect(link.json).toMatchObject({
        id: ids.firmware,
        name: 'fw-3.0.bin',
        size: firmware.length,
        method: 'GET',
      })
      // Where the bytes come from: S3 itself, or the device HTTP listener's signed download.
      const from = env['TRIBUTARY_S3_ENDPOINT'] ?? `${t.url('http')}/v1/files/download/`
      expect(String(link.json.url).startsWith(from), String(link.json.url)).toBe(true)
      const saved = join(work, uniqueName('fw'))
      const download = await curl(['-o', saved, link.json.url])
      expect(download.status).toBe(200)
      expect(readFileSync(saved).equals(firmware)).toBe(true)

      // Not published to cam-2, another tenant's, or asked for by another tenant's device.
      for (const [device, owner, id] of [
        ['cam-2', tenant, ids.config],
        ['cam-1', tenant, ids.theirs],
        ['cam-1', other, ids.firmware],
      ] as const) {
        const refused = await curl([...as(device, owner), `${t.url('http')}/v1/files/${id}`])
        expect(refused.status, `${device}@${owner} ${id}`).toBe(404)
        expect(refused.json.code).toBe('ROUTE_NOT_FOUND')
        expect(refused.body).not.toMatch(/\/v1\/files\/download|X-Amz-Signature/i)
      }
      expect((await curl([`${t.url('http')}/v1/files`])).status).toBe(401)
    })

    it('answers files/list and files/download requests over MQTT on the asking connection', async () => {
      const client = await mqtt.connectAsync(
        `mqtt://127.0.0.1:${t.ports['mqtt']}`,
        { protocolVersion: 4, reconnectPeriod: 0, username: `cam-2@${tenant}`, password: PASSWORD },
        false,
      )
      const inbox = new Map<string, Record<string, unknown>>()
      client.on('message', (topic, payload) =>
        inbox.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>),
      )
      const answer = async (topic: string) => {
        await waitUntil(() => inbox.has(topic), { message: () => `an answer on ${topic}` })
        return inbox.get(topic)!
      }
      try {
        const grants = await client.subscribeAsync(['files/list/res/+', 'files/download/res/+'], { qos: 1 })
        expect(grants.map((g) => g.qos)).toEqual([1, 1])
        await client.publishAsync('files/list/req/l1', JSON.stringify({ folder: 'firmware' }), { qos: 1 })
        const page = await answer('files/list/res/l1')
        expect(
          (page['items'] as Array<{ id: string; folders: string[] }>).map((f) => [f.id, f.folders]),
        ).toEqual([[ids.firmware, ['firmware']]])
        await client.publishAsync('files/download/req/d1', JSON.stringify({ fileId: ids.firmware }), {
          qos: 1,
        })
        const link = await answer('files/download/res/d1')
        const saved = join(work, uniqueName('fw-mqtt'))
        expect((await curl(['-o', saved, String(link['url'])])).status).toBe(200)
        expect(readFileSync(saved).equals(firmware)).toBe(true)

        for (const [id, fields] of [
          ['d2', { fileId: ids.config }],
          ['d3', { fileId: ids.theirs }],
        ] as const) {
          await client.publishAsync(`files/download/req/${id}`, JSON.stringify(fields), { qos: 1 })
          expect(await answer(`files/download/res/${id}`)).toEqual({
            statusCode: 404,
            reasonPhrase: 'no such file',
          })
        }
        await client.publishAsync('files/list/req/l2', 'not json', { qos: 1 })
        expect(await answer('files/list/res/l2')).toMatchObject({ statusCode: 400 })
      } finally {
        await client.endAsync(true)
      }
    })

    it('answers GET /v1/files and /v1/files/<id> over CoAP (coap-client)', async () => {
      const login = coapBasic('cam-2', tenant, PASSWORD)
      const port = t.ports['coap']!
      // The payload as coap-client dumps the response PDU (`… :: '<payload>'`).
      const body = (stdout: string) =>
        JSON.parse([...stdout.matchAll(/ :: '(\{.*\})'$/gm)].at(-1)![1]!) as Record<string, unknown>
      const page = await coapClient(port, ['-m', 'get', ...login], '/v1/files?folder=firmware')
      expect(page.code, page.stderr).toBe('2.05')
      expect((body(page.stdout)['items'] as Array<{ id: string }>).map((f) => f.id)).toEqual([ids.firmware])
      const link = await coapClient(port, ['-m', 'get', ...login], `/v1/files/${ids.firmware}`)
      expect(link.code, link.stderr).toBe('2.05')
      const saved = join(work, uniqueName('fw-coap'))
      expect((await curl(['-o', saved, String(body(link.stdout)['url'])])).status).toBe(200)
      expect(readFileSync(saved).equals(firmware)).toBe(true)
      // Another device's file and another tenant's are the same 4.04; an unknown parameter is 4.00.
      for (const id of [ids.config, ids.theirs]) {
        expect((await coapClient(port, ['-m', 'get', ...login], `/v1/files/${id}`)).code).toBe('4.04')
      }
      expect((await coapClient(port, ['-m', 'get', ...login], '/v1/files?colour=red')).code).toBe('4.00')
    })

    it("gives a device nothing of another device's through a gateway topic it is not the gateway of", async () => {
      const client = await mqtt.connectAsync(
        `mqtt://127.0.0.1:${t.ports['mqtt']}`,
        { protocolVersion: 4, reconnectPeriod: 0, username: `cam-2@${tenant}`, password: PASSWORD },
        false,
      )
      try {
        // cam-1 lists no gateway: its answers are not cam-2's to read, nor its requests to make.
        const refused = await client.subscribeAsync('gw/cam-1/files/download/res/+', { qos: 1 }).then(
          (grants) => grants.map((g) => g.qos),
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
        )
        expect(refused).toEqual([128])
        const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
        // QoS 1 without a PUBACK: the connection is ended instead (MQTT.js keeps the message, never resent here).
        void client
          .publishAsync('gw/cam-1/files/download/req/x1', JSON.stringify({ fileId: ids.config }), { qos: 1 })
          .catch(() => undefined)
        await within(closed, 10_000, 'the connection ended (gateway-not-allowed)')
      } finally {
        await client.endAsync(true)
      }
    })

    it('forgets a publication taken back with the CLI at once, and counts cache hits', async () => {
      expect(await listed('cam-1')).toContain(ids.config)
      await cli('unpublish', ids.config, '--device', 'cam-1')
      expect(await listed('cam-1')).toEqual([ids.firmware])
      const refused = await curl([...as('cam-1'), `${t.url('http')}/v1/files/${ids.config}`])
      expect(refused.status).toBe(404)
      expect(JSON.parse(await cli('publications', ids.config, '--json'))).toEqual({
        devices: [],
        folders: [],
      })
      expect(
        await metricValue(t.ports['management']!, 'tributary_file_cache_lookups_total', { result: 'hit' }),
      ).toBeGreaterThan(0)
    })
  },
)
