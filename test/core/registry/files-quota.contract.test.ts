// The file quota accounting, on PGlite and PostgreSQL: what counts against a tenant's quota
// (uploaded files, and pending uploads whose token is good or whose body is being received), the
// check made when an upload is recorded, and uploads asked for at once that together would pass it.
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import { buildFileUploadedEvent } from '../../../core/events/build.ts'
import type { NewFileUpload } from '../../../core/registry/files.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deviceSpec, tenantId, tenantSpec } from './store-fixtures.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'

const engines = storeEngines()
const t0 = new Date('2026-05-01T10:00:00.000Z')
const at = (ms: number): Date => new Date(t0.getTime() + ms)
const hash = (text: string): string => createHash('sha256').update(text).digest('hex')

function upload(tenant: string, size: number, over: Partial<NewFileUpload> = {}): NewFileUpload {
  return {
    tenant,
    id: randomBytes(12).toString('base64url'),
    device: 'd1',
    name: 'dump.bin',
    size,
    sha256: undefined,
    contentType: 'application/octet-stream',
    tokenHash: hash(randomBytes(16).toString('hex')),
    createdAt: t0,
    expiresAt: at(60_000),
    ...over,
  }
}

describe.each(engines)('file quota: $name', ({ make }) => {
  let engine: Engine
  let store: RegistryStore

  beforeAll(async () => {
    engine = make()
    store = await engine.open()
  })

  afterAll(async () => {
    await store.close()
    await engine.destroy()
  })

  async function freshTenant(): Promise<string> {
    const tenant = tenantId()
    await store.createTenant(tenant, tenantSpec())
    await store.createDevice(tenant, 'd1', deviceSpec())
    return tenant
  }

  async function uploaded(tenant: string, size: number): Promise<void> {
    const row = upload(tenant, size)
    await store.files.createUpload(row)
    await store.files.claimUpload(row.tokenHash, row.id, at(1))
    const event = buildFileUploadedEvent({
      tenant,
      device: 'd1',
      protocol: 'http',
      file: { id: row.id, name: row.name, size, sha256: hash('x'), contentType: row.contentType },
      dataref: `file:///blobs/${row.id}`,
      time: at(2),
    })
    await store.files.completeUpload(tenant, row.id, { sha256: hash('x'), uploadedAt: at(2) }, event)
  }

  it('counts uploaded files and pending uploads holding a good or spent token, of the tenant only', async () => {
    const tenant = await freshTenant()
    const other = await freshTenant()
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 0, bytes: 0 })
    await uploaded(tenant, 100)
    const waiting = upload(tenant, 20)
    await store.files.createUpload(waiting)
    const streaming = upload(tenant, 3)
    await store.files.createUpload(streaming)
    await store.files.claimUpload(streaming.tokenHash, streaming.id, at(1))
    await store.files.createUpload(upload(other, 1000))
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 3, bytes: 123 })
    // Once its token lapsed, an unspent upload no longer holds its reservation; a spent one does
    // (its body is being received) until it is completed, abandoned or swept.
    expect(await store.files.usage(tenant, at(60_000))).toEqual({ files: 2, bytes: 103 })
    await store.files.abandonUpload(tenant, streaming.id)
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 2, bytes: 120 })
    expect(await store.files.usage(other, at(1))).toEqual({ files: 1, bytes: 1000 })
  })

  it('records an upload that fits the quota exactly, and refuses one past it recording nothing', async () => {
    const tenant = await freshTenant()
    await uploaded(tenant, 60)
    const quota = { maxBytes: 100, maxFiles: 3 }
    const tooBig = upload(tenant, 41)
    const err = await store.files.createUpload(tooBig, quota).catch((e: unknown) => e)
    expect(isTributaryError(err, 'FILES_QUOTA_EXCEEDED')).toBe(true)
    expect((err as Error).message).toContain('60 of 100 bytes')
    expect(await store.files.get(tenant, tooBig.id)).toBeUndefined()
    await store.files.createUpload(upload(tenant, 40), quota)
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 2, bytes: 100 })

    // The count: two files held, a third fits, a fourth does not (even of 0 bytes).
    const counted = { maxBytes: null, maxFiles: 3 }
    await store.files.createUpload(upload(tenant, 0), counted)
    const fourth = await store.files.createUpload(upload(tenant, 0), counted).catch((e: unknown) => e)
    expect(isTributaryError(fourth, 'FILES_QUOTA_EXCEEDED')).toBe(true)
    expect((fourth as Error).message).toContain('3 of its 3 files')
    // Without limits nothing is checked.
    await store.files.createUpload(upload(tenant, 10_000), { maxBytes: null, maxFiles: null })
    await store.files.createUpload(upload(tenant, 10_000))
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 5, bytes: 20_100 })
  })

  it('frees the reservation of a lapsed token for new uploads', async () => {
    const tenant = await freshTenant()
    const quota = { maxBytes: 50, maxFiles: null }
    await store.files.createUpload(upload(tenant, 50), quota)
    const blocked = await store.files.createUpload(upload(tenant, 1), quota).catch((e: unknown) => e)
    expect(isTributaryError(blocked, 'FILES_QUOTA_EXCEEDED')).toBe(true)
    const later = upload(tenant, 50, { createdAt: at(60_000), expiresAt: at(120_000) })
    expect((await store.files.createUpload(later, quota)).id).toBe(later.id)
  })

  it('never lets uploads asked for at once pass the quota together', async () => {
    const tenant = await freshTenant()
    const quota = { maxBytes: 50, maxFiles: null }
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => store.files.createUpload(upload(tenant, 10), quota)),
    )
    const refused = results.filter((r) => r.status === 'rejected')
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5)
    expect(refused.every((r) => isTributaryError(r.reason, 'FILES_QUOTA_EXCEEDED'))).toBe(true)
    expect(await store.files.usage(tenant, at(1))).toEqual({ files: 5, bytes: 50 })
  })
})
