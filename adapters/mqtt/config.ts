// The MQTT adapter's settings, taken from the process configuration (TRIBUTARY_MQTT_*), and the
// checks that fail the start with a message naming the variable to fix.
import { readFile } from 'node:fs/promises'
import type { Config } from '../../core/config/index.ts'
import { TributaryError } from '../../core/errors.ts'

export type ListenerName = 'mqtt' | 'mqtts' | 'mqtt-ws'

export interface ListenerConfig {
  readonly enabled: boolean
  /** 0 picks a free port. */
  readonly port: number
  /** The variable named when the port is taken. */
  readonly portVariable: string
}

export interface MqttConfig {
  readonly host: string
  readonly tcp: ListenerConfig
  readonly tls: ListenerConfig & {
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
  }
  readonly ws: ListenerConfig
  /** Largest PUBLISH payload; larger ones close the connection. */
  readonly maxPayloadBytes: number
  /** Messages per second per device (bursts up to twice that) unless the tenant's quota says otherwise. */
  readonly publishRate: number
  readonly maxConnectionsPerTenant: number
  /** Bound on the TLS or WebSocket handshake and on the wait for CONNECT. */
  readonly connectTimeoutMs: number
  /** A client that does not read what it is sent (PUBACKs) within this is disconnected. */
  readonly drainTimeoutMs: number
  /** How long stop() lets live connections end (their disconnect events be written). */
  readonly shutdownTimeoutMs: number
  /** A device's last-seen time (set on connect) is written at most this often per process. */
  readonly lastSeenIntervalMs: number
}

/** Aedes's defaults are 60 s; a device that stops reading its PUBACKs for 10 s is gone. */
export const DRAIN_TIMEOUT_MS = 10_000

/** As the CoAP and HTTP adapters: a device reconnecting in a loop costs one registry write a minute. */
export const LAST_SEEN_INTERVAL_MS = 60_000

export function mqttConfig(config: Config): MqttConfig {
  return {
    host: config.host,
    tcp: { enabled: config.mqttEnabled, port: config.mqttPort, portVariable: 'TRIBUTARY_MQTT_PORT' },
    tls: {
      enabled: config.mqttsEnabled,
      port: config.mqttsPort,
      portVariable: 'TRIBUTARY_MQTTS_PORT',
      certFile: config.mqttsCertFile,
      keyFile: config.mqttsKeyFile,
    },
    ws: { enabled: config.mqttWsEnabled, port: config.mqttWsPort, portVariable: 'TRIBUTARY_MQTT_WS_PORT' },
    maxPayloadBytes: config.mqttMaxPayloadBytes,
    publishRate: config.mqttPublishRate,
    maxConnectionsPerTenant: config.mqttMaxConnectionsPerTenant,
    connectTimeoutMs: config.mqttConnectTimeoutMs,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    lastSeenIntervalMs: LAST_SEEN_INTERVAL_MS,
  }
}

export interface TlsFiles {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Reads the TLS listener's certificate and key; a clear CONFIG_INVALID when they are missing. */
export async function readTlsFiles(config: MqttConfig['tls']): Promise<TlsFiles> {
  const missing = [
    config.certFile === undefined || config.certFile === '' ? 'TRIBUTARY_MQTTS_CERT_FILE' : undefined,
    config.keyFile === undefined || config.keyFile === '' ? 'TRIBUTARY_MQTTS_KEY_FILE' : undefined,
  ].filter((v) => v !== undefined)
  if (missing.length > 0) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `the MQTT TLS listener is enabled (TRIBUTARY_MQTTS_ENABLED) but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: point them at the PEM server certificate and key, or set TRIBUTARY_MQTTS_ENABLED=false`,
      { details: { problems: missing.map((v) => `${v} is required when TRIBUTARY_MQTTS_ENABLED=true`) } },
    )
  }
  const read = async (file: string, variable: string): Promise<Buffer> => {
    try {
      return await readFile(file)
    } catch (cause) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `${variable}=${file} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause },
      )
    }
  }
  return {
    cert: await read(config.certFile!, 'TRIBUTARY_MQTTS_CERT_FILE'),
    key: await read(config.keyFile!, 'TRIBUTARY_MQTTS_KEY_FILE'),
  }
}
