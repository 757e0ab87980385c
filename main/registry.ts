// Builds the device registry of a process from configuration: the store (PGlite or PostgreSQL),
// the secrets, the service every writer uses, the outbox relay that publishes its changes, and the
// cached authenticators that those changes invalidate.
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { EventBus } from '../core/bus/bus.ts'
import type { Config } from '../core/config/index.ts'
import type { CallerLookups } from '../core/auth/bearer.ts'
import { topicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryAuth } from '../core/registry/auth.ts'
import { createRegistryAuth } from '../core/registry/auth.ts'
import type { OutboxRelay } from '../core/registry/outbox.ts'
import { createEventOutboxRelay, createOutboxRelay } from '../core/registry/outbox.ts'
import { createConfigFanout } from '../core/registry/config-fanout.ts'
import { createBlobStore } from '../core/blobs/index.ts'
import type { BlobStore } from '../core/blobs/blobs.ts'
import { createUploads, type Uploads } from '../core/blobs/uploads.ts'
import { createUploadMetrics } from '../core/blobs/metrics.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { Registry } from '../core/metrics.ts'
import { createDownloadLinks, type DownloadLinks } from '../core/blobs/downloads.ts'
import { createFileLookups, type FileLookups } from '../core/blobs/file-cache.ts'
import { createBlobSweeper } from '../core/blobs/sweeper.ts'
import { createSecrets, loadRegistryKey } from '../core/registry/secrets.ts'
import type { Secrets } from '../core/registry/secrets.ts'
import { createRegistryService } from '../core/registry/service-impl.ts'
import type { RegistryService } from '../core/registry/service.ts'
import { createRegistryStore } from '../core/registry/store-factory.ts'
import type { RegistryStore } from '../core/registry/store.ts'

export interface RegistryParts {
  readonly store: RegistryStore
  /** The registry key's operations (decrypting webhook secrets for the delivery engine). */
  readonly secrets: Secrets
  readonly service: RegistryService
  readonly relay: OutboxRelay
  /** Publishes the events recorded with registry writes (file.uploaded) to the ingress topic. */
  readonly eventRelay: OutboxRelay
  /** Device files: the blob store and the uploads that write to it. */
  readonly blobs: BlobStore
  readonly uploads: Uploads
  /** Download URLs of stored files (presigned S3 GETs, or signed URLs of the device HTTP listener). */
  readonly downloads: DownloadLinks
  /** File metadata lookups and publications, through the cluster state's cache. */
  readonly files: FileLookups
  /**
   * The device HTTP listener's base URL as a client reaches it at `host`: TRIBUTARY_FILES_UPLOAD_URL,
   * else set by the adapters role once that listener exists in this process.
   */
  readonly deviceHttp: { base: (host?: string) => string | undefined }
  readonly auth: RegistryAuth
  /** What the management API asks of the registry to authenticate its callers (cached). */
  readonly lookups: CallerLookups
  /** Started after the store opened, in this order; the caller closes the store after they stop. */
  readonly components: readonly Component[]
}

/** TRIBUTARY_CACHE_DIR, `~/.cache/tributary` when unset, none when `off`. */
export function registryCacheDir(config: Pick<Config, 'cacheDir'>): string | undefined {
  if (config.cacheDir === 'off') return undefined
  return config.cacheDir ?? join(homedir(), '.cache', 'tributary')
}

/** Opens the store (running its migrations) and builds the rest; the relay and the cache are not started. */
export async function openRegistry(
  config: Config,
  bus: EventBus,
  log: Logger,
  shared: {
    /** The process's Prometheus registry (file metrics). */
    readonly metrics?: Registry | undefined
    /** The cluster state (the per-device upload rate); without it the rate is not limited. */
    readonly cluster?: Pick<ClusterState, 'take' | 'getValue' | 'setValue' | 'deleteValue'> | undefined
  } = {},
): Promise<RegistryParts> {
  const key = await loadRegistryKey({
    dataDir: config.dataDir,
    registryKey: config.registryKey,
    databaseUrl: config.databaseUrl,
  })
  const secrets = createSecrets(key)
  const store = await createRegistryStore(
    { dataDir: config.dataDir, databaseUrl: config.databaseUrl, cacheDir: registryCacheDir(config) },
    log.child({ component: 'registry-store' }),
  )
  const topic = topicNames(config.topicPrefix).registry
  const relay = createOutboxRelay({
    store,
    bus,
    topic,
    log: log.child({ component: 'registry-outbox' }),
    drainMs: Math.min(5_000, config.shutdownTimeoutMs),
  })
  const eventRelay = createEventOutboxRelay({
    files: store.files,
    bus,
    topic: topicNames(config.topicPrefix).ingress,
    log: log.child({ component: 'event-outbox' }),
    drainMs: Math.min(5_000, config.shutdownTimeoutMs),
  })
  const fanout = createConfigFanout({
    store,
    log: log.child({ component: 'config-fanout' }),
    announced: () => eventRelay.nudge(),
  })
  const blobs = await createBlobStore(config)
  const uploads = createUploads({
    files: store.files,
    blobs,
    maxFileBytes: config.filesMaxBytes,
    tokenTtlMs: config.filesTokenTtlMs,
    // Read through the cached tenant lookups (`auth`, built below), which registry changes refresh.
    quota: async (tenant) => {
      const quotas = (await auth.tenant(tenant))?.quotas
      return quotas && { maxBytes: quotas.maxFileStorageBytes, maxFiles: quotas.maxFiles }
    },
    rate:
      shared.cluster === undefined
        ? undefined
        : { cluster: shared.cluster, perMinute: config.filesDeviceRatePerMinute },
    metrics:
      shared.metrics === undefined
        ? undefined
        : createUploadMetrics(shared.metrics, { maxDevices: config.filesMetricsDevices }),
    completed: () => eventRelay.nudge(),
  })
  const downloads = createDownloadLinks({ blobs, registryKey: key, maxTtlMs: config.filesDownloadTtlMs })
  const files = createFileLookups({
    store: store.files,
    cluster: shared.cluster,
    ttlMs: config.filesCacheTtlMs,
    metrics: shared.metrics,
    log: log.child({ component: 'file-cache' }),
  })
  const service = createRegistryService({
    store,
    secrets,
    onChange: () => {
      relay.nudge()
      fanout.nudge()
    },
    allowPrivateTargets: config.webhookAllowPrivate,
  })
  const auth = createRegistryAuth({
    store,
    bus,
    topic,
    secrets,
    cacheTtlMs: config.registryCacheTtlMs,
    log: log.child({ component: 'registry-auth' }),
  })
  return {
    store,
    secrets,
    service,
    relay,
    eventRelay,
    blobs,
    uploads,
    downloads,
    files,
    deviceHttp: { base: () => config.filesUploadUrl },
    auth,
    lookups: { apiToken: (token) => auth.apiTokens.byToken(token), tenant: (id) => auth.tenant(id) },
    components: [
      relay,
      eventRelay,
      fanout,
      { name: 'blob-store', start: async () => undefined, stop: () => blobs.close() },
      // After the store: stopped before it.
      createBlobSweeper({ files: store.files, blobs, log: log.child({ component: 'blob-sweeper' }) }),
      auth,
    ],
  }
}
