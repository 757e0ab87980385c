// Commands to HTTP and CoAP devices as applications and devices meet them: a running `tributary
// start` on the Kafka bus, commands sent through the management API, devices played by curl (long
// polls, responses) and libcoap's coap-client (`?ct=` and Observe); status events read back from
// the tenant's events topic with kcat.
import { execFile, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { ADMIN_TOKEN, waitForRecords } from '../helpers/mqtt.ts'
import type { Api, KafkaRecord } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const COAP_CLIENT = 'coap-client-notls'
const PASSWORD = 'correct horse battery'

let brokers = ''
let prefix = ''
let ingress = ''
let proc: TributaryProcess
let api: Api
let apiBase = ''
let httpBase = ''
let coapPort = 0

beforeAll(async () => {
  const t = await startOnKafka('e2e_cmd')
  ;({ brokers, prefix, ingress, proc, api } = t)
  apiBase = t.url('api')
  httpBase = t.url('http')
  coapPort = t.ports['coap']!
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

async function tenantWithDevices(
  devices: Array<string | [string, Record<string, unknown>]>,
): Promise<string> {
  const tenant = uniqueName('cm')
  await api.createTenant(tenant)
  for (const entry of devices) {
    const [id, fields] = typeof entry === 'string' ? [entry, {}] : entry
    await api.createDevice(tenant, id, fields)
    await api.setPassword(tenant, id, PASSWORD)
  }
  return tenant
}

/** POST /api/v1/tenants/<t>/devices/<d>/commands/<name>?<query>, as an application sends a command. */
async function sendCommand(
  tenant: string,
  device: string,
  name: string,
  body: string,
  query: string,
  contentType = 'application/json',
): Promise<Response> {
  return fetch(`${apiBase}/api/v1/tenants/${tenant}/devices/${device}/commands/${name}?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': contentType },
    body,
    signal: AbortSignal.timeout(30_000),
  })
}

async function queued(tenant: string, device: string, name: string, body: string): Promise<string> {
  const response = await sendCommand(tenant, device, name, body, 'ttl=60')
  expect(response.status).toBe(202)
  return ((await response.json()) as { id: string }).id
}

const login = (device: string, tenant: string): string[] => ['-u', `${device}@${tenant}:${PASSWORD}`]

/** The status events of a command on the tenant's events topic, once `status` is among them. */
async function statusOf(tenant: string, id: string, status: string): Promise<KafkaRecord> {
  const [record] = await waitForRecords(
    brokers,
    `${prefix}.events.${tenant}`,
    (r) =>
      r.headers['ce_type'] === 'io.tributary.command.status.v1' &&
      r.headers['ce_commandid'] === id &&
      r.headers['ce_status'] === status,
    { timeoutMs: 30_000 },
  )
  return record!
}

interface CoapRun {
  readonly done: Promise<string>
  stop(): void
}

/** coap-client with every PDU logged (-v 7, on stdout with the payloads); killed after 40 s at the latest. */
function coapClient(args: readonly string[], path: string): CoapRun {
  const child = spawn(COAP_CLIENT, ['-v', '7', '-B', '30', ...args, `coap://127.0.0.1:${coapPort}${path}`])
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000)
  const done = new Promise<string>((resolve, reject) => {
    child.once('error', (err) =>
      reject(new Error(`${COAP_CLIENT} could not run (libcoap3-bin)`, { cause: err })),
    )
    child.once('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
  })
  return { done, stop: () => child.kill('SIGINT') }
}

const coapLogin = (device: string, tenant: string): string[] => [
  '-O',
  `4209,Basic ${Buffer.from(`${device}@${tenant}:${PASSWORD}`).toString('base64')}`,
]

describe('commands over HTTP (e2e: curl, API, kcat)', () => {
  it('answers a curl long poll with a command sent through the API while it waits', async () => {
    const tenant = await tenantWithDevices(['heater-1'])
    const marker = uniqueName('reading')
    const polling = curl([
      ...login('heater-1', tenant),
      '--data-binary',
      marker,
      `${httpBase}/v1/temperature?ct=20`,
    ])
    // The message is durable before the wait begins: once it is on Kafka, the device is waiting.
    await waitForRecords(brokers, ingress, (r) => r.payload === marker)
    const response = await sendCommand(tenant, 'heater-1', 'setpoint', '{"celsius":21}', 'ttl=30')
    expect(response.status).toBe(202)
    const { id } = (await response.json()) as { id: string }
    const reply = await polling
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('{"celsius":21}')
    expect(reply.headers).toMatchObject({
      'tributary-command': 'setpoint',
      'tributary-command-id': id,
      'content-type': 'application/json',
    })
    expect(reply.headers['tributary-request-id']).toBeUndefined()
    const status = await statusOf(tenant, id, 'delivered')
    expect(status.headers['ce_protocol']).toBe('http')
  })

  it('delivers a command queued before the poll at once (GET /v1/command)', async () => {
    const tenant = await tenantWithDevices(['heater-2'])
    const id = await queued(tenant, 'heater-2', 'reboot', '{}')
    const reply = await curl([...login('heater-2', tenant), `${httpBase}/v1/command?ct=20`])
    expect(reply.status).toBe(200)
    expect(reply.headers['tributary-command']).toBe('reboot')
    expect(reply.headers['tributary-command-id']).toBe(id)
    await statusOf(tenant, id, 'delivered')
  })

  it('answers 202 (POST) and 204 (GET) when ct passes with nothing for the device', async () => {
    const tenant = await tenantWithDevices(['heater-3'])
    const posted = await curl([...login('heater-3', tenant), '--data-binary', 'x', `${httpBase}/v1/t?ct=1`])
    expect(posted).toMatchObject({ status: 202, body: '' })
    const polled = await curl([...login('heater-3', tenant), `${httpBase}/v1/command?ct=1`])
    expect(polled).toMatchObject({ status: 204, body: '' })
    const bad = await curl([...login('heater-3', tenant), `${httpBase}/v1/command?ct=forever`])
    expect(bad.status).toBe(400)
  })

  it("returns a device's curl response to the API call that waits for it", async () => {
    const tenant = await tenantWithDevices(['meter-4'])
    const waiting = sendCommand(tenant, 'meter-4', 'read', '{"register":7}', 'wait=25')
    const poll = await curl([...login('meter-4', tenant), `${httpBase}/v1/command?ct=20`])
    expect(poll.status).toBe(200)
    expect(poll.headers['tributary-command']).toBe('read')
    const requestId = poll.headers['tributary-request-id']!
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
    const answered = await curl([
      ...login('meter-4', tenant),
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      '{"value":1234}',
      `${httpBase}/v1/command/res/${requestId}/200`,
    ])
    expect(answered).toMatchObject({ status: 202, body: '' })
    const result = await waiting
    expect(result.status).toBe(200)
    expect(result.headers.get('tributary-command-status')).toBe('200')
    expect(result.headers.get('tributary-request-id')).toBe(requestId)
    expect(await result.text()).toBe('{"value":1234}')
    // The response is an event of its own on the tenant's topic.
    await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.command.response.v1' &&
        r.headers['ce_requestid'] === requestId,
    )
  })

  it('carries the trace of the API call to the device and back into its response event', async () => {
    const tenant = await tenantWithDevices(['meter-5'])
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const waiting = fetch(`${apiBase}/api/v1/tenants/${tenant}/devices/meter-5/commands/read?wait=25`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', traceparent },
      body: '{}',
      signal: AbortSignal.timeout(30_000),
    })
    const poll = await curl([...login('meter-5', tenant), `${httpBase}/v1/command?ct=20`])
    expect(poll.status).toBe(200)
    // The device is told the trace of the command, and answers within it.
    expect(poll.headers['traceparent']).toBe(traceparent)
    const requestId = poll.headers['tributary-request-id']!
    const answered = await curl([
      ...login('meter-5', tenant),
      ...['-H', 'Content-Type: application/json', '-H', `traceparent: ${poll.headers['traceparent']}`],
      ...['--data-binary', '{"value":1}', `${httpBase}/v1/command/res/${requestId}/200`],
    ])
    expect(answered.status).toBe(202)
    expect((await waiting).status).toBe(200)
    const [response] = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.command.response.v1' &&
        r.headers['ce_requestid'] === requestId,
    )
    expect(response!.headers['ce_traceparent']).toBe(traceparent)
  })

  it("gives a device only its own commands: not another tenant's, not another device's", async () => {
    const mine = await tenantWithDevices(['d1', 'd2'])
    const theirs = await tenantWithDevices(['d1'])
    const foreign = await queued(theirs, 'd1', 'foreign', '"theirs"')
    const sibling = await queued(mine, 'd2', 'sibling', '"d2"')
    const own = await curl([...login('d1', mine), `${httpBase}/v1/command?ct=2`])
    expect(own).toMatchObject({ status: 204, body: '' })
    // Not a gateway of d2: it may not poll for it either.
    const asSibling = await curl([...login('d1', mine), `${httpBase}/v1/command?ct=2&as=d2`])
    expect(asSibling.status).toBe(403)
    // Each owner still gets its command.
    const theirReply = await curl([...login('d1', theirs), `${httpBase}/v1/command?ct=20`])
    expect(theirReply.headers['tributary-command-id']).toBe(foreign)
    const siblingReply = await curl([...login('d2', mine), `${httpBase}/v1/command?ct=20`])
    expect(siblingReply.headers['tributary-command-id']).toBe(sibling)
  })
})

describe('commands over CoAP (e2e: coap-client, API, kcat)', () => {
  it('returns a queued command on the response to a coap-client POST with ?ct=', async () => {
    const tenant = await tenantWithDevices(['lamp-1'])
    const id = await queued(tenant, 'lamp-1', 'dim', '{"level":30}')
    const out = await coapClient(
      ['-m', 'post', '-e', 'on', ...coapLogin('lamp-1', tenant)],
      '/v1/state?ct=20',
    ).done
    expect(out).toContain('{"level":30}')
    expect(out).toMatch(/c:2\.05 .*Content-Format:application\/json/)
    expect(out).toMatch(/Location-Query:command=dim/)
    const status = await statusOf(tenant, id, 'delivered')
    expect(status.headers['ce_protocol']).toBe('coap')
  })

  it('notifies a coap-client observing /v1/commands of two commands, in order', async () => {
    const tenant = await tenantWithDevices(['lamp-2'])
    const first = await queued(tenant, 'lamp-2', 'first', '"payload-one"')
    const client = coapClient(['-m', 'get', '-s', '30', ...coapLogin('lamp-2', tenant)], '/v1/commands')
    // The first one delivered means the observation is registered: the second comes while it lasts.
    await statusOf(tenant, first, 'delivered')
    const second = await queued(tenant, 'lamp-2', 'second', '"payload-two"')
    await statusOf(tenant, second, 'delivered')
    client.stop()
    const out = await client.done
    expect(out.indexOf('"payload-one"')).toBeGreaterThan(0)
    expect(out.indexOf('"payload-two"')).toBeGreaterThan(out.indexOf('"payload-one"'))
    expect(out).toMatch(/Location-Query:command=first/)
    expect(out).toMatch(/Location-Query:command=second/)
  })
})

// kcat and coap-client must exist: a missing client fails here rather than skipping tests.
it('has the clients it drives', async () => {
  for (const [tool, args] of [
    ['kcat', ['-V']],
    [COAP_CLIENT, ['-h']],
    ['curl', ['--version']],
  ] as const) {
    await new Promise<void>((resolve, reject) =>
      execFile(tool, [...args], (err) =>
        err !== null && typeof err.code !== 'number' ? reject(new Error(`${tool} missing`)) : resolve(),
      ),
    )
  }
})
