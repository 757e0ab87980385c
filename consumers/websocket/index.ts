// WebSocket pull of a tenant's processed events: `GET /api/v1/tenants/{t}/events` upgraded on the
// management API's server, subprotocol `cloudevents.json`, one structured JSON CloudEvent per text
// frame. Authorization, limits and the query are checked before the upgrade (docs/websocket.md).
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import type { BearerAuthenticator, CallerLookups } from '../../core/auth/bearer.ts'
import type { EventBus } from '../../core/bus/bus.ts'
import { TributaryError } from '../../core/errors.ts'
import { isTenantId } from '../../core/events/ids.ts'
import { STRUCTURED_JSON_SUBPROTOCOL } from '../../core/events/structured.ts'
import type { TopicNames } from '../../core/events/topics.ts'
import { tenantTopicSpec } from '../../core/events/topics.ts'
import type { Logger } from '../../core/log.ts'
import { authorize, protocolToken, refuseUpgrade } from './authorize.ts'
import { parseEventsQuery } from './query.ts'
import type { EventStream, StreamLimits } from './stream.ts'
import { CLOSE, openStream } from './stream.ts'

export interface EventSocketConfig extends StreamLimits {
  readonly topics: TopicNames
  /** Partitions of a tenant topic created for a socket when the tenant has not had one yet. */
  readonly topicPartitions: number
  readonly maxConnections: number
  readonly maxConnectionsPerTenant: number
}

export interface EventSocketDeps {
  readonly bus: EventBus
  readonly auth: BearerAuthenticator
  readonly lookups: CallerLookups
  readonly log: Logger
}

export interface EventSockets {
  /** The server's `upgrade` listener. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Open sockets, by tenant, and how many are paused (a client slower than its events). */
  stats(): { readonly open: number; readonly paused: number; readonly byTenant: ReadonlyMap<string, number> }
  /** Closes every socket with 1001 and leaves their groups. */
  close(): Promise<void>
}

const PATH = /^\/api\/v1\/tenants\/([^/]+)\/events$/

export function createEventSockets(config: EventSocketConfig, deps: EventSocketDeps): EventSockets {
  const log = deps.log
  const wss = new WebSocketServer({
    noServer: true,
    // Clients have nothing to say; the bound keeps a chatty one cheap.
    maxPayload: 4096,
    perMessageDeflate: false,
    handleProtocols: (protocols) =>
      protocols.has(STRUCTURED_JSON_SUBPROTOCOL) ? STRUCTURED_JSON_SUBPROTOCOL : false,
  })
  const streams = new Set<EventStream>()
  const byTenant = new Map<string, number>()
  let total = 0
  let closing = false

  function reserve(tenant: string): void {
    if (closing) throw new TributaryError('SHUTTING_DOWN', 'the server is shutting down')
    if (total >= config.maxConnections)
      throw new TributaryError('RATE_LIMITED', 'too many event sockets are open on this server')
    const count = byTenant.get(tenant) ?? 0
    if (count >= config.maxConnectionsPerTenant)
      throw new TributaryError(
        'RATE_LIMITED',
        `tenant ${JSON.stringify(tenant)} has too many event sockets open`,
      )
    total++
    byTenant.set(tenant, count + 1)
  }

  function release(tenant: string): void {
    total--
    const count = (byTenant.get(tenant) ?? 1) - 1
    if (count <= 0) byTenant.delete(tenant)
    else byTenant.set(tenant, count)
  }

  async function ensureTopic(tenant: string, topic: string): Promise<void> {
    if ((await deps.bus.admin.describeTopic(topic)) !== undefined) return
    const row = await deps.lookups.tenant(tenant)
    await deps.bus.admin.createTopics([tenantTopicSpec(topic, row?.settings, config.topicPartitions)])
  }

  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const match = PATH.exec(url.pathname)
    const tenant = match === null ? undefined : safeDecode(match[1] ?? '')
    if (tenant === undefined || !isTenantId(tenant))
      throw new TributaryError('ROUTE_NOT_FOUND', `no WebSocket route ${url.pathname.slice(0, 200)}`)
    const query = parseEventsQuery(url.searchParams)
    const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    const credentials = {
      header: request.headers.authorization,
      protocol: protocolToken(offered),
      query: query.accessToken,
    }
    const principal = await authorize(deps.auth, deps.lookups, credentials, tenant)
    // After authorization, so that another tenant's caller learns nothing but 404.
    if (!offered.includes(STRUCTURED_JSON_SUBPROTOCOL)) {
      throw new TributaryError(
        'REQUEST_INVALID',
        `offer the WebSocket subprotocol ${STRUCTURED_JSON_SUBPROTOCOL}`,
      )
    }
    reserve(tenant)
    let stream: EventStream
    try {
      const topic = config.topics.events(tenant)
      await ensureTopic(tenant, topic)
      const group =
        query.group === undefined
          ? `${config.topics.prefix}-ws-${tenant}.${randomUUID()}`
          : `${config.topics.prefix}-ws-${tenant}-${query.group}`
      stream = await openStream({
        tenant,
        topic,
        group,
        named: query.group !== undefined,
        query,
        principal,
        limits: config,
        bus: deps.bus,
        recheck: async () => void (await authorize(deps.auth, deps.lookups, credentials, tenant)),
        log: log.child({ tenant, group }),
      })
    } catch (err) {
      release(tenant)
      throw err
    }
    streams.add(stream)
    void stream.closed.then(() => {
      streams.delete(stream)
      release(tenant)
    })
    if (closing || socket.destroyed) {
      await stream.end(CLOSE.goingAway, 'server shutting down')
      throw new TributaryError('SHUTTING_DOWN', 'the server is shutting down')
    }
    // A handshake ws refuses (bad key or version) never reaches attach(): the socket's end ends the stream.
    socket.once('close', () => void stream.end(CLOSE.goingAway, 'closed'))
    wss.handleUpgrade(request, socket, head, (ws) => stream.attach(ws))
  }

  return {
    handleUpgrade(request, socket, head) {
      socket.on('error', (err) => log.debug({ err }, 'event socket upgrade failed'))
      let url: URL
      try {
        url = new URL(request.url ?? '/', 'http://localhost')
      } catch {
        return refuseUpgrade(socket, new TributaryError('REQUEST_INVALID', 'the request URL is invalid'), '/')
      }
      upgrade(request, socket, head, url).catch((err: unknown) => {
        if (!(err instanceof TributaryError) || err.status >= 500) log.warn({ err }, 'event socket refused')
        refuseUpgrade(socket, err, url.pathname)
      })
    },
    stats() {
      let paused = 0
      for (const s of streams) if (s.paused) paused++
      return { open: total, paused, byTenant: new Map(byTenant) }
    },
    async close() {
      closing = true
      await Promise.all([...streams].map((s) => s.end(CLOSE.goingAway, 'server shutting down')))
      wss.close()
    },
  }
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}
