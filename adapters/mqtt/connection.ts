// What the adapter knows about each network connection it serves (aedes, or the MQTT 5 endpoint) — the listener, the TLS
// handshake's outcome, the authenticated session and why it ended — and the table of live ones.
import type { X509Certificate } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Client } from 'aedes'
import type { AuthMethod } from '../../core/registry/model.ts'
import type { ListenerName } from './config.ts'
import type { DeviceLink } from './link.ts'

/** An authenticated device on a connection. */
export interface Session {
  readonly tenant: string
  readonly device: string
  readonly method: AuthMethod
  readonly credentialId: string
  /** The client certificate chain (leaf first) of an x509 session, re-checked when anchors change. */
  readonly chain?: readonly X509Certificate[] | undefined
}

/** A device whose TLS-PSK handshake succeeded: the identity proved its key. */
export interface PskProof {
  readonly tenant: string
  readonly device: string
  readonly credentialId: string
  readonly identity: string
}

export interface Connection {
  /** Unique within this process; the session owner's connection id in the cluster state. */
  readonly id: string
  readonly listener: ListenerName
  /** `ip:port` of the peer. */
  readonly remote: string | undefined
  /** The stream aedes reads and writes. */
  readonly stream: Duplex
  readonly tls?: TLSSocket | undefined
  psk?: PskProof | undefined
  /** The aedes client serving an MQTT 3.1.1 connection. */
  client?: Client | undefined
  /** Where commands, configurations and upload tokens are written (aedes-link.ts, v5/endpoint.ts). */
  link?: DeviceLink | undefined
  /** Set by the MQTT 5 endpoint: ends the connection with a DISCONNECT saying why (v5/outcome.ts). */
  end?: ((reason: string) => void) | undefined
  /** The client id the device sent (aedes's client.id becomes `<tenant>/<device>`). */
  clientId?: string | undefined
  will?: { readonly topic: string; readonly payload: Buffer; readonly retain: boolean } | undefined
  session?: Session | undefined
  /** What has been taken for the session, so that the end gives back exactly that. */
  slot: boolean
  claimed: boolean
  /** The connected event is durable (so a disconnected one follows) and the gauge counts it. */
  announced: boolean
  /** Why the connection ended (first writer wins). */
  closeReason?: string | undefined
  /** Set when the device's last will must not be published (revoked, taken over, shut down). */
  dropWill: boolean
  closed: boolean
  /** Ends the command sink attached while the connection holds command subscriptions. */
  detachCommands?: (() => void) | undefined
  /** Publishes in flight: the disconnected event waits for them, so it comes last. */
  readonly pending: Set<Promise<unknown>>
  /** Resolves once the end was handled (session released, disconnected event written). */
  readonly finished: Promise<void>
  markFinished(): void
  /** Refusal log throttling: the time of the last line and how many were left out since. */
  lastRefusalLog: number
  suppressedRefusals: number
}

export interface ConnectionTable {
  add(conn: Connection): void
  remove(conn: Connection): void
  of(stream: Duplex): Connection | undefined
  get(id: string): Connection | undefined
  /** The connection holding a device's session on this instance. */
  byDevice(tenant: string, device: string): Connection | undefined
  setDevice(conn: Connection): void
  all(): IterableIterator<Connection>
  readonly size: number
}

const deviceKey = (tenant: string, device: string): string => `${tenant}/${device}`

export function createConnectionTable(): ConnectionTable {
  const byId = new Map<string, Connection>()
  const byStream = new WeakMap<Duplex, Connection>()
  const devices = new Map<string, Connection>()
  return {
    add(conn) {
      byId.set(conn.id, conn)
      byStream.set(conn.stream, conn)
    },
    remove(conn) {
      byId.delete(conn.id)
      const s = conn.session
      if (s !== undefined && devices.get(deviceKey(s.tenant, s.device)) === conn)
        devices.delete(deviceKey(s.tenant, s.device))
    },
    of: (stream) => byStream.get(stream),
    get: (id) => byId.get(id),
    byDevice: (tenant, device) => devices.get(deviceKey(tenant, device)),
    setDevice(conn) {
      const s = conn.session
      if (s !== undefined) devices.set(deviceKey(s.tenant, s.device), conn)
    },
    all: () => byId.values(),
    get size() {
      return byId.size
    },
  }
}

let sequence = 0

export function newConnection(init: {
  listener: ListenerName
  remote: string | undefined
  stream: Duplex
  tls?: TLSSocket | undefined
  psk?: PskProof | undefined
}): Connection {
  const { promise, resolve } = Promise.withResolvers<void>()
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER
  return {
    id: `${Date.now().toString(36)}-${sequence.toString(36)}`,
    ...init,
    slot: false,
    claimed: false,
    announced: false,
    dropWill: false,
    closed: false,
    pending: new Set(),
    finished: promise,
    markFinished: () => resolve(),
    lastRefusalLog: 0,
    suppressedRefusals: 0,
  }
}

/** `ip:port`, IPv6 in brackets, IPv4-mapped IPv6 as plain IPv4. */
export function remoteOf(socket: {
  remoteAddress?: string | undefined
  remotePort?: number | undefined
}): string | undefined {
  const { remoteAddress, remotePort } = socket
  if (remoteAddress === undefined) return undefined
  const ip = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress
  return `${ip.includes(':') ? `[${ip}]` : ip}:${remotePort ?? 0}`
}
