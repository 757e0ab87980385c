// The file metadata cache on the in-process cluster state and on real Redis, over a real registry
// (PGlite): a second lookup is a hit, publishing, unpublishing and deleting through the cache reach
// every process at once, a change made around it shows once its entry lapsed, and a pending upload
// is never kept.
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createFileLookups, type FileLookups } from '../../../core/blobs/file-cache.ts'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import { silentLogger } from '../../../core/log.ts'
import { createMetricsRegistry, type Registry } from '../../../core/metrics.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { ClusterHarness } from '../cluster/implementations.ts'
import { memoryHarness, redisHarness } from '../cluster/implementations.ts'
import { deviceSpec, tenantId, tenantSpec, uploadedFile } from '../registry/store-fixtures.ts'
import { type Engine, pgliteEngine } from '../registry/store-implementations.ts'

const harnesses: Array<{ name: string; make: () => ClusterHarness }> = [
  { name: 'memory', make: memoryHarness },
  { name: 'redis', make: () => redisHarness(inject('redisUrl')) },
]
const t0 = new Date('2026-05-01T10:00:00.000Z')
const TTL_MS = 300

async function counted(registry: Registry, result: 'hit' | 'miss'): Promise<number> {
  const metric = await registry.getSingleMetric('tributary_file_cache_lookups_total')?.get()
  return metric?.values.find((v) => v.labels['result'] === result)?.value ?? 0
}

describe.each(harnesses)('file metadata cache: $name', ({ make }) => {
  let harness: ClusterHarness
  let engine: Engine
  let store: RegistryStore
  let tenant: string
  let metrics: Registry
  let here: FileLookups
  let there: FileLookups

  const lookups = (cluster: ClusterState, registry?: Registry) =>
    createFileLookups({ store: store.files, cluster, ttlMs: TTL_MS, metrics: registry, log: silentLogger })

  beforeAll(async () => {
    harness = make()
    engine = pgliteEngine()
    store = await engine.open()
    tenant = tenantId()
    await store.createTenant(tenant, tenantSpec())
    for (const d of ['src', 'd1']) await store.createDevice(tenant, d, deviceSpec())
    metrics = createMetricsRegistry()
    const cluster = await harness.open()
    here = lookups(cluster, metrics)
    // Another process: another connection to the same Redis (the in-process state has one).
    there = lookups(await harness.observer(cluster))
  })

  afterAll(async () => {
    await harness.destroy()
    await store.close()
    await engine.destroy()
  })

  it('reads the registry once, then answers from the cache', async () => {
    const id = await uploadedFile(store, tenant, 'src', t0)
    const [hits, misses] = [await counted(metrics, 'hit'), await counted(metrics, 'miss')]
    const first = await here.lookup(tenant, id)
    expect(first?.file).toEqual(await store.files.get(tenant, id))
    expect(first?.publications).toEqual({ devices: [], folders: [] })
    expect(await here.lookup(tenant, id)).toEqual(first)
    expect(await counted(metrics, 'miss')).toBe(misses + 1)
    expect(await counted(metrics, 'hit')).toBe(hits + 1)
  })

  it('writes publications and deletes through, for every process at once', async () => {
    const id = await uploadedFile(store, tenant, 'src', t0)
    expect((await there.lookup(tenant, id))?.publications.folders).toEqual([])
    await here.publish(tenant, id, { folder: 'firmware' }, t0)
    await here.publish(tenant, id, { device: 'd1' }, t0)
    expect((await there.lookup(tenant, id))?.publications).toEqual({ devices: ['d1'], folders: ['firmware'] })
    await here.unpublish(tenant, id, { folder: 'firmware' })
    expect((await there.lookup(tenant, id))?.publications).toEqual({ devices: ['d1'], folders: [] })
    expect((await here.remove(tenant, id))?.id).toBe(id)
    expect(await there.lookup(tenant, id)).toBeUndefined()
    expect(await store.files.get(tenant, id)).toBeUndefined()
  })

  it('keeps an entry changed around it until it lapses', async () => {
    const long = createFileLookups({
      store: store.files,
      cluster: await harness.open(),
      ttlMs: 60_000,
      metrics: undefined,
      log: silentLogger,
    })
    const [kept, lapsing] = [
      await uploadedFile(store, tenant, 'src', t0),
      await uploadedFile(store, tenant, 'src', t0),
    ]
    await long.lookup(tenant, kept)
    await here.lookup(tenant, lapsing)
    for (const id of [kept, lapsing]) await store.files.publish(tenant, id, { folder: 'models' }, t0)
    // Cached: the publication made straight in the registry is not seen yet.
    expect((await long.lookup(tenant, kept))?.publications.folders).toEqual([])
    await waitUntil(async () => (await here.lookup(tenant, lapsing))?.publications.folders.length === 1, {
      message: () => 'the entry lapsed',
    })
  })

  it('keeps no pending upload and no missing file', async () => {
    const id = 'pending-upload-1'
    await store.files.createUpload({
      tenant,
      id,
      device: 'src',
      name: 'p.bin',
      size: 1,
      sha256: undefined,
      contentType: 'text/plain',
      tokenHash: createHash('sha256').update(id).digest('hex'),
      createdAt: t0,
      expiresAt: new Date(t0.getTime() + 60_000),
    })
    const misses = await counted(metrics, 'miss')
    expect(await here.lookup(tenant, id)).toBeUndefined()
    expect(await here.lookup(tenant, id)).toBeUndefined()
    expect(await here.lookup(tenant, 'no-such-file')).toBeUndefined()
    expect(await counted(metrics, 'miss')).toBe(misses + 3)
  })
})
