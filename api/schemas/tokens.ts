// API token and caller identity schemas.
import { z } from '@hono/zod-openapi'
import { ROLES } from '../../core/registry/model.ts'
import { ResourceId, TenantId, Timestamp, versioned } from './common.ts'

export const Role = z.enum(ROLES).openapi('Role', {
  description: 'admin: everything on the tenant; manager: devices and credentials; reader: read only.',
})

export const ApiToken = z
  .object({
    tenant: TenantId,
    id: ResourceId,
    name: z.string(),
    role: Role,
    expiresAt: Timestamp.nullable(),
    ...versioned,
  })
  .openapi('ApiToken')

export const ApiTokenCreate = z
  .strictObject({
    name: z
      .string()
      .regex(/^[\x20-\x7e]{1,64}$/, { error: 'use 1-64 printable ASCII characters' })
      .openapi({ example: 'dashboard' }),
    role: Role,
    expiresAt: Timestamp.optional().openapi({ description: 'Default 90 days from now; at most 2 years.' }),
  })
  .openapi('ApiTokenCreate')

export const CreatedApiToken = z
  .object({
    token: ApiToken,
    secret: z.string().openapi({
      description: 'The bearer token (`tat_...`). Shown this once; store it now.',
      example: 'tat_...',
    }),
  })
  .openapi('CreatedApiToken')

export const Whoami = z
  .object({
    kind: z.enum(['admin', 'api-token', 'oidc']),
    subject: z.string().openapi({ description: 'API token id, JWT `sub`, or `admin-token`.' }),
    tenant: TenantId.nullable().openapi({ description: 'null for the admin token (every tenant).' }),
    roles: z.array(Role),
    globalAdmin: z.boolean(),
  })
  .openapi('Whoami')

export const WhoamiQuery = z.strictObject({
  tenant: TenantId.optional().openapi({ description: 'Check an OIDC token against this tenant issuer.' }),
})
