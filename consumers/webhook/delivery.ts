// One subscription's delivery: its own consumer group on the tenant topic, events filtered and
// posted in partition order, each request retried by its policy and then dead-lettered; bounded
// requests in flight, so a slow endpoint only ever slows its own subscription.
import { SpanKind, startStage, validTraceparent } from '../../core/tracing.ts'
import type { BusMessage, EventBus, Subscription } from '../../core/bus/bus.ts'
import { createWakeup, waitAny } from '../../core/bus/backoff.ts'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import type { TopicNames } from '../../core/events/topics.ts'
import type { Logger } from '../../core/log.ts'
import type { WebhookSubscription } from '../../core/registry/model.ts'
import { matchesFilter } from './filter.ts'
import type { WebhookMetrics } from './metrics.ts'
import type {
  Clock,
  DeadLetterPort,
  DeadLetterReason,
  ErrorLog,
  SubscriptionSource,
  WebhookSender,
} from './ports.ts'
import type { RedriveDeps, Redriver } from './redrive.ts'
import { createRedriver } from './redrive.ts'
import { buildRequest } from './request.ts'
import type { RecentError } from './retry.ts'
import { createRecentErrors, retryDelay } from './retry.ts'
import { secretKey } from './signing.ts'
import type { DeliveryStats } from './stats.ts'

export interface DeliveryDeps {
  readonly bus: Pick<EventBus, 'subscribe'>
  readonly topics: TopicNames
  /**
   * Creates the tenant's event topic unless it exists. A tenant's topic appears with its creation
   * or its first event, so a subscription can come first: on a new bus, or a new topic prefix.
   */
  readonly ensureTopic?: ((tenant: string) => Promise<void>) | undefined
  readonly source: Pick<SubscriptionSource, 'setState' | 'deviceLabels' | 'secretOf'>
  readonly sender: WebhookSender
  readonly deadLetters: DeadLetterPort
  readonly clock: Clock
  readonly metrics: WebhookMetrics
  readonly log: Logger
  /** For jitter; Math.random by default. */
  readonly random?: (() => number) | undefined
  /** Requests in flight per subscription, across its partitions (default 4). */
  readonly maxInFlight?: number | undefined
  /** Recent errors kept per subscription (default 20). */
  readonly recentErrors?: number | undefined
  /** Where failed attempts are reported beyond this process (the registry database). */
  readonly errorLog?: ErrorLog | undefined
  /** Per-subscription counters for the API (flushed to the registry database). */
  readonly stats?: DeliveryStats | undefined
  /** Re-drive of dead letters the API asks for; without it, none are re-driven here. */
  readonly redrive?: RedriveDeps | undefined
}

export interface SubscriptionRunner {
  readonly subscription: WebhookSubscription
  /** Joins the subscription's group; new groups start at the end of the topic. */
  start(): Promise<void>
  /** Stops consuming and sending; the position is kept. */
  pause(): void
  resume(): void
  /**
   * Stops: no new attempts, in-flight requests get `graceMs` and are then aborted; offsets of
   * undelivered events stay uncommitted, so they are delivered again after a restart.
   */
  stop(graceMs?: number): Promise<void>
  recentErrors(): RecentError[]
  /** Looks for dead letters the API asked to re-drive (when active; no-op without the port). */
  redrive(): void
}

/** Thrown inside the handler once the runner stops: the batch stays uncommitted. */
class Stopped extends Error {}

/**
 * The subscription's consumer group. Each replay gets a group of its own that starts at the
 * replay's time: a group reset instead would start over at every rebalance, not once.
 */
export const webhookGroup = (prefix: string, id: string, replayGeneration = 0): string =>
  replayGeneration === 0 ? `${prefix}-webhook-${id}` : `${prefix}-webhook-${id}-replay-${replayGeneration}`

/** Where a new group of the subscription starts: its creation, or the time of its last replay. */
function startTime(subscription: WebhookSubscription): number {
  const { replayFrom, replayGeneration, createdAt } = subscription
  return Date.parse(replayGeneration > 0 && replayFrom !== null ? replayFrom : createdAt)
}

export function createSubscriptionRunner(
  subscription: WebhookSubscription,
  deps: DeliveryDeps,
  onGone: () => void = () => undefined,
): SubscriptionRunner {
  const { tenant, id } = subscription
  const log = deps.log.child({ tenant, subscription: id })
  const random = deps.random ?? Math.random
  const errors = createRecentErrors(deps.recentErrors ?? 20)
  const stopping = new AbortController()
  const inFlight = new AbortController()
  const resumed = createWakeup()
  const slots = createLimit(deps.maxInFlight ?? 4)
  let paused = subscription.state === 'paused'
  let bus: Subscription | undefined
  let stopped: Promise<void> | undefined
  // Read per attempt rather than once, so a bad secret fails delivery (retried) and not startup.
  const key = (): Buffer => secretKey(deps.source.secretOf(subscription))

  async function gate(): Promise<void> {
    while (paused && !stopping.signal.aborted) await waitAny(resumed.signal, stopping.signal)
    if (stopping.signal.aborted) throw new Stopped('stopped')
  }

  async function deadLetter(
    events: readonly CloudEvent[],
    reason: DeadLetterReason,
    attempts: number,
    lastError: string,
  ): Promise<void> {
    for (const event of events)
      await deps.deadLetters.deadLetter(subscription, event, reason, attempts, lastError)
    deps.metrics.deadLettered(tenant, reason, events.length)
    deps.stats?.deadLettered(subscription, events.length)
    log.warn({ reason, attempts, events: events.length, lastError }, 'webhook events dead-lettered')
  }

  /** True when delivered, false when dead-lettered; throws Stopped when stopping or gone. */
  async function deliverUnit(events: readonly CloudEvent[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      await gate()
      // The delivery's stage of the trace of the (first) event: the endpoint gets it as its
      // traceparent header, or the event's own traceparent while tracing is off.
      const traceparent = events[0]?.attributes.traceparent
      const span = startStage('webhook deliver', SpanKind.CLIENT, traceparent, {
        'tributary.tenant': tenant,
        'tributary.subscription': id,
        'tributary.events': events.length,
        'http.request.method': 'POST',
        'tributary.attempt': attempt,
      })
      const request = buildRequest({
        subscription,
        events,
        key: key(),
        now: deps.clock.now(),
        traceparent: span?.traceparent ?? validTraceparent(traceparent),
      })
      const started = performance.now()
      const outcome = await slots.run(() =>
        deps.sender.send(request, { timeoutMs: subscription.timeoutMs, signal: inFlight.signal }),
      )
      if (span !== undefined) {
        if (outcome.status !== undefined) span.set({ 'http.response.status_code': outcome.status })
        if (outcome.kind !== 'delivered') span.fail(outcome.kind)
        span.end()
      }
      deps.metrics.attempt(tenant, outcome.kind, (performance.now() - started) / 1000)
      // A request aborted by the stop is not the endpoint's failure: not counted.
      if (outcome.kind !== 'delivered' && inFlight.signal.aborted) throw new Stopped('stopped')
      deps.stats?.attempt(subscription, outcome.kind, deps.clock.now())
      if (outcome.kind === 'delivered') {
        deps.metrics.delivered(tenant, events.length)
        deps.stats?.delivered(subscription, events.length)
        return true
      }
      const webhookId = request.headers['webhook-id'] ?? ''
      const status = outcome.status
      const error = outcome.kind === 'gone' ? 'HTTP 410' : outcome.error
      const failed = { at: new Date(deps.clock.now()).toISOString(), id: webhookId, attempt, status, error }
      errors.add(failed)
      deps.errorLog?.record(subscription, failed)
      switch (outcome.kind) {
        case 'gone':
          await disable()
          throw new Stopped('the endpoint answered 410 Gone')
        case 'rejected':
          await deadLetter(events, 'rejected', attempt, error)
          return false
        case 'retry': {
          if (attempt >= subscription.retry.maxAttempts) {
            await deadLetter(events, 'retries-exhausted', attempt, error)
            return false
          }
          await deps.clock.sleep(
            retryDelay(subscription.retry, attempt, random, outcome.retryAfterMs),
            stopping.signal,
          )
        }
      }
    }
  }

  async function disable(): Promise<void> {
    // Other partitions may hold a 410 too: the first one disables, and stopping first means no
    // new request starts while the state is being written.
    if (stopping.signal.aborted) return
    log.warn('webhook endpoint answered 410 Gone: disabling the subscription')
    runner.stop().catch((err: unknown) => log.error({ err }, 'stopping a disabled subscription failed'))
    onGone()
    try {
      await deps.source.setState(tenant, id, 'disabled')
    } catch (err) {
      log.error({ err }, 'could not record the subscription as disabled')
    }
  }

  async function handle(batch: readonly BusMessage[]): Promise<void> {
    const events: CloudEvent[] = []
    for (const message of batch) {
      let event: CloudEvent
      try {
        event = decode({
          key: message.key === undefined ? undefined : Buffer.from(message.key),
          value: message.value,
          headers: message.headers,
        })
      } catch (err) {
        deps.metrics.skipped(tenant)
        log.warn(
          { err, partition: message.partition, offset: message.offset },
          'skipped a record that is not a CloudEvent',
        )
        continue
      }
      if (await matchesFilter(subscription.filter, event, (t, d) => deps.source.deviceLabels(t, d)))
        events.push(event)
    }
    const size = subscription.batchSize ?? 1
    for (let i = 0; i < events.length; i += size) await deliverUnit(events.slice(i, i + size))
  }

  const redriver: Redriver | undefined =
    deps.redrive === undefined
      ? undefined
      : createRedriver(
          subscription,
          deps.redrive,
          (event) => deliverUnit([event]),
          () => !paused && !stopping.signal.aborted,
        )

  const runner: SubscriptionRunner = {
    subscription,
    async start() {
      await deps.ensureTopic?.(tenant)
      bus = await deps.bus.subscribe({
        group: webhookGroup(deps.topics.prefix, id, subscription.replayGeneration),
        topics: [deps.topics.events(tenant)],
        // A new group starts at the subscription's creation, not at the end of the topic when the
        // runner happens to join: events published between the API's 201 and the join are delivered.
        // A replay's group starts at its `from`; later joins (restarts, rebalances) go on from its commits.
        from: { time: startTime(subscription) },
        handler: handle,
        maxBatch: Math.max(subscription.batchSize ?? 1, 50),
        onError: (err) => {
          if (!(err instanceof Stopped))
            log.error({ err }, 'webhook batch failed; it will be delivered again')
        },
      })
      if (paused) bus.pause()
      if (stopping.signal.aborted) await bus.close()
      else redriver?.kick()
    },
    pause() {
      paused = true
      bus?.pause()
    },
    resume() {
      paused = false
      bus?.resume()
      resumed.fire()
      redriver?.kick()
    },
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        stopping.abort()
        const timer = setTimeout(() => inFlight.abort(), graceMs)
        try {
          await Promise.all([bus?.close(), redriver?.stop()])
        } finally {
          clearTimeout(timer)
          inFlight.abort()
        }
      })()
      return stopped
    },
    recentErrors: () => errors.list(),
    redrive: () => redriver?.kick(),
  }
  return runner
}

/** At most `max` calls running at once; the rest wait in order. */
function createLimit(max: number): { run<T>(task: () => Promise<T>): Promise<T> } {
  let running = 0
  const waiting: Array<() => void> = []
  return {
    async run(task) {
      // A finishing call hands its slot straight to the next waiter, so none is ever taken twice.
      if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve))
      else running++
      try {
        return await task()
      } finally {
        const next = waiting.shift()
        if (next === undefined) running--
        else next()
      }
    },
  }
}
