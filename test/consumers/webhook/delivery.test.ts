// One subscription's delivery with doubles at every port: order, retries with exact delays from a
// fake clock, Retry-After, dead letters, 410, filters, batches, pause, the in-flight bound and stop.
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import type { DeliveryDeps } from '../../../consumers/webhook/delivery.ts'
import { createSubscriptionRunner } from '../../../consumers/webhook/delivery.ts'
import { createWebhookMetrics, noMetrics } from '../../../consumers/webhook/metrics.ts'
import type { SendOutcome } from '../../../consumers/webhook/ports.ts'
import type { WebhookSubscription } from '../../../core/registry/model.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import { deferred, waitUntil } from '../../helpers/wait.ts'
import {
  fakeBus,
  fakeClock,
  fakeDeadLetters,
  fakeSender,
  fakeSource,
  message,
  subscription,
  telemetry,
} from './fakes.ts'

const fail = (status = 500): SendOutcome => ({ kind: 'retry', status, error: `HTTP ${status}` })

async function setup(sub: WebhookSubscription = subscription(), extra: Partial<DeliveryDeps> = {}) {
  const bus = fakeBus()
  const sender = fakeSender()
  const clock = fakeClock()
  const letters = fakeDeadLetters()
  const source = fakeSource([sub])
  const gone = { count: 0 }
  const runner = createSubscriptionRunner(
    sub,
    {
      bus,
      topics: topicNames('tributary'),
      source,
      sender,
      deadLetters: letters,
      clock,
      metrics: noMetrics,
      log: silentLogger,
      random: () => 0.5,
      ...extra,
    },
    () => gone.count++,
  )
  await runner.start()
  const ids = () => sender.requests.map((r) => r.headers['webhook-id'])
  return { bus, sender, clock, letters, source, gone, runner, ids }
}

describe('webhook subscription delivery', () => {
  it('reads the tenant topic in its own group from the subscription’s creation', async () => {
    const { bus, runner } = await setup()
    expect(bus.options[0]).toMatchObject({
      group: 'tributary-webhook-0190a000-0000-7000-8000-000000000001',
      topics: ['tributary.events.acme'],
      from: { time: Date.parse(runner.subscription.createdAt) },
    })
  })

  it('reads a replayed subscription in a group of that replay, from the replay’s time, without a reset', async () => {
    const from = '2026-02-01T08:00:00.000Z'
    const { bus } = await setup(subscription({ replayFrom: from, replayGeneration: 3 }))
    expect(bus.options[0]).toMatchObject({
      group: 'tributary-webhook-0190a000-0000-7000-8000-000000000001-replay-3',
      topics: ['tributary.events.acme'],
      from: { time: Date.parse(from) },
    })
    // A reset would start over at every rebalance; the replay's own group starts at `from` once.
    expect(bus.options[0]?.reset).toBeUndefined()
  })

  it('delivers a batch in order, one request per event, then lets it commit', async () => {
    const { bus, ids } = await setup()
    const events = [telemetry('d1'), telemetry('d2'), telemetry('d1')]
    expect(await bus.run(events.map((e) => message(e)))).toBe(true)
    expect(ids()).toEqual(events.map((e) => e.attributes.id))
  })

  it('retries with doubling, fully jittered delays and stops at the first success', async () => {
    const { bus, sender, clock, letters } = await setup()
    sender.script.push(fail(), fail(502), fail(503))
    expect(await bus.run([message(telemetry('d1'))])).toBe(true)
    expect(sender.requests).toHaveLength(4)
    // random() = 0.5 of ceilings 1000, 2000, 4000.
    expect(clock.sleeps).toEqual([500, 1000, 2000])
    expect(letters.letters).toEqual([])
  })

  it('reports every failed attempt, with its status and error, to the error log', async () => {
    const reported: Array<[string, number, number | undefined, string]> = []
    const { bus, sender } = await setup(subscription(), {
      errorLog: { record: (s, e) => void reported.push([s.id, e.attempt, e.status, e.error]) },
    })
    sender.script.push(fail(503), { kind: 'retry', error: 'connect ECONNREFUSED' })
    expect(await bus.run([message(telemetry('d1'))])).toBe(true)
    const id = subscription().id
    expect(reported).toEqual([
      [id, 1, 503, 'HTTP 503'],
      [id, 2, undefined, 'connect ECONNREFUSED'],
    ])
  })

  it('caps the backoff at maxBackoffMs', async () => {
    const sub = subscription({ retry: { maxAttempts: 6, initialBackoffMs: 1000, maxBackoffMs: 5000 } })
    const { bus, sender, clock } = await setup(sub, { random: () => 0.9 })
    sender.script.push(fail(), fail(), fail(), fail(), fail())
    expect(await bus.run([message(telemetry('d1'))])).toBe(true)
    expect(clock.sleeps).toEqual([900, 1800, 3600, 4500, 4500])
  })

  it('dead-letters an event after its last attempt and goes on with the next', async () => {
    const registry = new Registry()
    const { bus, sender, clock, letters, runner, ids } = await setup(subscription(), {
      metrics: createWebhookMetrics(registry),
    })
    sender.script.push(fail(), fail(), fail(), fail(500))
    const [first, second] = [telemetry('d1'), telemetry('d1')]
    expect(await bus.run([message(first), message(second)])).toBe(true)
    expect(ids()).toEqual([...Array(4).fill(first.attributes.id), second.attributes.id])
    expect(clock.sleeps).toEqual([500, 1000, 2000])
    expect(letters.letters).toEqual([
      { id: first.attributes.id, reason: 'retries-exhausted', attempts: 4, lastError: 'HTTP 500' },
    ])
    expect(runner.recentErrors().map((e) => [e.attempt, e.status, e.id])).toEqual(
      [1, 2, 3, 4].map((n) => [n, 500, first.attributes.id]),
    )
    const text = await registry.metrics()
    expect(text).toContain('tributary_webhook_attempts_total{tenant="acme",outcome="retry"} 4')
    expect(text).toContain('tributary_webhook_attempts_total{tenant="acme",outcome="delivered"} 1')
    expect(text).toContain('tributary_webhook_delivered_events_total{tenant="acme"} 1')
    expect(text).toContain(
      'tributary_webhook_dead_lettered_events_total{tenant="acme",reason="retries-exhausted"} 1',
    )
    expect(text).toContain('tributary_webhook_request_duration_seconds_count{tenant="acme"} 5')
  })

  it('waits at least Retry-After, capped by maxBackoffMs', async () => {
    const { bus, sender, clock } = await setup()
    sender.script.push(
      { kind: 'retry', status: 429, retryAfterMs: 3000, error: 'HTTP 429' },
      { kind: 'retry', status: 503, retryAfterMs: 60_000, error: 'HTTP 503' },
      { kind: 'retry', status: 429, retryAfterMs: 10, error: 'HTTP 429' },
    )
    expect(await bus.run([message(telemetry('d1'))])).toBe(true)
    expect(clock.sleeps).toEqual([3000, 5000, 2000])
  })

  it('keeps later events of the partition waiting until the failed one is delivered', async () => {
    const { bus, sender, ids } = await setup()
    sender.script.push(fail(), fail())
    const [a, b] = [telemetry('d1'), telemetry('d2')]
    expect(await bus.run([message(a), message(b)])).toBe(true)
    expect(ids()).toEqual([a.attributes.id, a.attributes.id, a.attributes.id, b.attributes.id])
  })

  it('dead-letters a rejected event (4xx) at once, without retrying', async () => {
    const { bus, sender, clock, letters } = await setup()
    sender.script.push({ kind: 'rejected', status: 422, error: 'HTTP 422' })
    const [a, b] = [telemetry('d1'), telemetry('d1')]
    expect(await bus.run([message(a), message(b)])).toBe(true)
    expect(sender.requests).toHaveLength(2)
    expect(clock.sleeps).toEqual([])
    expect(letters.letters).toEqual([
      { id: a.attributes.id, reason: 'rejected', attempts: 1, lastError: 'HTTP 422' },
    ])
  })

  it('disables the subscription on 410 and stops without committing', async () => {
    const { bus, sender, source, gone, letters } = await setup()
    sender.script.push({ kind: 'gone', status: 410 })
    expect(await bus.run([message(telemetry('d1')), message(telemetry('d1'))])).toBe(false)
    expect(sender.requests).toHaveLength(1)
    expect(source.states).toEqual([{ tenant: 'acme', id: subscription().id, state: 'disabled' }])
    expect(gone.count).toBe(1)
    await waitUntil(() => bus.closed === 1)
    expect(letters.letters).toEqual([])
  })

  it('delivers only events that pass the filter', async () => {
    const sub = subscription({
      filter: {
        types: ['io.tributary.telemetry.v1'],
        channels: ['room/+/temp'],
        devices: ['d1', 'd2'],
        labels: { site: 'north' },
      },
    })
    const { bus, source, ids } = await setup(sub)
    source.labels.set('acme/d1', { site: 'north', floor: '2' })
    source.labels.set('acme/d2', { site: 'south' })
    const pass = telemetry('d1', 'room/1/temp')
    const events = [
      pass,
      telemetry('d1', 'room/1/humidity'),
      telemetry('d3', 'room/1/temp'),
      telemetry('d2', 'room/1/temp'),
    ]
    expect(await bus.run(events.map((e) => message(e)))).toBe(true)
    expect(ids()).toEqual([pass.attributes.id])
  })

  it('skips records that are not CloudEvents', async () => {
    const { bus, ids } = await setup()
    const event = telemetry('d1')
    const junk = {
      ...message(event),
      headers: new Map([['content-type', Buffer.from('application/cloudevents+json')]]),
      value: Buffer.from('{'),
    }
    expect(await bus.run([junk, message(event)])).toBe(true)
    expect(ids()).toEqual([event.attributes.id])
  })

  it('sends batches of up to batchSize events and retries a batch whole', async () => {
    const { bus, sender } = await setup(subscription({ batchSize: 2 }))
    sender.script.push(fail())
    const events = Array.from({ length: 5 }, (_, i) => telemetry(`d${i}`))
    expect(await bus.run(events.map((e) => message(e)))).toBe(true)
    const sizes = sender.requests.map((r) => (JSON.parse(r.body.toString()) as unknown[]).length)
    expect(sizes).toEqual([2, 2, 2, 1])
    expect(sender.requests[0]?.headers['webhook-id']).toBe(sender.requests[1]?.headers['webhook-id'])
  })

  it('sends nothing while paused and carries on where it was after resume', async () => {
    const { bus, sender, runner } = await setup()
    runner.pause()
    expect(bus.paused).toBe(true)
    const running = bus.run([message(telemetry('d1'))])
    await new Promise((resolve) => setImmediate(resolve))
    expect(sender.requests).toHaveLength(0)
    runner.resume()
    expect(bus.paused).toBe(false)
    expect(await running).toBe(true)
    expect(sender.requests).toHaveLength(1)
  })

  it('starts paused when the subscription is paused', async () => {
    const { bus } = await setup(subscription({ state: 'paused' }))
    expect(bus.paused).toBe(true)
  })

  it('keeps at most maxInFlight requests in flight across partitions', async () => {
    const { bus, sender } = await setup(subscription(), { maxInFlight: 4 })
    const release = deferred()
    let inFlight = 0
    let most = 0
    for (let i = 0; i < 6; i++) {
      sender.script.push(async () => {
        most = Math.max(most, ++inFlight)
        await release.promise
        inFlight--
        return { kind: 'delivered', status: 200 }
      })
    }
    const runs = Array.from({ length: 6 }, (_, partition) =>
      bus.run([message(telemetry(`d${partition}`), partition)]),
    )
    await waitUntil(() => sender.requests.length === 4)
    await new Promise((resolve) => setImmediate(resolve))
    expect(sender.requests).toHaveLength(4)
    release.resolve()
    expect(await Promise.all(runs)).toEqual(Array(6).fill(true))
    expect(most).toBe(4)
  })

  it('aborts in-flight requests after the grace period on stop and commits nothing', async () => {
    const { bus, sender, runner, letters } = await setup()
    sender.script.push(
      (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve({ kind: 'retry', error: 'aborted' }), {
            once: true,
          }),
        ),
    )
    const running = bus.run([message(telemetry('d1')), message(telemetry('d2'))])
    await waitUntil(() => sender.requests.length === 1)
    await runner.stop(10)
    expect(await running).toBe(false)
    expect(sender.requests).toHaveLength(1)
    expect(letters.letters).toEqual([])
    expect(bus.closed).toBe(1)
  })

  it('lets an in-flight request finish within the grace period, then sends nothing more', async () => {
    const { bus, sender, runner } = await setup()
    const answer = deferred<SendOutcome>()
    sender.script.push(() => answer.promise)
    const running = bus.run([message(telemetry('d1')), message(telemetry('d2'))])
    await waitUntil(() => sender.requests.length === 1)
    const stopping = runner.stop(60_000)
    answer.resolve({ kind: 'delivered', status: 200 })
    await stopping
    expect(await running).toBe(false)
    expect(sender.requests).toHaveLength(1)
  })
})
