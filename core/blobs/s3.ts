// The scale-out blob store: any S3-compatible service. Objects keep the keys of keys.ts in one
// bucket; bodies stream through the verifier (verify.ts) into a PutObject of the declared length.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import { Readable } from 'node:stream'
import { TributaryError, isTributaryError } from '../errors.ts'
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type BlobInfo, type BlobPut, type BlobStore } from './blobs.ts'
import { assertKey, assertPrefix } from './keys.ts'
import { createS3Presigner } from './s3-presign.ts'
import { createVerifier } from './verify.ts'

export interface S3BlobOptions {
  /** Unset: AWS's endpoint for the region. */
  readonly endpoint?: string | undefined
  readonly bucket: string
  readonly region: string
  /** Unset: the SDK's default credential chain (environment, profile, instance role). */
  readonly accessKeyId?: string | undefined
  readonly secretAccessKey?: string | undefined
  /** `http://host/bucket/key` instead of `http://bucket.host/key` (most S3-compatible servers). */
  readonly forcePathStyle?: boolean | undefined
  /** Bound of each request to the service (default 30 s; a put's body is not bounded by it). */
  readonly requestTimeoutMs?: number | undefined
}

const hexToBase64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64')
const base64ToHex = (b64: string | undefined): string | undefined =>
  b64 === undefined || b64.includes('-') ? undefined : Buffer.from(b64, 'base64').toString('hex')

const isNotFound = (err: unknown): boolean =>
  err instanceof S3ServiceException &&
  (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404)

/** S3 and network failures as Tributary errors: a checksum refusal is the sender's fault, the rest the service's. */
function translate(err: unknown, what: string): TributaryError {
  if (isTributaryError(err)) return err
  if (err instanceof S3ServiceException && (err.name === 'BadDigest' || err.name === 'InvalidDigest')) {
    return new TributaryError('BLOB_INTEGRITY', 'the body does not match the declared sha256', { cause: err })
  }
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  return new TributaryError('BLOB_UNAVAILABLE', `S3 ${what} failed: ${reason}`, { cause: err })
}

export function createS3BlobStore(options: S3BlobOptions): BlobStore {
  const { bucket } = options
  const credentials =
    options.accessKeyId !== undefined && options.secretAccessKey !== undefined
      ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
      : undefined
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
    forcePathStyle: options.forcePathStyle ?? false,
    // Checksums only where Tributary asks for them (a declared sha256): the SDK's default CRC32
    // trailers need aws-chunked uploads that not every S3-compatible server takes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  })
  const timeout = (): AbortSignal => AbortSignal.timeout(options.requestTimeoutMs ?? 30_000)

  async function put(input: BlobPut): Promise<BlobInfo & { sha256: string }> {
    assertKey(input.key)
    const verifier = createVerifier(input.size, input.sha256)
    // A refused or failed body aborts the request: the service never sees the declared length
    // arrive, so it stores nothing.
    const abort = new AbortController()
    let refused: unknown
    const fail = (err: unknown): void => {
      refused ??= err
      abort.abort(err)
    }
    verifier.on('error', fail)
    input.body.on('error', (err) => {
      fail(err)
      verifier.destroy(err)
    })
    input.body.pipe(verifier)
    const signal = input.signal === undefined ? abort.signal : AbortSignal.any([abort.signal, input.signal])
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: input.key,
          Body: verifier,
          ContentLength: input.size,
          ...(input.contentType === undefined ? {} : { ContentType: input.contentType }),
          ...(input.sha256 === undefined ? {} : { ChecksumSHA256: hexToBase64(input.sha256) }),
        }),
        { abortSignal: signal },
      )
    } catch (err) {
      input.body.unpipe(verifier)
      verifier.destroy()
      input.body.resume()
      throw translate(refused ?? err, 'put')
    }
    return { key: input.key, size: input.size, sha256: verifier.sha256, modified: new Date() }
  }

  async function head(key: string): Promise<BlobInfo | undefined> {
    assertKey(key)
    try {
      const out = await client.send(
        new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }),
        { abortSignal: timeout() },
      )
      return {
        key,
        size: out.ContentLength ?? 0,
        sha256: base64ToHex(out.ChecksumSHA256),
        modified: out.LastModified ?? new Date(0),
      }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw translate(err, 'head')
    }
  }

  return {
    kind: 's3',
    put,
    async get(key) {
      assertKey(key)
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        if (!(out.Body instanceof Readable)) throw new Error('the S3 client returned no stream')
        return {
          info: {
            key,
            size: out.ContentLength ?? 0,
            sha256: base64ToHex(out.ChecksumSHA256),
            modified: out.LastModified ?? new Date(0),
          },
          body: out.Body,
        }
      } catch (err) {
        if (isNotFound(err)) return undefined
        throw translate(err, 'get')
      }
    },
    head,
    async delete(key) {
      assertKey(key)
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: timeout() })
      } catch (err) {
        if (!isNotFound(err)) throw translate(err, 'delete')
      }
    },
    async list(prefix, listOptions = {}) {
      assertPrefix(prefix)
      const limit = listOptions.limit ?? DEFAULT_LIST_LIMIT
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
        throw new TributaryError('BLOB_INVALID_KEY', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`)
      }
      try {
        const out = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            MaxKeys: limit,
            ...(listOptions.after === undefined ? {} : { StartAfter: listOptions.after }),
          }),
          { abortSignal: timeout() },
        )
        const items: BlobInfo[] = (out.Contents ?? []).map((object) => ({
          key: object.Key ?? '',
          size: object.Size ?? 0,
          modified: object.LastModified ?? new Date(0),
        }))
        const last = items.at(-1)
        return { items, next: out.IsTruncated === true && last !== undefined ? last.key : undefined }
      } catch (err) {
        throw translate(err, 'list')
      }
    },
    location: (key) => `s3://${bucket}/${assertKey(key).join('/')}`,
    presign: createS3Presigner(client, bucket),
    async health() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: timeout() })
        return { ok: true }
      } catch (err) {
        return { ok: false, reason: translate(err, `bucket ${bucket}`).message }
      }
    },
    async close() {
      client.destroy()
    },
  }
}
