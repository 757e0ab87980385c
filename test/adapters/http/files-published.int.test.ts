// Files published to devices over the device HTTP listener: a device lists what was published to it
// and to the tenant's folders, and downloads it byte for byte through the URL it is given; another
// device, a device of another tenant with the same names, and a caller without credentials get
// nothing, and a publication taken back is gone at once.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storeFile } from '../../helpers/files.ts'
import type { HttpHarness } from './harness.ts'
import { PASSWORD, startHttpAdapter } from './harness.ts'

let h: HttpHarness
const firmware = randomBytes(3000)
const ids = { direct: '', folder: '', unpublished: '', theirs: '' }

const basic = (device: string, tenant: string) =>
  `Basic ${Buffer.from(`${device}@${tenant}:${PASSWORD}`).toString('base64')}`

async function get(path: string, device = 'cam-1', tenant = 'acme') {
  const response = await fetch(`${h.url}${path}`, { headers: { authorization: basic(device, tenant) } })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

const listed = async (device: string, tenant = 'acme', query = '') =>
  ((await get(`/v1/files${query}`, device, tenant)).body['items'] as Array<{ id: string }>).map((f) => f.id)

beforeAll(async () => {
  h = await startHttpAdapter()
  for (const tenant of ['acme', 'other']) {
    for (const device of ['src', 'cam-1', 'cam-2']) await h.deviceWithPassword(tenant, device)
  }
  await h.deviceWithPassword('acme', 'sensor', { gateways: ['cam-2'] })
  const store = (tenant: string, name: string, data = randomBytes(100)) =>
    storeFile(h.store.files, h.blobs, { tenant, device: 'src', name, data })
  ids.direct = await store('acme', 'cam-1.cfg')
  ids.folder = await store('acme', 'fw-2.1.bin', firmware)
  ids.unpublished = await store('acme', 'private.log')
  ids.theirs = await store('other', 'fw-9.bin')
  const now = new Date()
  await h.files.publish('acme', ids.direct, { device: 'cam-1' }, now)
  await h.files.publish('acme', ids.folder, { folder: 'firmware' }, now)
  await h.files.publish('other', ids.theirs, { folder: 'firmware' }, now)
})

afterAll(async () => h.close())

describe('published files over HTTP', () => {
  it("lists the device's own files and the folders', with their folders", async () => {
    const reply = await get('/v1/files')
    expect(reply.status).toBe(200)
    const items = reply.body['items'] as Array<Record<string, unknown>>
    expect(items.map((f) => f['id']).sort()).toEqual([ids.direct, ids.folder].sort())
    expect(items.find((f) => f['id'] === ids.folder)).toMatchObject({
      name: 'fw-2.1.bin',
      size: firmware.length,
      folders: ['firmware'],
    })
    expect(await listed('cam-1', 'acme', '?folder=firmware')).toEqual([ids.folder])
    expect(await listed('cam-2')).toEqual([ids.folder])
    expect(await listed('cam-2', 'other')).toEqual([ids.theirs])
  })

  it('pages the list', async () => {
    const first = await get('/v1/files?limit=1')
    expect((first.body['items'] as unknown[]).length).toBe(1)
    const next = await get(`/v1/files?limit=1&after=${encodeURIComponent(String(first.body['next']))}`)
    expect((next.body['items'] as unknown[]).length).toBe(1)
    expect(next.body['next']).toBeNull()
  })

  it('hands out a URL that downloads the exact bytes', async () => {
    const reply = await get(`/v1/files/${ids.folder}?expiresIn=60`, 'cam-2')
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ id: ids.folder, name: 'fw-2.1.bin', method: 'GET' })
    const url = new URL(String(reply.body['url']))
    expect(url.pathname).toBe(`/v1/files/download/acme/src/${ids.folder}`)
    const download = await fetch(url)
    expect(download.status).toBe(200)
    expect(Buffer.from(await download.arrayBuffer())).toEqual(firmware)
  })

  it('answers 404 for any file not published to the device, whoever it belongs to', async () => {
    for (const [id, device, tenant] of [
      [ids.direct, 'cam-2', 'acme'],
      [ids.unpublished, 'cam-1', 'acme'],
      [ids.folder, 'cam-1', 'other'],
      [ids.direct, 'cam-1', 'other'],
      [ids.theirs, 'cam-1', 'acme'],
      ['nosuchfile0', 'cam-1', 'acme'],
    ] as const) {
      const reply = await get(`/v1/files/${id}`, device, tenant)
      expect(reply.status, `${device}@${tenant} ${id}`).toBe(404)
      expect(JSON.stringify(reply.body)).not.toContain('/v1/files/download')
    }
  })

  it('refuses a caller without credentials, bad parameters, and a gateway for a device that does not list it', async () => {
    expect((await fetch(`${h.url}/v1/files`)).status).toBe(401)
    expect((await fetch(`${h.url}/v1/files/${ids.folder}`)).status).toBe(401)
    for (const query of ['?folder=.x', '?limit=0', '?limit=101', '?after=%21', '?owner=me']) {
      expect((await get(`/v1/files${query}`)).status, query).toBe(400)
    }
    expect((await get(`/v1/files/${ids.folder}?expiresIn=999999`)).status).toBe(400)
    expect((await get(`/v1/files/${ids.folder}?expiresIn=soon`)).status).toBe(400)
    expect((await get(`/v1/files?as=sensor`, 'cam-1')).status).toBe(403)
    expect(await listed('cam-2', 'acme', '?as=sensor')).toEqual([ids.folder])
  })

  it('forgets a publication taken back at once', async () => {
    expect((await get(`/v1/files/${ids.direct}`)).status).toBe(200)
    await h.files.unpublish('acme', ids.direct, { device: 'cam-1' })
    expect((await get(`/v1/files/${ids.direct}`)).status).toBe(404)
    expect(await listed('cam-1')).toEqual([ids.folder])
  })
})
