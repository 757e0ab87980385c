// The body of a device's upload-token request, whatever protocol carried it (HTTP `POST
// /v1/files/token`, MQTT `files/token/req/<id>`): a JSON object {name, size, sha256?, contentType?}.
// The values themselves (name, size bounds, hex SHA-256) are checked by Uploads.issue().
import type { UploadRequest } from './uploads.ts'

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
