// One device message followed through a scaled-out pipeline by its W3C trace context: three
// tributary processes (adapters; processors; consumers and API) on Kafka, PostgreSQL and Redis,
// each exporting its spans over OTLP/HTTP to a receiver in this test, which decodes the JSON
// export. curl posts with a traceparent; the webhook receiver must get the same trace id, and the
// spans of the three processes must form one chain: the caller's span → the adapter's ingest →
// the processor → the webhook delivery, whose span is the parent the receiver is given.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { text } from 'node:stream/consumers'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { WebSocket } from 'ws'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, createApi } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PASSWORD = 'tracing e2e secret'

interface ExportedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly name: string
  readonly kind: number
}

interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> }
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }>
    }>
  }>
}

let schema = ''
let otlp: Server
let receiver: Server
let receiverUrl = ''
const spans: ExportedSpan[] = []
const exportContentTypes = new Set<string>()
const deliveries: Array<{ headers: Record<string, string>; body: string }> = []
const procs: TributaryProcess[] = []
let api: Api
let apiPort = 0
let appMqttPort = 0
let deviceUrl = ''

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The OTLP/HTTP JSON export's spans, with the service each came from. */
function collect(body: OtlpJson): void {
  for (const resourceSpans of body.resourceSpans ?? []) {
    const service =
      resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? ''
    for (const scope of resourceSpans.scopeSpans ?? [])
      for (const span of scope.spans ?? [])
        spans.push({
          service,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? '',
          name: span.name,
          kind: span.kind,
        })
  }
}

beforeAll(async () => {
  otlp = createServer((request, response) => {
    void text(request).then((body) => {
      exportContentTypes.add(request.headers['content-type'] ?? '')
      if (request.url === '/v1/traces') collect(JSON.parse(body) as OtlpJson)
      response.setHeader('content-type', 'application/json')
      response.end('{}')
    })
  })
  const collector = await listen(otlp)
  receiver = createServer((request, response) => {
    void text(request).then((body) => {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers))
        if (typeof value === 'string') headers[name] = value
      deliveries.push({ headers, body })
      response.statusCode = 204
      response.end()
    })
  })
  receiverUrl = await listen(receiver)

  schema = uniqueName('trace').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  const shared = {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_KAFKA_BROKERS: kafkaBrokers(),
    TRIBUTARY_TOPIC_PREFIX: uniqueName('e2e_trace').replaceAll('-', '_'),
    TRIBUTARY_TOPIC_PARTITIONS: '2',
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    TRIBUTARY_REDIS_URL: inject('redisUrl'),
    TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'true',
    // The standard variables switch tracing on; the exporter sends JSON to this test's receiver.
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector}/v1/traces`,
  }
  // One after the other: the first creates the topics and migrates the schema.
  for (const roles of ['consumers,api', 'processors', 'adapters']) {
    const proc = startProcess(['start', '--roles', roles], {
      ...shared,
      OTEL_SERVICE_NAME: `tributary-${roles.split(',')[0] ?? ''}`,
    })
    procs.push(proc)
    const started = await proc.waitForLog((l) => l.msg === 'tributary started')
    const ports = started['ports'] as Record<string, number>
    if (ports['api'] !== undefined) {
      apiPort = ports['api']
      appMqttPort = ports['appMqtt'] ?? 0
      api = createApi(`http://127.0.0.1:${apiPort}`)
    }
    if (ports['http'] !== undefined) deviceUrl = `http://127.0.0.1:${ports['http']}`
  }
}, 120_000)

afterAll(async () => {
  const codes = await Promise.all(procs.reverse().map((p) => p.stop('SIGTERM')))
  await Promise.all([otlp, receiver].map((s) => new Promise((resolve) => s?.close(resolve))))
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  expect(codes).toEqual(procs.map(() => 0))
})

async function subscribedTenant(): Promise<string> {
  const tenant = uniqueName('tr')
  await api.createTenant(tenant)
  await api.createDevice(tenant, 'meter-1')
  await api.setPassword(tenant, 'meter-1', PASSWORD)
  const created = await api.request('POST', `/tenants/${tenant}/subscriptions`, {
    url: `${receiverUrl}/hook?tenant=${tenant}`,
  })
  expect(created.status).toBe(201)
  return tenant
}

async function post(tenant: string, body: string, traceparent?: string): Promise<void> {
  const reply = await curl([
    ...['-u', `meter-1@${tenant}:${PASSWORD}`, '-H', 'Content-Type: application/json'],
    ...(traceparent === undefined ? [] : ['-H', `traceparent: ${traceparent}`]),
    ...['--data-binary', body, `${deviceUrl}/v1/power`],
  ])
  expect(reply.status).toBe(202)
}

async function deliveryOf(tenant: string): Promise<{ headers: Record<string, string>; body: string }> {
  // The device's telemetry: the subscription also gets the tenant's registry events.
  const find = () =>
    deliveries.find(
      (d) => d.headers['ce-tenant'] === tenant && d.headers['ce-type'] === 'io.tributary.telemetry.v1',
    )
  await waitUntil(() => find() !== undefined, {
    timeoutMs: 60_000,
    message: () => `a webhook delivery for ${tenant}`,
  })
  return find()!
}

/** The exported spans of a trace, once the chain of three stages is complete. */
async function chainOf(traceId: string): Promise<Record<string, ExportedSpan>> {
  const byName = () => Object.fromEntries(spans.filter((s) => s.traceId === traceId).map((s) => [s.name, s]))
  await waitUntil(() => ['ingest telemetry', 'process', 'webhook deliver'].every((n) => n in byName()), {
    // The batch span processors export every few seconds.
    timeoutMs: 60_000,
    message: () => `spans of trace ${traceId}: ${JSON.stringify(spans.filter((s) => s.traceId === traceId))}`,
  })
  return byName()
}

const parts = (traceparent: string | undefined) => {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/.exec(traceparent ?? '')
  expect(m, `traceparent ${traceparent ?? '(none)'}`).not.toBeNull()
  return { traceId: m![1]!, parentId: m![2]!, flags: m![3]! }
}

describe('tracing (e2e: curl → adapters → processors → consumers → webhook receiver, OTLP export)', () => {
  it('continues the caller’s trace through three processes to the webhook receiver, as one chain of spans', async () => {
    const tenant = await subscribedTenant()
    const traceId = randomBytes(16).toString('hex')
    const callerSpan = randomBytes(8).toString('hex')
    await post(tenant, '{"w":1}', `00-${traceId}-${callerSpan}-01`)

    const delivery = await deliveryOf(tenant)
    const sent = parts(delivery.headers['traceparent'])
    expect(sent.traceId).toBe(traceId)
    expect(sent.flags).toBe('01')

    const chain = await chainOf(traceId)
    const ingest = chain['ingest telemetry']!
    const process = chain['process']!
    const deliver = chain['webhook deliver']!
    // Each stage in its own process, each the child of the one before.
    expect([ingest.service, process.service, deliver.service]).toEqual([
      'tributary-adapters',
      'tributary-processors',
      'tributary-consumers',
    ])
    expect(ingest.parentSpanId).toBe(callerSpan)
    expect(process.parentSpanId).toBe(ingest.spanId)
    expect(deliver.parentSpanId).toBe(process.spanId)
    expect(sent.parentId).toBe(deliver.spanId)
    // OTLP span kinds: PRODUCER 4, CONSUMER 5, CLIENT 3.
    expect([ingest.kind, process.kind, deliver.kind]).toEqual([4, 5, 3])
    // The event the application got carries the processor's span as its traceparent extension.
    expect(delivery.headers['ce-traceparent']).toBe(`00-${traceId}-${process.spanId}-01`)
    expect([...exportContentTypes]).toEqual(['application/json'])
  })

  it('continues the trace into a WebSocket delivery, beside the webhook', async () => {
    const tenant = await subscribedTenant()
    const ws = new WebSocket(
      `ws://127.0.0.1:${apiPort}/api/v1/tenants/${tenant}/events?type=io.tributary.telemetry.v1`,
      ['cloudevents.json'],
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
    )
    const received: Array<Record<string, unknown>> = []
    ws.on('message', (data: Buffer) => received.push(JSON.parse(data.toString()) as Record<string, unknown>))
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    try {
      const traceId = randomBytes(16).toString('hex')
      await post(tenant, '{"w":4}', `00-${traceId}-${randomBytes(8).toString('hex')}-01`)
      await waitUntil(() => received.length > 0, {
        timeoutMs: 60_000,
        message: () => 'an event on the socket',
      })
      const chain = await chainOf(traceId)
      expect(received[0]!['traceparent']).toBe(`00-${traceId}-${chain['process']!.spanId}-01`)
      await waitUntil(() => spans.some((s) => s.traceId === traceId && s.name === 'websocket deliver'), {
        timeoutMs: 60_000,
        message: () =>
          `a websocket deliver span in ${JSON.stringify(spans.filter((s) => s.traceId === traceId))}`,
      })
      const deliver = spans.find((s) => s.traceId === traceId && s.name === 'websocket deliver')!
      expect(deliver.parentSpanId).toBe(chain['process']!.spanId)
      expect(deliver.service).toBe('tributary-consumers')
    } finally {
      ws.close()
    }
  })

  it('continues the trace into an application MQTT delivery', async () => {
    const tenant = await subscribedTenant()
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${appMqttPort}`, {
      username: tenant,
      password: ADMIN_TOKEN,
      protocolVersion: 4,
      reconnectPeriod: 0,
    })
    try {
      const received: Array<Record<string, unknown>> = []
      client.on('message', (_topic, payload) =>
        received.push(JSON.parse(payload.toString()) as Record<string, unknown>),
      )
      await client.subscribeAsync(`app/${tenant}/power`, { qos: 1 })
      const traceId = randomBytes(16).toString('hex')
      await post(tenant, '{"w":5}', `00-${traceId}-${randomBytes(8).toString('hex')}-01`)
      await waitUntil(() => received.length > 0, { timeoutMs: 60_000, message: () => 'an event over MQTT' })
      const chain = await chainOf(traceId)
      expect(received[0]!['traceparent']).toBe(`00-${traceId}-${chain['process']!.spanId}-01`)
      await waitUntil(() => spans.some((s) => s.traceId === traceId && s.name === 'mqtt deliver'), {
        timeoutMs: 60_000,
        message: () =>
          `an mqtt deliver span in ${JSON.stringify(spans.filter((s) => s.traceId === traceId))}`,
      })
      const deliver = spans.find((s) => s.traceId === traceId && s.name === 'mqtt deliver')!
      expect(deliver.parentSpanId).toBe(chain['process']!.spanId)
      expect(deliver.service).toBe('tributary-consumers')
    } finally {
      await client.endAsync()
    }
  })

  it('starts a trace at the adapter when the device sent none', async () => {
    const tenant = await subscribedTenant()
    await post(tenant, '{"w":2}')
    const delivery = await deliveryOf(tenant)
    const { traceId } = parts(delivery.headers['traceparent'])
    const chain = await chainOf(traceId)
    expect(chain['ingest telemetry']!.parentSpanId).toBe('')
    expect(chain['process']!.parentSpanId).toBe(chain['ingest telemetry']!.spanId)
  })

  it('ignores a malformed traceparent and starts a trace of its own', async () => {
    const tenant = await subscribedTenant()
    await post(tenant, '{"w":3}', `00-${'0'.repeat(32)}-${randomBytes(8).toString('hex')}-01`)
    const delivery = await deliveryOf(tenant)
    const { traceId } = parts(delivery.headers['traceparent'])
    expect(traceId).not.toBe('0'.repeat(32))
    expect((await chainOf(traceId))['ingest telemetry']!.parentSpanId).toBe('')
  })
})
