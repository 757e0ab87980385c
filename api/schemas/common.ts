// Schemas every resource shares: identifiers in the documented charsets, timestamps, list pages,
// the If-Match header and the RFC 9457 problem document.
import { z } from '@hono/zod-openapi'
import { DEVICE_ID_PATTERN, TENANT_ID_PATTERN } from '../../core/events/ids.ts'
import { CURSOR_RULE, isCursor } from '../../core/registry/cursor.ts'

export const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/
// Values keep to a charset without `,` and `=` so that every label can be selected in a list filter.
export const LABEL_VALUE_PATTERN = /^[A-Za-z0-9._:/@+-]{0,256}$/

/** Key/value labels, at most `max` pairs: a device's labels, or labels a device must carry. */
export const labelMap = (max: number) =>
  z
    .record(
      z.string().regex(LABEL_KEY_PATTERN, {
        error: 'label keys: 1-63 of A-Z a-z 0-9 . _ / -, starting with a letter or digit',
      }),
      z.string().regex(LABEL_VALUE_PATTERN, { error: 'label values: 0-256 of A-Z a-z 0-9 . _ : / @ + -' }),
    )
    .refine((l) => Object.keys(l).length <= max, { error: `at most ${max} labels` })

export const TenantId = z
  .string()
  .regex(TENANT_ID_PATTERN, { error: 'use 1-63 lowercase letters, digits and inner hyphens' })
  .openapi({ description: 'Tenant id: 1-63 of a-z 0-9 and inner hyphens.', example: 'acme' })

export const DeviceId = z
  .string()
  .regex(DEVICE_ID_PATTERN, { error: 'use 1-128 of A-Z a-z 0-9 . _ : ~ -' })
  .openapi({ description: 'Device id: 1-128 of A-Z a-z 0-9 . _ : ~ -', example: 'sensor-1' })

/** Generated ids of credentials and API tokens (opaque). */
export const ResourceId = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,64}$/, { error: 'use 1-64 of A-Z a-z 0-9 -' })
  .openapi({ description: 'Generated id (opaque).', example: '0190c3e2-6f1a-7a3b-9c1d-2e4f5a6b7c8d' })

export const Timestamp = z.iso.datetime({ offset: true }).openapi({ example: '2025-01-31T12:00:00.000Z' })

export const Version = z
  .int()
  .min(0)
  .openapi({ description: 'Increments on every change; served as the ETag.' })

/** Fields of every stored resource. */
export const versioned = { version: Version, createdAt: Timestamp, updatedAt: Timestamp }

export const TenantParams = z.strictObject({ tenant: TenantId })
export const DeviceParams = z.strictObject({ tenant: TenantId, device: DeviceId })
export const CredentialParams = z.strictObject({ tenant: TenantId, device: DeviceId, id: ResourceId })
export const TokenParams = z.strictObject({ tenant: TenantId, id: ResourceId })

export const ListQuery = z.strictObject({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .optional()
    .openapi({ description: 'Items per page, 1-1000 (default 100).', example: 100 }),
  after: z
    .string()
    .refine(isCursor, { error: CURSOR_RULE })
    .optional()
    .openapi({ description: 'The `next` cursor of the previous page, as given.' }),
})

/** A page of a list: `next` is the cursor of the following page, null on the last one. */
export function page<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      items: z.array(item),
      next: z
        .string()
        .nullable()
        .openapi({ description: 'Pass as `after` for the next page; null at the end.' }),
    })
    .openapi(name)
}

export const IfMatchHeaders = z.object({
  'if-match': z.string().optional().openapi({
    description:
      'The ETag of the version you read (`"<version>"`) or `*`. A stale one fails with 412 and changes nothing.',
    example: '"3"',
  }),
})

export const Problem = z
  .object({
    type: z.string().openapi({ example: 'https://tributary.dev/problems/registry-not-found' }),
    title: z.string().openapi({ example: 'Not found' }),
    status: z.int().openapi({ example: 404 }),
    detail: z.string().openapi({ example: 'device "sensor-9" not found in tenant "acme"' }),
    instance: z.string().openapi({ example: '/api/v1/tenants/acme/devices/sensor-9' }),
    code: z.string().openapi({ description: 'Stable error code.', example: 'REGISTRY_NOT_FOUND' }),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'Validation failures (400), one per field.' }),
  })
  .openapi('Problem', { description: 'RFC 9457 problem details.' })
