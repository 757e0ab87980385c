// The device CoAP adapter (UDP, RFC 7252): `POST /v1/<channel>` answered 2.04 once the event is
// durable on the bus. The `coap` library runs the message layer (deduplication, piggybacked and
// separate responses, retransmission); datagrams.ts gates what reaches it; handler.ts decides.
import type { RemoteInfo, Socket } from 'node:dgram'
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { createServer, registerFormat, registerOption } from 'coap'
import type { IncomingMessage, OutgoingMessage } from 'coap'
import type { Adapter, Ingest } from '../adapter.ts'
import { createLastSeen, createRateLimiter } from '../device-limits.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import { TributaryError } from '../../core/errors.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import type { CoapConfig } from './config.ts'
import { MAX_TRANSMIT_SPAN_MS, createDatagramGate } from './datagrams.ts'
import { createRequestHandler } from './handler.ts'
import { AUTH_OPTION, CONTENT_FORMATS } from './map.ts'
import type { WireRequest } from './map.ts'
import { createCoapMetrics } from './metrics.ts'
import { CODES, DEFAULT_RETRY_SECONDS, diagnostic } from './outcome.ts'
import type { CoapReply } from './outcome.ts'

export { coapConfig } from './config.ts'
export type { CoapConfig } from './config.ts'

export interface CoapAdapterDeps {
  readonly ingest: Pick<Ingest, 'publish'>
  /** The cached registry lookups: device authentication, tenant quotas, gateway rules. */
  readonly auth: Pick<RegistryAuth, 'device' | 'tenant' | 'findDevice'>
  /** Registry store's touchDevice: the last-seen time. */
  readonly touchDevice: (tenant: string, device: string, at: Date) => Promise<void>
  readonly cluster: Pick<ClusterState, 'take'>
  readonly metrics: Registry
  readonly log: Logger
}

/** A peer may reassemble this many block-wise bodies at once. */
const TRANSFERS_PER_PEER = 4
const TRANSFER_IDLE_MS = 60_000

let registered = false
/**
 * Teaches the library option 4209 (text) and our media type names for the Content-Formats we take,
 * so that it converts them as we spell them. Registration is global to the library, and harmless.
 */
function registerWireNames(): void {
  if (registered) return
  registered = true
  registerOption(
    String(AUTH_OPTION),
    (value) => Buffer.from(String(value), 'utf8'),
    (value) => value.toString('utf8'),
  )
  for (const [number, type] of CONTENT_FORMATS) registerFormat(type, number)
}

interface PacketOption {
  readonly name: unknown
  readonly value: unknown
}

/** The parts of a parsed request the handler reads (option values as the library converted them). */
function wireRequest(req: IncomingMessage): WireRequest {
  const options = (req._packet.options ?? []) as readonly PacketOption[]
  const buffers = (name: string): Buffer[] =>
    options.filter((o) => o.name === name && Buffer.isBuffer(o.value)).map((o) => o.value as Buffer)
  const format = options.find((o) => o.name === 'Content-Format')
  return {
    method: typeof req.method === 'string' ? req.method : undefined,
    uriPath: buffers('Uri-Path'),
    uriQuery: buffers('Uri-Query'),
    // Present with a value the library could not read (null): still present, and refused.
    contentFormat: format === undefined ? undefined : (format.value ?? null),
    credentials: options
      .filter((o) => String(o.name) === String(AUTH_OPTION))
      .map((o) => (Buffer.isBuffer(o.value) ? o.value : String(o.value))),
    payload: req.payload,
  }
}

function writeReply(res: OutgoingMessage, reply: CoapReply): void {
  res.code = reply.code
  if (reply.maxAge !== undefined) res.setOption('Max-Age', reply.maxAge)
  if (reply.size1 !== undefined) res.setOption('Size1', reply.size1)
  res.end(diagnostic(reply.detail))
}

function bind(socket: Socket, config: CoapConfig): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
        reject(
          new TributaryError(
            'PORT_IN_USE',
            `the coap listener cannot bind ${config.host}:${config.port}/udp (${err.code === 'EACCES' ? 'permission denied' : 'the port is taken'}); set ${config.portVariable} to another port, or 0 for any free port`,
            { cause: err, details: { variable: config.portVariable, port: config.port } },
          ),
        )
      } else reject(err)
    }
    socket.once('error', onError)
    socket.bind(config.port, config.host, () => {
      socket.off('error', onError)
      resolve(socket.address().port)
    })
  })
}

export function createCoapAdapter(config: CoapConfig, deps: CoapAdapterDeps): Adapter {
  const log = deps.log
  const metrics = createCoapMetrics(deps.metrics)
  const lastSeen = createLastSeen({ touch: deps.touchDevice, intervalMs: config.lastSeenIntervalMs, log })
  const handler = createRequestHandler({
    ingest: deps.ingest,
    auth: deps.auth.device,
    findDevice: (tenant, device) => deps.auth.findDevice(tenant, device),
    limiter: createRateLimiter({
      cluster: deps.cluster,
      tenant: (id) => deps.auth.tenant(id),
      defaultRate: config.publishRate,
      log,
    }),
    lastSeen,
    maxPayloadBytes: config.maxPayloadBytes,
    log,
  })
  let socket: Socket | undefined
  let server: ReturnType<typeof createServer> | undefined
  let port = 0
  let stopping = false
  const inFlight = new Set<Promise<void>>()

  function onRequest(req: IncomingMessage, res: OutgoingMessage): void {
    const started = performance.now()
    const answered = (reply: CoapReply): void => {
      writeReply(res, reply)
      metrics.answered(reply.code, (performance.now() - started) / 1000)
    }
    if (stopping) {
      return answered({ code: CODES.unavailable, detail: 'shutting down', maxAge: DEFAULT_RETRY_SECONDS })
    }
    // The library calls back; the handler never rejects, and a throw in writing is logged (STYLE.md 8).
    const work = handler(wireRequest(req)).then(answered, (err: unknown) => {
      log.error({ err }, 'CoAP response failed')
    })
    inFlight.add(work)
    void work.finally(() => inFlight.delete(work))
  }

  return {
    name: 'coap',
    protocol: 'coap',
    ports: () => ({ coap: port }),
    async start() {
      registerWireNames()
      const type = isIPv6(config.host) ? 'udp6' : 'udp4'
      // reuseAddr off: with it, a second process would share the port instead of failing to bind.
      const sock = createSocket({ type, reuseAddr: false })
      try {
        port = await bind(sock, config)
      } catch (err) {
        sock.close()
        throw err
      }
      const coap = createServer({
        type,
        piggybackReplyMs: config.piggybackMs,
        sendAcksForNonConfirmablePackets: true,
        cacheSize: config.responseCacheBytes,
        reuseAddr: false,
      })
      coap.on('request', onRequest)
      coap.on('error', (err: unknown) => log.error({ err }, 'CoAP server error'))
      coap.listen(sock)
      // The library listens on the socket we bound; its datagrams go through the gate instead.
      sock.removeAllListeners('message')
      const pass = coap.handleRequest()
      const gate = createDatagramGate(
        {
          maxPayloadBytes: config.maxPayloadBytes,
          maxTransfers: config.maxBlockTransfers,
          maxTransfersPerPeer: TRANSFERS_PER_PEER,
          idleMs: TRANSFER_IDLE_MS,
          rememberMs: MAX_TRANSMIT_SPAN_MS,
        },
        {
          pass,
          send: (datagram: Buffer, rinfo: RemoteInfo) => sock.send(datagram, rinfo.port, rinfo.address),
          answered: (code) => metrics.answered(code, 0),
        },
      )
      sock.on('message', gate)
      socket = sock
      server = coap
      log.info({ port, host: config.host }, 'CoAP adapter listening (UDP, no DTLS)')
    },
    async stop() {
      stopping = true
      const deadline = Date.now() + config.shutdownTimeoutMs
      while (inFlight.size > 0 && Date.now() < deadline) {
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
        ])
      }
      await lastSeen.flush()
      // Let the last responses leave the socket before it closes.
      await new Promise((resolve) => setImmediate(resolve))
      server?.close()
      await new Promise<void>((resolve) => {
        if (socket === undefined) return resolve()
        socket.close(() => resolve())
      })
      socket = undefined
      server = undefined
    },
  }
}
