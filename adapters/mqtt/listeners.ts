// The three device listeners — MQTT over TCP, over TLS and over WebSocket (path /mqtt, subprotocol
// mqtt, MQTT 3.1.1 §6) — each with its enable flag and port, handing every connection that got
// through its handshake to `accept`. They stop accepting first and drop stragglers last.
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Logger } from '../../core/log.ts'
import { listen } from '../../core/net.ts'
import type { ListenerConfig, ListenerName, MqttConfig } from './config.ts'
import { remoteOf } from './connection.ts'
import type { PskProof } from './connection.ts'
import type { TlsGate } from './tls-gate.ts'

export interface Accepted {
  readonly listener: ListenerName
  readonly stream: Duplex
  readonly remote: string | undefined
  readonly tls?: TLSSocket | undefined
  readonly psk?: PskProof | undefined
  readonly req?: IncomingMessage | undefined
}

export interface ListenersDeps {
  readonly accept: (connection: Accepted) => void
  /** Set when the TLS listener is enabled. */
  readonly tlsGate?: TlsGate | undefined
  /** Refused WebSocket upgrades (wrong path or subprotocol), for the log and the counter. */
  readonly refused: (reason: string, detail: { remote?: string | undefined; path?: string }) => void
  readonly log: Logger
}

export const WS_PATH = '/mqtt'
/** `mqtt` (MQTT 3.1.1 §6); `mqttv3.1` is what MQTT 3.1 clients offered. */
const WS_PROTOCOLS = ['mqtt', 'mqttv3.1']
/** Idle TCP connections are probed after this long, so dead peers free their sessions. */
const TCP_KEEPALIVE_MS = 60_000

function prepare(socket: Socket): void {
  socket.setNoDelay(true)
  socket.setKeepAlive(true, TCP_KEEPALIVE_MS)
}

export function createListeners(config: MqttConfig, deps: ListenersDeps) {
  const servers: Array<{ name: string; server: Server | HttpServer; config: ListenerConfig }> = []
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }

  if (config.tcp.enabled) {
    const server = createNetServer((socket) => {
      track(socket)
      prepare(socket)
      deps.accept({ listener: 'mqtt', stream: socket, remote: remoteOf(socket) })
    })
    servers.push({ name: 'mqtt', server, config: config.tcp })
  }

  const gate = deps.tlsGate
  if (config.tls.enabled && gate !== undefined) {
    const server = createNetServer((raw) => {
      track(raw)
      prepare(raw)
      const remote = remoteOf(raw)
      gate.upgrade(raw, remote).then(
        (up) =>
          up !== undefined &&
          deps.accept({ listener: 'mqtts', stream: up.tls, remote, tls: up.tls, psk: up.psk }),
        (err: unknown) => {
          deps.log.warn({ err, remote }, 'TLS handshake failed unexpectedly')
          raw.destroy()
        },
      )
    })
    servers.push({ name: 'mqtts', server, config: config.tls })
  }

  if (config.ws.enabled) {
    const wss = new WebSocketServer({
      noServer: true,
      // One WebSocket message carries one or more MQTT packets; none may exceed the packet bound.
      maxPayload: config.maxPayloadBytes + 64 * 1024,
      perMessageDeflate: false,
      handleProtocols: (offered) => WS_PROTOCOLS.find((p) => offered.has(p)) ?? false,
    })
    const server = createHttpServer((req, res) => {
      const upgradeable = (req.url ?? '').split('?')[0] === WS_PATH
      res.writeHead(upgradeable ? 426 : 404, {
        'content-type': 'text/plain',
        ...(upgradeable ? { upgrade: 'websocket' } : {}),
      })
      res.end(upgradeable ? 'MQTT over WebSocket: upgrade with subprotocol mqtt\n' : 'not found\n')
    })
    server.headersTimeout = config.connectTimeoutMs
    server.requestTimeout = config.connectTimeoutMs
    server.on('connection', (socket: Socket) => {
      track(socket)
      prepare(socket)
    })
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const remote = remoteOf(socket)
      const path = (req.url ?? '').split('?')[0] ?? ''
      const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
      const refuse = (status: string, reason: string): void => {
        deps.refused(reason, { remote, path: path.slice(0, 200) })
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      }
      if (path !== WS_PATH) return refuse('404 Not Found', 'ws-path')
      if (!offered.some((p) => WS_PROTOCOLS.includes(p))) return refuse('400 Bad Request', 'ws-subprotocol')
      wss.handleUpgrade(req, socket, head, (ws) => {
        deps.accept({ listener: 'mqtt-ws', stream: createWebSocketStream(ws), remote, req })
      })
    })
    servers.push({ name: 'mqttWs', server, config: config.ws })
  }

  const ports: Record<string, number> = {}
  function stopAccepting(): void {
    // close() calls back only once every connection ended, so it is not awaited here.
    for (const { server } of servers) if (server.listening) server.close()
  }
  return {
    ports: () => ({ ...ports }),
    async start(): Promise<Record<string, number>> {
      try {
        for (const { name, server, config: listener } of servers) {
          ports[name] = await listen(server, {
            host: config.host,
            port: listener.port,
            variable: listener.portVariable,
            name: `MQTT (${name})`,
          })
        }
      } catch (err) {
        stopAccepting()
        throw err
      }
      return { ...ports }
    },
    /** Stops accepting; live connections stay until closed. */
    stopAccepting,
    /** Resolves once every connection the listeners accepted has closed. */
    drain(): Promise<void> {
      const open = [...sockets].map(
        (s) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r()))),
      )
      return Promise.all(open).then(() => undefined)
    },
    /** Destroys whatever is left. */
    destroyAll(): void {
      for (const socket of sockets) socket.destroy()
    },
  }
}

export type Listeners = ReturnType<typeof createListeners>
