// Whether the bus takes publishes now, as a decorator around any EventBus (STYLE.md 6): a circuit
// breaker. A publish that fails because the bus cannot be reached (BUS_UNAVAILABLE) opens it; while
// it is open every publish is refused at once, saying when to retry, instead of each waiting out the
// client's own retries; a probe in the background (EventBus.health: a metadata request on Kafka)
// closes it as soon as the bus answers again. Subscriptions are left alone: consumers retry on
// their own.
import { TributaryError, isTributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { Registry } from '../metrics.ts'
import { Counter, Gauge } from '../metrics.ts'
import type { BusHealth, EventBus } from './bus.ts'

export interface BusAvailability {
  /** The error every publish fails with now (the bus is known to be away), or undefined. */
  refusal(): TributaryError | undefined
}

/** An EventBus that refuses publishes at once while it is known to be away. */
export interface GuardedBus extends EventBus {
  readonly availability: BusAvailability
}

export interface BusGuardOptions {
  readonly log: Logger
  readonly registry?: Registry | undefined
  /** First probe this long after the bus went away; the interval doubles up to the maximum. */
  readonly probeIntervalMs?: number | undefined
  readonly maxProbeIntervalMs?: number | undefined
}

export const BUS_GUARD_DEFAULTS = { probeIntervalMs: 250, maxProbeIntervalMs: 5_000 } as const

/** A device is never told to come back sooner than this (Retry-After is in whole seconds anyway). */
const MIN_RETRY_AFTER_MS = 1_000

interface Outage {
  readonly since: Date
  reason: string
  interval: number
  nextProbeAt: number
  timer: NodeJS.Timeout | undefined
}

function metricsOf(registry: Registry | undefined) {
  const registers = registry === undefined ? [] : [registry]
  return {
    available: new Gauge({
      name: 'tributary_bus_available',
      help: '1 while the bus takes publishes, 0 while it is known to be away and publishes are refused at once.',
      registers,
    }),
    refused: new Counter({
      name: 'tributary_bus_publishes_refused_total',
      help: 'Publish calls refused at once because the bus was known to be away.',
      registers,
    }),
    probes: new Counter({
      name: 'tributary_bus_probes_total',
      help: 'Health probes made while the bus was away, by result.',
      labelNames: ['result'],
      registers,
    }),
  }
}

export function guardBus(bus: EventBus, options: BusGuardOptions): GuardedBus {
  const { log } = options
  const first = options.probeIntervalMs ?? BUS_GUARD_DEFAULTS.probeIntervalMs
  const longest = Math.max(first, options.maxProbeIntervalMs ?? BUS_GUARD_DEFAULTS.maxProbeIntervalMs)
  const metrics = metricsOf(options.registry)
  metrics.available.set(1)
  let outage: Outage | undefined
  let closed = false

  const retryAfterMs = (o: Outage): number => Math.max(MIN_RETRY_AFTER_MS, o.nextProbeAt - Date.now())

  function refusal(o: Outage): TributaryError {
    return new TributaryError(
      'BUS_UNAVAILABLE',
      `the event bus is unavailable since ${o.since.toISOString()}: ${o.reason}`,
      { details: { retryAfterMs: retryAfterMs(o) } },
    )
  }

  function recovered(): void {
    if (outage === undefined) return
    clearTimeout(outage.timer)
    const downMs = Date.now() - outage.since.getTime()
    outage = undefined
    metrics.available.set(1)
    log.info({ downMs }, 'the event bus answers again; publishes go through')
  }

  function schedule(o: Outage): void {
    if (closed) return
    o.nextProbeAt = Date.now() + o.interval
    o.timer = setTimeout(() => void probe(o), o.interval)
    o.timer.unref()
  }

  /** One probe at a time per outage; a failed one waits twice as long for the next. */
  async function probe(o: Outage): Promise<void> {
    const health = await check()
    if (outage !== o || health.ok) return
    o.interval = Math.min(o.interval * 2, longest)
    schedule(o)
  }

  /** Asks the bus; a healthy answer ends the outage. */
  async function check(): Promise<BusHealth> {
    let health: BusHealth
    try {
      health = await bus.health()
    } catch (err) {
      health = { ok: false, reason: err instanceof Error ? err.message : String(err) }
    }
    if (outage !== undefined) metrics.probes.inc({ result: health.ok ? 'ok' : 'failed' })
    if (health.ok) recovered()
    else if (outage !== undefined && health.reason !== undefined) outage.reason = health.reason
    return health
  }

  function trip(err: TributaryError): Outage {
    if (outage !== undefined) return outage
    const o: Outage = {
      since: new Date(),
      reason: err.message,
      interval: first,
      nextProbeAt: 0,
      timer: undefined,
    }
    outage = o
    metrics.available.set(0)
    log.warn({ err }, 'the event bus is away: refusing publishes at once until a probe finds it back')
    schedule(o)
    return o
  }

  return {
    kind: bus.kind,
    admin: bus.admin,
    availability: {
      refusal: () => (outage === undefined ? undefined : refusal(outage)),
    },
    subscribe: (subscribeOptions) => bus.subscribe(subscribeOptions),

    async publish(records) {
      if (outage !== undefined) {
        metrics.refused.inc()
        throw refusal(outage)
      }
      try {
        return await bus.publish(records)
      } catch (err) {
        // Only a bus that cannot be reached opens the breaker: a record too large, an unknown
        // topic or a closing bus say nothing about the next publish.
        if (!isTributaryError(err, 'BUS_UNAVAILABLE') || closed) throw err
        const o = trip(err)
        throw new TributaryError('BUS_UNAVAILABLE', err.message, {
          cause: err,
          details: { retryAfterMs: retryAfterMs(o) },
        })
      }
    },

    async health() {
      const health = await check()
      if (health.ok || outage === undefined) return health
      return {
        ok: false,
        reason: `publishes refused since ${outage.since.toISOString()}: ${health.reason ?? outage.reason}`,
      }
    },

    async close() {
      closed = true
      clearTimeout(outage?.timer)
      await bus.close()
    },
  }
}
