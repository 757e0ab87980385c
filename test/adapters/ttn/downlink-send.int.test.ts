// The downlink sender against a real HTTP server on loopback standing in for TTN's downlink queue:
// what TTN receives, its answers as delivery results, a bounded wait, and the address checks that
// keep a downlink URL from reaching an internal host unless private addresses are allowed.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { DownlinkSender } from '../../../adapters/http/ttn/downlink-send.ts'
import { createDownlinkSender, downlinkRequest } from '../../../adapters/http/ttn/downlink-send.ts'

interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

const PATH = '/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down'
let server: Server
let origin = ''
let received: Received[] = []
/** How the fake TTN answers the next call; `hang` never answers. */
let answer: { status: number } | 'hang' = { status: 200 }
const hanging: ServerResponse[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      })
      if (answer === 'hang') return void hanging.push(res)
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  for (const res of hanging) res.destroy()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})
beforeEach(() => {
  received = []
  answer = { status: 200 }
})

const target = () => ({
  push: `${origin}${PATH}/push`,
  replace: `${origin}${PATH}/replace`,
  apiKey: 'NNSXS.INTTESTKEY.SECRET',
  seenAt: new Date(),
})

function request(downlink?: 'push' | 'replace', t = target()) {
  const built = downlinkRequest(t, { id: 'cmd-1', payload: Buffer.from('on'), fport: 7, downlink })
  if ('kind' in built) throw new Error(built.reason)
  return built
}

async function withSender<T>(
  options: Parameters<typeof createDownlinkSender>[0],
  use: (s: DownlinkSender) => Promise<T>,
): Promise<T> {
  const sender = createDownlinkSender(options)
  try {
    return await use(sender)
  } finally {
    sender.close()
  }
}

describe('downlink sender (loopback TTN, private addresses allowed)', () => {
  it('POSTs the downlink as TTN expects it and takes 200 as delivered', async () => {
    const result = await withSender({ allowPrivate: true }, (s) => s.send(request()))
    expect(result).toEqual({ kind: 'delivered' })
    expect(received).toHaveLength(1)
    const call = received[0]!
    expect(call.method).toBe('POST')
    expect(call.url).toBe(`${PATH}/push`)
    expect(call.headers['authorization']).toBe('Bearer NNSXS.INTTESTKEY.SECRET')
    expect(call.headers['content-type']).toBe('application/json')
    expect(JSON.parse(call.body)).toEqual({
      downlinks: [
        { f_port: 7, frm_payload: 'b24=', priority: 'NORMAL', correlation_ids: ['tributary:command:cmd-1'] },
      ],
    })
  })

  it('replaces the queue when the command asks for it', async () => {
    await withSender({ allowPrivate: true }, (s) => s.send(request('replace')))
    expect(received.map((r) => r.url)).toEqual([`${PATH}/replace`])
  })

  it('fails on a 4xx answer and keeps the command queued on a 5xx', async () => {
    await withSender({ allowPrivate: true }, async (s) => {
      answer = { status: 403 }
      expect(await s.send(request())).toEqual({ kind: 'failed', reason: 'ttn-403' })
      answer = { status: 503 }
      expect(await s.send(request())).toEqual({ kind: 'gone' })
      answer = { status: 429 }
      expect(await s.send(request())).toEqual({ kind: 'gone' })
    })
    expect(received).toHaveLength(3)
  })

  it('gives up on an answer that does not come within its timeout, and on a closed port', async () => {
    answer = 'hang'
    const result = await withSender({ allowPrivate: true, timeoutMs: 300 }, (s) => s.send(request()))
    expect(result).toEqual({ kind: 'gone' })
    expect(received).toHaveLength(1)
    const closed = { ...target(), push: 'http://127.0.0.1:1/api/v3/x' }
    expect(await withSender({ allowPrivate: true }, (s) => s.send(request('push', closed)))).toEqual({
      kind: 'gone',
    })
  })
})

describe('downlink sender (private addresses refused)', () => {
  it('refuses a loopback URL without connecting', async () => {
    const result = await withSender({ allowPrivate: false }, (s) => s.send(request()))
    expect(result).toEqual({ kind: 'failed', reason: 'ttn-url-refused' })
    expect(received).toHaveLength(0)
  })

  it('refuses a name that resolves to a private address when it dials', async () => {
    const port = (server.address() as AddressInfo).port
    const named = {
      ...target(),
      push: `https://ttn.example.test:${port}${PATH}/push`,
      replace: `https://ttn.example.test:${port}${PATH}/replace`,
    }
    const resolve = (hostname: string) =>
      Promise.resolve(hostname === 'ttn.example.test' ? [{ address: '127.0.0.1', family: 4 }] : [])
    const result = await withSender({ allowPrivate: false, resolve }, (s) => s.send(request('push', named)))
    expect(result).toEqual({ kind: 'failed', reason: 'ttn-url-refused' })
    expect(received).toHaveLength(0)
  })
})
