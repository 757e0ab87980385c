// What a tenant configures for its events, seen from outside a running `tributary start` on Kafka:
// channel schemas, route rules and quotas set through the API with curl, devices posting with curl,
// kcat reading the tenant topic, its copy topic and the dead letter, and the dead letters listed
// through the API. Also the tenant topic's life: partitions from the tenant's settings, and the
// topic deleted once the grace period after deleting the tenant has passed.
import { execFile } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { CurlReply } from '../helpers/curl.ts'
import type { Api, KafkaRecord } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, isTelemetry, readTopic, waitForRecords } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const PASSWORD = 'processing rules e2e secret'
const GRACE_MS = 2_000

let brokers = ''
let prefix = ''
let proc: TributaryProcess
let api: Api
let device = ''
let management = ''

beforeAll(async () => {
  const t = await startOnKafka('e2e_rules', { TRIBUTARY_TENANT_TOPIC_GRACE_MS: String(GRACE_MS) })
  ;({ brokers, prefix, proc, api } = t)
  device = t.url('http')
  management = `${t.url('api')}/api/v1`
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

/** The management API through curl with the admin token. */
function manage(method: string, path: string, body?: unknown): Promise<CurlReply> {
  const args = ['-X', method, '-H', `Authorization: Bearer ${ADMIN_TOKEN}`]
  if (body !== undefined)
    args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body))
  return curl([...args, `${management}${path}`])
}

async function tenantWithDevice(fields: Record<string, unknown> = {}, labels: Record<string, string> = {}) {
  const tenant = uniqueName('rules')
  await api.createTenant(tenant, fields)
  await api.createDevice(tenant, 'sensor-1', { labels })
  await api.setPassword(tenant, 'sensor-1', PASSWORD)
  return tenant
}

function post(tenant: string, channel: string, body: string): Promise<CurlReply> {
  // The adapter refuses malformed JSON labelled as JSON; anything else it takes as it comes.
  const type = body.startsWith('{') ? 'application/json' : 'text/plain'
  return curl([
    '-u',
    `sensor-1@${tenant}:${PASSWORD}`,
    '-H',
    `Content-Type: ${type}`,
    '--data-binary',
    body,
    `${device}/v1/${channel}`,
  ])
}

async function postAll(tenant: string, sends: ReadonlyArray<readonly [string, string]>): Promise<void> {
  for (const [channel, body] of sends) expect((await post(tenant, channel, body)).status).toBe(202)
}

const ofTenant = (tenant: string) => (r: KafkaRecord) => r.headers['ce_tenant'] === tenant

function topicPartitions(topic: string): Promise<number | undefined> {
  return new Promise((resolve, reject) =>
    execFile('kcat', ['-L', '-J', '-b', brokers, '-t', topic], { timeout: 20_000 }, (err, out, stderr) => {
      if (err !== null) return reject(new Error(`kcat -L: ${stderr}`, { cause: err }))
      const meta = JSON.parse(out) as {
        topics: Array<{ topic: string; partitions?: unknown[]; error?: string }>
      }
      const entry = meta.topics.find((t) => t.topic === topic)
      resolve(entry === undefined || entry.error !== undefined ? undefined : (entry.partitions?.length ?? 0))
    }),
  )
}

describe('processing rules (e2e: curl → processors → kcat)', () => {
  it('validates data against the channel’s schema and lists what failed through the API', async () => {
    const tenant = await tenantWithDevice()
    const schema = {
      type: 'object',
      required: ['seq', 'watts'],
      properties: { seq: { type: 'integer' }, watts: { type: 'number', minimum: 0 } },
    }
    const put = await manage('PUT', `/tenants/${tenant}/schemas/power`, { schema })
    expect(put.status).toBe(201)
    expect(
      (await manage('PUT', `/tenants/${tenant}/schemas/power`, { schema: { type: 'nope' } })).status,
    ).toBe(400)

    await postAll(tenant, [
      ['power', JSON.stringify({ seq: 1, watts: 12.5 })],
      ['power', JSON.stringify({ seq: 2, watts: -3 })],
      ['power', 'not json at all'],
      ['other', JSON.stringify({ anything: true })],
    ])
    const accepted = await waitForRecords(brokers, `${prefix}.events.${tenant}`, isTelemetry, { count: 2 })
    expect(accepted.map((r) => [r.headers['ce_subject'], r.payload])).toEqual([
      ['power', JSON.stringify({ seq: 1, watts: 12.5 })],
      ['other', JSON.stringify({ anything: true })],
    ])
    const dead = await waitForRecords(brokers, `${prefix}.deadletter`, ofTenant(tenant), { count: 2 })
    expect(dead.map((r) => [r.headers['tributary_step'], r.headers['tributary_reason']])).toEqual([
      ['validate', 'schema-invalid'],
      ['validate', 'data-not-json'],
    ])
    expect(JSON.parse(dead[0]!.headers['tributary_detail'] ?? '[]')).toEqual([
      { path: '/watts', message: 'must be >= 0' },
    ])
    expect(dead[0]!.payload).toBe(JSON.stringify({ seq: 2, watts: -3 }))
    expect(dead[0]!.headers['tributary_first_failure']).toMatch(/^\d{4}-\d\d-\d\dT/)

    let listed: CurlReply | undefined
    await waitUntil(
      async () => {
        listed = await manage('GET', `/tenants/${tenant}/dead-letters`)
        return listed.status === 200 && (listed.json.items as unknown[]).length === 2
      },
      { timeoutMs: 15_000, message: () => `two dead letters listed, got ${listed?.body}` },
    )
    const reasons = (listed!.json.items as Array<{ reason: string; step: string; device: string }>).map(
      (i) => [i.step, i.reason, i.device],
    )
    expect(reasons.sort()).toEqual([
      ['validate', 'data-not-json', 'sensor-1'],
      ['validate', 'schema-invalid', 'sensor-1'],
    ])
  })

  it('applies the tenant’s route rules: set an extension and copy, drop, reject, retype', async () => {
    const tenant = await tenantWithDevice({}, { site: 'north' })
    const rules = [
      {
        name: 'alarms',
        match: { channel: 'alarm/+' },
        actions: [
          { action: 'set-extension', name: 'severity', value: 'high' },
          { action: 'copy', topic: 'alerts' },
        ],
      },
      { name: 'noise', match: { channel: 'debug/#' }, actions: [{ action: 'drop' }] },
      {
        name: 'north',
        match: { channel: 'legacy', labels: { site: 'north' } },
        actions: [{ action: 'reject', reason: 'legacy-retired' }],
      },
      {
        name: 'retype',
        match: { channel: 'meter' },
        actions: [{ action: 'set-type', type: 'com.example.meter.v2' }],
      },
    ]
    const put = await manage('PUT', `/tenants/${tenant}/routes`, { rules })
    expect(put.status).toBe(200)
    const bad = await manage('PUT', `/tenants/${tenant}/routes`, {
      rules: [
        { name: 'x', match: {}, actions: [{ action: 'set-extension', name: 'tenant', value: 'other' }] },
      ],
    })
    expect(bad.status).toBe(400)

    await postAll(tenant, [
      ['alarm/fire', '{"n":1}'],
      ['debug/trace/deep', '{"n":2}'],
      ['legacy', '{"n":3}'],
      ['meter', '{"n":4}'],
      ['plain', '{"n":5}'],
    ])
    // Everything but the tenant's registry changes, which reach its topic too.
    const notRegistry = (r: KafkaRecord) => r.headers['ce_type'] !== 'io.tributary.registry.v1'
    const events = await waitForRecords(brokers, `${prefix}.events.${tenant}`, notRegistry, {
      count: 3,
    })
    expect(events.map((r) => [r.payload, r.headers['ce_type'], r.headers['ce_severity']])).toEqual([
      ['{"n":1}', 'io.tributary.telemetry.v1', 'high'],
      ['{"n":4}', 'com.example.meter.v2', undefined],
      ['{"n":5}', 'io.tributary.telemetry.v1', undefined],
    ])
    const copies = await waitForRecords(brokers, `${prefix}.events.${tenant}.alerts`, () => true)
    expect(copies.map((r) => [r.payload, r.headers['ce_severity'], r.headers['ce_id']])).toEqual([
      ['{"n":1}', 'high', events[0]!.headers['ce_id']],
    ])
    const dead = await waitForRecords(brokers, `${prefix}.deadletter`, ofTenant(tenant))
    expect(dead.map((r) => [r.payload, r.headers['tributary_step'], r.headers['tributary_reason']])).toEqual([
      ['{"n":3}', 'route', 'legacy-retired'],
    ])
    // The dropped event went nowhere: every record of the tenant is accounted for above.
    const everywhere = [...(await readTopic(brokers, `${prefix}.events.${tenant}`)), ...dead, ...copies]
    expect(everywhere.filter((r) => r.payload === '{"n":2}')).toEqual([])
  })

  it('enforces the tenant’s quotas: payload size and events per second', async () => {
    const tenant = await tenantWithDevice({ quotas: { maxPayloadBytes: 64, maxEventsPerSecond: 1 } })
    await postAll(tenant, [['big', JSON.stringify({ pad: 'x'.repeat(100) })]])
    const big = await waitForRecords(brokers, `${prefix}.deadletter`, ofTenant(tenant))
    expect(big.map((r) => [r.headers['tributary_step'], r.headers['tributary_reason']])).toEqual([
      ['tenancy', 'payload-too-large'],
    ])

    const burst = Array.from({ length: 6 }, (_, n) => ['small', `{"n":${n}}`] as const)
    await postAll(tenant, burst)
    let accepted: KafkaRecord[] = []
    let refused: KafkaRecord[] = []
    await waitUntil(
      async () => {
        accepted = (await readTopic(brokers, `${prefix}.events.${tenant}`)).filter(isTelemetry)
        refused = (await readTopic(brokers, `${prefix}.deadletter`)).filter(
          (r) => ofTenant(tenant)(r) && r.headers['tributary_reason'] === 'quota-events',
        )
        return accepted.length + refused.length === burst.length
      },
      { timeoutMs: 20_000, message: () => `${accepted.length} accepted + ${refused.length} refused of 6` },
    )
    // One event per second with a burst of one: six events posted back to back cannot all pass.
    expect(accepted.length).toBeGreaterThanOrEqual(1)
    expect(refused.length).toBeGreaterThanOrEqual(1)
    expect(refused.every((r) => r.headers['tributary_step'] === 'tenancy')).toBe(true)
  })

  it('creates the tenant topic with the tenant’s partitions and deletes it after the grace period', async () => {
    const tenant = uniqueName('rules')
    const topic = `${prefix}.events.${tenant}`
    await api.createTenant(tenant, { settings: { topicPartitions: 3 } })
    await waitUntil(async () => (await topicPartitions(topic)) === 3, {
      timeoutMs: 15_000,
      message: () => `${topic} with 3 partitions`,
    })
    expect((await manage('DELETE', `/tenants/${tenant}`)).status).toBe(204)
    // Still there right after the delete: applications may read what is left during the grace period.
    expect(await topicPartitions(topic)).toBe(3)
    await waitUntil(async () => (await topicPartitions(topic)) === undefined, {
      timeoutMs: GRACE_MS + 20_000,
      message: () => `${topic} deleted after the grace period`,
    })
  })
})
