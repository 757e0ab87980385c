// Desired configuration over MQTT (docs/config.md): a device that subscribes to `config` is sent
// `{configId, config}` there at once, and again whenever a registry change (on the registry topic,
// so from any process) gives it another configuration id; it reports on `config/applied`. Like
// commands, each PUBLISH is written to the one client only, never through aedes's topic routing.
import type { AedesPublishPacket, Client, Subscription } from 'aedes'
import type { Ingest } from '../adapter.ts'
import { appliedEventInput, deliveredEventInput } from '../../core/events/config.ts'
import { isTributaryError } from '../../core/errors.ts'
import type { Logger } from '../../core/log.ts'
import type { RegistryChange } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { subscriptionsOf, writeFailed } from './broker.ts'
import type { Connection, ConnectionTable, Session } from './connection.ts'
import type { PublishResult } from './publish.ts'

/** The topic a device subscribes to for its configuration, and the one it reports on. */
export const CONFIG_TOPIC = 'config'
export const CONFIG_APPLIED_TOPIC = 'config/applied'

export interface ConfigPushDeps {
  readonly config: Pick<RegistryService, 'getEffectiveConfig' | 'configDelivered' | 'configApplied'>
  readonly ingest: Pick<Ingest, 'event'>
  readonly table: Pick<ConnectionTable, 'all'>
  /** Logs and counts a refusal (throttled per connection). */
  readonly refused: (conn: Connection, reason: string, detail: string) => void
  readonly log: Logger
}

interface Outbound {
  readonly conn: Connection
  forwarded: boolean
}

const holdsConfig = (client: Client): number | undefined =>
  subscriptionsOf(client).find(([filter]) => filter === CONFIG_TOPIC)?.[1]

export function createConfigPush(deps: ConfigPushDeps) {
  const { log } = deps
  const outbound = new WeakMap<Buffer, Outbound>()
  /** The configuration id last written to each connection. */
  const sent = new WeakMap<Connection, string>()
  /** One push at a time per connection, so that ids arrive in the order they were computed. */
  const queues = new WeakMap<Connection, Promise<void>>()

  function write(client: Client, payload: Buffer, qos: 0 | 1): Promise<void> {
    return new Promise((resolve) =>
      client.publish({ cmd: 'publish', topic: CONFIG_TOPIC, payload, qos, retain: false, dup: false }, () =>
        resolve(),
      ),
    )
  }

  /** Sends the effective configuration unless this connection has that id already (or `always`). */
  async function push(conn: Connection, session: Session, always: boolean): Promise<void> {
    const client = conn.client
    if (client === undefined || conn.closed || client.closed) return
    const qos = holdsConfig(client)
    if (qos === undefined) return
    const { tenant, device } = session
    const effective = await deps.config.getEffectiveConfig(tenant, device)
    if (!always && sent.get(conn) === effective.configId) return
    const outcome = await deps.ingest.event(
      deliveredEventInput({ tenant, device, protocol: 'mqtt', configId: effective.configId }),
    )
    if (outcome.kind !== 'accepted') {
      log.warn(
        { tenant, device, detail: outcome.detail },
        'configuration not pushed: its event was not written',
      )
      return
    }
    const payload = Buffer.from(JSON.stringify({ configId: effective.configId, config: effective.config }))
    const entry: Outbound = { conn, forwarded: false }
    outbound.set(payload, entry)
    try {
      await Promise.race([write(client, payload, qos === 0 ? 0 : 1), conn.finished])
    } finally {
      outbound.delete(payload)
    }
    if (!entry.forwarded || writeFailed(client) || conn.closed) return
    sent.set(conn, effective.configId)
    await deps.config.configDelivered(tenant, device, effective.configId, 'mqtt')
    log.debug({ tenant, device, configId: effective.configId }, 'configuration written to the device')
  }

  function schedule(conn: Connection, always: boolean): void {
    const session = conn.session
    if (session === undefined || !conn.announced) return
    const previous = queues.get(conn) ?? Promise.resolve()
    const next = previous.then(() =>
      push(conn, session, always).catch((err: unknown) =>
        log.warn({ err, tenant: session.tenant, device: session.device }, 'configuration push failed'),
      ),
    )
    queues.set(conn, next)
  }

  return {
    /** `config` (QoS capped at 1), else undefined: not this module's filter. */
    authorizeSubscribe(subscription: Subscription): Subscription | undefined {
      if (subscription.topic !== CONFIG_TOPIC) return undefined
      return { ...subscription, qos: Math.min(subscription.qos, 1) as 0 | 1 }
    },

    /** A SUBSCRIBE granted `config`: the configuration goes out now, whatever was sent before. */
    subscribed(conn: Connection, topics: readonly string[]): void {
      if (topics.includes(CONFIG_TOPIC)) schedule(conn, true)
    },

    /** A registry change that may change some devices' configuration id: they get the new one. */
    changed(change: RegistryChange): void {
      if (change.resource !== 'config' && change.resource !== 'device') return
      for (const conn of deps.table.all()) {
        const session = conn.session
        if (session === undefined || session.tenant !== change.tenant) continue
        if (change.device !== undefined && change.device !== session.device) continue
        schedule(conn, false)
      }
    },

    /** `config/applied`: the report recorded and published, then PUBACK; a refused one disconnects. */
    async applied(conn: Connection, session: Session, payload: Buffer): Promise<PublishResult> {
      const { tenant, device } = session
      let body: unknown
      try {
        body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
      } catch {
        deps.refused(
          conn,
          'invalid-config-report',
          'config/applied takes UTF-8 JSON {configId, statusCode?, reasonPhrase?}',
        )
        return { action: 'disconnect', reason: 'invalid-config-report' }
      }
      let report
      try {
        report = await deps.config.configApplied(tenant, device, body, 'mqtt')
      } catch (err) {
        if (!isTributaryError(err, 'REGISTRY_INVALID')) throw err
        deps.refused(conn, 'invalid-config-report', err.message)
        return { action: 'disconnect', reason: 'invalid-config-report' }
      }
      const outcome = await deps.ingest.event(
        appliedEventInput({ tenant, device, protocol: 'mqtt', credential: session.credentialId, ...report }),
      )
      if (outcome.kind !== 'accepted') return { action: 'disconnect', reason: 'unavailable' }
      return { action: 'ack' }
    },

    /** authorizeForward: only a configuration this module is writing, to its own connection. */
    forwardable(conn: Connection | undefined, packet: AedesPublishPacket): boolean {
      const entry = Buffer.isBuffer(packet.payload) ? outbound.get(packet.payload) : undefined
      if (entry === undefined || conn === undefined || entry.conn !== conn) return false
      entry.forwarded = true
      return true
    },
  }
}

export type ConfigPush = ReturnType<typeof createConfigPush>
