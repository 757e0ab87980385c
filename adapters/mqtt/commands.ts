// Commands to connected devices, on MQTT 3.1.1 and 5 alike: SUBSCRIBE filters checked (own
// commands, and a gateway's devices by the registry), a command sink attached while a connection
// holds command subscriptions, and delivery written to that one connection only (its DeviceLink,
// link.ts). On MQTT 5 a command also carries its remaining ttl as Message Expiry Interval and, when
// it expects an answer, a Response Topic and Correlation Data (docs/commands-mqtt.md).
import type { CommandOutlet, CommandSink, DeliveryResult, DeviceCommand } from '../../commands/outlet.ts'
import type { Logger } from '../../core/log.ts'
import type { Device } from '../../core/registry/model.ts'
import {
  MAX_COMMAND_QOS,
  checkCommandFilter,
  commandTopic,
  deliveryQos,
  isCommandFilter,
  responseTopic,
} from './command-topics.ts'
import type { Connection, Session } from './connection.ts'
import type { DeviceLink, OutgoingProperties } from './link.ts'
import type { Refusals } from './refusals.ts'

export interface CommandChannelDeps {
  readonly commands: Pick<CommandOutlet, 'attach'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly refusals: Refusals
  readonly log: Logger
}

/** Command filters one connection may hold; more are refused (each costs a subscription entry). */
export const MAX_COMMAND_FILTERS = 32

const GONE: DeliveryResult = { kind: 'gone' }
const DELIVERED: DeliveryResult = { kind: 'delivered' }

/**
 * The MQTT 5 properties of a command (a 3.1.1 connection leaves them out): the ttl left as Message
 * Expiry Interval [MQTT-3.3.2-6], at least 1 s since 0 would mean none; for a request, the topic it
 * is answered on with status 200 as Response Topic and the request id as Correlation Data (§4.10).
 */
export function commandProperties(command: DeviceCommand, self: string, now: number): OutgoingProperties {
  const left = Math.max(1, Math.ceil((command.expiresAt.getTime() - now) / 1000))
  const response = responseTopic(command, self)
  return {
    messageExpiryInterval: left,
    ...(response === undefined
      ? {}
      : { responseTopic: response, correlationData: Buffer.from(command.requestId ?? '') }),
    ...(command.contentType === undefined ? {} : { contentType: command.contentType }),
    ...(command.traceparent === undefined ? {} : { userProperties: { traceparent: command.traceparent } }),
  }
}

export function createCommandChannel(deps: CommandChannelDeps) {
  const { refusals, log } = deps
  /** The command filters of each connection, granted or being granted (for MAX_COMMAND_FILTERS). */
  const filters = new WeakMap<Connection, Set<string>>()

  function heldBy(conn: Connection): Set<string> {
    let held = filters.get(conn)
    if (held === undefined) {
      held = new Set(conn.link === undefined ? [] : [...conn.link.subscriptions()].map(([f]) => f))
      filters.set(conn, held)
    }
    return held
  }

  function refuse(conn: Connection, filter: string, detail: string): null {
    refusals.message(conn, 'subscribe-refused', `${detail} (topic ${JSON.stringify(filter.slice(0, 300))})`)
    return null
  }

  /** The QoS to grant (capped at 1), or null for a refusal (SUBACK 0x80, MQTT 5 0x87). */
  async function authorizeSubscribe(
    conn: Connection,
    session: Session,
    filter: string,
    qos: number,
  ): Promise<0 | 1 | null> {
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
    return Math.min(qos, MAX_COMMAND_QOS) as 0 | 1
  }

  async function serves(session: Session, command: DeviceCommand): Promise<boolean> {
    if (command.tenant !== session.tenant) return false
    if (command.device === session.device) return true
    const served = await deps.findDevice(session.tenant, command.device)
    return served !== undefined && served.enabled && served.gateways.includes(session.device)
  }

  function sinkOf(conn: Connection, link: DeviceLink, session: Session): CommandSink {
    return {
      protocol: 'mqtt',
      async deliver(command: DeviceCommand): Promise<DeliveryResult> {
        if (conn.closed) return GONE
        // The dispatcher routes by the registry; a sink still never carries what is not its device's.
        if (!(await serves(session, command))) return GONE
        const topic = commandTopic(command, session.device)
        const qos = deliveryQos(link.subscriptions(), topic)
        // No filter of this connection matches: it waits in the queue for a subscription that does.
        if (qos === undefined) return GONE
        const written = await link.publish({
          topic,
          payload: command.payload,
          qos: qos === 0 ? 0 : 1,
          properties: commandProperties(command, session.device, Date.now()),
        })
        // [MQTT-3.1.2-24] the device said it cannot take a packet this large: it never will.
        if (written === 'too-large') return { kind: 'failed', reason: 'larger than the device accepts' }
        if (written !== 'written') return GONE
        log.debug(
          { tenant: session.tenant, device: command.device, via: session.device, command: command.id, qos },
          'command written to the device',
        )
        return DELIVERED
      },
    }
  }

  const holdsCommandFilter = (link: DeviceLink): boolean =>
    [...link.subscriptions()].some(([filter]) => isCommandFilter(filter))

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
      const link = conn.link
      const session = conn.session
      if (link === undefined || session === undefined || !conn.announced || conn.closed) return
      // After an UNSUBSCRIBE, what the connection holds is the count again.
      if (!added) filters.set(conn, new Set([...link.subscriptions()].map(([f]) => f)))
      if (!holdsCommandFilter(link)) return detach(conn)
      if (conn.detachCommands !== undefined && !added) return
      const previous = conn.detachCommands
      // Attach first: the device keeps a sink (and its cluster route) throughout.
      conn.detachCommands = deps.commands.attach(session.tenant, session.device, sinkOf(conn, link, session))
      previous?.()
    },
  }
}

export type CommandChannel = ReturnType<typeof createCommandChannel>
