// The outbox relays: publish what the store recorded with each write (registry changes to the
// registry topic; events such as file.uploaded to the ingress topic), then mark it published.
// At-least-once: an entry is never lost, and several processes may relay the same outbox
// (consumers are idempotent), so duplicates are harmless.
import { createBackoff, createWakeup, sleep } from '../bus/backoff.ts'
import type { EventBus, OutgoingRecord } from '../bus/bus.ts'
import { TributaryError } from '../errors.ts'
import { encodeBinary } from '../events/kafka-codec.ts'
import type { Component } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import { encodeChange } from './changes.ts'
import type { FileStore } from './files.ts'
import type { RegistryStore } from './store.ts'

export interface OutboxRelayOptions {
  readonly store: Pick<RegistryStore, 'pendingChanges' | 'markPublished'>
  readonly bus: Pick<EventBus, 'publish'>
  readonly topic: string
  readonly log: Logger
  /** How often the outbox is polled when nobody nudges (changes written by other processes). */
  readonly pollMs?: number | undefined
  /** Changes per publish call. */
  readonly batchSize?: number | undefined
  /** How long stop() keeps publishing what is pending. */
  readonly drainMs?: number | undefined
}

export interface OutboxRelay extends Component {
  /** Publish now: called after every write of this process. */
  nudge(): void
  /** Resolves once everything written before the call is published; rejects when the relay stops. */
  flush(): Promise<void>
  /** Changes published so far by this relay. */
  readonly published: number
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { store, topic } = options
  return createRelay('registry-outbox', options, {
    pending: async (limit) =>
      (await store.pendingChanges(limit)).map((entry) => ({
        seq: entry.seq,
        record: encodeChange(entry.change, topic),
      })),
    markPublished: (seq) => store.markPublished(seq),
  })
}

export interface EventOutboxRelayOptions extends Omit<OutboxRelayOptions, 'store'> {
  readonly files: Pick<FileStore, 'pendingEvents' | 'markEventsPublished'>
}

/** Publishes the events recorded in the event outbox (file.uploaded) to `topic` (the ingress topic). */
export function createEventOutboxRelay(options: EventOutboxRelayOptions): OutboxRelay {
  const { files, topic } = options
  return createRelay('event-outbox', options, {
    pending: async (limit) =>
      (await files.pendingEvents(limit)).map((entry) => {
        const { key, value, headers } = encodeBinary(entry.event)
        return { seq: entry.seq, record: { topic, key: key?.toString(), value, headers } }
      }),
    markPublished: (seq) => files.markEventsPublished(seq),
  })
}

interface OutboxSource {
  pending(limit: number): Promise<Array<{ seq: number; record: OutgoingRecord }>>
  markPublished(seq: number): Promise<void>
}

function createRelay(
  name: string,
  options: Omit<OutboxRelayOptions, 'store' | 'topic'>,
  source: OutboxSource,
): OutboxRelay {
  const { bus, log } = options
  const pollMs = options.pollMs ?? 500
  const batchSize = options.batchSize ?? 100
  const drainMs = options.drainMs ?? 5_000
  const backoff = createBackoff(100)
  const wake = createWakeup()
  const stopController = new AbortController()
  let nudged = false
  let running: Promise<void> | undefined
  let stopping = false
  let drainUntil = 0
  let published = 0
  // A flush waits for a pass that began after it was asked for and found the outbox empty.
  let passes = 0
  const flushers: Array<{ pass: number; resolve: () => void; reject: (err: unknown) => void }> = []

  function settleFlushers(pass: number): void {
    for (let i = flushers.length - 1; i >= 0; i--) {
      const flusher = flushers[i]!
      if (flusher.pass <= pass) {
        flushers.splice(i, 1)
        flusher.resolve()
      }
    }
  }

  function nudge(): void {
    nudged = true
    wake.fire()
  }

  async function relayOnce(): Promise<boolean> {
    const entries = await source.pending(batchSize)
    const last = entries.at(-1)
    if (last === undefined) return false
    await bus.publish(entries.map((entry) => entry.record))
    await source.markPublished(last.seq)
    published += entries.length
    return true
  }

  async function loop(): Promise<void> {
    for (;;) {
      if (stopping && Date.now() >= drainUntil) return
      const pass = ++passes
      nudged = false
      try {
        if (await relayOnce()) {
          backoff.reset()
          continue
        }
        settleFlushers(pass)
        if (stopping) return
        if (!nudged) await sleep(pollMs, AbortSignal.any([wake.signal, stopController.signal]))
      } catch (err) {
        // What is left stays in the outbox for the next start (or another process) to publish.
        if (stopping) {
          log.warn({ err }, `${name}: publish failed while stopping`)
          return
        }
        log.error({ err }, `${name}: publish failed; retrying`)
        await sleep(backoff.next(), stopController.signal)
      }
    }
  }

  return {
    name,
    get published() {
      return published
    },
    async start() {
      running ??= loop()
    },
    async stop() {
      stopping = true
      drainUntil = Date.now() + drainMs
      stopController.abort()
      await running
      const stopped = new TributaryError('SHUTTING_DOWN', `the ${name} relay stopped`)
      for (const flusher of flushers.splice(0)) flusher.reject(stopped)
    },
    nudge,
    flush() {
      if (running === undefined || stopping) {
        return Promise.reject(new TributaryError('SHUTTING_DOWN', `the ${name} relay is not running`))
      }
      const { promise, resolve, reject } = Promise.withResolvers<void>()
      flushers.push({ pass: passes + 1, resolve, reject })
      nudge()
      return promise
    },
  }
}
