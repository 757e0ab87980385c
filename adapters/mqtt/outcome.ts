// Outcomes as MQTT 3.1.1 says them: CONNACK return codes for refused connections, and for a
// PUBLISH either the acknowledgement, a silent drop (QoS 0 only) or closing the connection,
// since 3.1.1 has no negative PUBACK [MQTT-3.3.5-2].
import type { Outcome } from '../adapter.ts'

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const CONNACK = { serverUnavailable: 3, badCredentials: 4, notAuthorized: 5 } as const
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK]

/** Why a CONNECT was refused; also the `reason` label of tributary_mqtt_refusals_total. */
export type ConnectRefusal =
  | 'missing-credentials'
  | 'malformed'
  | 'unknown'
  | 'bad-secret'
  | 'disabled'
  | 'expired'
  | 'identity-mismatch'
  | 'certificate-invalid'
  | 'certificate-tenant-unknown'
  | 'certificate-tenant-ambiguous'
  | 'method-not-allowed'
  | 'connection-limit'
  | 'will-refused'
  | 'unavailable'
  | 'shutting-down'

/**
 * 4 (bad user name or password) when the credentials do not identify an enabled device; 5 (not
 * authorized) when they do but the tenant's policy or limits refuse it; 3 when we cannot tell now.
 */
export function connackFor(reason: ConnectRefusal): ConnackCode {
  switch (reason) {
    case 'method-not-allowed':
    case 'connection-limit':
    case 'will-refused':
      return CONNACK.notAuthorized
    case 'unavailable':
    case 'shutting-down':
      return CONNACK.serverUnavailable
    case 'missing-credentials':
    case 'malformed':
    case 'unknown':
    case 'bad-secret':
    case 'disabled':
    case 'expired':
    case 'identity-mismatch':
    case 'certificate-invalid':
    case 'certificate-tenant-unknown':
    case 'certificate-tenant-ambiguous':
      return CONNACK.badCredentials
  }
}

/** The error aedes's authenticate callback takes: its returnCode becomes the CONNACK's. */
export function connackError(reason: ConnectRefusal): Error & { returnCode: ConnackCode } {
  return Object.assign(new Error(`connection refused: ${reason}`), { returnCode: connackFor(reason) })
}

export type PublishAction = 'ack' | 'drop' | 'disconnect'

/**
 * What to do with a PUBLISH whose outcome is known. A refusal that can pass later (bus
 * unavailable, over the rate) drops a QoS 0 message, which QoS 0 allows, and closes the connection
 * on QoS 1 and 2 without a PUBACK so that the device sends it again. A refusal for good closes the
 * connection whatever the QoS: acknowledging a message we threw away would hide it from the device.
 */
export function publishAction(outcome: Outcome, qos: number): PublishAction {
  switch (outcome.kind) {
    case 'accepted':
      return 'ack'
    case 'unavailable':
      return qos === 0 ? 'drop' : 'disconnect'
    case 'rejected':
      return outcome.reason === 'rate-limited' && qos === 0 ? 'drop' : 'disconnect'
  }
}
