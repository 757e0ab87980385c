// The CoAP adapter's settings, taken from the process configuration (TRIBUTARY_COAP_*), and the
// fixed bounds of its message layer (piggyback wait, block-wise transfers, response cache).
import type { Config } from '../../core/config/index.ts'

export interface CoapConfig {
  readonly enabled: boolean
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** The variable named when the port is taken. */
  readonly portVariable: string
  /** Largest request payload after block-wise reassembly; larger ones get 4.13. */
  readonly maxPayloadBytes: number
  /** Messages per second per device (bursts up to twice that) unless the tenant's quota says otherwise. */
  readonly publishRate: number
  /**
   * How long a confirmable request may wait for its piggybacked response before the server sends
   * an empty ACK and answers separately (RFC 7252 §5.2.2). Well under ACK_TIMEOUT (2 s), so the
   * device does not retransmit while the bus makes the event durable.
   */
  readonly piggybackMs: number
  /** Block-wise (RFC 7959 Block1) transfers being reassembled at once; more get 5.03. */
  readonly maxBlockTransfers: number
  /** Bytes of cached responses kept to answer retransmitted requests (RFC 7252 §4.5). */
  readonly responseCacheBytes: number
  /** A device's last-seen time is written at most this often per process. */
  readonly lastSeenIntervalMs: number
  /** How long stop() waits for requests in flight (the lifecycle deadline bounds it too). */
  readonly shutdownTimeoutMs: number
  /** The longest `?ct=` a device may ask for (TRIBUTARY_COMMAND_MAX_WAIT_MS, whole seconds). */
  readonly maxCommandWaitSeconds: number
}

export const PIGGYBACK_MS = 500
export const MAX_BLOCK_TRANSFERS = 256
/**
 * Responses are 10-200 bytes: 1 MiB keeps the last 5,000-100,000 exchanges, more than the 45 s in
 * which a device retransmits (MAX_TRANSMIT_SPAN) at a thousand requests a second.
 */
export const RESPONSE_CACHE_BYTES = 1024 * 1024
export const LAST_SEEN_INTERVAL_MS = 60_000

export function coapConfig(config: Config): CoapConfig {
  return {
    enabled: config.coapEnabled,
    host: config.host,
    port: config.coapPort,
    portVariable: 'TRIBUTARY_COAP_PORT',
    maxPayloadBytes: config.coapMaxPayloadBytes,
    // One per-device rate for every protocol: the MQTT variable is the deployment's default.
    publishRate: config.mqttPublishRate,
    piggybackMs: PIGGYBACK_MS,
    maxBlockTransfers: MAX_BLOCK_TRANSFERS,
    responseCacheBytes: RESPONSE_CACHE_BYTES,
    lastSeenIntervalMs: LAST_SEEN_INTERVAL_MS,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    maxCommandWaitSeconds: Math.floor(config.commandMaxWaitMs / 1000),
  }
}
