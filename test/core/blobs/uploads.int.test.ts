// The upload service on a real registry (PGlite) and the filesystem store: a token works once and
// not after it lapsed, and lapsed uploads are swept with whatever their device left in the store.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { blobKey } from '../../../core/blobs/keys.ts'
import { LAPSED_UPLOAD_GRACE_MS, createUploads } from '../../../core/blobs/uploads.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { deviceSpec, tenantSpec } from '../registry/store-fixtures.ts'
import { openFilesystemStore } from './implementations.ts'

const TTL_MS = 60_000
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

describe('uploads', () => {
  let store: RegistryStore
  let blobs: BlobStore
  let clock = new Date('2026-05-01T10:00:00.000Z')

  beforeAll(async () => {
    store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log: silentLogger })
    blobs = (await openFilesystemStore()).store
    await store.createTenant('acme', tenantSpec())
    await store.createDevice('acme', 'd1', deviceSpec())
  })

  afterAll(async () => {
    await store.close()
    await blobs.close()
  })

  const uploads = () =>
    createUploads({ files: store.files, blobs, maxFileBytes: 10_000, tokenTtlMs: TTL_MS, now: () => clock })
  const later = (ms: number): void => {
    clock = new Date(clock.getTime() + ms)
  }

  it('refuses a token after it lapsed, and keeps nothing', async () => {
    const data = randomBytes(100)
    const issued = await uploads().issue({
      tenant: 'acme',
      device: 'd1',
      name: 'late.bin',
      size: data.length,
    })
    later(TTL_MS + 1)
    const err = await uploads()
      .receive({ fileId: issued.fileId, token: issued.token, body: Readable.from([data]), protocol: 'http' })
      .catch((e: unknown) => e)
    expect(isTributaryError(err, 'AUTH_REQUIRED')).toBe(true)
    expect(await blobs.head(blobKey('acme', 'd1', issued.fileId))).toBeUndefined()
  })

  it('sweeps lapsed uploads, and an object a device left without completing, when tokens are asked for', async () => {
    const data = randomBytes(100)
    const left = await uploads().issue({
      tenant: 'acme',
      device: 'd1',
      name: 'left.bin',
      size: data.length,
      sha256: sha256(data),
    })
    // What a presigned PUT without its `complete` leaves behind.
    const key = blobKey('acme', 'd1', left.fileId)
    await blobs.put({ key, body: Readable.from([data]), size: data.length })
    later(TTL_MS + LAPSED_UPLOAD_GRACE_MS - 1)
    await uploads().issue({ tenant: 'acme', device: 'd1', name: 'next.bin', size: 1 })
    expect((await store.files.get('acme', left.fileId))?.state).toBe('pending')
    later(2)
    await uploads().issue({ tenant: 'acme', device: 'd1', name: 'after.bin', size: 1 })
    expect(await store.files.get('acme', left.fileId)).toBeUndefined()
    expect(await blobs.head(key)).toBeUndefined()
  })
})
