// The BlobStore implementations the contract suite runs against: the filesystem store in a fresh
// data dir, and the S3 store on a fresh bucket of the S3-compatible server the test setup provides.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { createFilesystemBlobStore } from '../../../core/blobs/filesystem.ts'
import { createS3BlobStore, type S3BlobOptions } from '../../../core/blobs/s3.ts'
import { uniqueName } from '../../helpers/wait.ts'
import { testS3 } from '../../setup/s3-env.ts'

export async function openFilesystemStore(): Promise<{ store: BlobStore; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-blobs-'))
  return { store: await createFilesystemBlobStore({ dataDir }), dataDir }
}

/** Options of an S3 store on a new bucket; the bucket exists when this resolves. */
export async function s3Options(): Promise<S3BlobOptions> {
  const s3 = testS3()
  const bucket = uniqueName('blobs')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 60)
  const admin = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
  })
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }))
  } finally {
    admin.destroy()
  }
  return {
    endpoint: s3.endpoint,
    bucket,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
  }
}

export async function openS3Store(): Promise<BlobStore> {
  return createS3BlobStore(await s3Options())
}
