// A real device HTTP adapter for integration tests: PGlite in memory, the embedded bus in a temporary
// directory, the real registry service, outbox relay and cached authenticators, the in-process
// cluster state, and the adapter (and the management API) listening on port 0. What reached the
// ingress topic is read back with a consumer of its own.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HttpAdapter } from '../../../adapters/http/index.ts'
import { createHttpAdapter } from '../../../adapters/http/index.ts'
import { createIngest } from '../../../adapters/adapter.ts'
import type { ApiServer } from '../../../api/index.ts'
import { createApiServer } from '../../../api/index.ts'
import type { BusMessage, EventBus } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { createDownloadLinks } from '../../../core/blobs/downloads.ts'
import { createFileLookups, type FileLookups } from '../../../core/blobs/file-cache.ts'
import { createFilesystemBlobStore } from '../../../core/blobs/filesystem.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { uuidv7 } from '../../../core/events/ids.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { Registry } from '../../../core/metrics.ts'
import { createMetricsRegistry } from '../../../core/metrics.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { FakeOutlet } from './fake-outlet.ts'
import { createFakeOutlet } from './fake-outlet.ts'

export const ADMIN_TOKEN = 'http-adapter-admin-token-0123456789'
export const PASSWORD = 'correct horse battery'
export const MAX_BODY = 4096

export interface HttpHarness {
  /** http://127.0.0.1:<port> of the device listener. */
  readonly url: string
  /** http://127.0.0.1:<port> of the management API. */
  readonly apiUrl: string
  readonly adapter: HttpAdapter
  readonly registry: RegistryService
  readonly store: RegistryStore
  readonly auth: RegistryAuth
  readonly bus: EventBus
  readonly metrics: Registry
  /** The blob store of files (under the harness's temp dir) and the file lookups the device routes use. */
  readonly blobs: BlobStore
  readonly files: FileLookups
  /** The command outlet the adapter attaches its sinks to (a fake: commands are sent with it). */
  readonly commands: FakeOutlet
  readonly ingress: string
  /** Records on the ingress topic (all partitions) now. */
  ingressCount(): Promise<number>
  /** Every ingress record so far, in offset order per partition. */
  ingressRecords(): Promise<BusMessage[]>
  /** A tenant and a device with PASSWORD, both visible to the authentication cache. */
  deviceWithPassword(tenant: string, device: string, fields?: { gateways?: string[] }): Promise<void>
  /** Waits until every registry change so far has reached the authentication cache. */
  settle(): Promise<void>
  close(): Promise<void>
}

export interface HttpHarnessOptions {
  readonly publishRate?: number | undefined
}

export async function startHttpAdapter(options: HttpHarnessOptions = {}): Promise<HttpHarness> {
  const log = silentLogger
  const dir = mkdtempSync(join(tmpdir(), 'tributary-http-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log })
  const topics = topicNames('tributary')
  await bus.admin.createTopics([
    { name: topics.registry, partitions: 1 },
    { name: topics.ingress, partitions: 2 },
  ])
  const store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log })
  const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })
  const relay: OutboxRelay = createOutboxRelay({ store, bus, topic: topics.registry, log, pollMs: 50 })
  const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
  const auth = createRegistryAuth({ store, bus, topic: topics.registry, secrets, cacheTtlMs: 60_000, log })
  const cluster = createMemoryCluster({ log })
  await relay.start()
  await auth.start()
  await cluster.start()
  const metrics = createMetricsRegistry()
  const commands = createFakeOutlet()
  const blobs = await createFilesystemBlobStore({ dataDir: dir })
  const links = createDownloadLinks({ blobs, registryKey: randomBytes(32), maxTtlMs: 600_000 })
  const files = createFileLookups({ store: store.files, cluster, ttlMs: 60_000, metrics, log })
  const adapter = createHttpAdapter(
    {
      enabled: true,
      host: '127.0.0.1',
      port: 0,
      portVariable: 'TRIBUTARY_HTTP_PORT',
      maxBodyBytes: MAX_BODY,
      maxFileBytes: MAX_BODY,
      publishRate: options.publishRate ?? 1000,
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      drainTimeoutMs: 1_000,
      lastSeenIntervalMs: 60_000,
      maxCommandWaitSeconds: 60,
    },
    {
      ingest: createIngest({ bus, topics, log }),
      auth: auth.device,
      tenant: (id) => auth.tenant(id),
      findDevice: (t, d) => auth.findDevice(t, d),
      onRegistryChange: (listener) => auth.onChange(listener),
      registry,
      store,
      cluster,
      metrics,
      log,
      commands,
      downloads: { links, blobs },
      published: { files: store.files, lookups: files, links, base: () => undefined },
    },
  )
  await adapter.start()
  const api: ApiServer = createApiServer(
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 65_536,
      adminToken: ADMIN_TOKEN,
      oidcJwksCacheMs: 600_000,
      drainTimeoutMs: 1_000,
    },
    {
      registry,
      lookups: { apiToken: (t) => auth.apiTokens.byToken(t), tenant: (id) => auth.tenant(id) },
      log,
    },
  )
  await api.start()

  const ingressCount = async (): Promise<number> =>
    (await bus.admin.offsets(topics.ingress)).reduce((sum, p) => sum + p.next - p.earliest, 0)

  async function settle(): Promise<void> {
    await relay.flush()
    const target = relay.published
    await waitUntil(() => auth.invalidations >= target, {
      message: () => 'registry changes to reach the cache',
    })
  }

  return {
    url: `http://127.0.0.1:${adapter.port}`,
    apiUrl: `http://127.0.0.1:${api.port}`,
    adapter,
    registry,
    store,
    auth,
    bus,
    metrics,
    blobs,
    files,
    commands,
    ingress: topics.ingress,
    ingressCount,
    async ingressRecords() {
      const want = await ingressCount()
      const seen: BusMessage[] = []
      if (want === 0) return seen
      const subscription = await bus.subscribe({
        group: `read-${uuidv7()}`,
        topics: [topics.ingress],
        from: 'earliest',
        handler: async (batch) => void seen.push(...batch),
      })
      try {
        await waitUntil(() => seen.length >= want, {
          message: () => `${want} ingress records, read ${seen.length}`,
        })
      } finally {
        await subscription.close()
      }
      return seen.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
    },
    async deviceWithPassword(tenant, device, fields = {}) {
      try {
        await registry.createTenant(tenant, {})
      } catch (err) {
        if ((err as { code?: string }).code !== 'REGISTRY_CONFLICT') throw err
      }
      await registry.createDevice(tenant, device, fields)
      await registry.setPassword(tenant, device, PASSWORD)
      await settle()
    },
    settle,
    async close() {
      await adapter.stop()
      await api.stop()
      await auth.stop()
      await relay.stop()
      await cluster.stop()
      await store.close()
      await blobs.close()
      await bus.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const basicAuth = (device: string, tenant: string, password = PASSWORD): string =>
  `Basic ${Buffer.from(`${device}@${tenant}:${password}`).toString('base64')}`

/** A record's headers as strings. */
export const headersOf = (message: BusMessage): Record<string, string> =>
  Object.fromEntries([...message.headers].map(([k, v]) => [k, v.toString()]))
