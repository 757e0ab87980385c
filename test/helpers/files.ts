// A device file stored the way a device's upload stores it (token, then the body through the upload
// service), for tests that need a file with real content in the registry and the blob store.
import { Readable } from 'node:stream'
import type { BlobStore } from '../../core/blobs/blobs.ts'
import { createUploads } from '../../core/blobs/uploads.ts'
import type { FileStore } from '../../core/registry/files.ts'

export interface StoredFile {
  readonly tenant: string
  readonly device: string
  readonly name: string
  readonly data: Buffer
  readonly contentType?: string | undefined
}

/** Uploads `file` and returns its id. */
export async function storeFile(files: FileStore, blobs: BlobStore, file: StoredFile): Promise<string> {
  const uploads = createUploads({ files, blobs, maxFileBytes: 10_000_000, tokenTtlMs: 60_000 })
  const issued = await uploads.issue({
    tenant: file.tenant,
    device: file.device,
    name: file.name,
    size: file.data.length,
    contentType: file.contentType,
  })
  await uploads.receive({
    fileId: issued.fileId,
    token: issued.token,
    body: Readable.from([file.data]),
    protocol: 'http',
  })
  return issued.fileId
}
