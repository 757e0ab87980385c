// The device HTTP adapter's settings, taken from the process configuration (TRIBUTARY_HTTP_*), with
// the bounds that are constants rather than variables.
import type { Config } from '../../core/config/index.ts'

export interface HttpConfig {
  readonly enabled: boolean
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** The variable named when the port is taken. */
  readonly portVariable: string
  /** Largest body read, counted while it streams in; larger ones get 413. */
  readonly maxBodyBytes: number
  /**
   * Messages per second per device (bursts up to twice that) unless the tenant's quota says
   * otherwise. One setting for every protocol (TRIBUTARY_MQTT_PUBLISH_RATE): the bucket is per device.
   */
  readonly publishRate: number
  /** A request has this long to arrive whole, its headers HEADERS_TIMEOUT_MS. */
  readonly requestTimeoutMs: number
  readonly headersTimeoutMs: number
  /** How long stop() lets requests in flight finish before it closes their connections. */
  readonly drainTimeoutMs: number
  /** A device's last-seen time is written at most this often per process. */
  readonly lastSeenIntervalMs: number
  /** The longest `?ct=` a device may ask for (TRIBUTARY_COMMAND_MAX_WAIT_MS, whole seconds). */
  readonly maxCommandWaitSeconds: number
  /** Largest file upload (TRIBUTARY_FILES_MAX_BYTES). */
  readonly maxFileBytes: number
}

export function httpConfig(config: Config): HttpConfig {
  return {
    enabled: config.httpEnabled,
    host: config.host,
    port: config.httpPort,
    portVariable: 'TRIBUTARY_HTTP_PORT',
    maxBodyBytes: config.httpMaxBodyBytes,
    publishRate: config.mqttPublishRate,
    // Long enough for a `?ct=` wait on top of a slow upload; the API listener uses the same bounds.
    requestTimeoutMs: 30_000 + config.commandMaxWaitMs,
    headersTimeoutMs: 10_000,
    drainTimeoutMs: config.shutdownTimeoutMs,
    lastSeenIntervalMs: 60_000,
    maxCommandWaitSeconds: Math.floor(config.commandMaxWaitMs / 1000),
    maxFileBytes: config.filesMaxBytes,
  }
}
