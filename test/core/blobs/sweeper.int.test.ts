// The blob sweeper on a real registry (PGlite) and the S3 store (S3Proxy behind a TCP proxy the
// test owns): the objects of a deleted device, then of a deleted tenant, leave the store; when the
// store goes away mid-sweep, the deletes fail, the sweeps stay and are done once it is back.
// Objects of other devices are never touched.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { blobKey } from '../../../core/blobs/keys.ts'
import { createS3BlobStore } from '../../../core/blobs/s3.ts'
import { createBlobSweeper } from '../../../core/blobs/sweeper.ts'
import { createUploads } from '../../../core/blobs/uploads.ts'
import { silentLogger } from '../../../core/log.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import type { TcpProxy } from '../../helpers/tcp-proxy.ts'
import { startTcpProxy } from '../../helpers/tcp-proxy.ts'
import { deviceSpec, tenantSpec } from '../registry/store-fixtures.ts'
import { s3Options } from './implementations.ts'

describe('blob sweeper', () => {
  let store: RegistryStore
  let blobs: BlobStore
  let proxy: TcpProxy
  let direct: S3Client
  let bucket = ''
  // The sweeper's clock runs with the database's (which stamps new sweeps), plus what a test skips.
  let skipped = 0
  const now = (): Date => new Date(Date.now() + skipped)

  beforeAll(async () => {
    store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log: silentLogger })
    const options = await s3Options()
    bucket = options.bucket
    const endpoint = new URL(options.endpoint ?? '')
    proxy = await startTcpProxy({ host: endpoint.hostname, port: Number(endpoint.port) })
    // Through the proxy, with no SDK retries: a cut store fails at once.
    blobs = createS3BlobStore({
      ...options,
      endpoint: `http://127.0.0.1:${proxy.port}`,
      requestTimeoutMs: 5_000,
    })
    direct = new S3Client({
      endpoint: endpoint.href,
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId!, secretAccessKey: options.secretAccessKey! },
      forcePathStyle: true,
    })
    for (const tenant of ['acme', 'other']) {
      await store.createTenant(tenant, tenantSpec())
      for (const device of ['d1', 'd2']) await store.createDevice(tenant, device, deviceSpec())
    }
  })

  afterAll(async () => {
    await proxy.restore()
    await proxy.close()
    direct.destroy()
    await blobs.close()
    await store.close()
  })

  const sweeper = () =>
    createBlobSweeper({ files: store.files, blobs, log: silentLogger, retryMs: 60_000, now })

  async function upload(tenant: string, device: string): Promise<string> {
    const uploads = createUploads({ files: store.files, blobs, maxFileBytes: 10_000, tokenTtlMs: 60_000 })
    const data = randomBytes(1_000)
    const issued = await uploads.issue({ tenant, device, name: 'f.bin', size: data.length })
    await uploads.receive({
      fileId: issued.fileId,
      token: issued.token,
      body: Readable.from([data]),
      protocol: 'http',
    })
    return blobKey(tenant, device, issued.fileId)
  }

  const exists = async (key: string): Promise<boolean> => {
    try {
      await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
      return true
    } catch {
      return false
    }
  }

  it("deletes a deleted device's objects, retrying while the store is away, and nothing else", async () => {
    const gone = [await upload('acme', 'd1'), await upload('acme', 'd1')]
    const kept = [await upload('acme', 'd2'), await upload('other', 'd1')]
    // Nothing is due while every file has its row.
    expect(await sweeper().sweep()).toEqual({ deleted: 0, failed: 0 })

    await store.deleteDevice('acme', 'd1')
    await proxy.cut()
    expect(await sweeper().sweep()).toEqual({ deleted: 0, failed: 2 })
    for (const key of gone) expect(await exists(key)).toBe(true)

    await proxy.restore()
    // Not due again before the retry delay.
    expect(await sweeper().sweep()).toEqual({ deleted: 0, failed: 0 })
    skipped += 61_000
    expect(await sweeper().sweep()).toEqual({ deleted: 2, failed: 0 })
    for (const key of gone) expect(await exists(key)).toBe(false)
    for (const key of kept) expect(await exists(key)).toBe(true)
    expect(await sweeper().sweep()).toEqual({ deleted: 0, failed: 0 })
  })

  it("deletes a deleted tenant's objects, and sweeps again what a stopped process had leased", async () => {
    const gone = [await upload('other', 'd2')]
    const kept = await upload('acme', 'd2')
    await store.deleteTenant('other')
    // A process leases the sweeps and dies before deleting: after the lease they are due again.
    const leased = await store.files.claimSweeps(now(), new Date(now().getTime() + 300_000), 100)
    expect(leased.map((s) => s.tenant)).toEqual(['other', 'other'])
    expect(await sweeper().sweep()).toEqual({ deleted: 0, failed: 0 })
    skipped += 301_000
    expect(await sweeper().sweep()).toEqual({ deleted: 2, failed: 0 })
    for (const key of gone) expect(await exists(key)).toBe(false)
    expect(await exists(kept)).toBe(true)
  })
})
