// One PUBLISH from an authenticated device, from packet to outcome: the checks that refuse it
// (retained, size, topic, gateway rule, rate), then the CloudEvent made durable on the bus — a
// telemetry event, or a command response on `[gw/<device>/]command/res/<request id>/<status>`,
// which the command outlet hears of once durable. Limits are checked before any side effect
// (STYLE.md 10).
import type { Ingest, Outcome } from '../adapter.ts'
import type { RateLimiter } from '../device-limits.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import { responseEventInput } from '../../core/events/commands.ts'
import type { Device } from '../../core/registry/model.ts'
import { responseRoute } from './command-topics.ts'
import type { ResponseRoute } from './command-topics.ts'
import type { Connection, Session } from './connection.ts'
import { deviceMessage, routeTopic } from './map.ts'
import type { MqttMetrics } from './metrics.ts'
import { publishAction } from './outcome.ts'
import type { PublishAction } from './outcome.ts'

export interface IncomingPublish {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: number
  readonly retain: boolean
  /** MQTT 5 only: the event's datacontenttype and traceparent, already checked. */
  readonly contentType?: string | undefined
  readonly traceparent?: string | undefined
}

export interface PublishDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  /** Told of each device response once it is durable (a waiting API request returns). */
  readonly commands: Pick<CommandOutlet, 'responded'>
  readonly limiter: RateLimiter
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly metrics: MqttMetrics
  readonly maxPayloadBytes: number
  /** Logs and counts a refusal (throttled per connection). */
  readonly refused: (conn: Connection, reason: string, detail: string) => void
}

export interface PublishResult {
  readonly action: PublishAction
  /** Why, when the action is not `ack`: the refusal reason, also the disconnect reason. */
  readonly reason?: string | undefined
}

const reject = (reason: 'invalid' | 'forbidden' | 'too-large', detail: string): Outcome => ({
  kind: 'rejected',
  reason,
  detail,
})

/** A refused message: the reason label (metrics, logs, disconnect reason) and its outcome. */
interface Refusal {
  readonly refused: string
  readonly outcome: Outcome
}

interface Route {
  readonly device: string | undefined
  readonly channel: string
  /** Set when the PUBLISH answers a request-style command. */
  readonly response?: ResponseRoute | undefined
}

export function createPublishHandler(deps: PublishDeps) {
  async function check(session: Session, packet: IncomingPublish): Promise<Refusal | Route> {
    // [MQTT-3.3.1-5] a broker stores retained messages; Tributary stores nothing for devices to read.
    if (packet.retain) {
      return { refused: 'retained', outcome: reject('forbidden', 'retained messages are not accepted') }
    }
    if (packet.payload.length > deps.maxPayloadBytes) {
      const detail = `payload of ${packet.payload.length} bytes exceeds ${deps.maxPayloadBytes}`
      return { refused: 'payload-too-large', outcome: reject('too-large', detail) }
    }
    const response = responseRoute(packet.topic)
    const route =
      response === undefined ? routeTopic(packet.topic) : { ok: true as const, ...response, channel: '' }
    if (!route.ok) {
      const reason = route.reason === 'invalid-topic' ? 'invalid' : 'forbidden'
      return { refused: route.reason, outcome: reject(reason, route.detail) }
    }
    if (route.device !== undefined && route.device !== session.device) {
      const target = await deps.findDevice(session.tenant, route.device)
      if (target === undefined || !target.enabled || !target.gateways.includes(session.device)) {
        const detail = `device ${route.device} does not list ${session.device} as a gateway`
        return { refused: 'gateway-not-allowed', outcome: reject('forbidden', detail) }
      }
    }
    const target = route.device ?? session.device
    const rate = await deps.limiter.take(session.tenant, target)
    if (!rate.allowed) {
      const detail = `over the publish rate of ${target}`
      return {
        refused: 'rate-limited',
        outcome: { kind: 'rejected', reason: 'rate-limited', detail, retryAfterMs: rate.retryAfterMs },
      }
    }
    return { device: route.device, channel: route.channel, response }
  }

  function ingestResponse(
    session: Session,
    response: ResponseRoute,
    payload: Buffer,
    at: Date,
  ): Promise<Outcome> {
    const device = response.device ?? session.device
    return deps.ingest.event(
      responseEventInput({
        tenant: session.tenant,
        device,
        sender: device === session.device ? undefined : session.device,
        protocol: 'mqtt',
        requestId: response.requestId,
        status: response.status,
        payload,
        credential: session.credentialId,
        time: at,
      }),
    )
  }

  async function send(
    session: Session,
    route: Route,
    packet: IncomingPublish,
    at: Date,
  ): Promise<Refusal | undefined> {
    const { response } = route
    const outcome =
      response === undefined
        ? await deps.ingest.publish(
            deviceMessage(
              session.tenant,
              session.device,
              route,
              packet.payload,
              at,
              session.credentialId,
              packet,
            ),
          )
        : await ingestResponse(session, response, packet.payload, at)
    if (outcome.kind === 'accepted') {
      deps.metrics.message(session.tenant, packet.payload.length)
      if (response !== undefined) {
        deps.commands.responded({
          tenant: session.tenant,
          device: response.device ?? session.device,
          requestId: response.requestId,
          status: response.status,
          payload: packet.payload,
        })
      }
      return undefined
    }
    return { refused: outcome.kind === 'rejected' ? `event-${outcome.reason}` : 'unavailable', outcome }
  }

  return async function handlePublish(
    conn: Connection,
    session: Session,
    packet: IncomingPublish,
    receivedAt: Date,
  ): Promise<PublishResult> {
    const checked = await check(session, packet)
    const refusal = 'refused' in checked ? checked : await send(session, checked, packet, receivedAt)
    if (refusal === undefined) return { action: 'ack' }
    const { refused, outcome } = refusal
    const action = publishAction(outcome, packet.qos)
    const detail = outcome.kind === 'accepted' ? '' : outcome.detail
    const topic = JSON.stringify(packet.topic.slice(0, 300))
    deps.refused(conn, refused, `${detail} (topic ${topic}, QoS ${packet.qos}, ${action})`)
    return { action, reason: refused }
  }
}

export type PublishHandler = ReturnType<typeof createPublishHandler>
