// The adapter seam (STYLE.md 2, 3): what every device-facing protocol adapter is, and the default
// ingest that turns a device message or connection change into a CloudEvent on the ingress topic
// and answers with an outcome the adapter maps to its protocol (PUBACK, 202, 2.04 ...).
import type { BusAvailability } from '../core/bus/availability.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { ErrorCode } from '../core/errors.ts'
import { isTributaryError } from '../core/errors.ts'
import type { EventInput, Protocol } from '../core/events/build.ts'
import { reservedLevel } from '../core/events/channels.ts'
import { buildEvent, jsonData } from '../core/events/build.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import { SpanKind, startStage } from '../core/tracing.ts'

/** Why a message was refused for good: retrying the same message cannot succeed. */
export type RejectReason = 'invalid' | 'unauthenticated' | 'forbidden' | 'too-large' | 'rate-limited'

export type Outcome =
  | { readonly kind: 'accepted' }
  | {
      readonly kind: 'rejected'
      readonly reason: RejectReason
      readonly detail: string
      /** For `rate-limited`: when one more message would be taken. */
      readonly retryAfterMs?: number | undefined
    }
  | {
      readonly kind: 'unavailable'
      readonly detail: string
      readonly retryAfterMs?: number | undefined
      /** What cannot answer now (default BUS_UNAVAILABLE): REGISTRY_UNAVAILABLE, CLUSTER_UNAVAILABLE ... */
      readonly code?: ErrorCode | undefined
    }

export const accepted: Outcome = { kind: 'accepted' }

export type Unavailable = Extract<Outcome, { kind: 'unavailable' }>

/**
 * The outcome of an error thrown while a device was being served, when a retry can succeed: a
 * part the adapter depends on (registry, cluster state, bus, identity provider) cannot answer now,
 * or the process is stopping. Undefined for anything else, which is a bug (an internal error).
 * Every adapter maps failures through here, so that each protocol says "come back later" for the
 * same causes: 503 with Retry-After, CoAP 5.03 with Max-Age, CONNACK 3.
 */
export function failureOutcome(err: unknown): Unavailable | undefined {
  if (!isTributaryError(err) || !err.canRetry || err.status !== 503) return undefined
  const retryAfterMs = err.details?.['retryAfterMs']
  return {
    kind: 'unavailable',
    detail: err.message,
    code: err.code,
    retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : undefined,
  }
}

/** One message a device sent, authenticated and mapped by its adapter. */
export interface DeviceMessage {
  readonly tenant: string
  /** The device the data belongs to. */
  readonly device: string
  /** The gateway that sent it for `device`, when it is another device. */
  readonly sender?: string | undefined
  readonly protocol: Protocol
  readonly channel: string
  readonly payload: Buffer
  readonly contentType?: string | undefined
  readonly traceparent?: string | undefined
  /** The credential that authenticated the sender (the processors re-check it; ingress only). */
  readonly credential?: string | undefined
  /** Receipt time; defaults to now. */
  readonly time?: Date | undefined
}

/** A device connected or disconnected (io.tributary.connection.v1). */
export interface ConnectionChange {
  readonly tenant: string
  readonly device: string
  readonly protocol: Protocol
  readonly status: 'connected' | 'disconnected'
  /** The listener it came through, e.g. `mqtt`, `mqtts`, `mqtt-ws`. */
  readonly listener: string
  /** Why it ended: client-disconnect, takeover, revoked, keepalive-timeout, shutdown ... */
  readonly reason?: string | undefined
  /** `ip:port` of the peer. */
  readonly remote?: string | undefined
  readonly time?: Date | undefined
}

export interface Ingest {
  /** Resolves once the event is durable on the bus, or with why it is not. Never rejects. */
  publish(message: DeviceMessage): Promise<Outcome>
  connection(change: ConnectionChange): Promise<Outcome>
  /**
   * Any other event a device causes, built as given: kinds beyond telemetry and connection, and
   * extension attributes (TTN joins and LoRaWAN metadata). Same promise as publish.
   */
  event(input: EventInput): Promise<Outcome>
  /**
   * The outcome every publish would have now when the bus is known to be away, else undefined:
   * an adapter asks before work a refusal would waste (authenticating and taking the session of an
   * MQTT CONNECT).
   */
  unavailable(): Unavailable | undefined
}

/** A device-facing protocol adapter: a component with the ports its listeners bound. */
export type Adapter = Component & {
  readonly protocol: Protocol
  /** Bound ports by listener name (e.g. `mqtt`, `mqtts`, `mqttWs`), after start. */
  ports(): Record<string, number>
}

export interface IngestDeps {
  readonly bus: Pick<EventBus, 'publish'>
  /** Whether the bus is known to be away (core/bus/availability.ts); unknown when omitted. */
  readonly availability?: BusAvailability | undefined
  readonly topics: Pick<TopicNames, 'ingress'>
  readonly log: Logger
}

/** The default ingest: one CloudEvent per call, keyed `<tenant>/<device>`, on the ingress topic. */
export function createIngest(deps: IngestDeps): Ingest {
  const { bus, log } = deps
  const topic = deps.topics.ingress

  /** The adapter's stage of a trace: the span covers building the event and its durable publish. */
  async function event(input: EventInput): Promise<Outcome> {
    const span = startStage(`ingest ${input.kind}`, SpanKind.PRODUCER, input.traceparent, {
      'tributary.tenant': input.tenant,
      'tributary.device': input.device,
      'tributary.protocol': input.protocol,
      'messaging.destination.name': topic,
    })
    if (span === undefined) return publishEvent(input)
    const outcome = await publishEvent({ ...input, traceparent: span.traceparent })
    if (outcome.kind !== 'accepted') span.fail(`${outcome.kind}: ${outcome.detail}`)
    span.end()
    return outcome
  }

  async function publishEvent(input: EventInput): Promise<Outcome> {
    let record
    try {
      const { key, value, headers } = encodeBinary(buildEvent(input))
      record = { topic, key: key?.toString(), value, headers }
    } catch (err) {
      // IDENTIFIER_INVALID or EVENT_INVALID: what the device sent cannot become an event.
      return { kind: 'rejected', reason: 'invalid', detail: err instanceof Error ? err.message : String(err) }
    }
    try {
      await bus.publish([record])
      return accepted
    } catch (err) {
      if (isTributaryError(err, 'BUS_RECORD_TOO_LARGE'))
        return { kind: 'rejected', reason: 'too-large', detail: err.message }
      const unavailable = failureOutcome(err)
      if (unavailable !== undefined) return unavailable
      // Anything else is a bug or a broken bus: the device may retry, and the log says what happened.
      log.error({ err, tenant: input.tenant, device: input.device }, 'ingest publish failed')
      return { kind: 'unavailable', detail: 'the event bus failed' }
    }
  }

  return {
    event,
    unavailable() {
      const refusal = deps.availability?.refusal()
      return refusal === undefined ? undefined : failureOutcome(refusal)
    },
    publish: (m) => {
      // Every adapter reads its channels with core/events/channels.ts before it gets here; this is
      // the seam's own guard, so that no adapter can put telemetry on a reserved level.
      const level = reservedLevel(m.channel)
      if (level !== undefined) {
        const detail = `the first channel level "${level}" is reserved`
        return Promise.resolve<Outcome>({ kind: 'rejected', reason: 'forbidden', detail })
      }
      return event({
        kind: 'telemetry',
        tenant: m.tenant,
        device: m.device,
        sender: m.sender,
        protocol: m.protocol,
        subject: m.channel,
        data: m.payload,
        datacontenttype: m.contentType,
        traceparent: m.traceparent,
        credential: m.credential,
        time: m.time,
      })
    },
    connection: (c) => {
      const data: Record<string, string> = { status: c.status, listener: c.listener }
      if (c.reason !== undefined) data['reason'] = c.reason
      if (c.remote !== undefined) data['remote'] = c.remote
      return event({
        kind: 'connection',
        tenant: c.tenant,
        device: c.device,
        protocol: c.protocol,
        ...jsonData(data),
        time: c.time,
      })
    },
  }
}
