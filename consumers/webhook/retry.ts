// Retry timing of webhook attempts: exponential backoff with full jitter, never sooner than the
// endpoint's Retry-After, and never longer than the policy's maximum.
import type { RetryPolicy } from '../../core/registry/model.ts'

/**
 * The wait before attempt `failed + 1`, after `failed` attempts (1-based): a uniform draw from
 * [0, min(max, initial·2^(failed-1))) ("full jitter"), raised to Retry-After, then capped by max.
 */
export function retryDelay(
  policy: RetryPolicy,
  failed: number,
  random: () => number,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(failed - 1, 30))
  const jittered = Math.floor(random() * ceiling)
  return Math.min(Math.max(jittered, retryAfterMs ?? 0), policy.maxBackoffMs)
}

/** One failed attempt, kept in memory for the API. */
export interface RecentError {
  readonly at: string
  /** The webhook-id of the request. */
  readonly id: string
  readonly attempt: number
  readonly status?: number | undefined
  readonly error: string
}

/** The newest `size` errors, oldest first. */
export function createRecentErrors(size: number): { add(error: RecentError): void; list(): RecentError[] } {
  const ring: RecentError[] = []
  return {
    add(error) {
      ring.push(error)
      if (ring.length > size) ring.shift()
    },
    list: () => [...ring],
  }
}
