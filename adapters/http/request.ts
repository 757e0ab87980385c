// What the routes read of a request: headers and the body with its limit. On the Node listener they
// come straight from the IncomingMessage (its parsed headers, its data events), because building
// the fetch Request and its web stream costs more than the rest of a device request (measured:
// docs/benchmarks.md); elsewhere (app.request() in tests) they come from the fetch Request.
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'

export type BodyRead = { readonly ok: true; readonly body: Buffer } | { readonly ok: false }

export interface RequestSource {
  /**
   * A header by lowercase name. Repeated ones are joined with ", " (RFC 9110 §5.3), except those
   * that cannot repeat (Authorization, Content-Type, Content-Length ...): Node keeps the first.
   */
  header(name: string): string | undefined
  /** Reads the body up to `maxBytes`; past that it stops (answer with Connection: close). */
  readBody(maxBytes: number): Promise<BodyRead>
}

const EMPTY = Buffer.alloc(0)

export function incomingSource(incoming: IncomingMessage): RequestSource {
  return {
    header(name) {
      const value = incoming.headers[name]
      return Array.isArray(value) ? value.join(', ') : value
    },
    readBody(maxBytes) {
      // Read already (by an earlier call): nothing more will come.
      if (incoming.readableEnded) return Promise.resolve({ ok: true, body: EMPTY })
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let total = 0
        const done = (): void => {
          incoming.off('data', onData)
          incoming.off('end', onEnd)
          incoming.off('error', onError)
        }
        const onData = (chunk: Buffer): void => {
          total += chunk.length
          if (total > maxBytes) {
            // Stop collecting: the 413 says Connection: close, so Node discards the rest and closes.
            done()
            resolve({ ok: false })
            return
          }
          chunks.push(chunk)
        }
        const onEnd = (): void => {
          done()
          resolve({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) })
        }
        const onError = (err: Error): void => {
          done()
          reject(err)
        }
        incoming.on('data', onData)
        incoming.on('end', onEnd)
        incoming.on('error', onError)
      })
    },
  }
}

export function fetchSource(request: Request): RequestSource {
  return {
    header: (name) => request.headers.get(name) ?? undefined,
    async readBody(maxBytes) {
      if (request.body === null) return { ok: true, body: EMPTY }
      const chunks: Uint8Array[] = []
      let total = 0
      const reader: ReadableStreamDefaultReader<Uint8Array> = request.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        total += value.byteLength
        if (total > maxBytes) {
          await reader.cancel().catch(() => undefined)
          return { ok: false }
        }
        chunks.push(value)
      }
      return { ok: true, body: Buffer.concat(chunks, total) }
    },
  }
}

/** The request's source: the Node IncomingMessage when @hono/node-server serves it. */
export function requestSource(c: Context): RequestSource {
  const env = c.env as { incoming?: IncomingMessage } | undefined
  return env?.incoming !== undefined && typeof env.incoming.on === 'function'
    ? incomingSource(env.incoming)
    : fetchSource(c.req.raw)
}
