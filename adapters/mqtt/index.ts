// The device MQTT adapter: TCP, TLS and WebSocket listeners hand each connection, by the protocol
// level of its CONNECT, to one aedes instance (MQTT 3.1.1 and 3.1) whose hooks authenticate devices,
// make each message a durable CloudEvent before it is acknowledged and deliver commands to devices
// that subscribed to them, or to the MQTT 5 endpoint (v5/) on the same authentication and ingest. Start, the
// end of every connection, and a bounded stop live here.
import type { Aedes, Client } from 'aedes'
import type { Adapter, Ingest } from '../adapter.ts'
import { createLastSeen, createRateLimiter } from '../device-limits.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import type { ListOptions, Page, Tenant } from '../../core/registry/model.ts'
import { createAedesLinks } from './aedes-link.ts'
import { createAnchorIndex } from './anchors.ts'
import { createConnectAuthenticator } from './auth.ts'
import { createBroker, sentDisconnect } from './broker.ts'
import { createCommandChannel } from './commands.ts'
import type { ConfigPushDeps } from './config-push.ts'
import { createFilesToken } from './files-token.ts'
import type { PublishedDeps } from '../../core/blobs/published.ts'
import { createConfigPush } from './config-push.ts'
import type { MqttConfig } from './config.ts'
import { readTlsFiles } from './config.ts'
import { createConnectHandler } from './connect.ts'
import { createConnectionTable, newConnection } from './connection.ts'
import type { Connection } from './connection.ts'
import { createHooks } from './hooks.ts'
import { PACKET_OVERHEAD_BYTES, guardPacketSize } from './limits.ts'
import type { Accepted, Listeners } from './listeners.ts'
import { createListeners } from './listeners.ts'
import { createMqttMetrics } from './metrics.ts'
import { createPublishHandler } from './publish.ts'
import { createRefusals } from './refusals.ts'
import { createRevocation } from './revocation.ts'
import { createDeviceRoutes } from './routes.ts'
import { createSessions } from './sessions.ts'
import { sniffLevel } from './sniff.ts'
import { createTlsContexts, createTlsGate } from './tls-gate.ts'
import { serveV5 } from './v5/endpoint.ts'
import type { EndpointDeps } from './v5/endpoint.ts'

export type { MqttConfig } from './config.ts'
export { mqttConfig } from './config.ts'

export interface MqttAdapterDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'connection' | 'event' | 'unavailable'>
  readonly auth: Pick<RegistryAuth, 'device' | 'tenant' | 'findDevice' | 'onChange'>
  /** Every tenant, paged: the issuer index for client certificates sent without a username. */
  readonly listTenants: (options: ListOptions) => Promise<Page<Tenant>>
  readonly touchDevice: (tenant: string, device: string, at: Date) => Promise<void>
  readonly cluster: ClusterState
  /** Configuration pushed on `config` and reports on `config/applied` (docs/config.md). */
  readonly config: ConfigPushDeps['config']
  /** Command delivery: a sink per connection holding command subscriptions; device responses. */
  readonly commands: Pick<CommandOutlet, 'attach' | 'responded'>
  /**
   * Upload tokens on `files/token/req/<id>` (docs/files.md): the uploads, and the base URL of the
   * device HTTP listener given the local address the device reached (undefined: not listening).
   * Unset: no device HTTP listener, requests are answered 503.
   */
  readonly files?:
    | {
        readonly uploads: Pick<Uploads, 'issue' | 'presign'>
        readonly uploadBase: (localAddress: string | undefined) => string | undefined
      }
    | undefined
  /** Files published to devices (`files/{list,download}/req/<id>`); unset: those are answered 503. */
  readonly published?: PublishedDeps | undefined
  readonly metrics: Registry
  readonly log: Logger
}

/** Why aedes ended a connection, from the error it reported. */
export function reasonOf(err: Error & { code?: string }): string {
  if (err.message === 'keep alive timeout') return 'keepalive-timeout'
  if (err.message === 'drain timeout') return 'slow-client'
  if (err.message === 'connect did not arrive in time') return 'connect-timeout'
  if (err.message === 'Client queue limit reached') return 'queue-limit'
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ETIMEDOUT') return 'connection-lost'
  return 'protocol-error'
}

export function createMqttAdapter(config: MqttConfig, deps: MqttAdapterDeps): Adapter {
  const { auth, cluster, ingest, log } = deps
  const metrics = createMqttMetrics(deps.metrics)
  const refusals = createRefusals(metrics, log)
  const table = createConnectionTable()
  const sessions = createSessions({
    cluster,
    table,
    maxConnectionsPerTenant: config.maxConnectionsPerTenant,
    closeTimeoutMs: config.connectTimeoutMs,
    log,
  })
  const anchors = createAnchorIndex({ listTenants: deps.listTenants, tenant: (id) => auth.tenant(id), log })
  const findDevice = (tenant: string, device: string) => auth.findDevice(tenant, device)
  const commandChannel = createCommandChannel({ commands: deps.commands, findDevice, refusals, log })
  const configPush = createConfigPush({
    config: deps.config,
    ingest,
    table,
    findDevice,
    refused: (conn, reason, detail) => refusals.message(conn, reason, detail),
    log,
  })
  const filesToken = createFilesToken({
    uploads: deps.files?.uploads,
    published: deps.published,
    uploadBase: (conn) => {
      const local = (conn.tls ?? conn.stream) as { localAddress?: unknown }
      return deps.files?.uploadBase(typeof local.localAddress === 'string' ? local.localAddress : undefined)
    },
    findDevice,
    refused: (conn, reason, detail) => refusals.message(conn, reason, detail),
    log,
  })
  const lastSeen = createLastSeen({ touch: deps.touchDevice, intervalMs: config.lastSeenIntervalMs, log })
  let stopping = false
  let broker: Aedes | undefined
  let listeners: Listeners | undefined
  const unsubscribe: Array<() => void> = []
  const ending = new Set<Promise<void>>()

  function track<T>(conn: Connection, work: Promise<T>): Promise<T> {
    conn.pending.add(work)
    void work.then(
      () => conn.pending.delete(work),
      () => conn.pending.delete(work),
    )
    return work
  }

  const connect = createConnectHandler({
    authenticator: createConnectAuthenticator({ device: auth.device, anchors }),
    sessions,
    ingest,
    refusals,
    metrics,
    lastSeen,
    maxPayloadBytes: config.maxPayloadBytes,
    stopping: () => stopping,
    log,
  })
  const publish = createPublishHandler({
    ingest,
    commands: deps.commands,
    limiter: createRateLimiter({
      cluster,
      tenant: (id) => auth.tenant(id),
      defaultRate: config.publishRate,
      log,
    }),
    findDevice,
    metrics,
    maxPayloadBytes: config.maxPayloadBytes,
    refused: (conn, reason, detail) => refusals.message(conn, reason, detail),
  })
  const routes = createDeviceRoutes({
    commands: commandChannel,
    config: configPush,
    files: filesToken,
    publish,
    refusals,
  })
  const hooks = createHooks({
    table,
    metrics,
    track,
    routes,
    links: createAedesLinks(),
    broker: () => broker,
    connect,
  })
  const endpointV5: EndpointDeps = {
    connect,
    routes,
    refusals,
    metrics,
    track,
    maxPacketBytes: config.maxPayloadBytes + PACKET_OVERHEAD_BYTES,
    connectTimeoutMs: config.connectTimeoutMs,
    drainTimeoutMs: config.drainTimeoutMs,
    log,
  }

  /** The end of a connection: after its in-flight publishes, the session goes and the event is written. */
  async function ended(conn: Connection): Promise<void> {
    try {
      conn.closed = true
      commandChannel.detach(conn)
      while (conn.pending.size > 0) await Promise.allSettled([...conn.pending])
      table.remove(conn)
      const session = conn.session
      if (session === undefined) return
      await sessions.release(conn)
      if (!conn.announced) return
      const { tenant, device } = session
      const reason =
        conn.closeReason ?? (sentDisconnect(conn.client) ? 'client-disconnect' : 'connection-lost')
      metrics.disconnected(conn.listener, tenant)
      const outcome = await ingest.connection({
        tenant,
        device,
        protocol: 'mqtt',
        status: 'disconnected',
        listener: conn.listener,
        reason,
        remote: conn.remote,
      })
      if (outcome.kind !== 'accepted')
        log.warn({ tenant, device, detail: outcome.detail }, 'disconnected event not written')
      log.info({ tenant, device, listener: conn.listener, reason }, 'device disconnected')
    } catch (err) {
      log.error({ err, connection: conn.id }, 'ending an MQTT connection failed')
    } finally {
      conn.markFinished()
    }
  }

  function accept(accepted: Accepted): void {
    const { stream } = accepted
    if (stopping || broker === undefined) return void stream.destroy()
    const conn = newConnection(accepted)
    table.add(conn)
    // Until an endpoint has the stream (and after), a socket error must not end the process; the
    // endpoint that serves it records why it ended.
    stream.on('error', () => undefined)
    stream.once('close', () => {
      const done = ended(conn)
      ending.add(done)
      void done.then(() => ending.delete(done))
    })
    // The CONNECT's protocol level picks the endpoint: MQTT 5 is served here, the rest by aedes.
    void sniffLevel(stream, config.connectTimeoutMs).then((sniffed) => {
      if (!sniffed.ok) {
        conn.closeReason ??= sniffed.reason
        if (sniffed.reason === 'connect-timeout') refusals.message(conn, sniffed.reason, 'no CONNECT in time')
        return void stream.destroy()
      }
      if (stopping || broker === undefined) return void stream.destroy()
      guardPacketSize(stream, config.maxPayloadBytes + PACKET_OVERHEAD_BYTES, (declared) => {
        refusals.message(conn, 'packet-too-large', `a packet of ${declared} bytes`)
        // MQTT 5: DISCONNECT 0x95 before closing (§4.13); 3.1.1 has no way to say it.
        if (conn.end !== undefined) return conn.end('packet-too-large')
        conn.closeReason ??= 'packet-too-large'
        stream.destroy()
      })
      if (sniffed.level === 5) serveV5(conn, endpointV5)
      else broker.handle(stream, accepted.req)
    })
  }

  function watch(aedes: Aedes): void {
    const noted = (client: Client | null, err: Error): void => {
      const conn = client === null ? undefined : table.of(client.conn)
      if (conn === undefined) return
      const reason = reasonOf(err)
      conn.closeReason ??= reason
      // Limits broken before a session exists are refusals too (no CONNECT in time, queue overflow).
      if (conn.session === undefined && (reason === 'connect-timeout' || reason === 'queue-limit'))
        refusals.message(conn, reason, err.message)
      log.debug({ err, connection: conn.id, reason }, 'MQTT connection error')
    }
    aedes.on('clientError', noted)
    aedes.on('connectionError', noted)
    // Granted subscriptions (not those restored with a session: connackSent covers them, and no
    // command goes out before the CONNACK), removed ones. aedes reports refused filters too, with
    // QoS 128 (SUBACK failure).
    aedes.on('subscribe', (subscriptions, client) => {
      const conn = table.of(client.conn)
      const granted = subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic)
      if (conn !== undefined) routes.subscribed(conn, granted)
    })
    aedes.on('unsubscribe', (_unsubscriptions, client) => {
      const conn = table.of(client.conn)
      if (conn !== undefined) routes.unsubscribed(conn)
    })
    aedes.on('connackSent', (_packet, client) => {
      const conn = table.of(client.conn)
      if (conn !== undefined) commandChannel.subscriptionsChanged(conn, true)
    })
    aedes.on('keepaliveTimeout', (client) => {
      const conn = table.of(client.conn)
      if (conn !== undefined) conn.closeReason ??= 'keepalive-timeout'
    })
    // aedes emits 'error' for persistence failures; unhandled, it would end the process.
    ;(aedes as NodeJS.EventEmitter).on('error', (err: unknown) => log.error({ err }, 'MQTT broker error'))
  }

  const ports: Record<string, number> = {}
  return {
    name: 'mqtt',
    protocol: 'mqtt',
    ports: () => ({ ...ports }),

    async start() {
      const tlsGate = config.tls.enabled
        ? createTlsGate({
            contexts: createTlsContexts(await readTlsFiles(config.tls)),
            byPsk: (identity) => auth.device.byPsk(identity),
            timeoutMs: config.connectTimeoutMs,
            refused: (reason, detail) => refusals.handshake(reason, detail),
          })
        : undefined
      broker = await createBroker(config, hooks)
      watch(broker)
      try {
        if (config.tls.enabled) await anchors.load()
        unsubscribe.push(
          sessions.listen(),
          auth.onChange((change) => configPush.changed(change)),
          auth.onChange(
            createRevocation({
              table,
              tenant: (id) => auth.tenant(id),
              findDevice,
              close: (conn, reason) => void sessions.close(conn, reason, { dropWill: true }),
              tenantChanged: async (tenant) => (config.tls.enabled ? anchors.refresh(tenant) : undefined),
              log,
            }),
          ),
        )
        listeners = createListeners(config, {
          accept,
          tlsGate,
          refused: (reason, detail) => refusals.handshake(reason, detail),
          log,
        })
        Object.assign(ports, await listeners.start())
      } catch (err) {
        for (const off of unsubscribe.splice(0)) off()
        await new Promise<void>((resolve) => broker?.close(() => resolve()))
        throw err
      }
      log.info({ ports, host: config.host }, 'MQTT adapter listening')
    },

    async stop() {
      if (stopping) return
      stopping = true
      listeners?.stopAccepting()
      const live = [...table.all()]
      for (const conn of live) void sessions.close(conn, 'shutdown', { dropWill: true })
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.shutdownTimeoutMs)))
      await Promise.race([Promise.allSettled([...live.map((c) => c.finished), ...ending]), deadline])
      clearTimeout(timer)
      for (const off of unsubscribe.splice(0)) off()
      await new Promise<void>((resolve) => (broker === undefined ? resolve() : broker.close(() => resolve())))
      listeners?.destroyAll()
      await lastSeen.flush()
      log.info({ closed: live.length }, 'MQTT adapter stopped')
    },
  }
}
