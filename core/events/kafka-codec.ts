// CloudEvents Kafka protocol binding 1.0: binary content mode written by hand, because it runs once
// per event on the hot path. Structured mode is read too, so data engineers may produce either.
import { TributaryError } from '../errors.ts'
import type { CloudEvent } from './cloudevent.ts'
import { validateAttributes } from './cloudevent.ts'

export interface KafkaMessageParts {
  readonly key: Buffer | undefined
  readonly value: Buffer | undefined
  readonly headers: ReadonlyMap<string, Buffer>
}

const CONTENT_TYPE = 'content-type'
const PREFIX = 'ce_'
const STRUCTURED = 'application/cloudevents'

// Header names are built once per attribute name rather than once per event.
const headerNames = new Map<string, string>()
function headerName(attribute: string): string {
  let name = headerNames.get(attribute)
  if (name === undefined) {
    name = PREFIX + attribute
    if (headerNames.size < 1024) headerNames.set(attribute, name)
  }
  return name
}

/**
 * Binary content mode (Kafka binding §3.2): every attribute but datacontenttype becomes a `ce_`
 * header (§3.2.3), datacontenttype becomes `content-type` (§3.2.1), data is the value (§3.2.2) and
 * partitionkey is the record key (§3.1) rather than a header.
 */
export function encodeBinary(event: CloudEvent): KafkaMessageParts {
  const headers = new Map<string, Buffer>()
  let key: Buffer | undefined
  const attributes = event.attributes
  for (const name in attributes) {
    const value = attributes[name]
    if (value === undefined) continue
    if (name === 'datacontenttype') headers.set(CONTENT_TYPE, Buffer.from(value))
    else if (name === 'partitionkey') key = Buffer.from(value)
    else headers.set(headerName(name), Buffer.from(value))
  }
  return { key, value: event.data, headers }
}

/** Reads binary or structured mode; throws EVENT_INVALID for anything that is not a CloudEvent. */
export function decode(message: KafkaMessageParts): CloudEvent {
  const contentType = message.headers.get(CONTENT_TYPE)?.toString()
  if (contentType?.startsWith(STRUCTURED)) return decodeStructured(message, contentType)
  const attributes: Record<string, string> = {}
  for (const [name, value] of message.headers) {
    if (name.startsWith(PREFIX)) attributes[name.slice(PREFIX.length)] = value.toString()
  }
  if (contentType !== undefined) attributes['datacontenttype'] = contentType
  if (message.key !== undefined) attributes['partitionkey'] = message.key.toString()
  return { attributes: validateAttributes(attributes), data: message.value }
}

function decodeStructured(message: KafkaMessageParts, contentType: string): CloudEvent {
  // Kafka binding §3.3: the value is a whole event in an event format; JSON is the one we read.
  if (!contentType.startsWith(`${STRUCTURED}+json`)) {
    throw new TributaryError(
      'EVENT_INVALID',
      `unsupported structured event format ${JSON.stringify(contentType)}`,
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(message.value?.toString() ?? '')
  } catch (cause) {
    throw new TributaryError('EVENT_INVALID', 'structured CloudEvent is not valid JSON', { cause })
  }
  return fromJson(parsed, message.key?.toString())
}

/** The JSON event format (CloudEvents JSON format §3): `data` as JSON, or `data_base64` as bytes. */
export function fromJson(parsed: unknown, partitionkey?: string): CloudEvent {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TributaryError('EVENT_INVALID', 'a JSON CloudEvent must be an object')
  }
  const attributes: Record<string, string> = {}
  let data: Buffer | undefined
  for (const [name, value] of Object.entries(parsed)) {
    if (name === 'data') {
      data =
        typeof value === 'string' && !isJsonType(parsed)
          ? Buffer.from(value)
          : Buffer.from(JSON.stringify(value))
    } else if (name === 'data_base64') {
      if (typeof value !== 'string') throw new TributaryError('EVENT_INVALID', 'data_base64 must be a string')
      data = Buffer.from(value, 'base64')
    } else if (value !== null && value !== undefined) {
      attributes[name] = typeof value === 'string' ? value : String(value)
    }
  }
  if (partitionkey !== undefined) attributes['partitionkey'] = partitionkey
  return { attributes: validateAttributes(attributes), data }
}

function isJsonType(parsed: object): boolean {
  const type = (parsed as { datacontenttype?: unknown }).datacontenttype
  return type === undefined || (typeof type === 'string' && /[/+]json(;|$)/.test(type))
}

/** The JSON event format, the inverse of fromJson(): JSON data inline, other bytes as data_base64. */
export function toJson(event: CloudEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { ...event.attributes }
  if (event.data === undefined) return out
  const type = event.attributes.datacontenttype
  if (type === undefined || /[/+]json(;|$)/.test(type)) {
    try {
      out['data'] = JSON.parse(event.data.toString())
      return out
    } catch {
      // Declared JSON but not JSON: fall through to bytes, never lose the payload.
    }
  }
  if (type !== undefined && type.startsWith('text/')) out['data'] = event.data.toString()
  else out['data_base64'] = event.data.toString('base64')
  return out
}
