// What an MQTT 5 PUBLISH adds to a 3.1.1 one before it reaches ../publish.ts: its Topic Alias
// resolved, and its Payload Format Indicator, Content Type and `traceparent` user property turned
// into the event's datacontenttype and traceparent (docs/mqtt.md, "MQTT 5").
import type { IPublishPacket } from 'mqtt-packet'
import { checkJson, contentTypeOf, isJsonType, traceparentOf } from '../../content.ts'

/** Topic Alias Maximum this endpoint announces in CONNACK: aliases one connection may set. */
export const TOPIC_ALIAS_MAXIMUM = 16

/** What a device's topic aliases stand for, per connection. */
export type TopicAliases = Map<number, string>

/**
 * The Topic Name of a PUBLISH, with its alias set or read (§3.3.2.3.4), or the reason the
 * connection must end: an alias of 0 or above our maximum is DISCONNECT 0x94 [MQTT-3.3.2-8]
 * [MQTT-3.3.2-9]; an empty Topic Name with an alias never set is a Protocol Error (§3.3.4).
 */
export function resolveTopic(
  packet: Pick<IPublishPacket, 'topic' | 'properties'>,
  aliases: TopicAliases,
): { ok: true; topic: string } | { ok: false; reason: 'topic-alias-invalid' | 'protocol-error' } {
  const alias = packet.properties?.topicAlias
  if (alias === undefined) {
    return packet.topic === '' ? { ok: false, reason: 'protocol-error' } : { ok: true, topic: packet.topic }
  }
  if (alias === 0 || alias > TOPIC_ALIAS_MAXIMUM) return { ok: false, reason: 'topic-alias-invalid' }
  if (packet.topic !== '') {
    aliases.set(alias, packet.topic)
    return { ok: true, topic: packet.topic }
  }
  const topic = aliases.get(alias)
  return topic === undefined ? { ok: false, reason: 'protocol-error' } : { ok: true, topic }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export type Described =
  | { readonly ok: true; readonly contentType: string | undefined; readonly traceparent: string | undefined }
  | { readonly ok: false; readonly detail: string }

/**
 * The payload as the PUBLISH describes it. A Payload Format Indicator of 1 promises UTF-8 (§3.3.2.3.2),
 * a Content Type names a media type (§3.3.2.3.9), a JSON one promises JSON: a payload that breaks
 * its own description is refused with PUBACK 0x99, as the receiver may (§3.3.2.3.2). Without a
 * Content Type, UTF-8 payloads are `text/plain; charset=utf-8` and others carry none, as on 3.1.1.
 */
export function describePayload(packet: Pick<IPublishPacket, 'payload' | 'properties'>): Described {
  const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
  const props = packet.properties
  if (props?.payloadFormatIndicator === true) {
    try {
      utf8.decode(payload)
    } catch {
      return { ok: false, detail: 'the Payload Format Indicator says UTF-8 but the payload is not' }
    }
  }
  let contentType: string | undefined
  if (props?.contentType !== undefined) {
    const parsed = contentTypeOf(props.contentType, payload.length)
    if (!parsed.ok) return { ok: false, detail: 'the Content Type is not a media type' }
    contentType = parsed.value
    if (isJsonType(contentType)) {
      const json = checkJson(payload)
      if (!json.ok) return { ok: false, detail: 'the Content Type says JSON but the payload is not' }
    }
  } else if (props?.payloadFormatIndicator === true) {
    contentType = 'text/plain; charset=utf-8'
  }
  const traceparent = props?.userProperties?.['traceparent']
  return {
    ok: true,
    contentType,
    traceparent: traceparentOf(typeof traceparent === 'string' ? traceparent : undefined),
  }
}
