// Turns a management API bearer token into a Principal: the admin token from configuration, a
// tenant's API token (`tat_...`), or a JWT from the OIDC issuer of the tenant the request is for.
import { decodeJwt } from 'jose'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Tenant } from '../registry/model.ts'
import type { Role } from '../registry/model.ts'
import type { OidcVerifier } from './oidc.ts'
import { looksLikeJwt } from './oidc.ts'
import type { Principal } from './principal.ts'

/** The registry lookups authentication needs (served from the registry's cache). */
export interface CallerLookups {
  /** The API token's tenant, role and id; undefined when unknown, revoked or expired. */
  apiToken(token: string): Promise<
    | {
        readonly tenant: string
        readonly role: Role
        readonly id: string
        /** ms since the epoch; undefined when the token never expires. */
        readonly expiresAt?: number | undefined
      }
    | undefined
  >
  tenant(id: string): Promise<Tenant | undefined>
}

export type AuthOutcome =
  | { readonly kind: 'authenticated'; readonly principal: Principal }
  /** No usable credential: 401 with the reason. */
  | { readonly kind: 'rejected'; readonly reason: string }
  /** A token of another issuer than the tenant's: answered as a request for another tenant. */
  | { readonly kind: 'foreign' }

export interface BearerAuthenticator {
  /**
   * `tenant` is the tenant the request addresses, if any: OIDC tokens are checked against its issuer.
   * Throws AUTH_UNAVAILABLE (503) when the issuer's keys or the registry cannot be reached.
   */
  authenticate(token: string | undefined, tenant: string | undefined): Promise<AuthOutcome>
}

export interface BearerAuthOptions {
  /** TRIBUTARY_ADMIN_TOKEN; undefined: no admin token. */
  readonly adminToken?: string | undefined
  readonly lookups: CallerLookups
  readonly oidc: OidcVerifier
}

export const API_TOKEN_PREFIX = 'tat_'
/** Longest bearer token read; anything longer is refused before any lookup. */
export const MAX_TOKEN_LENGTH = 8192

export function createBearerAuthenticator(options: BearerAuthOptions): BearerAuthenticator {
  // Compare digests so that neither the length nor the content of the admin token leaks by timing.
  const adminDigest = options.adminToken === undefined ? undefined : digest(options.adminToken)
  const isAdmin = (token: string): boolean =>
    adminDigest !== undefined && timingSafeEqual(digest(token), adminDigest)

  return {
    async authenticate(token, tenant) {
      if (token === undefined || token === '') return rejected('send Authorization: Bearer <token>')
      if (token.length > MAX_TOKEN_LENGTH) return rejected('the bearer token is too long')
      if (isAdmin(token)) {
        return {
          kind: 'authenticated',
          principal: { kind: 'admin', subject: 'admin-token', tenant: null, roles: ['admin'] },
        }
      }
      if (token.startsWith(API_TOKEN_PREFIX)) {
        const found = await options.lookups.apiToken(token)
        if (found === undefined) return rejected('the API token is unknown, revoked or expired')
        return {
          kind: 'authenticated',
          principal: {
            kind: 'api-token',
            subject: found.id,
            tenant: found.tenant,
            roles: [found.role],
            expiresAt: found.expiresAt,
          },
        }
      }
      if (!looksLikeJwt(token))
        return rejected('the bearer token is not an admin token, an API token or a JWT')
      if (tenant === undefined) {
        return rejected(
          'an OIDC token is checked against a tenant issuer: call a route under /api/v1/tenants/{tenant} (or /api/v1/whoami?tenant=...)',
        )
      }
      const settings = (await options.lookups.tenant(tenant))?.oidc ?? null
      // A tenant that does not exist or has no issuer answers like any tenant the caller may not see.
      if (settings === null) return { kind: 'foreign' }
      const outcome = await options.oidc.verify(token, tenant, settings)
      if (outcome.kind === 'foreign') return outcome
      if (outcome.kind === 'invalid') return rejected(outcome.reason)
      return {
        kind: 'authenticated',
        principal: {
          kind: 'oidc',
          subject: outcome.subject,
          tenant,
          roles: outcome.roles,
          expiresAt: jwtExpiry(token),
        },
      }
    },
  }
}

/** The verified JWT's `exp` in ms (oidc.ts requires the claim); undefined if absent. */
function jwtExpiry(token: string): number | undefined {
  const exp = decodeJwt(token).exp
  return typeof exp === 'number' ? exp * 1000 : undefined
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()
const rejected = (reason: string): AuthOutcome => ({ kind: 'rejected', reason })
