// The DeviceLink of an MQTT 3.1.1 connection on aedes (link.ts): a PUBLISH written to that one
// client through client.publish, never through aedes's topic routing, which is global across
// tenants. authorizeForward lets through exactly the packets being written here, to their own
// connection.
import type { AedesPublishPacket, Client } from 'aedes'
import { subscriptionsOf, writeFailed } from './broker.ts'
import type { Connection } from './connection.ts'
import type { DeviceLink, OutgoingPublish, WriteResult } from './link.ts'

/** A packet being written: the connection it is for, and whether aedes passed it on. */
interface Outbound {
  readonly conn: Connection
  forwarded: boolean
}

export function createAedesLinks() {
  // Keyed by the payload buffer, which aedes carries by reference from client.publish to
  // authorizeForward; a fresh copy per write, so nothing a device sent can ever be one of them.
  const outbound = new WeakMap<Buffer, Outbound>()

  function publish(client: Client, packet: OutgoingPublish, payload: Buffer): Promise<void> {
    const { topic, qos } = packet
    return new Promise((resolve) =>
      client.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, () => resolve()),
    )
  }

  return {
    /** The link of a connection aedes serves with `client`. */
    linkOf(conn: Connection, client: Client): DeviceLink {
      return {
        subscriptions: () => subscriptionsOf(client),
        async publish(packet): Promise<WriteResult> {
          if (conn.closed || client.closed) return 'not-written'
          const payload = Buffer.from(packet.payload)
          const entry: Outbound = { conn, forwarded: false }
          outbound.set(payload, entry)
          try {
            // Resolves once aedes wrote the PUBLISH to the socket (after a drain, bounded by
            // drainTimeout), or with the end of the connection, whichever comes first.
            await Promise.race([publish(client, packet, payload), conn.finished])
          } finally {
            outbound.delete(payload)
          }
          return entry.forwarded && !writeFailed(client) && !conn.closed ? 'written' : 'not-written'
        },
      }
    },

    /** authorizeForward: only a packet a link is writing, and only to its own connection. */
    forwardable(conn: Connection | undefined, packet: AedesPublishPacket): boolean {
      const entry = Buffer.isBuffer(packet.payload) ? outbound.get(packet.payload) : undefined
      if (entry === undefined || conn === undefined || entry.conn !== conn) return false
      entry.forwarded = true
      return true
    },
  }
}

export type AedesLinks = ReturnType<typeof createAedesLinks>
