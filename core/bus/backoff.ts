// Waiting helpers shared by the bus implementations: interruptible sleep and redelivery backoff.
import { DEFAULT_RETRY_BACKOFF_MS, MAX_RETRY_BACKOFF_MS } from './bus.ts'

/** Resolves after `ms`, or early when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Doubling delays from `initial`, capped, with ±20% jitter so redeliveries do not march in step. */
export function createBackoff(initial = DEFAULT_RETRY_BACKOFF_MS): { next(): number; reset(): void } {
  let current = initial
  return {
    next() {
      const delay = current * (0.8 + Math.random() * 0.4)
      current = Math.min(current * 2, MAX_RETRY_BACKOFF_MS)
      return Math.round(delay)
    },
    reset() {
      current = initial
    },
  }
}

/** A signal that can be fired many times: each fire wakes whoever waits on the current signal. */
export function createWakeup(): { readonly signal: AbortSignal; fire(): void } {
  let controller = new AbortController()
  return {
    get signal() {
      return controller.signal
    },
    fire() {
      const fired = controller
      controller = new AbortController()
      fired.abort()
    },
  }
}
