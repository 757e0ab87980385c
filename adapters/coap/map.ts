// CoAP ⇄ DeviceMessage: `POST /v1/<channel>` from its Uri-Path options, the `token`, `as` and `ct`
// query parameters from its Uri-Query options, credentials from option 4209 (as Drogue Cloud does)
// and the Content-Format number as the event's datacontenttype; the other way, a command's media
// type as a Content-Format and its name, request id and device as Location-Query options.
import type { DeviceMessage } from '../adapter.ts'
import type { DeviceCommand } from '../../commands/outlet.ts'
import type { DeviceTarget } from '../../core/events/channels.ts'
import { readTarget } from '../../core/events/channels.ts'
import { isChannel, isDeviceId } from '../../core/events/ids.ts'

/** Drogue Cloud's option for HTTP-style credentials (its RFC 0007): `Basic base64(user:pass)` or `Bearer <token>`. */
export const AUTH_OPTION = 4209
/** Longest credentials option or token accepted before anything is decoded. */
export const MAX_CREDENTIALS_LENGTH = 1024

/**
 * The Content-Formats accepted (IANA CoRE Parameters registry) and the media type each becomes.
 * Format 0 is UTF-8 text by definition (RFC 7252 §12.3), so its charset is spelled out.
 */
export const CONTENT_FORMATS: ReadonlyMap<number, string> = new Map([
  [0, 'text/plain;charset=utf-8'],
  [40, 'application/link-format'],
  [41, 'application/xml'],
  [42, 'application/octet-stream'],
  [47, 'application/exi'],
  [50, 'application/json'],
  [51, 'application/json-patch+json'],
  [52, 'application/merge-patch+json'],
  [60, 'application/cbor'],
  [61, 'application/cwt'],
  [62, 'application/multipart-core'],
  [63, 'application/cbor-seq'],
  [110, 'application/senml+json'],
  [111, 'application/sensml+json'],
  [112, 'application/senml+cbor'],
  [113, 'application/sensml+cbor'],
  [114, 'application/senml-exi'],
  [115, 'application/sensml-exi'],
  [320, 'application/senml-etch+json'],
  [322, 'application/senml-etch+cbor'],
  [432, 'application/td+json'],
  [11542, 'application/vnd.oma.lwm2m+tlv'],
  [11543, 'application/vnd.oma.lwm2m+json'],
  [11544, 'application/vnd.oma.lwm2m+cbor'],
])
const MEDIA_TYPES: ReadonlySet<string> = new Set(CONTENT_FORMATS.values())
/** Media type essence (no parameters, lowercase) → Content-Format, for commands going out. */
const FORMAT_OF: ReadonlyMap<string, number> = new Map(
  [...CONTENT_FORMATS].map(([number, type]) => [essence(type), number]),
)

function essence(type: string): string {
  return type.split(';', 1)[0]!.trim().toLowerCase()
}

/** What the adapter reads of a request, already split into options by the CoAP library. */
export interface WireRequest {
  /** `POST`, `GET` ... or undefined for a code that is no method. */
  readonly method: string | undefined
  readonly uriPath: readonly Buffer[]
  readonly uriQuery: readonly Buffer[]
  /**
   * The Content-Format as the library converted it: one of CONTENT_FORMATS' media types (they are
   * registered with it), another name it knows, a number it does not, or undefined when absent.
   */
  readonly contentFormat: unknown
  /** Every option 4209 value (normally one). */
  readonly credentials: readonly (Buffer | string)[]
  readonly payload: Buffer
  /** The Observe option (RFC 7641): 0 registers, 1 deregisters; undefined when absent. */
  readonly observe?: number | undefined
  /** Every ETag option (RFC 7252 §5.10.6.2): the representations the client has. */
  readonly etags?: readonly Buffer[] | undefined
}

export type Problem = { readonly ok: false; readonly detail: string }
type Result<T> = ({ readonly ok: true } & T) | Problem

const problem = (detail: string): Problem => ({ ok: false, detail })

const SEGMENT = /^[A-Za-z0-9._~-]+$/
export const CHANNEL_RULE =
  'a channel is 1-8 path segments of A-Z a-z 0-9 . _ ~ -, at most 256 characters in all'

/** `v1` then the channel's levels, one per Uri-Path option; `notFound` when the path is not under /v1. */
export function parsePath(segments: readonly Buffer[]): Result<{ channel: string }> & { notFound?: boolean } {
  if (segments.length === 0 || segments[0]!.toString('latin1') !== 'v1') {
    return { ok: false, notFound: true, detail: 'devices POST to /v1/<channel>' }
  }
  if (segments.length === 1) return problem(`the channel is missing: ${CHANNEL_RULE}`)
  const levels = segments.slice(1).map((s) => s.toString('latin1'))
  // A segment holding '/' is not two levels: refuse it rather than let it pass as two.
  if (!levels.every((level) => SEGMENT.test(level))) return problem(CHANNEL_RULE)
  const channel = levels.join('/')
  return isChannel(channel) ? { ok: true, channel } : problem(CHANNEL_RULE)
}

/**
 * What a POST is for: its path (parsePath), then the rule every protocol shares
 * (core/events/channels.ts): telemetry on a channel, a device's answer on
 * `/v1/command/res/<request id>/<status>`, or `reserved` (4.03) under Tributary's own first levels.
 */
export function targetOf(
  segments: readonly Buffer[],
): Result<{ target: DeviceTarget }> & { notFound?: boolean; reserved?: boolean } {
  const path = parsePath(segments)
  if (!path.ok) return path
  const read = readTarget(path.channel)
  if (read.ok) return { ok: true, target: read.target }
  return read.reason === 'reserved' ? { ...problem(read.detail), reserved: true } : problem(CHANNEL_RULE)
}

/** The one path a device observes for its commands: `/v1/commands`. */
export const COMMANDS_PATH = ['v1', 'commands'] as const
/** `GET /v1/config` and `POST /v1/config/applied` (docs/config.md). */
export const CONFIG_PATH = ['v1', 'config'] as const
export const CONFIG_APPLIED_PATH = ['v1', 'config', 'applied'] as const
/** `POST /v1/files/token`: an upload token, as over HTTP (docs/files.md). */
export const FILES_TOKEN_PATH = ['v1', 'files', 'token'] as const
/** `GET /v1/files[/<fileId>]`: the files published to the device, as over HTTP (docs/files.md). */
export const FILES_PATH = ['v1', 'files'] as const

/** The Uri-Path options are exactly these segments. */
export function isPath(segments: readonly Buffer[], path: readonly string[]): boolean {
  return segments.length === path.length && segments.every((s, i) => s.toString('latin1') === path[i])
}

/** True for exactly the Uri-Path of /v1/commands. */
export function isCommandsPath(segments: readonly Buffer[]): boolean {
  return (
    segments.length === COMMANDS_PATH.length &&
    segments.every((s, i) => s.toString('latin1') === COMMANDS_PATH[i])
  )
}

export interface Query {
  readonly token?: string | undefined
  /** The device a gateway sends for. */
  readonly as?: string | undefined
  /** Seconds to wait for a command once the message is accepted. */
  readonly ct?: number | undefined
  /** The parameters of the request's own (the `extra` keys it takes), unchecked. */
  readonly extra: Readonly<Record<string, string>>
}

const QUERY_KEYS: ReadonlySet<string> = new Set(['token', 'as', 'ct'])

/**
 * Uri-Query options are `key=value` each, already unescaped (RFC 7252 §6.5); `token`, `as` and `ct`
 * (whole seconds, 0 to `maxWaitSeconds`) exist everywhere, and the `extra` keys where a request
 * takes them (`appVersion` of `GET /v1/config`, `folder`, `after`, `limit`, `expiresIn` of
 * `GET /v1/files`); any other key is refused.
 */
export function parseQuery(
  options: readonly Buffer[],
  maxWaitSeconds = 0,
  extra: readonly string[] = [],
): Result<{ query: Query }> {
  const text: Record<string, string> = {}
  for (const option of options) {
    const item = option.toString('utf8')
    const eq = item.indexOf('=')
    const key = eq < 0 ? item : item.slice(0, eq)
    const value = eq < 0 ? '' : item.slice(eq + 1)
    if (!QUERY_KEYS.has(key) && !extra.includes(key))
      return problem(`unknown query parameter ${JSON.stringify(key.slice(0, 32))}`)
    if (text[key] !== undefined) return problem(`the query parameter ${key} is given twice`)
    if (value === '') return problem(`the query parameter ${key} is empty`)
    text[key] = value
  }
  const { token, as, ct } = text
  if (as !== undefined && !isDeviceId(as))
    return problem('as must be a device id (1-128 of A-Z a-z 0-9 . _ : ~ -)')
  if (token !== undefined && token.length > MAX_CREDENTIALS_LENGTH) return problem('the token is too long')
  if (ct !== undefined && (!/^\d{1,7}$/.test(ct) || Number(ct) > maxWaitSeconds)) {
    return problem(`ct must be a whole number of seconds from 0 to ${maxWaitSeconds}`)
  }
  const query: { token?: string; as?: string; ct?: number; extra: Record<string, string> } = {
    extra: Object.fromEntries(extra.filter((key) => text[key] !== undefined).map((key) => [key, text[key]!])),
  }
  if (token !== undefined) query.token = token
  if (as !== undefined) query.as = as
  if (ct !== undefined) query.ct = Number(ct)
  return { ok: true, query }
}

export type Credentials =
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'malformed'; readonly detail: string }

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Option 4209 or the token query. Basic credentials are split after the `@`: a tenant id holds no
 * `:`, so a device id may (RFC 7617 would split at the first `:`, which such an id contains).
 */
export function parseCredentials(
  values: readonly (Buffer | string)[],
  token: string | undefined,
): Credentials {
  if (values.length === 0) return token === undefined ? { kind: 'missing' } : { kind: 'token', token }
  if (token !== undefined)
    return { kind: 'malformed', detail: 'give option 4209 or the token query, not both' }
  if (values.length > 1) return { kind: 'malformed', detail: 'option 4209 is given more than once' }
  const value = values[0]!
  const text = (typeof value === 'string' ? value : value.toString('utf8')).trim()
  if (text.length > MAX_CREDENTIALS_LENGTH) return { kind: 'malformed', detail: 'option 4209 is too long' }
  const space = text.indexOf(' ')
  const scheme = (space < 0 ? text : text.slice(0, space)).toLowerCase()
  const rest = space < 0 ? '' : text.slice(space + 1).trim()
  if (scheme === 'bearer' && rest !== '') return { kind: 'token', token: rest }
  if (scheme !== 'basic' || !BASE64.test(rest)) {
    return {
      kind: 'malformed',
      detail: 'option 4209 holds "Basic base64(<device>@<tenant>:<password>)" or "Bearer <token>"',
    }
  }
  const decoded = Buffer.from(rest, 'base64').toString('utf8')
  const colon = decoded.indexOf(':', decoded.indexOf('@'))
  if (decoded.indexOf('@') < 0 || colon < 0) {
    return { kind: 'malformed', detail: 'Basic credentials are base64(<device>@<tenant>:<password>)' }
  }
  return { kind: 'password', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

export type ContentType = Result<{ type: string | undefined }>

/** The datacontenttype of a Content-Format, or why it is refused (4.15). */
export function contentTypeOf(format: unknown): ContentType {
  if (format === undefined) return { ok: true, type: undefined }
  if (typeof format === 'string' && MEDIA_TYPES.has(format)) return { ok: true, type: format }
  const shown = typeof format === 'number' || typeof format === 'string' ? format : 'of this length'
  return problem(
    `Content-Format ${shown} is not supported; use one of ${[...CONTENT_FORMATS.keys()].join(', ')}`,
  )
}

/** JSON media types: application/json and every +json suffix (RFC 6839). */
export function isJsonType(type: string | undefined): boolean {
  if (type === undefined) return false
  const base = type.split(';', 1)[0]!.trim()
  return base === 'application/json' || base.endsWith('+json')
}

/** A payload that declares JSON must be JSON: a consumer trusts the datacontenttype. */
export function checkJson(type: string | undefined, payload: Buffer): Problem | undefined {
  if (!isJsonType(type)) return undefined
  try {
    JSON.parse(payload.toString('utf8'))
    return undefined
  } catch {
    return problem(`the payload is not the JSON its Content-Format (${type}) declares`)
  }
}

/** The message of an authenticated request from `sender`, for `device` (itself, or one it is a gateway for). */
export function deviceMessage(init: {
  tenant: string
  sender: string
  device: string
  channel: string
  payload: Buffer
  contentType: string | undefined
  credential?: string | undefined
  time: Date
}): DeviceMessage {
  return {
    tenant: init.tenant,
    device: init.device,
    sender: init.device === init.sender ? undefined : init.sender,
    protocol: 'coap',
    channel: init.channel,
    payload: init.payload,
    contentType: init.contentType,
    credential: init.credential,
    time: init.time,
  }
}

/** The Content-Format of a command's media type; undefined when it has none or none is registered. */
export function contentFormatOf(type: string | undefined): number | undefined {
  return type === undefined ? undefined : FORMAT_OF.get(essence(type))
}

/**
 * The Location-Query options (RFC 7252 §5.10.8) that tell the device what a command response or
 * notification carries: `command=<name>`, `request=<request id>` for a request-style command, and
 * `device=<id>` when it is for a device the receiver is a gateway for.
 */
export function commandLocation(command: DeviceCommand, receiver: string): Buffer[] {
  const query = [`command=${command.name}`]
  if (command.requestId !== undefined) query.push(`request=${command.requestId}`)
  if (command.device !== receiver) query.push(`device=${command.device}`)
  return query.map((q) => Buffer.from(q, 'utf8'))
}
