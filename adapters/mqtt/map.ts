// MQTT ⇄ CloudEvent: a PUBLISH topic is the channel, or `gw/<device>/<channel>` when a gateway
// publishes for another device; the payload is the event data as is.
import type { DeviceMessage } from '../adapter.ts'
import { readTarget } from '../../core/events/channels.ts'
import { isDeviceId } from '../../core/events/ids.ts'

export type TopicRoute =
  | {
      readonly ok: true
      /** The device the data belongs to when a gateway publishes for it. */
      readonly device: string | undefined
      readonly channel: string
    }
  | { readonly ok: false; readonly reason: 'reserved-topic' | 'invalid-topic'; readonly detail: string }

const GATEWAY_PREFIX = 'gw/'

/**
 * The channel after the optional gateway prefix, under the rule every protocol shares
 * (core/events/channels.ts). Command responses are read before this (command-topics.ts), so here
 * a response topic is what it is everywhere else: a reserved level (a will cannot be an answer).
 */
function channelRoute(channel: string, device: string | undefined): TopicRoute {
  const read = readTarget(channel)
  if (!read.ok) {
    const reason = read.reason === 'reserved' ? 'reserved-topic' : 'invalid-topic'
    return { ok: false, reason, detail: read.detail }
  }
  if (read.target.kind !== 'telemetry') {
    return {
      ok: false,
      reason: 'reserved-topic',
      detail: 'a command response topic is not a telemetry topic',
    }
  }
  return { ok: true, device, channel }
}

/** Where a PUBLISH goes; the gateway rule itself (does D list the sender?) is checked by the caller. */
export function routeTopic(topic: string): TopicRoute {
  if (!topic.startsWith(GATEWAY_PREFIX)) return channelRoute(topic, undefined)
  const slash = topic.indexOf('/', GATEWAY_PREFIX.length)
  const device = topic.slice(GATEWAY_PREFIX.length, slash < 0 ? undefined : slash)
  if (slash < 0 || !isDeviceId(device)) {
    return { ok: false, reason: 'invalid-topic', detail: 'a gateway publishes on gw/<device>/<channel>' }
  }
  return channelRoute(topic.slice(slash + 1), device)
}

/** The device message of an authorized PUBLISH from `sender` (the connected device). */
export function deviceMessage(
  tenant: string,
  sender: string,
  route: { readonly device: string | undefined; readonly channel: string },
  payload: Buffer,
  time: Date,
  credential?: string,
  /** What an MQTT 5 PUBLISH says of its payload (Content Type, Payload Format Indicator, traceparent). */
  described: { readonly contentType?: string | undefined; readonly traceparent?: string | undefined } = {},
): DeviceMessage {
  const device = route.device ?? sender
  return {
    tenant,
    device,
    sender: device === sender ? undefined : sender,
    protocol: 'mqtt',
    channel: route.channel,
    // MQTT 3.1.1 carries no content type: its data stays opaque bytes (MQTT 5: docs/mqtt.md).
    payload,
    contentType: described.contentType,
    traceparent: described.traceparent,
    credential,
    time,
  }
}
