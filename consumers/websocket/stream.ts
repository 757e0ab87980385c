// One event socket: a bus subscription on the tenant's topic whose records leave as structured JSON
// CloudEvents, paused while the socket's send buffer is full, ended when the credential expires, is
// revoked, or the client falls too far behind. Nothing is buffered without bound.
import { SpanKind, startStage } from '../../core/tracing.ts'
import type { WebSocket } from 'ws'
import type { BusMessage, EventBus, Subscription } from '../../core/bus/bus.ts'
import type { Principal } from '../../core/auth/principal.ts'
import { TributaryError } from '../../core/errors.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import { encodeStructured } from '../../core/events/structured.ts'
import type { Logger } from '../../core/log.ts'
import type { EventsQuery } from './query.ts'
import { matchesFilters, startPosition } from './query.ts'

/** WebSocket close codes (RFC 6455 §7.4.1). */
export const CLOSE = { goingAway: 1001, policy: 1008, internal: 1011 } as const

export interface StreamLimits {
  /**
   * Send buffer bound: past half of it the subscription pauses (the buffer then holds at most that
   * plus one event) until the client has read it down to a quarter.
   */
  readonly maxBufferedBytes: number
  /** How long a paused socket may take to drain below a quarter of maxBufferedBytes. */
  readonly stallTimeoutMs: number
  /** How often the credential is checked again (revoked API tokens, removed roles). */
  readonly recheckMs: number
}

export interface StreamOptions {
  readonly tenant: string
  readonly topic: string
  readonly group: string
  /** A client-named group, whose committed place a reconnecting client resumes from. */
  readonly named: boolean
  readonly query: EventsQuery
  readonly principal: Principal
  readonly limits: StreamLimits
  readonly bus: EventBus
  /** Resolves when the credential still allows the stream; rejects (TributaryError) when it does not. */
  readonly recheck: () => Promise<void>
  readonly log: Logger
}

export interface EventStream {
  /** Starts sending on the upgraded socket (the subscription is already in place). */
  attach(ws: WebSocket): void
  /** Closes the socket with `code` and leaves the consumer group. */
  end(code: number, reason: string): Promise<void>
  readonly paused: boolean
  /** Settles once the socket is closed and the subscription left. */
  readonly closed: Promise<void>
}

const POLL_MS = 25
/** setTimeout's longest delay; later expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Subscribes first, so the client's `open` means events published from then on will arrive. */
export async function openStream(options: StreamOptions): Promise<EventStream> {
  const { limits, log } = options
  const attached = Promise.withResolvers<WebSocket | undefined>()
  const closed = Promise.withResolvers<void>()
  let socket: WebSocket | undefined
  let ending = false
  let expiry: NodeJS.Timeout | undefined
  let recheck: NodeJS.Timeout | undefined

  const open = (): boolean => !ending && socket !== undefined && socket.readyState === socket.OPEN

  /** Waits until the send buffer falls to `target` bytes, or the stall deadline passes. */
  async function drained(ws: WebSocket, target: number): Promise<void> {
    const deadline = Date.now() + limits.stallTimeoutMs
    while (open() && ws.bufferedAmount > target) {
      if (Date.now() > deadline) {
        void end(CLOSE.policy, 'client too slow')
        break
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
    if (!open()) throw new TributaryError('SHUTTING_DOWN', 'the event socket is closed')
  }

  async function handler(batch: readonly BusMessage[]): Promise<void> {
    const ws = await attached.promise
    if (ws === undefined || !open()) throw new TributaryError('SHUTTING_DOWN', 'the event socket is closed')
    for (const message of batch) {
      let text: string
      let traceparent: string | undefined
      try {
        const event = decode({
          key: message.key === undefined ? undefined : Buffer.from(message.key),
          value: message.value,
          headers: message.headers,
        })
        if (!matchesFilters(event, options.query.filters)) continue
        text = encodeStructured(event)
        traceparent = event.attributes.traceparent
      } catch (err) {
        log.warn(
          { err, partition: message.partition, offset: message.offset },
          'skipped a record that is not a CloudEvent',
        )
        continue
      }
      // Backpressure: never queue more than half the bound (plus the event being sent).
      if (ws.bufferedAmount > limits.maxBufferedBytes / 2) await backOff(ws)
      // The delivery's stage of the event's trace: the frame handed to the socket.
      const span = startStage('websocket deliver', SpanKind.PRODUCER, traceparent, {
        'tributary.tenant': options.tenant,
      })
      ws.send(text)
      span?.end()
    }
    // Resolving commits the batch: a named group's place moves only once the batch left the process.
    if (options.named && ws.bufferedAmount > 0) await drained(ws, 0)
  }

  async function backOff(ws: WebSocket): Promise<void> {
    subscription.pause()
    try {
      await drained(ws, limits.maxBufferedBytes / 4)
    } finally {
      if (!ending) subscription.resume()
    }
  }

  const from = options.query.from
  let position = undefined
  if (from !== undefined) {
    const partitions = (await options.bus.admin.describeTopic(options.topic))?.partitions ?? 0
    position = startPosition(options.topic, from, partitions)
  }
  const subscription: Subscription = await options.bus.subscribe({
    group: options.group,
    topics: [options.topic],
    handler,
    from: position ?? 'latest',
    // An explicit `from` wins over a named group's committed place; ephemeral groups have none:
    // they commit nothing, so a socket without a group leaves no offsets behind.
    reset: from !== undefined,
    commit: options.named,
    onError: (err) => {
      if (!ending) log.warn({ err }, 'event socket batch failed')
    },
  })

  async function end(code: number, reason: string): Promise<void> {
    if (!ending) {
      ending = true
      clearTimeout(expiry)
      clearInterval(recheck)
      attached.resolve(undefined)
      if (socket !== undefined && socket.readyState === socket.OPEN) {
        socket.close(code, reason)
        // A client that does not read never sees the close frame: do not wait for its answer.
        const ws = socket
        setTimeout(() => ws.terminate(), 1_000).unref()
      }
      subscription
        .close()
        .catch((err: unknown) => log.warn({ err }, 'event socket could not leave its group'))
        .finally(() => closed.resolve())
    }
    return closed.promise
  }

  function armExpiry(expiresAt: number): void {
    const delay = expiresAt - Date.now()
    expiry = setTimeout(
      () => (delay > MAX_TIMER_MS ? armExpiry(expiresAt) : void end(CLOSE.policy, 'token expired')),
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    )
  }

  return {
    get paused() {
      return subscription.paused
    },
    closed: closed.promise,
    end,
    attach(ws) {
      socket = ws
      ws.on('close', () => void end(CLOSE.goingAway, 'closed'))
      ws.on('error', (err) => log.debug({ err }, 'event socket error'))
      if (ending) {
        ws.close(CLOSE.goingAway, 'closed')
        return
      }
      const expiresAt = options.principal.kind === 'admin' ? undefined : options.principal.expiresAt
      if (expiresAt !== undefined) armExpiry(expiresAt)
      recheck = setInterval(() => {
        options.recheck().then(
          () => undefined,
          (err: unknown) => {
            if (err instanceof TributaryError && err.canRetry) return
            void end(CLOSE.policy, 'credential no longer valid')
          },
        )
      }, limits.recheckMs)
      attached.resolve(ws)
    },
  }
}
