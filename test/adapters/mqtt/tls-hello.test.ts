// Reading the clear part of a TLS handshake: ClientHellos captured from Node's TLS client (with
// and without PSK suites), a TLS 1.3 ClientHello with a pre_shared_key identity built by hand
// (RFC 8446 §4.2.11), a PSK ClientKeyExchange (RFC 4279 §2), and the reader's bounds.
import { createServer } from 'node:net'
import { connect } from 'node:tls'
import type { ConnectionOptions } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import {
  clientKeyExchangeIdentity,
  createHandshakeReader,
  parseClientHello,
} from '../../../adapters/mqtt/tls-hello.ts'

const u16 = (n: number): number[] => [n >> 8, n & 0xff]
const u24 = (n: number): number[] => [n >> 16, (n >> 8) & 0xff, n & 0xff]
const handshake = (type: number, body: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, ...u24(body.length)]), body])
const record = (type: number, fragment: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, 3, 3, ...u16(fragment.length)]), fragment])

/** A TLS 1.3 ClientHello offering one external PSK identity. */
function helloWithPsk(identity: string): Buffer {
  const id = Buffer.from(identity)
  const identities = Buffer.from([...u16(id.length), ...id, 0, 0, 0, 0])
  const binders = Buffer.from([...u16(33), 32, ...Buffer.alloc(32, 7)])
  const psk = Buffer.concat([Buffer.from(u16(identities.length)), identities, binders])
  const sni = Buffer.from([0, 0, ...u16(4), 0, 2, 0, 0]) // a dummy extension before it
  const extensions = Buffer.concat([sni, Buffer.from([0, 41, ...u16(psk.length)]), psk])
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 1),
    Buffer.from([0]), // session id
    Buffer.from([...u16(4), 0x13, 0x01, 0x13, 0x03]), // TLS 1.3 suites only
    Buffer.from([1, 0]),
    Buffer.from(u16(extensions.length)),
    extensions,
  ])
  return handshake(1, body)
}

const servers: Array<ReturnType<typeof createServer>> = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

/** The first flight a real Node TLS client sends with these options. */
function capture(options: ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk)
        socket.destroy()
      })
    })
    servers.push(server)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number }
      connect({ host: '127.0.0.1', port: address.port, ...options }).on('error', () => undefined)
    })
  })
}

describe('createHandshakeReader and parseClientHello', () => {
  it('reads a real ClientHello without PSK', async () => {
    const reader = createHandshakeReader()
    const [hello] = reader.feed(await capture({ rejectUnauthorized: false }))
    expect(hello?.type).toBe(1)
    expect(parseClientHello(hello!)).toEqual({ offersPsk12: false })
  })

  it('sees the TLS 1.2 PSK suites a real PSK client offers', async () => {
    const bytes = await capture({
      maxVersion: 'TLSv1.2',
      ciphers: 'PSK-AES128-GCM-SHA256',
      pskCallback: () => ({ psk: Buffer.alloc(16), identity: 'dev@t' }),
    })
    const [hello] = createHandshakeReader().feed(bytes)
    expect(parseClientHello(hello!)).toEqual({ offersPsk12: true })
  })

  it('finds the TLS 1.3 PSK identity, even with the record split into single bytes', () => {
    const bytes = record(22, helloWithPsk('sensor-1@acme'))
    const reader = createHandshakeReader()
    const messages = [...bytes].flatMap((b) => reader.feed(Buffer.from([b])))
    expect(messages).toHaveLength(1)
    expect(parseClientHello(messages[0]!)).toEqual({ pskIdentity: 'sensor-1@acme', offersPsk12: false })
  })

  it('reassembles a handshake message spread over two records and stops at ChangeCipherSpec', () => {
    const hello = helloWithPsk('a@b')
    const reader = createHandshakeReader()
    const bytes = Buffer.concat([
      record(22, hello.subarray(0, 10)),
      record(22, hello.subarray(10)),
      record(20, Buffer.from([1])),
    ])
    expect(reader.feed(bytes).map((m) => m.type)).toEqual([1])
    expect(reader.state).toEqual({ done: true, tls: true })
    expect(reader.feed(record(22, handshake(16, Buffer.from([0, 1, 65]))))).toEqual([])
  })

  it('tells a connection that is not TLS, and gives up on garbage', () => {
    const plain = createHandshakeReader()
    expect(plain.feed(Buffer.from([0x10, 0x0c, 0, 4]))).toEqual([])
    expect(plain.state).toEqual({ done: true, tls: false })
    expect(parseClientHello({ type: 1, body: Buffer.from([3, 3, 1]) })).toBeUndefined()
    expect(parseClientHello({ type: 2, body: Buffer.alloc(50) })).toBeUndefined()
  })
})

describe('clientKeyExchangeIdentity', () => {
  it('reads the psk_identity a PSK ClientKeyExchange starts with', () => {
    const body = Buffer.concat([Buffer.from(u16(12)), Buffer.from('psk-1@tenant'), Buffer.from([0, 65, 4])])
    expect(clientKeyExchangeIdentity({ type: 16, body })).toBe('psk-1@tenant')
  })

  it('reads nothing from other messages or truncated ones', () => {
    expect(clientKeyExchangeIdentity({ type: 1, body: Buffer.from([0, 1, 65]) })).toBeUndefined()
    expect(clientKeyExchangeIdentity({ type: 16, body: Buffer.from([0, 9, 65]) })).toBeUndefined()
    expect(clientKeyExchangeIdentity({ type: 16, body: Buffer.from([0, 0]) })).toBeUndefined()
  })
})
