// RFC 9457 problem documents: every error of the management API, whatever raised it, leaves as
// application/problem+json with a stable code; unexpected errors are logged and told as a bare 500.
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ZodError } from 'zod'
import type { ErrorCode } from '../core/errors.ts'
import { TributaryError, isTributaryError } from '../core/errors.ts'
import type { Logger } from '../core/log.ts'

export const PROBLEM_BASE = 'https://tributary.dev/problems/'
export const PROBLEM_TYPE = 'application/problem+json'

export interface FieldError {
  readonly path: string
  readonly message: string
}

const TITLES: Partial<Record<ErrorCode, string>> = {
  REQUEST_INVALID: 'Invalid request',
  REQUEST_TOO_LARGE: 'Request body too large',
  REQUEST_UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  REGISTRY_INVALID: 'Invalid registry input',
  REGISTRY_NOT_FOUND: 'Not found',
  REGISTRY_CONFLICT: 'Conflict',
  REGISTRY_VERSION_MISMATCH: 'Precondition failed',
  REGISTRY_QUOTA_EXCEEDED: 'Quota exceeded',
  REGISTRY_UNAVAILABLE: 'Registry unavailable',
  AUTH_REQUIRED: 'Authentication required',
  AUTH_FORBIDDEN: 'Forbidden',
  AUTH_UNAVAILABLE: 'Identity provider unavailable',
  IDENTIFIER_INVALID: 'Invalid identifier',
  ROUTE_NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  UPGRADE_REQUIRED: 'Upgrade required',
  INTERNAL: 'Internal error',
}

/** Server-side failures are described generically: their messages may carry internals. */
const SERVER_DETAILS: Partial<Record<ErrorCode, string>> = {
  REGISTRY_UNAVAILABLE: 'the registry database cannot be reached; try again',
  AUTH_UNAVAILABLE: 'the identity provider of the tenant cannot be reached; try again',
  SHUTTING_DOWN: 'the server is shutting down; try again',
}

const kebab = (code: string): string => code.toLowerCase().replaceAll('_', '-')

/** Validation failures of a request part as a REQUEST_INVALID error with one entry per field. */
export function validationError(target: string, error: ZodError): TributaryError {
  const where = target === 'json' ? 'body' : target === 'param' ? 'path' : target
  const errors: FieldError[] = error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    // A bad record key reports "Invalid key in record"; the key's own check says why.
    message: issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message,
  }))
  const first = errors[0]
  return new TributaryError(
    'REQUEST_INVALID',
    first === undefined ? `the request ${where} is invalid` : `${first.path}: ${first.message}`,
    { details: { errors } },
  )
}

/** hono's own HTTP errors: its JSON validator (400), the body limit (413), the media type gate (415). */
const HTTP_ERRORS: Partial<Record<number, { code: ErrorCode; message: string }>> = {
  400: { code: 'REQUEST_INVALID', message: 'the request body is not valid JSON' },
  413: { code: 'REQUEST_TOO_LARGE', message: 'the request body is too large' },
  415: { code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE', message: 'send the body as application/json' },
}

/** The error as a TributaryError: hono's own HTTP errors and anything unexpected included. */
function normalize(err: unknown): TributaryError {
  if (isTributaryError(err)) return err
  const known = err instanceof HTTPException ? HTTP_ERRORS[err.status] : undefined
  if (known !== undefined) return new TributaryError(known.code, known.message, { cause: err })
  return new TributaryError('INTERNAL', 'an unexpected error occurred', { cause: err })
}

/** The command, request id and reason of a command's failure or timeout. */
function commandFields(error: TributaryError): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const name of ['reason', 'requestId', 'command']) {
    const value = error.details?.[name]
    if (typeof value === 'string') fields[name] = value
  }
  return fields
}

/** Builds the problem response; logs server errors with their cause (never request headers). */
export function problemResponse(c: Context, err: unknown, log: Logger): Response {
  const error = normalize(err)
  // A command's failure or timeout is the device's outcome, told in full; not a server fault.
  const outcome = error.code === 'COMMAND_FAILED' || error.code === 'COMMAND_TIMEOUT'
  if (error.status >= 500 && !outcome) {
    log.error(
      { err: error.code === 'INTERNAL' ? error.cause : error, method: c.req.method, path: c.req.path },
      'request failed',
    )
  }
  const fieldErrors = error.details?.['errors'] as FieldError[] | undefined
  const body = {
    type: `${PROBLEM_BASE}${kebab(error.code)}`,
    title: TITLES[error.code] ?? kebab(error.code).replaceAll('-', ' '),
    status: error.status,
    detail:
      error.status >= 500 && !outcome
        ? (SERVER_DETAILS[error.code] ?? 'an unexpected error occurred')
        : error.message,
    instance: c.req.path,
    code: error.code,
    ...(fieldErrors === undefined ? {} : { errors: fieldErrors }),
    ...(outcome ? commandFields(error) : {}),
  }
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' }
  if (error.status === 401) {
    headers['www-authenticate'] =
      error.details?.['tokenPresented'] === true
        ? `Bearer realm="tributary", error="invalid_token"`
        : `Bearer realm="tributary"`
  }
  const allow = error.details?.['allow']
  if (typeof allow === 'string') headers['allow'] = allow
  // 426 names the protocol to switch to (RFC 9110 §15.5.22).
  const upgrade = error.details?.['upgrade']
  if (typeof upgrade === 'string') headers['upgrade'] = upgrade
  if (error.canRetry) headers['retry-after'] = '1'
  return new Response(JSON.stringify(body), { status: error.status, headers })
}
