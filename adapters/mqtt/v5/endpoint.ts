// The MQTT 5 device endpoint on mqtt-packet: the subset a device needs (CONNECT, PUBLISH QoS 0/1
// acknowledged after the bus made it durable, SUBSCRIBE to its commands, configuration and upload
// tokens, which it is sent through its DeviceLink, PINGREQ, DISCONNECT), on the same
// authentication, sessions, checks, ingest and command/configuration/upload-token modules as the
// 3.1.1 endpoint (aedes), answering every refusal with a reason code instead of a disconnect. One
// call serves one connection until it closes.
import { generate, parser as createParser } from 'mqtt-packet'
import type {
  IConnectPacket,
  IPublishPacket,
  ISubscribePacket,
  IUnsubscribePacket,
  Packet,
} from 'mqtt-packet'
import type { Logger } from '../../../core/log.ts'
import type { ConnectHandler } from '../connect.ts'
import type { Connection } from '../connection.ts'
import type { WriteResult } from '../link.ts'
import type { MqttMetrics } from '../metrics.ts'
import type { PublishResult } from '../publish.ts'
import type { Refusals } from '../refusals.ts'
import type { DeviceRoutes } from '../routes.ts'
import { REASON, connackReason, connackReasonString, disconnectReason, pubackReason } from './outcome.ts'
import { createLink } from './outbound.ts'
import { TOPIC_ALIAS_MAXIMUM, describePayload, resolveTopic } from './publish.ts'
import type { TopicAliases } from './publish.ts'
import { subscribe as grant, subscribeViolation, unsubscribe as release } from './subscribe.ts'

export interface EndpointDeps {
  readonly connect: ConnectHandler
  /** What a PUBLISH or SUBSCRIBE reaches, as on 3.1.1 (../routes.ts). */
  readonly routes: Pick<DeviceRoutes, 'publish' | 'authorizeSubscribe' | 'subscribed' | 'unsubscribed'>
  readonly refusals: Refusals
  readonly metrics: Pick<MqttMetrics, 'ackDuration'>
  /** Work of a connection that its disconnected event waits for. */
  readonly track: <T>(conn: Connection, work: Promise<T>) => Promise<T>
  /** Maximum Packet Size announced in CONNACK; larger packets are cut off before they are buffered. */
  readonly maxPacketBytes: number
  /** Bound on the CONNECT arriving whole (aedes's connectTimeout on 3.1.1). */
  readonly connectTimeoutMs: number
  /** Bound on a write the client does not read (slow client). */
  readonly drainTimeoutMs: number
  readonly log: Logger
}

/** QoS 1 PUBLISHes a client may have unacknowledged (Receive Maximum in CONNACK, §3.2.2.3.3). */
export const RECEIVE_MAXIMUM = 64
/** Packets a client may send before its CONNACK (aedes's queue limit on 3.1.1 is the same). */
const QUEUE_LIMIT = 100
/** Longest keep alive accepted; a longer one is replaced by Server Keep Alive (§3.2.2.3.14). */
export const MAX_KEEPALIVE_SECONDS = 3600

type Phase = 'connect' | 'authenticating' | 'up' | 'ending'

export function serveV5(conn: Connection, deps: EndpointDeps): void {
  const { stream } = conn
  const parser = createParser({ protocolVersion: 5 })
  const aliases: TopicAliases = new Map()
  const queued: Packet[] = []
  /** QoS 1 acknowledgements in the order their PUBLISHes came [MQTT-4.6.0-2]; written from the head. */
  const acks: Array<{ packet: Packet | undefined; done: boolean }> = []
  let phase: Phase = 'connect'
  let inflight = 0
  let working = 0
  let keepaliveMs = 0
  let keepaliveTimer: NodeJS.Timeout | undefined
  let drainTimer: NodeJS.Timeout | undefined
  let clientMaxPacket = Number.POSITIVE_INFINITY
  let problemInformation = true
  /** A DISCONNECT 0x00 from the client discards the will [MQTT-3.14.4-3]. */
  let willDiscarded = false
  /** The filters the device holds (commands, configuration, upload tokens) and their granted QoS. */
  const held = new Map<string, number>()
  /** SUBSCRIBE and UNSUBSCRIBE are handled one after the other, in the order they came. */
  let subscriptionWork: Promise<void> = Promise.resolve()
  let clientReceiveMaximum = 0xffff
  /** Absent in CONNECT: the server sends no Topic Alias [MQTT-3.1.2-27]. */
  let clientTopicAliasMaximum = 0

  /** `done` is called once the bytes went to the socket (or with the error that stopped them). */
  function write(packet: Packet, done?: (err?: Error | null) => void): WriteResult {
    if (stream.destroyed || !stream.writable) return 'not-written'
    let bytes = generate(packet, { protocolVersion: 5 })
    // [MQTT-3.1.2-25] never more than the client's Maximum Packet Size: drop the reason string first.
    if (bytes.length > clientMaxPacket && 'properties' in packet && packet.properties !== undefined) {
      const { reasonString: _dropped, ...rest } = packet.properties as { reasonString?: string }
      bytes = generate({ ...packet, properties: rest }, { protocolVersion: 5 })
    }
    if (bytes.length > clientMaxPacket) return 'too-large'
    if (!stream.write(bytes, done) && drainTimer === undefined) {
      drainTimer = setTimeout(() => {
        conn.closeReason ??= 'slow-client'
        stream.destroy()
      }, deps.drainTimeoutMs)
      stream.once('drain', () => {
        clearTimeout(drainTimer)
        drainTimer = undefined
      })
    }
    return 'written'
  }

  /** Commands, configurations and upload tokens reach the device through this (../link.ts). */
  const { link, acked } = createLink({
    open: () => phase === 'up',
    write,
    held,
    receiveMaximum: () => clientReceiveMaximum,
    topicAliasMaximum: () => clientTopicAliasMaximum,
    closed: new Promise((resolve) => stream.once('close', resolve)),
  })
  conn.link = link

  /** Ends the connection, telling why with a DISCONNECT once the CONNACK went out (§4.13). */
  function end(reason: string | undefined): void {
    conn.closeReason ??= reason
    if (phase === 'ending') return
    const connected = phase === 'up'
    phase = 'ending'
    clearTimeout(keepaliveTimer)
    if (connected) write({ cmd: 'disconnect', reasonCode: disconnectReason(conn.closeReason) })
    stream.end(() => stream.destroy())
    // A peer that does not read cannot hold the connection open.
    setTimeout(() => stream.destroy(), deps.drainTimeoutMs).unref()
  }
  conn.end = end

  /** A rule the client broke: counted, logged, and the connection ended with its code. */
  function violation(reason: string, detail: string): void {
    deps.refusals.message(conn, reason, detail)
    end(reason)
  }

  function armKeepalive(): void {
    if (keepaliveMs === 0 || phase === 'ending') return
    clearTimeout(keepaliveTimer)
    // [MQTT-3.1.2-22] one and a half keep alive periods without a packet end the connection.
    keepaliveTimer = setTimeout(() => end('keepalive-timeout'), keepaliveMs * 1.5)
  }

  function readable(): void {
    while (phase !== 'ending' && working < RECEIVE_MAXIMUM + QUEUE_LIMIT) {
      const chunk = stream.read() as Buffer | null
      if (chunk === null) return
      parser.parse(chunk)
    }
  }

  parser.on('packet', (packet: Packet) => {
    if (phase === 'ending') return
    armKeepalive()
    if (phase === 'connect') return void onConnect(packet)
    if (phase === 'authenticating') {
      if (queued.length >= QUEUE_LIMIT) return violation('queue-limit', 'too many packets before CONNACK')
      queued.push(packet)
      return
    }
    handle(packet)
  })
  parser.on('error', (err: Error) => {
    if (phase === 'ending') return
    if (phase === 'connect' || phase === 'authenticating') {
      // [MQTT-4.13.1-1] a malformed packet closes the connection; before CONNACK the reason goes in one.
      deps.refusals.message(conn, 'malformed', err.message)
      conn.closeReason ??= 'malformed'
      if (phase === 'connect') write({ cmd: 'connack', sessionPresent: false, reasonCode: REASON.malformed })
      phase = 'ending'
      stream.end(() => stream.destroy())
      return
    }
    violation('malformed', err.message)
  })
  stream.on('readable', readable)
  // The client's end of the stream ends the connection (a socket that is not half-open).
  stream.on('end', () => stream.destroy())
  stream.on('error', (err: Error & { code?: string }) => {
    conn.closeReason ??= 'connection-lost'
    deps.log.debug({ err, connection: conn.id }, 'MQTT 5 connection error')
  })
  const connectTimer = setTimeout(() => {
    if (phase !== 'connect') return
    deps.refusals.message(conn, 'connect-timeout', 'no CONNECT in time')
    conn.closeReason ??= 'connect-timeout'
    phase = 'ending'
    stream.destroy()
  }, deps.connectTimeoutMs)
  stream.prependOnceListener('close', () => {
    phase = 'ending'
    clearTimeout(connectTimer)
    clearTimeout(keepaliveTimer)
    clearTimeout(drainTimer)
    publishWill()
  })

  function onConnect(packet: Packet): void {
    // [MQTT-3.1.0-1] the first packet is a CONNECT.
    if (packet.cmd !== 'connect') return violation('protocol-error', `${packet.cmd} before CONNECT`)
    clearTimeout(connectTimer)
    const connect = packet
    const props = connect.properties ?? {}
    conn.clientId = connect.clientId.slice(0, 256)
    if (connect.will !== undefined && connect.will !== null) {
      const payload = connect.will.payload
      conn.will = {
        topic: connect.will.topic,
        payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
        retain: connect.will.retain === true,
      }
    }
    if (props.maximumPacketSize !== undefined) clientMaxPacket = props.maximumPacketSize
    if (props.receiveMaximum !== undefined) clientReceiveMaximum = props.receiveMaximum
    if (props.topicAliasMaximum !== undefined) clientTopicAliasMaximum = props.topicAliasMaximum
    problemInformation = props.requestProblemInformation !== false
    keepaliveMs = Math.min(connect.keepalive ?? 0, MAX_KEEPALIVE_SECONDS) * 1000
    armKeepalive()
    // Enhanced authentication (AUTH) is not offered: §4.12, CONNACK 0x8C.
    if (props.authenticationMethod !== undefined) {
      deps.refusals.connect(conn, 'bad-authentication-method', connect.username)
      return refuseConnect(REASON.badAuthenticationMethod, 'enhanced authentication is not supported')
    }
    phase = 'authenticating'
    deps.track(conn, deps.connect(conn, connect.username, connect.password)).then(
      (refusal) => {
        if (refusal !== undefined) return refuseConnect(connackReason(refusal), connackReasonString(refusal))
        accepted(connect)
      },
      (err: unknown) => {
        deps.log.error({ err, connection: conn.id }, 'MQTT 5 CONNECT failed')
        refuseConnect(REASON.serverUnavailable, undefined)
      },
    )
  }

  function refuseConnect(reasonCode: number, reasonString: string | undefined): void {
    if (phase === 'ending') return
    write({
      cmd: 'connack',
      sessionPresent: false,
      reasonCode,
      ...(reasonString === undefined ? {} : { properties: { reasonString } }),
    })
    // [MQTT-3.2.2-7] a CONNACK of 0x80 or above closes the connection.
    phase = 'ending'
    clearTimeout(keepaliveTimer)
    stream.end(() => stream.destroy())
  }

  function accepted(connect: IConnectPacket): void {
    if (phase === 'ending' || conn.closed) return
    const session = conn.session!
    const asked = connect.keepalive ?? 0
    const props = connect.properties ?? {}
    write({
      cmd: 'connack',
      // No session state is kept for devices: Session Present is 0 [MQTT-3.2.2-2] [MQTT-3.2.2-3].
      sessionPresent: false,
      reasonCode: REASON.success,
      properties: {
        // The session ends with the connection, whatever the client asked for (§3.2.2.3.2).
        ...(props.sessionExpiryInterval ? { sessionExpiryInterval: 0 } : {}),
        receiveMaximum: RECEIVE_MAXIMUM,
        maximumQoS: 1,
        retainAvailable: false,
        maximumPacketSize: deps.maxPacketBytes,
        topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
        subscriptionIdentifiersAvailable: false,
        sharedSubscriptionAvailable: false,
        // [MQTT-3.2.2-16] a zero-length client id gets one assigned.
        ...(connect.clientId === ''
          ? { assignedClientIdentifier: `${session.tenant}/${session.device}` }
          : {}),
        // [MQTT-3.2.2-21] the client uses the server's keep alive instead of its own.
        ...(asked > MAX_KEEPALIVE_SECONDS ? { serverKeepAlive: MAX_KEEPALIVE_SECONDS } : {}),
      },
    })
    phase = 'up'
    for (const packet of queued.splice(0)) if (phase === 'up') handle(packet)
  }

  function handle(packet: Packet): void {
    switch (packet.cmd) {
      case 'publish':
        return publish(packet)
      case 'pingreq':
        return void write({ cmd: 'pingresp' })
      case 'subscribe':
        return subscribe(packet)
      case 'unsubscribe':
        return unsubscribe(packet)
      case 'puback':
        // Frees the packet id of a PUBLISH sent; delivery was counted when it was written, as on 3.1.1.
        if (acked(packet.messageId ?? 0)) return
        return violation('protocol-error', 'PUBACK for no PUBLISH sent')
      case 'disconnect':
        conn.closeReason ??= 'client-disconnect'
        // [MQTT-3.14.4-3] 0x00 discards the will; 0x04 (disconnect with will message) keeps it.
        willDiscarded = (packet.reasonCode ?? 0) === 0
        phase = 'ending'
        clearTimeout(keepaliveTimer)
        stream.end(() => stream.destroy())
        return
      case 'connect':
        return violation('protocol-error', 'a second CONNECT') // [MQTT-3.1.0-2]
      case 'auth':
      case 'connack':
      case 'pingresp':
      case 'pubcomp':
      case 'pubrec':
      case 'pubrel':
      case 'suback':
      case 'unsuback':
        // AUTH (no enhanced authentication), server packets, acknowledgements of PUBLISHes never sent.
        return violation('protocol-error', `unexpected ${packet.cmd}`)
    }
  }

  /** Subscription work, one packet after the other; reading pauses while it is pending. */
  function serially(work: () => Promise<void>): void {
    working++
    subscriptionWork = subscriptionWork.then(async () => {
      try {
        if (phase === 'up') await deps.track(conn, work())
      } catch (err) {
        deps.log.error({ err, connection: conn.id }, 'MQTT 5 subscription failed')
      } finally {
        working--
        if (phase !== 'ending') readable()
      }
    })
  }

  /** Granted by the modules 3.1.1 uses (../routes.ts); SUBACK says per filter what came of it. */
  function subscribe(packet: ISubscribePacket): void {
    const broken = subscribeViolation(packet)
    if (broken !== undefined) return violation(broken, `SUBSCRIBE with a ${broken}`)
    serially(async () => {
      const session = conn.session!
      const { codes, added } = await grant(
        packet,
        held,
        (filter, qos) => deps.routes.authorizeSubscribe(conn, session, filter, qos),
        (filter, detail) =>
          deps.refusals.message(
            conn,
            'subscribe-refused',
            `${detail} (filter ${JSON.stringify(filter.slice(0, 300))})`,
          ),
      )
      if (phase !== 'up') return
      // [MQTT-3.8.4-1] [MQTT-3.8.4-2] a SUBACK with the SUBSCRIBE's Packet Identifier.
      write({ cmd: 'suback', messageId: packet.messageId ?? 0, granted: codes })
      if (added.length > 0) deps.routes.subscribed(conn, added)
    })
  }

  function unsubscribe(packet: IUnsubscribePacket): void {
    serially(async () => {
      const codes = release(packet, held)
      // [MQTT-3.10.4-4] [MQTT-3.10.4-5] one UNSUBACK with the UNSUBSCRIBE's Packet Identifier.
      write({ cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: codes })
      if (codes.includes(REASON.success)) deps.routes.unsubscribed(conn)
    })
  }

  function publish(packet: IPublishPacket): void {
    const session = conn.session!
    const started = performance.now()
    // CONNACK said Maximum QoS 1 and Retain Available 0: breaking them is DISCONNECT 0x9B / 0x9A (§3.2.2.3.4-5).
    if (packet.qos > 1) return violation('qos-not-supported', 'QoS 2 PUBLISH')
    if (packet.retain) return violation('retained', 'retained PUBLISH')
    const topic = resolveTopic(packet, aliases)
    if (!topic.ok) return violation(topic.reason, `topic alias ${packet.properties?.topicAlias ?? 'none'}`)
    if (packet.qos === 1 && ++inflight > RECEIVE_MAXIMUM)
      return violation('receive-maximum', `more than ${RECEIVE_MAXIMUM} unacknowledged QoS 1 PUBLISHes`)
    const slot = packet.qos === 1 ? { packet: undefined as Packet | undefined, done: false } : undefined
    if (slot !== undefined) acks.push(slot)
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const described = describePayload(packet)
    const work = async (): Promise<PublishResult> => {
      if (!described.ok) {
        deps.refusals.message(conn, 'payload-format-invalid', described.detail)
        return { action: 'disconnect', reason: 'payload-format-invalid' }
      }
      return deps.routes.publish(
        conn,
        session,
        {
          topic: topic.topic,
          qos: packet.qos,
          retain: false,
          payload,
          contentType: described.contentType,
          traceparent: described.traceparent,
        },
        new Date(),
      )
    }
    working++
    void deps
      .track(conn, work())
      .catch((err: unknown): PublishResult => {
        deps.log.error({ err, connection: conn.id }, 'MQTT 5 PUBLISH failed')
        return { action: 'disconnect', reason: 'unavailable' }
      })
      .then((result) => {
        working--
        if (slot !== undefined) {
          inflight--
          const ok = result.action === 'ack'
          if (ok) deps.metrics.ackDuration((performance.now() - started) / 1000)
          // A refusal keeps the session: PUBACK with the reason code [MQTT-3.4.2-1]; QoS 0 is dropped.
          slot.packet = {
            cmd: 'puback',
            messageId: packet.messageId ?? 0,
            reasonCode: ok ? REASON.success : pubackReason(result.reason),
            ...(!ok && problemInformation && result.reason !== undefined
              ? { properties: { reasonString: result.reason } }
              : {}),
          }
          slot.done = true
          while (acks[0]?.done === true) write(acks.shift()!.packet!)
        }
        if (phase !== 'ending') readable()
      })
  }

  /** A connection that ended without DISCONNECT 0x00 publishes its will, unless we dropped it. */
  function publishWill(): void {
    const session = conn.session
    const will = conn.will
    if (willDiscarded || conn.dropWill || will === undefined || session === undefined || !conn.announced)
      return
    void deps.track(
      conn,
      deps.routes.publish(
        conn,
        session,
        { topic: will.topic, payload: will.payload, qos: 0, retain: false },
        new Date(),
      ),
    )
  }

  // Bytes already buffered (the CONNECT the listener read to learn the version) are read now.
  readable()
}
