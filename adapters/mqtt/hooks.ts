// The aedes hooks (STYLE.md 7, 8): CONNECT is answered after authentication and the connected
// event; a PUBLISH is produced to the bus inside authorizePublish, because aedes writes the PUBACK
// before its `published` hook runs, and is then routed nowhere; only command, configuration
// (config-push.ts) and upload-token answer (files-token.ts) subscriptions are granted (routes.ts);
// nothing is forwarded to devices but what their links write to their own connection (aedes-link.ts).
// Every hook bridges its promise to aedes's callback, never passing an async function.
import type { Aedes, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import type { AedesLinks } from './aedes-link.ts'
import { holdsQos2, setClientId } from './broker.ts'
import type { Hooks } from './broker.ts'
import type { ConnectHandler } from './connect.ts'
import type { Connection, ConnectionTable } from './connection.ts'
import type { MqttMetrics } from './metrics.ts'
import { connackError } from './outcome.ts'
import type { PublishResult } from './publish.ts'
import type { DeviceRoutes } from './routes.ts'

export interface HooksDeps {
  readonly table: ConnectionTable
  readonly connect: ConnectHandler
  /** Subscriptions and PUBLISHes of devices, as the MQTT 5 endpoint takes them too. */
  readonly routes: Pick<DeviceRoutes, 'authorizeSubscribe' | 'publish'>
  readonly links: AedesLinks
  readonly metrics: MqttMetrics
  readonly broker: () => Aedes | undefined
  /** Work of a connection that its disconnected event waits for. */
  readonly track: <T>(conn: Connection, work: Promise<T>) => Promise<T>
}

/**
 * Where an accepted device PUBLISH goes once it is on the bus: aedes routes every message to the
 * subscribers whose filters match, across tenants, so the topic is replaced by one that no device
 * can subscribe to (command filters only; `$` topics are not matched by wildcards [MQTT-4.7.2-1]).
 */
export const UNROUTED_TOPIC = '$tributary/unrouted'

const toBuffer = (payload: Buffer | string | undefined): Buffer =>
  Buffer.isBuffer(payload) ? payload : Buffer.from(payload ?? '')

export function createHooks(deps: HooksDeps): Hooks {
  const { table, metrics, track } = deps
  const connOf = (client: Client | null): Connection | undefined =>
    client === null ? undefined : table.of(client.conn)

  return {
    preConnect(
      client: Client,
      packet: ConnectPacket,
      callback: (error: Error | null, success: boolean) => void,
    ) {
      const conn = connOf(client)
      if (conn === undefined) return callback(new Error('unknown connection'), false)
      conn.client = client
      conn.link = deps.links.linkOf(conn, client)
      conn.clientId = packet.clientId.slice(0, 256)
      const will = packet.will
      if (will !== undefined && will !== null) {
        conn.will = { topic: will.topic, payload: toBuffer(will.payload), retain: will.retain === true }
      }
      callback(null, true)
    },

    authenticate(client, username, password, callback) {
      const conn = connOf(client)
      if (conn === undefined) return callback(connackError('unavailable'), null)
      track(conn, deps.connect(conn, username, password)).then(
        (refusal) => {
          if (refusal !== undefined) return callback(connackError(refusal), null)
          // aedes keys sessions and its own takeover by client id: one per device, never across tenants.
          const session = conn.session
          if (session !== undefined) setClientId(client, `${session.tenant}/${session.device}`)
          callback(null, true)
        },
        () => callback(connackError('unavailable'), null),
      )
    },

    authorizePublish(client, packet: PublishPacket, callback) {
      const conn = connOf(client)
      const session = conn?.session
      // No client: a will of another broker's client (there are none); no session: not ours to take.
      if (client === null || conn === undefined || session === undefined || !conn.announced)
        return callback(new Error('publish from an unauthenticated client'))
      // aedes publishes the will after it started closing the client.
      if (client.closed && conn.dropWill) return callback(new Error('last will dropped'))
      const started = performance.now()
      const receivedAt = new Date()
      const { topic, qos, retain } = packet
      const work = async (): Promise<PublishResult> => {
        const broker = deps.broker()
        if (qos === 2 && broker !== undefined && (await holdsQos2(broker, client, packet.messageId ?? -1))) {
          return { action: 'ack' } // a retransmission of a message already on the bus [MQTT-4.3.3-2]
        }
        return deps.routes.publish(
          conn,
          session,
          { topic, qos, retain, payload: toBuffer(packet.payload) },
          receivedAt,
        )
      }
      track(conn, work()).then(
        (result) => {
          if (result.action === 'disconnect') {
            conn.closeReason ??= result.reason
            return callback(new Error(`publish refused: ${result.reason ?? 'refused'}`))
          }
          if (result.action === 'ack' && qos > 0) metrics.ackDuration((performance.now() - started) / 1000)
          packet.topic = UNROUTED_TOPIC
          callback(null)
        },
        (err: Error) => {
          conn.closeReason ??= 'unavailable'
          callback(err)
        },
      )
    },

    authorizeSubscribe(client, subscription: Subscription, callback) {
      const conn = connOf(client)
      const session = conn?.session
      if (conn === undefined || session === undefined) return callback(null, null)
      // Anything not the device's to read is SUBACK 0x80 [MQTT-3.9.3].
      track(conn, deps.routes.authorizeSubscribe(conn, session, subscription.topic, subscription.qos)).then(
        (granted) => callback(null, granted === null ? null : { ...subscription, qos: granted }),
        () => callback(null, null),
      )
    },

    authorizeForward: (client, packet) => (deps.links.forwardable(connOf(client), packet) ? packet : null),
  }
}
