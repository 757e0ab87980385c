// Observations of `/v1/commands` (RFC 7641): a device registers with GET and Observe 0, gets an
// empty 2.05 at once, and from then on every command for it is one notification (payload,
// Content-Format, Location-Query command=/request=/device=). A sink is attached while the
// observation lasts. A confirmable notification counts as delivered when the device acknowledged
// it; a reset, no acknowledgement within MAX_TRANSMIT_WAIT, a GET without Observe 0 on the same
// token (RFC 7641 §3.6) or the library giving up on the exchange ends the observation and detaches.
import type { CommandOutlet, DeliveryResult, DeviceCommand } from '../../commands/outlet.ts'
import type { Logger } from '../../core/log.ts'
import type { Exchanges } from './exchanges.ts'
import { commandLocation, contentFormatOf } from './map.ts'
import { CODES } from './outcome.ts'

/** The largest command payload a notification carries: one datagram, no block-wise transfer. */
export const MAX_NOTIFICATION_PAYLOAD = 1024

const DELIVERED: DeliveryResult = { kind: 'delivered' }
const GONE: DeliveryResult = { kind: 'gone' }

/** What observe.ts uses of the library's ObserveWriteStream. */
export interface NotificationStream {
  _packet: { messageId?: number | undefined; confirmable?: boolean | undefined; ack?: boolean | undefined }
  statusCode: string
  setOption(name: string, value: Buffer | number | Buffer[]): unknown
  write(payload: Buffer): unknown
  end(): unknown
  once(event: 'finish', listener: () => void): unknown
}

export interface Observer {
  readonly tenant: string
  readonly device: string
  /** The authenticated device (a gateway observing for `device` is told it with device=). */
  readonly receiver: string
  readonly release: () => void
}

export interface ObservationDeps {
  readonly commands: Pick<CommandOutlet, 'attach'>
  readonly exchanges: Pick<Exchanges, 'nextId' | 'expect'>
  readonly log: Logger
}

export interface Observations {
  /** Registers an observation (replacing one with the same key) and answers the registration. */
  start(key: string, peer: string, stream: NotificationStream, observer: Observer): void
  /** Ends the observation with this key, if any; true when there was one. */
  stop(key: string): boolean
  readonly size: number
  /** Ends every observation (the adapter stops). */
  close(): void
}

/** An observation's key: the peer endpoint and the token (RFC 7641 §3.1). */
export const observationKey = (peer: string, token: Buffer): string => `${peer}#${token.toString('hex')}`

export function createObservations(deps: ObservationDeps): Observations {
  const active = new Map<string, () => void>()

  function start(key: string, peer: string, stream: NotificationStream, observer: Observer): void {
    active.get(key)?.()
    let open = true
    // Set once attach returns; an end before that detaches right after.
    const attachment: { detach?: () => void } = {}
    const end = (): void => {
      if (!open) return
      open = false
      if (active.get(key) === end) active.delete(key)
      attachment.detach?.()
      observer.release()
      stream.end()
      deps.log.debug({ tenant: observer.tenant, device: observer.device }, 'command observation ended')
    }
    active.set(key, end)
    stream.once('finish', end)

    async function notify(command: DeviceCommand): Promise<DeliveryResult> {
      if (!open) return GONE
      if (command.payload.length > MAX_NOTIFICATION_PAYLOAD) {
        return { kind: 'failed', reason: 'too-large-for-coap-notification' }
      }
      const format = contentFormatOf(command.contentType)
      stream.setOption('Content-Format', format === undefined ? [] : format)
      stream.setOption('Location-Query', commandLocation(command, observer.receiver))
      // Notifications are never ACKs (the library marks them so after a NON registration).
      stream._packet.ack = false
      const confirmable = stream._packet.confirmable === true
      const id = deps.exchanges.nextId()
      stream._packet.messageId = id
      const fate = confirmable ? deps.exchanges.expect(peer, id) : undefined
      stream.write(command.payload)
      if (fate === undefined) return DELIVERED
      const answer = await fate
      if (answer === 'ack') return DELIVERED
      // RFC 7641 §3.6 and §4.5: a reset, or no acknowledgement, ends the observation.
      end()
      return GONE
    }

    // The registration's answer: 2.05 with Observe, piggybacked on the ACK, and no command in it.
    stream.statusCode = CODES.content
    stream.write(Buffer.alloc(0))
    const detach = deps.commands.attach(observer.tenant, observer.device, {
      protocol: 'coap',
      deliver: notify,
    })
    attachment.detach = detach
    if (!open) detach()
    deps.log.debug({ tenant: observer.tenant, device: observer.device }, 'command observation started')
  }

  return {
    start,
    stop(key) {
      const end = active.get(key)
      end?.()
      return end !== undefined
    },
    get size() {
      return active.size
    },
    close() {
      for (const end of [...active.values()]) end()
    },
  }
}
