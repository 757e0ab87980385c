// What a device asks about the files published to it (docs/files.md#files-for-devices), whatever
// protocol carried the request (HTTP `GET /v1/files[/<id>]`, MQTT `files/{list,download}/req/<id>`):
// the list of files it may download, and a short-lived download URL of one. A file is the device's to
// download when an operator published it to the device or to any folder of its tenant; any other
// file id (another device's, another tenant's, one that does not exist) is the same 404.
import { isTributaryError } from '../errors.ts'
import {
  type FileRecord,
  type FileStore,
  FILE_ID_PATTERN,
  FOLDER_PATTERN,
  visibleTo,
} from '../registry/files.ts'
import type { DownloadLinks } from './downloads.ts'
import type { FileLookups } from './file-cache.ts'
import { blobKey } from './keys.ts'

/** Most files in one answer: a page must fit an MQTT message a small device can take. */
export const MAX_DEVICE_PAGE = 100

export interface PublishedDeps {
  readonly files: Pick<FileStore, 'listPublished'>
  readonly lookups: Pick<FileLookups, 'lookup'>
  readonly links: Pick<DownloadLinks, 'url'>
  /** Counts a download URL against the device's rate (Uploads.checkRate); RATE_LIMITED past it. */
  readonly rate?: ((tenant: string, device: string) => Promise<void>) | undefined
}

export type FileRequestKind = 'list' | 'download'

/** A request that got no answer: the HTTP status every protocol answers with. */
export interface FileRequestRefusal {
  readonly status: 400 | 404 | 429 | 503
  readonly detail: string
  /** 429: when the device may ask again. */
  readonly retryAfterMs?: number | undefined
}

export type FileRequestAnswer =
  | { readonly ok: true; readonly body: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly refusal: FileRequestRefusal }

const refused = (
  status: FileRequestRefusal['status'],
  detail: string,
  retryAfterMs?: number,
): FileRequestAnswer => ({ ok: false, refusal: { status, detail, retryAfterMs } })

const fileView = (file: FileRecord) => ({
  id: file.id,
  name: file.name,
  size: file.size,
  sha256: file.sha256 ?? null,
  contentType: file.contentType,
  uploadedAt: (file.uploadedAt ?? file.createdAt).toISOString(),
})

/** An integer field, or a decimal string of one (query parameters); undefined when absent, NaN when neither. */
function integer(value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number') return Number.isInteger(value) ? value : Number.NaN
  return typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
}

async function list(deps: PublishedDeps, tenant: string, device: string, fields: Record<string, unknown>) {
  const { folder, after } = fields
  const limit = integer(fields['limit'])
  if (folder !== undefined && (typeof folder !== 'string' || !FOLDER_PATTERN.test(folder)))
    return refused(400, 'folder: 1-64 of A-Z a-z 0-9 . _ ~ -, not starting with a dot')
  if (after !== undefined && (typeof after !== 'string' || after.length > 512))
    return refused(400, "after: the previous page's next")
  if (limit !== undefined && !(limit >= 1 && limit <= MAX_DEVICE_PAGE))
    return refused(400, `limit: an integer from 1 to ${MAX_DEVICE_PAGE}`)
  try {
    const page = await deps.files.listPublished(tenant, device, {
      folder,
      after,
      limit: limit ?? MAX_DEVICE_PAGE,
    })
    const items = page.items.map(({ file, folders }) => ({ ...fileView(file), folders }))
    return { ok: true as const, body: { items, next: page.next } }
  } catch (err) {
    // A cursor that is not one.
    if (isTributaryError(err, 'REGISTRY_INVALID')) return refused(400, err.message)
    throw err
  }
}

async function download(
  deps: PublishedDeps,
  tenant: string,
  device: string,
  fields: Record<string, unknown>,
  base: () => string | undefined,
) {
  const { fileId } = fields
  const expiresIn = integer(fields['expiresIn'])
  if (typeof fileId !== 'string' || !FILE_ID_PATTERN.test(fileId))
    return refused(400, 'fileId: 8-64 of A-Z a-z 0-9 _ -')
  if (Number.isNaN(expiresIn)) return refused(400, 'expiresIn: an integer number of seconds')
  try {
    await deps.rate?.(tenant, device)
  } catch (err) {
    if (!isTributaryError(err, 'RATE_LIMITED')) throw err
    const retryAfterMs = err.details?.['retryAfterMs']
    return refused(429, err.message, typeof retryAfterMs === 'number' ? retryAfterMs : undefined)
  }
  const entry = await deps.lookups.lookup(tenant, fileId)
  if (entry === undefined || !visibleTo(entry.publications, device)) return refused(404, 'no such file')
  const { file } = entry
  try {
    const signed = await deps.links.url({
      key: blobKey(tenant, file.device, file.id),
      filename: file.name,
      expiresInS: expiresIn,
      base,
    })
    return {
      ok: true as const,
      body: { ...fileView(file), url: signed.url, method: 'GET', expiresAt: signed.expiresAt.toISOString() },
    }
  } catch (err) {
    if (isTributaryError(err, 'REQUEST_INVALID')) return refused(400, err.message)
    if (isTributaryError(err, 'BLOB_UNAVAILABLE')) return refused(503, err.message)
    throw err
  }
}

const FIELDS: Record<FileRequestKind, readonly string[]> = {
  list: ['folder', 'after', 'limit'],
  download: ['fileId', 'expiresIn'],
}

/**
 * Answers a device's request about its published files: `list` takes {folder?, after?, limit?},
 * `download` {fileId, expiresIn?} (numbers may come as decimal strings, as in a query). A request
 * refused is a FileRequestRefusal; anything else (the registry unavailable) is thrown.
 */
export function answerFileRequest(
  deps: PublishedDeps,
  input: {
    readonly tenant: string
    readonly device: string
    readonly kind: FileRequestKind
    readonly fields: Record<string, unknown>
    /** The device HTTP listener as the device reaches it (signed Tributary URLs). */
    readonly base: () => string | undefined
  },
): Promise<FileRequestAnswer> {
  const unknown = Object.keys(input.fields).find((field) => !FIELDS[input.kind].includes(field))
  if (unknown !== undefined) {
    const detail = `unknown field ${JSON.stringify(unknown.slice(0, 64))}: use ${FIELDS[input.kind].join(', ')}`
    return Promise.resolve(refused(400, detail))
  }
  return input.kind === 'list'
    ? list(deps, input.tenant, input.device, input.fields)
    : download(deps, input.tenant, input.device, input.fields, input.base)
}
