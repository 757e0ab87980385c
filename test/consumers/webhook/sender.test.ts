// The HTTP sender against a real local receiver: classification of answers, Retry-After, no
// redirects, the timeout, a bounded answer read, and the private-address guard on the URL and on
// the address each connection dials.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { classify, createHttpSender, parseRetryAfter } from '../../../consumers/webhook/sender.ts'
import type { HttpWebhookSender } from '../../../consumers/webhook/sender.ts'
import { SPECIAL_ADDRESSES } from '../../fixtures/special-addresses.ts'

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

describe('classify and parseRetryAfter', () => {
  const now = Date.parse('2026-03-01T12:00:00Z')
  it('sorts statuses into delivered, retry, gone and rejected', () => {
    expect(classify(200, undefined, now).kind).toBe('delivered')
    expect(classify(204, undefined, now).kind).toBe('delivered')
    expect(classify(410, undefined, now).kind).toBe('gone')
    for (const status of [408, 429, 500, 502, 503, 504])
      expect(classify(status, undefined, now).kind).toBe('retry')
    for (const status of [301, 302, 400, 401, 403, 404, 413, 422])
      expect(classify(status, undefined, now).kind).toBe('rejected')
  })

  it('reads Retry-After as seconds or an HTTP date, on 429 and 503 only', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
    expect(classify(429, '7', now)).toMatchObject({ kind: 'retry', retryAfterMs: 7000, status: 429 })
    expect(classify(503, '2', now)).toMatchObject({ kind: 'retry', retryAfterMs: 2000 })
    expect(classify(500, '2', now)).toMatchObject({ kind: 'retry', retryAfterMs: undefined })
  })
})

describe('HTTP webhook sender', () => {
  let server: Server
  let base: string
  let handler: Handler = (_req, res) => res.end()
  const received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> =
    []
  let sender: HttpWebhookSender
  const options = { timeoutMs: 2000, signal: new AbortController().signal }
  const post = (path = '/hook', body = '{"a":1}') =>
    sender.send(
      {
        url: `${base}${path}`,
        headers: { 'content-type': 'application/json', 'x-custom': 'yes' },
        body: Buffer.from(body),
      },
      options,
    )

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: body.toString(),
        })
        handler(req, res, body)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    sender = createHttpSender({ allowPrivate: true, maxResponseBytes: 1024 })
  })
  afterEach(() => {
    received.length = 0
    handler = (_req, res) => res.end()
  })
  afterAll(async () => {
    sender.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('POSTs the body and headers and reports a 2xx as delivered', async () => {
    handler = (_req, res) => res.writeHead(202).end('thanks')
    expect(await post()).toEqual({ kind: 'delivered', status: 202 })
    expect(received[0]).toMatchObject({ method: 'POST', body: '{"a":1}' })
    expect(received[0]?.headers['x-custom']).toBe('yes')
    expect(received[0]?.headers['content-length']).toBe('7')
  })

  it('honours Retry-After on 429 and 503', async () => {
    handler = (_req, res) => res.writeHead(429, { 'retry-after': '3' }).end()
    expect(await post()).toMatchObject({ kind: 'retry', status: 429, retryAfterMs: 3000 })
    handler = (_req, res) => res.writeHead(503).end()
    expect(await post()).toMatchObject({ kind: 'retry', status: 503, retryAfterMs: undefined })
  })

  it('answers 410 with gone and other 4xx with rejected', async () => {
    handler = (_req, res) => res.writeHead(410).end()
    expect(await post()).toEqual({ kind: 'gone', status: 410 })
    handler = (_req, res) => res.writeHead(400).end('bad')
    expect(await post()).toMatchObject({ kind: 'rejected', status: 400 })
  })

  it('does not follow redirects', async () => {
    handler = (req, res) => {
      if (req.url === '/hook') res.writeHead(307, { location: `${base}/elsewhere` }).end()
      else res.writeHead(200).end()
    }
    expect(await post()).toMatchObject({ kind: 'rejected', status: 307 })
    expect(received.map((r) => r.url)).toEqual(['/hook'])
  })

  it('stops reading a large answer at the bound', async () => {
    handler = (_req, res) => {
      res.writeHead(200)
      res.write(Buffer.alloc(64 * 1024, 'x'))
      // Never ends: only the bound lets the send finish.
    }
    expect(await post()).toEqual({ kind: 'delivered', status: 200 })
  })

  it('retries after the timeout passes without an answer', async () => {
    handler = () => undefined
    const outcome = await sender.send(
      { url: `${base}/slow`, headers: {}, body: Buffer.from('x') },
      { timeoutMs: 50, signal: options.signal },
    )
    expect(outcome).toMatchObject({ kind: 'retry' })
    expect(outcome.kind === 'retry' && outcome.error).toMatch(/timed out after 50 ms/)
  })

  it('retries when the connection is refused', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    expect(
      await sender.send({ url: `http://127.0.0.1:${port}/`, headers: {}, body: Buffer.alloc(0) }, options),
    ).toMatchObject({
      kind: 'retry',
      error: expect.stringMatching(/ECONNREFUSED/),
    })
  })

  it('refuses loopback and private targets unless allowed, by literal or by name', async () => {
    const guarded = createHttpSender()
    try {
      const port = (server.address() as AddressInfo).port
      for (const url of [
        `http://127.0.0.1:${port}/`,
        `http://localhost:${port}/`,
        `http://[::1]:${port}/`,
        'http://169.254.169.254/latest/meta-data',
      ]) {
        expect(await guarded.send({ url, headers: {}, body: Buffer.alloc(0) }, options)).toMatchObject({
          kind: 'rejected',
          status: 0,
        })
      }
      expect(received).toHaveLength(0)
      expect(
        await guarded.send({ url: 'ftp://example.com/', headers: {}, body: Buffer.alloc(0) }, options),
      ).toMatchObject({
        kind: 'rejected',
        error: 'unsupported scheme ftp:',
      })
    } finally {
      guarded.close()
    }
  })

  // A name the URL check lets through, resolving at delivery to an address of every special range:
  // refused before connecting (a loopback answer would otherwise reach this very receiver).
  it.each(SPECIAL_ADDRESSES)(
    'refuses a name that resolves to %s (%s) when it connects',
    async (_range, address) => {
      const port = (server.address() as AddressInfo).port
      const resolve = (hostname: string) =>
        Promise.resolve(
          hostname === 'hook.example.test' ? [{ address, family: address.includes(':') ? 6 : 4 }] : [],
        )
      const guarded = createHttpSender({ resolve })
      try {
        const url = `http://hook.example.test:${port}/hook`
        expect(await guarded.send({ url, headers: {}, body: Buffer.from('x') }, options)).toEqual({
          kind: 'rejected',
          status: 0,
          error: 'hook.example.test resolves to a non-public address',
        })
        expect(received).toHaveLength(0)
      } finally {
        guarded.close()
      }
    },
  )

  it('refuses a name when any one of its addresses is not public', async () => {
    const port = (server.address() as AddressInfo).port
    const answers: Record<string, Array<{ address: string; family: number }>> = {
      'mixed.example.test': [
        { address: '8.8.8.8', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
    }
    const guarded = createHttpSender({ resolve: (hostname) => Promise.resolve(answers[hostname] ?? []) })
    try {
      const mixed = `http://mixed.example.test:${port}/hook`
      expect(await guarded.send({ url: mixed, headers: {}, body: Buffer.alloc(0) }, options)).toMatchObject({
        kind: 'rejected',
      })
      expect(received).toHaveLength(0)
    } finally {
      guarded.close()
    }
    // The control: allowed private targets, the same name reaches this receiver.
    const allowed = createHttpSender({
      allowPrivate: true,
      resolve: () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]),
    })
    try {
      const url = `http://mixed.example.test:${port}/hook`
      expect(await allowed.send({ url, headers: {}, body: Buffer.alloc(0) }, options)).toMatchObject({
        kind: 'delivered',
      })
      expect(received).toHaveLength(1)
    } finally {
      allowed.close()
    }
  })
})
