// Webhook delivery end to end on a real bus: events published to a tenant topic reach a real local
// HTTP receiver that verifies every Standard Webhooks signature with the standardwebhooks library;
// order per device, batch mode, retries of a failing endpoint, 410, and a restart resuming in place.
import type { IncomingHttpHeaders, Server } from 'node:http'
import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WebhookDelivery } from '../../../consumers/webhook/index.ts'
import { createWebhookDelivery } from '../../../consumers/webhook/index.ts'
import { noMetrics } from '../../../consumers/webhook/metrics.ts'
import { systemClock } from '../../../consumers/webhook/ports.ts'
import type { HttpWebhookSender } from '../../../consumers/webhook/sender.ts'
import { createHttpSender } from '../../../consumers/webhook/sender.ts'
import type { EventBus } from '../../../core/bus/bus.ts'
import { buildEvent } from '../../../core/events/build.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { WebhookSubscription } from '../../../core/registry/model.ts'
import { openBus } from '../../core/bus/implementations.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import { kafkaBrokers } from '../../setup/kafka-env.ts'
import { SECRET, fakeDeadLetters, fakeSource, subscription } from './fakes.ts'

interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly verified: boolean
}

const DEVICES = ['d0', 'd1', 'd2', 'd3']
const PER_DEVICE = 10
const fast = { maxAttempts: 5, initialBackoffMs: 5, maxBackoffMs: 20 }

describe.each(['embedded', 'kafka'] as const)('webhook delivery on the %s bus', (kind) => {
  const topics = topicNames(uniqueName('webhook').replaceAll('-', '_'))
  const tenant = 'acme'
  let dir: string | undefined
  let bus: EventBus
  let server: Server
  let base: string
  let sender: HttpWebhookSender
  const received: Received[] = []
  // Answers per path, in order; 200 once a path's list is empty.
  const answers = new Map<string, number[]>([
    ['/flaky', [500, 503]],
    ['/gone', [410]],
  ])
  const source = fakeSource()
  const letters = fakeDeadLetters()
  let delivery: WebhookDelivery
  const subs: Record<string, WebhookSubscription> = {}
  let seq = 0

  const start = async (): Promise<WebhookDelivery> => {
    const component = createWebhookDelivery({
      bus,
      topics,
      source,
      sender,
      deadLetters: letters,
      clock: systemClock,
      metrics: noMetrics,
      log: silentLogger,
      shutdownGraceMs: 2000,
    })
    await component.start()
    return component
  }

  async function publish(count: number): Promise<void> {
    const records = []
    for (let i = 0; i < count; i++) {
      for (const device of DEVICES) {
        const event = buildEvent({
          kind: 'telemetry',
          tenant,
          device,
          protocol: 'mqtt',
          subject: 'room/temp',
          data: Buffer.from(JSON.stringify({ device, seq: seq++ })),
          datacontenttype: 'application/json',
        })
        const { key, value, headers } = encodeBinary(event)
        records.push({ topic: topics.events(tenant), key: key?.toString(), value, headers })
      }
    }
    await bus.publish(records)
  }

  const at = (path: string): Received[] => received.filter((r) => r.path === path)
  const seqs = (items: Received[]): Array<{ device: string; seq: number }> =>
    items.map((r) => JSON.parse(r.body) as { device: string; seq: number })

  beforeAll(async () => {
    if (kind === 'embedded') {
      dir = await mkdtemp(join(tmpdir(), 'tributary-webhook-'))
      bus = await openBus({ kind, dataDir: dir, maxMessageBytes: 64 * 1024 })
    } else {
      bus = await openBus({ kind, brokers: kafkaBrokers().split(','), maxMessageBytes: 64 * 1024 })
    }
    await bus.admin.createTopics([{ name: topics.events(tenant), partitions: 3 }])
    const verifier = new Webhook(SECRET)
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        let verified = true
        try {
          verifier.verify(body, req.headers as Record<string, string>)
        } catch {
          verified = false
        }
        const path = req.url ?? ''
        received.push({ path, headers: req.headers, body, verified })
        res.writeHead(answers.get(path)?.shift() ?? 200).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    sender = createHttpSender({ allowPrivate: true })
    const add = (n: number, path: string, extra: Partial<WebhookSubscription> = {}): void => {
      const sub = subscription({
        tenant,
        id: `0190a000-0000-7000-8000-00000000010${n}`,
        url: `${base}${path}`,
        retry: fast,
        ...extra,
      })
      subs[path] = sub
      source.subscriptions.set(`${tenant}/${sub.id}`, sub)
    }
    add(1, '/binary', { headers: { authorization: 'Bearer receiver-token' } })
    add(2, '/batch', { mode: 'structured', batchSize: 5 })
    add(3, '/flaky', { filter: { devices: ['d1'] } })
    add(4, '/gone')
    delivery = await start()
  })

  afterAll(async () => {
    await delivery.stop()
    sender.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await bus.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('delivers every event in binary mode, signed, in order per device', async () => {
    await publish(PER_DEVICE)
    const total = DEVICES.length * PER_DEVICE
    await waitUntil(() => at('/binary').length >= total, {
      message: () => `${at('/binary').length} of ${total}`,
    })
    const items = at('/binary')
    expect(items).toHaveLength(total)
    expect(items.every((r) => r.verified)).toBe(true)
    expect(items[0]?.headers['ce-type']).toBe('io.tributary.telemetry.v1')
    expect(items[0]?.headers['content-type']).toBe('application/json')
    expect(items[0]?.headers['authorization']).toBe('Bearer receiver-token')
    expect(items.every((r) => r.headers['webhook-id'] === r.headers['ce-id'])).toBe(true)
    for (const device of DEVICES) {
      const mine = seqs(items)
        .filter((e) => e.device === device)
        .map((e) => e.seq)
      expect(mine).toEqual([...mine].sort((a, b) => a - b))
      expect(mine).toHaveLength(PER_DEVICE)
    }
  })

  it('delivers the same events as signed JSON batches of at most batchSize', async () => {
    const total = DEVICES.length * PER_DEVICE
    const events = (): unknown[] => at('/batch').flatMap((r) => JSON.parse(r.body) as unknown[])
    await waitUntil(() => events().length >= total, { message: () => `${events().length} of ${total}` })
    const batches = at('/batch')
    expect(batches.every((r) => r.verified)).toBe(true)
    expect(
      batches.every((r) => r.headers['content-type'] === 'application/cloudevents-batch+json; charset=utf-8'),
    ).toBe(true)
    expect(batches.every((r) => (JSON.parse(r.body) as unknown[]).length <= 5)).toBe(true)
    expect(new Set(events().map((e) => (e as { id: string }).id)).size).toBe(total)
  })

  it('retries a failing endpoint until it answers, with only the filtered device', async () => {
    await waitUntil(() => at('/flaky').filter((r) => r.verified).length >= PER_DEVICE + 2, {
      message: () => `${at('/flaky').length} requests`,
    })
    const items = at('/flaky')
    expect(seqs(items).every((e) => e.device === 'd1')).toBe(true)
    // The first event was tried three times (500, 503, then 200), under the same webhook-id.
    expect(items.slice(0, 3).map((r) => r.headers['webhook-id'])).toEqual(
      Array(3).fill(items[0]?.headers['webhook-id']),
    )
    expect(new Set(items.map((r) => r.headers['webhook-id'])).size).toBe(PER_DEVICE)
    expect(letters.letters).toEqual([])
  })

  it('disables a subscription whose endpoint answers 410 and sends it nothing more', async () => {
    await waitUntil(() => source.states.length === 1)
    expect(source.states).toEqual([{ tenant, id: subs['/gone']?.id, state: 'disabled' }])
    // Requests already in flight on other partitions when the 410 came back are all there is.
    expect(at('/gone').length).toBeGreaterThanOrEqual(1)
    expect(at('/gone').length).toBeLessThanOrEqual(3)
    await waitUntil(() => !delivery.running().includes(`${tenant}/${subs['/gone']?.id}`))
  })

  it('resumes after a restart where it stopped: nothing lost, nothing sent twice', async () => {
    const gone = subs['/gone']!
    source.subscriptions.set(`${tenant}/${gone.id}`, { ...gone, state: 'disabled' })
    await delivery.stop()
    const before = at('/binary').length
    const goneBefore = at('/gone').length
    await publish(2)
    delivery = await start()
    const total = before + 2 * DEVICES.length
    await waitUntil(() => at('/binary').length >= total, {
      message: () => `${at('/binary').length} of ${total}`,
    })
    const ids = at('/binary').map((r) => r.headers['webhook-id'])
    expect(new Set(ids).size).toBe(total)
    expect(ids).toHaveLength(total)
    expect(at('/gone')).toHaveLength(goneBefore)
  })
})
