// The publication contract of FileStore, on PGlite and PostgreSQL: an uploaded file published to a
// device or a tenant folder is listed for that device (folders: for every device of the tenant),
// never for another device or tenant, and goes with its file and with the device it was published to.
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deviceSpec, tenantId, tenantSpec, uploadedFile } from './store-fixtures.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'

const t0 = new Date('2026-05-01T10:00:00.000Z')
const hash = (text: string): string => createHash('sha256').update(text).digest('hex')

describe.each(storeEngines())('FileStore publications: $name', ({ make }) => {
  let engine: Engine
  let store: RegistryStore
  let tenant: string
  let other: string

  const uploaded = (owner: string, device: string) => uploadedFile(store, owner, device)

  const ids = async (device: string, folder?: string, owner = tenant) =>
    (await store.files.listPublished(owner, device, { folder })).items.map((p) => p.file.id)

  beforeAll(async () => {
    engine = make()
    store = await engine.open()
    tenant = tenantId()
    other = tenantId()
    for (const t of [tenant, other]) {
      await store.createTenant(t, tenantSpec())
      for (const d of ['src', 'd1', 'd2']) await store.createDevice(t, d, deviceSpec())
    }
  })

  afterAll(async () => {
    await store.close()
    await engine.destroy()
  })

  it('lists a file for the device it is published to only, and a folder file for every device', async () => {
    const direct = await uploaded(tenant, 'src')
    const firmware = await uploaded(tenant, 'src')
    const unpublished = await uploaded(tenant, 'src')
    expect(await store.files.publish(tenant, direct, { device: 'd1' }, t0)).toBe(true)
    expect(await store.files.publish(tenant, direct, { device: 'd1' }, t0)).toBe(false)
    expect(await store.files.publish(tenant, firmware, { folder: 'firmware' }, t0)).toBe(true)
    expect(await store.files.publish(tenant, firmware, { device: 'd1' }, t0)).toBe(true)

    expect(await ids('d1')).toEqual([direct, firmware])
    expect(await ids('d2')).toEqual([firmware])
    expect(await ids('d1', 'firmware')).toEqual([firmware])
    expect(await ids('d1', 'models')).toEqual([])
    expect(await ids('src')).toEqual([firmware])
    expect(await ids('d1', undefined, other)).toEqual([])
    expect(await ids('d1')).not.toContain(unpublished)
    const page = await store.files.listPublished(tenant, 'd1')
    expect(page.items.map((p) => p.folders)).toEqual([[], ['firmware']])
    expect(await store.files.publications(tenant, firmware)).toEqual({
      devices: ['d1'],
      folders: ['firmware'],
    })
  })

  it('pages the published files in id order', async () => {
    const device = 'd2'
    const published = [
      await uploaded(tenant, 'src'),
      await uploaded(tenant, 'src'),
      await uploaded(tenant, 'src'),
    ]
    for (const id of published) await store.files.publish(tenant, id, { device }, t0)
    const all: string[] = []
    let after: string | undefined
    do {
      const page = await store.files.listPublished(tenant, device, { limit: 1, after })
      all.push(...page.items.map((p) => p.file.id))
      after = page.next ?? undefined
    } while (after !== undefined)
    expect(all).toEqual([...all].sort())
    expect(all).toEqual(expect.arrayContaining(published))
  })

  it('refuses to publish a file of another tenant, a pending one, or to a device that does not exist', async () => {
    const theirs = await uploaded(other, 'src')
    const refused = async (p: Promise<unknown>) =>
      expect(isTributaryError(await p.catch((e: unknown) => e), 'REGISTRY_NOT_FOUND')).toBe(true)
    await refused(store.files.publish(tenant, theirs, { device: 'd1' }, t0))
    await refused(store.files.publish(tenant, theirs, { folder: 'firmware' }, t0))
    const pending = 'pending-file-1'
    await store.files.createUpload({
      tenant,
      id: pending,
      device: 'src',
      name: 'p.bin',
      size: 1,
      sha256: undefined,
      contentType: 'text/plain',
      tokenHash: hash(pending),
      createdAt: t0,
      expiresAt: new Date(t0.getTime() + 60_000),
    })
    await refused(store.files.publish(tenant, pending, { folder: 'firmware' }, t0))
    await refused(store.files.publish(tenant, await uploaded(tenant, 'src'), { device: 'nobody' }, t0))
    expect(await store.files.publications(tenant, theirs)).toEqual({ devices: [], folders: [] })
  })

  it('takes a publication back, and forgets those of a deleted file or device', async () => {
    const id = await uploaded(tenant, 'src')
    await store.files.publish(tenant, id, { folder: 'models' }, t0)
    await store.files.publish(tenant, id, { device: 'd2' }, t0)
    expect(await store.files.unpublish(tenant, id, { folder: 'models' })).toBe(true)
    expect(await store.files.unpublish(tenant, id, { folder: 'models' })).toBe(false)
    expect(await store.files.unpublish(tenant, id, { device: 'd1' })).toBe(false)
    expect(await ids('d1', 'models')).toEqual([])

    await store.createDevice(tenant, 'gone', deviceSpec())
    await store.files.publish(tenant, id, { device: 'gone' }, t0)
    await store.deleteDevice(tenant, 'gone')
    expect(await store.files.publications(tenant, id)).toEqual({ devices: ['d2'], folders: [] })

    await store.files.remove(tenant, id)
    expect(await store.files.publications(tenant, id)).toEqual({ devices: [], folders: [] })
    expect(await ids('d2')).not.toContain(id)
  })
})
