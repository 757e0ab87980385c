// A CoAP load generator on raw UDP sockets (coap-packet, no client library): keeps a window of
// confirmable POSTs in flight over a few sockets, retransmits like a device would (RFC 7252 §4.2),
// acknowledges separate responses, and times each request from its first send to its final code.
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { generate, parse } from 'coap-packet'
import type { Option } from 'coap-packet'
import type { Stats } from './harness.ts'
import { BenchError, opsPerSecond, summarize } from './harness.ts'

export interface CoapEndpoint {
  readonly host: string
  readonly port: number
}

export interface CoapLoadOptions {
  readonly requests: number
  /** Requests in flight at once, over all sockets. */
  readonly window: number
  /** Client sockets (ports); each carries at most 50,000 requests so message ids never repeat. */
  readonly sockets: number
  readonly payloadBytes: number
  /** Uri-Path segments, e.g. ['v1', 'bench', 'telemetry']. */
  readonly path: readonly string[]
  /** Option 4209 values to send, one per device, used round-robin (empty: none). */
  readonly credentials: readonly string[]
  readonly timeoutMs: number
}

export interface CoapLoadResult {
  readonly requests: number
  readonly ms: number
  /** Final 2.04 answers per second. */
  readonly okPerSec: number
  readonly latency: Stats
  /** Final response codes and how often each came. */
  readonly codes: Record<string, number>
  readonly retransmissions: number
  /** Responses that came as a separate CON after an empty ACK (the server took longer than its piggyback wait). */
  readonly separate: number
  readonly clientCpuMs: number
}

/** ACK_TIMEOUT of RFC 7252 §4.8, without the random factor. */
const ACK_TIMEOUT_MS = 2_000
const MAX_RETRANSMIT = 4
const PER_SOCKET_MAX = 50_000

interface Pending {
  readonly datagram: Buffer
  readonly socket: Socket
  readonly started: number
  lastSent: number
  retries: number
}

export async function runCoapLoad(endpoint: CoapEndpoint, options: CoapLoadOptions): Promise<CoapLoadResult> {
  const socketCount = Math.max(options.sockets, Math.ceil(options.requests / PER_SOCKET_MAX))
  const sockets: Socket[] = []
  for (let i = 0; i < socketCount; i++) {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    socket.setRecvBufferSize(4 * 1024 * 1024)
    socket.setSendBufferSize(4 * 1024 * 1024)
    sockets.push(socket)
  }
  const payload = Buffer.alloc(options.payloadBytes)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff
  const base: Option[] = [
    ...options.path.map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) })),
    { name: 'Content-Format', value: Buffer.from([42]) },
  ]
  const credentials = options.credentials.map((c) => Buffer.from(c))
  const pending = new Map<string, Pending>()
  const latencies: number[] = []
  const codes: Record<string, number> = {}
  let retransmissions = 0
  let separate = 0
  let sent = 0
  let done = 0
  let failure: BenchError | undefined
  const messageIds = sockets.map(() => Math.floor(Math.random() * 0x10000))
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>()

  const send = (socket: Socket, datagram: Buffer): void =>
    socket.send(datagram, endpoint.port, endpoint.host, (err) => {
      if (err) failure ??= new BenchError(`send failed: ${err.message}`)
    })

  function next(): void {
    while (failure === undefined && sent < options.requests && pending.size < options.window) {
      const index = sent++
      const s = index % sockets.length
      const socket = sockets[s]!
      messageIds[s] = (messageIds[s]! + 1) & 0xffff
      const token = Buffer.alloc(4)
      token.writeUInt32BE(index)
      const cred =
        credentials.length === 0 ? [] : [{ name: '4209', value: credentials[index % credentials.length]! }]
      const datagram = generate({
        code: '0.02',
        confirmable: true,
        messageId: messageIds[s],
        token,
        options: [...base, ...cred],
        payload,
      })
      const now = performance.now()
      pending.set(`${s}:${index}`, { datagram, socket, started: now, lastSent: now, retries: 0 })
      send(socket, datagram)
    }
    if (failure !== undefined || done === options.requests) finish()
  }

  sockets.forEach((socket, s) => {
    socket.on('message', (msg) => {
      let packet
      try {
        packet = parse(msg)
      } catch {
        failure ??= new BenchError('the server sent a datagram that is not CoAP')
        return finish()
      }
      if (packet.confirmable) {
        // A separate response (RFC 7252 §5.2.2): acknowledge it, or the server sends it again.
        send(socket, generate({ code: '0.00', messageId: packet.messageId, ack: true }))
        separate++
      }
      if (packet.code === '0.00' || packet.token.length !== 4) return // the empty ACK before it
      const key = `${s}:${packet.token.readUInt32BE(0)}`
      const request = pending.get(key)
      if (request === undefined) return // a duplicate answer to a retransmission
      pending.delete(key)
      latencies.push(performance.now() - request.started)
      codes[packet.code] = (codes[packet.code] ?? 0) + 1
      done++
      next()
    })
  })

  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  const sweeper = setInterval(() => {
    const now = performance.now()
    for (const request of pending.values()) {
      if (now - request.lastSent < ACK_TIMEOUT_MS * 2 ** request.retries) continue
      if (request.retries >= MAX_RETRANSMIT) {
        failure ??= new BenchError('a request got no answer after 4 retransmissions')
        return finish()
      }
      request.retries++
      request.lastSent = now
      retransmissions++
      send(request.socket, request.datagram)
    }
  }, 100)
  const timer = setTimeout(() => {
    failure ??= new BenchError(
      `${done} of ${options.requests} requests answered within ${options.timeoutMs} ms`,
    )
    finish()
  }, options.timeoutMs)
  next()
  await finished
  const ms = performance.now() - started
  const cpu = process.cpuUsage(cpuBefore)
  clearInterval(sweeper)
  clearTimeout(timer)
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))))
  if (failure !== undefined) throw failure
  return {
    requests: options.requests,
    ms,
    okPerSec: opsPerSecond(codes['2.04'] ?? 0, ms),
    latency: summarize(latencies),
    codes,
    retransmissions,
    separate,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  }
}
