// Commands applications publish on the application broker: `command/<tenant>/<device>/<name>[/<request
// id>]` checked against the client's tenant, role and rate, then produced as an
// io.tributary.command.v1 event to the commands topic before the PUBACK (docs/app-mqtt.md). The
// command router and dispatcher take it from there; this module knows nothing of them.
import type { EventBus } from '../../core/bus/bus.ts'
import { isTributaryError } from '../../core/errors.ts'
import { buildCommandEvent } from '../../core/events/commands.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import type { Device } from '../../core/registry/model.ts'
import type { CommandTopic } from './topics.ts'
import { COMMAND_ROOT, parseCommandTopic } from './topics.ts'

/** Why an application's PUBLISH is refused; also the `reason` label of the refusals counter. */
export type PublishRefusal =
  | 'publish-refused'
  | 'bad-command-topic'
  | 'other-tenant'
  | 'not-authorized'
  | 'retained'
  | 'payload-too-large'
  | 'rate-limited'
  | 'unknown-device'
  | 'unavailable'

export type Checked =
  | { readonly ok: true; readonly command: CommandTopic }
  | { readonly ok: false; readonly reason: PublishRefusal; readonly detail: string }

export interface PublishCheck {
  readonly topic: string
  readonly payloadBytes: number
  readonly retain: boolean
  /** The client's tenant, and whether its credential holds the manager or admin role there. */
  readonly tenant: string
  readonly canCommand: boolean
  readonly maxPayloadBytes: number
}

const refused = (reason: PublishRefusal, detail: string): Checked => ({ ok: false, reason, detail })

/** The checks that need no I/O, in order: topic, tenant, role, retain flag, size. */
export function checkCommandPublish(p: PublishCheck): Checked {
  const command = parseCommandTopic(p.topic)
  if (command === undefined) {
    return p.topic === COMMAND_ROOT || p.topic.startsWith(`${COMMAND_ROOT}/`)
      ? refused(
          'bad-command-topic',
          'use command/<tenant>/<device>/<name>[/<request id>] with valid identifiers',
        )
      : refused('publish-refused', 'applications publish commands only')
  }
  if (command.tenant !== p.tenant) return refused('other-tenant', `the client is of tenant ${p.tenant}`)
  if (!p.canCommand) return refused('not-authorized', 'sending commands needs the manager or admin role')
  // [MQTT-3.3.1-5] a broker would keep a retained message; a command is sent once.
  if (p.retain) return refused('retained', 'commands cannot be retained')
  if (p.payloadBytes > p.maxPayloadBytes)
    return refused('payload-too-large', `payload of ${p.payloadBytes} bytes exceeds ${p.maxPayloadBytes}`)
  return { ok: true, command }
}

/** A token bucket of one connection: `rate` commands per second, bursts of `burst`. */
export interface Bucket {
  tokens: number
  at: number
}

export const newBucket = (burst: number, now: number): Bucket => ({ tokens: burst, at: now })

/** Takes one token if there is one (the bucket refills continuously). */
export function takeToken(bucket: Bucket, now: number, rate: number, burst: number): boolean {
  bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * rate)
  bucket.at = now
  if (bucket.tokens < 1) return false
  bucket.tokens -= 1
  return true
}

export interface AppCommandsDeps {
  readonly bus: Pick<EventBus, 'publish'>
  /** `<prefix>.commands`. */
  readonly topic: string
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  /** How long a command waits for its device (the process's commandTtlMs). */
  readonly ttlMs: number
}

export type SendResult =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly reason: 'unknown-device' | 'unavailable'; readonly detail: string }

/** Produces a checked command; resolves once the bus has it, or with why not. Never rejects. */
export function createAppCommands(deps: AppCommandsDeps) {
  return async function send(command: CommandTopic, payload: Buffer): Promise<SendResult> {
    try {
      const device = await deps.findDevice(command.tenant, command.device)
      if (device === undefined)
        return { ok: false, reason: 'unknown-device', detail: `no device ${command.device} in the tenant` }
      const event = buildCommandEvent({
        tenant: command.tenant,
        device: command.device,
        name: command.name,
        requestId: command.requestId,
        payload,
        ttlMs: deps.ttlMs,
        origin: 'mqtt',
      })
      const { key, value, headers } = encodeBinary(event)
      await deps.bus.publish([{ topic: deps.topic, key: key?.toString(), value, headers }])
      return { ok: true, id: event.attributes.id }
    } catch (err) {
      const detail = isTributaryError(err) ? err.message : 'the event bus or the registry failed'
      return { ok: false, reason: 'unavailable', detail }
    }
  }
}

export type AppCommands = ReturnType<typeof createAppCommands>
