// The blob store a process uses, chosen by configuration: S3 when a bucket is set, else files
// under the data dir.
import { TributaryError } from '../errors.ts'
import type { BlobStore } from './blobs.ts'
import { createFilesystemBlobStore } from './filesystem.ts'

export type { BlobStore, BlobInfo, BlobPut, PresignedRequest } from './blobs.ts'
export { blobKey, devicePrefix, tenantPrefix } from './keys.ts'

export interface BlobStoreConfig {
  readonly dataDir: string
  readonly s3Bucket: string | undefined
  readonly s3Endpoint: string | undefined
  readonly s3Region: string
  readonly s3AccessKeyId: string | undefined
  readonly s3SecretAccessKey: string | undefined
  readonly s3ForcePathStyle: boolean
}

export async function createBlobStore(config: BlobStoreConfig): Promise<BlobStore> {
  const keys = [config.s3AccessKeyId, config.s3SecretAccessKey].filter((v) => v !== undefined).length
  if (keys === 1) {
    throw new TributaryError(
      'CONFIG_INVALID',
      'set both TRIBUTARY_S3_ACCESS_KEY_ID and TRIBUTARY_S3_SECRET_ACCESS_KEY, or neither',
    )
  }
  if (config.s3Bucket === undefined) {
    if (config.s3Endpoint !== undefined || keys > 0) {
      throw new TributaryError('CONFIG_INVALID', 'TRIBUTARY_S3_* is set but TRIBUTARY_S3_BUCKET is not')
    }
    return createFilesystemBlobStore({ dataDir: config.dataDir })
  }
  // Loaded only when used: the S3 SDK is large.
  const { createS3BlobStore } = await import('./s3.ts')
  return createS3BlobStore({
    bucket: config.s3Bucket,
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    accessKeyId: config.s3AccessKeyId,
    secretAccessKey: config.s3SecretAccessKey,
    forcePathStyle: config.s3ForcePathStyle,
  })
}
