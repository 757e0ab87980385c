// The bench's application on the WebSocket event stream: one `ws` client on a tenant's
// `/api/v1/tenants/{t}/events` (subprotocol `cloudevents.json`, bearer token in the header), counting
// the stamped telemetry it receives and, when asked, the latency from the publish time in `data.t`.
import { WebSocket } from 'ws'
import type { RawData } from 'ws'
import { BenchError, withTimeout } from './harness.ts'

const OPEN_TIMEOUT_MS = 30_000

/** The socket: a wait for the next `events` stamped events, as the webhook Receiver has. */
export interface EventSocket {
  /** Resets the count; resolves once `events` more stamped events have arrived. */
  expect(events: number, latencies?: number[]): Promise<void>
  /** Rejects once the server closed the socket (every later wait would never end). */
  readonly closed: Promise<never>
  close(): Promise<void>
}

/** The publish time a structured CloudEvent's `data` carries; undefined for any other event. */
function stampOf(raw: RawData): number | undefined {
  // Text frames arrive as one Buffer (binaryType 'nodebuffer'); the other shapes for completeness.
  const bytes = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
  try {
    const { data } = JSON.parse(bytes.toString()) as { data?: { t?: unknown } }
    return typeof data?.t === 'number' ? data.t : undefined
  } catch {
    return undefined
  }
}

/**
 * Opens the stream at `apiUrl` (http://host:port) for `tenant` with `query` (filters, `from`), and
 * resolves once the server accepted the upgrade: its subscription is then in place.
 */
export async function openEventSocket(
  apiUrl: string,
  tenant: string,
  token: string,
  query: Readonly<Record<string, string>> = {},
): Promise<EventSocket> {
  const url = new URL(`/api/v1/tenants/${encodeURIComponent(tenant)}/events`, apiUrl.replace(/^http/, 'ws'))
  for (const [name, value] of Object.entries(query)) url.searchParams.append(name, value)
  const ws = new WebSocket(url, ['cloudevents.json'], { headers: { authorization: `Bearer ${token}` } })
  let wanted = 0
  let received = 0
  let latencies: number[] | undefined
  let done = Promise.withResolvers<void>()
  const closed = Promise.withResolvers<never>()
  // Nobody may be waiting when it closes: never an unhandled rejection.
  closed.promise.catch(() => undefined)
  ws.on('message', (raw: RawData) => {
    const at = performance.now()
    // Latency runs count stamped events only (the probe is stamped too; connection events are not).
    const t = stampOf(raw)
    if (t === undefined) return
    latencies?.push(at - t)
    if (++received === wanted) done.resolve()
  })
  ws.on('close', (code, reason) =>
    closed.reject(new BenchError(`websocket: closed by the server (${code} ${reason.toString()})`)),
  )
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        reject(new BenchError(`websocket: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString()}`)),
      )
    })
  })
  try {
    await withTimeout(opened, OPEN_TIMEOUT_MS, `websocket: ${url.pathname} not open in time`)
  } catch (err) {
    ws.terminate()
    throw err
  }
  ws.on('error', () => undefined)
  return {
    expect(events, into) {
      wanted = events
      received = 0
      latencies = into
      done = Promise.withResolvers<void>()
      return done.promise
    },
    closed: closed.promise,
    close() {
      if (ws.readyState === ws.CLOSED) return Promise.resolve()
      return new Promise((resolve) => {
        ws.once('close', () => resolve())
        ws.close(1000, 'bench done')
      })
    },
  }
}
