// What the MQTT 5 endpoint sends a device besides answers: the Packet Identifiers of its QoS 1
// PUBLISHes (commands, configurations, upload tokens), and the PUBLISH packet a DeviceLink write
// becomes (../link.ts).
import type { IPublishPacket } from 'mqtt-packet'
import type { OutgoingPublish } from '../link.ts'

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
