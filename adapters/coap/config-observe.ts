// Observations of `/v1/config` (RFC 7641, docs/config.md): a device registers with GET and Observe
// 0 and is answered with its configuration at once (2.05, ETag = configuration id); from then on
// every registry change that gives it another configuration id (written by any process: the
// changes arrive on the registry topic) is one notification with the next Observe number and the
// new ETag. A notification counts as delivered like a GET (adapters/device-config.ts). A reset, no
// acknowledgement of a confirmable notification, a GET without Observe 0 on the same token, the
// device deleted or disabled, the gateway dropped, or the credential revoked ends the observation.
import type { Ingest } from '../adapter.ts'
import { deliverConfig } from '../device-config.ts'
import type { Logger } from '../../core/log.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import type { RegistryChange } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { Exchanges } from './exchanges.ts'
import { configEtag } from './handler.ts'
import type { ConfigObserver } from './handler.ts'
import type { NotificationStream } from './observe.ts'
import { MAX_NOTIFICATION_PAYLOAD } from './observe.ts'
import { CODES } from './outcome.ts'

/** Content-Format 50, application/json. */
const JSON_FORMAT = 50

export interface ConfigObservationDeps {
  readonly ingest: Pick<Ingest, 'event'>
  readonly config: Pick<RegistryService, 'getEffectiveConfig' | 'configDelivered'>
  readonly auth: Pick<RegistryAuth, 'findDevice' | 'findCredential'>
  readonly exchanges: Pick<Exchanges, 'nextId' | 'expect'>
  readonly log: Logger
}

interface Entry {
  /** The registration's message id. */
  readonly messageId: number | undefined
  readonly observer: ConfigObserver
  readonly peer: string
  readonly stream: NotificationStream
  /** The configuration id last written to the observer. */
  sent: string | undefined
  /** The registration was answered (the first write): later writes are notifications. */
  answered: boolean
  open: boolean
  /** One notification at a time, so that ids arrive in the order they were computed. */
  queue: Promise<void>
  readonly end: () => void
}

export function createConfigObservations(deps: ConfigObservationDeps) {
  const { log } = deps
  const active = new Map<string, Entry>()

  /** Still allowed: the device exists and is enabled, lists the gateway, and the credential holds. */
  async function allowed(entry: Entry): Promise<boolean> {
    const { tenant, device, sender, credentialId } = entry.observer
    const target = await deps.auth.findDevice(tenant, device)
    if (target === undefined || !target.enabled) return false
    if (device !== sender) {
      const gateway = await deps.auth.findDevice(tenant, sender)
      if (gateway === undefined || !gateway.enabled || !target.gateways.includes(sender)) return false
    }
    const credential = await deps.auth.findCredential(tenant, sender, credentialId)
    if (credential === undefined || !credential.enabled) return false
    return credential.expiresAt === null || Date.parse(credential.expiresAt) > Date.now()
  }

  /**
   * Ends the observation with an error: before the registration was answered, that answer (without
   * Observe: not registered); after, a final notification with the error code (RFC 7641 §3.2).
   */
  function refuse(entry: Entry, code: string, detail: string): void {
    if (!entry.open) return
    entry.stream.statusCode = code
    if (entry.answered) {
      entry.stream.setOption('ETag', [])
      entry.stream.setOption('Content-Format', [])
      // Its acknowledgement changes nothing: the observation ends either way.
      void send(entry, Buffer.from(detail))
    }
    entry.end()
  }

  /** Writes one notification; the first answers the registration (piggybacked on its ACK). */
  function send(entry: Entry, payload: Buffer): Promise<'ack' | 'reset' | 'timeout'> | undefined {
    const { stream } = entry
    if (entry.answered) {
      // Notifications are never ACKs, and each has a message id of its own.
      stream._packet.ack = false
      stream._packet.messageId = deps.exchanges.nextId()
    }
    entry.answered = true
    const id = stream._packet.messageId
    const fate =
      stream._packet.confirmable === true && stream._packet.ack !== true && id !== undefined
        ? deps.exchanges.expect(entry.peer, id)
        : undefined
    stream.write(payload)
    return fate
  }

  /** Sends the effective configuration unless the observer has that id already. */
  async function push(entry: Entry): Promise<void> {
    if (!entry.open) return
    const { tenant, device, sender } = entry.observer
    if (!(await allowed(entry))) return refuse(entry, CODES.forbidden, 'the observation is no longer allowed')
    const effective = await deps.config.getEffectiveConfig(tenant, device)
    if (!entry.open || effective.configId === entry.sent) return
    const outcome = await deliverConfig(
      deps,
      { tenant, device, sender, protocol: 'coap' },
      effective.configId,
    )
    if (outcome.kind !== 'accepted') {
      // Not durable: nothing is sent. The first answer must say so; a later change is tried again.
      if (!entry.answered) refuse(entry, CODES.unavailable, 'the service is unavailable')
      log.warn({ tenant, device, detail: outcome.detail }, 'configuration notification not sent')
      return
    }
    const full = Buffer.from(JSON.stringify({ configId: effective.configId, config: effective.config }))
    // One datagram, no block-wise notifications: a larger configuration is announced by its id,
    // and the device GETs it (block-wise).
    const payload =
      full.length <= MAX_NOTIFICATION_PAYLOAD
        ? full
        : Buffer.from(JSON.stringify({ configId: effective.configId }))
    entry.stream.statusCode = CODES.content
    entry.stream.setOption('Content-Format', JSON_FORMAT)
    entry.stream.setOption('ETag', configEtag(effective.configId))
    const fate = send(entry, payload)
    entry.sent = effective.configId
    if (fate !== undefined && (await fate) !== 'ack') entry.end()
  }

  function schedule(entry: Entry): void {
    entry.queue = entry.queue
      .then(() => push(entry))
      .catch((err: unknown) => {
        const { tenant, device } = entry.observer
        log.warn({ err, tenant, device }, 'configuration notification failed')
        if (!entry.answered) refuse(entry, CODES.unavailable, 'the service is unavailable')
      })
  }

  return {
    /**
     * Registers an observation (replacing one with the same key) and answers it with the
     * configuration. A retransmission of a registration not answered yet (same message id: the
     * first answer waits for the event to be durable, and a device retransmits after ACK_TIMEOUT)
     * is not a new one: its slot goes back and the first is answered.
     */
    start(
      key: string,
      peer: string,
      stream: NotificationStream,
      observer: ConfigObserver,
      messageId?: number,
    ): void {
      const current = active.get(key)
      if (
        current !== undefined &&
        !current.answered &&
        messageId !== undefined &&
        current.messageId === messageId
      ) {
        observer.release()
        return
      }
      current?.end()
      const entry: Entry = {
        messageId,
        observer,
        peer,
        stream,
        sent: undefined,
        answered: false,
        open: true,
        queue: Promise.resolve(),
        end: () => {
          if (!entry.open) return
          entry.open = false
          if (active.get(key) === entry) active.delete(key)
          observer.release()
          stream.end()
          log.debug({ tenant: observer.tenant, device: observer.device }, 'configuration observation ended')
        },
      }
      active.set(key, entry)
      stream.once('finish', entry.end)
      schedule(entry)
    },

    /** Ends the observation with this key (RFC 7641 §3.6 deregistration); true when there was one. */
    stop(key: string): boolean {
      const entry = active.get(key)
      entry?.end()
      return entry !== undefined
    },

    /** A registry change: observers whose configuration, device, gateway or credential it concerns. */
    changed(change: RegistryChange): void {
      for (const entry of active.values()) {
        const { tenant, device, sender, credentialId } = entry.observer
        if (change.tenant !== tenant) continue
        const concerns =
          change.resource === 'tenant' ||
          (change.resource === 'config' && (change.device === undefined || change.device === device)) ||
          (change.resource === 'device' && (change.device === device || change.device === sender)) ||
          (change.resource === 'credential' && change.device === sender && change.id === credentialId)
        if (concerns) schedule(entry)
      }
    },

    get size(): number {
      return active.size
    },

    /** Ends every observation (the adapter stops). */
    close(): void {
      for (const entry of [...active.values()]) entry.end()
    },
  }
}

export type ConfigObservations = ReturnType<typeof createConfigObservations>
