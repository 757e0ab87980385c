// The MQTT adapter inside one test process on real parts: listeners on port 0 (TCP, TLS with a
// throwaway PKI, WebSocket), a PGlite registry with its outbox relay and cached auth, the embedded
// bus, in-process or Redis cluster state. Tests drive it with MQTT.js and read the ingress topic.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import type { Adapter } from '../../../adapters/adapter.ts'
import { createIngest } from '../../../adapters/adapter.ts'
import type { MqttConfig } from '../../../adapters/mqtt/config.ts'
import { createMqttAdapter } from '../../../adapters/mqtt/index.ts'
import type { CommandOutlet, CommandSink, DeviceResponse } from '../../../commands/outlet.ts'
import type { BusMessage } from '../../../core/bus/bus.ts'
import type { EmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { decode } from '../../../core/events/kafka-codec.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { createLogger } from '../../../core/log.ts'
import { Registry } from 'prom-client'
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
import type { Pki } from '../../fixtures/pki.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'

export const topics = topicNames('tributary')
export const PASSWORD = 'correct horse battery'

/** One received ingress event with its record. */
export interface Received {
  readonly event: CloudEvent
  readonly key: string | undefined
  readonly data: string
}

/** Shared parts one or more adapters (instances) run on. */
export interface Backend {
  readonly dir: string
  readonly bus: EmbeddedBus
  readonly store: RegistryStore
  readonly registry: RegistryService
  readonly relay: OutboxRelay
  /** The registry service with another clock (to write what has already expired). */
  registryAt(now: () => Date): RegistryService
  readonly received: Received[]
  /** Resolves with the events matching, once there are `count` of them. */
  waitFor(match: (r: Received) => boolean, count?: number): Promise<Received[]>
  close(): Promise<void>
}

export async function startBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-mqtt-int-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log: createLogger({ level: 'silent' }) })
  await bus.admin.createTopics([
    { name: topics.ingress, partitions: 3 },
    { name: topics.registry, partitions: 3 },
  ])
  const store = await createPgliteStore({
    dataDir: dir,
    cacheDir: TEST_CACHE_DIR,
    log: createLogger({ level: 'silent' }),
  })
  const secrets = createSecrets(Buffer.alloc(32, 9), { scryptLogN: 12 })
  const relay = createOutboxRelay({
    store,
    bus,
    topic: topics.registry,
    log: createLogger({ level: 'silent' }),
    pollMs: 50,
  })
  const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
  await relay.start()
  const received: Received[] = []
  const tap = await bus.subscribe({
    group: uniqueName('tap'),
    topics: [topics.ingress],
    from: 'earliest',
    handler: async (batch: readonly BusMessage[]) => {
      for (const m of batch) {
        const event = decode({
          key: m.key === undefined ? undefined : Buffer.from(m.key),
          value: m.value,
          headers: m.headers,
        })
        received.push({ event, key: m.key, data: m.value?.toString() ?? '' })
      }
    },
  })
  return {
    dir,
    bus,
    store,
    registry,
    relay,
    registryAt: (now) => createRegistryService({ store, secrets, onChange: () => relay.nudge(), now }),
    received,
    async waitFor(match, count = 1) {
      await waitUntil(() => received.filter(match).length >= count, {
        timeoutMs: 10_000,
        message: () =>
          `${count} matching ingress event(s); have ${JSON.stringify(received.map((r) => r.event.attributes))}`,
      })
      return received.filter(match)
    },
    async close() {
      await tap.close()
      await relay.stop()
      await store.close()
      await bus.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** One adapter instance with its own registry cache and metrics, like one process. */
export interface Instance {
  readonly adapter: Adapter
  readonly ports: Record<string, number>
  readonly auth: RegistryAuth
  readonly cluster: ClusterState
  readonly metrics: Registry
  readonly commands: FakeOutlet
  readonly logs: Array<Record<string, unknown>>
  /** The value of a metric series (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>
  stop(): Promise<void>
}

export interface InstanceOptions {
  readonly config?: Partial<MqttConfig> | undefined
  readonly pki?: Pki | undefined
  readonly cluster?: ClusterState | undefined
  readonly commands?: FakeOutlet | undefined
  /** The configuration service the adapter uses (default: the backend's registry). */
  readonly configService?: Backend['registry'] | undefined
}

/** A double of the command outlet (the dispatcher's port): the sinks attached now, and responses heard. */
export interface FakeOutlet extends Pick<CommandOutlet, 'attach' | 'responded'> {
  /** Sinks attached now, by `<tenant>/<device>`, oldest first. */
  readonly attached: Map<string, CommandSink[]>
  /** How many times each `<tenant>/<device>` attached. */
  readonly attaches: Map<string, number>
  readonly responses: DeviceResponse[]
  /** The newest sink of a device, once there is one. */
  sink(tenant: string, device: string): Promise<CommandSink>
}

export function createFakeOutlet(): FakeOutlet {
  const attached = new Map<string, CommandSink[]>()
  const attaches = new Map<string, number>()
  const responses: DeviceResponse[] = []
  return {
    attached,
    attaches,
    responses,
    attach(tenant, device, sink) {
      const key = `${tenant}/${device}`
      attached.set(key, [...(attached.get(key) ?? []), sink])
      attaches.set(key, (attaches.get(key) ?? 0) + 1)
      return () => {
        const left = (attached.get(key) ?? []).filter((s) => s !== sink)
        if (left.length === 0) attached.delete(key)
        else attached.set(key, left)
      }
    },
    responded: (response) => void responses.push(response),
    async sink(tenant, device) {
      const key = `${tenant}/${device}`
      await waitUntil(() => (attached.get(key)?.length ?? 0) > 0, {
        timeoutMs: 10_000,
        message: () => `a command sink for ${key}`,
      })
      return attached.get(key)!.at(-1)!
    },
  }
}

export function testConfig(overrides: Partial<MqttConfig> = {}, pki?: Pki): MqttConfig {
  return {
    host: '127.0.0.1',
    tcp: { enabled: true, port: 0, portVariable: 'TRIBUTARY_MQTT_PORT' },
    tls: {
      enabled: pki !== undefined,
      port: 0,
      portVariable: 'TRIBUTARY_MQTTS_PORT',
      certFile: pki?.server.certFile,
      keyFile: pki?.server.keyFile,
    },
    ws: { enabled: true, port: 0, portVariable: 'TRIBUTARY_MQTT_WS_PORT' },
    maxPayloadBytes: 4096,
    publishRate: 1000,
    maxConnectionsPerTenant: 100,
    connectTimeoutMs: 5_000,
    drainTimeoutMs: 5_000,
    shutdownTimeoutMs: 5_000,
    lastSeenIntervalMs: 60_000,
    ...overrides,
  }
}

export async function startInstance(backend: Backend, options: InstanceOptions = {}): Promise<Instance> {
  const logs: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    },
  })
  const log = createLogger({ level: 'debug', destination })
  const secrets = createSecrets(Buffer.alloc(32, 9), { scryptLogN: 12 })
  const auth = createRegistryAuth({
    store: backend.store,
    bus: backend.bus,
    topic: topics.registry,
    secrets,
    cacheTtlMs: 300_000,
    log,
  })
  await auth.start()
  const cluster = options.cluster ?? createMemoryCluster({ log })
  await cluster.start()
  const metrics = new Registry()
  const commands = options.commands ?? createFakeOutlet()
  const adapter = createMqttAdapter(testConfig(options.config, options.pki), {
    ingest: createIngest({ bus: backend.bus, topics, log }),
    auth,
    listTenants: (o) => backend.registry.listTenants(o),
    touchDevice: (t, d, at) => backend.store.touchDevice(t, d, at),
    cluster,
    config: options.configService ?? backend.registry,
    commands,
    metrics,
    log,
  })
  try {
    await adapter.start()
  } catch (err) {
    await cluster.stop()
    await auth.stop()
    throw err
  }
  return {
    adapter,
    ports: adapter.ports(),
    auth,
    cluster,
    metrics,
    commands,
    logs,
    async metric(name, labels = {}) {
      const metric = metrics.getSingleMetric(name)
      if (metric === undefined) return 0
      const values = (await metric.get()).values
      const match = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
      return match?.value ?? 0
    },
    async stop() {
      await adapter.stop()
      await cluster.stop()
      await auth.stop()
    },
  }
}

export const newTenant = (): string => uniqueName('t').toLowerCase().slice(0, 40)

/** A tenant with one device that has the test password. */
export async function deviceWithPassword(backend: Backend, tenant: string, device: string): Promise<void> {
  await backend.registry.createDevice(tenant, device, { enabled: true })
  await backend.registry.setPassword(tenant, device, PASSWORD)
}

export const tcpUrl = (i: Instance): string => `mqtt://127.0.0.1:${i.ports['mqtt']}`
export const wsUrl = (i: Instance): string => `ws://127.0.0.1:${i.ports['mqttWs']}/mqtt`

const base: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000 }

/** Connects (MQTT 3.1.1, no reconnects); rejects with the CONNACK refusal. */
export function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { ...base, ...options }, false)
}

export function login(device: string, tenant: string, password = PASSWORD): IClientOptions {
  return { username: `${device}@${tenant}`, password }
}

/** The CONNACK return code of a refused connection. */
export async function refusal(url: string, options: IClientOptions): Promise<number | undefined> {
  try {
    const client = await connect(url, options)
    await client.endAsync()
    return undefined
  } catch (err) {
    return (err as { code?: number }).code
  }
}

/** Resolves when the client's connection has closed. */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve()
    client.once('close', () => resolve())
  })
}

/** Events of one device, in bus order. */
export const ofDevice =
  (tenant: string, device: string) =>
  (r: Received): boolean =>
    r.event.attributes.tenant === tenant && r.event.attributes.device === device

export const isConnection = (r: Received): boolean => r.event.attributes.type === 'io.tributary.connection.v1'
export const isTelemetry = (r: Received): boolean => r.event.attributes.type === 'io.tributary.telemetry.v1'
export const connectionData = (
  r: Received,
): { status: string; listener: string; reason?: string; remote?: string } =>
  JSON.parse(r.data) as { status: string; listener: string; reason?: string; remote?: string }
