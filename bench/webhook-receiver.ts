// The webhook benchmarks' receiver: a local node:http server answering 204 to every POST, counting
// requests and, when asked, the latency from the publish time each body carries in `t`.
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Bytes of each event's JSON data, which is the body of a binary-mode webhook. */
export const BODY_BYTES = 256

/** JSON data of exactly BODY_BYTES with the publish time (performance.now()) in `t`. */
export function stampedBody(t: number, n: number): Buffer {
  const head = `{"t":${t},"n":${n},"pad":"`
  return Buffer.from(`${head}${'x'.repeat(BODY_BYTES - head.length - 2)}"}`)
}

/** The publish time a stamped body carries; undefined for any other body. */
export function stampOf(body: Buffer): number | undefined {
  try {
    const { t } = JSON.parse(body.toString()) as { t?: unknown }
    return typeof t === 'number' ? t : undefined
  } catch {
    return undefined
  }
}

/** The receiver: its URL, and a wait for the next `events` requests. */
export interface Receiver {
  readonly url: string
  /** Resets the count; resolves once `events` more requests have arrived. */
  expect(events: number, latencies?: number[]): Promise<void>
  close(): Promise<void>
}

export async function startReceiver(): Promise<Receiver> {
  let wanted = 0
  let received = 0
  let latencies: number[] | undefined
  let done = Promise.withResolvers<void>()
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const at = performance.now()
      res.writeHead(204).end()
      if (latencies !== undefined) {
        // Latency runs count stamped bodies only (a device's connection events are not).
        const t = stampOf(Buffer.concat(chunks))
        if (t === undefined) return
        latencies.push(at - t)
      }
      if (++received === wanted) done.resolve()
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    expect(events, into) {
      wanted = events
      received = 0
      latencies = into
      done = Promise.withResolvers<void>()
      return done.promise
    },
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
