// Building blocks of route definitions: JSON bodies and responses, problem responses by status,
// and the headers the API sets.
import { Problem } from '../schemas.ts'

const PROBLEMS: Record<number, string> = {
  400: 'Invalid input: malformed JSON, unknown or invalid fields, or identifiers outside their charset.',
  401: 'No valid credentials (`WWW-Authenticate: Bearer`).',
  403: 'The caller is authenticated but its role does not allow this.',
  404: 'No such resource, or a tenant the caller may not see.',
  409: 'The resource exists already, or a unique credential is taken.',
  412: 'If-Match does not match the current version; nothing changed.',
  413: 'The body is larger than TRIBUTARY_API_MAX_BODY_BYTES.',
  415: 'The body is not application/json.',
  503: 'A backing service is unavailable; retry.',
}

export function problems<const S extends readonly number[]>(...statuses: S) {
  const out: Record<
    number,
    { description: string; content: { 'application/problem+json': { schema: typeof Problem } } }
  > = {}
  for (const status of statuses) {
    out[status] = {
      description: PROBLEMS[status] ?? 'Error',
      content: { 'application/problem+json': { schema: Problem } },
    }
  }
  return out as {
    [K in S[number]]: {
      description: string
      content: { 'application/problem+json': { schema: typeof Problem } }
    }
  }
}

export const READ_PROBLEMS = [400, 401, 403, 404, 503] as const
export const WRITE_PROBLEMS = [400, 401, 403, 404, 409, 412, 413, 415, 503] as const

export function jsonBody<T>(schema: T, description: string) {
  return { required: true, description, content: { 'application/json': { schema } } }
}

const ETAG = {
  ETag: { description: 'The version as a strong ETag, for If-Match.', schema: { type: 'string' as const } },
}
const LOCATION = {
  Location: { description: 'URL of the created resource.', schema: { type: 'string' as const } },
}

export function jsonResponse<T>(
  schema: T,
  description: string,
  headers: 'etag' | 'created' | 'none' = 'none',
) {
  return {
    description,
    content: { 'application/json': { schema } },
    ...(headers === 'etag'
      ? { headers: ETAG }
      : headers === 'created'
        ? { headers: { ...LOCATION, ...ETAG } }
        : {}),
  }
}

export const NO_CONTENT = { description: 'Deleted.' }

export const path = (...segments: string[]): string => segments.map(encodeURIComponent).join('/')
