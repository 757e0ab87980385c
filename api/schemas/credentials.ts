// Device credential schemas: the four types as the API shows them (never a hash or a secret) and
// as a caller creates them.
import { z } from '@hono/zod-openapi'
import { LIMITS } from '../../core/registry/validate.ts'
import { DeviceId, ResourceId, TenantId, Timestamp, versioned } from './common.ts'

const base = {
  tenant: TenantId,
  device: DeviceId,
  id: ResourceId,
  enabled: z.boolean(),
  expiresAt: Timestamp.nullable(),
  ...versioned,
}

export const PasswordCredential = z
  .object({ type: z.literal('password'), ...base })
  .openapi('PasswordCredential')
export const X509Credential = z
  .object({
    type: z.literal('x509'),
    match: z.enum(['cn', 'fingerprint']),
    subjectCn: z.string().nullable(),
    fingerprint: z.string().nullable(),
    ...base,
  })
  .openapi('X509Credential')
export const PskCredential = z
  .object({
    type: z.literal('psk'),
    identity: z.string().openapi({ description: '`<device>@<tenant>`' }),
    ...base,
  })
  .openapi('PskCredential')
export const TokenCredential = z.object({ type: z.literal('token'), ...base }).openapi('TokenCredential')

export const Credential = z
  .discriminatedUnion('type', [PasswordCredential, X509Credential, PskCredential, TokenCredential])
  .openapi('Credential')

const inputBase = {
  enabled: z.boolean().optional(),
  expiresAt: Timestamp.nullable().optional().openapi({ description: 'null or omitted: no expiry.' }),
}

const FINGERPRINT = /^(?:[0-9A-Fa-f]{64}|(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2})$/

export const CredentialCreate = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('password'),
      password: z.string().min(LIMITS.passwordMin).max(LIMITS.passwordMax),
      ...inputBase,
    }),
    z
      .strictObject({
        type: z.literal('x509'),
        subjectCn: z
          .string()
          .min(1)
          .max(LIMITS.subjectCn)
          .optional()
          .openapi({ description: 'Match the certificate subject CN.' }),
        fingerprint: z
          .string()
          .regex(FINGERPRINT, { error: 'a SHA-256 fingerprint: 64 hex digits, optionally colon-separated' })
          .optional()
          .openapi({ description: 'Match the SHA-256 fingerprint of the certificate.' }),
        certificate: z
          .string()
          .min(1)
          .max(16_384)
          .optional()
          .openapi({ description: 'The device certificate (PEM); matched by its fingerprint.' }),
        ...inputBase,
      })
      .refine(
        (o) => [o.subjectCn, o.fingerprint, o.certificate].filter((v) => v !== undefined).length === 1,
        {
          error: 'set exactly one of subjectCn, fingerprint and certificate',
        },
      ),
    z.strictObject({
      type: z.literal('psk'),
      key: z
        .string()
        .regex(/^(?:[0-9A-Fa-f]{2}){16,64}$/, { error: 'a hex key of 16-64 bytes' })
        .optional()
        .openapi({ description: 'Hex, 16-64 bytes; generated (and returned once) when omitted.' }),
      ...inputBase,
    }),
    z.strictObject({ type: z.literal('token'), ...inputBase }),
  ])
  .openapi('CredentialCreate')

export const CredentialPatch = z.strictObject(inputBase).openapi('CredentialPatch')

export const CreatedCredential = z
  .object({
    credential: Credential,
    secret: z
      .string()
      .optional()
      .openapi({ description: 'The generated device token or PSK key. Shown this once; store it now.' }),
  })
  .openapi('CreatedCredential')

export const PasswordInput = z
  .strictObject({
    password: z
      .string()
      .min(LIMITS.passwordMin)
      .max(LIMITS.passwordMax)
      .openapi({ example: 'correct horse battery staple' }),
  })
  .openapi('PasswordInput')
