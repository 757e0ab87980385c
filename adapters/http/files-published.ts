// Files published to devices (docs/files.md#files-for-devices), over HTTP with the device's usual
// credentials (and `?as=<device>` for a gateway): `GET /v1/files` lists the files the device may
// download (`?folder=&after=&limit=`), `GET /v1/files/<fileId>` answers one's metadata with a
// short-lived download URL (`?expiresIn=` seconds). A file not published to the device is a 404,
// whoever else's it is.
import type { Context } from 'hono'
import { type FileRequestKind, type PublishedDeps, answerFileRequest } from '../../core/blobs/published.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import type { Logger } from '../../core/log.ts'
import { authenticate, deviceFor } from './caller.ts'
import type { ProblemKind } from './outcome.ts'
import { problemResponse } from './outcome.ts'
import { requestSource } from './request.ts'

export const FILES_LIST_PATH = '/v1/files'
export const FILES_GET_PATH = '/v1/files/:fileId'

export interface FilesPublishedDeps extends PublishedDeps {
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  /** TRIBUTARY_FILES_UPLOAD_URL when set: the device HTTP listener behind a proxy. */
  readonly base: () => string | undefined
  readonly log: Logger
}

const KINDS: Record<number, ProblemKind> = {
  400: 'invalid',
  404: 'not-found',
  429: 'rate-limited',
  503: 'unavailable',
}

export function createFilesPublished(deps: FilesPublishedDeps) {
  async function serve(c: Context, kind: FileRequestKind): Promise<Response> {
    const instance = c.req.path
    const refuse = (problem: ProblemKind, detail: string, retryAfterMs?: number) => {
      deps.log.debug({ path: instance, problem, detail }, 'published file request refused')
      return problemResponse(problem, detail, { instance, retryAfterMs })
    }
    const who = await authenticate(deps.auth, requestSource(c).header('authorization'))
    if (!who.ok) return refuse(who.kind, who.detail)
    const { as, ...query } = c.req.query()
    const target = await deviceFor(deps.findDevice, who.caller, as)
    if (!target.ok) return refuse(target.kind, target.detail)
    const fields: Record<string, unknown> =
      kind === 'download' ? { ...query, fileId: c.req.param('fileId') } : query
    const answer = await answerFileRequest(deps, {
      tenant: who.caller.tenant,
      device: target.device,
      kind,
      fields,
      base: () => deps.base() ?? new URL(c.req.url).origin,
    })
    if (!answer.ok) {
      const { status, detail, retryAfterMs } = answer.refusal
      return refuse(KINDS[status] ?? 'invalid', detail, retryAfterMs)
    }
    return c.json(answer.body, 200, { 'cache-control': 'no-store' })
  }

  return { list: (c: Context) => serve(c, 'list'), get: (c: Context) => serve(c, 'download') }
}
