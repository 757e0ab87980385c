// The HTTP sender of webhook requests: a POST through node:http(s) with a timeout, no redirects, a
// bounded read of the answer, the URL and the address each connection dials checked by the policy
// of every tenant-chosen URL (core/outbound.ts), and the answer classified.
import type { LookupAddress } from 'node:dns'
import type { Agent as HttpAgent, IncomingMessage } from 'node:http'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createTargetAgents, requestProblem, targetRefusal } from '../../core/outbound.ts'
import type { SendOutcome, WebhookSender } from './ports.ts'

export interface SenderOptions {
  /** Let webhooks reach loopback and private networks (TRIBUTARY_WEBHOOK_ALLOW_PRIVATE). */
  readonly allowPrivate?: boolean | undefined
  /** Name resolution (tests answer for made-up names); dns.lookup of every address by default. */
  readonly resolve?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
  /** Answer bytes read before the connection is dropped (default 64 KiB); the answer is discarded. */
  readonly maxResponseBytes?: number | undefined
  /** Sockets kept per origin (default 16). */
  readonly maxSockets?: number | undefined
}

export interface HttpWebhookSender extends WebhookSender {
  /** Closes kept-alive sockets. */
  close(): void
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * 2xx delivered; 410 gone; 408, 429 and 5xx retried (429 and 503 honouring Retry-After); any
 * other status, redirects included, rejected without retry: the same request would fail again.
 */
export function classify(status: number, retryAfter: string | undefined, now: number): SendOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status }
  if (status === 410) return { kind: 'gone', status }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter, now) : undefined
    return { kind: 'retry', status, retryAfterMs, error: `HTTP ${status}` }
  }
  return { kind: 'rejected', status, error: `HTTP ${status}` }
}

export function createHttpSender(options: SenderOptions = {}): HttpWebhookSender {
  const allowPrivate = options.allowPrivate ?? false
  const maxResponseBytes = options.maxResponseBytes ?? 64 * 1024
  const agents = createTargetAgents({
    allowPrivate,
    resolve: options.resolve,
    maxSockets: options.maxSockets,
  })

  return {
    async send(request, { timeoutMs, signal }) {
      let url: URL
      try {
        url = new URL(request.url)
      } catch {
        return { kind: 'rejected', status: 0, error: 'invalid URL' }
      }
      const problem = requestProblem(url, allowPrivate)
      if (problem !== undefined) return { kind: 'rejected', status: 0, error: problem }
      const started = Date.now()
      try {
        const { status, retryAfter } = await post(url, request.headers, request.body, {
          agent: agents.for(url),
          timeoutMs,
          signal,
          maxResponseBytes,
        })
        return classify(status, retryAfter, started)
      } catch (err) {
        const refused = targetRefusal(err)
        if (refused !== undefined) return { kind: 'rejected', status: 0, error: refused.message }
        return { kind: 'retry', error: err instanceof Error ? err.message : String(err) }
      }
    },
    close() {
      agents.destroy()
    },
  }
}

interface PostOptions {
  readonly agent: HttpAgent
  readonly timeoutMs: number
  readonly signal: AbortSignal
  readonly maxResponseBytes: number
}

function post(
  url: URL,
  headers: Readonly<Record<string, string>>,
  body: Buffer,
  options: PostOptions,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const timeout = AbortSignal.timeout(options.timeoutMs)
    const signal = AbortSignal.any([options.signal, timeout])
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(url, {
      method: 'POST',
      agent: options.agent,
      headers: { ...headers, 'content-length': String(body.length) },
      signal,
    })
    req.on('error', (err) => {
      reject(timeout.aborted ? new Error(`timed out after ${options.timeoutMs} ms`, { cause: err }) : err)
    })
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      const header = res.headers['retry-after']
      let read = 0
      // Drained and dropped: only the status counts, and a huge answer must not hold us.
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        if (read > options.maxResponseBytes) {
          res.destroy()
          resolve({ status, retryAfter: header })
        }
      })
      res.on('end', () => resolve({ status, retryAfter: header }))
      res.on('error', () => resolve({ status, retryAfter: header }))
      res.on('close', () => resolve({ status, retryAfter: header }))
    })
    req.end(body)
  })
}
