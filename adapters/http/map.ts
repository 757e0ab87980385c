// HTTP ⇄ device message: the channel from `POST /v1/<channel>` (or the response channel
// `command/res/<request id>/<status>`), the credentials from Authorization (Basic
// `<device>@<tenant>:<password>` or Bearer `tdt_...`), `?as=` and `?ct=` from the query, and the
// body with its Content-Type as the event's data and datacontenttype.
import type { DeviceMessage } from '../adapter.ts'
import type { DeviceTarget } from '../../core/events/channels.ts'
import { CHANNEL_RULE, readTarget } from '../../core/events/channels.ts'
import { isDeviceId } from '../../core/events/ids.ts'
import type { Parsed } from '../content.ts'

export const INGEST_PREFIX = '/v1/'

export type { Parsed } from '../content.ts'
export { checkJson, contentTypeOf, isJsonType, traceparentOf } from '../content.ts'

const fail = (detail: string): { ok: false; detail: string } => ({ ok: false, detail })

/**
 * The target of a request path under the rule every protocol shares (core/events/channels.ts):
 * telemetry on a channel, or a device's answer on `command/res/<request id>/<status>`; `reserved`
 * when the first level is Tributary's own (403). The path is taken as sent, not decoded: a channel
 * is unreserved URI characters only, so anything percent-encoded is not a channel.
 */
export function targetOf(path: string): Parsed<DeviceTarget> & { readonly reserved?: boolean } {
  const rest = path.startsWith(INGEST_PREFIX) ? path.slice(INGEST_PREFIX.length) : ''
  const read = readTarget(rest)
  if (read.ok) return { ok: true, value: read.target }
  if (read.reason === 'reserved') return { ...fail(read.detail), reserved: true }
  return fail(`the channel (POST /v1/<channel>): ${CHANNEL_RULE}`)
}

export type Credentials =
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'malformed' }

/** A header longer than this is not a credential we issue (usernames ≤ 200, passwords ≤ 256, tokens ~90). */
const MAX_AUTHORIZATION_LENGTH = 1024

/** Authorization: Basic (RFC 7617) or Bearer (RFC 6750); schemes are case-insensitive (RFC 9110 §11.1). */
export function credentialsOf(header: string | undefined): Credentials {
  if (header === undefined || header.trim() === '') return { kind: 'none' }
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { kind: 'malformed' }
  const space = header.indexOf(' ')
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase()
  const rest = space < 0 ? '' : header.slice(space + 1).trim()
  if (rest === '') return { kind: 'malformed' }
  if (scheme === 'bearer') return { kind: 'token', token: rest }
  if (scheme !== 'basic' || !/^[A-Za-z0-9+/]+={0,2}$/.test(rest)) return { kind: 'malformed' }
  const decoded = Buffer.from(rest, 'base64').toString('utf8')
  // RFC 7617 §2: the user-id cannot contain a colon, so the first one ends it.
  const colon = decoded.indexOf(':')
  if (colon <= 0) return { kind: 'malformed' }
  return { kind: 'password', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** `?as=<device>`: the device a gateway sends for; undefined when absent. */
export function onBehalfOf(value: string | undefined): Parsed<string | undefined> {
  if (value === undefined) return { ok: true, value: undefined }
  return isDeviceId(value)
    ? { ok: true, value }
    : fail('as= must be a device id (1-128 of A-Z a-z 0-9 . _ : ~ -)')
}

/** `?ct=<seconds>`: how long to wait for a command after the message was accepted, 0 to `maxSeconds`. */
export function commandWait(value: string | undefined, maxSeconds: number): Parsed<number | undefined> {
  if (value === undefined) return { ok: true, value: undefined }
  if (!/^\d{1,7}$/.test(value) || Number(value) > maxSeconds) {
    return fail(`ct= must be a whole number of seconds from 0 to ${maxSeconds}`)
  }
  return { ok: true, value: Number(value) }
}

/** The device message of an authenticated, checked request from `sender`. */
export function deviceMessage(input: {
  readonly tenant: string
  readonly sender: string
  readonly device: string | undefined
  readonly channel: string
  readonly body: Buffer
  readonly contentType: string | undefined
  readonly traceparent: string | undefined
  readonly credential?: string | undefined
  readonly time: Date
}): DeviceMessage {
  const device = input.device ?? input.sender
  return {
    tenant: input.tenant,
    device,
    sender: device === input.sender ? undefined : input.sender,
    protocol: 'http',
    channel: input.channel,
    payload: input.body,
    contentType: input.body.length === 0 ? undefined : input.contentType,
    traceparent: input.traceparent,
    credential: input.credential,
    time: input.time,
  }
}
