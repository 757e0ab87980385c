// The policy of tenant-chosen URLs (core/outbound.ts) against a real local server: the fetch the
// OIDC verifier uses refuses non-public literals and names before connecting, follows no redirect,
// and reads a bounded answer; the guarded lookup hands public answers through.
import type { Server } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  TargetRefusedError,
  createTargetFetch,
  guardedLookup,
  targetHostProblem,
} from '../../core/outbound.ts'
import { PUBLIC_ADDRESSES, SPECIAL_ADDRESSES } from '../fixtures/special-addresses.ts'

let server: Server
let port = 0
let connections = 0
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/keys') {
      res.end(JSON.stringify({ keys: [] }))
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/keys' })
      res.end()
    } else {
      res.end('x'.repeat(10_000))
    }
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('targetHostProblem', () => {
  it.each(SPECIAL_ADDRESSES)('refuses the literal host of %s (%s)', (_range, address) => {
    expect(targetHostProblem(address.includes(':') ? `[${address}]` : address)).toMatch(
      /TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true/,
    )
  })

  it('refuses localhost names and passes public literals and other names', () => {
    for (const name of ['localhost', 'LocalHost.', 'x.localhost'])
      expect(targetHostProblem(name)).toBeDefined()
    for (const name of ['8.8.8.8', '[2606:4700::1111]', 'id.example.com', 'localhost.example.com']) {
      expect(targetHostProblem(name), name).toBeUndefined()
    }
  })
})

describe('guardedLookup', () => {
  const lookup = (answer: string, all: boolean) =>
    new Promise<unknown>((resolve, reject) => {
      const family = answer.includes(':') ? 6 : 4
      guardedLookup({ allowPrivate: false, resolve: () => Promise.resolve([{ address: answer, family }]) })(
        'name.example.test',
        { all },
        (err, address) => (err === null ? resolve(address) : reject(err)),
      )
    })

  it.each(PUBLIC_ADDRESSES)('hands %s through', async (address) => {
    expect(await lookup(address, false)).toBe(address)
    expect(await lookup(address, true)).toEqual([{ address, family: address.includes(':') ? 6 : 4 }])
  })

  it('fails with TargetRefusedError for a special address', async () => {
    await expect(lookup('169.254.169.254', false)).rejects.toBeInstanceOf(TargetRefusedError)
  })
})

describe('createTargetFetch', () => {
  const allowed = createTargetFetch({ allowPrivate: true, maxBodyBytes: 1024 })

  it('answers as fetch does', async () => {
    const response = await allowed(`http://127.0.0.1:${port}/keys`, {
      headers: { accept: 'application/json' },
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ keys: [] })
  })

  it('follows no redirect', async () => {
    const response = await allowed(`http://127.0.0.1:${port}/moved`)
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe('/keys')
  })

  it('refuses an answer larger than its bound', async () => {
    await expect(allowed(`http://127.0.0.1:${port}/big`)).rejects.toThrow(/larger than 1024 bytes/)
  })

  it('refuses a loopback literal or a name resolving to loopback without connecting', async () => {
    const refused = createTargetFetch({
      allowPrivate: false,
      maxBodyBytes: 1024,
      resolve: () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]),
    })
    const before = connections
    await expect(refused(`http://127.0.0.1:${port}/keys`)).rejects.toBeInstanceOf(TargetRefusedError)
    await expect(refused(`http://localhost:${port}/keys`)).rejects.toBeInstanceOf(TargetRefusedError)
    await expect(refused(`http://keys.example.test:${port}/keys`)).rejects.toThrow(
      'keys.example.test resolves to a non-public address',
    )
    expect(connections).toBe(before)
  })
})
