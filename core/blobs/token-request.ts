// A device's upload-token request, whatever protocol carried it (HTTP `POST /v1/files/token` and
// `/v1/files/presign`, MQTT `files/{token,presign}/req/<id>`, CoAP `POST /v1/files/token`): the
// body is a JSON object {name, size, sha256?, contentType?}, and the answer the same for all. The
// values themselves (name, size bounds, hex SHA-256, quota, rate) are checked by Uploads.
import { type ErrorCode, isTributaryError } from '../errors.ts'
import type { UploadRequest, Uploads } from './uploads.ts'

/** A token request is a small JSON object. */
export const MAX_TOKEN_REQUEST_BYTES = 4096

export type TokenDeclaration = Omit<UploadRequest, 'tenant' | 'device'>

export type TokenRequestRead =
  | { readonly ok: true; readonly declaration: TokenDeclaration }
  | { readonly ok: false; readonly detail: string }

const optionalString = (value: unknown): string | undefined | false =>
  value === undefined ? undefined : typeof value === 'string' ? value : false

/** Reads a token request body (UTF-8 JSON); the detail of a refusal is meant for the device. */
export function readTokenRequest(body: Buffer): TokenRequestRead {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, detail: 'send a JSON object {name, size, sha256?, contentType?}' }
  const fields = value as Record<string, unknown>
  const { name, size } = fields
  const sha256 = optionalString(fields['sha256'])
  const contentType = optionalString(fields['contentType'])
  if (typeof name !== 'string' || typeof size !== 'number' || sha256 === false || contentType === false) {
    return {
      ok: false,
      detail: 'name (string) and size (integer) are required; sha256 and contentType are strings',
    }
  }
  return { ok: true, declaration: { name, size, sha256, contentType } }
}

/** `token`: the body goes to Tributary's upload endpoint; `presign`: straight to the store. */
export type TokenMode = 'token' | 'presign'

/** A request that got no token: the HTTP status every protocol answers with (CoAP maps it). */
export interface TokenRefusal {
  readonly status: 400 | 409 | 413 | 429
  readonly code: ErrorCode
  readonly detail: string
  /** 429: when the device may ask again. */
  readonly retryAfterMs?: number | undefined
}

export type TokenAnswer =
  | { readonly ok: true; readonly body: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly refusal: TokenRefusal }

const REFUSED: Partial<Record<ErrorCode, TokenRefusal['status']>> = {
  REQUEST_INVALID: 400,
  BLOB_TOO_LARGE: 413,
  FILES_QUOTA_EXCEEDED: 409,
  RATE_LIMITED: 429,
}

/**
 * Answers a device's token request, whatever protocol carried it: reads `payload` (empty: `{}`),
 * issues a token (or a presigned PUT) for the device and says where the body goes: `uploadUrl`
 * (`<base>/v1/files/<fileId>`), or `upload` and `completeUrl` for a presigned one. A declaration
 * refused (bad, too large, over the tenant's quota, past the device's rate) is a TokenRefusal;
 * anything else (the registry or the store unavailable) is thrown.
 */
export async function answerTokenRequest(
  uploads: Pick<Uploads, 'issue' | 'presign'>,
  input: {
    readonly tenant: string
    readonly device: string
    readonly payload: Buffer
    readonly mode: TokenMode
    /** The device HTTP listener as the device reaches it. */
    readonly base: string
  },
): Promise<TokenAnswer> {
  if (input.payload.length > MAX_TOKEN_REQUEST_BYTES) {
    const detail = `a token request has at most ${MAX_TOKEN_REQUEST_BYTES} bytes`
    return { ok: false, refusal: { status: 413, code: 'REQUEST_TOO_LARGE', detail } }
  }
  const read = readTokenRequest(input.payload.length === 0 ? Buffer.from('{}') : input.payload)
  if (!read.ok) return { ok: false, refusal: { status: 400, code: 'REQUEST_INVALID', detail: read.detail } }
  const request = { tenant: input.tenant, device: input.device, ...read.declaration }
  const url = (path: string): string => new URL(path, input.base).href
  try {
    if (input.mode === 'presign') {
      const presigned = await uploads.presign(request)
      const { method, url: uploadUrl, headers } = presigned.upload
      return {
        ok: true,
        body: {
          fileId: presigned.fileId,
          token: presigned.token,
          expiresAt: presigned.expiresAt.toISOString(),
          upload: { method, url: uploadUrl, headers },
          completeUrl: url(`/v1/files/${presigned.fileId}/complete`),
        },
      }
    }
    const issued = await uploads.issue(request)
    return {
      ok: true,
      body: {
        fileId: issued.fileId,
        token: issued.token,
        expiresAt: issued.expiresAt.toISOString(),
        uploadUrl: url(`/v1/files/${issued.fileId}`),
      },
    }
  } catch (err) {
    const status = isTributaryError(err) ? REFUSED[err.code] : undefined
    if (status === undefined || !isTributaryError(err)) throw err
    const retryAfterMs = err.details?.['retryAfterMs']
    return {
      ok: false,
      refusal: {
        status,
        code: err.code,
        detail: err.message,
        retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : undefined,
      },
    }
  }
}
