// Device file uploads with a temporary token (Kaa BCX): a device asks for a token scoped to itself
// and one upload, then sends the body with the token in `x-auth-token`. The body streams into the
// blob store (checked against the declared size and SHA-256, cut past the limit, kept whole or not
// at all); completion is recorded with its file.uploaded event in the registry's event outbox.
import { createHash, randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { TributaryError, isTributaryError } from '../errors.ts'
import { buildFileUploadedEvent, type Protocol } from '../events/build.ts'
import { opaqueId } from '../events/ids.ts'
import type { FileQuota, FileRecord, FileStore } from '../registry/files.ts'
import { quotaProblem } from '../registry/files.ts'
import type { BlobStore, PresignedRequest } from './blobs.ts'
import type { ClusterState } from '../cluster/cluster.ts'
import { fileContentRef } from './downloads.ts'
import { blobKey } from './keys.ts'
import type { UploadMetrics, UploadRefusal } from './metrics.ts'
import { SHA256_HEX } from './verify.ts'

export interface UploadsOptions {
  readonly files: FileStore
  readonly blobs: BlobStore
  /** Largest file a device may upload (TRIBUTARY_FILES_MAX_BYTES). */
  readonly maxFileBytes: number
  /** How long a token stays good (TRIBUTARY_FILES_TOKEN_TTL_MS). */
  readonly tokenTtlMs: number
  /**
   * The tenant's file quota (TenantQuotas.maxFileStorageBytes and maxFiles), read when a token is
   * issued and again when its body arrives; undefined: no limit.
   */
  readonly quota?: ((tenant: string) => Promise<FileQuota | undefined>) | undefined
  /**
   * Tokens and presigned URLs one device may ask for per minute (TRIBUTARY_FILES_DEVICE_RATE; 0: no
   * limit), counted in the cluster state's token bucket so the rate holds across protocols and processes.
   */
  readonly rate?: { readonly cluster: Pick<ClusterState, 'take'>; readonly perMinute: number } | undefined
  readonly metrics?: UploadMetrics | undefined
  /** Called after each completed upload (the event outbox relay's nudge). */
  readonly completed?: (() => void) | undefined
  /** The clock (tests); defaults to the system time. */
  readonly now?: (() => Date) | undefined
}

export interface UploadRequest {
  readonly tenant: string
  readonly device: string
  readonly name: string
  readonly size: number
  readonly sha256?: string | undefined
  readonly contentType?: string | undefined
}

export interface IssuedToken {
  readonly fileId: string
  readonly token: string
  readonly expiresAt: Date
}

export interface PresignedUpload extends IssuedToken {
  /** The request the device sends straight to the blob store (method, URL, signed headers). */
  readonly upload: PresignedRequest
}

export interface Uploads {
  /**
   * A one-time token for one upload; REQUEST_INVALID or BLOB_TOO_LARGE for a bad declaration,
   * FILES_QUOTA_EXCEEDED when the declared size does not fit the tenant's quota.
   */
  issue(request: UploadRequest): Promise<IssuedToken>
  /**
   * A token plus a presigned PUT bound to the key, the size and the SHA-256 (required here), for
   * stores that can sign (S3); REQUEST_INVALID elsewhere. The device then calls complete().
   */
  presign(request: UploadRequest): Promise<PresignedUpload>
  /**
   * Records a presigned upload once the store holds an object of the declared size and SHA-256
   * (checked with HEAD). AUTH_REQUIRED as for receive(); BLOB_INTEGRITY when the object is missing
   * or differs, which is then deleted; either way the token is spent.
   */
  complete(input: {
    readonly fileId: string
    readonly token: string
    readonly protocol: Protocol
  }): Promise<FileRecord>
  /**
   * Streams the body of upload `fileId` into the blob store. AUTH_REQUIRED for a token that is
   * unknown, spent, lapsed or another upload's; FILES_QUOTA_EXCEEDED when the tenant's quota was
   * lowered below its usage since; BLOB_TOO_LARGE and BLOB_INTEGRITY for a body that does not match
   * its declaration; nothing is kept when it fails.
   */
  receive(input: {
    readonly fileId: string
    readonly token: string
    readonly body: Readable
    readonly protocol: Protocol
    readonly signal?: AbortSignal | undefined
  }): Promise<FileRecord>
  /**
   * Counts one URL against the device's rate (TRIBUTARY_FILES_DEVICE_RATE, the bucket of its tokens):
   * RATE_LIMITED past it, with `retryAfterMs` in the details. Download URLs of published files.
   */
  checkRate(tenant: string, device: string): Promise<void>
}

const NAME_MAX = 255
// A name is for people: no control characters; it never becomes a path or a key.
const nameOk = (name: string): boolean =>
  name.length >= 1 &&
  name.length <= NAME_MAX &&
  ![...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch === '\u007f')
const CONTENT_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;.{0,128})?$/

/**
 * A pending upload is forgotten this long after its token lapsed: long enough for a body that began
 * streaming just before the token lapsed to finish (the device listener's request timeout is shorter).
 */
export const LAPSED_UPLOAD_GRACE_MS = 3_600_000
/** Lapsed uploads swept per new token: the sweep keeps pace with the tokens asked for. */
const SWEEP_BATCH = 10

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex')

function invalid(detail: string): TributaryError {
  return new TributaryError('REQUEST_INVALID', detail)
}

/** The bucket of a device's upload tokens (the cluster state's rate keys). */
export const uploadRateKey = (tenant: string, device: string): string => `files:${tenant}/${device}`

const REFUSALS: Partial<Record<string, UploadRefusal>> = {
  REQUEST_INVALID: 'invalid',
  BLOB_TOO_LARGE: 'too-large',
  FILES_QUOTA_EXCEEDED: 'quota',
  RATE_LIMITED: 'rate',
  AUTH_REQUIRED: 'token',
  BLOB_INTEGRITY: 'integrity',
}

/** The metrics reason of a failure. */
export const refusalOf = (err: unknown): UploadRefusal =>
  (isTributaryError(err) ? REFUSALS[err.code] : undefined) ?? 'failed'

export function createUploads(options: UploadsOptions): Uploads {
  const { files, blobs, maxFileBytes, metrics } = options
  const now = options.now ?? (() => new Date())

  /** Runs an issue (request) or an upload (its claimed record, once known), counting how it ended. */
  async function counted<T>(
    who: () => { tenant: string; device: string } | undefined,
    work: () => Promise<T>,
    done: (result: T) => void,
  ): Promise<T> {
    try {
      const result = await work()
      done(result)
      return result
    } catch (err) {
      const known = who()
      metrics?.refused(known?.tenant, known?.device, refusalOf(err))
      throw err
    }
  }

  async function checkRate(tenant: string, device: string): Promise<void> {
    const rate = options.rate
    if (rate === undefined || rate.perMinute === 0) return
    // The rate protects capacity: while the cluster state cannot be reached, tokens go unchecked.
    const decision = await rate.cluster
      .take(uploadRateKey(tenant, device), rate.perMinute / 60, rate.perMinute)
      .catch(() => ({ allowed: true, retryAfterMs: 0 }))
    if (!decision.allowed) {
      throw new TributaryError(
        'RATE_LIMITED',
        `a device may ask for ${rate.perMinute} upload tokens or URLs per minute`,
        { details: { retryAfterMs: decision.retryAfterMs } },
      )
    }
  }

  const open = (request: UploadRequest): Promise<IssuedToken> =>
    counted(
      () => request,
      () => issueToken(request),
      () => metrics?.issued(request.tenant, request.device),
    )

  async function issueToken(request: UploadRequest): Promise<IssuedToken> {
    await checkRate(request.tenant, request.device)
    if (!nameOk(request.name)) {
      throw invalid('name must be 1-255 characters without control characters')
    }
    if (!Number.isSafeInteger(request.size) || request.size < 0) {
      throw invalid('size must be a non-negative integer (bytes)')
    }
    if (request.size > maxFileBytes) {
      throw new TributaryError('BLOB_TOO_LARGE', `a file may have at most ${maxFileBytes} bytes`)
    }
    if (request.sha256 !== undefined && !SHA256_HEX.test(request.sha256)) {
      throw invalid('sha256 must be 64 lowercase hex digits')
    }
    if (request.contentType !== undefined && !CONTENT_TYPE.test(request.contentType)) {
      throw invalid('contentType must be a media type such as text/plain')
    }
    const createdAt = now()
    await sweep(request.tenant, createdAt)
    const fileId = opaqueId()
    const token = randomBytes(32).toString('base64url')
    const expiresAt = new Date(createdAt.getTime() + options.tokenTtlMs)
    const quota = await options.quota?.(request.tenant)
    await files.createUpload(
      {
        tenant: request.tenant,
        id: fileId,
        device: request.device,
        name: request.name,
        size: request.size,
        sha256: request.sha256,
        contentType: request.contentType ?? 'application/octet-stream',
        tokenHash: hashToken(token),
        createdAt,
        expiresAt,
      },
      quota,
    )
    return { fileId, token, expiresAt }
  }

  /** Forgets lapsed pending uploads of the tenant and deletes what their devices left in the store. */
  async function sweep(tenant: string, now: Date): Promise<void> {
    const before = new Date(now.getTime() - LAPSED_UPLOAD_GRACE_MS)
    for (const lapsed of await files.dropLapsedUploads(tenant, before, SWEEP_BATCH)) {
      await blobs.delete(blobKey(lapsed.tenant, lapsed.device, lapsed.id))
    }
  }

  async function claim(fileId: string, token: string): Promise<FileRecord> {
    const claimed = await files.claimUpload(hashToken(token), fileId, now())
    if (claimed === undefined) {
      throw new TributaryError(
        'AUTH_REQUIRED',
        'the upload token is unknown, used, expired or not for this file',
      )
    }
    return claimed
  }

  /**
   * A claimed upload still fits the tenant's quota (lowered since its token was issued?): its own
   * reservation is counted in the usage. Refused: the upload is forgotten, nothing is read.
   */
  async function stillFits(claimed: FileRecord): Promise<void> {
    const quota = await options.quota?.(claimed.tenant)
    if (quota === undefined || (quota.maxBytes === null && quota.maxFiles === null)) return
    const used = await files.usage(claimed.tenant, now())
    const others = { files: used.files - 1, bytes: used.bytes - claimed.size }
    const over = quotaProblem(others, claimed.size, quota)
    if (over === undefined) return
    await files.abandonUpload(claimed.tenant, claimed.id)
    throw new TributaryError('FILES_QUOTA_EXCEEDED', over)
  }

  /** Marks a stored upload done with its event; undoes the object when that cannot be recorded. */
  async function record(
    claimed: FileRecord,
    key: string,
    sha256: string,
    protocol: Protocol,
  ): Promise<FileRecord> {
    const uploadedAt = now()
    const event = buildFileUploadedEvent({
      tenant: claimed.tenant,
      device: claimed.device,
      protocol,
      file: {
        id: claimed.id,
        name: claimed.name,
        size: claimed.size,
        sha256,
        contentType: claimed.contentType,
      },
      dataref: fileContentRef(claimed.tenant, claimed.id),
      time: uploadedAt,
    })
    try {
      const done = await files.completeUpload(claimed.tenant, claimed.id, { sha256, uploadedAt }, event)
      options.completed?.()
      return done
    } catch (err) {
      // Not recorded: the object must not outlive its missing metadata.
      await blobs.delete(key).catch(() => undefined)
      await files.abandonUpload(claimed.tenant, claimed.id).catch(() => undefined)
      throw isTributaryError(err)
        ? err
        : new TributaryError('REGISTRY_UNAVAILABLE', 'recording the upload failed', { cause: err })
    }
  }

  return {
    issue: (request) => open(request),
    checkRate,

    async presign(request) {
      const presigner = blobs.presign
      if (presigner === undefined) {
        throw invalid('this blob store cannot presign uploads: use POST /v1/files/token and x-auth-token')
      }
      if (request.sha256 === undefined) throw invalid('a presigned upload needs the sha256 of the file')
      const issued = await open(request)
      const expiresInS = Math.max(1, Math.floor(options.tokenTtlMs / 1000))
      const upload = await presigner.put(blobKey(request.tenant, request.device, issued.fileId), {
        size: request.size,
        sha256: request.sha256,
        expiresInS,
      })
      return { ...issued, upload }
    },

    async complete({ fileId, token, protocol }) {
      let claimed: FileRecord | undefined
      return counted(
        () => claimed,
        async () => {
          claimed = await claim(fileId, token)
          return completeClaimed(claimed, protocol)
        },
        (file) => metrics?.uploaded(file.tenant, file.device, file.size),
      )
    },

    async receive({ fileId, token, body, protocol, signal }) {
      let claimed: FileRecord | undefined
      return counted(
        () => claimed,
        async () => {
          claimed = await claim(fileId, token)
          return receiveClaimed(claimed, body, protocol, signal)
        },
        (file) => metrics?.uploaded(file.tenant, file.device, file.size),
      )
    },
  }

  async function completeClaimed(claimed: FileRecord, protocol: Protocol): Promise<FileRecord> {
    const key = blobKey(claimed.tenant, claimed.device, claimed.id)
    const head = await blobs.head(key).catch(async (err: unknown) => {
      await files.abandonUpload(claimed.tenant, claimed.id)
      throw err
    })
    // Only presigned uploads declared a SHA-256 that the store checked; a HEAD without one proves nothing.
    const expected = claimed.sha256
    if (
      expected === undefined ||
      head === undefined ||
      head.size !== claimed.size ||
      head.sha256 !== expected
    ) {
      await blobs.delete(key).catch(() => undefined)
      await files.abandonUpload(claimed.tenant, claimed.id)
      throw new TributaryError(
        'BLOB_INTEGRITY',
        head === undefined
          ? 'nothing was uploaded for this file'
          : 'the uploaded object differs from its declaration',
      )
    }
    return record(claimed, key, expected, protocol)
  }

  async function receiveClaimed(
    claimed: FileRecord,
    body: Readable,
    protocol: Protocol,
    signal: AbortSignal | undefined,
  ): Promise<FileRecord> {
    await stillFits(claimed)
    const key = blobKey(claimed.tenant, claimed.device, claimed.id)
    let stored: { sha256: string }
    try {
      stored = await blobs.put({
        key,
        body,
        size: claimed.size,
        sha256: claimed.sha256,
        contentType: claimed.contentType,
        signal,
      })
    } catch (err) {
      await files.abandonUpload(claimed.tenant, claimed.id)
      throw err
    }
    return record(claimed, key, stored.sha256, protocol)
  }
}
