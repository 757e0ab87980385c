// The file routes of the management API over a real listener: files uploaded through the upload
// service are listed (pages, device and name prefix), read, downloaded byte for byte and deleted
// with their content; readers read and get download URLs, only managers delete.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blobKey } from '../../core/blobs/keys.ts'
import { createUploads } from '../../core/blobs/uploads.ts'
import type { ApiHarness } from './harness.ts'
import { DEVICE_HTTP_PORT, startApi } from './harness.ts'

const TENANT = 'filer'
let api: ApiHarness
let reader = ''
let manager = ''
const uploaded: Array<{ id: string; device: string; name: string; data: Buffer }> = []

beforeAll(async () => {
  api = await startApi()
  await api.registry.createTenant(TENANT, {})
  await api.registry.createDevice(TENANT, 'cam-1', {})
  await api.registry.createDevice(TENANT, 'cam-2', {})
  reader = (await api.registry.createApiToken(TENANT, { name: 'reader', role: 'reader' })).secret
  manager = (await api.registry.createApiToken(TENANT, { name: 'manager', role: 'manager' })).secret
  const uploads = createUploads({
    files: api.store.files,
    blobs: api.blobs,
    maxFileBytes: 1_000_000,
    tokenTtlMs: 60_000,
  })
  for (const [device, name] of [
    ['cam-1', 'logs/boot.txt'],
    ['cam-1', 'images/front door.jpg'],
    ['cam-2', 'logs/crash.txt'],
  ] as const) {
    const data = randomBytes(2_000)
    const issued = await uploads.issue({
      tenant: TENANT,
      device,
      name,
      size: data.length,
      contentType: 'image/jpeg',
    })
    await uploads.receive({
      fileId: issued.fileId,
      token: issued.token,
      body: Readable.from([data]),
      protocol: 'http',
    })
    uploaded.push({ id: issued.fileId, device, name, data })
  }
})

afterAll(async () => api.close())

const FILES = `/api/v1/tenants/${TENANT}/files`
const names = (reply: { body: { items: Array<{ name: string }> } }): string[] =>
  reply.body.items.map((f) => f.name).sort()

describe('file routes', () => {
  it('lists uploaded files page by page, by device and by name prefix', async () => {
    const first = await api.call('GET', `${FILES}?limit=2`)
    expect(first.status).toBe(200)
    expect(first.body.items).toHaveLength(2)
    const second = await api.call(
      'GET',
      `${FILES}?limit=2&after=${encodeURIComponent(first.body.next as string)}`,
    )
    expect(second.body.items).toHaveLength(1)
    expect(second.body.next).toBeNull()
    const ids = [...first.body.items, ...second.body.items].map((f: { id: string }) => f.id)
    expect(ids).toEqual(uploaded.map((f) => f.id).sort())

    const byDevice = await api.call('GET', `${FILES}?device=cam-2`, { token: reader })
    expect(names(byDevice)).toEqual(['logs/crash.txt'])
    const byName = await api.call('GET', `${FILES}?namePrefix=${encodeURIComponent('logs/')}`, {
      token: reader,
    })
    expect(names(byName)).toEqual(['logs/boot.txt', 'logs/crash.txt'])
  })

  it('gives a reader the metadata and the exact bytes of a file', async () => {
    const file = uploaded[1]!
    const meta = await api.call('GET', `${FILES}/${file.id}`, { token: reader })
    expect(meta.status).toBe(200)
    expect(meta.body).toMatchObject({
      tenant: TENANT,
      id: file.id,
      device: 'cam-1',
      name: 'images/front door.jpg',
      size: 2_000,
      sha256: createHash('sha256').update(file.data).digest('hex'),
      contentType: 'image/jpeg',
    })
    const response = await fetch(`${api.url}${FILES}/${file.id}/content`, {
      headers: { authorization: `Bearer ${reader}` },
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/octet-stream')
    expect(response.headers.get('content-disposition')).toBe(
      "attachment; filename*=UTF-8''images%2Ffront%20door.jpg",
    )
    expect(Buffer.from(await response.arrayBuffer()).equals(file.data)).toBe(true)
  })

  it('gives a reader a short-lived signed URL of the device HTTP listener for a file', async () => {
    const file = uploaded[2]!
    const reply = await api.call('GET', `${FILES}/${file.id}/url?expiresIn=120`, { token: reader })
    expect(reply.status).toBe(200)
    expect(reply.body.method).toBe('GET')
    const url = new URL(reply.body.url as string)
    // The listener's address as this client reached the API.
    expect(url.origin).toBe(`http://127.0.0.1:${DEVICE_HTTP_PORT}`)
    const left = Date.parse(reply.body.expiresAt as string) - Date.now()
    expect(left).toBeGreaterThan(100_000)
    expect(left).toBeLessThanOrEqual(121_000)
    const checked = api.downloads.check(
      'GET',
      url.pathname.slice('/v1/files/download/'.length),
      url.searchParams,
    )
    expect(checked).toEqual({ ok: true, key: blobKey(TENANT, 'cam-2', file.id), filename: 'logs/crash.txt' })

    const byDefault = await api.call('GET', `${FILES}/${file.id}/url`, { token: reader })
    expect(Date.parse(byDefault.body.expiresAt as string) - Date.now()).toBeGreaterThan(500_000)
    for (const bad of ['0', '601', 'soon', '1.5']) {
      const refused = await api.call('GET', `${FILES}/${file.id}/url?expiresIn=${bad}`, { token: reader })
      expect(refused.status, bad).toBe(400)
      expect(refused.body.code, bad).toBe('REQUEST_INVALID')
    }
    expect((await api.call('GET', `${FILES}/nosuchfile0/url`, { token: reader })).status).toBe(404)
  })

  it('lets a manager, not a reader, delete a file with its content', async () => {
    const file = uploaded[0]!
    expect((await api.call('DELETE', `${FILES}/${file.id}`, { token: reader })).status).toBe(403)
    expect((await api.call('DELETE', `${FILES}/${file.id}`, { token: manager })).status).toBe(204)
    expect((await api.call('GET', `${FILES}/${file.id}`)).status).toBe(404)
    expect((await api.call('GET', `${FILES}/${file.id}/content`)).status).toBe(404)
    expect((await api.call('DELETE', `${FILES}/${file.id}`, { token: manager })).status).toBe(404)
    expect(await api.blobs.head(blobKey(TENANT, file.device, file.id))).toBeUndefined()
  })

  it("refuses another tenant's admin every file route, as for a tenant that does not exist", async () => {
    await api.registry.createTenant('other', {})
    const attacker = (await api.registry.createApiToken('other', { name: 'admin', role: 'admin' })).secret
    const file = uploaded[2]!
    for (const [method, path] of [
      ['GET', ''],
      ['GET', `/${file.id}`],
      ['GET', `/${file.id}/content`],
      ['GET', `/${file.id}/url`],
      ['DELETE', `/${file.id}`],
    ] as const) {
      const reply = await api.call(method, `${FILES}${path}`, { token: attacker })
      const ghost = await api.call(method, `/api/v1/tenants/ghost/files${path}`, { token: attacker })
      expect(reply.status, `${method} ${path}`).toBe(404)
      expect(reply.body.code).toBe('REGISTRY_NOT_FOUND')
      expect(String(ghost.body.detail).replace('ghost', TENANT)).toBe(reply.body.detail)
    }
    expect((await api.call('GET', `${FILES}/${file.id}`)).status).toBe(200)
  })

  it('answers 404 for a tenant that does not exist', async () => {
    const reply = await api.call('GET', '/api/v1/tenants/nobody-here/files')
    expect(reply.status).toBe(404)
  })
})
