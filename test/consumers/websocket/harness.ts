// A real management API with the WebSocket event stream for integration tests: PGlite in memory, the
// embedded bus in a temporary directory, the real registry and cached authenticators, listening on
// port 0. Events are published on a tenant's topic as the processors would, and read with `ws`.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import type { ApiServer } from '../../../api/index.ts'
import { createApiServer } from '../../../api/index.ts'
import type { EventSocketConfig } from '../../../consumers/websocket/index.ts'
import type { EventBus, PublishAck } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { buildEvent, jsonData } from '../../../core/events/build.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789'
export const topics = topicNames('tributary')

export interface WsHarness {
  readonly bus: EventBus
  readonly registry: RegistryService
  readonly store: RegistryStore
  readonly auth: RegistryAuth
  readonly server: ApiServer
  /** ws://127.0.0.1:<port> */
  readonly wsUrl: string
  readonly httpUrl: string
  /** Publishes a telemetry event of `device` on `channel` to the tenant's topic. */
  publish(tenant: string, device: string, channel: string, data?: unknown): Promise<PublishAck>
  /** Waits until every change written so far has reached the authentication cache. */
  settle(): Promise<void>
  close(): Promise<void>
}

export async function startWsApi(limits: Partial<EventSocketConfig> = {}): Promise<WsHarness> {
  const log = silentLogger
  const dir = mkdtempSync(join(tmpdir(), 'tributary-ws-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log })
  await bus.admin.createTopics([{ name: topics.registry, partitions: 1 }])
  const store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log })
  const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })
  const relay = createOutboxRelay({ store, bus, topic: topics.registry, log, pollMs: 50 })
  // The test issuers serve their JWKS on loopback: the operator's allowance, as tests set it.
  const registry = createRegistryService({
    store,
    secrets,
    onChange: () => relay.nudge(),
    allowPrivateTargets: true,
  })
  const auth = createRegistryAuth({ store, bus, topic: topics.registry, secrets, cacheTtlMs: 60_000, log })
  await relay.start()
  await auth.start()
  const server = createApiServer(
    {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 65_536,
      adminToken: ADMIN_TOKEN,
      oidcJwksCacheMs: 600_000,
      allowPrivateTargets: true,
      drainTimeoutMs: 1_000,
    },
    {
      registry,
      lookups: { apiToken: (t) => auth.apiTokens.byToken(t), tenant: (id) => auth.tenant(id) },
      deadLetters: store,
      events: {
        bus,
        config: {
          topics,
          topicPartitions: 2,
          maxConnections: 100,
          maxConnectionsPerTenant: 20,
          maxBufferedBytes: 4 * 1_048_576,
          stallTimeoutMs: 30_000,
          recheckMs: 30_000,
          ...limits,
        },
      },
      log,
    },
  )
  await server.start()

  return {
    bus,
    registry,
    store,
    auth,
    server,
    wsUrl: `ws://127.0.0.1:${server.port}`,
    httpUrl: `http://127.0.0.1:${server.port}`,
    async publish(tenant, device, channel, data = { n: 1 }) {
      const event = buildEvent({
        kind: 'telemetry',
        tenant,
        device,
        protocol: 'http',
        subject: channel,
        ...jsonData(data),
      })
      const parts = encodeBinary(event)
      // As the processors do before a tenant's first event.
      await bus.admin.createTopics([{ name: topics.events(tenant), partitions: 2 }])
      const [ack] = await bus.publish([
        {
          topic: topics.events(tenant),
          key: parts.key?.toString(),
          value: parts.value,
          headers: parts.headers,
        },
      ])
      if (ack === undefined) throw new Error('no publish ack')
      return ack
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
      await bus.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface EventClient {
  readonly ws: WebSocket
  /** Structured events received so far, in order. */
  readonly events: Array<Record<string, unknown>>
  /** Resolves with the events once `count` have arrived. */
  receive(count: number): Promise<Array<Record<string, unknown>>>
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>
}

export type Opened = { kind: 'open'; client: EventClient } | { kind: 'refused'; status: number; body: any } // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read fields freely

/** Opens `/api/v1/tenants/<tenant>/events?<query>`; refusals come back with their problem document. */
export function connect(
  h: WsHarness,
  tenant: string,
  query = '',
  options: { token?: string | null; protocols?: string[] } = {},
): Promise<Opened> {
  const token = options.token === undefined ? ADMIN_TOKEN : options.token
  const ws = new WebSocket(
    `${h.wsUrl}/api/v1/tenants/${tenant}/events${query === '' ? '' : `?${query}`}`,
    options.protocols ?? ['cloudevents.json'],
    { headers: token === null ? {} : { authorization: `Bearer ${token}` } },
  )
  const events: Array<Record<string, unknown>> = []
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  ws.on('message', (data: Buffer) => events.push(JSON.parse(data.toString()) as Record<string, unknown>))
  const client: EventClient = {
    ws,
    events,
    closed,
    async receive(count) {
      await waitUntil(() => events.length >= count, {
        message: () => `${count} events (got ${events.length})`,
      })
      return events.slice(0, count)
    },
  }
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ kind: 'open', client }))
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, body: JSON.parse(body) }))
    })
    ws.on('error', (err) => reject(err))
  })
}

/** Opens a socket that must be accepted. */
export async function open(
  h: WsHarness,
  tenant: string,
  query = '',
  options: { token?: string | null; protocols?: string[] } = {},
): Promise<EventClient> {
  const opened = await connect(h, tenant, query, options)
  if (opened.kind !== 'open') throw new Error(`refused with ${opened.status}: ${JSON.stringify(opened.body)}`)
  return opened.client
}
