// Presigned S3 requests against a real S3-compatible server (S3Proxy verifies the signature, the
// signed headers and the checksum): what a device or application does with the URL Tributary hands out.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { blobKey } from '../../../core/blobs/keys.ts'
import { openS3Store } from './implementations.ts'

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const id = (): string => randomBytes(12).toString('base64url')

describe('S3 presigned requests', () => {
  let store: BlobStore

  beforeAll(async () => {
    store = await openS3Store()
  })

  afterAll(async () => {
    await store.close()
  })

  it('a presigned PUT stores a body of the bound length and checksum, which HEAD then reports', async () => {
    const data = randomBytes(3000)
    const key = blobKey('acme', 'dev-1', id())
    const request = await store.presign!.put(key, { size: data.length, sha256: sha256(data), expiresInS: 60 })
    const response = await fetch(request.url, { method: 'PUT', headers: request.headers, body: data })
    expect(response.status).toBe(200)
    expect(await store.head(key)).toMatchObject({ size: data.length, sha256: sha256(data) })
  })

  it('a presigned PUT refuses another body, a missing checksum header, and another key', async () => {
    const data = randomBytes(3000)
    const key = blobKey('acme', 'dev-1', id())
    const request = await store.presign!.put(key, { size: data.length, sha256: sha256(data), expiresInS: 60 })

    const other = randomBytes(3000)
    const wrongBody = await fetch(request.url, { method: 'PUT', headers: request.headers, body: other })
    expect(wrongBody.status).toBeGreaterThanOrEqual(400)

    const noChecksum = await fetch(request.url, { method: 'PUT', body: data })
    expect(noChecksum.status).toBeGreaterThanOrEqual(400)

    const elsewhere = request.url.replace(encodeURIComponent(key.split('/')[2]!), 'someothername')
    const otherKey = await fetch(elsewhere, { method: 'PUT', headers: request.headers, body: data })
    expect(otherKey.status).toBe(403)

    expect(await store.head(key)).toBeUndefined()
  })

  it('a presigned GET reads the object; a tampered one is refused', async () => {
    const data = Buffer.from('read me through a presigned URL')
    const key = blobKey('acme', 'dev-1', id())
    await store.put({ key, body: Readable.from([data]), size: data.length })
    const request = await store.presign!.get(key, { expiresInS: 60, filename: 'report 1.txt' })
    const response = await fetch(request.url)
    expect(response.status).toBe(200)
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true)
    expect(response.headers.get('content-disposition')).toContain("filename*=UTF-8''report%201.txt")

    const tampered = await fetch(request.url.replace('X-Amz-Expires=60', 'X-Amz-Expires=61'))
    expect(tampered.status).toBe(403)
  })
})
