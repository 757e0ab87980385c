// The device CoAP adapter (UDP, RFC 7252): `POST /v1/<channel>` answered 2.04 once the event is
// durable on the bus, or 2.05 with a command when `?ct=` waited for one; `GET /v1/commands` with
// Observe for a notification per command. The `coap` library runs the message layer
// (deduplication, piggybacked and separate responses, retransmission); datagrams.ts gates what
// reaches it; handler.ts decides; exchanges.ts follows the acknowledgements of commands sent.
import type { RemoteInfo, Socket } from 'node:dgram'
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { createServer } from 'coap'
import type { IncomingMessage, OutgoingMessage } from 'coap'
import type { Adapter, Ingest } from '../adapter.ts'
import { createLastSeen, createRateLimiter } from '../device-limits.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import type { ClusterState } from '../../core/cluster/cluster.ts'
import { TributaryError } from '../../core/errors.ts'
import type { Logger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import type { RegistryChange } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { CoapConfig } from './config.ts'
import { createResponseBlocks } from './blocks.ts'
import { MAX_TRANSMIT_SPAN_MS, createDatagramGate } from './datagrams.ts'
import { MAX_TRANSMIT_WAIT_MS, createExchanges } from './exchanges.ts'
import { createRequestHandler, isReply } from './handler.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'
import { CONFIG_PATH, isCommandsPath, isPath } from './map.ts'
import { createCoapMetrics } from './metrics.ts'
import { createConfigObservations } from './config-observe.ts'
import { createObservations, observationKey } from './observe.ts'
import { CODES, DEFAULT_RETRY_SECONDS } from './outcome.ts'
import type { CoapReply } from './outcome.ts'
import { createPollSlots } from '../poll-slots.ts'
import type { PublishedDeps } from '../../core/blobs/published.ts'
import { registerWireNames, wireRequest, writeCommand, writeReply } from './wire.ts'

export { coapConfig } from './config.ts'
export type { CoapConfig } from './config.ts'

export interface CoapAdapterDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  /** The cached registry lookups: device authentication, tenant quotas, gateway rules. */
  readonly auth: Pick<RegistryAuth, 'device' | 'tenant' | 'findDevice' | 'findCredential'>
  /** Registry store's touchDevice: the last-seen time. */
  readonly touchDevice: (tenant: string, device: string, at: Date) => Promise<void>
  readonly cluster: Pick<ClusterState, 'take'>
  /** Where `?ct=` requests and observations attach their sinks, and responses are reported. */
  readonly commands: Pick<CommandOutlet, 'attach' | 'responded'>
  /** `GET /v1/config` and `POST /v1/config/applied`: effective configurations, deliveries and reports. */
  readonly config: Pick<
    RegistryService,
    'getEffectiveConfig' | 'configDelivered' | 'configApplied' | 'reportAppVersion'
  >
  /** `POST /v1/files/token`: the uploads and the device HTTP listener's base URL (docs/files.md). */
  readonly files?:
    | {
        readonly uploads: Pick<Uploads, 'issue' | 'presign'>
        readonly uploadBase: (localAddress: string | undefined) => string | undefined
      }
    | undefined
  /** `GET /v1/files[/<fileId>]`: the files published to devices (docs/files.md#files-for-devices). */
  readonly published?: PublishedDeps | undefined
  /** Registry changes of every process (the registry topic): observed configurations follow them. */
  readonly onRegistryChange: (listener: (change: RegistryChange) => void) => () => void
  readonly metrics: Registry
  readonly log: Logger
}

/** A peer may reassemble this many block-wise bodies at once. */
const TRANSFERS_PER_PEER = 4
const TRANSFER_IDLE_MS = 60_000

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
  const exchanges = createExchanges()
  const blocks = createResponseBlocks()
  const observations = createObservations({ commands: deps.commands, exchanges, log })
  const configObservations = createConfigObservations({
    ingest: deps.ingest,
    config: deps.config,
    auth: deps.auth,
    exchanges,
    log,
  })
  let unlisten: (() => void) | undefined
  const stopping = new AbortController()
  const handler = createRequestHandler({
    ingest: deps.ingest,
    commands: deps.commands,
    config: deps.config,
    slots: createPollSlots(),
    maxWaitSeconds: config.maxCommandWaitSeconds,
    // A separate response waits for its acknowledgement up to MAX_TRANSMIT_WAIT.
    settleMs: MAX_TRANSMIT_WAIT_MS + 1_000,
    stopping: stopping.signal,
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
    // A datagram socket does not say which of its addresses a device reached: the listener's own.
    files:
      deps.files === undefined
        ? undefined
        : { uploads: deps.files.uploads, uploadBase: () => deps.files?.uploadBase(undefined) },
    published: deps.published,
    log,
  })
  let socket: Socket | undefined
  let server: ReturnType<typeof createServer> | undefined
  let port = 0
  const inFlight = new Set<Promise<void>>()

  function onRequest(req: IncomingMessage, res: OutgoingMessage): void {
    const started = performance.now()
    const observing = req.headers.Observe === 0
    const answered = (reply: CoapReply): void => {
      writeReply(res, reply, observing)
      metrics.answered(reply.code, (performance.now() - started) / 1000)
    }
    if (stopping.signal.aborted) {
      return answered({ code: CODES.unavailable, detail: 'shutting down', maxAge: DEFAULT_RETRY_SECONDS })
    }
    const request = wireRequest(req)
    const peer = `${req.rsinfo.address}:${req.rsinfo.port}`
    const key = observationKey(peer, req._packet.token ?? Buffer.alloc(0))
    if (request.method === 'GET' && isCommandsPath(request.uriPath) && request.observe !== 0) {
      // RFC 7641 §3.6: a GET without Observe 0 on the observation's token deregisters it.
      observations.stop(key)
      return answered({ code: CODES.content })
    }
    // The same for `/v1/config`, whose GET is then answered as any other.
    if (request.method === 'GET' && isPath(request.uriPath, CONFIG_PATH) && request.observe !== 0) {
      configObservations.stop(key)
    }
    // The library calls back; the handler never rejects, and a throw in writing is logged (STYLE.md 8).
    const work = handler(request).then(
      (answer) => {
        if (isReply(answer)) return answered(answer)
        if ('handover' in answer) {
          writeCommand(res, peer, request, answer, { exchanges, blocks })
          metrics.answered(CODES.content, (performance.now() - started) / 1000)
          return
        }
        const observer = 'observe' in answer ? answer.observe : answer.observeConfig
        if (stopping.signal.aborted) {
          // Authenticated while the adapter stopped: no observation may outlive it.
          observer.release()
          return answered({ code: CODES.unavailable, detail: 'shutting down', maxAge: DEFAULT_RETRY_SECONDS })
        }
        if ('observe' in answer) observations.start(key, peer, res, answer.observe)
        else configObservations.start(key, peer, res, answer.observeConfig, req._packet.messageId)
        metrics.answered(CODES.content, (performance.now() - started) / 1000)
      },
      (err: unknown) => {
        log.error({ err }, 'CoAP response failed')
      },
    )
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
          acknowledged: (peer, id, reset) => exchanges.answered(peer, id, reset),
          followUp: (p, peer) => blocks.answer(p, peer),
        },
      )
      sock.on('message', gate)
      unlisten = deps.onRegistryChange((change) => configObservations.changed(change))
      socket = sock
      server = coap
      log.info({ port, host: config.host }, 'CoAP adapter listening (UDP, no DTLS)')
    },
    async stop() {
      // Waits for commands end now (answered 2.04), observations end, their sinks detach.
      stopping.abort()
      unlisten?.()
      observations.close()
      configObservations.close()
      const deadline = Date.now() + config.shutdownTimeoutMs
      while (inFlight.size > 0 && Date.now() < deadline) {
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
        ])
      }
      exchanges.clear()
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
