// The device HTTP adapter (TRIBUTARY_HTTP_PORT): `POST /v1/<channel>` for devices and gateways and
// `POST /ttn/v3` for The Things Network's webhook, on one hono app served by @hono/node-server, as a
// lifecycle component. Everything else on the port is a problem+json 404 or 405.
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { Adapter, Ingest } from '../adapter.ts'
import { createLastSeen, createRateLimiter } from '../device-limits.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import { listen } from '../../core/net.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device, Tenant } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import type { HttpConfig } from './config.ts'
import type { AwaitCommand } from './device-route.ts'
import { createDeviceRoute, noCommands } from './device-route.ts'
import type { HttpRoute } from './metrics.ts'
import { createHttpMetrics } from './metrics.ts'
import { problemResponse } from './outcome.ts'
import type { DownlinkTargets } from './ttn/downlinks.ts'
import { createDownlinkTargets } from './ttn/downlinks.ts'
import { TTN_PATH, createTtnWebhook } from './ttn/index.ts'

export interface HttpAdapterDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  /** Cached tenant and device rows (registry changes invalidate them). */
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly registry: Pick<RegistryService, 'createDevice'>
  readonly store: Pick<RegistryStore, 'touchDevice'>
  readonly cluster: Pick<ClusterState, 'take'>
  readonly metrics: Registry
  readonly log: Logger
  /** The `?ct=` command wait; none until the commands issue provides one. */
  readonly awaitCommand?: AwaitCommand | undefined
}

export interface HttpAdapter extends Adapter {
  /** The bound port (after start); start.ts reports it as `http`. */
  readonly port: number
  /** The hono app, for tests that call it without a socket. */
  readonly app: Hono
  /** TTN downlink URLs and keys seen so far (for the commands issue). */
  readonly downlinks: DownlinkTargets
}

const routeOf = (path: string): HttpRoute =>
  path.startsWith('/v1/') ? 'ingest' : path === TTN_PATH ? 'ttn' : 'other'

export function createHttpAdapter(config: HttpConfig, deps: HttpAdapterDeps): HttpAdapter {
  const log = deps.log.child({ component: 'http-adapter' })
  const metrics = createHttpMetrics(deps.metrics)
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
  const downlinks = createDownlinkTargets()
  const device = createDeviceRoute({
    ingest: deps.ingest,
    auth: deps.auth,
    findDevice: deps.findDevice,
    limiter,
    lastSeen,
    awaitCommand: deps.awaitCommand ?? noCommands,
    maxBodyBytes: config.maxBodyBytes,
    log,
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
    metrics.request(routeOf(c.req.path), c.res.status, (performance.now() - begin) / 1000)
  })
  app.post('/v1/*', device)
  app.post(TTN_PATH, ttn)
  const notAllowed = (instance: string): Response =>
    problemResponse('method-not-allowed', 'use POST', { instance, allow: 'POST' })
  app.all('/v1/*', (c) => notAllowed(c.req.path))
  app.all(TTN_PATH, (c) => notAllowed(c.req.path))
  app.notFound((c) =>
    problemResponse('not-found', `no route ${c.req.method} ${c.req.path}; devices POST /v1/<channel>`, {
      instance: c.req.path,
    }),
  )
  app.onError((err, c) => {
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
      port = await listen(server, {
        host: config.host,
        port: config.port,
        variable: config.portVariable,
        name: 'device HTTP',
      })
      log.info({ port, host: config.host }, 'device HTTP listening (POST /v1/<channel>, POST /ttn/v3)')
    },
    stop: () =>
      new Promise<void>((resolve) => {
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
