// The CLI's HTTP client for the management API: bearer auth, bounded requests, and problem+json
// errors turned into one readable line.

export interface ApiClientOptions {
  /** Base URL of the API listener, e.g. http://127.0.0.1:8080 (the /api/v1 prefix is added). */
  readonly url: string
  readonly token: string | undefined
  readonly timeoutMs?: number | undefined
}

export interface ApiResponse<T> {
  readonly status: number
  readonly body: T
  readonly etag: string | null
}

/** A non-2xx answer, carrying what the problem document said. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string | undefined
  constructor(status: number, message: string, code: string | undefined) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

export interface ApiClient {
  request<T>(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>
  /** Follows `next` cursors and returns every item of a list. */
  listAll<T>(path: string, query?: URLSearchParams): Promise<T[]>
}

/** Most items `listAll` fetches before it stops, so a huge tenant cannot exhaust the CLI. */
const LIST_CAP = 100_000

/** `<url>/api/v1` for the URL of the API listener; a clear error for anything but an http(s) URL. */
export function apiBase(url: string): string {
  let base: URL
  try {
    base = new URL(url)
  } catch {
    throw new Error(`API URL ${JSON.stringify(url)} is not a URL (set --url or TRIBUTARY_API_URL)`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new Error(`API URL ${JSON.stringify(url)} must be http: or https:`)
  }
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}/api/v1`
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const prefix = apiBase(options.url)
  const timeoutMs = options.timeoutMs ?? 30_000

  async function request<T>(
    method: string,
    path: string,
    extra: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra.headers }
    if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`
    if (extra.body !== undefined) headers['content-type'] = 'application/json'
    let response: Response
    try {
      response = await fetch(`${prefix}${path}`, {
        method,
        headers,
        body: extra.body === undefined ? null : JSON.stringify(extra.body),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      const reason =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : ''
      throw new Error(`cannot reach the API at ${prefix}: ${reason}`, { cause: err })
    }
    const text = await response.text()
    let body: unknown = undefined
    if (text !== '') {
      try {
        body = JSON.parse(text)
      } catch {
        body = text
      }
    }
    if (!response.ok) throw toApiError(response.status, response.statusText, body)
    return { status: response.status, body: body as T, etag: response.headers.get('etag') }
  }

  return {
    request,
    async listAll<T>(path: string, query = new URLSearchParams()) {
      const items: T[] = []
      let after: string | null = null
      do {
        const q = new URLSearchParams(query)
        q.set('limit', '1000')
        if (after !== null) q.set('after', after)
        const page: ApiResponse<{ items: T[]; next: string | null }> = await request(
          'GET',
          `${path}?${q.toString()}`,
        )
        items.push(...page.body.items)
        after = page.body.next
      } while (after !== null && items.length < LIST_CAP)
      return items
    },
  }
}

function toApiError(status: number, statusText: string, body: unknown): ApiError {
  if (typeof body === 'object' && body !== null) {
    const problem = body as {
      title?: unknown
      detail?: unknown
      code?: unknown
      errors?: Array<{ path?: unknown; message?: unknown }>
    }
    const title = typeof problem.title === 'string' ? problem.title : statusText
    const errors = Array.isArray(problem.errors)
      ? problem.errors.map((e) => `${asText(e.path)}: ${asText(e.message)}`)
      : []
    // The detail of a validation error repeats its first field error: said once, in the list.
    const detail =
      typeof problem.detail === 'string' && !errors.includes(problem.detail) ? `: ${problem.detail}` : ''
    const fields = errors.map((e) => `\n  - ${e}`).join('')
    const code = typeof problem.code === 'string' ? problem.code : undefined
    return new ApiError(status, `${status} ${title}${detail}${fields}`, code)
  }
  return new ApiError(status, `${status} ${statusText}`, undefined)
}

const asText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value ?? ''))
