// The metadata of device files (FileStore, a part of the registry store) and the event outbox that
// announces completed uploads: an upload is marked done in the same transaction that records its
// io.tributary.file.uploaded.v1 event, so the event is published after a crash too.
import type { CloudEvent } from '../events/cloudevent.ts'
import type { ListOptions, Page } from './model.ts'

export interface FileRecord {
  readonly tenant: string
  readonly id: string
  readonly device: string
  readonly name: string
  /** Declared when the upload was asked for; the stored object has exactly this length. */
  readonly size: number
  /** Lowercase hex; declared with the token, or computed while the upload streamed. */
  readonly sha256: string | undefined
  readonly contentType: string
  readonly state: 'pending' | 'uploaded'
  readonly createdAt: Date
  readonly uploadedAt: Date | undefined
  /** Pending: when the upload token lapses. */
  readonly expiresAt: Date | undefined
}

export interface NewFileUpload {
  readonly tenant: string
  readonly id: string
  readonly device: string
  readonly name: string
  readonly size: number
  readonly sha256: string | undefined
  readonly contentType: string
  /** SHA-256 (hex) of the upload token; the token itself is never stored. */
  readonly tokenHash: string
  readonly createdAt: Date
  readonly expiresAt: Date
}

/** A tenant's file quota (TenantQuotas.maxFileStorageBytes and maxFiles); null: no limit. */
export interface FileQuota {
  readonly maxBytes: number | null
  readonly maxFiles: number | null
}

/**
 * What counts against a tenant's file quota: its uploaded files, and the declared size of its
 * pending uploads that still hold a reservation (a token not yet lapsed, or a body being received).
 */
export interface FileUsage {
  readonly files: number
  readonly bytes: number
}

/** Why `size` more bytes in one more file would pass the quota, or undefined when they fit. */
export function quotaProblem(used: FileUsage, size: number, quota: FileQuota): string | undefined {
  if (quota.maxFiles !== null && used.files + 1 > quota.maxFiles) {
    return `the tenant holds ${used.files} of its ${quota.maxFiles} files (uploads in progress included)`
  }
  if (quota.maxBytes !== null && used.bytes + size > quota.maxBytes) {
    return `${size} more bytes would pass the tenant's file storage quota: ${used.bytes} of ${quota.maxBytes} bytes are used (uploads in progress included)`
  }
  return undefined
}

/** A folder's name: 1-64 of A-Z a-z 0-9 . _ ~ -, not starting with a dot. */
export const FOLDER_PATTERN = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}$/

/** A file's id: opaque, 8-64 of A-Z a-z 0-9 _ - (the API, the device routes and topics check it). */
export const FILE_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/

/** Where a file is published for download: one device, or a folder every device of the tenant sees. */
export type PublicationTarget = { readonly device: string } | { readonly folder: string }

/** The devices and folders a file is published to, each sorted. */
export interface FilePublications {
  readonly devices: string[]
  readonly folders: string[]
}

/** An uploaded file a device may download, with the folders it is in (empty: published to the device only). */
export interface PublishedFile {
  readonly file: FileRecord
  readonly folders: string[]
}

/** Whether `device` may download a file published to `publications`: its own or any folder. */
export const visibleTo = (publications: FilePublications, device: string): boolean =>
  publications.folders.length > 0 || publications.devices.includes(device)

export interface EventOutboxEntry {
  readonly seq: number
  readonly event: CloudEvent
}

export interface FileStore {
  /**
   * Records a pending upload; REGISTRY_NOT_FOUND when the device does not exist. With a quota, the
   * tenant's usage (FileUsage at `upload.createdAt`) plus this upload must stay within it, else
   * FILES_QUOTA_EXCEEDED and nothing is recorded; concurrent calls for one tenant are serialized,
   * so together they never pass it.
   */
  createUpload(upload: NewFileUpload, quota?: FileQuota): Promise<FileRecord>
  /** The tenant's usage at `now` (see FileUsage). */
  usage(tenant: string, now: Date): Promise<FileUsage>
  /**
   * Spends a token: the pending upload `id` when the token is its own, unused and unexpired at
   * `now`, else undefined (and the token is left as it was). A token works once, even when two
   * requests race with it.
   */
  claimUpload(tokenHash: string, id: string, now: Date): Promise<FileRecord | undefined>
  /** Marks a claimed upload done and records its event, in one transaction. */
  completeUpload(
    tenant: string,
    id: string,
    done: { readonly sha256: string; readonly uploadedAt: Date },
    event: CloudEvent,
  ): Promise<FileRecord>
  /**
   * Forgets at most `limit` of the tenant's pending uploads that lapsed before `before` (spent or
   * not) and returns them, so that the caller deletes any object a device left behind.
   */
  dropLapsedUploads(tenant: string, before: Date, limit: number): Promise<FileRecord[]>
  /** Forgets a pending upload (its body was refused); uploaded files are left alone. */
  abandonUpload(tenant: string, id: string): Promise<void>
  get(tenant: string, id: string): Promise<FileRecord | undefined>
  /** The tenant's uploaded files in id order (cursor pages), of one device or name prefix when given. */
  list(
    tenant: string,
    options?: ListOptions & {
      readonly device?: string | undefined
      readonly namePrefix?: string | undefined
    },
  ): Promise<Page<FileRecord>>
  /** Forgets an uploaded file and returns it (the caller deletes its object); undefined when there is none. */
  remove(tenant: string, id: string): Promise<FileRecord | undefined>

  // Publications (registry migration 13): files an operator published for devices to download.
  /**
   * Publishes an uploaded file to a device or a folder; true when it was not yet. REGISTRY_NOT_FOUND
   * when the file is not an uploaded one of the tenant, or the device does not exist.
   */
  publish(tenant: string, id: string, target: PublicationTarget, at: Date): Promise<boolean>
  /** Takes a publication back; false when there was none. */
  unpublish(tenant: string, id: string, target: PublicationTarget): Promise<boolean>
  /** Where the file is published (empty lists for a file that is not, or does not exist). */
  publications(tenant: string, id: string): Promise<FilePublications>
  /**
   * The uploaded files a device may download (published to it or to any folder), in id order
   * (cursor pages), only those of one folder when given.
   */
  listPublished(
    tenant: string,
    device: string,
    options?: ListOptions & { readonly folder?: string | undefined },
  ): Promise<Page<PublishedFile>>

  /** Events not yet published, oldest first. */
  pendingEvents(limit: number): Promise<EventOutboxEntry[]>
  /** Marks events up to and including seq as published. */
  markEventsPublished(seq: number): Promise<void>

  // Blob sweeps (registry migration 11): every file row that goes (deleted, abandoned, lapsed, or
  // with its device or tenant) leaves the key of its object to delete from the blob store.
  /**
   * Up to `limit` sweeps due at `now`, each leased until `leaseUntil` (another process skips it
   * until then), oldest due first.
   */
  claimSweeps(now: Date, leaseUntil: Date, limit: number): Promise<BlobSweep[]>
  /** The object is gone: forgets the sweep. */
  sweepDone(tenant: string, id: string): Promise<void>
  /** Deleting the object failed: it is tried again from `retryAt`. */
  sweepFailed(tenant: string, id: string, retryAt: Date): Promise<void>
}

/** An object of the blob store to delete: `blobKey(tenant, device, id)`. */
export interface BlobSweep {
  readonly tenant: string
  readonly device: string
  readonly id: string
  /** Earlier tries that failed (or whose process stopped). */
  readonly attempts: number
}
