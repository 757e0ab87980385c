// Commands to connected devices: SUBSCRIBE filters checked (own commands, and a gateway's devices
// by the registry), a command sink attached while a connection holds command subscriptions, and
// delivery written to that one client only — never through aedes's topic routing, which is global
// across tenants. authorizeForward lets through exactly the packets this module is writing.
import type { AedesPublishPacket, Client, Subscription } from 'aedes'
import type { CommandOutlet, CommandSink, DeliveryResult, DeviceCommand } from '../../commands/outlet.ts'
import type { Logger } from '../../core/log.ts'
import type { Device } from '../../core/registry/model.ts'
import { subscriptionsOf, writeFailed } from './broker.ts'
import {
  MAX_COMMAND_QOS,
  checkCommandFilter,
  commandTopic,
  deliveryQos,
  isCommandFilter,
} from './command-topics.ts'
import type { Connection, Session } from './connection.ts'
import type { Refusals } from './refusals.ts'

export interface CommandChannelDeps {
  readonly commands: Pick<CommandOutlet, 'attach'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly refusals: Refusals
  readonly log: Logger
}

/** Command filters one connection may hold; more are refused (each costs aedes a topic-tree entry). */
export const MAX_COMMAND_FILTERS = 32

const GONE: DeliveryResult = { kind: 'gone' }
const DELIVERED: DeliveryResult = { kind: 'delivered' }

/** A command packet being written: the connection it is for, and whether aedes passed it on. */
interface Outbound {
  readonly conn: Connection
  forwarded: boolean
}

export function createCommandChannel(deps: CommandChannelDeps) {
  const { refusals, log } = deps
  // Keyed by the payload buffer, which aedes carries by reference from client.publish to
  // authorizeForward; a fresh copy per delivery, so nothing a device sent can ever be one of them.
  const outbound = new WeakMap<Buffer, Outbound>()
  /** The command filters of each connection, granted or being granted (for MAX_COMMAND_FILTERS). */
  const filters = new WeakMap<Connection, Set<string>>()

  function heldBy(conn: Connection): Set<string> {
    let held = filters.get(conn)
    if (held === undefined) {
      held = new Set(conn.client === undefined ? [] : subscriptionsOf(conn.client).map(([f]) => f))
      filters.set(conn, held)
    }
    return held
  }

  function refuse(conn: Connection, filter: string, detail: string): null {
    refusals.message(conn, 'subscribe-refused', `${detail} (topic ${JSON.stringify(filter.slice(0, 300))})`)
    return null
  }

  /** The subscription to grant (QoS capped at 1), or null for SUBACK 0x80. */
  async function authorizeSubscribe(
    conn: Connection,
    session: Session,
    subscription: Subscription,
  ): Promise<Subscription | null> {
    const filter = subscription.topic
    const checked = checkCommandFilter(filter, session.device)
    if (!checked.ok) return refuse(conn, filter, checked.detail)
    const held = heldBy(conn)
    if (held.size >= MAX_COMMAND_FILTERS && !held.has(filter))
      return refuse(conn, filter, `a connection holds at most ${MAX_COMMAND_FILTERS} command filters`)
    // Counted from now: the filters of one SUBSCRIBE are authorized together, before aedes adds any.
    held.add(filter)
    if (checked.gatewayFor !== undefined) {
      const served = await deps.findDevice(session.tenant, checked.gatewayFor)
      if (served === undefined || !served.enabled || !served.gateways.includes(session.device)) {
        held.delete(filter)
        return refuse(
          conn,
          filter,
          `device ${checked.gatewayFor} does not list ${session.device} as a gateway`,
        )
      }
    }
    return { ...subscription, qos: Math.min(subscription.qos, MAX_COMMAND_QOS) as 0 | 1 }
  }

  async function serves(session: Session, command: DeviceCommand): Promise<boolean> {
    if (command.tenant !== session.tenant) return false
    if (command.device === session.device) return true
    const served = await deps.findDevice(session.tenant, command.device)
    return served !== undefined && served.enabled && served.gateways.includes(session.device)
  }

  function publish(client: Client, packet: { topic: string; payload: Buffer; qos: 0 | 1 }): Promise<void> {
    return new Promise((resolve) =>
      client.publish({ cmd: 'publish', ...packet, retain: false, dup: false }, () => resolve()),
    )
  }

  function sinkOf(conn: Connection, client: Client, session: Session): CommandSink {
    return {
      protocol: 'mqtt',
      async deliver(command: DeviceCommand): Promise<DeliveryResult> {
        if (conn.closed || client.closed) return GONE
        // The dispatcher routes by the registry; a sink still never carries what is not its device's.
        if (!(await serves(session, command))) return GONE
        const topic = commandTopic(command, session.device)
        const qos = deliveryQos(subscriptionsOf(client), topic)
        // No filter of this connection matches: it waits in the queue for a subscription that does.
        if (qos === undefined) return GONE
        const payload = Buffer.from(command.payload)
        const entry: Outbound = { conn, forwarded: false }
        outbound.set(payload, entry)
        try {
          // Resolves once aedes wrote the PUBLISH to the socket (after a drain, bounded by
          // drainTimeout), or with the end of the connection, whichever comes first.
          await Promise.race([publish(client, { topic, payload, qos: qos === 0 ? 0 : 1 }), conn.finished])
        } finally {
          outbound.delete(payload)
        }
        if (!entry.forwarded || writeFailed(client) || conn.closed) return GONE
        log.debug(
          { tenant: session.tenant, device: command.device, via: session.device, command: command.id, qos },
          'command written to the device',
        )
        return DELIVERED
      },
    }
  }

  const holdsCommandFilter = (client: Client): boolean =>
    subscriptionsOf(client).some(([filter]) => isCommandFilter(filter))

  function detach(conn: Connection): void {
    const off = conn.detachCommands
    conn.detachCommands = undefined
    off?.()
  }

  return {
    authorizeSubscribe,
    detach,

    /**
     * The connection's command subscriptions changed (SUBSCRIBE, UNSUBSCRIBE, or a persistent
     * session restored by the time its CONNACK is sent). A new sink replaces the old one whenever
     * filters were added, so commands that waited for the new filter are tried again.
     */
    subscriptionsChanged(conn: Connection, added: boolean): void {
      const client = conn.client
      const session = conn.session
      if (client === undefined || session === undefined || !conn.announced || conn.closed) return
      // After an UNSUBSCRIBE, what aedes holds is the count again.
      if (!added) filters.set(conn, new Set(subscriptionsOf(client).map(([f]) => f)))
      if (!holdsCommandFilter(client)) return detach(conn)
      if (conn.detachCommands !== undefined && !added) return
      const previous = conn.detachCommands
      // Attach first: the device keeps a sink (and its cluster route) throughout.
      conn.detachCommands = deps.commands.attach(
        session.tenant,
        session.device,
        sinkOf(conn, client, session),
      )
      previous?.()
    },

    /** authorizeForward: only a command this module is writing, and only to its own connection. */
    forwardable(conn: Connection | undefined, packet: AedesPublishPacket): boolean {
      const entry = Buffer.isBuffer(packet.payload) ? outbound.get(packet.payload) : undefined
      if (entry === undefined || conn === undefined || entry.conn !== conn) return false
      entry.forwarded = true
      return true
    },
  }
}

export type CommandChannel = ReturnType<typeof createCommandChannel>
