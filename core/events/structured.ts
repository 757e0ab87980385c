// Structured content mode for application-facing transports (WebSocket, the application MQTT
// broker): one CloudEvent as one JSON document in the CloudEvents JSON event format 1.0.
import { TributaryError } from '../errors.ts'
import type { CloudEvent } from './cloudevent.ts'
import { fromJson, toJson } from './kafka-codec.ts'

/** The media type of one JSON-format event (CloudEvents JSON format §4). */
export const STRUCTURED_JSON_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8'

/** WebSocket binding §1.2: the subprotocol name for the JSON event format. */
export const STRUCTURED_JSON_SUBPROTOCOL = 'cloudevents.json'

/**
 * The JSON event format as text: attributes as members, `data` inline when the content type is
 * JSON (or absent) and the bytes parse, `data` as a string for text/*, otherwise `data_base64`.
 */
export function encodeStructured(event: CloudEvent): string {
  return JSON.stringify(toJson(event))
}

/** The same document as UTF-8 bytes, for transports that carry payloads as buffers. */
export function encodeStructuredBuffer(event: CloudEvent): Buffer {
  return Buffer.from(encodeStructured(event))
}

/** Reads one JSON-format event; throws EVENT_INVALID for anything that is not a CloudEvent. */
export function decodeStructured(text: string | Buffer): CloudEvent {
  let parsed: unknown
  try {
    parsed = JSON.parse(text.toString())
  } catch (cause) {
    throw new TributaryError('EVENT_INVALID', 'structured CloudEvent is not valid JSON', { cause })
  }
  return fromJson(parsed)
}
