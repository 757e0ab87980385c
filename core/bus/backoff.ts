// Waiting helpers shared by the bus implementations: interruptible sleep, redelivery backoff and
// the at-least-once delivery of one batch to a handler.
import type { BusMessage } from './bus.ts'
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

/**
 * Why a wake-up signal aborted. Given as the reason so that abort() does not build an AbortError
 * DOMException (with its stack trace) on every wake-up: that cost a consumer more CPU than its
 * decoding, as fetchers and partitions fire on every batch.
 */
const WOKEN = 'woken'

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
      fired.abort(WOKEN)
    },
  }
}

/** Resolves when any of the signals aborts (never rejects). */
export function waitAny(...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      for (const s of signals) s.removeEventListener('abort', done)
      resolve()
    }
    for (const s of signals) {
      if (s.aborted) return done()
      s.addEventListener('abort', done, { once: true })
    }
  })
}

export interface DeliverOptions {
  readonly handler: (batch: readonly BusMessage[]) => Promise<void>
  readonly onError: (err: unknown, batch: readonly BusMessage[]) => void
  readonly backoff: { next(): number; reset(): void }
  /** True when the partition was stopped or moved (seek): the batch is no longer wanted. */
  readonly interrupted: () => boolean
  /** What cuts a backoff wait short. */
  readonly wakeup: () => AbortSignal
}

/**
 * Hands `batch` to the handler until it resolves (true), backing off between failures, or until
 * `interrupted()` says to give up (false). The caller commits only after true: at-least-once.
 */
export async function deliver(batch: readonly BusMessage[], options: DeliverOptions): Promise<boolean> {
  for (;;) {
    try {
      await options.handler(batch)
      options.backoff.reset()
      return true
    } catch (err) {
      options.onError(err, batch)
      if (options.interrupted()) return false
      await sleep(options.backoff.next(), options.wakeup())
      if (options.interrupted()) return false
    }
  }
}
