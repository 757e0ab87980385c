// Tenant schemas: what a tenant looks like, and what a create or a PATCH may carry.
import { z } from '@hono/zod-openapi'
import { AUTH_METHODS } from '../../core/registry/model.ts'
import { LIMITS } from '../../core/registry/validate.ts'
import { TenantId, versioned } from './common.ts'

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

const Jwk = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP']),
    kid: z.string().max(256).optional(),
    alg: z.string().max(32).optional(),
  })
  .refine((jwk) => PRIVATE_JWK_MEMBERS.every((m) => !Object.hasOwn(jwk, m)), {
    error: 'a JWKS here holds public keys only (no d, p, q, dp, dq, qi, oth or k)',
  })
  .openapi({ description: 'A public JSON Web Key (RSA, EC or OKP).' })

const HttpUrl = z.url({ protocol: /^https?$/, error: 'use an http(s) URL' }).max(LIMITS.urlLength)

const oidcFields = {
  issuer: z
    .string()
    .min(1)
    .max(512)
    .openapi({ description: 'The `iss` a token must carry.', example: 'https://id.example.com/realms/acme' }),
  audience: z
    .string()
    .min(1)
    .max(256)
    .openapi({ description: 'The `aud` a token must carry.', example: 'tributary' }),
  jwksUri: HttpUrl.optional().openapi({
    description: 'Remote JWKS of the issuer (cached). Exactly one of jwksUri and jwks.',
    example: 'https://id.example.com/realms/acme/protocol/openid-connect/certs',
  }),
  jwks: z
    .array(Jwk)
    .min(1)
    .max(LIMITS.jwksKeys)
    .optional()
    .openapi({ description: 'Static public keys, for offline use.' }),
}

export const OidcSettings = z
  .object({
    ...oidcFields,
    rolesClaim: z.string().openapi({ description: 'Claim holding the roles.' }),
  })
  .openapi('OidcSettings')

export const OidcSettingsInput = z
  .strictObject({
    ...oidcFields,
    rolesClaim: z.string().min(1).max(128).optional().openapi({
      description:
        'Claim holding the roles (a string or an array): a name, or a dotted path such as `realm_access.roles`. Default `roles`.',
      example: 'realm_access.roles',
    }),
  })
  .refine((o) => (o.jwksUri === undefined) !== (o.jwks === undefined), {
    error: 'set exactly one of jwksUri and jwks',
    path: ['jwksUri'],
  })
  .openapi('OidcSettingsInput')

const Quotas = z
  .object({
    maxDevices: z.int().nullable().openapi({ description: 'null: no limit.' }),
    maxMessagesPerSecond: z.number().nullable().openapi({ description: 'Per device; null: no limit.' }),
  })
  .openapi('TenantQuotas')

const QuotasInput = z.strictObject({
  maxDevices: z.int().min(0).max(100_000_000).nullable().optional(),
  maxMessagesPerSecond: z.number().positive().max(1_000_000).nullable().optional(),
})

const TrustAnchor = z
  .object({
    certificate: z.string().openapi({ description: 'CA certificate, PEM.' }),
    subject: z.string(),
    fingerprint: z.string().openapi({ description: 'SHA-256, lowercase hex.' }),
    notAfter: z.string(),
  })
  .openapi('TrustAnchor')

const AuthMethods = z
  .array(z.enum(AUTH_METHODS))
  .max(AUTH_METHODS.length)
  .refine((a) => new Set(a).size === a.length, { error: 'list each method once' })

const Settings = z
  .record(z.string().min(1).max(64), z.unknown())
  .refine((s) => Object.keys(s).length <= 64, { error: 'at most 64 settings' })
  .openapi({ description: 'Per-tenant settings that features read (validated by them).' })

export const Tenant = z
  .object({
    id: TenantId,
    enabled: z.boolean(),
    // A union rather than .nullable(): the latter makes the registered component itself nullable.
    oidc: z.union([OidcSettings, z.null()]),
    quotas: Quotas,
    authMethods: z.array(z.enum(AUTH_METHODS)),
    trustAnchors: z.array(TrustAnchor),
    settings: z.record(z.string(), z.unknown()),
    ...versioned,
  })
  .openapi('Tenant')

const tenantInputFields = {
  enabled: z.boolean().optional().openapi({ description: 'Only the admin token may change it.' }),
  oidc: z
    .union([OidcSettingsInput, z.null()])
    .optional()
    .openapi({ description: 'OIDC issuer of the tenant; null: none.' }),
  quotas: QuotasInput.optional().openapi({ description: 'Only the admin token may change them.' }),
  authMethods: AuthMethods.optional().openapi({
    description: 'Device authentication methods allowed (default all).',
  }),
  trustAnchors: z
    .array(z.string().min(1).max(16_384))
    .max(LIMITS.trustAnchors)
    .optional()
    .openapi({ description: 'CA certificates (PEM) that sign device certificates; replaces the list.' }),
  settings: Settings.optional(),
}

export const TenantCreate = z.strictObject({ id: TenantId, ...tenantInputFields }).openapi('TenantCreate')
export const TenantPatch = z.strictObject(tenantInputFields).openapi('TenantPatch')
