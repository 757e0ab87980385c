// The application MQTT broker's settings, taken from the process configuration (TRIBUTARY_APP_MQTT_*).
import type { Config } from '../../core/config/index.ts'

export interface AppMqttConfig {
  readonly enabled: boolean
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** Open connections of this process, authenticated or not; more are closed on accept. */
  readonly maxConnections: number
  /** Authenticated connections of one tenant on this process; more get CONNACK 5. */
  readonly maxConnectionsPerTenant: number
  /** Topic filters one connection may hold; SUBSCRIBEs past it get 0x80. */
  readonly maxSubscriptions: number
  /** Bytes written to a connection and not yet taken by its socket; past it the client is dropped. */
  readonly maxQueueBytes: number
  /** Keepalive a client gets when it asks for none or for more (seconds). */
  readonly maxKeepaliveSeconds: number
  /** How long a new connection may take to send CONNECT. */
  readonly connectTimeoutMs: number
  /** How often every client's credential is checked again (revocation ends the connection). */
  readonly credentialRecheckMs: number
  /** A client whose socket stays full this long is disconnected even under maxQueueBytes. */
  readonly drainTimeoutMs: number
  /** Events in flight to the clients of one tenant before its bus reader waits. */
  readonly maxInFlightPerTenant: number
  readonly shutdownTimeoutMs: number
  /** `<prefix>` of `<prefix>.events.<tenant>`, `<prefix>.commands`, and of the broker's consumer groups. */
  readonly topicPrefix: string
  /** How long a command published here waits for its device. */
  readonly commandTtlMs: number
  /** Largest command payload; a larger PUBLISH closes the connection. */
  readonly maxCommandBytes: number
  /** Commands per second one connection may publish, in bursts of `commandBurst`. */
  readonly commandRate: number
  readonly commandBurst: number
}

export const DRAIN_TIMEOUT_MS = 10_000
export const MAX_IN_FLIGHT_PER_TENANT = 1_000
/** The device MQTT adapter's default payload limit: what a device would accept anyway. */
export const MAX_COMMAND_BYTES = 262_144
export const COMMAND_RATE = 100
export const COMMAND_BURST = 200

export function appMqttConfig(config: Config): AppMqttConfig {
  return {
    enabled: config.appMqttEnabled,
    host: config.host,
    port: config.appMqttPort,
    maxConnections: config.appMqttMaxConnections,
    maxConnectionsPerTenant: config.appMqttMaxConnectionsPerTenant,
    maxSubscriptions: config.appMqttMaxSubscriptions,
    maxQueueBytes: config.appMqttMaxQueueBytes,
    maxKeepaliveSeconds: config.appMqttMaxKeepaliveSeconds,
    connectTimeoutMs: config.mqttConnectTimeoutMs,
    credentialRecheckMs: config.credentialRecheckMs,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    maxInFlightPerTenant: MAX_IN_FLIGHT_PER_TENANT,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    topicPrefix: config.topicPrefix,
    commandTtlMs: config.commandTtlMs,
    maxCommandBytes: MAX_COMMAND_BYTES,
    commandRate: COMMAND_RATE,
    commandBurst: COMMAND_BURST,
  }
}
