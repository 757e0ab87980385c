// Device file uploads over HTTP (docs/files.md). Kaa BCX: `POST /v1/files/token` (device
// credentials; JSON {name, size, sha256?, contentType?}) answers 201 {fileId, token, expiresAt,
// uploadUrl}; `PUT /v1/files/<fileId>` with the token in `x-auth-token` streams the body into the
// blob store and answers 201 with the file. Presigned (S3 stores): `POST /v1/files/presign` (sha256
// required) answers the PUT to send straight to the bucket, then `POST /v1/files/<fileId>/complete`
// with the token records it once HEAD shows the declared size and SHA-256. A token is the only
// credential of the PUT and the completion: scoped to one device and one upload, once, and it lapses.
import { Readable } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { isTributaryError } from '../../core/errors.ts'
import {
  MAX_TOKEN_REQUEST_BYTES,
  type TokenMode,
  type TokenRefusal,
  answerTokenRequest,
} from '../../core/blobs/token-request.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { FileRecord } from '../../core/registry/files.ts'
import { authenticate } from './caller.ts'
import { declaredTooLarge } from './limits.ts'
import type { ProblemKind } from './outcome.ts'
import { problemResponse } from './outcome.ts'
import { requestSource } from './request.ts'

export const FILES_TOKEN_PATH = '/v1/files/token'
export const FILES_PRESIGN_PATH = '/v1/files/presign'
export const FILES_COMPLETE_PATH = '/v1/files/:fileId/complete'
export const FILES_UPLOAD_PATH = '/v1/files/:fileId'
const FILE_ID = /^[A-Za-z0-9_-]{8,64}$/

export interface FilesRouteDeps {
  readonly uploads: Uploads
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly maxFileBytes: number
  readonly log: Logger
}

const fileView = (file: FileRecord) => ({
  id: file.id,
  name: file.name,
  size: file.size,
  sha256: file.sha256,
  contentType: file.contentType,
  uploadedAt: file.uploadedAt?.toISOString(),
})

const REFUSAL_KINDS: Record<TokenRefusal['status'], ProblemKind> = {
  400: 'invalid',
  409: 'quota-exceeded',
  413: 'too-large',
  429: 'rate-limited',
}

export function createFilesRoutes(deps: FilesRouteDeps) {
  function refuse(instance: string, kind: ProblemKind, detail: string, close = false): Response {
    deps.log.debug({ path: instance, kind, detail }, 'file request refused')
    const response = problemResponse(kind, detail, { instance })
    // The rest of the body is not read: the connection cannot carry another request.
    if (close) response.headers.set('connection', 'close')
    return response
  }

  async function token(c: Context, mode: TokenMode = 'token'): Promise<Response> {
    const instance = c.req.path
    const request = requestSource(c)
    if (declaredTooLarge(request.header('content-length'), MAX_TOKEN_REQUEST_BYTES)) {
      return refuse(instance, 'too-large', `a token request has at most ${MAX_TOKEN_REQUEST_BYTES} bytes`)
    }
    const who = await authenticate(deps.auth, request.header('authorization'))
    if (!who.ok) return refuse(instance, who.kind, who.detail)
    const read = await request.readBody(MAX_TOKEN_REQUEST_BYTES)
    if (!read.ok)
      return refuse(instance, 'too-large', `a token request has at most ${MAX_TOKEN_REQUEST_BYTES} bytes`)
    const answer = await answerTokenRequest(deps.uploads, {
      tenant: who.caller.tenant,
      device: who.caller.sender,
      payload: read.body,
      mode,
      base: c.req.url,
    })
    if (answer.ok) return c.json(answer.body, 201, { 'cache-control': 'no-store' })
    const { refusal } = answer
    deps.log.debug({ path: instance, code: refusal.code, detail: refusal.detail }, 'file token refused')
    return problemResponse(REFUSAL_KINDS[refusal.status], refusal.detail, {
      instance,
      retryAfterMs: refusal.retryAfterMs,
    })
  }

  async function complete(c: Context): Promise<Response> {
    const instance = c.req.path
    const fileId = c.req.param('fileId') ?? ''
    const tokenHeader = requestSource(c).header('x-auth-token')
    if (!FILE_ID.test(fileId)) return refuse(instance, 'not-found', 'no such upload')
    if (tokenHeader === undefined || tokenHeader === '') {
      return refuse(instance, 'unauthenticated', 'send the upload token in x-auth-token')
    }
    try {
      const file = await deps.uploads.complete({ fileId, token: tokenHeader, protocol: 'http' })
      return c.json(fileView(file), 201)
    } catch (err) {
      if (isTributaryError(err, 'AUTH_REQUIRED')) return refuse(instance, 'unauthenticated', err.message)
      if (isTributaryError(err, 'BLOB_INTEGRITY')) return refuse(instance, 'invalid', err.message)
      throw err
    }
  }

  async function upload(c: Context): Promise<Response> {
    const instance = c.req.path
    const fileId = c.req.param('fileId') ?? ''
    const request = requestSource(c)
    const tokenHeader = request.header('x-auth-token')
    if (!FILE_ID.test(fileId)) return refuse(instance, 'not-found', 'no such upload', true)
    if (tokenHeader === undefined || tokenHeader === '') {
      return refuse(instance, 'unauthenticated', 'send the upload token in x-auth-token', true)
    }
    const length = request.header('content-length')
    if (length === undefined || !/^\d{1,16}$/.test(length)) {
      return refuse(instance, 'invalid', 'send the body with a Content-Length', true)
    }
    if (declaredTooLarge(length, deps.maxFileBytes)) {
      return refuse(instance, 'too-large', `a file may have at most ${deps.maxFileBytes} bytes`, true)
    }
    // Straight from the socket when Node serves it: the body streams to the store, never buffered.
    const env = c.env as { incoming?: IncomingMessage } | undefined
    const body =
      env?.incoming !== undefined && typeof env.incoming.on === 'function'
        ? env.incoming
        : Readable.fromWeb(c.req.raw.body ?? new ReadableStream())
    try {
      const file = await deps.uploads.receive({
        fileId,
        token: tokenHeader,
        body,
        protocol: 'http',
        signal: c.req.raw.signal,
      })
      return c.json(fileView(file), 201)
    } catch (err) {
      if (isTributaryError(err, 'AUTH_REQUIRED'))
        return refuse(instance, 'unauthenticated', err.message, true)
      if (isTributaryError(err, 'BLOB_INTEGRITY')) return refuse(instance, 'invalid', err.message, true)
      if (isTributaryError(err, 'BLOB_TOO_LARGE')) return refuse(instance, 'too-large', err.message, true)
      if (isTributaryError(err, 'FILES_QUOTA_EXCEEDED'))
        return refuse(instance, 'quota-exceeded', err.message, true)
      throw err
    }
  }

  return { token: (c: Context) => token(c), presign: (c: Context) => token(c, 'presign'), complete, upload }
}
