// The HTTP adapter's own limits: the body read with its bound and the declared size. The per-device
// rate and last-seen writes all adapters share are tested in ../device-limits.test.ts.
import { createServer, request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { declaredTooLarge } from '../../../adapters/http/limits.ts'
import { fetchSource, incomingSource } from '../../../adapters/http/request.ts'

function streamOf(chunks: number[], onCancel?: () => void): Request {
  let i = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(new Uint8Array(chunks[i++]!).fill(7))
      else controller.close()
    },
    cancel: () => onCancel?.(),
  })
  return new Request('http://x/v1/a', { method: 'POST', body, duplex: 'half' })
}

describe('reading a fetch Request body', () => {
  it('reads a body up to the limit whole', async () => {
    const read = await fetchSource(streamOf([4, 4, 2])).readBody(10)
    expect(read.ok && read.body.length).toBe(10)
  })

  it('stops reading and cancels the stream past the limit', async () => {
    let cancelled = false
    const read = await fetchSource(streamOf([6, 6, 1_000_000], () => (cancelled = true))).readBody(10)
    expect(read.ok).toBe(false)
    expect(cancelled).toBe(true)
  })

  it('reads no body as an empty one, and headers by name', async () => {
    const source = fetchSource(new Request('http://x/v1/a', { method: 'POST', headers: { 'X-One': 'a' } }))
    const read = await source.readBody(10)
    expect(read.ok && read.body.length).toBe(0)
    expect(source.header('x-one')).toBe('a')
    expect(source.header('x-two')).toBeUndefined()
  })
})

describe('reading a Node request body', () => {
  /** Sends `chunks` to a real listener and returns what incomingSource read of them. */
  async function readOnServer(chunks: Buffer[], maxBytes: number) {
    let seen: { ok: boolean; length: number | undefined; header: string | undefined } | undefined
    const server = createServer((req: IncomingMessage, res) => {
      const source = incomingSource(req)
      void source.readBody(maxBytes).then((read) => {
        seen = {
          ok: read.ok,
          length: read.ok ? read.body.length : undefined,
          header: source.header('x-many'),
        }
        res.writeHead(read.ok ? 202 : 413, read.ok ? {} : { connection: 'close' })
        res.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          { port, host: '127.0.0.1', method: 'POST', path: '/v1/a', headers: { 'x-many': ['a', 'b'] } },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          },
        )
        // The server may close the connection while we still write: that is the point.
        req.on('error', (err: NodeJS.ErrnoException) =>
          err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
        )
        for (const chunk of chunks) req.write(chunk)
        req.end()
      })
      return { status, seen }
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  it('reads a chunked body up to the limit whole, and repeated headers joined', async () => {
    const { status, seen } = await readOnServer([Buffer.alloc(4), Buffer.alloc(6)], 10)
    expect(status).toBe(202)
    expect(seen).toEqual({ ok: true, length: 10, header: 'a, b' })
  })

  it('stops collecting past the limit', async () => {
    const { status, seen } = await readOnServer([Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(100_000)], 10)
    expect(status).toBe(413)
    expect(seen?.ok).toBe(false)
  })
})

describe('declaredTooLarge', () => {
  it('refuses on Content-Length alone when it is over the limit', () => {
    expect(declaredTooLarge('11', 10)).toBe(true)
    expect(declaredTooLarge('10', 10)).toBe(false)
    expect(declaredTooLarge(undefined, 10)).toBe(false)
    expect(declaredTooLarge('nonsense', 10)).toBe(false)
  })
})
