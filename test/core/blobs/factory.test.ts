// Which blob store the configuration picks, and the half-set S3 settings it refuses.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createBlobStore, type BlobStoreConfig } from '../../../core/blobs/index.ts'

const base = (): BlobStoreConfig => ({
  dataDir: mkdtempSync(join(tmpdir(), 'tributary-blobs-')),
  s3Bucket: undefined,
  s3Endpoint: undefined,
  s3Region: 'us-east-1',
  s3AccessKeyId: undefined,
  s3SecretAccessKey: undefined,
  s3ForcePathStyle: false,
})

describe('createBlobStore', () => {
  it('keeps files under the data dir when no bucket is set', async () => {
    const store = await createBlobStore(base())
    expect(store.kind).toBe('filesystem')
    expect(store.presign).toBeUndefined()
    await store.close()
  })

  it('uses S3 when a bucket is set', async () => {
    const store = await createBlobStore({ ...base(), s3Bucket: 'files', s3Endpoint: 'http://127.0.0.1:1' })
    expect(store.kind).toBe('s3')
    expect(store.presign).toBeDefined()
    await store.close()
  })

  it('refuses S3 settings without a bucket, and one access key without the other', async () => {
    await expect(createBlobStore({ ...base(), s3Endpoint: 'http://127.0.0.1:9000' })).rejects.toThrow(
      /TRIBUTARY_S3_BUCKET/,
    )
    await expect(createBlobStore({ ...base(), s3Bucket: 'files', s3AccessKeyId: 'id' })).rejects.toThrow(
      /TRIBUTARY_S3_SECRET_ACCESS_KEY/,
    )
  })
})
