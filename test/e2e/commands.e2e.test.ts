// Commands end to end on a scaled-out deployment: two tributary processes sharing Kafka,
// PostgreSQL and Redis. Applications send with curl through either API; devices are MQTT.js
// clients on either process. Covered: one-way delivery with its status events (read with kcat),
// request/response with `wait` (also when the device is on the other process), the response
// timeout, the durable offline queue delivered in order on connect, ttl expiry, ttl 0, and the
// refusals (another tenant's device, a reader, an unknown device); a command produced with kcat.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { ADMIN_TOKEN, startMqttTributary, waitForRecords } from '../helpers/mqtt.ts'
import type { KafkaRecord, MqttTributary } from '../helpers/mqtt.ts'
import { uniqueName } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PASSWORD = 'correct horse battery'
const TENANT = 'acme'
const OTHER = 'globex'

let brokers = ''
let prefix = ''
let schema = ''
let a: MqttTributary
let b: MqttTributary
let readerToken = ''
let otherToken = ''
const clients: MqttClient[] = []

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  brokers = kafkaBrokers()
  prefix = uniqueName('e2e_cmd').replaceAll('-', '_')
  schema = uniqueName('cmd').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  const env = {
    TRIBUTARY_KAFKA_BROKERS: brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    TRIBUTARY_REDIS_URL: inject('redisUrl'),
    TRIBUTARY_APP_MQTT_PORT: '0',
    TRIBUTARY_HTTP_PORT: '0',
    TRIBUTARY_COAP_PORT: '0',
  }
  a = await startMqttTributary(env)
  b = await startMqttTributary(env)
  for (const tenant of [TENANT, OTHER]) await a.api.createTenant(tenant)
  for (const device of ['d1', 'd2', 'late', 'queued', 'gone', 'never']) {
    await a.api.createDevice(TENANT, device)
    await a.api.setPassword(TENANT, device, PASSWORD)
  }
  await a.api.createDevice(OTHER, 'theirs')
  const reader = await a.api.request('POST', `/tenants/${TENANT}/tokens`, { name: 'viewer', role: 'reader' })
  readerToken = reader.body.secret as string
  const other = await a.api.request('POST', `/tenants/${OTHER}/tokens`, { name: 'ops', role: 'admin' })
  otherToken = other.body.secret as string
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
})

afterAll(async () => {
  const codes = await Promise.all([a?.proc.stop('SIGTERM'), b?.proc.stop('SIGTERM')])
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  expect(codes).toEqual([0, 0])
})

/** A device on `on`, subscribed to its commands; what it receives is in `got`. */
async function device(
  on: MqttTributary,
  id: string,
): Promise<{ client: MqttClient; got: Array<{ topic: string; payload: string }> }> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${on.ports.mqtt}`, {
    username: `${id}@${TENANT}`,
    password: PASSWORD,
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
  })
  clients.push(client)
  const got: Array<{ topic: string; payload: string }> = []
  client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }))
  const granted = await client.subscribeAsync('command/#', { qos: 1 })
  expect(granted.map((g) => g.qos)).toEqual([1])
  return { client, got }
}

/** POST a command with curl; returns status, headers and body. */
async function send(
  on: MqttTributary,
  target: string,
  name: string,
  query: string,
  body: string,
  token = ADMIN_TOKEN,
  tenant = TENANT,
) {
  return curl(
    [
      '-sS',
      '-X',
      'POST',
      '-H',
      `authorization: Bearer ${token}`,
      '-H',
      'content-type: text/plain',
      '--data-binary',
      '@-',
      `http://127.0.0.1:${on.ports.api}/api/v1/tenants/${tenant}/devices/${target}/commands/${name}${query}`,
    ],
    Buffer.from(body),
  )
}

const statusesOf = (id: string) => (r: KafkaRecord) =>
  r.headers['ce_type'] === 'io.tributary.command.status.v1' && r.headers['ce_commandid'] === id

async function statuses(id: string, count: number): Promise<string[]> {
  const records = await waitForRecords(brokers, `${prefix}.events.${TENANT}`, statusesOf(id), { count })
  return records.map((r) => {
    const data = JSON.parse(r.payload ?? '{}') as { status: string; reason?: string }
    return data.reason === undefined ? data.status : `${data.status}:${data.reason}`
  })
}

/** Produces one record to the commands topic with kcat, headers as given. */
async function kcatProduce(key: string, value: string, headers: Array<[string, string]>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const args = ['-P', '-b', brokers, '-t', `${prefix}.commands`, '-k', key]
    for (const [name, v] of headers) args.push('-H', `${name}=${v}`)
    const child = execFile('kcat', args, { timeout: 30_000 }, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`kcat: ${stderr}`, { cause: err })),
    )
    child.stdin?.end(value)
  })
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('commands', () => {
  it('delivers a one-way command to a connected device and reports accepted and delivered', async () => {
    const d1 = await device(a, 'd1')
    const reply = await send(a, 'd1', 'reboot', '', 'now')
    expect(reply.status).toBe(202)
    const { id, requestId } = JSON.parse(reply.body.toString()) as { id: string; requestId?: string }
    expect(requestId).toBeUndefined()
    await until(() => d1.got.length === 1, 'the command at the device')
    expect(d1.got).toEqual([{ topic: 'command/reboot', payload: 'now' }])
    expect(await statuses(id, 2)).toEqual(['accepted', 'delivered'])
  })

  it('routes a command sent through one process to a device connected to the other', async () => {
    const d2 = await device(b, 'd2')
    const reply = await send(a, 'd2', 'blink', '?ttl=5', 'twice')
    expect(reply.status).toBe(202)
    await until(() => d2.got.length === 1, 'the command on the other process')
    expect(d2.got[0]).toEqual({ topic: 'command/blink', payload: 'twice' })
  })

  it('returns the device’s response to a waiting request, across processes', async () => {
    const d2 = await device(b, 'd2')
    d2.client.on('message', (topic, payload) => {
      const match = /^command\/([^/]+)\/req\/([^/]+)$/.exec(topic)
      if (match === null) return
      void d2.client.publishAsync(`command/res/${match[2]}/201`, `done:${payload.toString()}`, { qos: 1 })
    })
    const reply = await send(a, 'd2', 'measure', '?wait=5', 'now')
    expect(reply.status).toBe(200)
    expect(reply.body.toString()).toBe('done:now')
    expect(reply.headers['tributary-command-status']).toBe('201')
    const requestId = reply.headers['tributary-request-id']!
    // The response is an event on the tenant topic as well, correlated by the request id.
    const [response] = await waitForRecords(
      brokers,
      `${prefix}.events.${TENANT}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.command.response.v1' &&
        r.headers['ce_requestid'] === requestId,
    )
    expect(response!.headers['ce_status']).toBe('201')
    expect(response!.payload).toBe('done:now')
  })

  it('gives a request id without waiting (request=true); the answer arrives as a response event', async () => {
    const d1 = await device(a, 'd1')
    d1.client.on('message', (topic) => {
      const match = /^command\/status\/req\/([^/]+)$/.exec(topic)
      if (match !== null) void d1.client.publishAsync(`command/res/${match[1]}/200`, 'ok', { qos: 1 })
    })
    const reply = await send(a, 'd1', 'status', '?request=true', '')
    expect(reply.status).toBe(202)
    const { requestId } = JSON.parse(reply.body.toString()) as { requestId: string }
    expect(requestId).toMatch(/^[A-Za-z0-9._~-]{1,64}$/)
    const [response] = await waitForRecords(
      brokers,
      `${prefix}.events.${TENANT}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.command.response.v1' &&
        r.headers['ce_requestid'] === requestId,
    )
    expect(response!.payload).toBe('ok')
  })

  it('answers 504 when the device does not respond within wait', async () => {
    const d1 = await device(a, 'd1')
    const reply = await send(a, 'd1', 'ignore-me', '?wait=1', '')
    expect(reply.status).toBe(504)
    expect(JSON.parse(reply.body.toString())).toMatchObject({
      code: 'COMMAND_TIMEOUT',
      reason: 'no-response',
    })
    expect(d1.got.map((m) => m.topic)).toEqual([expect.stringMatching(/^command\/ignore-me\/req\/.+$/)])
  })

  it('keeps commands for an offline device until it connects, in order, and expires what waited too long', async () => {
    const first = JSON.parse((await send(b, 'queued', 'one', '?ttl=60', '1')).body.toString()) as {
      id: string
    }
    const second = JSON.parse((await send(a, 'queued', 'two', '?ttl=60', '2')).body.toString()) as {
      id: string
    }
    const short = JSON.parse((await send(a, 'queued', 'three', '?ttl=1', '3')).body.toString()) as {
      id: string
    }
    expect(await statuses(short.id, 2)).toEqual(['accepted', 'expired:ttl'])
    const late = await device(b, 'queued')
    await until(() => late.got.length === 2, 'the queued commands')
    expect(late.got).toEqual([
      { topic: 'command/one', payload: '1' },
      { topic: 'command/two', payload: '2' },
    ])
    expect(await statuses(first.id, 2)).toEqual(['accepted', 'delivered'])
    expect(await statuses(second.id, 2)).toEqual(['accepted', 'delivered'])
  })

  it('with ttl 0 delivers only to a connected device, and expires the command otherwise', async () => {
    const reply = await send(a, 'never', 'now-or-never', '?ttl=0', '')
    const { id } = JSON.parse(reply.body.toString()) as { id: string }
    expect(await statuses(id, 1)).toEqual(['expired:not-connected'])
    const waiting = await send(a, 'never', 'now-or-never', '?ttl=0&wait=2', '')
    expect(waiting.status).toBe(504)
    expect(JSON.parse(waiting.body.toString())).toMatchObject({ reason: 'not-connected' })
    // Connected to the other process, the device gets it.
    const online = await device(b, 'never')
    const sent = await send(a, 'never', 'now-or-never', '?ttl=0', 'here')
    await until(() => online.got.length === 1, 'the ttl 0 command')
    expect(online.got[0]).toEqual({ topic: 'command/now-or-never', payload: 'here' })
    const { id: delivered } = JSON.parse(sent.body.toString()) as { id: string }
    expect(await statuses(delivered, 2)).toEqual(['accepted', 'delivered'])
  })

  it('takes a command a data engineer produces with kcat, and dead-letters a record that is no command', async () => {
    const d2 = await device(b, 'd2')
    const id = `kcat-${Date.now()}`
    await kcatProduce(`${TENANT}/d2`, 'from-kafka', [
      ['ce_specversion', '1.0'],
      ['ce_id', id],
      ['ce_source', 'ops-console'],
      ['ce_type', 'io.tributary.command.v1'],
      ['ce_tenant', TENANT],
      ['ce_device', 'd2'],
      ['ce_subject', 'calibrate'],
      ['ce_ttl', '30000'],
      ['content-type', 'text/plain'],
    ])
    await until(() => d2.got.length === 1, 'the command produced with kcat')
    expect(d2.got[0]).toEqual({ topic: 'command/calibrate', payload: 'from-kafka' })
    expect(await statuses(id, 2)).toEqual(['accepted', 'delivered'])
    await kcatProduce(`${TENANT}/d2`, 'junk', [['ce_type', 'io.tributary.command.v1']])
    const [letter] = await waitForRecords(
      brokers,
      `${prefix}.deadletter`,
      (r) => r.headers['tributary_step'] === 'commands' && r.payload === 'junk',
    )
    expect(letter!.headers['tributary_reason']).toBe('command-invalid')
  })

  it('refuses another tenant’s device, a reader, an unknown device and bad input', async () => {
    const stranger = await send(a, 'theirs', 'open', '', 'x', ADMIN_TOKEN.replace(/./g, 'x'), OTHER)
    expect(stranger.status).toBe(401)
    const crossTenant = await send(a, 'd1', 'open', '', 'x', otherToken)
    expect(crossTenant.status).toBe(404)
    const reader = await send(a, 'd1', 'open', '', 'x', readerToken)
    expect(reader.status).toBe(403)
    expect((await send(a, 'nobody', 'open', '', 'x')).status).toBe(404)
    expect((await send(a, 'd1', 'res', '', 'x')).status).toBe(400)
    expect((await send(a, 'd1', 'open', '?ttl=-1', 'x')).status).toBe(400)
    expect((await send(a, 'd1', 'open', '?wait=100000', 'x')).status).toBe(400)
    // Another tenant's admin reaching for this tenant's device through its own tenant path finds nothing.
    expect((await send(a, 'd1', 'open', '', 'x', otherToken, OTHER)).status).toBe(404)
  })

  it('ends a command for a device deleted while it waited with failed or expired, never silently', async () => {
    const reply = await send(a, 'gone', 'cleanup', '?ttl=2', '')
    const { id } = JSON.parse(reply.body.toString()) as { id: string }
    expect((await a.api.request('DELETE', `/tenants/${TENANT}/devices/gone`)).status).toBe(204)
    expect(await statuses(id, 2)).toEqual(['accepted', 'expired:ttl'])
  })
})
