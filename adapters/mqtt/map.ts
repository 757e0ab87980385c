// MQTT ⇄ CloudEvent: a PUBLISH topic is the channel, or `gw/<device>/<channel>` when a gateway
// publishes for another device; the payload is the event data as is.
import type { DeviceMessage } from '../adapter.ts'
import { isChannel, isDeviceId } from '../../core/events/ids.ts'

/** First topic levels a device may not publish to: Tributary's own topics (DESIGN.md). */
export const RESERVED_LEVELS: ReadonlySet<string> = new Set(['command', 'config', 'files', 'gw'])

export type TopicRoute =
  | {
      readonly ok: true
      /** The device the data belongs to when a gateway publishes for it. */
      readonly device: string | undefined
      readonly channel: string
    }
  | { readonly ok: false; readonly reason: 'reserved-topic' | 'invalid-topic'; readonly detail: string }

const GATEWAY_PREFIX = 'gw/'

function channelRoute(channel: string, device: string | undefined): TopicRoute {
  const slash = channel.indexOf('/')
  const first = slash < 0 ? channel : channel.slice(0, slash)
  if (RESERVED_LEVELS.has(first)) {
    return { ok: false, reason: 'reserved-topic', detail: `the first topic level "${first}" is reserved` }
  }
  if (!isChannel(channel)) {
    return {
      ok: false,
      reason: 'invalid-topic',
      detail: 'a channel is 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /, at most 256 characters',
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
): DeviceMessage {
  const device = route.device ?? sender
  return {
    tenant,
    device,
    sender: device === sender ? undefined : sender,
    protocol: 'mqtt',
    channel: route.channel,
    // MQTT 3.1.1 carries no content type (MQTT 5 would: docs/mqtt.md); the data stays opaque bytes.
    payload,
    credential,
    time,
  }
}
