// Device file schemas (docs/files.md).
import { z } from '@hono/zod-openapi'
import { DeviceId, ListQuery, TenantId, Timestamp } from './common.ts'

export const FileId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, { error: 'use 8-64 of A-Z a-z 0-9 _ -' })
  .openapi({ description: 'File id (opaque).', example: 'q3Jk1m0f4yZbW2nXvA8cEg' })

export const FileParams = z.strictObject({ tenant: TenantId, id: FileId })

export const DeviceFile = z
  .object({
    tenant: TenantId,
    id: FileId,
    device: DeviceId,
    name: z.string().openapi({ description: 'The name the device gave.', example: 'logs/boot.txt' }),
    size: z.number().int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    contentType: z.string().openapi({ example: 'text/plain' }),
    uploadedAt: Timestamp,
    createdAt: Timestamp,
  })
  .openapi('DeviceFile')

export const FileListQuery = ListQuery.extend({
  device: DeviceId.optional().openapi({ description: 'Only the files of this device.' }),
  namePrefix: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .openapi({ description: 'Only files whose name starts with this.', example: 'logs/' }),
})

export const FileUrlQuery = z.strictObject({
  expiresIn: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .optional()
    .openapi({
      description: 'Seconds the URL stays good; at most TRIBUTARY_FILES_DOWNLOAD_TTL_MS (also the default).',
      example: 300,
    }),
})

export const FileDownloadUrl = z
  .object({
    url: z.string().openapi({ description: 'GET it without other credentials: the URL is one.' }),
    method: z.literal('GET'),
    expiresAt: Timestamp,
  })
  .openapi('FileDownloadUrl')
