// What the MQTT 5 endpoint sends a device besides answers: the DeviceLink of its connection
// (../link.ts), the Packet Identifiers of its QoS 1 PUBLISHes (commands, configurations, upload
// tokens) within the client's Receive Maximum, and the PUBLISH packet a write becomes.
import type { IPublishPacket, Packet } from 'mqtt-packet'
import type { DeviceLink, OutgoingPublish, WriteResult } from '../link.ts'

/** PUBLISHes that may wait for a Packet Identifier; more are not written (a client that never acknowledges). */
export const MAX_WAITING = 64

/**
 * Packet Identifiers of the QoS 1 PUBLISHes sent to the client: never more unacknowledged than its
 * Receive Maximum [MQTT-3.3.4-9]; a PUBLISH waits for a PUBACK to free one, or for `ended`.
 */
export function createOutbound(receiveMaximum: () => number) {
  const unacked = new Set<number>()
  const waiting: Array<() => void> = []
  let next = 1
  const advance = (): void => {
    next = (next % 0xffff) + 1
  }
  return {
    async acquire(ended: Promise<unknown>): Promise<number | undefined> {
      while (unacked.size >= receiveMaximum()) {
        if (waiting.length >= MAX_WAITING) return undefined
        const freed = new Promise<boolean>((resolve) => waiting.push(() => resolve(true)))
        if (!(await Promise.race([freed, ended.then(() => false)]))) return undefined
      }
      while (unacked.has(next)) advance()
      const id = next
      unacked.add(id)
      advance()
      return id
    },
    /** A PUBACK from the client, or a PUBLISH not sent after all: false for an id not in use. */
    release(id: number): boolean {
      if (!unacked.delete(id)) return false
      waiting.shift()?.()
      return true
    },
  }
}

/** The PUBLISH packet of a link write; properties left unset are left out. */
export function outgoingPacket(out: OutgoingPublish, messageId: number | undefined): IPublishPacket {
  const properties = Object.fromEntries(
    Object.entries(out.properties ?? {}).filter(([, value]) => value !== undefined),
  ) as NonNullable<IPublishPacket['properties']>
  return {
    cmd: 'publish',
    topic: out.topic,
    payload: out.payload,
    qos: out.qos,
    dup: false,
    retain: false,
    ...(messageId === undefined ? {} : { messageId }),
    ...(Object.keys(properties).length === 0 ? {} : { properties }),
  }
}

export interface LinkDeps {
  /** Whether the connection is up (CONNACK sent, not ending). */
  readonly open: () => boolean
  /** Writes one packet; `done` once its bytes went to the socket (or with the error that stopped them). */
  readonly write: (packet: Packet, done: (err?: Error | null) => void) => WriteResult
  /** The filters the connection holds, with their granted QoS. */
  readonly held: ReadonlyMap<string, number>
  readonly receiveMaximum: () => number
  /** Resolves when the stream closed: a write waiting for an id or its flush gives up. */
  readonly closed: Promise<unknown>
}

/** The DeviceLink of an MQTT 5 connection, and `acked` for the client's PUBACKs (false: an id never sent). */
export function createLink(deps: LinkDeps): { link: DeviceLink; acked: (id: number) => boolean } {
  const outbound = createOutbound(deps.receiveMaximum)
  const closed = deps.closed.then(() => false)
  const link: DeviceLink = {
    subscriptions: () => deps.held.entries(),
    async publish(out: OutgoingPublish): Promise<WriteResult> {
      if (!deps.open()) return 'not-written'
      const messageId = out.qos === 1 ? await outbound.acquire(closed) : undefined
      if ((out.qos === 1 && messageId === undefined) || !deps.open()) {
        if (messageId !== undefined) outbound.release(messageId)
        return 'not-written'
      }
      const flushed = Promise.withResolvers<boolean>()
      const result = deps.write(outgoingPacket(out, messageId), (err) => flushed.resolve(err == null))
      if (result !== 'written') {
        if (messageId !== undefined) outbound.release(messageId)
        return result
      }
      return (await Promise.race([flushed.promise, closed])) ? 'written' : 'not-written'
    },
  }
  return { link, acked: (id) => outbound.release(id) }
}
