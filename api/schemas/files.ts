// Device file schemas (docs/files.md).
import { z } from '@hono/zod-openapi'
import { FILE_ID_PATTERN, FOLDER_PATTERN } from '../../core/registry/files.ts'
import { DeviceId, ListQuery, TenantId, Timestamp } from './common.ts'

export const FileId = z
  .string()
  .regex(FILE_ID_PATTERN, { error: 'use 8-64 of A-Z a-z 0-9 _ -' })
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

export const FolderName = z
  .string()
  .regex(FOLDER_PATTERN, { error: 'use 1-64 of A-Z a-z 0-9 . _ ~ -, not starting with a dot' })
  .openapi({ description: 'A folder every device of the tenant sees.', example: 'firmware' })

export const FileDeviceParams = z.strictObject({ tenant: TenantId, id: FileId, device: DeviceId })
export const FileFolderParams = z.strictObject({ tenant: TenantId, id: FileId, folder: FolderName })

export const FilePublications = z
  .object({
    devices: z.array(DeviceId).openapi({ description: 'Devices the file is published to.' }),
    folders: z.array(FolderName).openapi({ description: 'Folders the file is in (every device sees them).' }),
  })
  .openapi('FilePublications')
