// Who may open an event socket: the same rules as the management API (api/auth.ts) — a reader or
// above on the tenant, another tenant's credential answered 404 — and the HTTP refusal written on
// the raw socket before any upgrade, as an RFC 9457 problem document.
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { bearerToken, tenantNotFound } from '../../api/auth.ts'
import { PROBLEM_BASE, PROBLEM_TYPE } from '../../api/problem.ts'
import type { BearerAuthenticator, CallerLookups } from '../../core/auth/bearer.ts'
import type { Principal } from '../../core/auth/principal.ts'
import { allows } from '../../core/auth/principal.ts'
import { TributaryError } from '../../core/errors.ts'

export interface Credentials {
  readonly header: string | undefined
  /** The token of a `bearer.<base64url token>` subprotocol offered with the upgrade. */
  readonly protocol?: string | undefined
  /** `access_token` of the query. */
  readonly query: string | undefined
}

/** The subprotocol prefix that carries a token where no header can (browsers): never selected. */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.'

/**
 * The token of the first `bearer.<base64url>` subprotocol offered, decoded; undefined when none is
 * offered or it does not decode to printable ASCII.
 */
export function protocolToken(offered: readonly string[]): string | undefined {
  const entry = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX))
  if (entry === undefined) return undefined
  const encoded = entry.slice(BEARER_SUBPROTOCOL_PREFIX.length)
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(encoded)) return undefined
  const token = Buffer.from(encoded, 'base64url').toString('utf8')
  return /^[\x21-\x7e]+$/.test(token) ? token : undefined
}

/** The token of the request: the Authorization header, then the subprotocol, then `access_token`. */
export function tokenOf(credentials: Credentials): string | undefined {
  return bearerToken(credentials.header) ?? credentials.protocol ?? credentials.query
}

/** The principal allowed to read `tenant`'s events; throws the TributaryError to answer with. */
export async function authorize(
  auth: Pick<BearerAuthenticator, 'authenticate'>,
  lookups: Pick<CallerLookups, 'tenant'>,
  credentials: Credentials,
  tenant: string,
): Promise<Principal> {
  const token = tokenOf(credentials)
  const outcome = await auth.authenticate(token, tenant)
  if (outcome.kind === 'rejected') {
    const wrongScheme = credentials.header !== undefined && token === undefined
    throw new TributaryError(
      'AUTH_REQUIRED',
      wrongScheme ? 'use the Bearer scheme: Authorization: Bearer <token>' : outcome.reason,
      {
        details: {
          tokenPresented:
            credentials.header !== undefined ||
            credentials.protocol !== undefined ||
            credentials.query !== undefined,
        },
      },
    )
  }
  if (outcome.kind === 'foreign') throw tenantNotFound(tenant)
  const principal = outcome.principal
  if (principal.kind !== 'admin' && principal.tenant !== tenant) throw tenantNotFound(tenant)
  const row = await lookups.tenant(tenant)
  if (row === undefined) throw tenantNotFound(tenant)
  if (principal.kind !== 'admin' && !row.enabled)
    throw new TributaryError('AUTH_FORBIDDEN', `tenant ${JSON.stringify(tenant)} is disabled`)
  if (!allows(principal, tenant, 'reader'))
    throw new TributaryError(
      'AUTH_FORBIDDEN',
      `this needs the reader role on tenant ${JSON.stringify(tenant)}`,
    )
  return principal
}

/** Answers an upgrade request with a problem document and closes the connection. */
export function refuseUpgrade(socket: Duplex, err: unknown, path: string): void {
  const error =
    err instanceof TributaryError ? err : new TributaryError('INTERNAL', 'unexpected error', { cause: err })
  const detail = error.status >= 500 ? 'the event stream cannot be opened now; try again' : error.message
  const fieldErrors = error.details?.['errors']
  const body = JSON.stringify({
    type: `${PROBLEM_BASE}${error.code.toLowerCase().replaceAll('_', '-')}`,
    title: STATUS_CODES[error.status] ?? 'Error',
    status: error.status,
    detail,
    instance: path,
    code: error.code,
    ...(fieldErrors === undefined ? {} : { errors: fieldErrors }),
  })
  const headers = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    `content-type: ${PROBLEM_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    'connection: close',
  ]
  if (error.status === 401) {
    headers.push(
      error.details?.['tokenPresented'] === true
        ? 'www-authenticate: Bearer realm="tributary", error="invalid_token"'
        : 'www-authenticate: Bearer realm="tributary"',
    )
  }
  if (error.canRetry) headers.push('retry-after: 1')
  if (socket.writable) socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`)
  else socket.destroy()
}
