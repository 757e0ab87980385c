// Authentication and authorization of management API calls. Every call names its caller with a
// bearer token; a tenant-scoped caller sees only its own tenant: any route of another tenant answers
// 404 exactly as for a tenant that does not exist, so existence never leaks.
import type { MiddlewareHandler } from 'hono'
import type { BearerAuthenticator, CallerLookups } from '../core/auth/bearer.ts'
import { allows } from '../core/auth/principal.ts'
import { TributaryError } from '../core/errors.ts'
import type { Role } from '../core/registry/model.ts'
import type { ApiEnv } from './env.ts'

/** What a route asks of its caller. */
export type Access =
  /** Any authenticated caller (the route itself narrows what it shows). */
  | 'authenticated'
  /** Only the admin token. */
  | 'global-admin'
  /** At least this role on the tenant of the route's {tenant}. */
  | Role

export const API_PREFIX = '/api/v1'
const TENANTS_PREFIX = `${API_PREFIX}/tenants/`

export function tenantNotFound(tenant: string): TributaryError {
  return new TributaryError('REGISTRY_NOT_FOUND', `tenant ${JSON.stringify(tenant)} not found`)
}

/**
 * The tenant a path addresses (`/api/v1/tenants/{tenant}/...`), if any. The path is the one the router
 * matched (already percent-decoded once); it is not decoded again, so it agrees with the route's param.
 */
export function tenantOfPath(path: string): string | undefined {
  if (!path.startsWith(TENANTS_PREFIX)) return undefined
  const segment = path.slice(TENANTS_PREFIX.length).split('/', 1)[0] ?? ''
  return segment === '' ? undefined : segment
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110 §11.1). */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer +(\S+) *$/i.exec(header)
  return match?.[1]
}

/** `isPublic` paths (the OpenAPI document and reference page) need no credentials. */
export function authenticate(
  auth: BearerAuthenticator,
  lookups: CallerLookups,
  isPublic: (path: string) => boolean,
): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (isPublic(c.req.path)) return next()
    const header = c.req.header('authorization')
    const token = bearerToken(header)
    const routeTenant = tenantOfPath(c.req.path)
    const hint = routeTenant ?? (c.req.path === `${API_PREFIX}/whoami` ? c.req.query('tenant') : undefined)
    const outcome = await auth.authenticate(token, hint)
    if (outcome.kind === 'rejected') {
      throw new TributaryError(
        'AUTH_REQUIRED',
        header !== undefined && token === undefined
          ? 'use the Bearer scheme: Authorization: Bearer <token>'
          : outcome.reason,
        { details: { tokenPresented: header !== undefined } },
      )
    }
    if (outcome.kind === 'foreign') {
      if (routeTenant !== undefined) throw tenantNotFound(routeTenant)
      throw new TributaryError('AUTH_REQUIRED', 'the token is not from the issuer of that tenant', {
        details: { tokenPresented: true },
      })
    }
    const principal = outcome.principal
    if (principal.kind !== 'admin') {
      if (routeTenant !== undefined && routeTenant !== principal.tenant) throw tenantNotFound(routeTenant)
      const tenant = await lookups.tenant(principal.tenant)
      if (tenant === undefined) {
        throw new TributaryError('AUTH_REQUIRED', 'the tenant of this credential no longer exists', {
          details: { tokenPresented: true },
        })
      }
      if (!tenant.enabled)
        throw new TributaryError('AUTH_FORBIDDEN', `tenant ${JSON.stringify(tenant.id)} is disabled`)
    }
    c.set('principal', principal)
    await next()
  }
}

/** Route middleware: refuses with 403 a caller whose roles do not cover the route. */
export function requires(access: Access): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const principal = c.get('principal')
    if (access === 'global-admin') {
      if (principal.kind !== 'admin')
        throw new TributaryError('AUTH_FORBIDDEN', 'only the admin token may do this')
    } else if (access !== 'authenticated') {
      // The route's own param is authoritative; the path check in authenticate() ran before routing.
      const tenant = c.req.param('tenant') ?? ''
      if (principal.kind !== 'admin' && principal.tenant !== tenant) throw tenantNotFound(tenant)
      if (!allows(principal, tenant, access)) {
        throw new TributaryError(
          'AUTH_FORBIDDEN',
          `this needs the ${access} role on tenant ${JSON.stringify(tenant)}`,
        )
      }
    }
    await next()
  }
}

/** Route middleware: a body route takes application/json only (RFC 9110 §15.5.16: 415 otherwise). */
export const requireJson: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const type = c.req.header('content-type')
  const media = type?.split(';', 1)[0]?.trim().toLowerCase()
  if (media !== 'application/json') {
    throw new TributaryError(
      'REQUEST_UNSUPPORTED_MEDIA_TYPE',
      `send the body as application/json${type === undefined ? '' : `, not ${JSON.stringify(type.slice(0, 64))}`}`,
    )
  }
  await next()
}
