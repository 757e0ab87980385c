// Listener ports, checked before the slow part of the start (opening the bus and the registry): a
// port the user set must be free, or the start fails at once naming its variable; a default port
// that is taken moves, to the default plus 10,000 when that is free (the same port run after run),
// else to the port it got last time in this data dir, else to any free port (remembered in
// `<data dir>/ports.json` for the next run), and the move is said in a banner line.
import { createSocket } from 'node:dgram'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Config } from '../core/config/index.ts'
import { TributaryError } from '../core/errors.ts'
import type { Role } from './roles.ts'

type PortKey = {
  [K in keyof Config]: Config[K] extends number ? (K extends `${string}Port` ? K : never) : never
}[keyof Config]

interface ListenerSpec {
  /** The key of `Running.ports`. */
  readonly name: string
  /** How the banner names it. */
  readonly label: string
  readonly variable: string
  readonly key: PortKey
  readonly udp?: boolean
  /** Whether this process binds it. */
  readonly runs: (config: Config, roles: readonly Role[]) => boolean
}

const adapters = (roles: readonly Role[]): boolean => roles.includes('adapters')

export const LISTENERS: readonly ListenerSpec[] = [
  {
    name: 'management',
    label: 'management',
    variable: 'TRIBUTARY_MANAGEMENT_PORT',
    key: 'managementPort',
    runs: () => true,
  },
  {
    name: 'api',
    label: 'API',
    variable: 'TRIBUTARY_API_PORT',
    key: 'apiPort',
    runs: (_, roles) => roles.includes('api'),
  },
  {
    name: 'mqtt',
    label: 'MQTT',
    variable: 'TRIBUTARY_MQTT_PORT',
    key: 'mqttPort',
    runs: (c, roles) => adapters(roles) && c.mqttEnabled,
  },
  {
    name: 'mqtts',
    label: 'MQTT over TLS',
    variable: 'TRIBUTARY_MQTTS_PORT',
    key: 'mqttsPort',
    runs: (c, roles) => adapters(roles) && c.mqttsEnabled,
  },
  {
    name: 'mqttWs',
    label: 'MQTT over WebSocket',
    variable: 'TRIBUTARY_MQTT_WS_PORT',
    key: 'mqttWsPort',
    runs: (c, roles) => adapters(roles) && c.mqttWsEnabled,
  },
  {
    name: 'http',
    label: 'HTTP',
    variable: 'TRIBUTARY_HTTP_PORT',
    key: 'httpPort',
    runs: (c, roles) => adapters(roles) && c.httpEnabled,
  },
  {
    name: 'coap',
    label: 'CoAP',
    variable: 'TRIBUTARY_COAP_PORT',
    key: 'coapPort',
    udp: true,
    runs: (c, roles) => adapters(roles) && c.coapEnabled,
  },
  {
    name: 'appMqtt',
    label: 'application MQTT',
    variable: 'TRIBUTARY_APP_MQTT_PORT',
    key: 'appMqttPort',
    runs: (c, roles) => roles.includes('consumers') && c.appMqttEnabled,
  },
]

/** The distance of the stable alternative from a default port. */
export const ALTERNATIVE_OFFSET = 10_000

export interface PortMove {
  readonly name: string
  readonly label: string
  readonly variable: string
  /** The default that was taken. */
  readonly taken: number
  /** The port chosen before the start: the alternative, or 0 (any free port, known once bound). */
  readonly port: number
}

export type PortProbe = (host: string, port: number, udp: boolean) => Promise<boolean>

/** True when `port` can be bound on `host` now (TCP listen, or UDP bind). */
export const isPortFree: PortProbe = (host, port, udp) =>
  new Promise((resolve) => {
    if (udp) {
      const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
      socket.once('error', () => {
        socket.close()
        resolve(false)
      })
      socket.bind(port, host, () => socket.close(() => resolve(true)))
      return
    }
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })

const isSet = (value: string | undefined): boolean => value !== undefined && value.trim() !== ''

/**
 * Checks the listener ports this process will bind. Throws PORT_IN_USE, naming every variable,
 * when a port the user set is taken; returns the configuration with every taken default moved.
 */
export async function planPorts(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  roles: readonly Role[],
  probe: PortProbe = isPortFree,
  /** Ports listeners got last time they fell back to any free port, by variable. */
  remembered: Readonly<Record<string, number>> = {},
): Promise<{ config: Config; moves: PortMove[] }> {
  const running = LISTENERS.filter((l) => l.runs(config, roles))
  const explicit = running.filter((l) => isSet(env[l.variable]))
  // Ports already promised to a listener of this process are never handed to another one.
  const claimed = new Set(explicit.map((l) => config[l.key]).filter((p) => p !== 0))
  const taken: string[] = []
  for (const l of explicit) {
    const port = config[l.key]
    if (port !== 0 && !(await probe(config.host, port, l.udp === true))) {
      taken.push(
        `the ${l.label} listener cannot bind ${config.host}:${port}${l.udp === true ? '/udp' : ''} (the port is taken); set ${l.variable} to another port, or 0 for any free port`,
      )
    }
  }
  if (taken.length > 0) {
    throw new TributaryError('PORT_IN_USE', taken.join('\n'), {
      details: { variables: explicit.map((l) => l.variable) },
    })
  }
  const moved: Record<string, number> = {}
  const moves: PortMove[] = []
  for (const l of running) {
    if (isSet(env[l.variable])) continue
    const port = config[l.key]
    if (!claimed.has(port) && (await probe(config.host, port, l.udp === true))) {
      claimed.add(port)
      continue
    }
    let chosen = 0
    for (const candidate of [port + ALTERNATIVE_OFFSET, remembered[l.variable]]) {
      if (candidate === undefined || candidate <= 0 || candidate > 65_535 || claimed.has(candidate)) continue
      if (await probe(config.host, candidate, l.udp === true)) {
        chosen = candidate
        claimed.add(candidate)
        break
      }
    }
    moved[l.key] = chosen
    moves.push({ name: l.name, label: l.label, variable: l.variable, taken: port, port: chosen })
  }
  return { config: { ...config, ...moved }, moves }
}

/** `MQTT: 1883 is taken, listening on 11883 (set TRIBUTARY_MQTT_PORT to choose)`, given the bound port. */
export function moveLine(move: PortMove, bound: number): string {
  return `${move.label}: ${move.taken} is taken, listening on ${bound} (set ${move.variable} to choose a port)`
}

const PORTS_FILE = 'ports.json'

/** The ports remembered in the data dir (none when the file is missing or unreadable). */
export function rememberedPorts(dataDir: string): Record<string, number> {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, PORTS_FILE), 'utf8')) as Record<string, unknown>
    return Object.fromEntries(
      Object.entries(parsed).filter((e): e is [string, number] => Number.isInteger(e[1])),
    )
  } catch {
    return {}
  }
}

/**
 * Remembers where the listeners that fell back to any free port went, so that the next run in this
 * data dir takes the same ports when its alternatives are still taken. Throws on a write error.
 */
export function rememberPorts(
  dataDir: string,
  moves: ReadonlyArray<PortMove & { readonly bound: number }>,
): void {
  const fallbacks = moves.filter((m) => m.port === 0 && m.bound > 0)
  if (fallbacks.length === 0) return
  const ports = {
    ...rememberedPorts(dataDir),
    ...Object.fromEntries(fallbacks.map((m) => [m.variable, m.bound])),
  }
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(join(dataDir, PORTS_FILE), `${JSON.stringify(ports, null, 2)}\n`)
}
