// The runs of the webhooks scenario, each on a fresh tenant topic of one bus and a local node:http
// receiver answering 204: the real subscription runner (createSubscriptionRunner with the real
// HTTP sender and a real signing secret) against a plain undici Pool posting the same pre-built
// requests, and the publish → webhook latency against a plain bus reader's publish → consume.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { createSubscriptionRunner } from '../consumers/webhook/delivery.ts'
import { createWebhookMetrics } from '../consumers/webhook/metrics.ts'
import type { WebhookRequest } from '../consumers/webhook/ports.ts'
import { systemClock } from '../consumers/webhook/ports.ts'
import { buildRequest } from '../consumers/webhook/request.ts'
import { secretKey } from '../consumers/webhook/signing.ts'
import { createHttpSender } from '../consumers/webhook/sender.ts'
import type { EventBus, OutgoingRecord } from '../core/bus/bus.ts'
import { buildEvent } from '../core/events/build.ts'
import type { CloudEvent } from '../core/events/cloudevent.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'
import { topicNames } from '../core/events/topics.ts'
import type { TopicNames } from '../core/events/topics.ts'
import { silentLogger } from '../core/log.ts'
import { createMetricsRegistry } from '../core/metrics.ts'
import type { WebhookSubscription } from '../core/registry/model.ts'
import type { Stats } from './harness.ts'
import { BenchError, formatNumber, opsPerSecond, runConcurrently, summarize, withTimeout } from './harness.ts'
import { DEVICES, PARTITIONS, uniqueName } from './records.ts'
import type { Receiver } from './webhook-receiver.ts'
import { stampedBody } from './webhook-receiver.ts'

export const WEBHOOK_TENANT = 'bench'
/** Requests in flight, for the runner (its maxInFlight) and for the undici Pool alike. */
export const IN_FLIGHT = 4
const SECRET = `whsec_${randomBytes(32).toString('base64')}`
const PREFILL_PER_CALL = 500
const PRODUCE_TICK_MS = 5
const DONE_TIMEOUT_MS = 120_000

export interface RateSample {
  readonly events: number
  /** First request possible (runner joined, or pool ready) → last webhook received. */
  readonly ms: number
  readonly eventsPerSec: number
}

export interface LatencySample {
  readonly events: number
  readonly inputPerSec: number
  /** Publish → received, ms, per event. */
  readonly stats: Stats
}

export const describeLatency = (s: LatencySample): string =>
  `p50 ${formatNumber(s.stats.p50)} ms, p99 ${formatNumber(s.stats.p99)} ms at ${formatNumber(s.inputPerSec)} ev/s`

function telemetry(n: number, t: number): CloudEvent {
  return buildEvent({
    kind: 'telemetry',
    tenant: WEBHOOK_TENANT,
    device: `device-${n % DEVICES}`,
    protocol: 'mqtt',
    subject: 'sensors/temperature',
    data: stampedBody(t, n),
    datacontenttype: 'application/json',
  })
}

function record(topic: string, event: CloudEvent): OutgoingRecord {
  const { key, value, headers } = encodeBinary(event)
  return { topic, key: key?.toString(), value, headers }
}

function subscriptionFor(url: string, createdAt: number): WebhookSubscription {
  const at = new Date(createdAt).toISOString()
  return {
    tenant: WEBHOOK_TENANT,
    id: uniqueName('sub'),
    url,
    filter: {},
    mode: 'binary',
    batchSize: null,
    secretEncrypted: 'not used: the source hands out the secret',
    headers: {},
    timeoutMs: 10_000,
    retry: { maxAttempts: 1, initialBackoffMs: 100, maxBackoffMs: 100 },
    replayFrom: null,
    replayGeneration: 0,
    state: 'active',
    version: 1,
    createdAt: at,
    updatedAt: at,
  }
}

/** Fresh topics for one run; the tenant topic has PARTITIONS partitions. */
async function freshTopics(bus: EventBus): Promise<{ topics: TopicNames; remove: () => Promise<void> }> {
  const topics = topicNames(uniqueName(`wh-${bus.kind}`))
  const name = topics.events(WEBHOOK_TENANT)
  await bus.admin.createTopics([{ name, partitions: PARTITIONS }])
  return { topics, remove: () => bus.admin.deleteTopics([name]) }
}

/** The real runner on `topics`, as main/webhooks.ts wires it; dead letters fail the run. */
async function startRunner(bus: EventBus, topics: TopicNames, subscription: WebhookSubscription) {
  const sender = createHttpSender({ allowPrivate: true })
  let dead = 0
  const runner = createSubscriptionRunner(subscription, {
    bus,
    topics,
    source: {
      setState: () => Promise.resolve(),
      deviceLabels: () => Promise.resolve(undefined),
      secretOf: () => SECRET,
    },
    sender,
    deadLetters: { deadLetter: () => Promise.resolve(void dead++) },
    clock: systemClock,
    metrics: createWebhookMetrics(createMetricsRegistry()),
    log: silentLogger,
    maxInFlight: IN_FLIGHT,
  })
  await runner.start()
  return {
    async stop() {
      await runner.stop()
      sender.close()
      if (dead > 0) throw new BenchError(`${bus.kind} runner: ${dead} events dead-lettered`)
    },
  }
}

/** `events` pre-filled events, as records and as the runner would send them (signed, binary mode). */
export function buildRateEvents(events: number, url: string) {
  const topic = 'set per run'
  const subscription = subscriptionFor(url, 0)
  const key = secretKey(SECRET)
  const records: OutgoingRecord[] = []
  const requests: WebhookRequest[] = []
  for (let n = 0; n < events; n++) {
    const event = telemetry(n, 0)
    records.push(record(topic, event))
    requests.push(buildRequest({ subscription, events: [event], key, now: Date.now() }))
  }
  return { records, requests }
}

export type RateEvents = ReturnType<typeof buildRateEvents>

/** Pre-fills a fresh tenant topic, then times the runner delivering every event to the receiver. */
export async function runnerRate(bus: EventBus, receiver: Receiver, pool: RateEvents, events: number) {
  const run = await freshTopics(bus)
  try {
    const topic = run.topics.events(WEBHOOK_TENANT)
    await runConcurrently(Math.ceil(events / PREFILL_PER_CALL), 4, (call) =>
      bus.publish(
        pool.records
          .slice(call * PREFILL_PER_CALL, Math.min(events, (call + 1) * PREFILL_PER_CALL))
          .map((r) => ({ ...r, topic })),
      ),
    )
    const received = receiver.expect(events)
    // createdAt 0: the group starts at the beginning of the topic.
    const runner = await startRunner(bus, run.topics, subscriptionFor(receiver.url, 0))
    const start = performance.now()
    try {
      await withTimeout(received, DONE_TIMEOUT_MS, `${bus.kind} runner: not every webhook in time`)
    } finally {
      await runner.stop()
    }
    const ms = performance.now() - start
    return { events, ms, eventsPerSec: opsPerSecond(events, ms) } satisfies RateSample
  } finally {
    await run.remove()
  }
}

/** The same requests posted by an undici Pool of IN_FLIGHT connections, IN_FLIGHT at a time. */
export async function undiciRate(receiver: Receiver, pool: RateEvents, events: number) {
  const url = new URL(receiver.url)
  const client = new Pool(url.origin, { connections: IN_FLIGHT, pipelining: 1 })
  try {
    const received = receiver.expect(events)
    const start = performance.now()
    await runConcurrently(events, IN_FLIGHT, async (i) => {
      const request = pool.requests[i]!
      const answer = await client.request({
        path: url.pathname,
        method: 'POST',
        headers: { ...request.headers, 'content-length': String(request.body.length) },
        body: request.body,
      })
      await answer.body.dump()
      if (answer.statusCode !== 204) throw new BenchError(`undici: HTTP ${answer.statusCode}`)
    })
    await withTimeout(received, DONE_TIMEOUT_MS, 'undici: not every webhook in time')
    const ms = performance.now() - start
    return { events, ms, eventsPerSec: opsPerSecond(events, ms) } satisfies RateSample
  } finally {
    await client.close()
  }
}

/** Publishes `rate` events/s for `seconds`, each stamped with its publish time, one call per tick. */
async function publishAtRate(bus: EventBus, topic: string, rate: number, seconds: number) {
  const total = rate * seconds
  const start = performance.now()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000))
    const batch: OutgoingRecord[] = []
    for (; sent < due; sent++) batch.push(record(topic, telemetry(sent, performance.now())))
    if (batch.length > 0) await bus.publish(batch)
    await sleep(PRODUCE_TICK_MS)
  }
  return { total, inputPerSec: opsPerSecond(total, performance.now() - start) }
}

/** Latency publish → webhook received, through the runner, at a fixed rate. */
export async function runnerLatency(bus: EventBus, receiver: Receiver, rate: number, seconds: number) {
  const run = await freshTopics(bus)
  const latencies: number[] = []
  const received = receiver.expect(rate * seconds, latencies)
  const runner = await startRunner(bus, run.topics, subscriptionFor(receiver.url, Date.now() - 1000))
  try {
    const input = await publishAtRate(bus, run.topics.events(WEBHOOK_TENANT), rate, seconds)
    await withTimeout(received, DONE_TIMEOUT_MS, `${bus.kind} runner: not every webhook in time`)
    return { events: input.total, inputPerSec: input.inputPerSec, stats: summarize(latencies) }
  } finally {
    await runner.stop()
    await run.remove()
  }
}

/** Latency publish → consumed, by a plain bus reader of the same topic, at the same rate. */
export async function busLatency(bus: EventBus, rate: number, seconds: number): Promise<LatencySample> {
  const run = await freshTopics(bus)
  const latencies: number[] = []
  const total = rate * seconds
  const done = Promise.withResolvers<void>()
  const reader = await bus.subscribe({
    group: uniqueName('reader'),
    topics: [run.topics.events(WEBHOOK_TENANT)],
    from: 'earliest',
    handler: async (batch) => {
      const at = performance.now()
      for (const m of batch) latencies.push(at - (JSON.parse(m.value!.toString()) as { t: number }).t)
      if (latencies.length >= total) done.resolve()
    },
  })
  try {
    const input = await publishAtRate(bus, run.topics.events(WEBHOOK_TENANT), rate, seconds)
    await withTimeout(done.promise, DONE_TIMEOUT_MS, `${bus.kind} reader: not every record in time`)
    return { events: input.total, inputPerSec: input.inputPerSec, stats: summarize(latencies) }
  } finally {
    await reader.close()
    await run.remove()
  }
}
