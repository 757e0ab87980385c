// The device HTTP adapter (TRIBUTARY_HTTP_PORT): `POST /v1/<channel>` for devices and gateways (with
// `?ct=` long polls for commands), `GET /v1/command` for devices that only poll, and `POST /ttn/v3`
// for The Things Network's webhook, on one hono app served by @hono/node-server, as a lifecycle
// component. Everything else on the port is a problem+json 404 or 405.
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { Adapter, Ingest } from '../adapter.ts'
import { failureOutcome } from '../adapter.ts'
import { createLastSeen, createRateLimiter } from '../device-limits.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import { listen } from '../../core/net.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device, RegistryChange, Tenant } from '../../core/registry/model.ts'
import type { Secrets } from '../../core/registry/secrets.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import { COMMAND_PATH, createCommandRoute } from './command-route.ts'
import type { HttpConfig } from './config.ts'
import { CONFIG_APPLIED_PATH, CONFIG_PATH, createConfigRoutes } from './config-route.ts'
import { createConfigWaits } from './config-waits.ts'
import { createDeviceRoute } from './device-route.ts'
import type { HttpRoute } from './metrics.ts'
import { createHttpMetrics } from './metrics.ts'
import { outcomeResponse, problemResponse } from './outcome.ts'
import { createPollSlots } from '../poll-slots.ts'
import {
  FILES_COMPLETE_PATH,
  FILES_PRESIGN_PATH,
  FILES_TOKEN_PATH,
  FILES_UPLOAD_PATH,
  createFilesRoutes,
} from './files-route.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'
import {
  FILES_GET_PATH,
  FILES_LIST_PATH,
  type FilesPublishedDeps,
  createFilesPublished,
} from './files-published.ts'
import { FILES_DOWNLOAD_PATH, createFilesDownload, type FilesDownloadDeps } from './files-download.ts'
import type { DownlinkTargets } from './ttn/downlinks.ts'
import { createDownlinkTargets } from './ttn/downlinks.ts'
import { TTN_PATH, createTtnWebhook } from './ttn/index.ts'

export interface HttpAdapterDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  /** Cached tenant and device rows (registry changes invalidate them). */
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  /** createDevice for TTN; the rest serves `GET /v1/config` and `POST /v1/config/applied`. */
  /** Registry changes (any process): they wake `GET /v1/config?wait=` long polls. */
  readonly onRegistryChange: (listener: (change: RegistryChange) => void) => () => void
  readonly registry: Pick<
    RegistryService,
    'createDevice' | 'getEffectiveConfig' | 'configDelivered' | 'configApplied' | 'reportAppVersion'
  >
  readonly store: Pick<RegistryStore, 'touchDevice'>
  readonly cluster: Pick<ClusterState, 'take' | 'setValue' | 'getValue'>
  readonly metrics: Registry
  readonly log: Logger
  /** Where `?ct=` and `GET /v1/command` long polls attach their sinks, and responses are reported. */
  readonly commands: Pick<CommandOutlet, 'attach' | 'responded' | 'offline' | 'pending'>
  /** The registry key's operations: TTN downlink API keys are kept encrypted (ttn/downlinks.ts). */
  readonly secrets?: Pick<Secrets, 'encrypt' | 'decrypt'> | undefined
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: TTN downlink URLs may be http, loopback or private (tests). */
  readonly allowPrivateDownlinks?: boolean | undefined
  /** File uploads (`POST /v1/files/token`, `PUT /v1/files/<id>`); without it those paths are 403 like any reserved channel. */
  readonly uploads?: Uploads | undefined
  /** Signed downloads (`GET /v1/files/download/<key>?…&signature=`); without it that path is 405 like any `/v1/*`. */
  readonly downloads?: Omit<FilesDownloadDeps, 'log'> | undefined
  /** Files published to devices (`GET /v1/files`, `GET /v1/files/<id>`); without it those are 405 like any `/v1/*` GET. */
  readonly published?: Pick<FilesPublishedDeps, 'files' | 'lookups' | 'links' | 'rate' | 'base'> | undefined
}

export interface HttpAdapter extends Adapter {
  /** The bound port (after start); start.ts reports it as `http`. */
  readonly port: number
  /** The hono app, for tests that call it without a socket. */
  readonly app: Hono
  /** TTN downlink URLs and keys seen so far (for the commands issue). */
  readonly downlinks: DownlinkTargets
}

/** `poll` for requests that wait for a command, so that their long durations stay out of `ingest`. */
function routeOf(method: string, path: string, ct: string | undefined, wait: string | undefined): HttpRoute {
  if (path === COMMAND_PATH && method === 'GET') return 'poll'
  if (path === CONFIG_PATH) return wait === undefined || /^0+$/.test(wait) ? 'ingest' : 'poll'
  if (path === FILES_LIST_PATH || path.startsWith('/v1/files/')) return 'files'
  if (path.startsWith('/v1/')) return ct === undefined || /^0+$/.test(ct) ? 'ingest' : 'poll'
  return path === TTN_PATH ? 'ttn' : 'other'
}

export function createHttpAdapter(config: HttpConfig, deps: HttpAdapterDeps): HttpAdapter {
  const log = deps.log.child({ component: 'http-adapter' })
  const polls = createPollSlots()
  const stopping = new AbortController()
  const metrics = createHttpMetrics(deps.metrics, () => polls.active)
  const limiter = createRateLimiter({
    cluster: deps.cluster,
    tenant: deps.tenant,
    defaultRate: config.publishRate,
    log,
  })
  const lastSeen = createLastSeen({
    touch: (tenant, device, at) => deps.store.touchDevice(tenant, device, at),
    intervalMs: config.lastSeenIntervalMs,
    log,
  })
  const downlinks = createDownlinkTargets(deps, log)
  // What the message route and the poll route share: the caller's checks and the command wait.
  const routeDeps = {
    auth: deps.auth,
    findDevice: deps.findDevice,
    limiter,
    lastSeen,
    commands: deps.commands,
    polls,
    maxCommandWaitSeconds: config.maxCommandWaitSeconds,
    log,
    stopping: stopping.signal,
  }
  const device = createDeviceRoute({ ...routeDeps, ingest: deps.ingest, maxBodyBytes: config.maxBodyBytes })
  const poll = createCommandRoute(routeDeps)
  const waits = createConfigWaits()
  let unlisten: (() => void) | undefined
  const configRoutes = createConfigRoutes({
    ingest: deps.ingest,
    auth: deps.auth,
    findDevice: deps.findDevice,
    config: deps.registry,
    limiter,
    lastSeen,
    waits,
    polls,
    maxWaitSeconds: config.maxCommandWaitSeconds,
    log,
    stopping: stopping.signal,
  })
  const ttn = createTtnWebhook({
    tenant: deps.tenant,
    findDevice: deps.findDevice,
    registry: deps.registry,
    ingest: deps.ingest,
    limiter,
    lastSeen,
    downlinks,
    maxBodyBytes: config.maxBodyBytes,
    log,
  })

  const app = new Hono()
  app.use('*', async (c, next) => {
    const begin = performance.now()
    await next()
    const route = routeOf(c.req.method, c.req.path, c.req.query('ct'), c.req.query('wait'))
    metrics.request(route, c.res.status, (performance.now() - begin) / 1000)
  })
  app.get(CONFIG_PATH, configRoutes.get)
  app.post(CONFIG_APPLIED_PATH, configRoutes.applied)
  if (deps.uploads !== undefined) {
    const files = createFilesRoutes({
      uploads: deps.uploads,
      auth: deps.auth,
      maxFileBytes: config.maxFileBytes,
      log,
    })
    app.post(FILES_TOKEN_PATH, files.token)
    app.post(FILES_PRESIGN_PATH, files.presign)
    app.post(FILES_COMPLETE_PATH, files.complete)
    app.put(FILES_UPLOAD_PATH, files.upload)
  }
  if (deps.published !== undefined) {
    const published = createFilesPublished({
      ...deps.published,
      auth: deps.auth,
      findDevice: deps.findDevice,
      log,
    })
    app.get(FILES_LIST_PATH, published.list)
    app.get(FILES_GET_PATH, published.get)
  }
  if (deps.downloads !== undefined) {
    app.all(FILES_DOWNLOAD_PATH, createFilesDownload({ ...deps.downloads, log }))
  }
  app.post('/v1/*', device)
  app.get(COMMAND_PATH, poll)
  app.post(TTN_PATH, ttn)
  const notAllowed = (instance: string, allow = 'POST'): Response =>
    problemResponse('method-not-allowed', `use ${allow}`, { instance, allow })
  app.all(COMMAND_PATH, (c) => notAllowed(c.req.path, 'GET, POST'))
  app.all(CONFIG_PATH, (c) => notAllowed(c.req.path, 'GET'))
  app.all('/v1/*', (c) => notAllowed(c.req.path))
  app.all(TTN_PATH, (c) => notAllowed(c.req.path))
  app.notFound((c) =>
    problemResponse('not-found', `no route ${c.req.method} ${c.req.path}; devices POST /v1/<channel>`, {
      instance: c.req.path,
    }),
  )
  app.onError((err, c) => {
    // A part that cannot answer now (registry, cluster state, bus) is a 503 the device retries.
    const unavailable = failureOutcome(err)
    if (unavailable !== undefined) {
      log.warn({ err, method: c.req.method, path: c.req.path }, 'device request not served now')
      return outcomeResponse(unavailable, { instance: c.req.path })
    }
    log.error({ err, method: c.req.method, path: c.req.path }, 'device request failed')
    return problemResponse('internal', 'an unexpected error occurred', { instance: c.req.path })
  })

  const server = createAdaptorServer({ fetch: app.fetch, hostname: config.host }) as Server
  server.requestTimeout = config.requestTimeoutMs
  server.headersTimeout = config.headersTimeoutMs
  let port = 0

  return {
    name: 'http',
    protocol: 'http',
    app,
    downlinks,
    get port() {
      return port
    },
    ports: () => ({ http: port }),
    async start() {
      unlisten = deps.onRegistryChange((change) => waits.changed(change))
      port = await listen(server, {
        host: config.host,
        port: config.port,
        variable: config.portVariable,
        name: 'device HTTP',
      })
      log.info(
        { port, host: config.host },
        'device HTTP listening (POST /v1/<channel>, GET /v1/command, GET /v1/config, POST /ttn/v3)',
      )
    },
    stop: () =>
      new Promise<void>((resolve) => {
        // Long polls answer now (202/204, their commands stay queued) rather than hold the drain.
        stopping.abort()
        unlisten?.()
        if (!server.listening) {
          void lastSeen.flush().then(resolve)
          return
        }
        const force = setTimeout(() => server.closeAllConnections(), config.drainTimeoutMs)
        server.close(() => {
          clearTimeout(force)
          void lastSeen.flush().then(resolve)
        })
        server.closeIdleConnections()
      }),
  }
}
