// An MQTT 3.1.1 or 5 load generator on raw TCP sockets (mqtt-packet, no client library): opens many
// connections, drives QoS 1 publishes with a window in flight per connection, and times each one
// from the write to its PUBACK. It also holds idle connections for the memory scenario.
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { connect as netConnect } from 'node:net'
import type { Packet } from 'mqtt-packet'
import { generate, parser } from 'mqtt-packet'
import type { Stats } from './harness.ts'
import { BenchError, opsPerSecond, summarize } from './harness.ts'

export interface MqttEndpoint {
  readonly host: string
  readonly port: number
}

export interface MqttIdentity {
  readonly clientId: string
  readonly username?: string | undefined
  readonly password?: string | undefined
}

export interface ConnectOptions {
  /** Seconds; the server closes a connection silent for 1.5 times this [MQTT-3.1.2-24]. */
  readonly keepaliveSeconds: number
  /** Bound on TCP connect + CONNECT → CONNACK. */
  readonly timeoutMs: number
  /** 4 (MQTT 3.1.1, the default) or 5. */
  readonly protocolVersion?: 4 | 5 | undefined
}

export interface MqttConnection {
  readonly identity: MqttIdentity
  readonly socket: Socket
  /** Packets after the CONNACK go here; the load sets it, idle connections leave it empty. */
  onPacket: ((packet: Packet) => void) | undefined
  /** Set with the reason once the connection is gone (whoever closed it). */
  closedReason: string | undefined
  onClose: ((reason: string) => void) | undefined
}

// [MQTT-3.2.2-3] CONNACK return codes of MQTT 3.1.1.
const CONNACK_CODES: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
}

/** Opens one TCP connection and completes the MQTT handshake (clean session, MQTT 3.1.1). */
export function openConnection(
  endpoint: MqttEndpoint,
  identity: MqttIdentity,
  options: ConnectOptions,
): Promise<MqttConnection> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: endpoint.host, port: endpoint.port, noDelay: true })
    const protocolVersion = options.protocolVersion ?? 4
    const packets = parser({ protocolVersion })
    const connection: MqttConnection = {
      identity,
      socket,
      onPacket: undefined,
      closedReason: undefined,
      onClose: undefined,
    }
    let connected = false
    const fail = (reason: string): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(new BenchError(`${identity.clientId}: ${reason}`))
    }
    const timer = setTimeout(() => fail(`no CONNACK within ${options.timeoutMs} ms`), options.timeoutMs)
    packets.on('packet', (packet: Packet) => {
      if (connected) {
        connection.onPacket?.(packet)
        return
      }
      if (packet.cmd !== 'connack') return fail(`expected CONNACK, got ${packet.cmd}`)
      const code = packet.returnCode ?? packet.reasonCode ?? 0
      if (code !== 0) return fail(`CONNACK refused: ${code} ${CONNACK_CODES[code] ?? 'unknown code'}`)
      connected = true
      clearTimeout(timer)
      resolve(connection)
    })
    packets.on('error', (err: unknown) => {
      const reason = `protocol error from the server: ${String(err)}`
      if (connected) socket.destroy(new Error(reason))
      else fail(reason)
    })
    // Writes made while one chunk of packets is handled leave in one segment.
    socket.on('data', (chunk: Buffer) => {
      socket.cork()
      packets.parse(chunk)
      socket.uncork()
    })
    socket.on('error', (err) => {
      if (!connected) fail(err.message)
      else connection.closedReason ??= err.message
    })
    socket.on('close', () => {
      if (!connected) return fail('connection closed before CONNACK')
      connection.closedReason ??= 'closed by the server'
      connection.onClose?.(connection.closedReason)
    })
    socket.once('connect', () => {
      socket.write(
        generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion,
            clean: true,
            keepalive: options.keepaliveSeconds,
            clientId: identity.clientId,
            ...(identity.username === undefined ? {} : { username: identity.username }),
            ...(identity.password === undefined ? {} : { password: Buffer.from(identity.password) }),
          },
          { protocolVersion },
        ),
      )
    })
  })
}

export interface OpenedConnections {
  readonly connections: MqttConnection[]
  /** The first failure, when not every connection could be opened (the others stay open). */
  readonly failure: { readonly opened: number; readonly reason: string } | undefined
  readonly ms: number
}

/**
 * Opens one connection per identity, `concurrency` handshakes at a time. Stops at the first
 * failure and reports how many were open, so a caller can say exactly how far it got and why.
 */
export async function openConnections(
  endpoint: MqttEndpoint,
  identities: readonly MqttIdentity[],
  options: ConnectOptions & { readonly concurrency: number },
): Promise<OpenedConnections> {
  const connections: MqttConnection[] = []
  let failure: string | undefined
  let next = 0
  const start = performance.now()
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < identities.length) {
      const identity = identities[next++]!
      try {
        connections.push(await openConnection(endpoint, identity, options))
      } catch (err) {
        failure ??= err instanceof Error ? err.message : String(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency, identities.length) }, lane))
  const ms = performance.now() - start
  // A connection the server dropped after its CONNACK is not open either.
  const dropped = connections.find((c) => c.closedReason !== undefined)
  failure ??= dropped === undefined ? undefined : `${dropped.identity.clientId}: ${dropped.closedReason}`
  const open = connections.filter((c) => c.closedReason === undefined).length
  return { connections, failure: failure === undefined ? undefined : { opened: open, reason: failure }, ms }
}

/** DISCONNECT and close every connection; resolves when all sockets are closed. */
export async function closeConnections(connections: readonly MqttConnection[]): Promise<void> {
  const disconnect = generate({ cmd: 'disconnect' })
  await Promise.all(
    connections.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.socket.destroyed) return resolve()
          c.socket.once('close', () => resolve())
          c.closedReason ??= 'closed by the client'
          c.socket.end(disconnect)
          // A server that does not close its side within a second is not waited for.
          setTimeout(() => c.socket.destroy(), 1_000).unref()
        }),
    ),
  )
}

export interface LoadOptions {
  /** Messages in total, spread evenly over the connections. */
  readonly messages: number
  /** PUBLISHes in flight (sent, not yet acknowledged) per connection. */
  readonly window: number
  readonly payloadBytes: number
  readonly topic: string
  readonly timeoutMs: number
  /** The version the connections were opened with (4 unless 5). */
  readonly protocolVersion?: 4 | 5 | undefined
}

export interface LoadResult {
  readonly connections: number
  readonly messages: number
  /** First write → last PUBACK. */
  readonly ms: number
  readonly ackedPerSec: number
  /** Write of a PUBLISH → its PUBACK parsed, ms. */
  readonly latency: Stats
  /** CPU time of this (the client's) process during the run, ms. */
  readonly clientCpuMs: number
}

// Packet ids cycle through 1..ID_SPACE; the window must stay below it so in-flight ids are unique.
const ID_SPACE = 4096

/**
 * Publishes `messages` QoS 1 messages over the open connections, each connection keeping `window`
 * unacknowledged, and resolves when every one was acknowledged. Any close, unexpected packet or
 * the timeout rejects.
 */
export function runQos1Load(
  connections: readonly MqttConnection[],
  options: LoadOptions,
): Promise<LoadResult> {
  if (options.window < 1 || options.window >= ID_SPACE)
    throw new BenchError(`window ${options.window} out of range`)
  if (connections.length === 0) throw new BenchError('no connections to publish on')
  const payload = randomBytes(options.payloadBytes)
  // One PUBLISH built by mqtt-packet; copies of it get their packet id written in place, which costs
  // less than generating each (the client must not be what limits the servers).
  const v5 = options.protocolVersion === 5
  const template = generate(
    { cmd: 'publish', topic: options.topic, payload, qos: 1, messageId: 1, retain: false, dup: false },
    { protocolVersion: v5 ? 5 : 4 },
  )
  // MQTT 5 puts a property length (0: one byte) between the packet id and the payload.
  const idOffset = template.length - payload.length - 2 - (v5 ? 1 : 0)
  const latencies = new Float64Array(options.messages)
  let acked = 0
  const perConnection = Math.floor(options.messages / connections.length)
  const extra = options.messages % connections.length

  return new Promise<LoadResult>((resolve, reject) => {
    const cpuBefore = process.cpuUsage()
    const start = performance.now()
    let settled = false
    const finish = (error?: BenchError): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      for (const c of connections) {
        c.onPacket = undefined
        c.onClose = undefined
      }
      if (error !== undefined) return reject(error)
      const ms = performance.now() - start
      const cpu = process.cpuUsage(cpuBefore)
      resolve({
        connections: connections.length,
        messages: options.messages,
        ms,
        ackedPerSec: opsPerSecond(acked, ms),
        latency: summarize(Array.from(latencies)),
        clientCpuMs: (cpu.user + cpu.system) / 1000,
      })
    }
    const timer = setTimeout(
      () =>
        finish(new BenchError(`only ${acked} of ${options.messages} PUBACKs within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    )

    connections.forEach((connection, index) => {
      const quota = perConnection + (index < extra ? 1 : 0)
      const sentAt = new Float64Array(ID_SPACE + 1)
      let sent = 0
      let nextId = 1
      const send = (): void => {
        const packet = Buffer.allocUnsafe(template.length)
        template.copy(packet)
        packet.writeUInt16BE(nextId, idOffset)
        sentAt[nextId] = performance.now()
        nextId = nextId === ID_SPACE ? 1 : nextId + 1
        sent++
        connection.socket.write(packet)
      }
      connection.onClose = (reason) =>
        finish(
          new BenchError(
            `${connection.identity.clientId} closed during the load (${acked} acked): ${reason}`,
          ),
        )
      connection.onPacket = (packet) => {
        if (packet.cmd !== 'puback') {
          if (packet.cmd === 'pingresp') return
          return finish(new BenchError(`${connection.identity.clientId}: unexpected ${packet.cmd}`))
        }
        // An MQTT 5 refusal (reason code 0x80 and above) is no acknowledgement.
        const reason = packet.reasonCode ?? 0
        if (reason >= 0x80)
          return finish(new BenchError(`${connection.identity.clientId}: PUBACK reason code ${reason}`))
        const id = packet.messageId ?? 0
        const at = sentAt[id] ?? 0
        if (at === 0)
          return finish(new BenchError(`${connection.identity.clientId}: PUBACK for unknown id ${id}`))
        sentAt[id] = 0
        latencies[acked++] = performance.now() - at
        if (sent < quota) send()
        if (acked === options.messages) finish()
      }
      if (connection.closedReason !== undefined) return connection.onClose(connection.closedReason)
      connection.socket.cork()
      for (let i = 0; i < Math.min(options.window, quota); i++) send()
      connection.socket.uncork()
    })
  })
}
