// The aedes hooks of the application broker (STYLE.md 8: promises bridged to callbacks): CONNECT
// is answered after authentication; a subscription is granted inside the client's tenant only,
// and only once the tenant's bus reader is in place; clients publish commands only, acknowledged
// once on the commands topic; forwarding checks the tenant once more and drops clients whose
// unread bytes pass the bound.
import type { AedesPublishPacket, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import type { Logger } from '../../core/log.ts'
import type { AppAuthenticator, ConnectRefusal } from './auth.ts'
import { connackError } from './auth.ts'
import type { AppCommands, Bucket, PublishRefusal } from './commands.ts'
import { checkCommandPublish, newBucket, takeToken } from './commands.ts'
import type { AppMqttConfig } from './config.ts'
import type { Fanout } from './fanout.ts'
import type { AppMqttMetrics } from './metrics.ts'
import { APP_ROOT, checkFilter } from './topics.ts'

/** What the broker knows of one connection, from accept to close. */
export interface AppClient {
  /** Set once authenticated. */
  tenant: string | undefined
  /** The credential may send commands (manager or admin on the tenant). */
  canCommand: boolean
  /** The connection's command rate. */
  readonly bucket: Bucket
  /** Granted topic filters. */
  readonly filters: Set<string>
  /** The tenant reader this client holds, once it subscribed. */
  reader: Promise<void> | undefined
  closed: boolean
  dropped: boolean
  /** Ends the connection when its credential expires. */
  expiry: NodeJS.Timeout | undefined
  /** The aedes client and the CONNECT password, once authenticated: the credential is checked again. */
  client: Client | undefined
  password: Buffer | undefined
}

export const newAppClient = (burst: number, now = Date.now()): AppClient => ({
  tenant: undefined,
  canCommand: false,
  bucket: newBucket(burst, now),
  filters: new Set(),
  reader: undefined,
  closed: false,
  dropped: false,
  expiry: undefined,
  client: undefined,
  password: undefined,
})

export interface HooksDeps {
  readonly config: AppMqttConfig
  readonly clients: Map<unknown, AppClient>
  readonly authenticate: AppAuthenticator
  readonly fanout: Fanout
  readonly commands: AppCommands
  readonly metrics: AppMqttMetrics
  readonly stopping: () => boolean
  readonly log: Logger
}

/** Bound on the wait for a tenant's bus reader before a SUBSCRIBE is answered 0x80. */
const READER_TIMEOUT_MS = 30_000
const MAX_TIMER_MS = 2 ** 31 - 1
/** Longest client id kept; longer ones close the connection. */
const MAX_CLIENT_ID_LENGTH = 256
/**
 * Where a command goes in aedes once it is on the commands topic: aedes routes every accepted
 * PUBLISH to matching subscribers, and applications subscribe under `app/` only; `$` topics are
 * not matched by wildcards either [MQTT-4.7.2-1].
 */
export const UNROUTED_TOPIC = '$tributary/unrouted'

export function createHooks(deps: HooksDeps) {
  const { config, clients, metrics, log } = deps
  const perTenant = new Map<string, number>()

  function refuse(reason: ConnectRefusal, username: string | undefined) {
    metrics.refused(reason)
    log.info({ tenant: username?.slice(0, 64), reason }, 'application MQTT connection refused')
    return connackError(reason)
  }

  /** Ends a client that does not read what it is sent, or whose credential expired. */
  function drop(client: Client, state: AppClient, reason: string): void {
    if (state.dropped) return
    state.dropped = true
    metrics.dropped(reason)
    log.info({ tenant: state.tenant, client: client.id, reason }, 'application MQTT client dropped')
    client.conn.destroy()
  }

  /** The end of a connection: its tenant count and its hold on the tenant reader go. */
  function ended(state: AppClient): void {
    state.closed = true
    clearTimeout(state.expiry)
    const tenant = state.tenant
    if (tenant === undefined) return
    perTenant.set(tenant, (perTenant.get(tenant) ?? 1) - 1)
    if (perTenant.get(tenant) === 0) perTenant.delete(tenant)
    metrics.disconnected(tenant)
    void state.reader?.then(
      () => deps.fanout.release(tenant),
      () => undefined,
    )
  }

  const hooks = {
    preConnect(client: Client, packet: ConnectPacket, callback: (error: Error | null, ok: boolean) => void) {
      if (packet.clientId.length > MAX_CLIENT_ID_LENGTH)
        return callback(new Error('client id too long'), false)
      // MQTT 3.1.1 lets no server change the keepalive, so a missing or longer one is served as the
      // maximum: the connection still ends after 1.5 times that without a packet [MQTT-3.1.2-24].
      if (!packet.keepalive || packet.keepalive > config.maxKeepaliveSeconds)
        packet.keepalive = config.maxKeepaliveSeconds
      // Sessions are not kept (a reader starts at 'latest' anyway) and applications have no will.
      packet.clean = true
      delete packet.will
      callback(null, true)
    },

    authenticate(
      client: Client,
      username: string | undefined,
      password: Buffer | undefined,
      callback: (error: (Error & { returnCode: 3 | 4 | 5 }) | null, ok: boolean | null) => void,
    ) {
      const state = clients.get(client.conn)
      if (state === undefined || deps.stopping()) return callback(refuse('shutting-down', username), null)
      deps.authenticate(username, password).then(
        (login) => {
          if (login.kind === 'refused') return callback(refuse(login.reason, username), null)
          if (state.closed) return callback(connackError('unavailable'), null)
          const tenant = login.tenant
          const open = perTenant.get(tenant) ?? 0
          if (open >= config.maxConnectionsPerTenant)
            return callback(refuse('connection-limit', username), null)
          perTenant.set(tenant, open + 1)
          state.tenant = tenant
          state.canCommand = login.canCommand
          state.client = client
          state.password = password
          metrics.connected(tenant)
          if (login.expiresAt !== undefined) {
            // setTimeout holds at most 2^31-1 ms (24.8 days); longer-lived credentials are not cut.
            const ms = Math.max(0, login.expiresAt - Date.now())
            if (ms < MAX_TIMER_MS)
              state.expiry = setTimeout(() => drop(client, state, 'credential-expired'), ms)
          }
          // Client ids are per tenant: the same id in two tenants is two clients, never a takeover.
          ;(client as { id: string }).id = `${tenant}/${client.id}`
          log.info({ tenant, client: client.id, subject: login.subject }, 'application connected')
          callback(null, true)
        },
        (err: unknown) => {
          log.warn({ err }, 'application MQTT authentication unavailable')
          callback(refuse('unavailable', username), null)
        },
      )
    },

    authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) {
      const state = client === null ? undefined : clients.get(client.conn)
      const tenant = state?.tenant
      // MQTT 3.1.1 has no negative PUBACK, so a refused PUBLISH closes the connection
      // [MQTT-3.3.5-2] rather than being acknowledged and thrown away.
      const refuse = (reason: PublishRefusal, detail: string) => {
        metrics.refused(reason)
        log.info(
          { tenant, client: client?.id, topic: packet.topic.slice(0, 300), reason, detail },
          'application MQTT publish refused',
        )
        callback(new Error(`publish refused: ${reason}`))
      }
      if (client === null || state === undefined || tenant === undefined)
        return refuse('publish-refused', 'not an authenticated application')
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      const checked = checkCommandPublish({
        topic: packet.topic,
        payloadBytes: payload.length,
        retain: packet.retain,
        tenant,
        canCommand: state.canCommand,
        maxPayloadBytes: config.maxCommandBytes,
      })
      if (!checked.ok) return refuse(checked.reason, checked.detail)
      if (!takeToken(state.bucket, Date.now(), config.commandRate, config.commandBurst)) {
        const detail = `over ${config.commandRate} commands per second`
        if (packet.qos > 0) return refuse('rate-limited', detail)
        // QoS 0 may be lost: dropped, not routed, the connection kept.
        metrics.refused('rate-limited')
        packet.topic = UNROUTED_TOPIC
        return callback(null)
      }
      const { command } = checked
      deps.commands(command, payload).then(
        (sent) => {
          if (!sent.ok) return refuse(sent.reason, sent.detail)
          metrics.command(tenant)
          log.info(
            { tenant, client: client.id, device: command.device, name: command.name, command: sent.id },
            'application command sent',
          )
          packet.topic = UNROUTED_TOPIC
          callback(null)
        },
        (err: unknown) => refuse('unavailable', String(err)),
      )
    },

    authorizeSubscribe(
      client: Client,
      subscription: Subscription,
      callback: (error: Error | null, subscription?: Subscription | null) => void,
    ) {
      const state = clients.get(client.conn)
      const tenant = state?.tenant
      if (state === undefined || tenant === undefined) return callback(null, null)
      const { topic } = subscription
      const refusal =
        checkFilter(topic, tenant) ??
        (!state.filters.has(topic) && state.filters.size >= config.maxSubscriptions
          ? 'subscription-limit'
          : undefined)
      if (refusal !== undefined) {
        metrics.refused(refusal)
        log.info(
          { tenant, client: client.id, topic: topic.slice(0, 300), reason: refusal },
          'subscription refused',
        )
        return callback(null, null) // SUBACK 0x80 for this filter [MQTT-3.9.3-1]
      }
      state.filters.add(topic)
      const reader = (state.reader ??= deps.fanout.acquire(tenant))
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('the tenant event reader did not start in time')),
          READER_TIMEOUT_MS,
        )
      })
      Promise.race([reader, late]).then(
        // Events are published at QoS 1, so a QoS 2 subscription receives them at QoS 1 [MQTT-3.8.4-6].
        () => {
          clearTimeout(timer)
          callback(null, subscription)
        },
        (err: unknown) => {
          clearTimeout(timer)
          // A reader that failed is tried again on the next SUBSCRIBE; a late one is kept (and released on close).
          void reader.catch(() => {
            if (state.reader === reader) state.reader = undefined
          })
          state.filters.delete(topic)
          metrics.refused('unavailable')
          log.warn({ err, tenant }, 'the tenant event reader could not start')
          callback(null, null)
        },
      )
    },

    authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
      const state = clients.get(client.conn)
      const tenant = state?.tenant
      if (state === undefined || tenant === undefined || state.dropped) return null
      const root = `${APP_ROOT}/${tenant}`
      if (packet.topic !== root && !packet.topic.startsWith(`${root}/`)) return null
      if (client.conn.writableLength > config.maxQueueBytes) {
        drop(client, state, 'queue-limit')
        return null
      }
      metrics.delivered(tenant)
      return packet
    },
  }
  /**
   * Checks every authenticated client's credential again, as the event WebSocket does: a revoked
   * API token, a removed role or a disabled tenant ends the connection; a changed role changes what
   * it may publish. Clients sharing a credential are checked once; an unavailable registry keeps them.
   */
  async function recheck(): Promise<void> {
    const byCredential = new Map<string, AppClient[]>()
    for (const state of clients.values()) {
      if (state.closed || state.dropped || state.tenant === undefined || state.password === undefined)
        continue
      const key = `${state.tenant}\0${state.password.toString('base64')}`
      const group = byCredential.get(key)
      if (group === undefined) byCredential.set(key, [state])
      else group.push(state)
    }
    for (const group of byCredential.values()) {
      const { tenant, password } = group[0]!
      let login: Awaited<ReturnType<AppAuthenticator>>
      try {
        login = await deps.authenticate(tenant, password)
      } catch (err) {
        log.debug({ err, tenant }, 'application MQTT credential re-check unavailable; kept')
        continue
      }
      for (const state of group) {
        if (login.kind === 'accepted' && login.tenant === state.tenant) state.canCommand = login.canCommand
        else if (state.client !== undefined) drop(state.client, state, 'credential-invalid')
      }
    }
  }

  return { hooks, ended, drop, recheck }
}
