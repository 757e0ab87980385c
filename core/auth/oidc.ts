// Verifies a tenant's OIDC access tokens (JWT) with jose: signature against the issuer's JWKS (remote,
// cached per tenant, or static keys from the tenant's settings), issuer, audience and expiry. A
// remote JWKS is a URL the tenant chose, so it is fetched under the policy of every such URL
// (core/outbound.ts): never from a loopback, private or special address unless the operator allows it.
import { createHash } from 'node:crypto'
import type { LookupAddress } from 'node:dns'
import type { JWTPayload, JWTVerifyGetKey } from 'jose'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
} from 'jose'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { createTargetFetch } from '../outbound.ts'
import type { OidcSettings, Role } from '../registry/model.ts'
import { rolesFromClaim } from './roles.ts'

/** Asymmetric algorithms only: a shared-secret (HS*) or unsecured (`none`) token is never accepted. */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]

export interface OidcVerifierOptions {
  /** How long a remote JWKS is cached (TRIBUTARY_OIDC_JWKS_CACHE_MS). */
  readonly jwksCacheMs: number
  /** Bound on one JWKS fetch. */
  readonly fetchTimeoutMs?: number | undefined
  /** Allowed clock skew for exp/nbf/iat, seconds. */
  readonly clockToleranceSec?: number | undefined
  /** Most key sets kept (one per tenant and JWKS); the oldest is dropped past it. */
  readonly maxKeySets?: number | undefined
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: a JWKS on loopback or a private network may be fetched (tests). */
  readonly allowPrivate?: boolean | undefined
  /** Name resolution for JWKS hosts (tests answer for made-up names); dns.lookup by default. */
  readonly resolve?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
  readonly log: Logger
}

/** The largest remote JWKS read: far above any real key set (LIMITS.jwksBytes bounds static ones). */
export const MAX_REMOTE_JWKS_BYTES = 256 * 1024

export type OidcOutcome =
  | { readonly kind: 'verified'; readonly subject: string; readonly roles: Role[] }
  /** The token names this tenant's issuer or is signed by its keys, but is not valid: 401. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /** Neither this tenant's issuer nor its keys: a credential of some other tenant or issuer. */
  | { readonly kind: 'foreign' }

export interface OidcVerifier {
  /** Throws AUTH_UNAVAILABLE when the tenant's JWKS cannot be fetched for a token of its issuer. */
  verify(token: string, tenant: string, settings: OidcSettings): Promise<OidcOutcome>
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export const looksLikeJwt = (token: string): boolean => JWT_SHAPE.test(token)

export function createOidcVerifier(options: OidcVerifierOptions): OidcVerifier {
  const keySets = new Map<string, JWTVerifyGetKey>()
  const maxKeySets = options.maxKeySets ?? 1000
  const clockTolerance = options.clockToleranceSec ?? 30
  const fetchJwks = createTargetFetch({
    allowPrivate: options.allowPrivate ?? false,
    resolve: options.resolve,
    maxBodyBytes: MAX_REMOTE_JWKS_BYTES,
  })

  function keySet(tenant: string, settings: OidcSettings): JWTVerifyGetKey {
    const cacheKey =
      settings.jwksUri !== undefined
        ? `${tenant}\0remote\0${settings.jwksUri}`
        : `${tenant}\0static\0${createHash('sha256')
            .update(JSON.stringify(settings.jwks ?? []))
            .digest('hex')}`
    const cached = keySets.get(cacheKey)
    if (cached !== undefined) return cached
    const created =
      settings.jwksUri !== undefined
        ? createRemoteJWKSet(new URL(settings.jwksUri), {
            cacheMaxAge: options.jwksCacheMs,
            timeoutDuration: options.fetchTimeoutMs ?? 5_000,
            [customFetch]: fetchJwks,
          })
        : createLocalJWKSet({ keys: (settings.jwks ?? []) as never })
    if (keySets.size >= maxKeySets) {
      const oldest = keySets.keys().next().value
      if (oldest !== undefined) keySets.delete(oldest)
    }
    keySets.set(cacheKey, created)
    return created
  }

  return {
    async verify(token, tenant, settings) {
      let claimedIssuer: unknown
      try {
        decodeProtectedHeader(token)
        claimedIssuer = decodeJwt(token).iss
      } catch {
        return { kind: 'invalid', reason: 'the bearer token is not a well-formed JWT' }
      }
      const ours = claimedIssuer === settings.issuer
      let payload: JWTPayload
      try {
        // A token naming another issuer is still checked against this tenant's keys, so that one
        // its own issuer signed with a wrong `iss` is told apart (invalid) from a stranger's (foreign).
        const result = await jwtVerify(
          token,
          keySet(tenant, settings),
          ours
            ? {
                issuer: settings.issuer,
                audience: settings.audience,
                algorithms: OIDC_ALGORITHMS,
                clockTolerance,
                requiredClaims: ['exp'],
              }
            : { algorithms: OIDC_ALGORITHMS, clockTolerance },
        )
        payload = result.payload
      } catch (err) {
        if (unavailable(err)) {
          if (!ours) return { kind: 'foreign' }
          options.log.warn({ err, tenant, jwksUri: settings.jwksUri }, 'tenant JWKS unavailable')
          throw new TributaryError(
            'AUTH_UNAVAILABLE',
            'the tenant identity provider keys cannot be fetched',
            {
              cause: err,
            },
          )
        }
        if (!ours && keyMismatch(err)) return { kind: 'foreign' }
        return { kind: 'invalid', reason: reasonOf(err) }
      }
      if (!ours) return { kind: 'invalid', reason: 'the token issuer does not match the tenant issuer' }
      return {
        kind: 'verified',
        subject: typeof payload.sub === 'string' ? payload.sub : 'unknown',
        roles: rolesFromClaim(payload, settings.rolesClaim),
      }
    },
  }
}

/** The JWKS could not be had: a timeout, a failed fetch, a non-200 answer or an unusable body. */
function unavailable(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true
  return err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JOSE_GENERIC' || err.code === 'ERR_JWKS_INVALID'
}

/** Failures that say the token was not signed with any key of this tenant. */
function keyMismatch(err: unknown): boolean {
  return (
    err instanceof errors.JOSEError &&
    [
      'ERR_JWKS_NO_MATCHING_KEY',
      'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      'ERR_JOSE_ALG_NOT_ALLOWED',
      'ERR_JWS_INVALID',
      'ERR_JOSE_NOT_SUPPORTED',
      'ERR_JWK_INVALID',
    ].includes(err.code)
  )
}

/** A short reason for the 401 (never the token itself). */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired'
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's "${err.claim}" claim is not valid`
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not allowed'
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the tenant issuer matches the token'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is not valid'
  return 'the token is not valid'
}
