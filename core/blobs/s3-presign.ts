// Presigned S3 requests: a device PUTs straight to the bucket with a URL bound to the key, the
// length and the SHA-256 (x-amz-checksum-sha256 stays a signed header, so the service checks the
// body against it); an application GETs through a short-lived URL.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { TributaryError } from '../errors.ts'
import type { BlobPresigner, PresignedRequest } from './blobs.ts'
import { assertKey } from './keys.ts'
import { checkDeclared } from './verify.ts'

/** S3 refuses presigned URLs valid longer than 7 days. */
const MAX_EXPIRES_S = 7 * 24 * 3600

function checkExpiry(expiresInS: number): void {
  if (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > MAX_EXPIRES_S) {
    throw new TributaryError('BLOB_INVALID_KEY', `a presigned URL lives 1 to ${MAX_EXPIRES_S} seconds`)
  }
}

export function createS3Presigner(client: S3Client, bucket: string): BlobPresigner {
  return {
    async put(key, { size, sha256, expiresInS }): Promise<PresignedRequest> {
      assertKey(key)
      checkDeclared(size, sha256)
      checkExpiry(expiresInS)
      const checksum = Buffer.from(sha256, 'hex').toString('base64')
      const command = new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        ContentLength: size,
        ChecksumSHA256: checksum,
      })
      const url = await getSignedUrl(client, command, {
        expiresIn: expiresInS,
        signableHeaders: new Set(['content-length', 'x-amz-checksum-sha256']),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      })
      return {
        url,
        method: 'PUT',
        headers: { 'content-length': String(size), 'x-amz-checksum-sha256': checksum },
        expiresAt: new Date(Date.now() + expiresInS * 1000),
      }
    },
    async get(key, { expiresInS, filename }): Promise<PresignedRequest> {
      assertKey(key)
      checkExpiry(expiresInS)
      const disposition =
        filename === undefined ? undefined : `attachment; filename*=UTF-8''${encodeURIComponent(filename)}`
      const command = new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        ...(disposition === undefined ? {} : { ResponseContentDisposition: disposition }),
      })
      const url = await getSignedUrl(client, command, { expiresIn: expiresInS })
      return { url, method: 'GET', headers: {}, expiresAt: new Date(Date.now() + expiresInS * 1000) }
    },
  }
}
