// Per-device limits and bookkeeping every device adapter shares: the message rate (one token bucket
// per device in the cluster state, so one quota holds across protocols and instances) and the
// throttled, background last-seen write to the registry.
import type { ClusterState, RateDecision } from '../core/cluster/cluster.ts'
import type { Logger } from '../core/log.ts'
import type { Tenant } from '../core/registry/model.ts'

/** The bucket of a device: one key for every adapter, so the quota is per device whatever the protocol. */
export const rateKey = (tenant: string, device: string): string => `rate:${tenant}/${device}`

export interface RateLimiterDeps {
  readonly cluster: Pick<ClusterState, 'take'>
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  /** Messages per second per device when the tenant sets no quota. */
  readonly defaultRate: number
  readonly log: Logger
}

export interface RateLimiter {
  /** Takes one message from the device's bucket; the tenant's maxMessagesPerSecond wins over the default. */
  take(tenant: string, device: string): Promise<RateDecision>
}

/** What the cluster state accepts as a rate. */
const MAX_RATE = 1_000_000

/** Failures (cluster state, registry) are logged at most this often; the work goes on meanwhile. */
const FAILURE_LOG_INTERVAL_MS = 10_000

export function createRateLimiter(deps: RateLimiterDeps): RateLimiter {
  let lastFailureLog = 0
  return {
    async take(tenant, device) {
      try {
        const quota = (await deps.tenant(tenant))?.quotas.maxMessagesPerSecond
        // A quota of 0 stops the tenant's devices.
        if (quota === 0) return { allowed: false, retryAfterMs: 1_000 }
        const rate = Math.min(quota ?? deps.defaultRate, MAX_RATE)
        return await deps.cluster.take(rateKey(tenant, device), rate, rate * 2)
      } catch (err) {
        // A rate limit protects capacity; losing it for a while beats refusing every device's data.
        if (Date.now() - lastFailureLog > FAILURE_LOG_INTERVAL_MS) {
          lastFailureLog = Date.now()
          deps.log.warn({ err }, 'message rate check failed; accepting messages unchecked meanwhile')
        }
        return { allowed: true, retryAfterMs: 0 }
      }
    },
  }
}

export interface LastSeenDeps {
  /** The registry write (RegistryStore.touchDevice). */
  readonly touch: (tenant: string, device: string, at: Date) => Promise<void>
  /** A device is written at most this often per process. */
  readonly intervalMs: number
  readonly log: Logger
  /** Devices remembered at most; past it the oldest are forgotten (and may be written again early). */
  readonly maxEntries?: number | undefined
  readonly now?: (() => number) | undefined
}

export interface LastSeen {
  /**
   * Records that the device was seen at `at` (default now); the registry write happens in the
   * background, at most once per device per interval; a failed write is logged, never thrown.
   */
  seen(tenant: string, device: string, at?: Date): void
  /** Resolves when the writes started so far have ended (stop, tests). */
  flush(): Promise<void>
}

export function createLastSeen(deps: LastSeenDeps): LastSeen {
  const now = deps.now ?? Date.now
  const maxEntries = deps.maxEntries ?? 100_000
  /** When each device was last written, oldest first (re-inserted on every write). */
  const written = new Map<string, number>()
  const pending = new Set<Promise<void>>()
  let lastFailureLog = 0

  return {
    seen(tenant, device, at) {
      const key = `${tenant}/${device}`
      const t = now()
      const last = written.get(key)
      if (last !== undefined && t - last < deps.intervalMs) return
      written.delete(key)
      written.set(key, t)
      while (written.size > maxEntries) written.delete(written.keys().next().value!)
      const write = deps
        .touch(tenant, device, at ?? new Date(t))
        .catch((err: unknown) => {
          // Lost activity is tolerable; a write that failed is tried again on the device's next message.
          if (written.get(key) === t) written.delete(key)
          if (t - lastFailureLog > FAILURE_LOG_INTERVAL_MS) {
            lastFailureLog = t
            deps.log.warn({ err, tenant, device }, 'could not record the last-seen time')
          }
        })
        .finally(() => pending.delete(write))
      pending.add(write)
    },
    async flush() {
      await Promise.allSettled([...pending])
    },
  }
}
