// What the MQTT 5 endpoint sends a device besides answers: the DeviceLink of its connection
// (../link.ts), the Packet Identifiers of its QoS 1 PUBLISHes (commands, configurations, upload
// tokens) within the client's Receive Maximum, the Topic Aliases of the topics it sends again, and
// the PUBLISH packet a write becomes.
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

/** Topic Aliases the server sets on one connection at most, whatever the client allows. */
export const SERVER_TOPIC_ALIASES = 16
/** Topics sent once that a connection remembers, oldest forgotten first: the next send of one gets an alias. */
export const REMEMBERED_TOPICS = 64

/** How one PUBLISH names its topic (§3.3.2.3.4). */
export interface NamedTopic {
  /** The Topic Name: empty when the alias stands for it. */
  readonly topic: string
  readonly topicAlias: number | undefined
  /** Called once the PUBLISH was written: a new alias stands for its topic from then on. */
  readonly written: () => void
}

const nothing = (): void => undefined

/**
 * The Topic Aliases of the PUBLISHes sent to one client (§3.3.2.3.4), reset with the connection. A
 * topic sent a second time gets the next free alias, sent with its Topic Name; later PUBLISHes on it
 * carry an empty Topic Name and the alias. Aliases go from 1 up to the client's Topic Alias Maximum
 * [MQTT-3.3.2-9] and SERVER_TOPIC_ALIASES, whichever is lower, and are never remapped: once they are
 * all taken, other topics go with their name. A topic sent once (a request id, a file answer) takes
 * none. A client whose Topic Alias Maximum is 0 or absent gets no alias [MQTT-3.3.2-10] [MQTT-3.1.2-27].
 */
export function createTopicAliases(clientMaximum: () => number) {
  const assigned = new Map<string, number>()
  const seen = new Set<string>()
  const plain = (topic: string): NamedTopic => ({ topic, topicAlias: undefined, written: nothing })
  return {
    name(topic: string): NamedTopic {
      const alias = assigned.get(topic)
      if (alias !== undefined) return { topic: '', topicAlias: alias, written: nothing }
      const limit = Math.min(clientMaximum(), SERVER_TOPIC_ALIASES)
      if (assigned.size >= limit) return plain(topic)
      if (!seen.has(topic)) {
        if (seen.size >= REMEMBERED_TOPICS) seen.delete(seen.values().next().value!)
        seen.add(topic)
        return plain(topic)
      }
      const next = assigned.size + 1
      return {
        topic,
        topicAlias: next,
        written: () => {
          assigned.set(topic, next)
          seen.delete(topic)
        },
      }
    },
  }
}

/** The PUBLISH packet of a link write; properties left unset are left out. */
export function outgoingPacket(
  out: OutgoingPublish,
  messageId: number | undefined,
  named: Pick<NamedTopic, 'topic' | 'topicAlias'> = { topic: out.topic, topicAlias: undefined },
): IPublishPacket {
  const properties = Object.fromEntries(
    Object.entries({ ...out.properties, topicAlias: named.topicAlias }).filter(
      ([, value]) => value !== undefined,
    ),
  ) as NonNullable<IPublishPacket['properties']>
  return {
    cmd: 'publish',
    topic: named.topic,
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
  /** The client's Topic Alias Maximum (0 when its CONNECT had none). */
  readonly topicAliasMaximum: () => number
  /** Resolves when the stream closed: a write waiting for an id or its flush gives up. */
  readonly closed: Promise<unknown>
}

/** The DeviceLink of an MQTT 5 connection, and `acked` for the client's PUBACKs (false: an id never sent). */
export function createLink(deps: LinkDeps): { link: DeviceLink; acked: (id: number) => boolean } {
  const outbound = createOutbound(deps.receiveMaximum)
  const aliases = createTopicAliases(deps.topicAliasMaximum)
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
      // Named and written in one step: PUBLISHes reach the client in the order their aliases were set.
      const named = aliases.name(out.topic)
      const result = deps.write(outgoingPacket(out, messageId, named), (err) => flushed.resolve(err == null))
      if (result !== 'written') {
        // Not written: a new alias stays free until a PUBLISH setting it is.
        if (messageId !== undefined) outbound.release(messageId)
        return result
      }
      named.written()
      return (await Promise.race([flushed.promise, closed])) ? 'written' : 'not-written'
    },
  }
  return { link, acked: (id) => outbound.release(id) }
}
