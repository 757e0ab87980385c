// A real CoAP adapter for integration tests: PGlite registry with its change relay and cached
// authenticators, the embedded bus in a temporary directory, the in-process cluster state, and the
// adapter on a free UDP port. Peers are the `coap` package's client and raw datagrams.
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'coap'
import type { OptionValue } from 'coap'
import { parse } from 'coap-packet'
import type { ParsedPacket } from 'coap-packet'
import type { Adapter } from '../../../adapters/adapter.ts'
import { createIngest } from '../../../adapters/adapter.ts'
import { createCoapAdapter } from '../../../adapters/coap/index.ts'
import type { CoapConfig } from '../../../adapters/coap/index.ts'
import type { BusMessage, EventBus } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import { createMetricsRegistry } from '../../../core/metrics.ts'
import type { Registry } from '../../../core/metrics.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { FakeOutlet } from '../http/fake-outlet.ts'
import { createFakeOutlet } from '../http/fake-outlet.ts'

export const TOPICS = topicNames('coapit')

export interface CoapHarness {
  readonly port: number
  readonly adapter: Adapter
  readonly bus: EventBus
  readonly registry: RegistryService
  readonly store: RegistryStore
  readonly auth: RegistryAuth
  readonly cluster: ClusterState
  readonly metrics: Registry
  /** The command outlet the adapter attaches its sinks to (a fake: commands are sent with it). */
  readonly commands: FakeOutlet
  /** Every ingress record so far, in offset order per partition. */
  readonly ingress: BusMessage[]
  /** Waits until registry writes so far reached the authentication cache. */
  settle(): Promise<void>
  /** Records on the ingress topic now (all partitions), read from the bus's own offsets. */
  ingressCount(): Promise<number>
  close(): Promise<void>
}

export function coapConfig(overrides: Partial<CoapConfig> = {}): CoapConfig {
  return {
    enabled: true,
    host: '127.0.0.1',
    port: 0,
    portVariable: 'TRIBUTARY_COAP_PORT',
    maxPayloadBytes: 2_048,
    publishRate: 1_000,
    piggybackMs: 500,
    maxBlockTransfers: 16,
    responseCacheBytes: 1024 * 1024,
    lastSeenIntervalMs: 60_000,
    shutdownTimeoutMs: 2_000,
    maxCommandWaitSeconds: 60,
    ...overrides,
  }
}

export async function startCoap(
  overrides: Partial<CoapConfig> = {},
  busOverride?: EventBus,
): Promise<CoapHarness> {
  const log = silentLogger
  const dir = mkdtempSync(join(tmpdir(), 'tributary-coap-'))
  const bus = await createEmbeddedBus({ dataDir: dir, log })
  await bus.admin.createTopics([
    { name: TOPICS.registry, partitions: 1 },
    { name: TOPICS.ingress, partitions: 3 },
  ])
  const store = await createPgliteStore({ cacheDir: TEST_CACHE_DIR, log })
  const secrets = createSecrets(randomBytes(32), { scryptLogN: 10 })
  const relay: OutboxRelay = createOutboxRelay({ store, bus, topic: TOPICS.registry, log, pollMs: 50 })
  const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
  const auth = createRegistryAuth({ store, bus, topic: TOPICS.registry, secrets, cacheTtlMs: 60_000, log })
  const cluster = createMemoryCluster({ log })
  await relay.start()
  await auth.start()
  await cluster.start()
  const ingress: BusMessage[] = []
  const subscription = await bus.subscribe({
    group: 'coap-it-reader',
    topics: [TOPICS.ingress],
    from: 'earliest',
    handler: async (batch) => void ingress.push(...batch),
  })
  const metrics = createMetricsRegistry()
  const commands = createFakeOutlet()
  const adapter = createCoapAdapter(coapConfig(overrides), {
    ingest: createIngest({ bus: busOverride ?? bus, topics: TOPICS, log }),
    auth,
    touchDevice: (t, d, at) => store.touchDevice(t, d, at),
    cluster,
    commands,
    config: registry,
    onRegistryChange: (listener) => auth.onChange(listener),
    metrics,
    log,
  })
  await adapter.start()
  return {
    port: adapter.ports()['coap']!,
    adapter,
    bus,
    registry,
    store,
    auth,
    cluster,
    metrics,
    commands,
    ingress,
    async settle() {
      await relay.flush()
      const target = relay.published
      await waitUntil(() => auth.invalidations >= target, {
        message: () => 'registry changes to reach the cache',
      })
    },
    async ingressCount() {
      const offsets = await bus.admin.offsets(TOPICS.ingress)
      return offsets.reduce((sum, p) => sum + p.next - p.earliest, 0)
    },
    async close() {
      await adapter.stop()
      await subscription.close()
      await cluster.stop()
      await auth.stop()
      await relay.stop()
      await bus.close()
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface CoapReplyView {
  readonly code: string
  readonly payload: string
  readonly headers: Record<string, unknown>
}

export interface ClientRequest {
  readonly path: string
  readonly query?: string | undefined
  readonly payload?: Buffer | string | undefined
  readonly confirmable?: boolean | undefined
  readonly options?: Record<string, OptionValue> | undefined
  readonly method?: string | undefined
}

/** One request with the `coap` package's client on its own agent (socket); bounded in time. */
export function coapRequest(port: number, init: ClientRequest, timeoutMs = 10_000): Promise<CoapReplyView> {
  return new Promise((resolve, reject) => {
    const agent = new Agent({ type: 'udp4' })
    const timer = setTimeout(() => reject(new Error(`no CoAP response within ${timeoutMs} ms`)), timeoutMs)
    const req = request({
      hostname: '127.0.0.1',
      port,
      method: (init.method ?? 'POST') as 'POST',
      pathname: init.path,
      query: init.query ?? '',
      confirmable: init.confirmable ?? true,
      agent,
      options: init.options ?? {},
    })
    req.on('response', (res: { code: string; payload: Buffer; headers: Record<string, unknown> }) => {
      clearTimeout(timer)
      resolve({ code: res.code, payload: res.payload.toString('utf8'), headers: res.headers })
    })
    req.on('error', (err: Error) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end(init.payload)
  })
}

/** Sends raw datagrams from one socket and collects what comes back until `count` arrived. */
export async function rawExchange(
  port: number,
  datagrams: Buffer[],
  count: number,
  timeoutMs = 5_000,
): Promise<ParsedPacket[]> {
  const socket = createSocket('udp4')
  const received: ParsedPacket[] = []
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    socket.on('message', (msg) => received.push(parse(msg)))
    for (const datagram of datagrams) {
      await new Promise<void>((resolve, reject) =>
        socket.send(datagram, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      )
      // Each datagram waits for an answer before the next, so a duplicate is really a duplicate.
      const want = received.length + 1
      await waitUntil(() => received.length >= Math.min(want, count), { timeoutMs, intervalMs: 5 })
    }
    await waitUntil(() => received.length >= count, { timeoutMs, intervalMs: 5 })
    return received
  } finally {
    socket.close()
  }
}

export const basic = (username: string, password: string): string =>
  `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
