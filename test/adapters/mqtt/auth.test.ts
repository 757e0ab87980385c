// Who is connecting, decided in order: a PSK the handshake proved, a client certificate, a bearer
// token, a password; with a double of the registry's DeviceAuthenticator (the port).
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { AnchorIndex } from '../../../adapters/mqtt/anchors.ts'
import { createConnectAuthenticator, parseUsername } from '../../../adapters/mqtt/auth.ts'
import { newConnection } from '../../../adapters/mqtt/connection.ts'
import type { DeviceAuthenticator, DeviceAuthResult } from '../../../core/registry/auth.ts'

const ok = (tenant: string, device: string, method: 'password' | 'token'): DeviceAuthResult => ({
  ok: true,
  tenant,
  device,
  method,
  credentialId: `${method}-id`,
})

function registryDouble(): { device: DeviceAuthenticator; calls: string[] } {
  const calls: string[] = []
  const device: DeviceAuthenticator = {
    async byPassword(username, password) {
      calls.push(`password ${username}`)
      return password === 'right'
        ? ok(username.split('@')[1]!, username.split('@')[0]!, 'password')
        : { ok: false, reason: 'bad-secret' }
    },
    async byToken(token) {
      calls.push('token')
      return token === 'tdt_good' ? ok('acme', 'tok', 'token') : { ok: false, reason: 'unknown' }
    },
    async byCertificate() {
      throw new Error('not in this test')
    },
    async trustAnchors() {
      return []
    },
    async byPsk() {
      return { ok: false, reason: 'unknown' }
    },
    async pskKey() {
      return undefined
    },
  }
  return { device, calls }
}

const anchors: AnchorIndex = { tenantsFor: () => [], load: async () => {}, refresh: async () => {} }
const plainConnection = () =>
  newConnection({ listener: 'mqtt', remote: '127.0.0.1:1', stream: new PassThrough() })

describe('parseUsername', () => {
  it.each([
    [undefined, {}],
    ['', {}],
    ['dev@acme', { device: 'dev', tenant: 'acme' }],
    ['@acme', { tenant: 'acme' }],
    ['a@b@acme', { device: 'a@b', tenant: 'acme' }],
    ['just-a-name', { device: 'just-a-name' }],
  ])('%j → %j', (username, parts) => {
    expect(parseUsername(username)).toEqual(parts)
  })
})

describe('createConnectAuthenticator', () => {
  it('takes a password with <device>@<tenant>', async () => {
    const { device, calls } = registryDouble()
    const auth = createConnectAuthenticator({ device, anchors })
    expect(await auth.authenticate(plainConnection(), 'dev@acme', Buffer.from('right'))).toEqual({
      ok: true,
      session: {
        tenant: 'acme',
        device: 'dev',
        method: 'password',
        credentialId: 'password-id',
        chain: undefined,
      },
    })
    expect(await auth.authenticate(plainConnection(), 'dev@acme', Buffer.from('wrong'))).toEqual({
      ok: false,
      reason: 'bad-secret',
    })
    expect(calls).toEqual(['password dev@acme', 'password dev@acme'])
  })

  it('takes a bearer token in the password field with an empty or matching username only', async () => {
    const { device } = registryDouble()
    const auth = createConnectAuthenticator({ device, anchors })
    const token = Buffer.from('tdt_good')
    expect(await auth.authenticate(plainConnection(), '', token)).toMatchObject({
      ok: true,
      session: { device: 'tok', method: 'token' },
    })
    expect(await auth.authenticate(plainConnection(), 'tok@acme', token)).toMatchObject({ ok: true })
    expect(await auth.authenticate(plainConnection(), 'other@acme', token)).toEqual({
      ok: false,
      reason: 'identity-mismatch',
    })
    expect(await auth.authenticate(plainConnection(), '@elsewhere', token)).toEqual({
      ok: false,
      reason: 'identity-mismatch',
    })
    expect(await auth.authenticate(plainConnection(), '', Buffer.from('tdt_bad'))).toEqual({
      ok: false,
      reason: 'unknown',
    })
  })

  it('refuses missing credentials and malformed usernames before asking the registry', async () => {
    const { device, calls } = registryDouble()
    const auth = createConnectAuthenticator({ device, anchors })
    expect(await auth.authenticate(plainConnection(), undefined, undefined)).toEqual({
      ok: false,
      reason: 'missing-credentials',
    })
    expect(await auth.authenticate(plainConnection(), 'dev@acme', undefined)).toEqual({
      ok: false,
      reason: 'missing-credentials',
    })
    expect(await auth.authenticate(plainConnection(), '', Buffer.from('right'))).toEqual({
      ok: false,
      reason: 'missing-credentials',
    })
    expect(await auth.authenticate(plainConnection(), 'dev@Not_A_Tenant', Buffer.from('right'))).toEqual({
      ok: false,
      reason: 'malformed',
    })
    expect(await auth.authenticate(plainConnection(), 'bad/device@acme', Buffer.from('right'))).toEqual({
      ok: false,
      reason: 'malformed',
    })
    expect(calls).toEqual([])
  })

  it('takes the device a PSK handshake proved, and refuses a username naming another', async () => {
    const { device, calls } = registryDouble()
    const auth = createConnectAuthenticator({ device, anchors })
    const conn = plainConnection()
    conn.psk = { tenant: 'acme', device: 'psk-1', credentialId: 'psk-id', identity: 'psk-1@acme' }
    expect(await auth.authenticate(conn, undefined, undefined)).toEqual({
      ok: true,
      session: { tenant: 'acme', device: 'psk-1', method: 'psk', credentialId: 'psk-id' },
    })
    expect(await auth.authenticate(conn, 'psk-1@acme', Buffer.from('ignored'))).toMatchObject({ ok: true })
    expect(await auth.authenticate(conn, 'psk-2@acme', undefined)).toEqual({
      ok: false,
      reason: 'identity-mismatch',
    })
    expect(calls).toEqual([])
  })
})
