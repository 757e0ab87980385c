// The application MQTT broker (MQTT 3.1.1 on its own aedes instance and port, never the device
// broker's): applications log in as a tenant with a bearer credential, subscribe to
// `app/<tenant>[/<channel>]` and receive that tenant's processed events as structured JSON
// CloudEvents, read from `<prefix>.events.<tenant>` by one reader per tenant and process; they
// send commands by publishing on `command/<tenant>/<device>/<name>[/<request id>]`.
import { SpanKind, startStage } from '../../core/tracing.ts'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { Aedes } from 'aedes'
import type { PublishPacket } from 'aedes'
import type { BearerAuthenticator } from '../../core/auth/bearer.ts'
import type { BusMessage, EventBus } from '../../core/bus/bus.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import { encodeStructuredBuffer } from '../../core/events/structured.ts'
import { topicNames } from '../../core/events/topics.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import { listen } from '../../core/net.ts'
import type { Device, Tenant } from '../../core/registry/model.ts'
import { createAppAuthenticator } from './auth.ts'
import { createAppCommands } from './commands.ts'
import type { AppMqttConfig } from './config.ts'
import { createFanout } from './fanout.ts'
import type { AppClient } from './hooks.ts'
import { createHooks, newAppClient } from './hooks.ts'
import { createAppMqttMetrics } from './metrics.ts'
import { eventTopic } from './topics.ts'

export type { AppMqttConfig } from './config.ts'
export { appMqttConfig } from './config.ts'

export interface AppMqttDeps {
  readonly bus: Pick<EventBus, 'subscribe' | 'publish'>
  /** Creates a tenant's event topic unless it exists, before its reader subscribes. */
  readonly ensureTopic?: ((tenant: string) => Promise<void>) | undefined
  readonly bearer: BearerAuthenticator
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  /** A device of a tenant (registry cache): commands go to existing devices only. */
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly metrics: Registry
  readonly log: Logger
}

/** Packets a client may send before its CONNECT is answered (aedes's default is 42). */
const QUEUE_LIMIT = 16
/** Events aedes fans out at once; per tenant they are bounded by config.maxInFlightPerTenant. */
const CONCURRENCY = 10_000

export function createAppMqttBroker(config: AppMqttConfig, deps: AppMqttDeps) {
  const { log } = deps
  const metrics = createAppMqttMetrics(deps.metrics)
  const topics = topicNames(config.topicPrefix)
  // One consumer group per process and tenant: every process serves its own clients.
  const instance = randomBytes(6).toString('hex')
  const clients = new Map<unknown, AppClient>()
  const sockets = new Set<Socket>()
  let broker: Aedes | undefined
  let stopping = false
  let port = 0
  let rechecker: NodeJS.Timeout | undefined
  let rechecking = false

  function deliver(tenant: string, message: BusMessage, done: () => void): void {
    let payload: Buffer
    let subject: string | undefined
    let traceparent: string | undefined
    try {
      const event = decode({
        key: message.key === undefined ? undefined : Buffer.from(message.key),
        value: message.value,
        headers: message.headers,
      })
      subject = event.attributes.subject
      traceparent = event.attributes.traceparent
      payload = encodeStructuredBuffer(event)
    } catch (err) {
      log.warn({ err, tenant, offset: message.offset }, 'a record of the tenant topic is not a CloudEvent')
      return done()
    }
    if (broker === undefined) return done()
    const packet: PublishPacket = {
      cmd: 'publish',
      topic: eventTopic(tenant, subject),
      payload,
      qos: 1,
      retain: false,
      dup: false,
    }
    // The delivery's stage of the event's trace: until the broker has handed it to the subscribers.
    const span = startStage('mqtt deliver', SpanKind.PRODUCER, traceparent, {
      'tributary.tenant': tenant,
      'messaging.destination.name': packet.topic,
    })
    broker.publish(packet, () => {
      span?.end()
      done()
    })
  }

  const fanout = createFanout({
    bus: deps.bus,
    ensureTopic: deps.ensureTopic,
    topic: (tenant) => topics.events(tenant),
    group: (tenant) => `${topics.prefix}-app-mqtt-${instance}-${tenant}`,
    deliver,
    maxInFlight: config.maxInFlightPerTenant,
    log,
  })

  const { hooks, ended, recheck } = createHooks({
    config,
    clients,
    authenticate: createAppAuthenticator({ bearer: deps.bearer, tenant: deps.tenant }),
    fanout,
    commands: createAppCommands({
      bus: deps.bus,
      topic: topics.commands,
      findDevice: deps.findDevice,
      ttlMs: config.commandTtlMs,
    }),
    metrics,
    stopping: () => stopping,
    log,
  })

  const server = createServer((socket) => {
    if (stopping || broker === undefined) return void socket.destroy()
    sockets.add(socket)
    socket.setNoDelay(true)
    const state = newAppClient(config.commandBurst)
    clients.set(socket, state)
    socket.once('close', () => {
      sockets.delete(socket)
      clients.delete(socket)
      ended(state)
    })
    broker.handle(socket)
  })
  server.maxConnections = config.maxConnections
  server.on('drop', () => metrics.refused('connection-limit'))

  return {
    name: 'appMqtt',
    /** The bound port once started. */
    get port(): number {
      return port
    },

    async start(): Promise<void> {
      const aedes = await Aedes.createBroker({
        ...hooks,
        connectTimeout: config.connectTimeoutMs,
        drainTimeout: config.drainTimeoutMs,
        queueLimit: QUEUE_LIMIT,
        concurrency: CONCURRENCY,
        maxClientsIdLength: 256,
      })
      aedes.on('clientError', (client, err) => {
        const state = clients.get(client.conn)
        if (state !== undefined && err.message === 'drain timeout' && !state.dropped) {
          state.dropped = true
          metrics.dropped('drain-timeout')
        }
        log.debug({ err, client: client.id }, 'application MQTT client error')
      })
      aedes.on('unsubscribe', (filters, client) => {
        const state = clients.get(client.conn)
        for (const filter of filters) state?.filters.delete(filter)
      })
      ;(aedes as NodeJS.EventEmitter).on('error', (err: unknown) =>
        log.error({ err }, 'application MQTT broker error'),
      )
      broker = aedes
      try {
        port = await listen(server, {
          host: config.host,
          port: config.port,
          variable: 'TRIBUTARY_APP_MQTT_PORT',
          name: 'application MQTT',
        })
      } catch (err) {
        await new Promise<void>((resolve) => aedes.close(() => resolve()))
        throw err
      }
      rechecker = setInterval(() => {
        if (rechecking) return
        rechecking = true
        recheck()
          .catch((err: unknown) => log.warn({ err }, 'checking application MQTT credentials failed'))
          .finally(() => (rechecking = false))
      }, config.credentialRecheckMs)
      rechecker.unref()
      log.info({ port, host: config.host }, 'application MQTT broker listening')
    },

    async stop(): Promise<void> {
      if (stopping) return
      stopping = true
      clearInterval(rechecker)
      if (server.listening) server.close()
      // Applications reconnect to another process; nothing of theirs is in flight here.
      const open = sockets.size
      for (const socket of sockets) socket.destroy()
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.shutdownTimeoutMs)))
      await Promise.race([fanout.closeAll(), deadline])
      clearTimeout(timer)
      await new Promise<void>((resolve) => (broker === undefined ? resolve() : broker.close(() => resolve())))
      log.info({ closed: open }, 'application MQTT broker stopped')
    },
  }
}

export type AppMqttBroker = ReturnType<typeof createAppMqttBroker>
