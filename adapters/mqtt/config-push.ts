// Desired configuration over MQTT (docs/config.md): a device that subscribes to `config` is sent
// `{configId, config}` there at once, and again whenever a registry change (on the registry topic,
// so from any process) gives it another configuration id; it reports on `config/applied` and asks on
// `config/req/<id>` (answered on `config/res/<id>`); a gateway does the same for a device D that
// lists it on `gw/<D>/config[/applied]`. Like commands, each PUBLISH is written to the one
// connection only (its DeviceLink, on MQTT 3.1.1 and 5 alike).
import type { Ingest } from '../adapter.ts'
import { deliverConfig, reportAppVersion, reportConfigApplied } from '../device-config.ts'
import type { Logger } from '../../core/log.ts'
import type { Device, RegistryChange } from '../../core/registry/model.ts'
import { isDeviceId } from '../../core/events/ids.ts'
import type { RegistryService, ResolvedConfig } from '../../core/registry/service.ts'
import { REQUEST_ID_PATTERN } from '../../core/events/commands.ts'
import { topicMatches } from './command-topics.ts'
import type { Connection, ConnectionTable, Session } from './connection.ts'
import { grantedQos } from './link.ts'
import type { DeviceLink } from './link.ts'
import type { PublishResult } from './publish.ts'

/** The topic a device subscribes to for its configuration, and the one it reports on. */
export const CONFIG_TOPIC = 'config'
export const CONFIG_APPLIED_TOPIC = 'config/applied'
/** `config/req[/<request id>]`: a device asks (Kaa 7/CMP); answered on `config/res/<request id>`. */
const CONFIG_REQUEST = /^config\/req(?:\/([^/]+))?$/
const RESPONSE_FILTER = /^config\/res\/(\+|#|[^/+#]+)$/

const GATEWAY_CONFIG = /^gw\/([^/]+)\/config$/
const GATEWAY_APPLIED = /^gw\/([^/]+)\/config\/applied$/
const GATEWAY_REQUEST = /^gw\/([^/]+)\/config\/req(?:\/([^/]+))?$/
const GATEWAY_RESPONSE_FILTER = /^gw\/([^/]+)\/config\/res\/(\+|#|[^/+#]+)$/

/** `config` or `gw/<D>/config`: an observation, where an unchanged id is not written again. */
const isObservationTopic = (topic: string): boolean => topic === CONFIG_TOPIC || GATEWAY_CONFIG.test(topic)

/** The device a `config` (own) or `gw/<D>/config` filter observes, else undefined. */
function observedBy(filter: string, self: string): string | undefined {
  if (filter === CONFIG_TOPIC) return self
  return GATEWAY_CONFIG.exec(filter)?.[1]
}

/** The device a report on `config/applied` or `gw/<D>/config/applied` is for, else undefined. */
export function appliedDeviceOf(topic: string, self: string): string | undefined {
  if (topic === CONFIG_APPLIED_TOPIC) return self
  return GATEWAY_APPLIED.exec(topic)?.[1]
}

/**
 * `config/req[/<id>]` (the device itself) or `gw/<D>/config/req[/<id>]` (a gateway for D): the
 * device asked for and the request id ('' without one); undefined for other topics.
 */
export function configRequestOf(
  topic: string,
  self: string,
): { readonly device: string; readonly requestId: string } | undefined {
  const own = CONFIG_REQUEST.exec(topic)
  if (own !== null) return { device: self, requestId: own[1] ?? '' }
  const gateway = GATEWAY_REQUEST.exec(topic)
  if (gateway === null) return undefined
  return { device: gateway[1]!, requestId: gateway[2] ?? '' }
}

export interface ConfigPushDeps {
  readonly config: Pick<
    RegistryService,
    'getEffectiveConfig' | 'getEffectiveConfigs' | 'configDelivered' | 'configApplied' | 'reportAppVersion'
  >
  readonly ingest: Pick<Ingest, 'event'>
  readonly table: Pick<ConnectionTable, 'all'>
  /** Cached device rows: a gateway serves `gw/<D>/config…` only for devices that list it. */
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  /** Logs and counts a refusal (throttled per connection). */
  readonly refused: (conn: Connection, reason: string, detail: string) => void
  readonly log: Logger
}

/** The QoS the connection gets `topic` with (its highest matching grant, at most 1), or undefined. */
const qosFor = (link: DeviceLink, topic: string): 0 | 1 | undefined =>
  grantedQos(
    link,
    (filter) =>
      filter === topic ||
      ((RESPONSE_FILTER.test(filter) || GATEWAY_RESPONSE_FILTER.test(filter)) && topicMatches(filter, topic)),
  )

export function createConfigPush(deps: ConfigPushDeps) {
  const { log } = deps
  /** The configuration id last written to each connection, per device (a gateway serves several). */
  const sent = new WeakMap<Connection, Map<string, string>>()
  const sentTo = (conn: Connection): Map<string, string> => {
    let map = sent.get(conn)
    if (map === undefined) sent.set(conn, (map = new Map<string, string>()))
    return map
  }

  async function serves(session: Session, device: string): Promise<boolean> {
    if (device === session.device) return true
    const served = await deps.findDevice(session.tenant, device)
    return served !== undefined && served.enabled && served.gateways.includes(session.device)
  }
  /** One push at a time per connection, so that ids arrive in the order they were computed. */
  const queues = new WeakMap<Connection, Promise<void>>()
  /**
   * Configurations written to a connection whose delivery is not recorded yet, by `device configId`:
   * a device may report one as soon as it has it, before the record that lets its report in.
   */
  const recording = new WeakMap<Connection, Map<string, Promise<unknown>>>()

  /** Writes one PUBLISH to this connection only; true once it was written to the socket. */
  async function writeTo(link: DeviceLink, topic: string, body: unknown, qos: 0 | 1): Promise<boolean> {
    const payload = Buffer.from(JSON.stringify(body))
    const properties = { contentType: 'application/json' }
    return (await link.publish({ topic, payload, qos, properties })) === 'written'
  }

  /**
   * Sends the effective configuration on `topic` unless the device has that id already (`has`; a
   * response then carries the id alone: nothing new, as Kaa 7/CMP answers). A configuration counts
   * as delivered once its event is on the bus and the PUBLISH was written.
   */
  async function send(
    conn: Connection,
    session: Session,
    device: string,
    topic: string,
    has: string | undefined,
    /** Read already, for many devices at once (a registry change); else read now. */
    resolved?: ResolvedConfig,
  ) {
    const link = conn.link
    if (link === undefined || conn.closed) return
    const qos = qosFor(link, topic)
    if (qos === undefined) return
    // Checked again at each write: a device may drop the gateway after the SUBSCRIBE.
    if (!(await serves(session, device))) return
    const { tenant } = session
    const effective = resolved ?? (await deps.config.getEffectiveConfig(tenant, device))
    if (has === effective.configId) {
      if (!isObservationTopic(topic)) await writeTo(link, topic, { configId: has }, qos)
      return
    }
    const { configId } = effective
    let attempted = false
    const key = `${device} ${configId}`
    let pending = recording.get(conn)
    if (pending === undefined) recording.set(conn, (pending = new Map<string, Promise<unknown>>()))
    const delivered = deliverConfig(
      deps,
      { tenant, device, sender: session.device, protocol: 'mqtt' },
      configId,
      async () => {
        attempted = true
        pending.set(key, delivered)
        if (!(await writeTo(link, topic, { configId, config: effective.config }, qos))) return false
        sentTo(conn).set(device, configId)
        return true
      },
    )
    const outcome = await delivered.finally(() => {
      if (pending.get(key) === delivered) pending.delete(key)
    })
    if (outcome.kind === 'accepted') {
      log.debug({ tenant, device, configId, topic }, 'configuration written to the device')
    } else if (!attempted) {
      log.warn(
        { tenant, device, detail: outcome.detail },
        'configuration not sent: its event was not written',
      )
    }
  }

  const push = (
    conn: Connection,
    session: Session,
    device: string,
    always: boolean,
    effective?: ResolvedConfig,
  ): Promise<void> =>
    send(
      conn,
      session,
      device,
      device === session.device ? CONFIG_TOPIC : `gw/${device}/config`,
      always ? undefined : sent.get(conn)?.get(device),
      effective,
    )

  /** The devices whose configuration the connection's subscriptions observe. */
  function observed(conn: Connection, session: Session): string[] {
    if (conn.link === undefined) return []
    const devices = [...conn.link.subscriptions()].map(([filter]) => observedBy(filter, session.device))
    return [...new Set(devices.filter((d): d is string => d !== undefined))]
  }

  function schedule(conn: Connection, work: (session: Session) => Promise<void>): Promise<void> {
    const session = conn.session
    if (session === undefined || !conn.announced) return Promise.resolve()
    const previous = queues.get(conn) ?? Promise.resolve()
    const next = previous.then(() =>
      work(session).catch((err: unknown) =>
        log.warn({ err, tenant: session.tenant, device: session.device }, 'configuration push failed'),
      ),
    )
    queues.set(conn, next)
    return next
  }

  return {
    /**
     * `config` and `config/res/<request id | + | #>` (QoS capped at 1); null for another `config/…`
     * filter (SUBACK 0x80); undefined: not this module's filter.
     */
    owns(filter: string): boolean {
      return (
        filter === CONFIG_TOPIC ||
        filter.startsWith('config/') ||
        GATEWAY_CONFIG.test(filter) ||
        GATEWAY_RESPONSE_FILTER.test(filter)
      )
    },

    /**
     * `config`, `config/res/<request id | + | #>`, and for a device D that lists the gateway
     * `gw/<D>/config` and `gw/<D>/config/res/<request id | + | #>`.
     */
    async authorizeSubscribe(session: Session, filter: string, qos: number): Promise<0 | 1 | null> {
      const gatewayResponse = GATEWAY_RESPONSE_FILTER.exec(filter)
      const gatewayFor = GATEWAY_CONFIG.exec(filter)?.[1] ?? gatewayResponse?.[1]
      if (gatewayFor !== undefined) {
        const id = gatewayResponse?.[2]
        const granted =
          isDeviceId(gatewayFor) &&
          gatewayFor !== session.device &&
          (id === undefined || id === '+' || id === '#' || REQUEST_ID_PATTERN.test(id)) &&
          (await serves(session, gatewayFor))
        return granted ? (Math.min(qos, 1) as 0 | 1) : null
      }
      const response = RESPONSE_FILTER.exec(filter)?.[1]
      const allowed =
        filter === CONFIG_TOPIC ||
        response === '+' ||
        response === '#' ||
        (response !== undefined && REQUEST_ID_PATTERN.test(response))
      return allowed ? (Math.min(qos, 1) as 0 | 1) : null
    },

    /** A SUBSCRIBE granted `config`: the configuration goes out now, whatever was sent before. */
    subscribed(conn: Connection, topics: readonly string[]): void {
      const self = conn.session?.device
      if (self === undefined) return
      for (const topic of topics) {
        const device = observedBy(topic, self)
        if (device !== undefined) void schedule(conn, (session) => push(conn, session, device, true))
      }
    },

    /**
     * `config/req[/<request id>]` with `{configId?, observe?, appVersion?}` (an empty payload is `{}`;
     * an `appVersion` is recorded first when it changed, see reportAppVersion): answered on
     * `config/res/<request id>` (on `config` without an id) with `{configId, config}`, or with
     * `{configId}` alone when the device named the current id. `observe` (7/CMP) is taken and ignored:
     * on MQTT the subscription to `config` is the observation. A malformed request ends the connection.
     */
    async request(
      conn: Connection,
      session: Session,
      device: string,
      requestId: string,
      payload: Buffer,
    ): Promise<PublishResult> {
      const own = device === session.device
      if (!own && !(isDeviceId(device) && (await serves(session, device)))) {
        deps.refused(
          conn,
          'gateway-not-allowed',
          `device ${device} does not list ${session.device} as a gateway`,
        )
        return { action: 'disconnect', reason: 'gateway-not-allowed' }
      }
      if (requestId !== '' && !REQUEST_ID_PATTERN.test(requestId)) {
        deps.refused(conn, 'invalid-config-request', 'config/req/<request id>: 1-64 of A-Z a-z 0-9 . _ ~ -')
        return { action: 'disconnect', reason: 'invalid-config-request' }
      }
      let body: unknown
      try {
        body =
          payload.length === 0 ? {} : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
      } catch {
        body = undefined
      }
      const fields =
        typeof body === 'object' && body !== null && !Array.isArray(body)
          ? (body as Record<string, unknown>)
          : undefined
      const has = fields?.['configId']
      const observe = fields?.['observe']
      const appVersion = fields?.['appVersion']
      const wellFormed =
        fields !== undefined &&
        Object.keys(fields).every((k) => k === 'configId' || k === 'observe' || k === 'appVersion') &&
        (has === undefined || typeof has === 'string') &&
        (observe === undefined || typeof observe === 'boolean')
      if (!wellFormed) {
        deps.refused(
          conn,
          'invalid-config-request',
          'config/req takes JSON {configId?: string, observe?: boolean, appVersion?: string}',
        )
        return { action: 'disconnect', reason: 'invalid-config-request' }
      }
      if (appVersion !== undefined) {
        const refused = await reportAppVersion(deps.config, { tenant: session.tenant, device }, appVersion)
        if (refused !== undefined) {
          deps.refused(conn, 'invalid-config-request', refused.detail)
          return { action: 'disconnect', reason: 'invalid-config-request' }
        }
      }
      const base = own ? '' : `gw/${device}/`
      const topic = requestId === '' ? `${base}${CONFIG_TOPIC}` : `${base}config/res/${requestId}`
      // Answered after the PUBACK's decision but in the connection's order of configuration writes.
      void schedule(conn, (s) => send(conn, s, device, topic, has))
      return { action: 'ack' }
    },

    /** A registry change that may change some devices' configuration id: they get the new one. */
    changed(change: RegistryChange): void {
      if (change.resource !== 'config' && change.resource !== 'device') return
      const targets: Array<{ conn: Connection; device: string }> = []
      for (const conn of deps.table.all()) {
        const session = conn.session
        if (session === undefined || session.tenant !== change.tenant) continue
        for (const device of observed(conn, session)) {
          if (change.device === undefined || change.device === device) targets.push({ conn, device })
        }
      }
      if (targets.length === 0) return
      // One read for every device the change may move (a tenant-wide change reaches the whole
      // fleet); each connection still sends in its own order, after what it was sending already.
      const devices = [...new Set(targets.map((t) => t.device))]
      const resolved = deps.config.getEffectiveConfigs(change.tenant, devices).catch((err: unknown) => {
        log.warn(
          { err, tenant: change.tenant },
          'configuration push failed: the configurations were not read',
        )
        return new Map<string, ResolvedConfig>()
      })
      for (const { conn, device } of targets) {
        void schedule(conn, async (session) => {
          const effective = (await resolved).get(device)
          if (effective !== undefined) await push(conn, session, device, false, effective)
        })
      }
    },

    /** `config/applied`: the report recorded and published, then PUBACK; a refused one disconnects. */
    async applied(
      conn: Connection,
      session: Session,
      device: string,
      payload: Buffer,
    ): Promise<PublishResult> {
      const { tenant } = session
      const allowed = device === session.device || (isDeviceId(device) && (await serves(session, device)))
      if (!allowed) {
        deps.refused(
          conn,
          'gateway-not-allowed',
          `device ${device} does not list ${session.device} as a gateway`,
        )
        return { action: 'disconnect', reason: 'gateway-not-allowed' }
      }
      let body: unknown
      try {
        body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
      } catch {
        deps.refused(
          conn,
          'invalid-config-report',
          'config/applied takes UTF-8 JSON {configId, statusCode?, reasonPhrase?}',
        )
        return { action: 'disconnect', reason: 'invalid-config-report' }
      }
      // The device has the configuration once its PUBLISH was written: the delivery's record is
      // what is left, and the report waits for it rather than be refused as an id never sent.
      const reported = (body as { configId?: unknown } | null)?.configId
      if (typeof reported === 'string')
        await recording
          .get(conn)
          ?.get(`${device} ${reported}`)
          ?.catch(() => undefined)
      const outcome = await reportConfigApplied(
        deps,
        { tenant, device, sender: session.device, protocol: 'mqtt', credential: session.credentialId },
        body,
      )
      if (outcome.kind === 'accepted') return { action: 'ack' }
      if (outcome.kind === 'rejected' && outcome.reason === 'invalid') {
        deps.refused(conn, 'invalid-config-report', outcome.detail)
        return { action: 'disconnect', reason: 'invalid-config-report' }
      }
      return { action: 'disconnect', reason: 'unavailable' }
    },
  }
}

export type ConfigPush = ReturnType<typeof createConfigPush>
