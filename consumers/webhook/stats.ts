// Per-subscription delivery counters: counted in memory on the delivery path and flushed in the
// background as additive deltas (StatsSink, the registry database), so the API sums what every
// engine delivered; with them, now and then, the lag of each running subscription's group.
import type { BusAdmin } from '../../core/bus/bus.ts'
import type { Logger } from '../../core/log.ts'
import type { WebhookStatsDelta, WebhookSubscription } from '../../core/registry/model.ts'
import type { SendOutcome, StatsSink } from './ports.ts'

/** What the delivery path reports; never throws, never waits. */
export interface DeliveryStats {
  attempt(subscription: WebhookSubscription, outcome: SendOutcome['kind'], at: number): void
  delivered(subscription: WebhookSubscription, events: number): void
  deadLettered(subscription: WebhookSubscription, events: number): void
}

export interface StatsCollector extends DeliveryStats {
  /** Writes what was counted since the last flush (and the lags, when due); one write at a time. */
  flush(): Promise<void>
}

export interface StatsCollectorDeps {
  readonly sink: StatsSink
  readonly log: Logger
  readonly now?: (() => number) | undefined
  /** The subscriptions running here, whose group lag is measured. */
  readonly running?: (() => readonly WebhookSubscription[]) | undefined
  /** The lag of a subscription's group (undefined: unknown). */
  readonly lagOf?: ((subscription: WebhookSubscription) => Promise<number | undefined>) | undefined
  /** How often lags are measured, at most (default 30 s). */
  readonly lagIntervalMs?: number | undefined
}

interface Counts {
  tenant: string
  subscription: string
  attempts: number
  delivered: number
  failedAttempts: number
  deadLettered: number
  lastSuccessAt: number | null
  lastFailureAt: number | null
}

/** Most subscriptions with unflushed counts; past it, counts of new ones are dropped (and logged). */
const MAX_PENDING = 10_000

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

export function createStatsCollector(deps: StatsCollectorDeps): StatsCollector {
  const now = deps.now ?? Date.now
  const lagIntervalMs = deps.lagIntervalMs ?? 30_000
  let pending = new Map<string, Counts>()
  let writing: Promise<void> | undefined
  let lagMeasuredAt = Number.NEGATIVE_INFINITY
  let dropped = 0

  function counts(s: WebhookSubscription): Counts | undefined {
    const key = `${s.tenant}\n${s.id}`
    let c = pending.get(key)
    if (c === undefined) {
      if (pending.size >= MAX_PENDING) {
        dropped++
        return undefined
      }
      c = {
        tenant: s.tenant,
        subscription: s.id,
        attempts: 0,
        delivered: 0,
        failedAttempts: 0,
        deadLettered: 0,
        lastSuccessAt: null,
        lastFailureAt: null,
      }
      pending.set(key, c)
    }
    return c
  }

  async function lags(at: number): Promise<Map<string, number>> {
    const measured = new Map<string, number>()
    if (deps.lagOf === undefined || deps.running === undefined || at - lagMeasuredAt < lagIntervalMs)
      return measured
    lagMeasuredAt = at
    for (const s of deps.running()) {
      try {
        const lag = await deps.lagOf(s)
        if (lag !== undefined) measured.set(`${s.tenant}\n${s.id}`, lag)
      } catch (err) {
        deps.log.debug({ err, tenant: s.tenant, subscription: s.id }, 'measuring a webhook group lag failed')
      }
    }
    return measured
  }

  async function write(): Promise<void> {
    const at = now()
    const batch = pending
    pending = new Map()
    const measured = await lags(at)
    const deltas: WebhookStatsDelta[] = []
    for (const [key, c] of batch) {
      const lag = measured.get(key)
      measured.delete(key)
      deltas.push({
        ...c,
        lastSuccessAt: isoOrNull(c.lastSuccessAt),
        lastFailureAt: isoOrNull(c.lastFailureAt),
        lag: lag ?? null,
        lagAt: lag === undefined ? null : new Date(at).toISOString(),
      })
    }
    for (const [key, lag] of measured) {
      const [tenant = '', subscription = ''] = key.split('\n')
      const zero = { attempts: 0, delivered: 0, failedAttempts: 0, deadLettered: 0 }
      const none = { lastSuccessAt: null, lastFailureAt: null }
      deltas.push({ tenant, subscription, ...zero, ...none, lag, lagAt: new Date(at).toISOString() })
    }
    if (dropped > 0) {
      deps.log.warn(
        { dropped },
        'webhook stats of too many subscriptions waited for a write; some were dropped',
      )
      dropped = 0
    }
    if (deltas.length === 0) return
    try {
      await deps.sink.add(deltas)
    } catch (err) {
      deps.log.warn({ err, subscriptions: deltas.length }, 'writing webhook stats failed; they are not kept')
    }
  }

  return {
    attempt(subscription, outcome, at) {
      const c = counts(subscription)
      if (c === undefined) return
      c.attempts++
      if (outcome === 'delivered') c.lastSuccessAt = Math.max(c.lastSuccessAt ?? at, at)
      else {
        c.failedAttempts++
        c.lastFailureAt = Math.max(c.lastFailureAt ?? at, at)
      }
    },
    delivered(subscription, events) {
      const c = counts(subscription)
      if (c !== undefined) c.delivered += events
    },
    deadLettered(subscription, events) {
      const c = counts(subscription)
      if (c !== undefined) c.deadLettered += events
    },
    async flush() {
      while (writing !== undefined) await writing
      writing = write().finally(() => (writing = undefined))
      await writing
    },
  }
}

/**
 * The records of the tenant topic that a group has not committed yet, summed over partitions.
 * A partition the group never committed on counts from its earliest offset.
 */
export async function groupLag(
  admin: Pick<BusAdmin, 'offsets' | 'committed'>,
  topic: string,
  group: string,
): Promise<number> {
  const [ends, committed] = await Promise.all([admin.offsets(topic), admin.committed(group, topic)])
  let lag = 0
  for (const { partition, earliest, next } of ends) {
    const at = Math.max(committed.get(partition) ?? earliest, earliest)
    lag += Math.max(0, next - at)
  }
  return lag
}
