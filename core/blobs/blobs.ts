// The BlobStore port: device files as opaque objects under per-tenant/per-device key prefixes.
// Two implementations sit beside it (filesystem under the data dir, S3); nothing outside core/
// knows which one runs. Every put streams: no implementation holds a whole file in memory.
import type { Readable } from 'node:stream'

export interface BlobPut {
  /** A key from blobKey() (keys.ts). */
  readonly key: string
  readonly body: Readable
  /** The exact length the body must have; a longer or shorter body is refused and nothing is kept. */
  readonly size: number
  /** SHA-256 of the body, lowercase hex, when the sender declared one: a mismatch is refused. */
  readonly sha256?: string | undefined
  readonly contentType?: string | undefined
  /** Cancels the upload; nothing is kept. */
  readonly signal?: AbortSignal | undefined
}

export interface BlobInfo {
  readonly key: string
  readonly size: number
  /** Lowercase hex, when the engine knows it (put always returns it). */
  readonly sha256?: string | undefined
  readonly modified: Date
}

export interface BlobListPage {
  /** In key order (bytewise). */
  readonly items: readonly BlobInfo[]
  /** Pass as `after` to read the next page; undefined on the last one. */
  readonly next?: string | undefined
}

export interface PresignedRequest {
  readonly url: string
  readonly method: 'PUT' | 'GET'
  /** Headers the client must send exactly as given (they are signed). */
  readonly headers: Readonly<Record<string, string>>
  readonly expiresAt: Date
}

/** Presigned URLs that let a device or application talk to the engine directly. */
export interface BlobPresigner {
  /** A PUT bound to the key, the length and the SHA-256 (`x-amz-checksum-sha256`). */
  put(key: string, options: { size: number; sha256: string; expiresInS: number }): Promise<PresignedRequest>
  get(key: string, options: { expiresInS: number; filename?: string | undefined }): Promise<PresignedRequest>
}

export interface BlobHealth {
  readonly ok: boolean
  readonly reason?: string | undefined
}

export interface BlobStore {
  readonly kind: 'filesystem' | 's3'
  /**
   * Streams the body to the store and resolves once it is durable. Rejects with BLOB_INTEGRITY when
   * the length or the declared SHA-256 differ, leaving no object behind. Replaces an existing key.
   */
  put(input: BlobPut): Promise<BlobInfo & { readonly sha256: string }>
  /** The object's content as a stream, or undefined when there is no such key. */
  get(key: string): Promise<{ readonly info: BlobInfo; readonly body: Readable } | undefined>
  head(key: string): Promise<BlobInfo | undefined>
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>
  /** Objects whose key starts with `prefix` (a prefix from keys.ts), after `after`, at most `limit`. */
  list(
    prefix: string,
    options?: { after?: string | undefined; limit?: number | undefined },
  ): Promise<BlobListPage>
  /**
   * Where the object lives, as an absolute URI (`file:///.../blobs/objects/<key>`, `s3://<bucket>/<key>`),
   * for operators (the file.uploaded event points at the management API instead).
   */
  location(key: string): string
  /** Present when the engine can sign URLs for direct access (S3). */
  readonly presign: BlobPresigner | undefined
  health(): Promise<BlobHealth>
  close(): Promise<void>
}

export const DEFAULT_LIST_LIMIT = 100
export const MAX_LIST_LIMIT = 1000
