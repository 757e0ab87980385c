// The management API as the console calls it: a bearer token on every request, JSON in and out,
// and every refusal turned into its problem document (RFC 9457) for the page to show.

export type {
  CloudEventJson,
  ConfigDocument,
  DeadLetter,
  Device,
  DeviceFile,
  EffectiveConfig,
  FileUrl,
  Identity,
  Page,
} from './types.ts'

export interface FieldError {
  readonly path: string
  readonly message: string
}

export interface Problem {
  readonly title: string
  readonly status: number
  readonly detail?: string | undefined
  readonly code?: string | undefined
  readonly errors?: readonly FieldError[] | undefined
}

export class ApiError extends Error {
  readonly problem: Problem
  constructor(problem: Problem) {
    super(problem.detail === undefined ? problem.title : `${problem.title}: ${problem.detail}`)
    this.problem = problem
  }
}

export interface CallOptions {
  readonly method?: string
  /** Sent as JSON. */
  readonly json?: unknown
  /** Sent as is, with `contentType`. */
  readonly raw?: string
  readonly contentType?: string
  readonly query?: Readonly<Record<string, string | undefined>>
  /** A precondition (`If-Match: "<version>"`) for a write of one version only. */
  readonly ifMatch?: string
}

export const enc = encodeURIComponent

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function problemOf(status: number, statusText: string, body: unknown): Problem {
  const doc = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
  return {
    title: text(doc['title']) ?? (statusText || `HTTP ${status}`),
    status,
    detail: text(doc['detail']),
    code: text(doc['code']),
    errors: Array.isArray(doc['errors']) ? (doc['errors'] as FieldError[]) : undefined,
  }
}

/** Calls `/api/v1<path>`; resolves with the parsed body, or rejects with an ApiError. */
export async function call<T>(token: string, path: string, options: CallOptions = {}): Promise<T> {
  const url = new URL(`/api/v1${path}`, location.origin)
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== '') url.searchParams.set(key, value)
  }
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    accept: 'application/json, application/problem+json',
  }
  if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch
  let body: string | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.raw !== undefined) {
    headers['content-type'] = options.contentType ?? 'text/plain'
    body = options.raw
  }
  let response: Response
  try {
    response = await fetch(url, {
      method: options.method ?? 'GET',
      headers,
      cache: 'no-store',
      ...(body === undefined ? {} : { body }),
    })
  } catch (err) {
    throw new ApiError({ title: 'The API did not answer', status: 0, detail: String(err) })
  }
  const text = await response.text()
  const parsed = text === '' ? undefined : parse(text)
  if (!response.ok) throw new ApiError(problemOf(response.status, response.statusText, parsed))
  return parsed as T
}
