// What a device says about its payload, on every protocol that carries it (HTTP Content-Type and
// traceparent headers, MQTT 5 Content Type and user properties): checked once, here.
import { validTraceparent } from '../core/tracing.ts'

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly detail: string }

const fail = (detail: string): { ok: false; detail: string } => ({ ok: false, detail })

// RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS parameter ), tokens of tchar.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\]*"))*$`)
const MAX_CONTENT_TYPE_LENGTH = 256

/** The body's media type as datacontenttype; application/octet-stream when a body comes without one. */
export function contentTypeOf(header: string | undefined, bodyBytes: number): Parsed<string | undefined> {
  if (header === undefined || header.trim() === '') {
    return { ok: true, value: bodyBytes > 0 ? 'application/octet-stream' : undefined }
  }
  const value = header.trim()
  if (value.length > MAX_CONTENT_TYPE_LENGTH || !MEDIA_TYPE.test(value)) {
    return fail('Content-Type is not a media type (type/subtype with optional parameters)')
  }
  return { ok: true, value }
}

/** application/json or any `+json` structured syntax suffix (RFC 6839 §3.1). */
export function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  const semicolon = contentType.indexOf(';')
  const essence = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
  return essence === 'application/json' || essence.endsWith('+json')
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A body declared JSON must be one UTF-8 JSON text (RFC 8259 §8.1). */
export function checkJson(body: Buffer): Parsed<undefined> {
  try {
    JSON.parse(utf8.decode(body))
    return { ok: true, value: undefined }
  } catch {
    return fail('the body is declared JSON (Content-Type) but is not valid UTF-8 JSON')
  }
}

/** A well-formed traceparent is carried on the event; anything else is dropped, not refused. */
export const traceparentOf = validTraceparent
