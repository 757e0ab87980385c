// Webhook failures as an operator sees them, on a scaled-out deployment: one `tributary` process
// serves the API, the device adapters and the processors, another only delivers webhooks, both on
// Kafka and one PostgreSQL registry. A real HTTP receiver answers 429 with Retry-After, answers too
// slowly, or answers 410; curl drives the API. The failed event is re-driven through the first
// process's API to the now-healthy receiver by the second process, and the stats endpoint shows
// what the engine counted.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { text } from 'node:stream/consumers'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { CurlReply } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, createApi } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PASSWORD = 'webhook failures e2e'
const RETRY_AFTER_S = 2

interface Received {
  readonly path: string
  /** The receiver's own clock, in ms. */
  readonly at: number
  readonly headers: Record<string, string>
  readonly body: string
}

let front: TributaryProcess
let engine: TributaryProcess
let api: Api
let schema = ''
let management = ''
let device = ''
let receiver: Server
let receiverUrl = ''
const received: Received[] = []
/** How the receiver answers each path (by its first segment); 204 when not set. */
const behaviour = new Map<string, (count: number, res: ServerResponse) => void>()

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function started(proc: TributaryProcess): Promise<Record<string, number>> {
  const line = await proc.waitForLog((l) => l.msg === 'tributary started')
  return line['ports'] as Record<string, number>
}

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const at = performance.now()
    void text(request).then((body) => {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers))
        if (typeof value === 'string') headers[name] = value
      const path = request.url ?? ''
      received.push({ path, at, headers, body })
      const answer = behaviour.get(path)
      if (answer === undefined) response.writeHead(204).end()
      else answer(received.filter((r) => r.path === path).length, response)
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

  schema = uniqueName('whf').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  const env = {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_KAFKA_BROKERS: kafkaBrokers(),
    TRIBUTARY_TOPIC_PREFIX: uniqueName('e2e_whf').replaceAll('-', '_'),
    TRIBUTARY_TOPIC_PARTITIONS: '2',
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    // The receiver is on loopback: a closed deployment's setting, off by default.
    TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'true',
  }
  // One after the other: the second finds the schema and the topics the first created.
  front = startProcess(['start', '--roles', 'processors,api,adapters'], env)
  const ports = await started(front)
  engine = startProcess(['start', '--roles', 'consumers'], env)
  await started(engine)
  management = `http://127.0.0.1:${ports['api']}/api/v1`
  device = `http://127.0.0.1:${ports['http']}`
  api = createApi(`http://127.0.0.1:${ports['api']}`)
})

afterAll(async () => {
  const codes = await Promise.all([engine?.stop('SIGTERM'), front?.stop('SIGTERM')])
  receiver?.closeAllConnections()
  await new Promise((resolve) => receiver?.close(resolve))
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  expect(codes).toEqual([0, 0])
})

function manage(method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<CurlReply> {
  const args = ['-X', method, '-H', `Authorization: Bearer ${token}`]
  if (body !== undefined)
    args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body))
  return curl([...args, `${management}${path}`])
}

async function tenantWithDevice(): Promise<string> {
  const tenant = uniqueName('whf')
  await api.createTenant(tenant)
  await api.createDevice(tenant, 'meter-1')
  await api.setPassword(tenant, 'meter-1', PASSWORD)
  return tenant
}

async function subscribe(tenant: string, path: string, fields: Record<string, unknown>) {
  const created = await manage('POST', `/tenants/${tenant}/subscriptions`, {
    url: `${receiverUrl}${path}`,
    // Telemetry only: the tenant topic also carries registry changes.
    filter: { types: ['io.tributary.telemetry.v1'] },
    ...fields,
  })
  expect(created.status, created.body).toBe(201)
  return { id: created.json.subscription.id as string, secret: created.json.secret as string }
}

async function post(tenant: string, body: string): Promise<void> {
  const reply = await curl([
    '-u',
    `meter-1@${tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    body,
    `${device}/v1/power`,
  ])
  expect(reply.status).toBe(202)
}

/** The subscription's stats once `done` holds for them (engines flush every 5 s). */
async function statsWhen(
  tenant: string,
  id: string,
  done: (stats: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  let reply: CurlReply | undefined
  await waitUntil(
    async () => {
      reply = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/stats`)
      return reply.status === 200 && done(reply.json as Record<string, unknown>)
    },
    { timeoutMs: 20_000, intervalMs: 200, message: () => `stats, got ${reply?.status} ${reply?.body}` },
  )
  return reply!.json as Record<string, unknown>
}

const at = (path: string): Received[] => received.filter((r) => r.path === path)

describe('webhook failures across two processes (e2e: curl → API process → delivery process → receiver)', () => {
  it('waits at least Retry-After before retrying a 429, then delivers with exactly two attempts', async () => {
    const tenant = await tenantWithDevice()
    const path = `/throttled?t=${tenant}`
    behaviour.set(path, (count, res) => {
      if (count === 1) res.writeHead(429, { 'Retry-After': String(RETRY_AFTER_S) }).end()
      else res.writeHead(204).end()
    })
    const { id, secret } = await subscribe(tenant, path, {
      retry: { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 10_000 },
    })
    await post(tenant, '{"w":1}')
    // Delivered and counted by the engine: nothing more is coming.
    const stats = await statsWhen(tenant, id, (s) => s['delivered'] === 1)
    expect(stats).toMatchObject({ attempts: 2, delivered: 1, failedAttempts: 1, deadLettered: 0 })
    expect(typeof stats['lastSuccessAt']).toBe('string')
    expect(typeof stats['lastFailureAt']).toBe('string')
    const [first, second] = at(path)
    expect(at(path)).toHaveLength(2)
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000)
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id'])
    expect(() => new Webhook(secret).verify(second!.body, second!.headers)).not.toThrow()
  })

  it('counts a receiver slower than the timeout as failed, dead-letters, then re-drives it once healthy', async () => {
    const tenant = await tenantWithDevice()
    const path = `/slow?t=${tenant}`
    let healthy = false
    // Answers after 3 s, beyond the subscription's 1 s timeout, until it is healthy again.
    behaviour.set(path, (_count, res) => {
      if (healthy) res.writeHead(204).end()
      else setTimeout(() => res.writeHead(204).end(), 3000).unref()
    })
    const { id, secret } = await subscribe(tenant, path, {
      timeoutMs: 1000,
      retry: { maxAttempts: 2, initialBackoffMs: 100, maxBackoffMs: 200 },
    })
    await post(tenant, '{"w":2}')

    let letters: CurlReply | undefined
    await waitUntil(
      async () => {
        letters = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/dead-letters`)
        return letters.status === 200 && (letters.json.items as unknown[]).length === 1
      },
      { timeoutMs: 30_000, message: () => `one dead letter, got ${letters?.body}` },
    )
    expect(letters!.json.items[0]).toMatchObject({
      step: 'webhook',
      reason: 'retries-exhausted',
      subscription: id,
    })
    const errors = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/errors`)
    const items = errors.json.items as Array<{ attempt: number; status: number | null; error: string }>
    expect(items.map((e) => [e.attempt, e.status, e.error])).toEqual([
      [2, null, 'timed out after 1000 ms'],
      [1, null, 'timed out after 1000 ms'],
    ])
    const failed = await statsWhen(tenant, id, (s) => s['deadLettered'] === 1)
    expect(failed).toMatchObject({
      attempts: 2,
      delivered: 0,
      failedAttempts: 2,
      deadLettered: 1,
      lastSuccessAt: null,
    })
    const eventId = at(path)[0]!.headers['webhook-id']
    expect(at(path)).toHaveLength(2)

    // A reader may look but not re-drive.
    const reader = await manage('POST', `/tenants/${tenant}/tokens`, { name: 'dashboard', role: 'reader' })
    expect(reader.status).toBe(201)
    const refused = await manage(
      'POST',
      `/tenants/${tenant}/subscriptions/${id}/dead-letters/redrive`,
      undefined,
      reader.json.secret as string,
    )
    expect(refused.status).toBe(403)
    expect(
      (
        await manage(
          'GET',
          `/tenants/${tenant}/subscriptions/${id}/stats`,
          undefined,
          reader.json.secret as string,
        )
      ).status,
    ).toBe(200)

    healthy = true
    const queued = await manage('POST', `/tenants/${tenant}/subscriptions/${id}/dead-letters/redrive`)
    expect(queued.status, queued.body).toBe(202)
    expect(queued.json).toEqual({ queued: 1 })
    await waitUntil(() => at(path).length >= 3, {
      timeoutMs: 20_000,
      message: () => `${at(path).length} requests`,
    })
    const redriven = at(path)[2]!
    expect(redriven.headers['webhook-id']).toBe(eventId)
    expect(redriven.body).toBe('{"w":2}')
    expect(() => new Webhook(secret).verify(redriven.body, redriven.headers)).not.toThrow()
    await waitUntil(async () => {
      const list = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/dead-letters`)
      return list.status === 200 && (list.json.items as unknown[]).length === 0
    })
    const after = await statsWhen(tenant, id, (s) => s['delivered'] === 1)
    expect(after).toMatchObject({ attempts: 3, delivered: 1, failedAttempts: 2, deadLettered: 1 })
    expect(Date.parse(after['lastSuccessAt'] as string)).toBeGreaterThan(
      Date.parse(after['lastFailureAt'] as string),
    )
    // Nothing is left to re-drive.
    const again = await manage('POST', `/tenants/${tenant}/subscriptions/${id}/dead-letters/redrive`, {})
    expect(again.json).toEqual({ queued: 0 })
    expect(at(path)).toHaveLength(3)
  })

  it('disables the subscription on 410, and refuses to re-drive it (409) or an unknown one (404)', async () => {
    const tenant = await tenantWithDevice()
    const path = `/gone?t=${tenant}`
    behaviour.set(path, (_count, res) => res.writeHead(410).end())
    const { id } = await subscribe(tenant, path, {})
    await post(tenant, '{"w":3}')
    let read: CurlReply | undefined
    await waitUntil(
      async () => {
        read = await manage('GET', `/tenants/${tenant}/subscriptions/${id}`)
        return read.json?.state === 'disabled'
      },
      { timeoutMs: 30_000, message: () => `disabled, got ${read?.body}` },
    )
    expect(at(path)).toHaveLength(1)
    const conflict = await manage('POST', `/tenants/${tenant}/subscriptions/${id}/dead-letters/redrive`)
    expect(conflict.status).toBe(409)
    expect(conflict.headers['content-type']).toContain('application/problem+json')
    const unknown = await manage(
      'POST',
      `/tenants/${tenant}/subscriptions/0190a000-0000-7000-8000-00000000dead/dead-letters/redrive`,
      { ids: ['x'] },
    )
    expect(unknown.status).toBe(404)
    expect(unknown.headers['content-type']).toContain('application/problem+json')
    const stats = await statsWhen(tenant, id, (s) => s['failedAttempts'] === 1)
    expect(stats).toMatchObject({ attempts: 1, delivered: 0, failedAttempts: 1, deadLettered: 0 })
  })
})
