// Re-drive and delivery stats across processes, on a real bus and PostgreSQL: the "API" store asks
// for a re-drive; the "engine" (its own store on the same database) hears the change, claims the
// letters, reads the records back from the dead-letter topic by (partition, offset) and delivers
// them to a real HTTP receiver that checks every signature; the stats it flushes (with its group's
// lag) read back through the API's store. Also the reader on its own: found, gone, across partitions.
import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingHttpHeaders, Server } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { WebhookDelivery } from '../../../consumers/webhook/index.ts'
import { createWebhookDelivery, webhookGroup } from '../../../consumers/webhook/index.ts'
import { noMetrics } from '../../../consumers/webhook/metrics.ts'
import { systemClock } from '../../../consumers/webhook/ports.ts'
import { busDeadLetterRecords } from '../../../consumers/webhook/redrive-records.ts'
import type { HttpWebhookSender } from '../../../consumers/webhook/sender.ts'
import { createHttpSender } from '../../../consumers/webhook/sender.ts'
import { createStatsCollector, groupLag } from '../../../consumers/webhook/stats.ts'
import type { EventBus, OutgoingRecord } from '../../../core/bus/bus.ts'
import { buildEvent } from '../../../core/events/build.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { SUBSCRIPTION_HEADER, deadLetter } from '../../../processors/deadletter.ts'
import { openBus } from '../../core/bus/implementations.ts'
import type { Engine } from '../../core/registry/store-implementations.ts'
import { postgresEngine } from '../../core/registry/store-implementations.ts'
import { tenantId, tenantSpec } from '../../core/registry/store-fixtures.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import { kafkaBrokers } from '../../setup/kafka-env.ts'
import { SECRET, fakeDeadLetters } from './fakes.ts'

interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly verified: boolean
}

function telemetry(tenant: string, n: number): CloudEvent {
  return buildEvent({
    kind: 'telemetry',
    tenant,
    device: `d${n % 3}`,
    protocol: 'http',
    subject: 'power',
    data: Buffer.from(JSON.stringify({ n })),
    datacontenttype: 'application/json',
  })
}

/** The dead-letter record of a failed webhook delivery, as main/webhooks.ts writes it. */
function letterRecord(
  topic: string,
  eventsTopic: string,
  event: CloudEvent,
  subscription: string,
): OutgoingRecord {
  const { key, value, headers } = encodeBinary(event)
  const record = deadLetter(
    topic,
    {
      topic: eventsTopic,
      partition: 0,
      offset: 0,
      timestamp: Date.now(),
      key: key?.toString(),
      value,
      headers,
    },
    'webhook',
    'retries-exhausted',
    new Date(),
  )
  const withSubscription = new Map(record.headers)
  withSubscription.set(SUBSCRIPTION_HEADER, Buffer.from(subscription))
  return { ...record, headers: withSubscription }
}

describe.each(['embedded', 'kafka'] as const)('webhook re-drive on the %s bus and PostgreSQL', (kind) => {
  const topics = topicNames(uniqueName('redrive').replaceAll('-', '_'))
  let dir: string | undefined
  let bus: EventBus
  let engine: Engine
  let apiStore: RegistryStore
  let engineStore: RegistryStore
  let server: Server
  let base: string
  let sender: HttpWebhookSender
  let delivery: WebhookDelivery
  const received: Received[] = []
  const failing = new Set<string>()
  const letters = fakeDeadLetters()
  const stats = () =>
    createStatsCollector({
      sink: { add: (deltas) => engineStore.addWebhookStats(deltas) },
      log: silentLogger,
      running: () => delivery.subscriptions(),
      lagOf: (s) =>
        groupLag(bus.admin, topics.events(s.tenant), webhookGroup(topics.prefix, s.id, s.replayGeneration)),
    })
  let collector: ReturnType<typeof stats>

  beforeAll(async () => {
    if (kind === 'embedded') {
      dir = await mkdtemp(join(tmpdir(), 'tributary-redrive-'))
      bus = await openBus({ kind, dataDir: dir, maxMessageBytes: 64 * 1024 })
    } else {
      bus = await openBus({ kind, brokers: kafkaBrokers().split(','), maxMessageBytes: 64 * 1024 })
    }
    await bus.admin.createTopics([{ name: topics.deadletter, partitions: 3 }])
    engine = postgresEngine(inject('databaseUrl'))
    apiStore = await engine.open()
    engineStore = await engine.open()
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
        res.writeHead(failing.has(path) ? 503 : 204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    sender = createHttpSender({ allowPrivate: true })
  })

  afterAll(async () => {
    await delivery?.stop()
    sender?.close()
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    await apiStore?.close()
    await engineStore?.close()
    await engine?.destroy()
    await bus?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /** A tenant with a subscription to `path`, its topic, and `count` dead letters of it, indexed. */
  async function withLetters(path: string, count: number) {
    const tenant = tenantId()
    await apiStore.createTenant(tenant, tenantSpec())
    await bus.admin.createTopics([{ name: topics.events(tenant), partitions: 2 }])
    const sub = await apiStore.createSubscription({
      tenant,
      id: crypto.randomUUID(),
      url: `${base}${path}`,
      filter: { types: ['io.tributary.telemetry.v1'] },
      mode: 'binary',
      batchSize: null,
      secretEncrypted: 'not-used-by-this-source',
      headers: {},
      timeoutMs: 2000,
      retry: { maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 10 },
      state: 'active',
    })
    const events = Array.from({ length: count }, (_, n) => telemetry(tenant, n))
    const acks = await bus.publish(
      events.map((e) => letterRecord(topics.deadletter, topics.events(tenant), e, sub.id)),
    )
    // What the dead-letter index records of them.
    await apiStore.recordDeadLetters(
      acks.map((ack, n) => ({
        tenant,
        id: events[n]!.attributes.id,
        partition: ack.partition,
        offset: ack.offset,
        device: events[n]!.attributes.device ?? null,
        type: events[n]!.attributes.type,
        subject: 'power',
        step: 'webhook',
        reason: 'retries-exhausted',
        detail: null,
        firstFailure: new Date().toISOString(),
        deadLetteredAt: new Date(Date.now() + n).toISOString(),
        contentType: 'application/json',
        data: null,
        subscription: sub.id,
      })),
    )
    return { tenant, sub, events, acks }
  }

  async function startEngine(): Promise<void> {
    collector = stats()
    delivery = createWebhookDelivery({
      bus,
      topics,
      source: {
        listAll: async () => (await engineStore.listAllSubscriptions({ limit: 1000 })).items,
        get: (tenant, id) => engineStore.getSubscription(tenant, id),
        setState: async (tenant, id, state) =>
          void (await engineStore.setSubscriptionState(tenant, id, state)),
        deviceLabels: async () => ({}),
        secretOf: () => SECRET,
      },
      sender,
      deadLetters: letters,
      clock: systemClock,
      metrics: noMetrics,
      log: silentLogger,
      shutdownGraceMs: 2000,
      stats: collector,
      redrive: {
        port: {
          claim: (s, limit, leaseMs) => engineStore.claimRedrives(s.tenant, s.id, limit, leaseMs),
          finish: (claim, outcome) => engineStore.finishRedrive(claim, outcome),
          pending: () => engineStore.pendingRedrives(),
        },
        records: busDeadLetterRecords(bus, {
          topic: topics.deadletter,
          groupPrefix: `${topics.prefix}-redrive`,
        }),
        log: silentLogger,
      },
    })
    await delivery.start()
  }

  /** The changes the API's writes recorded, handed to the engine as the relay would. */
  async function relay(): Promise<void> {
    const pending = await apiStore.pendingChanges(1000)
    for (const { change } of pending) await delivery.onChange(change)
    const last = pending.at(-1)
    if (last !== undefined) await apiStore.markPublished(last.seq)
  }

  it('reads records back by position across partitions, and reports positions no longer there', async () => {
    const { acks, events } = await withLetters('/unused', 4)
    const records = busDeadLetterRecords(bus, {
      topic: topics.deadletter,
      groupPrefix: `${topics.prefix}-read`,
    })
    const beyond = { partition: acks[0]!.partition, offset: acks[0]!.offset + 1_000_000 }
    const { found, gone } = await records.read([...acks.slice(1), beyond])
    expect([...gone]).toEqual([`${beyond.partition}:${beyond.offset}`])
    expect(found.size).toBe(3)
    for (const [n, ack] of acks.entries()) {
      if (n === 0) continue
      const record = found.get(`${ack.partition}:${ack.offset}`)
      expect(record?.headers.get('ce_id')?.toString()).toBe(events[n]!.attributes.id)
    }
  })

  it('re-drives every letter of a subscription to its endpoint and hides them from its list', async () => {
    const { tenant, sub, events } = await withLetters('/healthy', 3)
    await startEngine()
    await relay()
    expect(await apiStore.requestRedrive(tenant, sub.id)).toBe(3)
    await relay()
    const mine = (): Received[] => received.filter((r) => r.path === '/healthy')
    await waitUntil(() => mine().length >= 3, { message: () => `${mine().length} of 3 re-driven` })
    expect(mine().every((r) => r.verified)).toBe(true)
    expect(
      mine()
        .map((r) => r.headers['webhook-id'])
        .sort(),
    ).toEqual(events.map((e) => e.attributes.id).sort())
    await waitUntil(
      async () => (await apiStore.listDeadLetters(tenant, { subscription: sub.id })).items.length === 0,
    )
    expect(mine()).toHaveLength(3)

    await collector.flush()
    const figures = await apiStore.getWebhookStats(tenant, sub.id)
    expect(figures).toMatchObject({ attempts: 3, delivered: 3, failedAttempts: 0, deadLettered: 0 })
    expect(figures.lastSuccessAt).not.toBeNull()
    // Nothing was ever published on the tenant topic: its group has nothing left to read.
    expect(figures.lag).toBe(0)
  })

  it('dead-letters a letter again when the endpoint still fails, and the old letter leaves the list', async () => {
    failing.add('/still-failing')
    const { tenant, sub, events } = await withLetters('/still-failing', 1)
    await relay()
    await apiStore.requestRedrive(tenant, sub.id, [events[0]!.attributes.id])
    await relay()
    await waitUntil(() => letters.letters.some((l) => l.id === events[0]!.attributes.id))
    expect(letters.letters.filter((l) => l.id === events[0]!.attributes.id)).toEqual([
      { id: events[0]!.attributes.id, reason: 'retries-exhausted', attempts: 2, lastError: 'HTTP 503' },
    ])
    expect(received.filter((r) => r.path === '/still-failing')).toHaveLength(2)
    await waitUntil(
      async () => (await apiStore.listDeadLetters(tenant, { subscription: sub.id })).items.length === 0,
    )
    await collector.flush()
    expect(await apiStore.getWebhookStats(tenant, sub.id)).toMatchObject({
      attempts: 2,
      delivered: 0,
      failedAttempts: 2,
      deadLettered: 1,
      lastSuccessAt: null,
    })
  })

  it('picks up a request it missed the change of on the next sweep', async () => {
    const { tenant, sub } = await withLetters('/swept', 2)
    await relay()
    await apiStore.requestRedrive(tenant, sub.id)
    // The change is not relayed: only the sweep finds the request.
    await apiStore.markPublished((await apiStore.pendingChanges(1000)).at(-1)!.seq)
    await delivery.sweepRedrives()
    await waitUntil(() => received.filter((r) => r.path === '/swept').length >= 2)
    await waitUntil(
      async () => (await apiStore.listDeadLetters(tenant, { subscription: sub.id })).items.length === 0,
    )
  })
})
