// Device, credential, password and API token routes over real HTTP: CRUD with ETags and If-Match,
// pagination, the label filter, secrets shown once, and roles of API tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness } from './harness.ts'
import { itemIds, startApi } from './harness.ts'

let api: ApiHarness
const T = '/api/v1/tenants/plant'
beforeAll(async () => {
  api = await startApi()
  expect((await api.call('POST', '/api/v1/tenants', { body: { id: 'plant' } })).status).toBe(201)
})
afterAll(async () => api.close())

const ids = itemIds

describe('devices', () => {
  it('creates, reads, changes and deletes a device with ETags and If-Match', async () => {
    const created = await api.call('POST', `${T}/devices`, {
      body: { id: 'meter:1', labels: { site: 'north' }, gateways: ['gw-1'] },
    })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe('/api/v1/tenants/plant/devices/meter%3A1')
    expect(created.headers.get('etag')).toBe('"1"')
    expect(created.body).toMatchObject({
      tenant: 'plant',
      id: 'meter:1',
      enabled: true,
      labels: { site: 'north' },
      gateways: ['gw-1'],
      lastSeen: null,
    })
    const read = await api.call('GET', created.headers.get('location')!)
    expect(read.body).toEqual(created.body)
    const patched = await api.call('PATCH', `${T}/devices/meter:1`, {
      headers: { 'if-match': '"1"' },
      body: { enabled: false },
    })
    expect(patched.status).toBe(200)
    expect(patched.headers.get('etag')).toBe('"2"')
    expect(patched.body).toMatchObject({ enabled: false, labels: { site: 'north' }, version: 2 })
    const stale = await api.call('DELETE', `${T}/devices/meter:1`, { headers: { 'if-match': '"1"' } })
    expect(stale.status).toBe(412)
    expect((await api.call('GET', `${T}/devices/meter:1`)).status).toBe(200)
    expect(
      (await api.call('DELETE', `${T}/devices/meter:1`, { headers: { 'if-match': '"2"' } })).status,
    ).toBe(204)
    const gone = await api.call('GET', `${T}/devices/meter:1`)
    expect(gone.status).toBe(404)
    expect(gone.body.code).toBe('REGISTRY_NOT_FOUND')
    expect((await api.call('POST', `${T}/devices`, { body: { id: 'twice' } })).status).toBe(201)
    expect((await api.call('POST', `${T}/devices`, { body: { id: 'twice' } })).status).toBe(409)
    expect((await api.call('POST', '/api/v1/tenants/nowhere/devices', { body: { id: 'x' } })).status).toBe(
      404,
    )
  })

  it('pages devices in id order and filters them by labels', async () => {
    for (let i = 0; i < 7; i++) {
      const labels = {
        fleet: 'f1',
        site: i % 2 === 0 ? 'north' : 'south',
        ...(i === 4 ? { kind: 'meter' } : {}),
      }
      expect((await api.call('POST', `${T}/devices`, { body: { id: `pg-${i}`, labels } })).status).toBe(201)
    }
    const first = await api.call('GET', `${T}/devices?limit=3&label=fleet=f1`)
    expect(ids(first)).toEqual(['pg-0', 'pg-1', 'pg-2'])
    expect(first.body.next).toEqual(expect.any(String))
    const second = await api.call(
      'GET',
      `${T}/devices?limit=3&label=fleet=f1&after=${encodeURIComponent(String(first.body.next))}`,
    )
    expect(ids(second)).toEqual(['pg-3', 'pg-4', 'pg-5'])
    const third = await api.call(
      'GET',
      `${T}/devices?limit=3&label=fleet=f1&after=${encodeURIComponent(String(second.body.next))}`,
    )
    expect(ids(third)).toEqual(['pg-6'])
    expect(third.body.next).toBeNull()
    expect(ids(await api.call('GET', `${T}/devices?label=site=north&label=fleet=f1`))).toEqual([
      'pg-0',
      'pg-2',
      'pg-4',
      'pg-6',
    ])
    expect(ids(await api.call('GET', `${T}/devices?label=site=north,kind=meter`))).toEqual(['pg-4'])
    expect(ids(await api.call('GET', `${T}/devices?label=site=west`))).toEqual([])
  })

  it('sets a device password, shown only as a credential without its hash', async () => {
    await api.call('POST', `${T}/devices`, { body: { id: 'pw-dev' } })
    const set = await api.call('PUT', `${T}/devices/pw-dev/password`, { body: { password: 'correct horse' } })
    expect(set.status).toBe(200)
    expect(set.body).toMatchObject({ type: 'password', tenant: 'plant', device: 'pw-dev', enabled: true })
    expect(set.headers.get('etag')).toMatch(/^"\d+"$/)
    expect(set.text).not.toMatch(/correct horse|scrypt|hash/i)
    const again = await api.call('PUT', `${T}/devices/pw-dev/password`, {
      body: { password: 'battery staple' },
    })
    expect(again.body.id).toBe(set.body.id)
    const result = await api.auth.device.byPassword('pw-dev@plant', 'battery staple')
    expect(result).toMatchObject({ ok: true })
  })
})

describe('credentials', () => {
  it('creates each type, returning a generated secret once, and never shows it again', async () => {
    await api.call('POST', `${T}/devices`, { body: { id: 'cred-dev' } })
    const C = `${T}/devices/cred-dev/credentials`
    const token = await api.call('POST', C, { body: { type: 'token' } })
    expect(token.status).toBe(201)
    expect(token.body.secret).toMatch(/^tdt_/)
    expect(token.body.credential).toMatchObject({ type: 'token', device: 'cred-dev' })
    expect(token.headers.get('location')).toBe(`${C}/${token.body.credential.id}`)
    const psk = await api.call('POST', C, { body: { type: 'psk' } })
    expect(psk.body.secret).toMatch(/^[0-9a-f]{32,128}$/)
    expect(psk.body.credential).toMatchObject({ type: 'psk', identity: 'cred-dev@plant' })
    const cn = await api.call('POST', C, { body: { type: 'x509', subjectCn: 'cred-dev.plant' } })
    expect(cn.body.credential).toMatchObject({ type: 'x509', match: 'cn', subjectCn: 'cred-dev.plant' })
    expect(cn.body.secret).toBeUndefined()
    const fp = await api.call('POST', C, { body: { type: 'x509', fingerprint: 'AB'.repeat(32) } })
    expect(fp.body.credential).toMatchObject({
      type: 'x509',
      match: 'fingerprint',
      fingerprint: 'ab'.repeat(32),
    })
    const pw = await api.call('POST', C, { body: { type: 'password', password: 'swordfish!' } })
    expect(pw.status).toBe(201)
    expect((await api.call('POST', C, { body: { type: 'password', password: 'another one' } })).status).toBe(
      409,
    )

    const list = await api.call('GET', C)
    expect(list.body.items).toHaveLength(5)
    expect(list.body.next).toBeNull()
    expect(list.text).not.toContain(token.body.secret)
    expect(list.text).not.toContain(psk.body.secret)
    expect(list.text).not.toMatch(/Hash|Encrypted/)
    const paged = await api.call('GET', `${C}?limit=2`)
    expect(paged.body.items).toHaveLength(2)
    const rest = await api.call('GET', `${C}?limit=10&after=${paged.body.next}`)
    expect([...ids(paged), ...ids(rest)]).toEqual(ids(list))

    const one = await api.call('GET', `${C}/${token.body.credential.id}`)
    expect(one.body).toEqual(token.body.credential)
    expect(one.headers.get('etag')).toBe('"1"')
    expect(await api.auth.device.byToken(String(token.body.secret))).toMatchObject({ ok: true })
  })

  it('disables and deletes a credential with If-Match', async () => {
    await api.call('POST', `${T}/devices`, { body: { id: 'cred-2' } })
    const C = `${T}/devices/cred-2/credentials`
    const created = await api.call('POST', C, { body: { type: 'token' } })
    const url = `${C}/${created.body.credential.id}`
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString()
    const patched = await api.call('PATCH', url, {
      headers: { 'if-match': '"1"' },
      body: { enabled: false, expiresAt },
    })
    expect(patched.status).toBe(200)
    expect(patched.body).toMatchObject({ enabled: false, expiresAt, version: 2 })
    expect(
      (await api.call('PATCH', url, { headers: { 'if-match': '"1"' }, body: { enabled: true } })).status,
    ).toBe(412)
    expect((await api.call('DELETE', url, { headers: { 'if-match': '"1"' } })).status).toBe(412)
    expect((await api.call('DELETE', url, { headers: { 'if-match': '"2"' } })).status).toBe(204)
    expect((await api.call('GET', url)).status).toBe(404)
  })
})

describe('API tokens', () => {
  it('creates a token shown once, lists and reads it without the secret, and revokes it', async () => {
    const created = await api.call('POST', `${T}/tokens`, { body: { name: 'dashboard', role: 'reader' } })
    expect(created.status).toBe(201)
    const { token, secret } = created.body
    expect(secret).toMatch(/^tat_/)
    expect(token).toMatchObject({ tenant: 'plant', name: 'dashboard', role: 'reader' })
    expect(created.headers.get('location')).toBe(`${T}/tokens/${token.id}`)
    const list = await api.call('GET', `${T}/tokens`)
    expect(ids(list)).toContain(token.id)
    expect(list.text).not.toContain(secret)
    expect((await api.call('GET', `${T}/tokens/${token.id}`)).body).toEqual(token)
    expect((await api.call('GET', `${T}/devices`, { token: secret })).status).toBe(200)
    expect(
      (await api.call('DELETE', `${T}/tokens/${token.id}`, { headers: { 'if-match': '"5"' } })).status,
    ).toBe(412)
    expect((await api.call('DELETE', `${T}/tokens/${token.id}`)).status).toBe(204)
    await api.settle()
    const revoked = await api.call('GET', `${T}/devices`, { token: secret })
    expect(revoked.status).toBe(401)
    expect(revoked.headers.get('www-authenticate')).toContain('Bearer')
  })

  it('pages API tokens', async () => {
    for (let i = 0; i < 3; i++)
      await api.call('POST', `${T}/tokens`, { body: { name: `t${i}`, role: 'reader' } })
    const first = await api.call('GET', `${T}/tokens?limit=2`)
    expect(first.body.items).toHaveLength(2)
    const rest = await api.call(
      'GET',
      `${T}/tokens?limit=1000&after=${encodeURIComponent(String(first.body.next))}`,
    )
    expect(rest.body.next).toBeNull()
    expect(new Set([...ids(first), ...ids(rest)]).size).toBe(first.body.items.length + rest.body.items.length)
  })

  it.each([
    ['reader', { get: 200, writeDevice: 403, tokens: 403 }],
    ['manager', { get: 200, writeDevice: 201, tokens: 403 }],
    ['admin', { get: 200, writeDevice: 201, tokens: 200 }],
  ] as const)('gives a %s token its role', async (role, expected) => {
    const secret = (await api.call('POST', `${T}/tokens`, { body: { name: role, role } })).body
      .secret as string
    expect((await api.call('GET', `${T}/devices`, { token: secret })).status).toBe(expected.get)
    const write = await api.call('POST', `${T}/devices`, { token: secret, body: { id: `by-${role}` } })
    expect(write.status).toBe(expected.writeDevice)
    expect((await api.call('GET', `${T}/tokens`, { token: secret })).status).toBe(expected.tokens)
    expect(
      (await api.call('POST', '/api/v1/tenants', { token: secret, body: { id: `t-${role}` } })).status,
    ).toBe(403)
  })
})
