// Outcomes as HTTP says them: 202 once the bus made the event durable, a refusal as an RFC 9457
// problem document (the management API's format: type, title, status, detail, instance, code), 429
// and 503 with Retry-After.
import type { Outcome, RejectReason } from '../adapter.ts'
import type { ErrorCode } from '../../core/errors.ts'
import type { DeviceAuthFailure } from '../../core/registry/auth.ts'

export const PROBLEM_BASE = 'https://tributary.dev/problems/'
export const PROBLEM_TYPE = 'application/problem+json'

/** Both schemes a device may use (RFC 9110 §11.6.1: one header may list several challenges). */
export const DEVICE_CHALLENGE = 'Basic realm="tributary", Bearer realm="tributary"'

export type ProblemKind =
  | RejectReason
  | 'unsupported-media-type'
  | 'unavailable'
  | 'overloaded'
  | 'not-found'
  | 'method-not-allowed'
  | 'quota-exceeded'
  | 'internal'

interface ProblemShape {
  readonly status: number
  readonly code: ErrorCode
  readonly title: string
}

const SHAPES: Record<ProblemKind, ProblemShape> = {
  invalid: { status: 400, code: 'REQUEST_INVALID', title: 'Invalid request' },
  unauthenticated: { status: 401, code: 'AUTH_REQUIRED', title: 'Authentication required' },
  forbidden: { status: 403, code: 'AUTH_FORBIDDEN', title: 'Forbidden' },
  'not-found': { status: 404, code: 'ROUTE_NOT_FOUND', title: 'Not found' },
  'method-not-allowed': { status: 405, code: 'METHOD_NOT_ALLOWED', title: 'Method not allowed' },
  'too-large': { status: 413, code: 'REQUEST_TOO_LARGE', title: 'Request body too large' },
  'unsupported-media-type': {
    status: 415,
    code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE',
    title: 'Unsupported media type',
  },
  'rate-limited': { status: 429, code: 'RATE_LIMITED', title: 'Too many requests' },
  // Device files: the tenant's storage quota is used up (docs/files.md).
  'quota-exceeded': { status: 409, code: 'FILES_QUOTA_EXCEEDED', title: 'Quota exceeded' },
  internal: { status: 500, code: 'INTERNAL', title: 'Internal error' },
  unavailable: { status: 503, code: 'BUS_UNAVAILABLE', title: 'Service unavailable' },
  // The listener holds as many command long polls as it takes (a capacity limit, not the bus).
  overloaded: { status: 503, code: 'RATE_LIMITED', title: 'Too many waiting requests' },
}

export function statusOf(kind: ProblemKind): number {
  return SHAPES[kind].status
}

export interface ProblemOptions {
  /** The request path (the problem's `instance`). */
  readonly instance: string
  readonly retryAfterMs?: number | undefined
  /** WWW-Authenticate for a 401 (RFC 9110 §15.5.2 requires one). */
  readonly challenge?: string | undefined
  /** Allow for a 405. */
  readonly allow?: string | undefined
  /** The problem's code when it is more precise than the kind's (a 503 names what is unavailable). */
  readonly code?: ErrorCode | undefined
}

/** Seconds for Retry-After (RFC 9110 §10.2.3): whole, at least one. */
export const retryAfterSeconds = (ms: number | undefined): number =>
  Math.max(1, Math.ceil((ms ?? 1000) / 1000))

export function problemResponse(kind: ProblemKind, detail: string, options: ProblemOptions): Response {
  const shape = SHAPES[kind]
  const code = options.code ?? shape.code
  const body = {
    type: `${PROBLEM_BASE}${code.toLowerCase().replaceAll('_', '-')}`,
    title: shape.title,
    status: shape.status,
    detail,
    instance: options.instance,
    code,
  }
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' }
  // The rest of an oversized body is not read: the connection cannot carry another request.
  if (shape.status === 413) headers['connection'] = 'close'
  if (shape.status === 429 || shape.status === 503) {
    headers['retry-after'] = String(retryAfterSeconds(options.retryAfterMs))
  }
  if (shape.status === 401) headers['www-authenticate'] = options.challenge ?? DEVICE_CHALLENGE
  if (options.allow !== undefined) headers['allow'] = options.allow
  return new Response(JSON.stringify(body), { status: shape.status, headers })
}

/** What a device is told when a part cannot answer now (never the failure's own message). */
const UNAVAILABLE: Partial<Record<ErrorCode, { code: ErrorCode; detail: string }>> = {
  BUS_UNAVAILABLE: {
    code: 'BUS_UNAVAILABLE',
    detail: 'the event bus cannot take the message now; try again',
  },
  // Closing is the bus being unavailable as far as a device can tell.
  BUS_CLOSED: { code: 'BUS_UNAVAILABLE', detail: 'the event bus cannot take the message now; try again' },
  REGISTRY_UNAVAILABLE: {
    code: 'REGISTRY_UNAVAILABLE',
    detail: 'the device registry cannot be reached now; try again',
  },
  CLUSTER_UNAVAILABLE: {
    code: 'CLUSTER_UNAVAILABLE',
    detail: 'the cluster state cannot be reached now; try again',
  },
}

function unavailableProblem(code: ErrorCode | undefined): { code: ErrorCode; detail: string } {
  const known = UNAVAILABLE[code ?? 'BUS_UNAVAILABLE']
  return known ?? { code: code ?? 'BUS_UNAVAILABLE', detail: 'the service cannot answer now; try again' }
}

/** 202 Accepted with no body, or the refusal as a problem. */
export function outcomeResponse(outcome: Outcome, options: ProblemOptions): Response {
  switch (outcome.kind) {
    case 'accepted':
      return new Response(null, { status: 202 })
    case 'unavailable': {
      // The failure's own message may name hosts and internals: the caller learns what is
      // unavailable and that it may retry.
      const { code, detail } = unavailableProblem(outcome.code)
      return problemResponse('unavailable', detail, { ...options, retryAfterMs: outcome.retryAfterMs, code })
    }
    case 'rejected':
      return problemResponse(outcome.reason, outcome.detail, {
        ...options,
        retryAfterMs: outcome.retryAfterMs,
      })
  }
}

/** The status of an outcome, for metrics and logs. */
export function outcomeStatus(outcome: Outcome): number {
  return outcome.kind === 'accepted'
    ? 202
    : statusOf(outcome.kind === 'rejected' ? outcome.reason : 'unavailable')
}

/**
 * 401 while the credentials do not prove a device (retry with others); 403 once they do and the
 * tenant's policy or the device's state refuses it (the registry checks the secret first).
 */
export function authRefusal(reason: DeviceAuthFailure): {
  kind: 'unauthenticated' | 'forbidden'
  detail: string
} {
  switch (reason) {
    case 'disabled':
      return { kind: 'forbidden', detail: 'the device, its credential or its tenant is disabled' }
    case 'method-not-allowed':
      return { kind: 'forbidden', detail: "the tenant's policy does not allow this authentication method" }
    case 'expired':
      return { kind: 'unauthenticated', detail: 'the credential has expired' }
    case 'malformed':
    case 'unknown':
    case 'bad-secret':
      return { kind: 'unauthenticated', detail: 'the credentials do not identify a device' }
  }
}
