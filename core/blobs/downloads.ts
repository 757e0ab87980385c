// Download URLs of stored files: a presigned S3 GET where the store can sign (the service itself
// checks method, key and expiry), else a signed URL of Tributary's own file endpoint
// (`GET /v1/files/download/<key>?expires=&filename=&signature=` on the device HTTP listener), which checks
// the same: an HMAC-SHA256, under a key derived from the registry key, of the method, the key, the
// expiry and the file name. Every process sharing the registry key can sign and check such URLs.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { TributaryError } from '../errors.ts'
import type { BlobStore, PresignedRequest } from './blobs.ts'
import { assertKey } from './keys.ts'

/**
 * The claim check of the file.uploaded event (CloudEvents `dataref`, a URI reference): the file's
 * content in the management API, resolved against the API's base URL and read with a reader's
 * token. It never lapses, unlike a signed URL, and names no store internals.
 */
export const fileContentRef = (tenant: string, id: string): string =>
  `/api/v1/tenants/${encodeURIComponent(tenant)}/files/${encodeURIComponent(id)}/content`

/** The device HTTP path of signed downloads; the object key follows it. */
export const SIGNED_DOWNLOAD_PREFIX = '/v1/files/download/'

export interface DownloadLinksOptions {
  readonly blobs: Pick<BlobStore, 'presign'>
  /** The registry key (32 bytes); the signing key is derived from it, never the key itself. */
  readonly registryKey: Buffer
  /** Longest life of a URL (TRIBUTARY_FILES_DOWNLOAD_TTL_MS); also the default. */
  readonly maxTtlMs: number
  /** The clock (tests); defaults to the system time. */
  readonly now?: (() => Date) | undefined
}

export interface DownloadRequest {
  readonly key: string
  /** Suggested file name for the client (Content-Disposition). */
  readonly filename?: string | undefined
  /** Seconds the URL stays good; at most the configured maximum (its default). */
  readonly expiresInS?: number | undefined
  /**
   * Base URL of the device HTTP listener as the client reaches it (signed Tributary URLs only);
   * undefined when it is not known.
   */
  readonly base: () => string | undefined
}

export type SignedCheck =
  | { readonly ok: true; readonly key: string; readonly filename: string | undefined }
  | { readonly ok: false; readonly reason: 'invalid' | 'expired' | 'forbidden'; readonly detail: string }

export interface DownloadLinks {
  /** Longest life of a URL, in seconds. */
  readonly maxTtlS: number
  /**
   * A GET URL for the object. REQUEST_INVALID for an expiry out of bounds; BLOB_UNAVAILABLE when
   * a Tributary URL is needed and the device HTTP listener's address is not known.
   */
  url(request: DownloadRequest): Promise<PresignedRequest>
  /** Checks a signed Tributary URL (its raw key path and query) for `method`. */
  check(method: string, rawKey: string, query: URLSearchParams): SignedCheck
}

const SIGNATURE = /^[A-Za-z0-9_-]{43}$/
const EXPIRES = /^\d{1,12}$/

export function createDownloadLinks(options: DownloadLinksOptions): DownloadLinks {
  const now = options.now ?? (() => new Date())
  const secret = Buffer.from(
    hkdfSync('sha256', options.registryKey, Buffer.alloc(0), 'tributary file download urls v1', 32),
  )
  const maxTtlS = Math.max(1, Math.floor(options.maxTtlMs / 1000))
  const sign = (method: string, key: string, expires: string, filename: string): Buffer =>
    createHmac('sha256', secret).update(`${method}\n${key}\n${expires}\n${filename}`).digest()

  return {
    maxTtlS,
    async url({ key, filename, expiresInS = maxTtlS, base }) {
      assertKey(key)
      if (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > maxTtlS) {
        throw new TributaryError('REQUEST_INVALID', `a download URL lives 1 to ${maxTtlS} seconds`)
      }
      const presigner = options.blobs.presign
      if (presigner !== undefined) return presigner.get(key, { expiresInS, filename })
      const root = base()
      if (root === undefined) {
        throw new TributaryError(
          'BLOB_UNAVAILABLE',
          'the address of the device HTTP listener is not known: set TRIBUTARY_FILES_UPLOAD_URL',
        )
      }
      const expiresAt = new Date((Math.floor(now().getTime() / 1000) + expiresInS) * 1000)
      const expires = String(expiresAt.getTime() / 1000)
      const query = new URLSearchParams({ expires })
      if (filename !== undefined) query.set('filename', filename)
      query.set('signature', sign('GET', key, expires, filename ?? '').toString('base64url'))
      const url = new URL(`${SIGNED_DOWNLOAD_PREFIX}${key}?${query.toString()}`, root)
      return { url: url.href, method: 'GET', headers: {}, expiresAt }
    },
    check(method, rawKey, query) {
      const expires = query.get('expires') ?? ''
      const signature = query.get('signature') ?? ''
      const filename = query.get('filename') ?? undefined
      if (!EXPIRES.test(expires) || !SIGNATURE.test(signature)) {
        return { ok: false, reason: 'invalid', detail: 'a download URL carries expires and signature' }
      }
      try {
        assertKey(rawKey)
      } catch {
        return { ok: false, reason: 'forbidden', detail: 'the signature does not match this URL' }
      }
      const expected = sign(method, rawKey, expires, filename ?? '')
      if (!timingSafeEqual(expected, Buffer.from(signature, 'base64url'))) {
        return { ok: false, reason: 'forbidden', detail: 'the signature does not match this URL' }
      }
      if (Number(expires) * 1000 <= now().getTime()) {
        return { ok: false, reason: 'expired', detail: 'the download URL expired' }
      }
      return { ok: true, key: rawKey, filename }
    },
  }
}
