// Commands to TTN devices as downlinks, as an operator and TTN see them: a running `tributary start`
// on Kafka (private addresses allowed, so that TTN's downlink queue can be a node:http server on
// loopback), TTN's webhook calls made with curl carrying X-Downlink-Push/Replace and the API key,
// commands sent with curl through the management API, the downlinks TTN receives, and the status
// events read back with kcat from `<prefix>.events.<tenant>`.
import type { IncomingMessage } from 'node:http'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { fixtureFor } from '../adapters/ttn/fixtures.ts'
import type { Fixture } from '../adapters/ttn/fixtures.ts'
import { curl } from '../helpers/curl.ts'
import type { KafkaRecord } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, waitForRecords, within } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { uniqueName } from '../helpers/wait.ts'
import type { Api } from '../helpers/mqtt.ts'

const API_KEY = 'NNSXS.E2ECOMMANDKEY4TTN.D0WNL1NKK3YN3V3RL0GG3D'
const APP = 'greenhouse-sensors'
const STATUS_TYPE = 'io.tributary.command.status.v1'

interface Downlink {
  readonly path: string
  readonly authorization: string | undefined
  readonly contentType: string | undefined
  readonly body: {
    downlinks: Array<{ f_port: number; frm_payload: string; priority: string; correlation_ids?: string[] }>
  }
}

let proc: TributaryProcess
let api: Api
let brokers = ''
let prefix = ''
let base = ''
let apiBase = ''
let ttnServer: Server
let ttnOrigin = ''
/** What the fake TTN answers next; 200 when the list is empty. */
const answers: number[] = []
const arrived: Downlink[] = []
const waiters: Array<() => void> = []

beforeAll(async () => {
  ttnServer = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      arrived.push({
        path: req.url ?? '',
        authorization: req.headers['authorization'],
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Downlink['body'],
      })
      res.writeHead(answers.shift() ?? 200, { 'content-type': 'application/json' }).end('{}')
      for (const wake of waiters.splice(0)) wake()
    })
  })
  await new Promise<void>((resolve) => ttnServer.listen(0, '127.0.0.1', resolve))
  ttnOrigin = `http://127.0.0.1:${(ttnServer.address() as AddressInfo).port}`
  const t = await startOnKafka('e2e_cmd_ttn', {
    TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'true',
    TRIBUTARY_LOG_LEVEL: 'debug',
  })
  ;({ proc, api, brokers, prefix } = t)
  base = t.url('http')
  apiBase = t.url('api')
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  ttnServer?.closeAllConnections()
  await new Promise<void>((resolve) => (ttnServer ? ttnServer.close(() => resolve()) : resolve()))
  expect(code).toBe(0)
})

beforeEach(() => {
  answers.length = 0
})

/** The downlink TTN received as number `index` (from 0) since the process started; waits for it (bounded). */
async function downlinkAt(index: number): Promise<Downlink> {
  const arrivedYet = new Promise<void>((resolve) => {
    const check = (): void => (arrived.length > index ? resolve() : void waiters.push(check))
    check()
  })
  await within(arrivedYet, 20_000, `downlink #${index + 1} at the fake TTN`)
  return arrived[index]!
}

async function ttnTenant(): Promise<{ tenant: string; secret: string }> {
  const tenant = uniqueName('tc')
  await api.createTenant(tenant, { settings: { ttn: { autoRegister: true } } })
  const reply = await curl([
    '-X',
    'PUT',
    '-H',
    `Authorization: Bearer ${ADMIN_TOKEN}`,
    '-H',
    'Content-Type: application/json',
    '--data',
    '{}',
    `${apiBase}/api/v1/tenants/${tenant}/ttn-secret`,
  ])
  expect(reply.status).toBe(200)
  return { tenant, secret: reply.json.secret as string }
}

/** A webhook call as TTN makes it, with the downlink headers of the device. */
async function ttnCall(tenant: string, secret: string, device: string, body: Fixture): Promise<void> {
  const queue = `${ttnOrigin}/api/v3/as/applications/${APP}/webhooks/tributary/devices/${device}/down`
  const reply = await curl(
    [
      '-H',
      'Content-Type: application/json',
      '-H',
      `X-Tributary-Tenant: ${tenant}`,
      '-H',
      `X-Tributary-Webhook-Secret: ${secret}`,
      '-H',
      `X-Downlink-Apikey: ${API_KEY}`,
      '-H',
      `X-Downlink-Push: ${queue}/push`,
      '-H',
      `X-Downlink-Replace: ${queue}/replace`,
      '--data-binary',
      '@-',
      `${base}/ttn/v3`,
    ],
    Buffer.from(JSON.stringify(body)),
  )
  expect(reply.status, reply.body).toBe(202)
}

const uplink = (tenant: string, secret: string, device: string) =>
  ttnCall(tenant, secret, device, fixtureFor('uplink', device))

/** Sends a command with curl through the API; returns its id. */
async function command(
  tenant: string,
  device: string,
  name: string,
  payload: Buffer,
  query: string,
): Promise<string> {
  const reply = await curl(
    [
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${ADMIN_TOKEN}`,
      '-H',
      'Content-Type: application/octet-stream',
      '--data-binary',
      '@-',
      `${apiBase}/api/v1/tenants/${tenant}/devices/${device}/commands/${name}?${query}`,
    ],
    payload,
  )
  expect(reply.status, reply.body).toBe(202)
  return reply.json.id as string
}

const statusOf = (id: string) => (r: KafkaRecord) =>
  r.headers['ce_type'] === STATUS_TYPE && r.headers['ce_commandid'] === id

async function finalStatus(tenant: string, id: string): Promise<KafkaRecord> {
  const [record] = await waitForRecords(
    brokers,
    `${prefix}.events.${tenant}`,
    (r) => statusOf(id)(r) && r.headers['ce_status'] !== 'accepted',
    { timeoutMs: 30_000 },
  )
  return record!
}

describe('commands to TTN devices (e2e: curl, fake TTN downlink queue, kcat)', () => {
  it('pushes a command as a downlink after an uplink brought the queue URLs, with its FPort, payload and the key', async () => {
    const { tenant, secret } = await ttnTenant()
    const device = 'node-push-1'
    await uplink(tenant, secret, device)
    const first = arrived.length
    const id = await command(tenant, device, 'valve', Buffer.from([0x01, 0x02, 0xff]), 'ttl=300&fport=15')
    const downlink = await downlinkAt(first)
    expect(downlink.path).toBe(
      `/api/v3/as/applications/${APP}/webhooks/tributary/devices/${device}/down/push`,
    )
    expect(downlink.authorization).toBe(`Bearer ${API_KEY}`)
    expect(downlink.contentType).toBe('application/json')
    expect(downlink.body).toEqual({
      downlinks: [
        { f_port: 15, frm_payload: 'AQL/', priority: 'NORMAL', correlation_ids: [`tributary:command:${id}`] },
      ],
    })
    const status = await finalStatus(tenant, id)
    expect(status.headers).toMatchObject({ ce_status: 'delivered', ce_protocol: 'ttn', ce_device: device })

    // TTN reports the downlink sent: the event names the command.
    const sent = fixtureFor('downlink-sent', device)
    sent['downlink_sent'].correlation_ids = [
      'as:downlink:01HQ80A1B2C3D4E5F6G7H8J9K0',
      `tributary:command:${id}`,
    ]
    await ttnCall(tenant, secret, device, sent)
    const [event] = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.ttn.downlink.sent.v1' && r.headers['ce_device'] === device,
    )
    expect(event!.headers['ce_commandid']).toBe(id)
  })

  it('replaces the downlink queue when the command asks for it, on FPort 1 by default', async () => {
    const { tenant, secret } = await ttnTenant()
    const device = 'node-replace-1'
    await uplink(tenant, secret, device)
    const first = arrived.length
    const id = await command(tenant, device, 'reset', Buffer.from('hi'), 'ttl=300&downlink=replace')
    const downlink = await downlinkAt(first)
    expect(downlink.path).toMatch(new RegExp(`/devices/${device}/down/replace$`))
    expect(downlink.body.downlinks[0]).toMatchObject({ f_port: 1, frm_payload: 'aGk=' })
    expect((await finalStatus(tenant, id)).headers['ce_status']).toBe('delivered')
  })

  it('fails a command that TTN refuses with a 4xx, naming the status', async () => {
    const { tenant, secret } = await ttnTenant()
    const device = 'node-refused-1'
    await uplink(tenant, secret, device)
    answers.push(403)
    const first = arrived.length
    const id = await command(tenant, device, 'valve', Buffer.from([7]), 'ttl=300')
    await downlinkAt(first)
    const status = await finalStatus(tenant, id)
    expect(status.headers['ce_status']).toBe('failed')
    expect(JSON.parse(status.payload ?? '{}')).toMatchObject({ status: 'failed', reason: 'ttn-403' })
    // A caller waiting on the command learns of the refusal at once: 502 with the reason.
    answers.push(403)
    const waited = await curl(
      [
        '-X',
        'POST',
        '-H',
        `Authorization: Bearer ${ADMIN_TOKEN}`,
        '--data-binary',
        '@-',
        `${apiBase}/api/v1/tenants/${tenant}/devices/${device}/commands/valve?wait=10`,
      ],
      Buffer.from([8]),
    )
    expect(waited.status, waited.body).toBe(502)
    expect(waited.json).toMatchObject({ code: 'COMMAND_FAILED', reason: 'ttn-403' })
  })

  it('keeps a command queued when TTN answers 503, and delivers it after the next uplink', async () => {
    const { tenant, secret } = await ttnTenant()
    const device = 'node-retry-1'
    await uplink(tenant, secret, device)
    answers.push(503)
    const first = arrived.length
    const id = await command(tenant, device, 'valve', Buffer.from([9]), 'ttl=300&fport=3')
    const refused = await downlinkAt(first)
    expect(refused.body.downlinks[0]).toMatchObject({ f_port: 3, frm_payload: 'CQ==' })
    await uplink(tenant, secret, device)
    const again = await downlinkAt(first + 1)
    expect(again.body).toEqual(refused.body)
    expect((await finalStatus(tenant, id)).headers['ce_status']).toBe('delivered')
    const statuses = await waitForRecords(brokers, `${prefix}.events.${tenant}`, statusOf(id), { count: 2 })
    expect(statuses.map((r) => r.headers['ce_status'])).toEqual(['accepted', 'delivered'])
  })

  it('delivers a command queued before the device’s first uplink once that uplink comes', async () => {
    const { tenant, secret } = await ttnTenant()
    const device = 'node-later-1'
    await api.createDevice(tenant, device)
    const id = await command(tenant, device, 'config', Buffer.from('{"rate":60}'), 'ttl=300&fport=20')
    const accepted = await waitForRecords(brokers, `${prefix}.events.${tenant}`, statusOf(id))
    expect(accepted[0]!.headers['ce_status']).toBe('accepted')
    const first = arrived.length
    expect(arrived.some((d) => d.path.includes(`/devices/${device}/`))).toBe(false)
    await uplink(tenant, secret, device)
    const downlink = await downlinkAt(first)
    expect(downlink.path).toContain(`/devices/${device}/down/push`)
    expect(downlink.body.downlinks[0]).toMatchObject({
      f_port: 20,
      frm_payload: Buffer.from('{"rate":60}').toString('base64'),
      correlation_ids: [`tributary:command:${id}`],
    })
    expect((await finalStatus(tenant, id)).headers['ce_status']).toBe('delivered')
  })

  it('never writes the downlink API key to its logs', () => {
    const everything = JSON.stringify(proc.lines) + proc.stderr.join('\n')
    expect(proc.lines.length).toBeGreaterThan(10)
    expect(everything).not.toContain(API_KEY)
    expect(everything).not.toContain('D0WNL1NKK3Y')
  })
})
