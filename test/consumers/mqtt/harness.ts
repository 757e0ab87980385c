// The application MQTT broker inside one test process on real parts: its TCP listener on port 0,
// a PGlite registry with its outbox relay and cached auth, the management API's bearer
// authenticator, and the embedded bus whose tenant topics the tests write events to and whose
// commands topic the tests read.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Registry } from 'prom-client'
import { createBearerAuthenticator } from '../../../core/auth/bearer.ts'
import { createOidcVerifier } from '../../../core/auth/oidc.ts'
import type { EmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { uuidv7 } from '../../../core/events/ids.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { createLogger } from '../../../core/log.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import type { AppMqttBroker, AppMqttConfig } from '../../../consumers/mqtt/index.ts'
import { createAppMqttBroker } from '../../../consumers/mqtt/index.ts'
import { tenantTopicEnsurer } from '../../../main/tenant-topic.ts'
import { uniqueName } from '../../helpers/wait.ts'

export const PREFIX = 'tributary'
export const topics = topicNames(PREFIX)
export const ADMIN_TOKEN = 'app-mqtt-admin-token-0123456789abcdef'

export interface AppBroker {
  readonly dir: string
  readonly bus: EmbeddedBus
  readonly registry: RegistryService
  readonly broker: AppMqttBroker
  readonly url: string
  /** A tenant with its event topic and a reader API token (or one of `role`). */
  tenant(role?: 'reader' | 'manager' | 'admin'): Promise<{ id: string; token: string }>
  /** Writes events to the tenant's event topic as the processors do (binary mode). */
  publish(tenant: string, events: ReadonlyArray<{ subject?: string; data: unknown }>): Promise<CloudEvent[]>
  /** The value of a metric series (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>
  close(): Promise<void>
}

export function testConfig(overrides: Partial<AppMqttConfig> = {}): AppMqttConfig {
  return {
    enabled: true,
    host: '127.0.0.1',
    port: 0,
    maxConnections: 100,
    maxConnectionsPerTenant: 5,
    maxSubscriptions: 4,
    maxQueueBytes: 64 * 1024,
    maxKeepaliveSeconds: 60,
    connectTimeoutMs: 5_000,
    // Short, so that a revoked credential ends its connections within the tests' patience.
    credentialRecheckMs: 1_000,
    // Long, so that a slow client is cut by the byte bound the tests are about.
    drainTimeoutMs: 120_000,
    maxInFlightPerTenant: 1_000,
    shutdownTimeoutMs: 5_000,
    topicPrefix: PREFIX,
    commandTtlMs: 60_000,
    maxCommandBytes: 1_024,
    commandRate: 100,
    commandBurst: 200,
    ...overrides,
  }
}

export async function startAppBroker(overrides: Partial<AppMqttConfig> = {}): Promise<AppBroker> {
  const log = createLogger({ level: 'silent' })
  const dir = mkdtempSync(join(tmpdir(), 'tributary-app-mqtt-int-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log })
  await bus.admin.createTopics([
    { name: topics.registry, partitions: 3 },
    { name: topics.commands, partitions: 2 },
  ])
  const store: RegistryStore = await createPgliteStore({ dataDir: dir, cacheDir: TEST_CACHE_DIR, log })
  const secrets = createSecrets(Buffer.alloc(32, 9), { scryptLogN: 12 })
  const relay: OutboxRelay = createOutboxRelay({ store, bus, topic: topics.registry, log, pollMs: 50 })
  const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
  await relay.start()
  const auth: RegistryAuth = createRegistryAuth({
    store,
    bus,
    topic: topics.registry,
    secrets,
    cacheTtlMs: 300_000,
    log,
  })
  await auth.start()
  const metrics = new Registry()
  const bearer = createBearerAuthenticator({
    adminToken: ADMIN_TOKEN,
    lookups: { apiToken: (t) => auth.apiTokens.byToken(t), tenant: (id) => auth.tenant(id) },
    oidc: createOidcVerifier({ jwksCacheMs: 60_000, log }),
  })
  const broker = createAppMqttBroker(testConfig(overrides), {
    bus,
    // As main/roles.ts wires it: a tenant without an event topic gets one when a client subscribes.
    ensureTopic: tenantTopicEnsurer({
      admin: bus.admin,
      topics,
      partitions: 1,
      tenant: (id) => auth.tenant(id),
    }),
    bearer,
    tenant: (id) => auth.tenant(id),
    findDevice: (tenant, device) => auth.findDevice(tenant, device),
    metrics,
    log,
  })
  await broker.start()
  return {
    dir,
    bus,
    registry,
    broker,
    url: `mqtt://127.0.0.1:${broker.port}`,
    async tenant(role = 'reader') {
      const id = uniqueName('a').toLowerCase().slice(0, 40)
      await registry.createTenant(id, { enabled: true })
      await bus.admin.createTopics([{ name: topics.events(id), partitions: 2 }])
      const created = await registry.createApiToken(id, { name: role, role })
      return { id, token: created.secret }
    },
    async publish(tenant, events) {
      const built: CloudEvent[] = events.map(({ subject, data }, i) => ({
        attributes: {
          specversion: '1.0',
          id: uuidv7(),
          source: `tributary://${tenant}/dev-${i % 3}`,
          type: 'io.tributary.telemetry.v1',
          time: new Date().toISOString(),
          datacontenttype: 'application/json',
          tenant,
          device: `dev-${i % 3}`,
          partitionkey: `${tenant}/dev-${i % 3}`,
          ...(subject === undefined ? {} : { subject }),
        },
        data: Buffer.from(JSON.stringify(data)),
      }))
      await bus.publish(
        built.map((e) => ({
          topic: topics.events(tenant),
          ...encodeBinary(e),
          key: e.attributes.partitionkey,
        })),
      )
      return built
    },
    async metric(name, labels = {}) {
      const metric = metrics.getSingleMetric(name)
      if (metric === undefined) return 0
      const values = (await metric.get()).values
      const match = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
      return match?.value ?? 0
    },
    async close() {
      await broker.stop()
      await auth.stop()
      await relay.stop()
      await store.close()
      await bus.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const base: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000 }

/** Connects (MQTT 3.1.1, no reconnects); rejects with the CONNACK refusal. */
export function connect(
  url: string,
  username?: string,
  password?: string,
  options: IClientOptions = {},
): Promise<MqttClient> {
  return mqtt.connectAsync(
    url,
    {
      ...base,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...options,
    },
    false,
  )
}

/** The CONNACK return code of a refused connection, undefined when it was accepted. */
export async function refusal(
  url: string,
  username?: string,
  password?: string,
): Promise<number | undefined> {
  try {
    const client = await connect(url, username, password)
    await client.endAsync()
    return undefined
  } catch (err) {
    return (err as { code?: number }).code
  }
}

/** The SUBACK return codes (MQTT.js rejects a SUBACK holding 0x80, with the packet). */
export async function suback(
  client: MqttClient,
  filters: string | string[] | Record<string, { qos: 0 | 1 | 2 }>,
): Promise<number[]> {
  const packet = await new Promise<{ granted?: number[] } | undefined>((resolve) => {
    client.subscribe(filters, { qos: 0 }, (err, granted) => {
      if (err !== null && err !== undefined) resolve((err as { packet?: { granted?: number[] } }).packet)
      else resolve({ granted: (granted ?? []).map((g) => g.qos) })
    })
  })
  return packet?.granted ?? []
}

/** One message an application received. */
export interface Delivery {
  readonly topic: string
  readonly qos: number
  readonly event: Record<string, unknown>
}

/** Collects what a client receives. */
export function collect(client: MqttClient): Delivery[] {
  const got: Delivery[] = []
  client.on('message', (topic, payload, packet) => {
    got.push({ topic, qos: packet.qos, event: JSON.parse(payload.toString()) as Record<string, unknown> })
  })
  return got
}

/** Resolves when the client's connection has closed. */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve()
    client.once('close', () => resolve())
  })
}
