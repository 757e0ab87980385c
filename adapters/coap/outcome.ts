// Outcomes as CoAP says them: response codes (RFC 7252 §5.9, RFC 7959 §2.9, RFC 8516), a short
// diagnostic payload on errors (RFC 7252 §5.5.2), Max-Age as "retry after" and Size1 as the limit.
import type { Outcome } from '../adapter.ts'

export const CODES = {
  /** RFC 7252 §5.9.1.1: an upload token was issued (`POST /v1/files/token`). */
  created: '2.01',
  /** RFC 7252 §5.9.1.3: the representation the ETag option names is current. */
  valid: '2.03',
  changed: '2.04',
  /** A command in the response to a `?ct=` request, and every notification of /v1/commands. */
  content: '2.05',
  badRequest: '4.00',
  unauthorized: '4.01',
  /** RFC 7252 §5.4.1: a critical option the server does not understand. */
  badOption: '4.02',
  forbidden: '4.03',
  notFound: '4.04',
  methodNotAllowed: '4.05',
  /** RFC 7959 §2.9.2: a block-wise request body with a gap. */
  incomplete: '4.08',
  /** RFC 8132 §3.3: the request conflicts with the resource's state (the tenant's file quota is used up). */
  conflict: '4.09',
  tooLarge: '4.13',
  unsupportedFormat: '4.15',
  /** RFC 8516: Too Many Requests; Max-Age says when to try again. */
  tooManyRequests: '4.29',
  internal: '5.00',
  unavailable: '5.03',
  proxyingNotSupported: '5.05',
} as const
export type CoapCode = (typeof CODES)[keyof typeof CODES]

export interface CoapReply {
  readonly code: CoapCode
  /** Diagnostic payload (UTF-8, no Content-Format) for error codes. */
  readonly detail?: string | undefined
  /** Max-Age option: seconds after which to retry (4.29, 5.03; RFC 7252 §5.9.3.4, RFC 8516 §3). */
  readonly maxAge?: number | undefined
  /** Size1 option: the largest body accepted (4.13; RFC 7252 §5.9.2.9). */
  readonly size1?: number | undefined
  /** ETag option (2.05, 2.03): the configuration id's bytes. */
  readonly etag?: Buffer | undefined
  /** A representation (2.05) with its Content-Format, instead of a diagnostic. */
  readonly body?: { readonly payload: Buffer; readonly contentFormat: number } | undefined
}

/** Retry after this when the bus did not say: long enough that a fleet of devices does not hammer it. */
export const DEFAULT_RETRY_SECONDS = 5
/** Diagnostics stay well inside one datagram, so an error never needs block-wise transfer. */
export const MAX_DETAIL_BYTES = 200

export const retrySeconds = (ms: number | undefined, fallback = DEFAULT_RETRY_SECONDS): number =>
  ms === undefined ? fallback : Math.max(1, Math.ceil(ms / 1000))

export const reply = (code: CoapCode, detail?: string): CoapReply => ({ code, detail })

/** The response for what the ingest (or a check before it) decided. */
export function replyFor(outcome: Outcome, maxPayloadBytes: number): CoapReply {
  switch (outcome.kind) {
    case 'accepted':
      return { code: CODES.changed }
    case 'unavailable':
      return { code: CODES.unavailable, detail: outcome.detail, maxAge: retrySeconds(outcome.retryAfterMs) }
    case 'rejected':
      switch (outcome.reason) {
        case 'invalid':
          return reply(CODES.badRequest, outcome.detail)
        case 'unauthenticated':
          return reply(CODES.unauthorized, outcome.detail)
        case 'forbidden':
          return reply(CODES.forbidden, outcome.detail)
        case 'too-large':
          return { code: CODES.tooLarge, detail: outcome.detail, size1: maxPayloadBytes }
        case 'rate-limited':
          return {
            code: CODES.tooManyRequests,
            detail: outcome.detail,
            maxAge: retrySeconds(outcome.retryAfterMs, 1),
          }
      }
  }
}

/** The diagnostic payload: UTF-8, cut to MAX_DETAIL_BYTES on a character boundary. */
export function diagnostic(detail: string | undefined): Buffer | undefined {
  if (detail === undefined || detail === '') return undefined
  const bytes = Buffer.from(detail, 'utf8')
  if (bytes.length <= MAX_DETAIL_BYTES) return bytes
  let end = MAX_DETAIL_BYTES
  // Back off continuation bytes (10xxxxxx) so the cut never splits a character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}
