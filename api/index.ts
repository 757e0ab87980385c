// The management API listener (TRIBUTARY_API_PORT): the hono app on @hono/node-server, started and
// stopped as a lifecycle component.
import { createAdaptorServer } from '@hono/node-server'
import type { LookupAddress } from 'node:dns'
import type { Server } from 'node:http'
import type { EventSocketConfig, EventSockets } from '../consumers/websocket/index.ts'
import { createEventSockets } from '../consumers/websocket/index.ts'
import type { CallerLookups } from '../core/auth/bearer.ts'
import { createBearerAuthenticator } from '../core/auth/bearer.ts'
import { createOidcVerifier } from '../core/auth/oidc.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import { listen } from '../core/net.ts'
import type { RegistryService } from '../core/registry/service.ts'
import { createApiApp } from './app.ts'
import type { FilesDeps } from './routes/files.ts'
import type { DeadLetterReader } from './routes/dead-letters.ts'
import type { CommandSender } from '../commands/service.ts'

export interface ApiServerConfig {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** The variable named when the port is taken. */
  readonly portVariable?: string | undefined
  readonly maxBodyBytes: number
  readonly adminToken?: string | undefined
  readonly oidcJwksCacheMs: number
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: a tenant's JWKS may be fetched from loopback and private hosts. */
  readonly allowPrivateTargets?: boolean | undefined
  /** How long stop() lets in-flight requests finish before it closes their connections. */
  readonly drainTimeoutMs: number
  readonly version?: string | undefined
}

export interface ApiServerDeps {
  readonly registry: RegistryService
  readonly lookups: CallerLookups
  /** The dead-letter index the API lists (the registry store). */
  readonly deadLetters?: DeadLetterReader | undefined
  /** Device files (`/api/v1/tenants/{t}/files`); absent when undefined. */
  readonly files?: FilesDeps | undefined
  /** Sending commands (`POST .../devices/{d}/commands/{name}`); 503 when undefined. */
  readonly commands?: CommandSender | undefined
  /** The WebSocket event stream (`GET /api/v1/tenants/{t}/events`); off when undefined. */
  readonly events?: { readonly bus: EventBus; readonly config: EventSocketConfig } | undefined
  /** Name resolution of tenant JWKS hosts (tests answer for made-up names); dns.lookup by default. */
  readonly resolveHost?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
  readonly log: Logger
}

export interface ApiServer extends Component {
  /** The bound port (after start). */
  readonly port: number
  /** The OpenAPI 3.1 document the server serves. */
  readonly document: Record<string, unknown>
  /** The WebSocket event stream, when configured. */
  readonly events: EventSockets | undefined
}

export function createApiServer(config: ApiServerConfig, deps: ApiServerDeps): ApiServer {
  const log = deps.log
  const oidc = createOidcVerifier({
    jwksCacheMs: config.oidcJwksCacheMs,
    allowPrivate: config.allowPrivateTargets ?? false,
    resolve: deps.resolveHost,
    log,
  })
  const auth = createBearerAuthenticator({ adminToken: config.adminToken, lookups: deps.lookups, oidc })
  const api = createApiApp({
    registry: deps.registry,
    auth,
    lookups: deps.lookups,
    deadLetters: deps.deadLetters,
    files: deps.files,
    commands: deps.commands,
    maxBodyBytes: config.maxBodyBytes,
    log,
    version: config.version,
  })
  const server = createAdaptorServer({ fetch: api.app.fetch, hostname: config.host }) as Server
  // Bounds on slow clients: a request has 30 s to arrive whole, its headers 10 s.
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000
  const events =
    deps.events === undefined
      ? undefined
      : createEventSockets(deps.events.config, {
          bus: deps.events.bus,
          auth,
          lookups: deps.lookups,
          log: log.child({ component: 'websocket' }),
        })
  if (events !== undefined)
    server.on('upgrade', (req, socket, head) => events.handleUpgrade(req, socket, head))
  let port = 0

  return {
    name: 'api',
    /** Built on first use (see createApiApp). */
    get document() {
      return api.document
    },
    events,
    get port() {
      return port
    },
    async start() {
      port = await listen(server, {
        host: config.host,
        port: config.port,
        variable: config.portVariable ?? 'TRIBUTARY_API_PORT',
        name: 'management API',
      })
      log.info({ port, host: config.host }, 'management API listening')
    },
    stop: async () => {
      // Upgraded sockets keep the server open: they close first, with 1001.
      await events?.close()
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        const force = setTimeout(() => server.closeAllConnections(), config.drainTimeoutMs)
        server.close(() => {
          clearTimeout(force)
          resolve()
        })
        server.closeIdleConnections()
      })
    },
  }
}
