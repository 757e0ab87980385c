// Webhooks as an application sees them: a running `tributary start` on Kafka, a subscription made
// with curl, a device posting with curl, and a real HTTP receiver that checks every request's
// Standard Webhooks signature with the `standardwebhooks` library; an endpoint that keeps failing
// ends with the event in the tenant's and the subscription's dead letters and its attempts in the
// subscription's errors, listed through the API; a replay from before some deliveries makes the
// receiver get them again, with the same ids.
import { createServer } from 'node:http'
import { text } from 'node:stream/consumers'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { CurlReply } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const PASSWORD = 'webhooks e2e secret'

interface Received {
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string
}

let proc: TributaryProcess
let api: Api
let device = ''
let management = ''
let receiver: Server
let receiverUrl = ''
const received: Received[] = []

beforeAll(async () => {
  receiver = createServer((request, response) => {
    void text(request).then((body) => {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === 'string') headers[name] = value
      }
      received.push({ path: request.url ?? '', headers, body })
      response.statusCode = request.url === '/fail' ? 500 : 204
      response.end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  // The receiver is on loopback: a closed deployment's setting, off by default.
  const t = await startOnKafka('e2e_wh', { TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'true' })
  ;({ proc, api } = t)
  device = t.url('http')
  management = `${t.url('api')}/api/v1`
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  await new Promise((resolve) => receiver?.close(resolve))
  expect(code).toBe(0)
})

function manage(method: string, path: string, body?: unknown): Promise<CurlReply> {
  const args = ['-X', method, '-H', `Authorization: Bearer ${ADMIN_TOKEN}`]
  if (body !== undefined)
    args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body))
  return curl([...args, `${management}${path}`])
}

async function tenantWithDevice(): Promise<string> {
  const tenant = uniqueName('wh')
  await api.createTenant(tenant)
  await api.createDevice(tenant, 'meter-1')
  await api.setPassword(tenant, 'meter-1', PASSWORD)
  return tenant
}

async function post(tenant: string, channel: string, body: string): Promise<void> {
  const reply = await curl([
    '-u',
    `meter-1@${tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    body,
    `${device}/v1/${channel}`,
  ])
  expect(reply.status).toBe(202)
}

describe('webhooks (e2e: curl → tributary → HTTP receiver)', () => {
  it('pushes the tenant’s matching events, signed, in CloudEvents binary mode', async () => {
    const tenant = await tenantWithDevice()
    const created = await manage('POST', `/tenants/${tenant}/subscriptions`, {
      url: `${receiverUrl}/ok?tenant=${tenant}`,
      filter: { channels: ['power/#'] },
    })
    expect(created.status).toBe(201)
    const secret = created.json.secret as string
    expect(secret).toMatch(/^whsec_/)

    await post(tenant, 'power/main', '{"w":1}')
    await post(tenant, 'debug', '{"ignored":true}')
    await post(tenant, 'power/aux', '{"w":2}')
    const mine = () => received.filter((r) => r.path === `/ok?tenant=${tenant}`)
    await waitUntil(() => mine().length >= 2, {
      timeoutMs: 30_000,
      message: () => `2 deliveries, got ${mine().length}`,
    })
    const webhook = new Webhook(secret)
    for (const request of mine()) {
      // Throws unless webhook-id, webhook-timestamp and webhook-signature match the body.
      expect(() => webhook.verify(request.body, request.headers)).not.toThrow()
      expect(request.headers['webhook-id']).toBe(request.headers['ce-id'])
    }
    expect(mine().map((r) => [r.headers['ce-subject'], r.body, r.headers['content-type']])).toEqual([
      ['power/main', '{"w":1}', 'application/json'],
      ['power/aux', '{"w":2}', 'application/json'],
    ])
    expect(mine()[0]!.headers).toMatchObject({
      'ce-specversion': '1.0',
      'ce-type': 'io.tributary.telemetry.v1',
      'ce-tenant': tenant,
      'ce-device': 'meter-1',
    })
    // The secret is shown once, never again.
    const read = await manage(
      'GET',
      `/tenants/${tenant}/subscriptions/${created.json.subscription.id as string}`,
    )
    expect(read.status).toBe(200)
    expect(read.body).not.toContain('whsec_')
  })

  it('dead-letters an event after the last failed attempt, listable for the tenant', async () => {
    const tenant = await tenantWithDevice()
    const created = await manage('POST', `/tenants/${tenant}/subscriptions`, {
      url: `${receiverUrl}/fail`,
      // Telemetry only: the tenant topic also carries registry changes (this subscription's own).
      filter: { types: ['io.tributary.telemetry.v1'] },
      retry: { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 200 },
    })
    expect(created.status).toBe(201)
    await post(tenant, 'power', '{"w":3}')
    let listed: CurlReply | undefined
    await waitUntil(
      async () => {
        listed = await manage('GET', `/tenants/${tenant}/dead-letters?reason=retries-exhausted`)
        return listed.status === 200 && (listed.json.items as unknown[]).length === 1
      },
      { timeoutMs: 30_000, message: () => `one dead letter, got ${listed?.body}` },
    )
    const [letter] = listed!.json.items as Array<{ step: string; detail: string; device: string }>
    expect(letter).toMatchObject({ step: 'webhook', device: 'meter-1' })
    expect(JSON.parse(letter!.detail)).toMatchObject({
      subscription: created.json.subscription.id,
      attempts: 3,
    })
    const attempts = received.filter(
      (r) => r.path === '/fail' && r.headers['ce-tenant'] === tenant && r.body === '{"w":3}',
    )
    expect(attempts).toHaveLength(3)
    const id = created.json.subscription.id as string
    const ofSubscription = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/dead-letters`)
    expect(ofSubscription.status).toBe(200)
    expect(ofSubscription.json.items).toEqual(listed!.json.items)
    expect(ofSubscription.json.items[0]).toMatchObject({ subscription: id, reason: 'retries-exhausted' })
    // Every failed attempt is visible through the API, newest first (written in the background).
    let errors: CurlReply | undefined
    await waitUntil(
      async () => {
        errors = await manage('GET', `/tenants/${tenant}/subscriptions/${id}/errors`)
        return errors.status === 200 && (errors.json.items as unknown[]).length === 3
      },
      { timeoutMs: 10_000, message: () => `3 errors, got ${errors?.body}` },
    )
    const items = errors!.json.items as Array<{ attempt: number; status: number; webhookId: string }>
    expect(items.map((e) => [e.attempt, e.status])).toEqual([
      [3, 500],
      [2, 500],
      [1, 500],
    ])
    expect(new Set(items.map((e) => e.webhookId)).size).toBe(1)
  })

  it('delivers the events again, with the same webhook-ids, after a replay from before them', async () => {
    const tenant = await tenantWithDevice()
    const created = await manage('POST', `/tenants/${tenant}/subscriptions`, {
      url: `${receiverUrl}/ok?replay=${tenant}`,
      filter: { channels: ['power/#'] },
    })
    expect(created.status).toBe(201)
    const id = created.json.subscription.id as string
    const before = new Date(Date.now() - 1000).toISOString()
    await post(tenant, 'power/a', '{"w":10}')
    await post(tenant, 'power/b', '{"w":11}')
    const mine = () => received.filter((r) => r.path === `/ok?replay=${tenant}`)
    await waitUntil(() => mine().length >= 2, {
      timeoutMs: 30_000,
      message: () => `2 deliveries, got ${mine().length}`,
    })
    const firstIds = mine().map((r) => r.headers['webhook-id'])

    const replayed = await manage('POST', `/tenants/${tenant}/subscriptions/${id}/replay`, { from: before })
    expect(replayed.status, replayed.body).toBe(200)
    expect(replayed.json).toMatchObject({ replayGeneration: 1, replayFrom: before })
    await waitUntil(() => mine().length >= 4, {
      timeoutMs: 30_000,
      message: () => `2 deliveries again, got ${mine().length} in all`,
    })
    expect(mine().map((r) => r.headers['webhook-id'])).toEqual([...firstIds, ...firstIds])
    expect(mine().map((r) => r.body)).toEqual(['{"w":10}', '{"w":11}', '{"w":10}', '{"w":11}'])
    // Delivery goes on from the replay's position: a new event arrives once.
    await post(tenant, 'power/c', '{"w":12}')
    await waitUntil(() => mine().length >= 5, {
      timeoutMs: 30_000,
      message: () => `a fifth delivery, got ${mine().length}`,
    })
    expect(mine()[4]?.body).toBe('{"w":12}')
  })
})
