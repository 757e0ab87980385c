// Signed downloads on the device HTTP listener (docs/files.md): `GET /v1/files/download/<key>?expires=&
// filename=&signature=` streams the object when the URL's signature covers the method, the key, the
// expiry and the name, and the expiry has not passed. The URL is the only credential: it is made by
// the management API (an operator's or application's download) for one object and a short time.
import { Readable } from 'node:stream'
import type { Context } from 'hono'
import type { BlobStore } from '../../core/blobs/blobs.ts'
import { SIGNED_DOWNLOAD_PREFIX, type DownloadLinks } from '../../core/blobs/downloads.ts'
import type { Logger } from '../../core/log.ts'
import { problemResponse } from './outcome.ts'

export const FILES_DOWNLOAD_PATH = `${SIGNED_DOWNLOAD_PREFIX}*`

export interface FilesDownloadDeps {
  readonly links: Pick<DownloadLinks, 'check'>
  readonly blobs: Pick<BlobStore, 'get'>
  readonly log: Logger
}

export function createFilesDownload(deps: FilesDownloadDeps) {
  return async function download(c: Context): Promise<Response> {
    const url = new URL(c.req.url)
    const instance = url.pathname
    const method = c.req.method
    if (method !== 'GET' && method !== 'HEAD') {
      return problemResponse('method-not-allowed', 'a download URL is for GET', {
        instance,
        allow: 'GET, HEAD',
      })
    }
    // HEAD reads what GET would: the signature is made for GET.
    const checked = deps.links.check(
      'GET',
      url.pathname.slice(SIGNED_DOWNLOAD_PREFIX.length),
      url.searchParams,
    )
    if (!checked.ok) {
      deps.log.debug({ path: instance, reason: checked.reason }, 'download refused')
      return problemResponse(checked.reason === 'invalid' ? 'invalid' : 'forbidden', checked.detail, {
        instance,
      })
    }
    const object = await deps.blobs.get(checked.key)
    if (object === undefined) return problemResponse('not-found', 'no such file', { instance })
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(object.info.size),
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, no-store',
    }
    if (checked.filename !== undefined) {
      headers['content-disposition'] = `attachment; filename*=UTF-8''${encodeURIComponent(checked.filename)}`
    }
    if (method === 'HEAD') {
      object.body.destroy()
      return new Response(null, { status: 200, headers })
    }
    return new Response(Readable.toWeb(object.body) as ReadableStream, { status: 200, headers })
  }
}
