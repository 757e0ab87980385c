// Requests to URLs a tenant chose — webhook deliveries, TTN downlinks, an OIDC issuer's JWKS, and
// any such fetch to come: one policy for them all. A URL is checked when it is written (its host
// may not be `localhost` or a non-public address, core/addresses.ts) and again on every connection,
// against each address the name resolves to at that moment, so a DNS answer that changes after the
// check cannot reach an internal host. The operator's TRIBUTARY_WEBHOOK_ALLOW_PRIVATE lifts both
// checks (tests, closed deployments); nothing else does.
import type { LookupAddress } from 'node:dns'
import { lookup as dnsLookup } from 'node:dns/promises'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { isIP } from 'node:net'
import { isPublicAddress } from './addresses.ts'

/** The operator's setting that lets tenant-chosen URLs reach loopback, private and special addresses. */
export const ALLOW_PRIVATE_VARIABLE = 'TRIBUTARY_WEBHOOK_ALLOW_PRIVATE'

/** The problem of a URL whose host is refused, as the API tells it (400). */
export const PRIVATE_TARGET_PROBLEM = `may not target localhost or a loopback, link-local, private or other special-purpose address (the operator allows such targets with ${ALLOW_PRIVATE_VARIABLE}=true)`

/**
 * Why a URL host may not be a target without the operator's allowance, or undefined. A name passes
 * here (it is checked on the addresses it resolves to when connecting) unless it is `localhost`.
 */
export function targetHostProblem(hostname: string): string | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, '')
  if (host === 'localhost' || host.endsWith('.localhost')) return PRIVATE_TARGET_PROBLEM
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (isIP(literal) !== 0 && !isPublicAddress(literal)) return PRIVATE_TARGET_PROBLEM
  return undefined
}

/** A connection refused because its target is not public: not worth retrying. */
export class TargetRefusedError extends Error {
  override readonly name = 'TargetRefusedError'
}

/** The TargetRefusedError an error is or was caused by (node:http wraps lookup errors), if any. */
export function targetRefusal(err: unknown): TargetRefusedError | undefined {
  if (err instanceof TargetRefusedError) return err
  const cause = (err as { cause?: unknown } | null)?.cause
  return cause instanceof TargetRefusedError ? cause : undefined
}

export interface TargetGuardOptions {
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE. */
  readonly allowPrivate: boolean
  /** Name resolution (tests answer for made-up names); dns.lookup of every address by default. */
  readonly resolve?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
}

/**
 * A net.LookupFunction that resolves every address of a name and fails the connection with
 * TargetRefusedError when any of them is not public, so the address dialled is the one checked.
 */
export function guardedLookup(options: TargetGuardOptions): LookupFunction {
  const resolve = options.resolve ?? ((hostname: string) => dnsLookup(hostname, { all: true }))
  async function addressesOf(hostname: string, family: unknown): Promise<LookupAddress[]> {
    const found = await resolve(hostname)
    const addresses = family === 4 || family === 6 ? found.filter((a) => a.family === family) : found
    if (!options.allowPrivate && addresses.some((a) => !isPublicAddress(a.address))) {
      throw new TargetRefusedError(`${hostname} resolves to a non-public address`)
    }
    if (addresses.length === 0) throw new Error(`${hostname} has no address`)
    return addresses
  }
  return (hostname, lookupOptions, callback) => {
    addressesOf(hostname, lookupOptions.family).then(
      (addresses) => {
        if (lookupOptions.all === true) {
          ;(callback as unknown as (err: null, all: LookupAddress[]) => void)(null, addresses)
        } else {
          callback(null, addresses[0]!.address, addresses[0]!.family)
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    )
  }
}

/**
 * Why this URL may not be requested now, or undefined: http(s) only, and a literal host must be
 * public (a literal is never looked up, so the connect-time check does not see it).
 */
export function requestProblem(url: URL, allowPrivate: boolean): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `unsupported scheme ${url.protocol}`
  const problem = allowPrivate ? undefined : targetHostProblem(url.hostname)
  return problem === undefined ? undefined : `the URL ${problem}`
}

export interface TargetAgents {
  /** The agent for a URL's scheme. */
  for(url: URL): HttpAgent
  /** Closes kept-alive sockets. */
  destroy(): void
}

/** node:http and node:https agents whose every connection goes through guardedLookup. */
export function createTargetAgents(
  options: TargetGuardOptions & { readonly maxSockets?: number | undefined },
): TargetAgents {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 16,
    lookup: guardedLookup(options),
  }
  const http = new HttpAgent(agentOptions)
  const https = new HttpsAgent(agentOptions)
  return {
    for: (url) => (url.protocol === 'https:' ? https : http),
    destroy() {
      http.destroy()
      https.destroy()
    },
  }
}

export interface TargetFetchOptions extends TargetGuardOptions {
  /** The most body bytes read; a longer answer fails the fetch. */
  readonly maxBodyBytes: number
}

// Statuses whose Response may not have a body (Fetch standard).
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304])

/**
 * A fetch for GET requests to tenant-chosen URLs (for libraries that take one, such as jose's
 * remote JWKS): the URL and every dialled address checked as above, redirects never followed (a
 * 3xx is returned as it is), the body read up to `maxBodyBytes`, bounded by the caller's signal.
 */
export function createTargetFetch(
  options: TargetFetchOptions,
): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const agents = createTargetAgents({ ...options, maxSockets: 4 })
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input)
      const problem = requestProblem(url, options.allowPrivate)
      if (problem !== undefined) return reject(new TargetRefusedError(problem))
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(url, {
        method: 'GET',
        agent: agents.for(url),
        headers: Object.fromEntries(new Headers(init.headers)),
        ...(init.signal === undefined || init.signal === null ? {} : { signal: init.signal }),
      })
      req.on('error', reject)
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        let read = 0
        res.on('data', (chunk: Buffer) => {
          read += chunk.length
          if (read > options.maxBodyBytes) {
            res.destroy()
            reject(new Error(`the answer of ${url.origin} is larger than ${options.maxBodyBytes} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('error', reject)
        res.on('close', () => {
          if (!res.complete) reject(new Error(`the answer of ${url.origin} ended early`))
        })
        res.on('end', () => {
          const status = res.statusCode ?? 0
          const headers = new Headers()
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
              headers.append(name, v)
          }
          const body = NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks)
          try {
            resolve(new Response(body, { status, headers }))
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)))
          }
        })
      })
      req.end()
    })
}
