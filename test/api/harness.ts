// A real management API for integration tests: PGlite in memory, the embedded bus in a temporary
// directory, the real registry service, outbox relay and cached authenticators, and the API
// listening on port 0. `call` speaks HTTP to it like any client.
import { randomBytes } from 'node:crypto'
import type { LookupAddress } from 'node:dns'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ApiServer } from '../../api/index.ts'
import { createApiServer } from '../../api/index.ts'
import type { BlobStore } from '../../core/blobs/blobs.ts'
import { createFilesystemBlobStore } from '../../core/blobs/filesystem.ts'
import { createDownloadLinks, type DownloadLinks } from '../../core/blobs/downloads.ts'
import { createFileLookups, type FileLookups } from '../../core/blobs/file-cache.ts'
import { createMemoryCluster } from '../../core/cluster/memory.ts'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import type { Logger } from '../../core/log.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import { createRegistryAuth } from '../../core/registry/auth.ts'
import type { OutboxRelay } from '../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../core/registry/outbox.ts'
import { createPgliteStore } from '../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../helpers/cache.ts'
import { createSecrets } from '../../core/registry/secrets.ts'
import { createRegistryService } from '../../core/registry/service-impl.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import { waitUntil } from '../helpers/wait.ts'
import { createResponseChecker } from './response-check.ts'

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
/** The port of the device HTTP listener that download URLs name (none listens in these tests). */
export const DEVICE_HTTP_PORT = 8088

export interface Reply {
  readonly status: number
  readonly headers: Headers
  /** Parsed JSON (problem documents included); undefined for an empty body. */
  readonly body: any // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read fields freely
  readonly text: string
}

/** The ids of a list reply's items, in order. */
export const itemIds = (reply: Reply): string[] =>
  (reply.body as { items: Array<{ id: string }> }).items.map((item) => item.id)

export interface CallOptions {
  /** Bearer token; the admin token by default, null for none. */
  readonly token?: string | null | undefined
  /** Sent as JSON unless it is already a string. */
  readonly body?: unknown
  readonly headers?: Record<string, string> | undefined
}

export interface ApiHarness {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly registry: RegistryService
  readonly store: RegistryStore
  /** The blob store behind the file routes (files under the harness's temp dir). */
  readonly blobs: BlobStore
  /** Signs and checks the download URLs of the file routes (ten minutes at most). */
  readonly downloads: DownloadLinks
  /** File metadata lookups and publications behind the file routes (cached in the process). */
  readonly files: FileLookups
  readonly auth: RegistryAuth
  readonly relay: OutboxRelay
  readonly server: ApiServer
  call(method: string, path: string, options?: CallOptions): Promise<Reply>
  /** Waits until every change written so far has reached the authentication cache. */
  settle(): Promise<void>
  close(): Promise<void>
}

export interface HarnessOptions {
  readonly maxBodyBytes?: number | undefined
  readonly log?: Logger | undefined
  readonly oidcJwksCacheMs?: number | undefined
  /**
   * TRIBUTARY_WEBHOOK_ALLOW_PRIVATE, for the registry (webhook URLs, `oidc.jwksUri`) and the OIDC
   * fetch alike: on for tests whose issuer serves its JWKS on loopback.
   */
  readonly allowPrivateTargets?: boolean | undefined
  /** Name resolution of JWKS hosts (tests answer for made-up names). */
  readonly resolveHost?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
}

export async function startApi(options: HarnessOptions = {}): Promise<ApiHarness> {
  const log = options.log ?? silentLogger
  const dir = mkdtempSync(join(tmpdir(), 'tributary-api-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log })
  const topic = topicNames('tributary').registry
  await bus.admin.createTopics([{ name: topic, partitions: 1 }])
  const store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log })
  const blobs = await createFilesystemBlobStore({ dataDir: dir })
  const downloads = createDownloadLinks({ blobs, registryKey: randomBytes(32), maxTtlMs: 600_000 })
  // File lookups through the in-process cluster state, as an embedded process has them.
  const cluster = createMemoryCluster({ log: silentLogger })
  await cluster.start()
  const files = createFileLookups({ store: store.files, cluster, ttlMs: 60_000, metrics: undefined, log })
  // The lowest scrypt cost the registry accepts: the tests hash many passwords.
  const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })
  const relay = createOutboxRelay({ store, bus, topic, log, pollMs: 50 })
  const allowPrivateTargets = options.allowPrivateTargets ?? false
  const registry = createRegistryService({
    store,
    secrets,
    onChange: () => relay.nudge(),
    allowPrivateTargets,
  })
  const auth = createRegistryAuth({ store, bus, topic, secrets, cacheTtlMs: 60_000, log })
  await relay.start()
  await auth.start()
  const server = createApiServer(
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: options.maxBodyBytes ?? 65_536,
      adminToken: ADMIN_TOKEN,
      oidcJwksCacheMs: options.oidcJwksCacheMs ?? 600_000,
      allowPrivateTargets,
      drainTimeoutMs: 1_000,
    },
    {
      registry,
      lookups: { apiToken: (t) => auth.apiTokens.byToken(t), tenant: (id) => auth.tenant(id) },
      deadLetters: store,
      files: {
        store: store.files,
        lookups: files,
        blobs,
        downloads: { links: downloads, base: (host) => `http://${host}:${DEVICE_HTTP_PORT}` },
      },
      resolveHost: options.resolveHost,
      log,
    },
  )
  await server.start()
  const url = `http://127.0.0.1:${server.port}`
  // Every reply any test receives is checked against the served document.
  const check = createResponseChecker(server.document)

  return {
    url,
    registry,
    store,
    blobs,
    downloads,
    files,
    auth,
    relay,
    server,
    async call(method, path, call = {}) {
      const headers: Record<string, string> = { ...call.headers }
      const token = call.token === undefined ? ADMIN_TOKEN : call.token
      if (token !== null) headers['authorization'] ??= `Bearer ${token}`
      let body: string | undefined
      if (call.body !== undefined) {
        body = typeof call.body === 'string' ? call.body : JSON.stringify(call.body)
        headers['content-type'] ??= 'application/json'
      }
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      })
      const text = await response.text()
      let parsed: unknown
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {
        parsed = undefined
      }
      check(method, path, response.status, response.headers.get('content-type'), parsed)
      return { status: response.status, headers: response.headers, body: parsed, text }
    },
    async settle() {
      await relay.flush()
      const target = relay.published
      await waitUntil(() => auth.invalidations >= target, {
        message: () => 'registry changes to reach the cache',
      })
    },
    async close() {
      await server.stop()
      await auth.stop()
      await relay.stop()
      await store.close()
      await cluster.stop()
      await bus.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
