// Tenant schemas: what a tenant looks like, and what a create or a PATCH may carry.
import { z } from '@hono/zod-openapi'
import { AUTH_METHODS } from '../../core/registry/model.ts'
import { LIMITS } from '../../core/registry/validate.ts'
import { QUOTA_LIMITS, TOPIC_SETTING_LIMITS } from '../../core/registry/validate-tenant.ts'
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
    description:
      'Remote JWKS of the issuer (cached): https, not localhost or a loopback, private or special-purpose address unless TRIBUTARY_WEBHOOK_ALLOW_PRIVATE is set. Exactly one of jwksUri and jwks.',
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

const PER_DEVICE =
  'Per device, enforced by the device adapters (MQTT, HTTP, CoAP) with a token bucket shared across protocols and processes'
const TENANT_WIDE =
  'Tenant-wide, over all its devices, enforced by the processors (counted in the cluster state so it holds across processes); events over it go to the dead letter'

const FILES_QUOTA =
  'uploaded files plus the declared size of uploads whose token is still good or whose body is streaming, checked when a token or presigned URL is asked for (409 FILES_QUOTA_EXCEEDED) and again when the body arrives (docs/files.md)'

const quotaDescriptions = {
  maxDevices: 'Most devices the tenant may register; null: no limit.',
  maxMessagesPerSecond: `Messages per second: ${PER_DEVICE}; null: the adapter default (TRIBUTARY_MQTT_PUBLISH_RATE).`,
  maxEventsPerSecond: `Events per second: ${TENANT_WIDE} (reason quota-events); null: no limit.`,
  maxBytesPerSecond: `Payload bytes per second: ${TENANT_WIDE} (reason quota-bytes); null: no limit.`,
  maxPayloadBytes: `Largest payload of one event in bytes, at most ${QUOTA_LIMITS.maxPayloadBytes} (the bus's record limit): ${TENANT_WIDE}; null: no limit.`,
  maxFileStorageBytes: `Bytes of device files the tenant may hold: ${FILES_QUOTA}; null: no limit.`,
  maxFiles: `Device files the tenant may hold: ${FILES_QUOTA}; null: no limit.`,
} as const

const Quotas = z
  .object({
    maxDevices: z.int().nullable().openapi({ description: quotaDescriptions.maxDevices }),
    maxMessagesPerSecond: z.int().nullable().openapi({ description: quotaDescriptions.maxMessagesPerSecond }),
    maxEventsPerSecond: z.int().nullable().openapi({ description: quotaDescriptions.maxEventsPerSecond }),
    maxBytesPerSecond: z.int().nullable().openapi({ description: quotaDescriptions.maxBytesPerSecond }),
    maxPayloadBytes: z.int().nullable().openapi({ description: quotaDescriptions.maxPayloadBytes }),
    maxFileStorageBytes: z.int().nullable().openapi({ description: quotaDescriptions.maxFileStorageBytes }),
    maxFiles: z.int().nullable().openapi({ description: quotaDescriptions.maxFiles }),
  })
  .openapi('TenantQuotas')

const rate = (max: number, description: string) =>
  z.int().min(1).max(max).nullable().optional().openapi({ description })

const QuotasInput = z.strictObject({
  maxDevices: z.int().min(0).max(100_000_000).nullable().optional().openapi({
    description: quotaDescriptions.maxDevices,
  }),
  maxMessagesPerSecond: z.int().min(0).max(1_000_000).nullable().optional().openapi({
    description: quotaDescriptions.maxMessagesPerSecond,
  }),
  maxEventsPerSecond: rate(QUOTA_LIMITS.maxEventsPerSecond, quotaDescriptions.maxEventsPerSecond),
  maxBytesPerSecond: rate(QUOTA_LIMITS.maxBytesPerSecond, quotaDescriptions.maxBytesPerSecond),
  maxPayloadBytes: rate(QUOTA_LIMITS.maxPayloadBytes, quotaDescriptions.maxPayloadBytes),
  maxFileStorageBytes: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional().openapi({
    description: quotaDescriptions.maxFileStorageBytes,
  }),
  maxFiles: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional().openapi({
    description: quotaDescriptions.maxFiles,
  }),
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
  .openapi({
    description: `Per-tenant settings that features read (validated by them). Tributary reads \`topicPartitions\` (${TOPIC_SETTING_LIMITS.partitions.min}-${TOPIC_SETTING_LIMITS.partitions.max}: partitions of the tenant's event topic when it is created) and \`topicRetentionMs\` (-1 to keep forever, or ${TOPIC_SETTING_LIMITS.retentionMs.min}-${TOPIC_SETTING_LIMITS.retentionMs.max}: retention of that topic), defaults TRIBUTARY_TOPIC_PARTITIONS and TRIBUTARY_TOPIC_RETENTION_MS; and \`passwordMinLength\` (1-${LIMITS.passwordMax}).`,
    example: { topicPartitions: 6, topicRetentionMs: 604_800_000 },
  })

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
