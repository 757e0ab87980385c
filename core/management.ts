// The management listener every process serves: liveness, readiness, health with reasons, and
// Prometheus metrics. Plain node:http: it must answer even when everything else is unwell.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Logger } from './log.ts'
import { listen } from './net.ts'

export interface HealthCheck {
  readonly name: string
  /**
   * Whether a failure makes the process unready (default true). False: the process still does its
   * work in a degraded way; /health reports the failure and /readyz mentions it but stays 200.
   */
  readonly critical?: boolean | undefined
  check(): Promise<{ ok: boolean; reason?: string | undefined }>
}

interface CheckResult {
  readonly name: string
  readonly critical: boolean
  readonly ok: boolean
  readonly reason?: string | undefined
}

export interface ManagementOptions {
  readonly host: string
  readonly port: number
  readonly portVariable: string
  readonly registry: Registry
  readonly log: Logger
  /** True once every role has started and until shutdown begins. */
  ready(): boolean
}

export interface ManagementServer {
  add(check: HealthCheck): void
  start(): Promise<number>
  stop(): Promise<void>
}

const CHECK_TIMEOUT_MS = 2000

export function createManagementServer(options: ManagementOptions): ManagementServer {
  const checks: HealthCheck[] = []

  async function runChecks(): Promise<CheckResult[]> {
    return Promise.all(
      checks.map(async (c): Promise<CheckResult> => {
        const critical = c.critical ?? true
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<{ ok: false; reason: string }>((resolve) => {
          timer = setTimeout(
            () => resolve({ ok: false, reason: `no answer within ${CHECK_TIMEOUT_MS} ms` }),
            CHECK_TIMEOUT_MS,
          )
        })
        try {
          const result = await Promise.race([c.check(), timeout])
          return { name: c.name, critical, ...result }
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err)
          return { name: c.name, critical, ok: false, reason }
        } finally {
          clearTimeout(timer)
        }
      }),
    )
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' })
    }
    switch (path) {
      case '/livez':
        return send(res, 200, 'text/plain', 'ok\n')
      case '/readyz': {
        if (!options.ready()) return send(res, 503, 'text/plain', 'not ready: starting or stopping\n')
        const failing = (await runChecks()).filter((c) => !c.ok)
        if (failing.some((c) => c.critical))
          return send(res, 503, 'text/plain', `not ready: ${listed(failing)}\n`)
        if (failing.length > 0) return send(res, 200, 'text/plain', `ready, degraded: ${listed(failing)}\n`)
        return send(res, 200, 'text/plain', 'ready\n')
      }
      case '/health': {
        const results = await runChecks()
        const ready = options.ready() && results.every((c) => c.ok || !c.critical)
        const status = !ready ? 'failing' : results.every((c) => c.ok) ? 'ok' : 'degraded'
        const body = { status, ready, checks: results }
        return send(res, status === 'ok' ? 200 : 500, 'application/json', `${JSON.stringify(body)}\n`)
      }
      case '/metrics':
        return send(res, 200, options.registry.contentType, await options.registry.metrics())
      default:
        return send(res, 404, 'text/plain', 'not found: try /livez, /readyz, /health or /metrics\n')
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.log.error({ err }, 'management request failed')
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n')
      else res.destroy()
    })
  })
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000

  return {
    add: (check) => void checks.push(check),
    start: () =>
      listen(server, {
        host: options.host,
        port: options.port,
        variable: options.portVariable,
        name: 'management',
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Failing checks as `name: reason`, the ones that make the process unready first. */
const listed = (failing: readonly CheckResult[]): string =>
  [...failing]
    .sort((a, b) => Number(b.critical) - Number(a.critical))
    .map((c) => `${c.name}: ${c.reason ?? 'failing'}`)
    .join('; ')

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
